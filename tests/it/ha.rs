//! Issue 7's promises, each a test with real parts: three `fleetctl serve` nodes on a
//! persistent private Redis, behind real HAProxy or nginx configured by `fleetctl lb gen-*`,
//! under a bounded, steady load of session GETs and agent-report POSTs.
//!
//! Each test prints `[ha] key=value` lines; `scripts/ha-test` collects them into
//! docs/ha-test-results.md. Targets asserted here: no GET fails when a node is killed
//! (redispatch), no request fails and no session is lost in a rolling restart, and after a
//! Redis restart errors stay inside the outage window.
//!
//! These tests run one at a time (`.config/nextest.toml`, group `ha`): they measure.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, SET_COOKIE};
use reqwest::redirect::Policy;

use crate::support::lb::{LbProcess, wait_port};
use crate::support::load::{self, Report};
use crate::support::node::{ADMIN_TOKEN, Node, eventually, fleetctl, sha256_hex};
use crate::support::postgres::PgServer;
use crate::support::{RedisServer, free_port, require_binary};

const PASSWORD: &str = "ha-test-password";
const API_KEY: &str = "fleet_0000000000000000000000000000000000000000000000000000000000000001";
const HEARTBEAT_SECS: u64 = 1;
const NODE_TIMEOUT_SECS: u64 = 3;
/// Longer than the LB needs to notice a failing health check (inter 500 ms × fall 2).
const DRAIN_SECS: u64 = 2;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lb {
    Haproxy,
    Nginx,
}

impl Lb {
    fn name(self) -> &'static str {
        match self {
            Lb::Haproxy => "haproxy",
            Lb::Nginx => "nginx",
        }
    }
}

/// Where the three nodes keep their registry, sessions and fleet data.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shared {
    Redis,
    Postgres,
}

impl Shared {
    /// The scenario's name in `[ha]` lines: Redis runs keep their historical names.
    fn scenario(self, name: &'static str) -> &'static str {
        match (self, name) {
            (Shared::Redis, _) => name,
            (Shared::Postgres, "kill") => "kill-postgres",
            (Shared::Postgres, "rolling-restart") => "rolling-restart-postgres",
            (Shared::Postgres, other) => other,
        }
    }
}

struct HaCluster {
    /// Config, LB runtime files and logs; removed when the test ends.
    _dir: tempfile::TempDir,
    redis: Option<RedisServer>,
    pg: Option<PgServer>,
    config: PathBuf,
    nodes: Vec<Node>,
    lb: LbProcess,
    lb_kind: Lb,
    base: String,
    http: reqwest::Client,
}

impl HaCluster {
    async fn start(lb_kind: Lb) -> HaCluster {
        Self::start_on(lb_kind, Shared::Redis).await
    }

