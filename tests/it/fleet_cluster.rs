//! Fleet data across real processes: three `fleetctl serve` nodes sharing a private
//! redis-server, real `fleetctl agent` processes (one per node) and a simulated fleet spread
//! over all three. Every node must show the same machines and the same summary.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::node::{ADMIN_TOKEN, Node, eventually, get_json, sha256_hex};
use crate::support::{RedisServer, fleetctl_bin};

const API_KEY: &str = "fleet_1111111111111111111111111111111111111111111111111111111111111111";

fn write_config(dir: &std::path::Path, redis_port: u16) -> std::path::PathBuf {
    let path = dir.join("fleet.yaml");
    std::fs::write(
        &path,
        format!(
            "server:\n  drain_timeout: 0\n\
             cluster:\n  enabled: true\n  backend: redis\n  heartbeat_interval: 1\n  node_timeout: 3\n  \
             redis_host: 127.0.0.1\n  redis_port: {redis_port}\n\
             sessions:\n  backend: redis\n  redis: {{ host: 127.0.0.1, port: {redis_port} }}\n\
             storage:\n  backend: redis\n  redis: {{ host: 127.0.0.1, port: {redis_port} }}\n\
             auth:\n  admin_tokens:\n    - name: tests\n      sha256: \"{admin}\"\n  \
             api_keys:\n    - name: agents\n      sha256: \"{key}\"\n",
            admin = sha256_hex(ADMIN_TOKEN),
            key = sha256_hex(API_KEY),
        ),
    )
    .expect("write config");
    path
}

fn agent(args: &[&str], key_file: &std::path::Path) -> Command {
    let mut c = Command::new(fleetctl_bin());
    c.arg("agent")
        .arg("--api-key-file")
        .arg(key_file)
        .args(args)
        .env_remove("FLEETCTL_CONFIG")
        .env_remove("FLEET_SERVER")
        .stdin(Stdio::null());
    c
}

