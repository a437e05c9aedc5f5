//! Real `fleetctl serve` processes forming a cluster on each backend: detection of a killed
//! node, SIGTERM drain, admin drain, Redis outage and clock skew.
//!
//! Timings are short (heartbeat 1 s, node_timeout 3 s, drain 2 s) so the suite stays fast;
//! measured times are printed as `[measure]` lines for the docs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::node::{ADMIN_TOKEN, Node, eventually, fleetctl, get_json, sha256_hex};
use crate::support::postgres::PgServer;
use crate::support::{RedisServer, require_binary};

const HEARTBEAT: Duration = Duration::from_secs(1);
const NODE_TIMEOUT: Duration = Duration::from_secs(3);
const DRAIN: Duration = Duration::from_secs(2);

/// A cluster's shared surroundings: its backend and a config file every node uses.
pub struct Env {
    /// Holds the state directory and config until the test ends.
    pub _dir: tempfile::TempDir,
    pub redis: Option<RedisServer>,
    /// Kept alive (and stopped) with the test.
    pub _pg: Option<PgServer>,
    pub config: PathBuf,
    pub backend: &'static str,
}

impl Env {
    pub fn new(backend: &'static str) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let redis = (backend == "redis").then(RedisServer::start);
        let redis_port = redis.as_ref().map_or(6379, |r| r.port);
        let pg = (backend == "postgres").then(PgServer::start);
        let pg_yaml = pg.as_ref().map_or(String::new(), |pg| pg.yaml(2));
        let config = dir.path().join("fleet.yaml");
        let state = dir.path().join("state");
        std::fs::write(
            &config,
            format!(
                "server:\n  drain_timeout: {drain}\n\
                 cluster:\n  enabled: true\n  backend: {backend}\n  heartbeat_interval: {hb}\n  node_timeout: {timeout}\n  \
                 redis_host: 127.0.0.1\n  redis_port: {redis_port}\n  state_path: {state}\n{pg_yaml}\
                 auth:\n  admin_tokens:\n    - name: tests\n      sha256: \"{sha}\"\n",
                drain = DRAIN.as_secs(),
                hb = HEARTBEAT.as_secs(),
                timeout = NODE_TIMEOUT.as_secs(),
                state = state.display(),
                sha = sha256_hex(ADMIN_TOKEN),
            ),
        )
        .expect("write config");
        Env {
            _dir: dir,
            redis,
            _pg: pg,
            config,
            backend,
        }
    }

    pub fn start_nodes(&self, n: usize) -> Vec<Node> {
        (0..n)
            .map(|i| Node::start(&self.config, &format!("node-{i}")))
            .collect()
    }

    /// `fleetctl cluster status --output json` read straight from the backend.
    pub fn status(&self, extra: &[&str]) -> (i32, Value) {
        let cfg = self.config.to_str().expect("utf-8 path");
        let mut args = vec!["--config", cfg, "--output", "json", "cluster", "status"];
        args.extend_from_slice(extra);
        let (code, out, err) = fleetctl(&args);
        let json = serde_json::from_str(&out).unwrap_or_else(|e| {
            panic!(
                "cluster status printed no JSON ({e}); exit {code}; stdout {out:?}; stderr {err}"
            )
        });
        (code, json)
    }

    pub fn state_of(&self, node_id: &str) -> Option<String> {
        let (_, s) = self.status(&[]);
        s["nodes"]
            .as_array()?
            .iter()
            .find(|n| n["node_id"] == node_id)
            .and_then(|n| n["status"].as_str().map(str::to_string))
    }

    pub async fn wait_all_active(&self, n: u64, timeout: Duration) -> Duration {
        let t0 = Instant::now();
        eventually(
            timeout,
            &format!("{n} active nodes on {}", self.backend),
            || async {
                let (_, s) = self.status(&[]);
                (s["active_nodes"] == n).then_some(())
            },
        )
        .await;
        t0.elapsed()
    }
}