    async fn start_on(lb_kind: Lb, shared: Shared) -> HaCluster {
        let dir = tempfile::tempdir().unwrap();
        {
            // nginx workers run as `nobody` when tests run as root: let them in.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let (redis, pg) = match shared {
            Shared::Redis => (Some(RedisServer::start_persistent()), None),
            Shared::Postgres => (None, Some(PgServer::start())),
        };
        let config = dir.path().join("fleet.yaml");
        let hash = fleetctl::credentials::hash_password(PASSWORD).unwrap();
        let stores = match (&redis, &pg) {
            (Some(redis), _) => {
                let redis_at = format!("{{ host: 127.0.0.1, port: {} }}", redis.port);
                format!(
                    "cluster:\n  enabled: true\n  backend: redis\n  heartbeat_interval: {HEARTBEAT_SECS}\n  \
                     node_timeout: {NODE_TIMEOUT_SECS}\n  redis_host: 127.0.0.1\n  redis_port: {port}\n\
                     sessions:\n  backend: redis\n  redis: {redis_at}\n\
                     storage:\n  backend: redis\n  redis: {redis_at}\n",
                    port = redis.port
                )
            }
            (None, Some(pg)) => format!(
                "cluster:\n  enabled: true\n  backend: postgres\n  heartbeat_interval: {HEARTBEAT_SECS}\n  \
                 node_timeout: {NODE_TIMEOUT_SECS}\n{pg_cfg}\
                 sessions:\n  backend: postgres\n{pg_cfg}\
                 storage:\n  backend: postgres\n{pg_cfg}",
                pg_cfg = pg.yaml(2)
            ),
            (None, None) => unreachable!(),
        };
        std::fs::write(
            &config,
            format!(
                "server:\n  drain_timeout: {DRAIN_SECS}\n{stores}\
                 auth:\n  users:\n    - {{ username: admin, password_hash: \"{hash}\" }}\n  \
                 api_keys:\n    - {{ name: ha, sha256: \"{key}\" }}\n  \
                 admin_tokens:\n    - {{ name: tests, sha256: \"{token}\" }}\n",
                key = sha256_hex(API_KEY),
                token = sha256_hex(ADMIN_TOKEN),
            ),
        )
        .unwrap();
        let nodes: Vec<Node> = (0..3)
            .map(|i| Node::start(&config, &format!("ha-{i}")))
            .collect();

        let lb_port = free_port();
        let run_dir = dir.path().join(lb_kind.name());
        std::fs::create_dir(&run_dir).unwrap();
        let (sub, file) = match lb_kind {
            Lb::Haproxy => ("gen-haproxy", run_dir.join("haproxy.cfg")),
            Lb::Nginx => ("gen-nginx", run_dir.join("nginx.conf")),
        };
        let mut args: Vec<String> = vec!["lb".into(), sub.into()];
        for n in &nodes {
            args.extend(["--node".into(), format!("127.0.0.1:{}", n.port)]);
        }
        args.extend(
            [
                "--bind",
                &format!("127.0.0.1:{lb_port}"),
                "--check-interval",
                "500ms",
                "--fall",
                "2",
                "--rise",
                "1",
                "--runtime-dir",
                run_dir.to_str().unwrap(),
                "--check",
                "-o",
                file.to_str().unwrap(),
            ]
            .map(String::from),
        );
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, err) = fleetctl(&argv);
        assert_eq!(code, 0, "fleetctl lb {sub} failed: {err}");

        let (cmd, log) = match lb_kind {
            Lb::Haproxy => {
                let mut c = Command::new(require_binary("haproxy", "haproxy"));
                c.arg("-db").arg("-f").arg(&file);
                (c, run_dir.join("haproxy.log"))
            }
            Lb::Nginx => {
                let mut c = Command::new(require_binary("nginx", "nginx"));
                c.args(["-e", "stderr", "-g", "daemon off;", "-c"])
                    .arg(&file)
                    .arg("-p")
                    .arg(&run_dir);
                (c, run_dir.join("nginx.out"))
            }
        };
        let lb = LbProcess::spawn(lb_kind.name(), cmd, log);
        wait_port(lb_port, lb_kind.name(), || lb.log_text());
        let http = reqwest::Client::builder()
            .redirect(Policy::none())
            .timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(64)
            .build()
            .unwrap();
        let ha = HaCluster {
            _dir: dir,
            redis,
            pg,
            config,
            nodes,
            lb,
            lb_kind,
            base: format!("http://127.0.0.1:{lb_port}"),
            http,
        };
        ha.wait_active(3).await;
        // Every node takes traffic through the LB before the test starts.
        eventually(
            Duration::from_secs(10),
            "the LB to reach every node",
            || async {
                let mut seen = std::collections::BTreeSet::new();
                for _ in 0..30 {
                    if let Ok(r) = ha
                        .http
                        .get(format!("{}/api/fleet/cluster/health", ha.base))
                        .send()
                        .await
                        && let Some(n) = r.headers().get("x-fleet-node")
                    {
                        seen.insert(n.to_str().unwrap_or("").to_string());
                    }
                }
                (seen.len() == 3).then_some(())
            },
        )
        .await;
        ha
    }

    async fn wait_active(&self, n: u64) {
        let cfg = self.config.to_str().unwrap().to_string();
        eventually(
            Duration::from_secs(15),
            &format!("{n} active nodes"),
            || {
                let cfg = cfg.clone();
                async move {
                    let (_, out, _) =
                        fleetctl(&["--config", &cfg, "--output", "json", "cluster", "status"]);
                    let s: serde_json::Value = serde_json::from_str(&out).ok()?;
                    (s["active_nodes"] == n).then_some(())
                }
            },
        )
        .await;
    }