async fn machine_ids(node: &Node) -> BTreeSet<String> {
    let (status, v) = get_json(
        &format!("{}/api/fleet/machines?limit=1000", node.url()),
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v["machines"]
        .as_array()
        .expect("machines")
        .iter()
        .map(|m| m["machine_id"].as_str().expect("id").to_string())
        .collect()
}

async fn summary(node: &Node) -> Value {
    let (status, mut v) = get_json(
        &format!("{}/api/fleet/summary", node.url()),
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v.as_object_mut().expect("object").remove("generated_at");
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_on_redis_show_the_same_fleet() {
    let dir = tempfile::tempdir().expect("tempdir");
    let redis = RedisServer::start();
    let config = write_config(dir.path(), redis.port);
    let key_file = dir.path().join("agent.key");
    std::fs::write(&key_file, format!("{API_KEY}\n")).expect("key file");
    let nodes: Vec<Node> = (0..3)
        .map(|i| Node::start(&config, &format!("node-{i}")))
        .collect();
    for n in &nodes {
        eventually(Duration::from_secs(15), "node healthy", || async {
            let (code, _) = get_json(&format!("{}/api/fleet/cluster/health", n.url()), None).await;
            (code == 200).then_some(())
        })
        .await;
    }

    // One real agent per node, each its own machine.
    let mut agents: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            agent(
                &[
                    "--server",
                    &n.url(),
                    "--machine-id",
                    &format!("real-{i}"),
                    "--interval",
                    "1s",
                    "--duration",
                    "3s",
                ],
                &key_file,
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn agent")
        })
        .collect();
    // And a simulated fleet spread over all three nodes.
    let servers = nodes.iter().map(Node::url).collect::<Vec<_>>().join(",");
    let sim = agent(
        &[
            "--simulate",
            "30",
            "--server",
            &servers,
            "--interval",
            "1s",
            "--duration",
            "3s",
        ],
        &key_file,
    )
    .args(["--output", "json"])
    .output()
    .expect("run simulator");
    let stats: Value = serde_json::from_slice(&sim.stdout).unwrap_or_else(|e| {
        panic!(
            "simulator printed no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&sim.stdout),
            String::from_utf8_lossy(&sim.stderr)
        )
    });
    assert!(sim.status.success(), "simulator failed: {stats}");
    assert_eq!(stats["failed"], 0, "{stats}");
    assert!(stats["accepted"].as_u64().unwrap() >= 60, "{stats}");
    for a in agents.iter_mut() {
        let status = a.wait().expect("agent exit");
        assert!(status.success(), "agent exited with {status}");
    }

    // Every node shows the same 33 machines and the same summary.
    let first = machine_ids(&nodes[0]).await;
    assert_eq!(first.len(), 33, "{first:?}");
    for i in 0..3 {
        assert!(first.contains(&format!("real-{i}")), "{first:?}");
    }
    assert_eq!(first.iter().filter(|id| id.starts_with("sim-")).count(), 30);
    let s0 = summary(&nodes[0]).await;
    assert_eq!(s0["total"], 33, "{s0}");
    assert_eq!(s0["online"], 33, "{s0}");
    for n in &nodes[1..] {
        assert_eq!(machine_ids(n).await, first, "machines on {}", n.node_id);
        assert_eq!(summary(n).await, s0, "summary on {}", n.node_id);
    }

    // Each node took reports itself (the simulator spread them).
    for n in &nodes {
        let text = reqwest::get(format!("{}/metrics", n.url()))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        let accepted = text
            .lines()
            .find(|l| l.starts_with("fleetctl_fleet_reports_total{result=\"accepted\""))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        assert!(accepted > 0, "{} took no report:\n{text}", n.node_id);
        assert!(
            text.contains("fleetctl_cluster_nodes{state=\"active\"} 3"),
            "{text}"
        );
    }

    // A bad key is refused by a real node, and stores nothing.
    let res = reqwest::Client::new()
        .post(format!("{}/api/fleet/report", nodes[2].url()))
        .bearer_auth("fleet_wrong")
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 401);
    assert_eq!(machine_ids(&nodes[1]).await.len(), 33);
}

/// A real agent started while its server is down keeps collecting, backs off, and delivers
/// the buffered reports (oldest first, each at its own timestamp) once the server is back.
#[tokio::test(flavor = "multi_thread")]
async fn the_agent_buffers_while_the_server_is_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("fleet.yaml");
    std::fs::write(
        &config,
        format!(
            "auth:\n  admin_tokens:\n    - name: tests\n      sha256: \"{admin}\"\n  \
             api_keys:\n    - name: agents\n      sha256: \"{key}\"\n",
            admin = sha256_hex(ADMIN_TOKEN),
            key = sha256_hex(API_KEY),
        ),
    )
    .expect("write config");
    let key_file = dir.path().join("agent.key");
    std::fs::write(&key_file, API_KEY).expect("key file");
    // Learn a port, then take the node down before the agent starts.
    let mut node = Node::start(&config, "solo");
    node.kill9();
    let mut agent = agent(
        &[
            "--server",
            &node.url(),
            "--machine-id",
            "buffered",
            "--interval",
            "1s",
            "--duration",
            "12s",
        ],
        &key_file,
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn agent");
    tokio::time::sleep(Duration::from_secs(4)).await;
    node.restart();
    let status = tokio::task::spawn_blocking(move || agent.wait())
        .await
        .expect("join")
        .expect("agent exit");
    assert!(status.success(), "agent exited with {status}");
    let (code, v) = get_json(
        &format!("{}/api/fleet/machines/buffered?range=1h", node.url()),
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    let points = v["history"]["points"].as_array().expect("points");
    // ~12 reports collected; those from the outage arrive late but keep their own times.
    assert!(points.len() >= 9, "{} points: {v}", points.len());
    let first = points[0]["t"].as_i64().unwrap();
    let last = points[points.len() - 1]["t"].as_i64().unwrap();
    assert!(
        last - first >= 8_000,
        "points span the outage: {first}..{last}"
    );
}
