//! `fleetctl cluster status --format nagios` as Nagios/Icinga run it, against real nodes on a
//! private Redis: the status line, performance data and exit code for a healthy, a degraded
//! and a down cluster, read from the backend and through a node's API, and UNKNOWN/CRITICAL
//! for bad thresholds, a bad config and an unreachable backend.

use std::time::{Duration, Instant};

use crate::cluster_nodes::Env;
use crate::support::node::{ADMIN_TOKEN, eventually, fleetctl};

fn check(env: &Env, extra: &[&str]) -> (i32, String, String) {
    let cfg = env.config.to_str().unwrap();
    let mut args = vec!["--config", cfg, "cluster", "status", "--format", "nagios"];
    args.extend_from_slice(extra);
    fleetctl(&args)
}

/// Wait until the plugin exits with `code`; returns its stdout.
async fn until_code(env: &Env, extra: &[&str], code: i32, what: &str) -> String {
    eventually(Duration::from_secs(15), what, || async {
        let (c, out, _) = check(env, extra);
        (c == code).then_some(out)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn healthy_degraded_down_with_thresholds() {
    let env = Env::new("redis");
    let mut nodes = env.start_nodes(3);
    env.wait_all_active(3, Duration::from_secs(10)).await;
    let thresholds = ["--warning", "3", "--critical", "1"];

    // Healthy: every node active, a leader.
    let out = until_code(&env, &thresholds, 0, "FLEET OK").await;
    let first = out.lines().next().unwrap();
    let leader = first
        .split(", leader ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap_or_else(|| panic!("no leader in {first:?}"));
    assert_eq!(
        first,
        format!(
            "FLEET OK - 3/3 nodes active, leader {leader} | active=3;3:;1:;0;3 draining=0;;;0;3 inactive=0;;;0;3 left=0;;;0;3 leader=1;;;0;1"
        )
    );
    // One detail line per node after the status line.
    assert_eq!(out.lines().count(), 4, "{out}");
    for i in 0..3 {
        assert!(out.contains(&format!("\nnode-{i} active")), "{out}");
    }
    // The same through a node's API (how a monitoring host without the config checks).
    let url = nodes[0].url();
    let (code, out, err) = fleetctl(&[
        "cluster",
        "status",
        "--format",
        "nagios",
        "--server",
        &url,
        "--token",
        ADMIN_TOKEN,
        "--warning",
        "3",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("FLEET OK - 3/3 nodes active"), "{out}");

    // Degraded: one node killed → WARNING once the registry calls it inactive.
    let killed = Instant::now();
    nodes[2].kill9();
    let out = until_code(&env, &thresholds, 1, "FLEET WARNING").await;
    println!(
        "[measure] nagios WARNING {:.1}s after kill -9",
        killed.elapsed().as_secs_f64()
    );
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with("FLEET WARNING - 2/3 nodes active (node-2 inactive), leader "),
        "{first}"
    );
    assert!(first.contains("| active=2;3:;1:;0;3 "), "{first}");
    assert!(first.contains(" inactive=1;;;0;3 "), "{first}");
    // Default thresholds: WARNING as soon as a known node is not active.
    let (code, out, _) = check(&env, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("| active=2;3:;1:;0;3 "), "{out}");
    // A looser warning threshold: OK again.
    let (code, out, _) = check(&env, &["--warning", "2:", "--critical", "1:"]);
    assert_eq!(code, 0, "{out}");
    // A stricter critical threshold: CRITICAL.
    let (code, out, _) = check(&env, &["--warning", "3", "--critical", "3"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.starts_with("FLEET CRITICAL - 2/3"), "{out}");

    // Down: no node active.
    nodes[0].kill9();
    nodes[1].kill9();
    // The leader lease outlives its holder by at most node_timeout.
    let out = eventually(
        Duration::from_secs(15),
        "CRITICAL with no leader",
        || async {
            let (c, out, _) = check(&env, &thresholds);
            (c == 2 && out.contains("no leader")).then_some(out)
        },
    )
    .await;
    let first = out.lines().next().unwrap();
    assert_eq!(
        first,
        "FLEET CRITICAL - 0/3 nodes active (node-0 inactive, node-1 inactive, node-2 inactive), no leader | active=0;3:;1:;0;3 draining=0;;;0;3 inactive=3;;;0;3 left=0;;;0;3 leader=0;;;0;1"
    );
    // Today's exit codes stay the default without --format.
    let (code, _) = env.status(&[]);
    assert_eq!(code, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_unknown_and_an_unreachable_backend_is_critical() {
    let mut env = Env::new("redis");

    for (flag, value, needle) in [
        ("--warning", "many", "--warning: `many` is not a threshold"),
        (
            "--critical",
            "3:1",
            "--critical: `3:1` is not a threshold: its start is above its end",
        ),
        (
            "--warning",
            "",
            "--warning: `` is not a threshold: it is empty",
        ),
    ] {
        let (code, out, _) = check(&env, &[flag, value]);
        assert_eq!(code, 3, "{flag} {value:?}: {out}");
        assert!(out.starts_with("FLEET UNKNOWN - "), "{out}");
        assert!(out.contains(needle), "{out}");
        assert_eq!(out.lines().count(), 1, "{out}");
    }

    // A broken config file: UNKNOWN naming file:line:column, on one line.
    let bad = env.config.with_file_name("bad.yaml");
    std::fs::write(&bad, "cluster:\n  heartbeat_intervall: 1\n").unwrap();
    let (code, out, _) = fleetctl(&[
        "--config",
        bad.to_str().unwrap(),
        "cluster",
        "status",
        "--format",
        "nagios",
    ]);
    assert_eq!(code, 3, "{out}");
    assert!(out.starts_with("FLEET UNKNOWN - invalid config"), "{out}");
    assert!(out.contains("bad.yaml:2:3"), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");

    // Thresholds without --format are a usage error (exit 2), as before.
    let (code, _, err) = fleetctl(&[
        "--config",
        env.config.to_str().unwrap(),
        "cluster",
        "status",
        "--warning",
        "2",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--format"), "{err}");

    // Backend down: CRITICAL, saying what could not be reached.
    env.redis.as_mut().unwrap().stop();
    let (code, out, _) = check(&env, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.starts_with("FLEET CRITICAL - cannot read the cluster registry: "),
        "{out}"
    );
    assert!(out.contains("127.0.0.1"), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");

    // A node that does not answer: CRITICAL too.
    let port = crate::support::free_port();
    let (code, out, _) = fleetctl(&[
        "cluster",
        "status",
        "--format",
        "nagios",
        "--server",
        &format!("http://127.0.0.1:{port}"),
        "--token",
        ADMIN_TOKEN,
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.starts_with("FLEET CRITICAL - cannot read the cluster registry"),
        "{out}"
    );
}