    fn node_state(&self, id: &str) -> Option<String> {
        let (_, out, _) = fleetctl(&[
            "--config",
            self.config.to_str().unwrap(),
            "--output",
            "json",
            "cluster",
            "status",
        ]);
        let s: serde_json::Value = serde_json::from_str(&out).ok()?;
        s["nodes"].as_array()?.iter().find(|n| n["node_id"] == id)?["status"]
            .as_str()
            .map(String::from)
    }

    /// Log in through the LB: (cookie header value, node that served the login).
    async fn login(&self) -> (String, String) {
        let res = self
            .http
            .post(format!("{}/login", self.base))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!("username=admin&password={PASSWORD}"))
            .send()
            .await
            .expect("login request");
        assert_eq!(
            res.status().as_u16(),
            303,
            "login answers 303 to /dashboard"
        );
        let node = res.headers()["x-fleet-node"].to_str().unwrap().to_string();
        let cookie = res.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        (cookie, node)
    }

    /// Start the mixed load in the background: even requests read the fleet summary with the
    /// session cookie, odd ones are agent reports. A 401 on a GET means the session was lost.
    fn load(&self, cookie: &str, rate: u32, duration: Duration) -> tokio::task::JoinHandle<Report> {
        let (http, base, cookie) = (
            self.http.clone(),
            self.base.clone(),
            Arc::new(cookie.to_string()),
        );
        tokio::spawn(load::run(rate, duration, 256, move |i| {
            let (http, base, cookie) = (http.clone(), base.clone(), cookie.clone());
            async move {
                if i % 2 == 0 {
                    let r = http
                        .get(format!("{base}/api/fleet/summary"))
                        .header(COOKIE, cookie.as_str())
                        .send()
                        .await;
                    ("GET", outcome(r).await)
                } else {
                    let r = http
                        .post(format!("{base}/api/fleet/report"))
                        .header(AUTHORIZATION, format!("Bearer {API_KEY}"))
                        .header(CONTENT_TYPE, "application/json")
                        .body(report_body(i))
                        .send()
                        .await;
                    ("POST", outcome(r).await)
                }
            }
        }))
    }

    fn node_index(&self, id: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.node_id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }
}

pub(crate) async fn outcome(r: reqwest::Result<reqwest::Response>) -> Result<(), String> {
    match r {
        Ok(r) if r.status().is_success() => {
            // Read the body: a response cut off half-way is a failure too.
            r.bytes()
                .await
                .map(|_| ())
                .map_err(|e| format!("body: {e}"))
        }
        Ok(r) => {
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            Err(format!(
                "{status} {}",
                body.chars().take(120).collect::<String>()
            ))
        }
        Err(e) => Err(format!("transport: {e}")),
    }
}

fn report_body(i: u64) -> String {
    let machine = i % 50;
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    serde_json::json!({
        "machine_id": format!("ha-machine-{machine:02}"),
        "hostname": format!("ha-{machine:02}.example.com"),
        "os": "Debian GNU/Linux 12", "kernel": "6.1.0", "agent_version": "0.1.0",
        "timestamp": now, "uptime_secs": 1000 + i,
        "cpu_percent": (i % 100) as f64 * 0.9, "cpu_cores": 4, "load": [0.5, 0.4, 0.3],
        "memory": {"total_bytes": 8_000_000_000u64, "used_bytes": 2_000_000_000u64},
        "swap": {"total_bytes": 0, "used_bytes": 0},
        "disks": [{"mount": "/", "total_bytes": 100_000_000_000u64, "used_bytes": 40_000_000_000u64}],
        "network": {"rx_bytes": i * 1000, "tx_bytes": i * 500}
    })
    .to_string()
}

pub(crate) fn sessions_lost(r: &Report) -> usize {
    r.failures("GET")
        .iter()
        .filter(|o| {
            o.result
                .as_ref()
                .err()
                .is_some_and(|e| e.starts_with("401"))
        })
        .count()
}

