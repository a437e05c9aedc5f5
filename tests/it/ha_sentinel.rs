//! Issue 10's promise that one Redis is no longer a single point of failure: three
//! `fleetctl serve` nodes on a Redis Sentinel group (master + replica + three sentinels, all
//! private, on loopback), a steady load of agent reports and session reads spread over the
//! nodes, and `kill -9` of the Redis master in the middle of it.
//!
//! Asserted: every node is healthy again, heartbeating on the promoted replica, within 15 s;
//! the session made before the failover works on every node after it; no report acknowledged
//! with 200 is missing afterwards (the data nodes run `appendfsync always` and the master
//! `min-replicas-to-write 1`; docs/cluster.md says what can be lost without them). The number
//! of failed requests is printed as an `[ha]` line for `scripts/ha-test`.
//!
//! Also here: a leader frozen with SIGSTOP for 2 × node_timeout and resumed never runs a leader
//! job in a lease window another node holds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, SET_COOKIE};
use reqwest::redirect::Policy;

use crate::ha::{outcome, sessions_lost};
use crate::support::load;
use crate::support::node::{ADMIN_TOKEN, Node, eventually, sha256_hex};
use crate::support::redis_ha::RedisHa;

const PASSWORD: &str = "sentinel-test-password";
const API_KEY: &str = "fleet_0000000000000000000000000000000000000000000000000000000000000002";

/// A config whose three Redis locations all go through the sentinels.
fn write_config(dir: &Path, ha: &RedisHa, heartbeat: &str, node_timeout: &str) -> PathBuf {
    let sentinels = ha
        .sentinel_addrs()
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let name = ha.master_name();
    let hash = fleetctl::credentials::hash_password(PASSWORD).unwrap();
    let redis_at = format!("{{ sentinels: [{sentinels}], master_name: {name} }}");
    let config = dir.join("fleet.yaml");
    std::fs::write(
        &config,
        format!(
            "server:\n  drain_timeout: 1\n\
             cluster:\n  enabled: true\n  backend: redis\n  heartbeat_interval: {heartbeat}\n  \
             node_timeout: {node_timeout}\n  redis_sentinels: [{sentinels}]\n  redis_master_name: {name}\n\
             sessions:\n  backend: redis\n  redis: {redis_at}\n\
             storage:\n  backend: redis\n  redis: {redis_at}\n\
             auth:\n  users:\n    - {{ username: admin, password_hash: \"{hash}\" }}\n  \
             api_keys:\n    - {{ name: sentinel, sha256: \"{key}\" }}\n  \
             admin_tokens:\n    - {{ name: tests, sha256: \"{token}\" }}\n",
            key = sha256_hex(API_KEY),
            token = sha256_hex(ADMIN_TOKEN),
        ),
    )
    .unwrap();
    config
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(64)
        .build()
        .unwrap()
}

async fn login(http: &reqwest::Client, node: &Node) -> String {
    let res = http
        .post(format!("{}/login", node.url()))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("username=admin&password={PASSWORD}"))
        .send()
        .await
        .expect("login request");
    assert_eq!(res.status().as_u16(), 303, "login answers 303");
    res.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

/// A report of a machine seen only once, so "acknowledged but missing" is exact.
fn unique_report(i: u64) -> (String, String) {
    let machine = format!("sentinel-m-{i:06}");
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let body = serde_json::json!({
        "machine_id": machine,
        "hostname": format!("{machine}.example.com"),
        "os": "Debian GNU/Linux 12", "kernel": "6.1.0", "agent_version": "0.1.0",
        "timestamp": now, "uptime_secs": 1000 + i,
        "cpu_percent": 12.5, "cpu_cores": 4, "load": [0.5, 0.4, 0.3],
        "memory": {"total_bytes": 8_000_000_000u64, "used_bytes": 2_000_000_000u64},
        "swap": {"total_bytes": 0, "used_bytes": 0},
        "disks": [{"mount": "/", "total_bytes": 100_000_000_000u64, "used_bytes": 40_000_000_000u64}],
        "network": {"rx_bytes": i * 1000, "tx_bytes": i * 500}
    })
    .to_string();
    (machine, body)
}

