//! Prometheus: the alert rules and scrape example in docs/prometheus/ pass the real
//! `promtool` (check rules, test rules, check config), a live node's `/metrics` passes
//! `promtool check metrics`, every metric the rules use is one a live node exports, and the
//! optional bearer token (`auth.metrics_tokens`) guards `/metrics`.
//!
//! promtool comes from Debian's `prometheus` package (scripts/test installs it); a missing
//! promtool fails these tests, it never skips them.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::node::{ADMIN_TOKEN, Node, eventually, fleetctl, sha256_hex};
use crate::support::{RedisServer, require_binary};

const METRICS_TOKEN: &str = "fleetmet_test_token_for_the_prometheus_tests";
const API_KEY: &str = "fleet_1111111111111111111111111111111111111111111111111111111111111111";

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/prometheus")
}

fn promtool() -> PathBuf {
    require_binary("promtool", "prometheus")
}

/// Run promtool with `args` (and `stdin`), asserting success; returns its combined output.
fn promtool_ok(args: &[&str], stdin: Option<&str>, cwd: &Path) -> String {
    let mut child = Command::new(promtool())
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    {
        let mut pipe = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            pipe.write_all(text.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

struct Live {
    _dir: tempfile::TempDir,
    _redis: RedisServer,
    node: Node,
}

/// One node on a private Redis (registry, sessions, fleet data) with a metrics token, an
/// agent key and an admin token, after some real traffic from `fleetctl agent`.
async fn live_node() -> Live {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start();
    let config = dir.path().join("fleet.yaml");
    let at = format!("{{ host: 127.0.0.1, port: {} }}", redis.port);
    std::fs::write(
        &config,
        format!(
            "cluster:\n  enabled: true\n  backend: redis\n  heartbeat_interval: 1\n  node_timeout: 3\n  \
             redis_host: 127.0.0.1\n  redis_port: {port}\n\
             sessions:\n  backend: redis\n  redis: {at}\n\
             storage:\n  backend: redis\n  redis: {at}\n\
             auth:\n  api_keys:\n    - {{ name: agents, sha256: \"{key}\" }}\n  \
             admin_tokens:\n    - {{ name: tests, sha256: \"{admin}\" }}\n  \
             metrics_tokens:\n    - {{ name: prometheus, sha256: \"{metrics}\" }}\n",
            port = redis.port,
            key = sha256_hex(API_KEY),
            admin = sha256_hex(ADMIN_TOKEN),
            metrics = sha256_hex(METRICS_TOKEN),
        ),
    )
    .unwrap();
    let node = Node::start(&config, "prom-1");
    let url = node.url();
    eventually(Duration::from_secs(10), "node healthy", || async {
        let (s, _) =
            crate::support::node::get_json(&format!("{url}/api/fleet/cluster/health"), None).await;
        (s == 200).then_some(())
    })
    .await;
    // Real traffic: accepted reports from the agent, one refused for a bad key.
    let key_file = dir.path().join("agent.key");
    std::fs::write(&key_file, API_KEY).unwrap();
    let (code, out, err) = fleetctl(&[
        "agent",
        "--server",
        &url,
        "--api-key-file",
        key_file.to_str().unwrap(),
        "--simulate",
        "3",
        "--interval",
        "1s",
        "--duration",
        "2s",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let res = reqwest::Client::new()
        .post(format!("{url}/api/fleet/report"))
        .bearer_auth("fleet_not_a_key")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    Live {
        _dir: dir,
        _redis: redis,
        node,
    }
}

async fn scrape(url: &str, auth: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(format!("{url}/metrics"));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn live_metrics_pass_promtool_and_cover_every_alert() {
    let live = live_node().await;
    let url = live.node.url();
    let (status, body) = scrape(&url, Some(&format!("Bearer {METRICS_TOKEN}"))).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("fleetctl_fleet_reports_total{result=\"accepted\",reason=\"\"} "),
        "{body}"
    );
    assert!(body.contains("reason=\"unauthorized\"} 1"), "{body}");

    let out = promtool_ok(&["check", "metrics"], Some(&body), &docs());
    println!("promtool check metrics: {}", out.trim());

    // Every fleetctl_* metric an alert uses is exported by the live node.
    let rules = std::fs::read_to_string(docs().join("alerts.yml")).unwrap();
    let used: BTreeSet<String> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("fleetctl_"))
        .map(|w| w.trim_end_matches("_bucket").to_string())
        .collect();
    assert!(used.len() >= 8, "{used:?}");
    for name in &used {
        assert!(
            body.contains(&format!("# TYPE {name} ")),
            "alerts.yml uses {name}, which the node does not export"
        );
    }
}

#[test]
fn alert_rules_and_scrape_example_pass_promtool() {
    let dir = docs();
    let out = promtool_ok(&["check", "rules", "alerts.yml"], None, &dir);
    assert!(out.contains("SUCCESS"), "{out}");
    let out = promtool_ok(&["test", "rules", "alerts_test.yml"], None, &dir);
    assert!(out.contains("SUCCESS"), "{out}");

    // The scrape example, with its token file present (promtool checks that it exists).
    let tmp = tempfile::tempdir().unwrap();
    let token = tmp.path().join("fleetctl-metrics.token");
    std::fs::write(&token, METRICS_TOKEN).unwrap();
    let text = std::fs::read_to_string(dir.join("prometheus.yml"))
        .unwrap()
        .replace(
            "/etc/prometheus/fleetctl-metrics.token",
            token.to_str().unwrap(),
        );
    std::fs::write(tmp.path().join("prometheus.yml"), text).unwrap();
    std::fs::copy(dir.join("alerts.yml"), tmp.path().join("alerts.yml")).unwrap();
    let out = promtool_ok(&["check", "config", "prometheus.yml"], None, tmp.path());
    assert!(out.contains("SUCCESS: 1 rule files found"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_token_guards_metrics() {
    let live = live_node().await;
    let url = live.node.url();
    for (auth, needle) in [
        (None, "/metrics needs `Authorization: Bearer <token>`"),
        (
            Some("Bearer fleetmet_wrong".to_string()),
            "invalid /metrics token",
        ),
        (
            Some("Basic dXNlcjpwdw==".to_string()),
            "unsupported Authorization scheme `Basic`",
        ),
        (Some("Bearer".to_string()), "malformed Authorization header"),
        // An agent key is not a scrape token.
        (Some(format!("Bearer {API_KEY}")), "invalid /metrics token"),
    ] {
        let (status, body) = scrape(&url, auth.as_deref()).await;
        assert_eq!(status, 401, "{auth:?}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            v["error"].as_str().unwrap_or("").contains(needle),
            "{auth:?}: {body}"
        );
    }
    let (status, _) = scrape(&url, Some(&format!("Bearer {METRICS_TOKEN}"))).await;
    assert_eq!(status, 200);
    let (status, _) = scrape(&url, Some(&format!("Bearer {ADMIN_TOKEN}"))).await;
    assert_eq!(status, 200, "an admin token may scrape too");
    // The health check load balancers use stays open.
    let (status, _) =
        crate::support::node::get_json(&format!("{url}/api/fleet/cluster/health"), None).await;
    assert_eq!(status, 200);
}

#[test]
fn keys_new_mints_a_metrics_token_and_its_entry() {
    let (code, out, err) = fleetctl(&[
        "--output",
        "json",
        "keys",
        "new",
        "--kind",
        "metrics",
        "--name",
        "prometheus",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let key = v["key"].as_str().unwrap();
    assert!(key.starts_with("fleetmet_") && key.len() == 9 + 64, "{key}");
    assert_eq!(v["config_section"], "auth.metrics_tokens");
    assert_eq!(v["sha256"], sha256_hex(key));
    let (code, _, err) = fleetctl(&["keys", "new", "--kind", "scrape", "--name", "p"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("possible values: agent, admin, metrics"),
        "{err}"
    );
}