fn print_results(scenario: &str, lb: Lb, r: &Report, extra: &[(&str, String)]) {
    let mut line = format!(
        "[ha] scenario={scenario} lb={} requests={} rate={:.0}/s get_failed={} post_failed={} sessions_lost={} p50_ms={:.1} p99_ms={:.1}",
        lb.name(),
        r.outcomes.len(),
        r.rate(),
        r.failures("GET").len(),
        r.failures("POST").len(),
        sessions_lost(r),
        r.percentile(0.5).as_secs_f64() * 1000.0,
        r.percentile(0.99).as_secs_f64() * 1000.0,
    );
    for (k, v) in extra {
        line.push_str(&format!(" {k}={v}"));
    }
    eprintln!("{line}");
    if r.failed() > 0 {
        eprintln!("[ha] first failures:\n{}", r.describe_failures(10));
    }
}

/// Seconds from `since` until the LB logged that it took `node` out (HAProxy only: nginx OSS
/// has no active checks and only notices a dead node on the next request to it).
async fn lb_detection(ha: &HaCluster, port: u16, since: Instant) -> String {
    if ha.lb_kind == Lb::Nginx {
        return "passive".into();
    }
    // `lb gen-haproxy --node 127.0.0.1:PORT` names the server `127.0.0.1_PORT`.
    let needle = format!("fleet_nodes/127.0.0.1_{port} is DOWN");
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while !ha.lb.log_text().contains(&needle) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    match found {
        Ok(()) => format!("{:.2}s", since.elapsed().as_secs_f64()),
        Err(_) => "not-seen".into(),
    }
}

async fn kill_one_node_under_load(lb: Lb) {
    kill_one_node_on(lb, Shared::Redis).await
}

async fn kill_one_node_on(lb: Lb, shared: Shared) {
    let mut ha = HaCluster::start_on(lb, shared).await;
    let (cookie, served_by) = ha.login().await;
    let victim = ha.node_index(&served_by);
    let load = ha.load(&cookie, 200, Duration::from_secs(20));
    tokio::time::sleep(Duration::from_secs(5)).await;

    // kill -9 the node that served the login.
    ha.nodes[victim].kill9();
    let killed = Instant::now();
    let registry = async {
        eventually(
            Duration::from_secs(NODE_TIMEOUT_SECS + HEARTBEAT_SECS + 3),
            "the killed node to turn inactive",
            || async { (ha.node_state(&served_by).as_deref() == Some("inactive")).then_some(()) },
        )
        .await;
        killed.elapsed()
    };
    let (lb_detect, registry_detect) =
        tokio::join!(lb_detection(&ha, ha.nodes[victim].port, killed), registry);

    let report = load.await.unwrap();
    print_results(
        shared.scenario("kill"),
        lb,
        &report,
        &[
            ("lb_detect", lb_detect),
            (
                "registry_detect",
                format!("{:.2}s", registry_detect.as_secs_f64()),
            ),
        ],
    );
    // Not a speed target (those live in scripts/bench): only proof that the load kept
    // running through the whole scenario, so "0 failed requests" means something.
    assert!(
        report.rate() > 50.0,
        "the load stalled: {:.0}/s",
        report.rate()
    );
    assert!(
        report.failures("GET").is_empty(),
        "GETs must survive a node kill (redispatch):\n{}",
        report.describe_failures(10)
    );
    assert_eq!(sessions_lost(&report), 0);
    // The cookie from the dead node's login still works afterwards.
    let res = ha
        .http
        .get(format!("{}/api/fleet/summary", ha.base))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
}

async fn rolling_restart_under_load(lb: Lb) {
    rolling_restart_on(lb, Shared::Redis).await
}