async fn healthy(http: &reqwest::Client, node: &Node) -> bool {
    http.get(format!("{}/api/fleet/cluster/health", node.url()))
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .is_ok_and(|r| r.status().as_u16() == 200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha_sentinel_master_killed_under_load() {
    let mut ha = RedisHa::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &ha, "1", "3");
    let nodes: Vec<Node> = (0..3)
        .map(|i| Node::start(&config, &format!("sentinel-{i}")))
        .collect();
    let http = http();
    for n in &nodes {
        eventually(Duration::from_secs(15), "every node healthy", || async {
            healthy(&http, n).await.then_some(())
        })
        .await;
    }
    let cookie = Arc::new(login(&http, &nodes[0]).await);

    // The load: even requests read the session (GET /api/session), odd ones report a new
    // machine; both round-robin over the three nodes.
    let urls: Arc<Vec<String>> = Arc::new(nodes.iter().map(Node::url).collect());
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let t0 = Instant::now();
    let load = {
        let (http, urls, cookie, acked) =
            (http.clone(), urls.clone(), cookie.clone(), acked.clone());
        tokio::spawn(load::run(100, Duration::from_secs(16), 128, move |i| {
            let (http, urls, cookie, acked) =
                (http.clone(), urls.clone(), cookie.clone(), acked.clone());
            async move {
                let base = &urls[(i as usize / 2) % urls.len()];
                if i % 2 == 0 {
                    let r = http
                        .get(format!("{base}/api/session"))
                        .header(COOKIE, cookie.as_str())
                        .send()
                        .await;
                    ("GET", outcome(r).await)
                } else {
                    let (machine, body) = unique_report(i);
                    let r = http
                        .post(format!("{base}/api/fleet/report"))
                        .header(AUTHORIZATION, format!("Bearer {API_KEY}"))
                        .header(CONTENT_TYPE, "application/json")
                        .body(body)
                        .send()
                        .await;
                    let result = outcome(r).await;
                    if result.is_ok() {
                        acked.lock().unwrap().push(machine);
                    }
                    ("POST", result)
                }
            }
        }))
    };

    tokio::time::sleep(Duration::from_secs(4)).await;
    let killed_at = t0.elapsed();
    let killed_at_instant = Instant::now();
    let old_master = ha.kill_master();
    let new_master = tokio::task::block_in_place(|| ha.wait_for_failover(Duration::from_secs(15)));
    let promoted_at = t0.elapsed();
    // Healthy *on the promoted replica*: every node's heartbeat lands there after the kill.
    let data = ha.data_access();
    // Heartbeats written after this instant (the promoted replica's own clock) can only
    // have been written to it.
    let promoted_ms = tokio::task::block_in_place(|| {
        data.query::<(i64, i64)>(new_master, &redis::cmd("TIME"))
            .map(|(s, us)| s * 1000 + us / 1000)
            .expect("TIME on the promoted replica")
    });
    let deadline = killed_at_instant + Duration::from_secs(15);
    let (all_healthy_at, heartbeats) = loop {
        let mut health = Vec::new();
        for n in &nodes {
            health.push(healthy(&http, n).await);
        }
        let beats = tokio::task::block_in_place(|| node_heartbeats(&data, new_master));
        let now_ms = tokio::task::block_in_place(|| {
            data.query::<(i64, i64)>(new_master, &redis::cmd("TIME"))
                .map(|(s, us)| s * 1000 + us / 1000)
                .unwrap_or(0)
        });
        let fresh = beats.len() == 3 && beats.values().all(|b| *b > promoted_ms);
        if health.iter().all(|h| *h) && fresh {
            break (t0.elapsed(), beats);
        }
        if Instant::now() >= deadline {
            let logs: Vec<String> = nodes
                .iter()
                .map(|n| {
                    let text = n.log_text();
                    let tail: Vec<&str> = text.lines().rev().take(25).collect();
                    format!(
                        "== {}\n{}",
                        n.node_id,
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    )
                })
                .collect();
            panic!(
                "nodes not healthy on the promoted replica {new_master} within 15 s of the kill: \
                 health {health:?}, heartbeats {beats:?} (promoted at {promoted_ms}, now {now_ms})\n{}\n{}",
                logs.join("\n"),
                ha.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let recovery = all_healthy_at.saturating_sub(killed_at);
    let report = load.await.unwrap();

    // After the failover, the session made before it works on every node.
    for n in &nodes {
        let r = http
            .get(format!("{}/api/session", n.url()))
            .header(COOKIE, cookie.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            200,
            "session on {} after failover",
            n.node_id
        );
    }
    // No acknowledged report is missing on the promoted replica.
    let stored: BTreeSet<String> = tokio::task::block_in_place(|| {
        let mut conn = data.connect(new_master).expect("connect to the new master");
        redis::cmd("SELECT").arg(2).query::<()>(&mut conn).unwrap();
        redis::cmd("ZRANGE")
            .arg("{fleet}:m:@index")
            .arg(0)
            .arg(-1)
            .query::<Vec<String>>(&mut conn)
            .unwrap()
            .into_iter()
            .collect()
    });
    let acked = acked.lock().unwrap().clone();
    let missing: Vec<&String> = acked.iter().filter(|m| !stored.contains(*m)).collect();

    let failed = report.failed();
    eprintln!(
        "[ha] scenario=sentinel-failover lb=none requests={} rate={:.0}/s get_failed={} post_failed={} sessions_lost={} p50_ms={:.1} p99_ms={:.1} failover_s={:.2} all_nodes_healthy_after_kill_s={:.2} acked_reports={} acked_missing={} old_master={old_master} new_master={new_master}",
        report.outcomes.len(),
        report.rate(),
        report.failures("GET").len(),
        report.failures("POST").len(),
        sessions_lost(&report),
        report.percentile(0.5).as_secs_f64() * 1000.0,
        report.percentile(0.99).as_secs_f64() * 1000.0,
        (promoted_at - killed_at).as_secs_f64(),
        recovery.as_secs_f64(),
        acked.len(),
        missing.len(),
    );
    if failed > 0 {
        eprintln!("[ha] first failures:\n{}", report.describe_failures(10));
    }
    eprintln!("[ha] heartbeats on the new master: {heartbeats:?}");
    assert!(
        recovery <= Duration::from_secs(15),
        "nodes took {recovery:?} to be healthy on the promoted replica"
    );
    assert!(
        missing.is_empty(),
        "acknowledged reports missing after the failover: {missing:?}"
    );
    assert_eq!(
        sessions_lost(&report),
        0,
        "no session is lost in a failover"
    );
    // Requests fail only around the failover, never long after it.
    let settle = all_healthy_at + Duration::from_secs(2);
    let late: Vec<_> = report
        .outcomes
        .iter()
        .filter(|o| o.at > settle && o.result.is_err())
        .collect();
    assert!(late.is_empty(), "failures after recovery: {late:?}");
}

/// `node_id → last_heartbeat` as the registry on `port` holds it.
fn node_heartbeats(
    data: &crate::support::redis_server::Access,
    port: u16,
) -> BTreeMap<String, i64> {
    let Ok(mut conn) = data.connect(port) else {
        return BTreeMap::new();
    };
    let ids: Vec<String> = redis::cmd("SMEMBERS")
        .arg("{fleet}:nodes")
        .query(&mut conn)
        .unwrap_or_default();
    ids.into_iter()
        .filter_map(|id| {
            let json: String = redis::cmd("GET")
                .arg(format!("{{fleet}}:node:{id}"))
                .query(&mut conn)
                .ok()?;
            let v: serde_json::Value = serde_json::from_str(&json).ok()?;
            Some((id, v["last_heartbeat"].as_i64()?))
        })
        .collect()
}

/// One line of the `fleetctl::leader_jobs` log.
#[derive(Debug, Clone)]
struct JobEvent {
    node: String,
    at: time::OffsetDateTime,
    /// `started`, `finished`, `stopped` (lease ended or timed out) or `failed`.
    what: &'static str,
    job: String,
    epoch: i64,
}

fn job_events(node: &Node) -> Vec<JobEvent> {
    let field = |line: &str, name: &str| -> Option<String> {
        let start = line.find(&format!(" {name}="))? + name.len() + 2;
        let rest = &line[start..];
        let end = rest.find(' ').unwrap_or(rest.len());
        Some(rest[..end].trim_matches('"').to_string())
    };
    node.log_text()
        .lines()
        .filter(|l| l.contains("fleetctl::leader_jobs"))
        .filter_map(|l| {
            let what = if l.contains("leader job started") {
                "started"
            } else if l.contains("leader job finished") {
                "finished"
            } else if l.contains("leader job stopped") {
                "stopped"
            } else if l.contains("leader job failed") {
                "failed"
            } else {
                return None;
            };
            let at = time::OffsetDateTime::parse(
                l.split_whitespace().next()?,
                &time::format_description::well_known::Rfc3339,
            )
            .ok()?;
            Some(JobEvent {
                node: node.node_id.clone(),
                at,
                what,
                job: field(l, "job")?,
                epoch: field(l, "epoch")?.parse().ok()?,
            })
        })
        .collect()
}

async fn leader_of(http: &reqwest::Client, node: &Node) -> Option<String> {
    let r = http
        .get(format!("{}/api/fleet/cluster/status", node.url()))
        .header(AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
        .send()
        .await
        .ok()?;
    let v: serde_json::Value = r.json().await.ok()?;
    v["leader"].as_str().map(String::from)
}

/// SIGSTOP the leader for 2 × node_timeout, then SIGCONT: another node takes the lease, and
/// no two nodes ever run a leader job in the same lease window. Every job run is logged with
/// its node and lease epoch; the test reads those logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ha_sentinel_frozen_leader_runs_no_job_in_another_lease() {
    let ha = RedisHa::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &ha, "500ms", "2");
    let node_timeout = Duration::from_secs(2);
    let mut nodes: Vec<Node> = (0..3)
        .map(|i| {
            Node::start_logging(
                &config,
                &format!("frozen-{i}"),
                "info,fleetctl::leader_jobs=debug",
            )
        })
        .collect();
    let http = http();
    // Warm-up: no node runs jobs in its first node_timeout.
    let leader = eventually(Duration::from_secs(15), "a leader running jobs", || async {
        let leader = leader_of(&http, &nodes[0]).await?;
        let n = nodes.iter().find(|n| n.node_id == leader)?;
        job_events(n)
            .iter()
            .any(|e| e.what == "finished")
            .then_some(leader)
    })
    .await;
    let frozen = nodes.iter().position(|n| n.node_id == leader).unwrap();
    let others: Vec<usize> = (0..3).filter(|i| *i != frozen).collect();

    let stopped_at = time::OffsetDateTime::now_utc();
    nodes[frozen].signal("STOP");
    tokio::time::sleep(node_timeout * 2).await;
    let new_leader = leader_of(&http, &nodes[others[0]]).await;
    let resumed_at = time::OffsetDateTime::now_utc();
    nodes[frozen].signal("CONT");
    // Let the resumed node notice and the new leader run a few more rounds.
    tokio::time::sleep(node_timeout * 2).await;
    let after = leader_of(&http, &nodes[others[0]]).await;

    let mut events: Vec<JobEvent> = nodes.iter().flat_map(job_events).collect();
    events.sort_by_key(|e| e.at);
    let summary: BTreeMap<(String, i64), usize> =
        events.iter().fold(BTreeMap::new(), |mut m, e| {
            *m.entry((e.node.clone(), e.epoch)).or_default() += 1;
            m
        });
    eprintln!(
        "[ha] scenario=sigstop-leader lb=none frozen={leader} new_leader={} leader_after_resume={} job_events={} tenures={}",
        new_leader.as_deref().unwrap_or("none"),
        after.as_deref().unwrap_or("none"),
        events.len(),
        summary.len(),
    );
    eprintln!("[ha] job-log events per (node, epoch): {summary:?}");
    for n in &mut nodes {
        // Stopped processes must be resumed before they can be killed cleanly.
        n.signal("CONT");
    }

    // 1. Someone else took over while the leader was frozen, and kept the lease after.
    let new_leader = new_leader.expect("a leader while the old one was frozen");
    assert_ne!(
        new_leader, leader,
        "the lease moved while {leader} was frozen"
    );
    assert_eq!(
        after.as_deref(),
        Some(new_leader.as_str()),
        "the resumed node did not take the lease back"
    );
    // 2. An epoch is one node's tenure.
    let mut owner: BTreeMap<i64, &str> = BTreeMap::new();
    for e in &events {
        let first = *owner.entry(e.epoch).or_insert(&e.node);
        assert_eq!(
            first, e.node,
            "epoch {} used by {} and {}",
            e.epoch, first, e.node
        );
    }
    // 3. The frozen node finished nothing under its old lease after it was resumed: a run it
    //    had in flight was fenced off ("stopped"), and it started none.
    let late: Vec<&JobEvent> = events
        .iter()
        .filter(|e| {
            e.node == leader && e.at > resumed_at && matches!(e.what, "started" | "finished")
        })
        .collect();
    assert!(late.is_empty(), "the resumed ex-leader ran jobs: {late:#?}");
    // 4. Completed runs of different nodes never overlap in time.
    let mut runs: Vec<(time::OffsetDateTime, time::OffsetDateTime, String)> = Vec::new();
    let mut open: BTreeMap<(String, String), time::OffsetDateTime> = BTreeMap::new();
    for e in &events {
        let key = (e.node.clone(), e.job.clone());
        match e.what {
            "started" => {
                open.insert(key, e.at);
            }
            "finished" => {
                if let Some(start) = open.remove(&key) {
                    runs.push((start, e.at, e.node.clone()));
                }
            }
            _ => {
                open.remove(&key);
            }
        }
    }
    for (i, a) in runs.iter().enumerate() {
        for b in &runs[i + 1..] {
            if a.2 != b.2 {
                assert!(
                    a.1 <= b.0 || b.1 <= a.0,
                    "job runs overlap: {} {:?}..{:?} and {} {:?}..{:?}",
                    a.2,
                    a.0,
                    a.1,
                    b.2,
                    b.0,
                    b.1
                );
            }
        }
    }
    // 5. The new leader's jobs ran during the freeze (the lease window it held).
    assert!(
        events.iter().any(|e| e.node == new_leader
            && e.what == "finished"
            && e.at > stopped_at
            && e.at < resumed_at),
        "the new leader ran no job while the old one was frozen"
    );
}