macro_rules! cluster_process_tests {
    ($($backend:ident),*) => {$(
        mod $backend {
            #[tokio::test(flavor = "multi_thread")]
            async fn kill9_is_detected_and_degrades_status() {
                super::kill9_is_detected_and_degrades_status(stringify!($backend)).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn sigterm_drains_then_leaves() {
                super::sigterm_drains_then_leaves(stringify!($backend)).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn admin_drain_undrain_and_remove() {
                super::admin_drain_undrain_and_remove(stringify!($backend)).await;
            }
        }
    )*};
}

cluster_process_tests!(redis, sqlite, file, postgres);

/// The leader lease under a partition of its holder, simulated by freezing the leader with
/// SIGSTOP: its TCP connections stay open (the kernel still answers), which is exactly the
/// case where a connection-bound lock (a PostgreSQL advisory lock, a Redis client that holds
/// a lock while connected) would keep the cluster leaderless. The row/key lease expires on
/// the backend's clock: another node leads within node_timeout + heartbeat, and the frozen
/// node, resumed, does not lead again (its renewal fails; its local deadline passed).
async fn frozen_leader_loses_the_lease(backend: &'static str) {
    let env = Env::new(backend);
    let nodes = env.start_nodes(2);
    env.wait_all_active(2, Duration::from_secs(15)).await;
    let leader = eventually(Duration::from_secs(10), "a leader", || async {
        let (_, s) = env.status(&[]);
        s["leader"].as_str().map(str::to_string)
    })
    .await;
    let frozen = nodes.iter().position(|n| n.node_id == leader).unwrap();
    let other = nodes[1 - frozen].node_id.clone();
    nodes[frozen].signal("STOP");
    let t0 = Instant::now();
    eventually(
        NODE_TIMEOUT + HEARTBEAT * 3,
        "the other node to take the lease",
        || async {
            let (_, s) = env.status(&[]);
            (s["leader"].as_str() == Some(other.as_str())).then_some(())
        },
    )
    .await;
    let took = t0.elapsed();
    eprintln!(
        "[measure] backend={backend} frozen_leader_replaced_after={:.2}s",
        took.as_secs_f64()
    );
    nodes[frozen].signal("CONT");
    // Two heartbeats after resuming, the lease is still the other node's.
    tokio::time::sleep(HEARTBEAT * 3).await;
    let (_, s) = env.status(&[]);
    assert_eq!(s["leader"].as_str(), Some(other.as_str()), "{s:#}");
    let log = nodes[frozen].log_text();
    assert!(
        log.matches("became cluster leader").count() <= 1,
        "the resumed node took the lease back:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn frozen_leader_loses_the_lease_postgres() {
    frozen_leader_loses_the_lease("postgres").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn frozen_leader_loses_the_lease_redis() {
    frozen_leader_loses_the_lease("redis").await;
}

async fn kill9_is_detected_and_degrades_status(backend: &'static str) {
    let env = Env::new(backend);
    let mut nodes = env.start_nodes(3);
    env.wait_all_active(3, Duration::from_secs(10)).await;
    let (code, s) = env.status(&["--min-active", "3"]);
    assert_eq!(code, 0, "healthy 3-node cluster must exit 0: {s}");
    assert_eq!(s["total_nodes"], 3);
    assert_eq!(s["enabled"], true);
    assert_eq!(s["backend"], backend);
    assert!(s["leader"].is_string(), "a leader is elected: {s}");
    for field in [
        "node_id",
        "hostname",
        "port",
        "status",
        "last_heartbeat",
        "url",
    ] {
        assert!(
            !s["nodes"][0][field].is_null(),
            "node field {field} present: {s}"
        );
    }

    nodes[2].kill9();
    let t0 = Instant::now();
    let bound = HEARTBEAT + NODE_TIMEOUT;
    eventually(
        bound + Duration::from_secs(2),
        "killed node to turn inactive",
        || async { (env.state_of("node-2").as_deref() == Some("inactive")).then_some(()) },
    )
    .await;
    let detected = t0.elapsed();
    eprintln!(
        "[measure] {backend}: kill -9 -> inactive in {:.2}s (bound {:?})",
        detected.as_secs_f64(),
        bound
    );
    assert!(
        detected <= bound + Duration::from_millis(500),
        "detection took {detected:?}, bound is heartbeat_interval + node_timeout = {bound:?}"
    );
    let (code, s) = env.status(&["--min-active", "3"]);
    assert_eq!(
        (s["active_nodes"].as_u64(), s["inactive_nodes"].as_u64()),
        (Some(2), Some(1)),
        "{s}"
    );
    assert_eq!(code, 3, "--min-active 3 with 2 active must exit 3");
    let (code, _) = env.status(&["--min-active", "2"]);
    assert_eq!(code, 0);

    // The status endpoint of a surviving node says the same.
    let (http, body) = get_json(
        &format!("{}/api/fleet/cluster/status", nodes[0].url()),
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(http, 200, "{body}");
    assert_eq!(body["active_nodes"], 2);
    assert_eq!(body["node_id"], "node-0");
}

async fn sigterm_drains_then_leaves(backend: &'static str) {
    let env = Env::new(backend);
    let mut nodes = env.start_nodes(2);
    env.wait_all_active(2, Duration::from_secs(10)).await;
    let health = format!("{}/api/fleet/cluster/health", nodes[1].url());
    let (code, body) = get_json(&health, None).await;
    assert_eq!(
        (code, body["status"].as_str()),
        (200, Some("healthy")),
        "{body}"
    );

    nodes[1].signal("TERM");
    let t0 = Instant::now();
    let body = eventually(Duration::from_secs(1), "health 503 draining", || async {
        let (code, body) = get_json(&health, None).await;
        (code == 503 && body["status"] == "draining").then_some(body)
    })
    .await;
    let t_503 = t0.elapsed();
    assert_eq!(body["node_id"], "node-1");
    assert!(body["reason"].is_string());
    // Still serving real requests while draining.
    let (code, _) = get_json(
        &format!("{}/api/fleet/cluster/status", nodes[1].url()),
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(code, 200, "a draining node keeps serving");
    assert_eq!(env.state_of("node-1").as_deref(), Some("draining"));

    let exit = nodes[1].wait_exit(DRAIN + Duration::from_secs(10));
    let t_exit = t0.elapsed();
    assert!(exit.success(), "drained node exits 0, got {exit}");
    assert!(
        t_exit >= DRAIN,
        "node exited after {t_exit:?}, before drain_timeout {DRAIN:?}"
    );
    assert_eq!(env.state_of("node-1").as_deref(), Some("left"));
    eprintln!(
        "[measure] {backend}: SIGTERM -> health 503 in {:.3}s, exit 0 after {:.2}s (drain_timeout {}s), state left",
        t_503.as_secs_f64(),
        t_exit.as_secs_f64(),
        DRAIN.as_secs()
    );
}

async fn admin_drain_undrain_and_remove(backend: &'static str) {
    let env = Env::new(backend);
    let mut nodes = env.start_nodes(2);
    env.wait_all_active(2, Duration::from_secs(10)).await;
    let cfg = env.config.to_str().unwrap();
    let health = format!("{}/api/fleet/cluster/health", nodes[0].url());

    let (code, _, err) = fleetctl(&["--config", cfg, "nodes", "drain", "node-0"]);
    assert_eq!(code, 0, "{err}");
    eventually(
        HEARTBEAT * 3,
        "admin drain seen at the next heartbeat",
        || async {
            let (code, body) = get_json(&health, None).await;
            (code == 503 && body["status"] == "draining").then_some(())
        },
    )
    .await;
    let (code, _, err) = fleetctl(&["--config", cfg, "nodes", "undrain", "node-0"]);
    assert_eq!(code, 0, "{err}");
    eventually(
        HEARTBEAT * 3,
        "undrain seen at the next heartbeat",
        || async { (get_json(&health, None).await.0 == 200).then_some(()) },
    )
    .await;

    // Over HTTP with --server/--token, the same operations.
    let url = nodes[1].url();
    let (code, out, err) = fleetctl(&[
        "--output",
        "json",
        "nodes",
        "list",
        "--server",
        &url,
        "--token",
        ADMIN_TOKEN,
    ]);
    assert_eq!(code, 0, "{err}");
    let list: Value = serde_json::from_str(&out).expect("nodes list JSON");
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    let (code, _, err) = fleetctl(&["nodes", "list", "--server", &url, "--token", "wrong"]);
    assert_eq!(code, 1);
    assert!(err.contains("401"), "{err}");

    let (code, _, err) = fleetctl(&["--config", cfg, "nodes", "drain", "no-such-node"]);
    assert_eq!(code, 2, "unknown node is a usage error: {err}");
    assert!(err.contains("no-such-node"), "{err}");
    let (code, _, err) = fleetctl(&["--config", cfg, "nodes", "remove", "node-1"]);
    assert_eq!(code, 2, "removing an active node needs --force: {err}");
    assert!(err.contains("--force"), "{err}");

    nodes[1].kill9();
    eventually(
        HEARTBEAT + NODE_TIMEOUT + Duration::from_secs(2),
        "node-1 inactive",
        || async { (env.state_of("node-1").as_deref() == Some("inactive")).then_some(()) },
    )
    .await;
    let (code, _, err) = fleetctl(&["--config", cfg, "nodes", "remove", "node-1"]);
    assert_eq!(code, 0, "an inactive node can be removed: {err}");
    assert_eq!(env.state_of("node-1"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_outage_then_recovery_without_restart() {
    let mut env = Env::new("redis");
    let nodes = env.start_nodes(3);
    env.wait_all_active(3, Duration::from_secs(10)).await;

    env.redis.as_mut().unwrap().stop();
    for n in &nodes {
        let health = format!("{}/api/fleet/cluster/health", n.url());
        let body = eventually(
            HEARTBEAT * 4,
            "health 503 unhealthy during the outage",
            || async {
                let (code, body) = get_json(&health, None).await;
                (code == 503 && body["status"] == "unhealthy").then_some(body)
            },
        )
        .await;
        assert!(
            body["reason"]
                .as_str()
                .unwrap_or("")
                .contains("unavailable"),
            "{body}"
        );
    }
    // Several heartbeats into the outage: still logged once per node, not per retry.
    tokio::time::sleep(HEARTBEAT * 3).await;
    let (code, _, err) = fleetctl(&[
        "--config",
        env.config.to_str().unwrap(),
        "cluster",
        "status",
    ]);
    assert_eq!(
        code, 1,
        "status with the backend down is a runtime failure: {err}"
    );

    env.redis.as_mut().unwrap().restart();
    let back = env
        .wait_all_active(3, HEARTBEAT * 2 + Duration::from_secs(2))
        .await;
    eprintln!(
        "[measure] redis restart -> 3 nodes active again in {:.2}s (bound 2 x heartbeat = {:?})",
        back.as_secs_f64(),
        HEARTBEAT * 2
    );
    assert!(
        back <= HEARTBEAT * 2 + Duration::from_millis(500),
        "recovery took {back:?}"
    );
    for n in &nodes {
        let log = n.log_text();
        let outage_lines = log.matches("cluster backend unavailable").count();
        assert_eq!(
            outage_lines, 1,
            "the outage is logged once per node, got {outage_lines}:\n{log}"
        );
        assert!(!log.contains("panicked"), "{log}");
        let (code, _) = get_json(&format!("{}/api/fleet/cluster/health", n.url()), None).await;
        assert_eq!(code, 200);
    }
}

/// A node whose clock is five minutes behind stays `active`: liveness is judged by the
/// backend's clock. (SQLite is excluded by design: it is single-host, so every process reads
/// the same clock; a shared-filesystem SQLite across hosts is not supported.)
async fn skewed_clock_stays_active(backend: &'static str) {
    let faketime = require_binary("faketime", "faketime");
    let env = Env::new(backend);
    let _normal = Node::start(&env.config, "node-0");
    let skewed = Node::start_wrapped(
        &env.config,
        "node-skewed",
        &[faketime.to_str().unwrap(), "-f", "-5m"],
    );
    env.wait_all_active(2, Duration::from_secs(10)).await;
    // Well past node_timeout: a judge using local clocks would have declared it dead.
    tokio::time::sleep(NODE_TIMEOUT + HEARTBEAT).await;
    let (_, s) = env.status(&[]);
    assert_eq!(s["active_nodes"], 2, "skewed node must stay active: {s}");
    let (code, body) = get_json(
        &format!("{}/api/fleet/cluster/status", skewed.url()),
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        body["active_nodes"], 2,
        "the skewed node's own view agrees: {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn skewed_clock_stays_active_redis() {
    skewed_clock_stays_active("redis").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn skewed_clock_stays_active_file() {
    skewed_clock_stays_active("file").await;
}

/// Nodes that boot before Redis (a power cut, a fresh data centre) wait for it and join.
#[tokio::test(flavor = "multi_thread")]
async fn node_started_before_redis_joins_when_it_comes_up() {
    let mut env = Env::new("redis");
    env.redis.as_mut().unwrap().stop();
    let node = Node::start(&env.config, "early-node");
    tokio::time::sleep(HEARTBEAT * 2).await;
    assert!(
        node.log_text().contains("waiting for it"),
        "{}",
        node.log_text()
    );
    env.redis.as_mut().unwrap().restart();
    env.wait_all_active(1, HEARTBEAT * 2 + Duration::from_secs(3))
        .await;
    let (code, body) = get_json(&format!("{}/api/fleet/cluster/health", node.url()), None).await;
    assert_eq!(
        (code, body["status"].as_str()),
        (200, Some("healthy")),
        "{body}"
    );
}

/// `cluster status --watch` redraws in place until interrupted, then exits 0.
#[tokio::test(flavor = "multi_thread")]
async fn watch_redraws_until_interrupted() {
    let env = Env::new("sqlite");
    let _nodes = env.start_nodes(1);
    env.wait_all_active(1, Duration::from_secs(10)).await;
    let child = std::process::Command::new(crate::support::fleetctl_bin())
        .args([
            "--config",
            env.config.to_str().unwrap(),
            "cluster",
            "status",
            "--watch",
            "--interval",
            "1",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let screens = stdout.matches("\x1b[2J\x1b[H").count();
    assert!(
        screens >= 2,
        "expected at least 2 redraws in 2.5 s, got {screens}: {stdout:?}"
    );
    assert!(stdout.contains("1 node: 1 active"), "{stdout}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "Ctrl-C ends --watch with exit 0"
    );
}