async fn rolling_restart_on(lb: Lb, shared: Shared) {
    let mut ha = HaCluster::start_on(lb, shared).await;
    let (cookie, _) = ha.login().await;
    let started = Instant::now();
    // Long enough for three drains, restarts and health-check rises.
    let load = ha.load(&cookie, 500, Duration::from_secs(18));
    tokio::time::sleep(Duration::from_secs(2)).await;
    for i in 0..ha.nodes.len() {
        ha.nodes[i].signal("TERM");
        let status = ha.nodes[i].wait_exit(Duration::from_secs(DRAIN_SECS + 10));
        assert!(
            status.success(),
            "node {i} exits 0 after draining, got {status}"
        );
        ha.nodes[i].restart();
        ha.wait_active(3).await;
        // Let the LB's health check see it up again (rise 1 × inter 500 ms) before the next.
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    let restart_took = started.elapsed();
    let report = load.await.unwrap();
    print_results(
        shared.scenario("rolling-restart"),
        lb,
        &report,
        &[(
            "restart_took",
            format!("{:.1}s", restart_took.as_secs_f64()),
        )],
    );
    // Not a speed target (those live in scripts/bench): only proof that the load kept
    // running through the whole scenario, so "0 failed requests" means something.
    assert!(
        report.rate() > 50.0,
        "the load stalled: {:.0}/s",
        report.rate()
    );
    assert_eq!(sessions_lost(&report), 0, "no session may be lost");
    match lb {
        // HAProxy's active check takes a draining node out before it stops listening.
        Lb::Haproxy => assert_eq!(
            report.failed(),
            0,
            "a rolling restart drops no request:\n{}",
            report.describe_failures(20)
        ),
        // nginx OSS has no active checks: it keeps sending to a draining node until the node
        // closes its listener, and a POST already sent on a connection the node closes at
        // that instant is not retried (non-idempotent). GETs are retried; agents resend
        // failed reports. So: no GET may fail; POST failures are reported, not asserted.
        Lb::Nginx => assert!(
            report.failures("GET").is_empty(),
            "no GET may fail:\n{}",
            report.describe_failures(20)
        ),
    }
}

async fn redis_restart_under_load(lb: Lb) {
    let mut ha = HaCluster::start(lb).await;
    let (cookie, _) = ha.login().await;
    let t0 = Instant::now();
    let load = ha.load(&cookie, 200, Duration::from_secs(16));
    tokio::time::sleep(Duration::from_secs(4)).await;
    let down_at = t0.elapsed();
    let redis = ha.redis.as_mut().unwrap();
    redis.stop();
    tokio::time::sleep(Duration::from_secs(3)).await;
    redis.restart();
    let up_at = t0.elapsed();
    ha.wait_active(3).await;
    let recovered_at = t0.elapsed();
    let report = load.await.unwrap();
    // After recovery (plus the LB's rise), every request succeeds again.
    let settle = recovered_at + Duration::from_secs(2);
    let late: Vec<_> = report
        .outcomes
        .iter()
        .filter(|o| o.at > settle && o.result.is_err())
        .collect();
    // The load's clock starts a few ms after t0: allow that much slack at the edge.
    let early: Vec<_> = report
        .outcomes
        .iter()
        .filter(|o| o.at + Duration::from_millis(200) < down_at && o.result.is_err())
        .collect();
    let last_failure = report
        .outcomes
        .iter()
        .filter(|o| o.result.is_err())
        .map(|o| o.at)
        .max();
    print_results(
        "redis-restart",
        lb,
        &report,
        &[
            ("outage", format!("{:.1}s", (up_at - down_at).as_secs_f64())),
            (
                "registry_recovered_after",
                format!("{:.2}s", (recovered_at - up_at).as_secs_f64()),
            ),
            (
                "last_failure_after_redis_up",
                last_failure.map_or("none".into(), |t| {
                    format!("{:.2}s", t.saturating_sub(up_at).as_secs_f64())
                }),
            ),
        ],
    );
    assert!(early.is_empty(), "failures before the outage: {early:?}");
    assert!(late.is_empty(), "failures after recovery: {late:?}");
    assert_eq!(
        sessions_lost(&report),
        0,
        "a persistent Redis keeps sessions through a restart"
    );
}

/// PostgreSQL stopped (immediate shutdown, as a crash) for 3 s under load and started again:
/// no panic, health 503 on every node while it is down, every request succeeds again within
/// 5 s of its return, and every report a node acknowledged is in the database afterwards.
async fn postgres_restart_under_load(lb: Lb) {
    let mut ha = HaCluster::start_on(lb, Shared::Postgres).await;
    let (cookie, _) = ha.login().await;
    let t0 = Instant::now();
    let load = ha.load(&cookie, 200, Duration::from_secs(16));
    tokio::time::sleep(Duration::from_secs(4)).await;
    let down_at = t0.elapsed();
    ha.pg.as_mut().unwrap().stop();
    // Every node's health check turns 503 while the database is down.
    let ports: Vec<u16> = ha.nodes.iter().map(|n| n.port).collect();
    let http = ha.http.clone();
    eventually(
        Duration::from_secs(6),
        "every node's health check to answer 503 while PostgreSQL is down",
        || {
            let (http, ports) = (http.clone(), ports.clone());
            async move {
                for port in ports {
                    let r = http
                        .get(format!("http://127.0.0.1:{port}/api/fleet/cluster/health"))
                        .send()
                        .await
                        .ok()?;
                    if r.status().as_u16() != 503 {
                        return None;
                    }
                }
                Some(())
            }
        },
    )
    .await;
    let unhealthy_after = t0.elapsed() - down_at;
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(unhealthy_after)).await;
    ha.pg.as_mut().unwrap().start_again();
    let up_at = t0.elapsed();
    ha.wait_active(3).await;
    let recovered_at = t0.elapsed();
    let report = load.await.unwrap();
    // A request still in flight when the database goes down may fail with it: only one that
    // completed (with its error) before the outage began is a failure outside the window.
    let early: Vec<_> = report
        .outcomes
        .iter()
        .filter(|o| o.at + o.latency + Duration::from_millis(200) < down_at && o.result.is_err())
        .collect();
    let last_failure = report
        .outcomes
        .iter()
        .filter(|o| o.result.is_err())
        .map(|o| o.at + o.latency)
        .max();
    let acknowledged = report.total("POST") - report.failures("POST").len();
    // Every recorded report is one sample in the 1-minute tier (the run fits in its
    // retention and bounds), so the sum of samples counts recorded reports.
    let recorded: u64 = ha
        .pg
        .as_ref()
        .unwrap()
        .psql("SELECT coalesce(sum(n), 0) FROM fleet_history WHERE tier = 1")
        .parse()
        .unwrap();
    print_results(
        "postgres-restart",
        lb,
        &report,
        &[
            ("outage", format!("{:.1}s", (up_at - down_at).as_secs_f64())),
            (
                "unhealthy_after",
                format!("{:.2}s", unhealthy_after.as_secs_f64()),
            ),
            (
                "registry_recovered_after",
                format!("{:.2}s", (recovered_at - up_at).as_secs_f64()),
            ),
            (
                "last_failure_after_postgres_up",
                last_failure.map_or("none".into(), |t| {
                    format!("{:.2}s", t.saturating_sub(up_at).as_secs_f64())
                }),
            ),
            ("reports_acknowledged", acknowledged.to_string()),
            ("reports_recorded", recorded.to_string()),
        ],
    );
    assert!(early.is_empty(), "failures before the outage: {early:?}");
    if let Some(last) = last_failure {
        assert!(
            last <= up_at + Duration::from_secs(5),
            "requests still failed {:.2}s after PostgreSQL returned:\n{}",
            last.saturating_sub(up_at).as_secs_f64(),
            report.describe_failures(10)
        );
    }
    assert!(
        recorded as usize >= acknowledged,
        "acknowledged reports lost: {acknowledged} acknowledged, {recorded} in the database"
    );
    assert!(recorded as usize <= report.total("POST"));
    assert_eq!(
        sessions_lost(&report),
        0,
        "sessions survive a PostgreSQL restart"
    );
    for node in &ha.nodes {
        assert!(
            !node.log_text().contains("panicked"),
            "a node panicked:\n{}",
            node.log_text()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha_haproxy_postgres_kill_node() {
    kill_one_node_on(Lb::Haproxy, Shared::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha_haproxy_postgres_rolling_restart() {
    rolling_restart_on(Lb::Haproxy, Shared::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha_haproxy_postgres_restart() {
    postgres_restart_under_load(Lb::Haproxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha_haproxy_kill_node() {
    kill_one_node_under_load(Lb::Haproxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha_nginx_kill_node() {
    kill_one_node_under_load(Lb::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha_haproxy_rolling_restart() {
    rolling_restart_under_load(Lb::Haproxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha_nginx_rolling_restart() {
    rolling_restart_under_load(Lb::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ha_haproxy_redis_restart() {
    redis_restart_under_load(Lb::Haproxy).await;
}
