//! One conformance suite for every fleet store: SQLite, and Redis in three topologies private
//! to each test (tests/it/support/redis_target.rs): `redis` (plain), `redis_tls_acl` (TLS with
//! a private CA and the least-privilege ACL user of docs/cluster.md) and `redis_sentinel`
//! (master + replica + three sentinels). The same reports must give the same machines, history
//! and bounds.

use std::sync::Arc;
use std::time::Duration;

use fleetctl::config::{BackendKind, StorageConfig};
use fleetctl::fleet::report::{Disk, Network, Usage};
use fleetctl::fleet::{self, AtRest, FleetStore, Millis, Report, TIERS, Tier};
use fleetctl::store::crypto::Keyring;

use crate::support::postgres::PgServer;
use crate::support::redis_target::{TestRedis, Topology};

/// A plausible report for `machine_id` measured at `t`.
pub fn report(machine_id: &str, t: Millis, cpu: f64) -> Report {
    Report {
        machine_id: machine_id.to_string(),
        hostname: format!("{machine_id}.example.com"),
        os: "Debian GNU/Linux 13".into(),
        kernel: "6.12.0-amd64".into(),
        agent_version: "0.1.0".into(),
        timestamp: fleet::report::rfc3339_ms(t),
        uptime_secs: 86_400,
        cpu_percent: cpu,
        cpu_cores: 8,
        load: [1.0, 0.8, 0.5],
        memory: Usage {
            total_bytes: 16 << 30,
            used_bytes: 4 << 30,
        },
        swap: Usage {
            total_bytes: 2 << 30,
            used_bytes: 0,
        },
        disks: vec![Disk {
            mount: "/".into(),
            total_bytes: 100 << 30,
            used_bytes: 40 << 30,
        }],
        network: Network {
            rx_bytes: 1_000_000,
            tx_bytes: 500_000,
        },
    }
}

/// A store under test, a second handle on the same data (another node), and what keeps
/// them alive.
pub struct Fixture {
    pub store: Arc<dyn FleetStore>,
    pub other: Arc<dyn FleetStore>,
    pub config: StorageConfig,
    pub redis: Option<TestRedis>,
    pub pg: Option<PgServer>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// The store of one of the two nodes, alternating with `i`: concurrent writers spread
    /// over both, as agents behind a load balancer are.
    pub fn node(&self, i: i64) -> Arc<dyn FleetStore> {
        Arc::clone(if i % 2 == 0 { &self.store } else { &self.other })
    }
}

/// A private PostgreSQL server (tests/it/support/postgres.rs).
pub async fn postgres() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let pg = PgServer::start();
    let config = StorageConfig {
        backend: BackendKind::Postgres,
        postgres: pg.config(),
        ..StorageConfig::default()
    };
    Fixture {
        store: fleet::open(&config).await.unwrap(),
        other: fleet::open(&config).await.unwrap(),
        config,
        redis: None,
        pg: Some(pg),
        _dir: dir,
    }
}

pub async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig {
        backend: BackendKind::Sqlite,
        db_path: dir.path().join("fleet.db"),
        ..StorageConfig::default()
    };
    Fixture {
        store: fleet::open(&config).await.unwrap(),
        other: fleet::open(&config).await.unwrap(),
        config,
        redis: None,
        pg: None,
        _dir: dir,
    }
}

pub async fn redis() -> Fixture {
    redis_in(Topology::Plain).await
}

pub async fn redis_tls_acl() -> Fixture {
    redis_in(Topology::TlsAcl).await
}

pub async fn redis_sentinel() -> Fixture {
    redis_in(Topology::Sentinel).await
}

/// `storage.redis` with its default database (2).
async fn redis_in(topology: Topology) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let redis = TestRedis::start(topology);
    let config = StorageConfig {
        backend: BackendKind::Redis,
        redis: redis.redis_config(None),
        ..StorageConfig::default()
    };
    Fixture {
        store: fleet::open(&config).await.unwrap(),
        other: fleet::open(&config).await.unwrap(),
        config,
        redis: Some(redis),
        pg: None,
        _dir: dir,
    }
}

async fn reports_out_of_the_time_range_are_refused_on_the_store_clock(f: Fixture) {
    let now = f.store.now().await.unwrap();
    for t in [now + 6 * 60_000, now - fleet::HISTORY_SPAN_MS - 60_000] {
        match f.store.record(&report("m-1", t, 1.0), "k").await {
            Err(fleet::StoreError::OutOfRange { now: at }) => {
                assert!((at - now).abs() < 5_000, "the store's clock")
            }
            other => panic!("expected OutOfRange, got {other:?}"),
        }
    }
    assert!(
        f.store.machines().await.unwrap().machines.is_empty(),
        "nothing written"
    );
    assert_eq!(f.store.history_len("m-1").await.unwrap(), [0, 0, 0]);
    assert!(f.store.key_usage().await.unwrap().is_empty());
    f.store
        .record(&report("m-1", now + 4 * 60_000, 1.0), "k")
        .await
        .expect("within the allowed skew");
}

async fn changes_and_the_node_index_follow_every_node(f: Fixture) {
    let now = f.store.now().await.unwrap();
    f.store
        .record(&report("m-1", now, 10.0), "k")
        .await
        .unwrap();
    let all = f.other.changed_since(None).await.unwrap();
    assert_eq!((all.total, all.machines.len()), (1, 1));
    f.store
        .record(&report("m-2", now, 30.0), "k")
        .await
        .unwrap();
    let next = f.other.changed_since(Some(all.next_since)).await.unwrap();
    assert_eq!(next.total, 2);
    assert!(
        next.machines.iter().any(|m| m.report.machine_id == "m-2"),
        "a record after the previous read is in the changes"
    );
    let some = f
        .other
        .machines_by_id(&["m-2".into(), "nope".into(), "m-1".into()])
        .await
        .unwrap();
    let mut ids: Vec<&str> = some
        .machines
        .iter()
        .map(|m| m.report.machine_id.as_str())
        .collect();
    ids.sort();
    assert_eq!(ids, ["m-1", "m-2"]);

    // The index of another node sees each new report at once, and a forgotten machine.
    let index = fleet::index::FleetIndex::new(f.other.clone());
    let t = fleet::view::Thresholds {
        stale_after: Duration::from_secs(60),
        offline_after: Duration::from_secs(300),
    };
    assert_eq!(index.summary(&t).await.unwrap().0.total, 2);
    f.store
        .record(&report("m-3", now, 50.0), "k")
        .await
        .unwrap();
    let (s, _) = index.summary(&t).await.unwrap();
    assert_eq!((s.total, s.top.cpu[0].machine_id.as_str()), (3, "m-3"));
    tokio::time::sleep(Duration::from_millis(20)).await;
    f.store.forget(Duration::from_millis(1)).await.unwrap();
    f.store.record(&report("m-4", now, 1.0), "k").await.unwrap();
    let (s, _) = index.summary(&t).await.unwrap();
    assert_eq!(s.total, 1, "forgotten machines leave the index");
    let q = fleet::view::ListQuery::default();
    let page = index.page(&q, &t).await.unwrap();
    assert_eq!(page.machines.len(), 1);
    assert_eq!(page.machines[0].machine_id, "m-4");
}

async fn record_and_read(f: Fixture) {
    let s = &f.store;
    let now = s.now().await.unwrap();
    let at = s
        .record(&report("m-1", now, 12.5), "web-tier")
        .await
        .unwrap();
    assert!((at - now).abs() < 5_000, "recorded at the store's clock");

    // Another node sees it at once.
    let snap = f.other.machines().await.unwrap();
    assert_eq!(snap.machines.len(), 1);
    assert!(snap.problems.is_empty(), "{:?}", snap.problems);
    let m = &snap.machines[0];
    assert_eq!(m.report, report("m-1", now, 12.5));
    assert_eq!(m.api_key, "web-tier");
    assert_eq!(m.last_seen, at);
    assert_eq!(m.first_seen, at);
    assert_eq!(m.offline_since, None);

    assert_eq!(
        f.other
            .machine("m-1")
            .await
            .unwrap()
            .unwrap()
            .report
            .cpu_percent,
        12.5
    );
    assert!(f.other.machine("nope").await.unwrap().is_none());

    let keys = f.other.key_usage().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].name, "web-tier");
    assert_eq!(keys[0].last_used, at);
}

async fn a_replayed_old_report_does_not_replace_the_latest(f: Fixture) {
    let s = &f.store;
    let now = s.now().await.unwrap();
    s.record(&report("m-1", now, 50.0), "k").await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let later = s
        .record(&report("m-1", now - 60_000, 10.0), "k2")
        .await
        .unwrap();
    let m = s.machine("m-1").await.unwrap().unwrap();
    assert_eq!(m.report.cpu_percent, 50.0, "latest = newest timestamp");
    assert_eq!(m.last_seen, later, "but the machine was seen now");
    assert_eq!(m.api_key, "k2");
    assert!(m.first_seen < later);
    // Both reports are in the raw history.
    assert_eq!(s.history_len("m-1").await.unwrap()[0], 2);
}

async fn reports_roll_up_per_bucket(f: Fixture) {
    let s = &f.store;
    let now = s.now().await.unwrap();
    // Three reports in one minute bucket (and one 10-minute bucket) well inside the hour.
    let base = TIERS[2].bucket_start(now - 30 * 60_000) + 1_000;
    for (i, cpu) in [10.0, 20.0, 60.0].into_iter().enumerate() {
        s.record(&report("m-1", base + i as i64 * 1_000, cpu), "k")
            .await
            .unwrap();
    }
    let raw = s.history("m-1", TIERS[0], 0, now + 1).await.unwrap();
    assert_eq!(raw.len(), 3);
    assert_eq!(raw[0].t, base);
    assert_eq!(raw[2].cpu_percent, 60.0);
    for tier in [TIERS[1], TIERS[2]] {
        let points = s.history("m-1", tier, 0, now + 1).await.unwrap();
        assert_eq!(points.len(), 1, "{}", tier.name);
        let p = &points[0];
        assert_eq!(p.t, tier.bucket_start(base));
        assert_eq!(p.samples, 3);
        assert!((p.cpu_percent - 30.0).abs() < 1e-9, "{p:?}");
        assert_eq!(p.cpu_percent_max, 60.0);
        assert_eq!(p.memory_percent, 25.0);
        assert_eq!(p.disk_percent_max, 40.0);
    }
    // Range queries are inclusive and pick from the right tier.
    let some = s
        .history("m-1", TIERS[0], base + 1_000, base + 2_000)
        .await
        .unwrap();
    assert_eq!(some.len(), 2);
    assert_eq!(Tier::for_range(base, now).name, "raw");
}

/// 100,000 reports: one machine spread over 10 days (age bounds), one reporting every 50 ms
/// (count bound). Every tier stays within its bounds and rollups lose no sample.
async fn history_stays_bounded_after_100k_reports(f: Fixture) {
    let now = f.store.now().await.unwrap();
    const SLOW: i64 = 60_000; // "a" reports every 15 s for 10.4 days
    const FAST: i64 = 40_000; // "b" reports every 50 ms for 33 minutes
    let mut tasks = Vec::new();
    for part in 0..4i64 {
        let store = f.node(part);
        tasks.push(tokio::spawn(async move {
            let mut i = part;
            while i < SLOW + FAST {
                let r = if i < SLOW {
                    report("a", now - (SLOW - i) * 15_000, (i % 100) as f64)
                } else {
                    let j = i - SLOW;
                    report("b", now - (FAST - j) * 50, 50.0)
                };
                // Reports older than the history are refused by the store's own clock.
                if let Err(e) = store.record(&r, "k").await {
                    assert!(
                        matches!(e, fleet::StoreError::OutOfRange { .. })
                            && r.measured_at() < now - fleet::HISTORY_SPAN_MS + 60_000,
                        "{e:?}"
                    );
                }
                i += 4;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }

    let a = f.store.history_len("a").await.unwrap();
    let b = f.store.history_len("b").await.unwrap();
    for (lens, who) in [(a, "a"), (b, "b")] {
        for (n, tier) in lens.iter().zip(TIERS) {
            assert!(
                *n <= tier.max_points,
                "machine {who}: tier {} holds {n} points, bound {}",
                tier.name,
                tier.max_points
            );
        }
    }
    // "a": age bounds. One point per 15 s for the last hour, per minute for a day, per
    // 10 minutes for a week (a few at the edges may have aged out during the run).
    assert!((230..=241).contains(&a[0]), "raw {a:?}");
    assert!((1400..=1440).contains(&a[1]), "1m {a:?}");
    assert!((990..=1008).contains(&a[2]), "10m {a:?}");
    // "b": the raw tier is capped by count, and keeps the newest points.
    assert_eq!(b[0], TIERS[0].max_points, "raw {b:?}");
    let raw = f.store.history("b", TIERS[0], 0, now + 1).await.unwrap();
    assert_eq!(raw.last().unwrap().t, now - 50);
    // Rollups of "b" account for every one of its reports.
    for tier in [TIERS[1], TIERS[2]] {
        let points = f.store.history("b", tier, 0, now + 1).await.unwrap();
        let samples: u64 = points.iter().map(|p| p.samples).sum();
        assert_eq!(samples, FAST as u64, "tier {}", tier.name);
    }
    let latest = f.store.machine("a").await.unwrap().unwrap();
    assert_eq!(
        latest.report.measured_at(),
        now - 15_000,
        "newest report wins"
    );
}

/// Reports that arrive together (the Redis store records them in one batched call) each get
/// their own answer: an out-of-range report among them is refused alone, two reports of one
/// machine in the same moment both count, and the newest wins whatever the order.
async fn concurrent_reports_each_get_their_own_answer(f: Fixture) {
    let now = f.store.now().await.unwrap();
    let base = now - 10 * 60_000;
    let mut tasks = Vec::new();
    for i in 0..96i64 {
        let store = f.node(i);
        tasks.push(tokio::spawn(async move {
            // Every eighth report is from the future; the others are 24 reports for each of
            // four machines, one second apart, sent in no particular order.
            let out_of_range = i % 8 == 7;
            let t = if out_of_range {
                now + 60 * 60_000
            } else {
                base + (95 - i) * 1_000
            };
            let machine = format!("c-{}", i % 4);
            let result = store.record(&report(&machine, t, i as f64), "k").await;
            (out_of_range, machine, t, result)
        }));
    }
    let mut newest = std::collections::HashMap::new();
    let mut counted = std::collections::HashMap::new();
    for task in tasks {
        let (out_of_range, machine, t, result) = task.await.unwrap();
        if out_of_range {
            assert!(
                matches!(result, Err(fleet::StoreError::OutOfRange { .. })),
                "{result:?}"
            );
        } else {
            result.expect("an in-range report is recorded");
            let n = newest.entry(machine.clone()).or_insert(t);
            *n = (*n).max(t);
            *counted.entry(machine).or_insert(0u64) += 1;
        }
    }
    assert_eq!(counted.len(), 4);
    for (machine, n) in &counted {
        let latest = f.store.machine(machine).await.unwrap().unwrap();
        assert_eq!(latest.report.measured_at(), newest[machine], "{machine}");
        let raw = f
            .store
            .history(machine, TIERS[0], 0, now + 1)
            .await
            .unwrap();
        assert_eq!(raw.len() as u64, *n, "{machine}: one raw point per report");
        let rollup = f
            .store
            .history(machine, TIERS[1], 0, now + 1)
            .await
            .unwrap();
        let samples: u64 = rollup.iter().map(|p| p.samples).sum();
        assert_eq!(samples, *n, "{machine}: every report in the 1m tier");
    }
    assert_eq!(f.store.machines().await.unwrap().machines.len(), 4);
}

async fn offline_marks_once_and_forget_deletes_everything(f: Fixture) {
    let s = &f.store;
    let now = s.now().await.unwrap();
    s.record(&report("gone", now, 1.0), "k").await.unwrap();
    s.record(&report("here", now, 1.0), "k").await.unwrap();
    assert!(
        s.mark_offline(Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty()
    );
    // "Silent for 200 ms" after 300 ms of silence; the report that clears "here" below is then
    // well under 200 ms old when `forget` runs, even over TLS or Sentinel on a loaded machine.
    let silent = Duration::from_millis(200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut marked = s.mark_offline(silent).await.unwrap();
    marked.sort();
    assert_eq!(marked, vec!["gone".to_string(), "here".to_string()]);
    assert!(
        s.mark_offline(silent).await.unwrap().is_empty(),
        "each outage is marked once"
    );
    assert!(
        s.machine("gone")
            .await
            .unwrap()
            .unwrap()
            .offline_since
            .is_some()
    );
    // A report clears the mark.
    s.record(&report("here", now + 1, 1.0), "k").await.unwrap();
    assert_eq!(
        s.machine("here").await.unwrap().unwrap().offline_since,
        None
    );

    let forgotten = f.other.forget(silent).await.unwrap();
    assert_eq!(forgotten, vec!["gone".to_string()]);
    assert!(s.machine("gone").await.unwrap().is_none());
    assert_eq!(s.history_len("gone").await.unwrap(), [0, 0, 0]);
    assert_eq!(s.machines().await.unwrap().machines.len(), 1);
    assert_eq!(s.history_len("here").await.unwrap()[0], 2);
    // A second silence is a second outage, marked again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        s.mark_offline(silent).await.unwrap(),
        vec!["here".to_string()]
    );
    assert!(
        s.machine("here")
            .await
            .unwrap()
            .unwrap()
            .offline_since
            .is_some()
    );
}

async fn points_older_than_retention_are_not_kept(f: Fixture) {
    let s = &f.store;
    let now = s.now().await.unwrap();
    s.record(&report("m", now - 2 * 3_600_000, 5.0), "k")
        .await
        .unwrap();
    assert_eq!(s.history_len("m").await.unwrap(), [0, 1, 1]);
    s.record(&report("m", now - 2 * 86_400_000, 5.0), "k")
        .await
        .unwrap();
    assert_eq!(s.history_len("m").await.unwrap(), [0, 1, 2]);
}

/// Key-file lines for the encryption tests (fixed test keys, never used elsewhere).
const KEY_A: &str = "ka:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_B: &str = "kb:HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4=";
const MARKER: &str = "marker-host-5521";

impl Fixture {
    /// Another handle on the same data, sealing reports (and key names) with the keys of
    /// `key_file`.
    async fn sealed(&self, key_file: &str) -> Arc<dyn FleetStore> {
        self.sealed_with(key_file, true).await
    }

    /// Like `sealed`, with `storage.encrypt_reports` as given.
    async fn sealed_with(&self, key_file: &str, encrypt_reports: bool) -> Arc<dyn FleetStore> {
        let keyring = Keyring::parse(key_file, std::path::Path::new("test.keys")).unwrap();
        let config = StorageConfig {
            encrypt_reports,
            ..self.config.clone()
        };
        fleet::open_with(&config, AtRest::new(Arc::new(keyring)))
            .await
            .unwrap()
    }

    /// Overwrite the stored report of `id` with JSON that is not a report.
    async fn corrupt_report(&self, id: &str) {
        const BAD: &str = r#"{"not":"a report"}"#;
        if let Some(pg) = &self.pg {
            pg.psql(&format!(
                "UPDATE fleet_machines SET report = '{BAD}' WHERE machine_id = '{id}'"
            ));
            return;
        }
        match &self.redis {
            None => {
                rusqlite::Connection::open(&self.config.db_path)
                    .unwrap()
                    .execute(
                        "UPDATE fleet_machines SET report = ?2 WHERE machine_id = ?1",
                        [id, BAD],
                    )
                    .unwrap();
            }
            Some(server) => {
                // The newest report is the top of the machine's `@state`.
                let mut c = server.admin(2);
                let state = format!("{{fleet}}:m:{id}@state");
                let top: Vec<(String, f64)> = ::redis::cmd("ZRANGE")
                    .arg(&state)
                    .arg(-1)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query(&mut c)
                    .unwrap();
                let _: () = ::redis::pipe()
                    .del(&state)
                    .zadd(&state, BAD, top[0].1)
                    .query(&mut c)
                    .unwrap();
            }
        }
    }

    /// What the store holds, as text: every file of the SQLite database after a checkpoint,
    /// or every field of every Redis hash and every member of every sorted set.
    async fn raw(&self) -> String {
        if let Some(pg) = &self.pg {
            return format!(
                "{}\n{}",
                pg.psql("COPY (SELECT * FROM fleet_machines) TO STDOUT"),
                pg.psql("COPY (SELECT * FROM fleet_api_keys) TO STDOUT")
            );
        }
        match &self.redis {
            None => {
                let db = &self.config.db_path;
                rusqlite::Connection::open(db)
                    .unwrap()
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                    .unwrap();
                let mut out = String::new();
                for entry in std::fs::read_dir(db.parent().unwrap()).unwrap() {
                    let bytes = std::fs::read(entry.unwrap().path()).unwrap();
                    out.push_str(&String::from_utf8_lossy(&bytes));
                }
                out
            }
            Some(server) => {
                let mut c = server.admin(2);
                let keys: Vec<String> = ::redis::cmd("KEYS")
                    .arg("{fleet}:m:*")
                    .query(&mut c)
                    .unwrap();
                let mut out = String::new();
                for k in keys {
                    let kind: String = ::redis::cmd("TYPE").arg(&k).query(&mut c).unwrap();
                    // Bytes: a machine's log (`@log`) holds packed numbers.
                    let values: Vec<Vec<u8>> = match kind.as_str() {
                        "hash" => ::redis::cmd("HGETALL").arg(&k).query(&mut c).unwrap(),
                        "zset" => ::redis::cmd("ZRANGE")
                            .arg(&k)
                            .arg(0)
                            .arg(-1)
                            .query(&mut c)
                            .unwrap(),
                        _ => Vec::new(),
                    };
                    for v in values {
                        out.push_str(&String::from_utf8_lossy(&v));
                        out.push('\n');
                    }
                }
                out
            }
        }
    }
}

fn marked_report(t: Millis) -> Report {
    let mut r = report("m-1", t, 3.0);
    r.hostname = MARKER.into();
    r
}

async fn sealed_reports_hide_the_report_and_rotate(f: Fixture) {
    let under_a = f.sealed(KEY_A).await;
    let now = under_a.now().await.unwrap();
    under_a.record(&marked_report(now), "k").await.unwrap();
    let raw = f.raw().await;
    assert!(!raw.contains(MARKER), "report stored in the clear:\n{raw}");
    assert!(raw.contains("fenc1:ka:"));
    let snap = under_a.machines().await.unwrap();
    assert_eq!(snap.machines[0].report, marked_report(now), "round trip");

    // A second machine is never reported again, so it stays sealed with A.
    under_a.record(&report("m-2", now, 1.0), "k").await.unwrap();
    // Rotation: B first, A listed; the next report of m-1 is sealed with B.
    let rotating = f.sealed(&format!("{KEY_B}\n{KEY_A}")).await;
    assert_eq!(rotating.machines().await.unwrap().machines.len(), 2);
    rotating
        .record(&marked_report(now + 1000), "k")
        .await
        .unwrap();

    // A dropped: m-1 reads; m-2 is skipped and named in problems, and is absent (404) by id.
    let only_b = f.sealed(KEY_B).await;
    let snap = only_b.machines().await.unwrap();
    assert_eq!(snap.machines.len(), 1);
    assert_eq!(snap.machines[0].report, marked_report(now + 1000));
    assert_eq!(snap.problems.len(), 1, "{:?}", snap.problems);
    assert!(
        snap.problems[0].contains("machine m-2")
            && snap.problems[0].contains("encrypted with key id ka"),
        "{:?}",
        snap.problems
    );
    assert!(only_b.machine("m-2").await.unwrap().is_none());
    assert!(only_b.machine("m-1").await.unwrap().is_some());

    // Plaintext reports written before encryption was on stay readable.
    f.store.record(&report("m-3", now, 1.0), "k").await.unwrap();
    assert!(only_b.machine("m-3").await.unwrap().is_some());
}

async fn reseal_rewrites_every_report_with_the_first_key(f: Fixture) {
    let now = f.store.now().await.unwrap();
    f.store.record(&marked_report(now), "k").await.unwrap();
    let under_a = f.sealed(KEY_A).await;
    for id in ["m-2", "m-3"] {
        let mut r = report(id, now, 1.0);
        r.hostname = MARKER.into();
        under_a.record(&r, "k").await.unwrap();
    }
    let rotating = f.sealed(&format!("{KEY_B}\n{KEY_A}")).await;
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let d = done.clone();
    let count = rotating
        .reseal(&move |n, _| d.store(n, std::sync::atomic::Ordering::Relaxed))
        .await
        .unwrap();
    // Three machines, and two usage entries of key `k` (plaintext, and sealed with A) that
    // become one sealed with B.
    assert_eq!(
        (count.examined, count.resealed, count.unreadable),
        (5, 5, 0)
    );
    assert_eq!(done.load(std::sync::atomic::Ordering::Relaxed), 5);
    let again = rotating.reseal(&|_, _| {}).await.unwrap();
    assert_eq!(again.resealed, 0, "idempotent");
    let raw = f.raw().await;
    assert!(!raw.contains(MARKER) && !raw.contains("fenc1:ka:"), "{raw}");
    let only_b = f.sealed(KEY_B).await;
    let snap = only_b.machines().await.unwrap();
    assert_eq!(snap.machines.len(), 3, "{:?}", snap.problems);
    assert!(snap.machines.iter().all(|m| m.api_key == "k"));
    let keys = only_b.key_usage().await.unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0].name, "k");
    // History was not touched: one point per machine and tier, as recorded.
    assert_eq!(f.store.history_len("m-2").await.unwrap()[0], 1);
}

async fn a_corrupt_record_is_skipped_in_listings_and_an_error_by_id(f: Fixture) {
    let now = f.store.now().await.unwrap();
    for id in ["m-1", "m-2"] {
        f.store.record(&report(id, now, 1.0), "k").await.unwrap();
    }
    f.corrupt_report("m-2").await;
    let snap = f.other.machines().await.unwrap();
    assert_eq!(snap.machines.len(), 1);
    assert_eq!(snap.problems.len(), 1, "{:?}", snap.problems);
    assert!(
        snap.problems[0].contains("machine m-2"),
        "{:?}",
        snap.problems
    );
    match f.other.machine("m-2").await {
        Err(fleet::StoreError::Corrupt { message, .. }) => {
            assert!(message.contains("machine m-2"), "{message}")
        }
        other => panic!("expected a corrupt-record error, got {other:?}"),
    }
    // The next report replaces it.
    f.store
        .record(&report("m-2", now + 1_000, 2.0), "k")
        .await
        .unwrap();
    assert!(f.other.machine("m-2").await.unwrap().is_some());
}

const KEY_MARKER: &str = "agents-marker-7713";

async fn api_key_names_are_sealed_whenever_there_is_a_key_file(f: Fixture) {
    // Reports in the clear (storage.encrypt_reports off), key names sealed all the same.
    let under_a = f.sealed_with(KEY_A, false).await;
    let now = under_a.now().await.unwrap();
    under_a
        .record(&report("m-1", now, 1.0), KEY_MARKER)
        .await
        .unwrap();
    under_a
        .record(&report("m-2", now, 1.0), KEY_MARKER)
        .await
        .unwrap();
    let raw = f.raw().await;
    assert!(
        !raw.contains(KEY_MARKER),
        "key name stored in the clear:\n{raw}"
    );
    assert!(raw.contains("m-1.example.com"), "reports stay in the clear");
    let keys = under_a.key_usage().await.unwrap();
    assert_eq!(
        keys.len(),
        1,
        "one entry per key, found by equality: {keys:?}"
    );
    assert_eq!(keys[0].name, KEY_MARKER);
    assert_eq!(
        under_a.machine("m-1").await.unwrap().unwrap().api_key,
        KEY_MARKER
    );

    // Without the key the entries are left out (and logged) and the machines are unreadable,
    // named in problems with the key id: never a panic, never an outage.
    let none = f.sealed_with(KEY_B, false).await;
    assert!(none.key_usage().await.unwrap().is_empty());
    let snap = none.machines().await.unwrap();
    assert!(snap.machines.is_empty());
    assert_eq!(snap.problems.len(), 2, "{:?}", snap.problems);
    assert!(
        snap.problems[0].contains("API key name encrypted with key id ka"),
        "{:?}",
        snap.problems
    );
}

impl Fixture {
    /// A second, empty store of the same backend (another database file, Redis database 3,
    /// another PostgreSQL database), for copying into.
    async fn second(&self) -> Arc<dyn FleetStore> {
        let mut config = self.config.clone();
        config.db_path = self._dir.path().join("second.db");
        config.redis.db = Some(3);
        if let Some(pg) = &self.pg {
            pg.psql("CREATE DATABASE second");
            config.postgres.dbname = "second".into();
        }
        fleet::open(&config).await.unwrap()
    }
}

/// Everything `store` exports, in small pages, by machine id.
async fn dump_all(store: &dyn FleetStore) -> Vec<fleet::MachineDump> {
    let mut by_id = std::collections::BTreeMap::new();
    let mut cursor = None;
    for _ in 0..10_000 {
        let page = store.export_machines(cursor, 5).await.unwrap();
        assert!(page.unreadable.is_empty(), "{:?}", page.unreadable);
        for m in page.records {
            // Redis's SCAN may return a machine twice; it is the same machine.
            by_id.insert(m.machine_id.clone(), m);
        }
        cursor = page.next;
        if cursor.is_none() {
            return by_id.into_values().collect();
        }
    }
    panic!("export never finished");
}

async fn export_then_import_copies_and_merges(f: Fixture) {
    let now = f.store.now().await.unwrap();
    // Uneven sums (thirds), so a store that rounds them is caught.
    for r in 0..6 {
        for m in 0..12 {
            let t = now - 30 * 60_000 + r * 5 * 60_000 + m;
            let cpu = (m * 7 + r) as f64 / 3.0;
            f.store
                .record(
                    &report(&format!("m-{m:02}"), t, cpu),
                    &format!("key-{}", m % 2),
                )
                .await
                .unwrap();
        }
    }
    let dumped = dump_all(&*f.store).await;
    assert_eq!(dumped.len(), 12);
    let lens = f.store.history_len("m-03").await.unwrap();
    let m3 = dumped.iter().find(|m| m.machine_id == "m-03").unwrap();
    assert_eq!(
        lens,
        [0, 1, 2].map(|i| m3.history[i].len()),
        "the whole history"
    );
    assert_eq!(m3.history[0].len(), 6);

    let dest = f.second().await;
    assert!(dump_all(&*dest).await.is_empty());
    assert_eq!(dest.import_machines(dumped.clone()).await.unwrap(), 12);
    let usage = f.store.key_usage().await.unwrap();
    let exported = f.store.export_key_usage().await.unwrap();
    assert_eq!((exported.records, exported.next), (usage.clone(), None));
    dest.import_key_usage(usage.clone()).await.unwrap();
    assert_eq!(dump_all(&*dest).await, dumped, "identical export");
    assert_eq!(dest.key_usage().await.unwrap(), usage);
    assert_eq!(dest.history_len("m-03").await.unwrap(), lens);
    dest.import_machines(dumped.clone()).await.unwrap();
    dest.import_key_usage(usage.clone()).await.unwrap();
    assert_eq!(dump_all(&*dest).await, dumped, "import twice = once");

    // The destination moves ahead (a node on the new store got a report); importing the
    // old dump again keeps the newer record and does not double-count any bucket.
    let t = now - 60_000;
    let later = dest
        .record(&report("m-03", t, 50.0), "key-1")
        .await
        .unwrap();
    let ahead = dump_all(&*dest).await;
    dest.import_machines(dumped.clone()).await.unwrap();
    assert_eq!(
        dump_all(&*dest).await,
        ahead,
        "the newer record and buckets stay"
    );
    let m3_dest = dest.machine("m-03").await.unwrap().unwrap();
    assert_eq!(m3_dest.last_seen, later);
    // ... and the old store, merged with the new one, catches up the same way.
    f.store
        .import_machines(
            ahead
                .iter()
                .filter(|m| m.machine_id == "m-03")
                .cloned()
                .collect(),
        )
        .await
        .unwrap();
    let back = dump_all(&*f.store).await;
    assert_eq!(
        back.iter().find(|m| m.machine_id == "m-03"),
        ahead.iter().find(|m| m.machine_id == "m-03")
    );

    // Per bucket, more samples win: an incoming rollup with fewer is ignored.
    let mut fewer = ahead
        .iter()
        .find(|m| m.machine_id == "m-03")
        .unwrap()
        .clone();
    // Six reports five minutes apart: some 10-minute bucket holds two or more.
    let bucket = fewer.history[2].iter_mut().max_by_key(|b| b.n).unwrap();
    assert!(bucket.n >= 2, "a 10-minute bucket holds several reports");
    bucket.n = 1;
    bucket.cpu_sum = 0.0;
    dest.import_machines(vec![fewer]).await.unwrap();
    assert_eq!(dump_all(&*dest).await, ahead);

    // Key usage: per name the later use wins.
    let mut old_use = usage.clone();
    old_use[0].last_used -= 10_000;
    dest.import_key_usage(old_use).await.unwrap();
    let mut new_use = usage.clone();
    new_use[0].last_used += 10_000;
    dest.import_key_usage(new_use.clone()).await.unwrap();
    let got = dest.key_usage().await.unwrap();
    assert_eq!(
        got.iter()
            .find(|u| u.name == new_use[0].name)
            .unwrap()
            .last_used,
        new_use[0].last_used
    );
}

macro_rules! fleet_store_suite {
    ($($store:ident),*) => {$(
        mod $store {
            #[tokio::test(flavor = "multi_thread")]
            async fn changes_and_the_node_index_follow_every_node() {
                super::changes_and_the_node_index_follow_every_node(super::$store().await).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn reports_out_of_the_time_range_are_refused_on_the_store_clock() {
                super::reports_out_of_the_time_range_are_refused_on_the_store_clock(super::$store().await).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn record_and_read() {
                super::record_and_read(super::$store().await).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn a_replayed_old_report_does_not_replace_the_latest() {
                super::a_replayed_old_report_does_not_replace_the_latest(super::$store().await).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn reports_roll_up_per_bucket() {
                super::reports_roll_up_per_bucket(super::$store().await).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn history_stays_bounded_after_100k_reports() {
                super::history_stays_bounded_after_100k_reports(super::$store().await).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn concurrent_reports_each_get_their_own_answer() {
                super::concurrent_reports_each_get_their_own_answer(super::$store().await).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn offline_marks_once_and_forget_deletes_everything() {
                super::offline_marks_once_and_forget_deletes_everything(super::$store().await).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn sealed_reports_hide_the_report_and_rotate() {
                super::sealed_reports_hide_the_report_and_rotate(super::$store().await).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn a_corrupt_record_is_skipped_in_listings_and_an_error_by_id() {
                super::a_corrupt_record_is_skipped_in_listings_and_an_error_by_id(super::$store().await).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn api_key_names_are_sealed_whenever_there_is_a_key_file() {
                super::api_key_names_are_sealed_whenever_there_is_a_key_file(super::$store().await).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn reseal_rewrites_every_report_with_the_first_key() {
                super::reseal_rewrites_every_report_with_the_first_key(super::$store().await).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn export_then_import_copies_and_merges() {
                super::export_then_import_copies_and_merges(super::$store().await).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn points_older_than_retention_are_not_kept() {
                super::points_older_than_retention_are_not_kept(super::$store().await).await;
            }
        }
    )*};
}

fleet_store_suite!(sqlite, redis, redis_tls_acl, redis_sentinel, postgres);

#[tokio::test(flavor = "multi_thread")]
async fn redis_store_keeps_every_key_under_its_prefix() {
    let f = redis().await;
    let now = f.store.now().await.unwrap();
    f.store.record(&report("m-1", now, 1.0), "k").await.unwrap();
    let port = f.redis.as_ref().unwrap().server().port;
    let client = ::redis::Client::open(format!("redis://127.0.0.1:{port}/2")).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    assert!(keys.iter().all(|k| k.starts_with("{fleet}:m:")), "{keys:?}");
    let mut c0 = ::redis::Client::open(format!("redis://127.0.0.1:{port}/0"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let in_db0: Vec<String> = ::redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut c0)
        .await
        .unwrap();
    assert!(
        in_db0.is_empty(),
        "fleet data belongs in storage.redis.db (2): {in_db0:?}"
    );
    let _ = f.config;
}

/// A connection to the Redis fixture's storage database, to look at and write keys directly.
async fn storage_db(f: &Fixture) -> ::redis::aio::MultiplexedConnection {
    let port = f.redis.as_ref().unwrap().server().port;
    ::redis::Client::open(format!("redis://127.0.0.1:{port}/2"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// How many samples wait in a machine's log (`@samples`) to be folded.
async fn log_len(c: &mut ::redis::aio::MultiplexedConnection, id: &str) -> usize {
    ::redis::cmd("HLEN")
        .arg(format!("{{fleet}}:m:{id}@samples"))
        .query_async(c)
        .await
        .unwrap()
}

/// The samples per bucket of a tier, oldest first.
fn samples(points: Vec<fleet::HistoryPoint>) -> Vec<(i64, u64)> {
    points.iter().map(|p| (p.t, p.samples)).collect()
}

/// Reports wait in the machine's log (`@samples`) until their minute is over, then `FOLD_DUE`
/// (each node's timer, or right after a batch with a late report) folds them into the rollup
/// tiers; readers see them in every tier all along. Reports for a future minute (an agent
/// clock ahead, within the allowed skew) are not due, so they stay in the log here.
#[tokio::test(flavor = "multi_thread")]
async fn redis_reports_wait_in_the_log_until_their_minute_is_over() {
    let f = redis().await;
    let s = &f.store;
    let mut c = storage_db(&f).await;
    let now = s.now().await.unwrap();
    let minute = TIERS[1].bucket_start(now + 2 * 60_000);
    for (i, cpu) in [10.0, 20.0, 60.0].into_iter().enumerate() {
        let r = report("m-1", minute + 1_000 + i as i64 * 10_000, cpu);
        s.record(&r, "k").await.unwrap();
    }
    let unfolded = |mut c: ::redis::aio::MultiplexedConnection| async move {
        let score: Option<f64> = ::redis::cmd("ZSCORE")
            .arg("{fleet}:m:@unfolded")
            .arg("m-1")
            .query_async(&mut c)
            .await
            .unwrap();
        score.map(|t| t as i64)
    };
    assert_eq!(log_len(&mut c, "m-1").await, 3);
    assert_eq!(
        unfolded(c.clone()).await,
        Some(minute),
        "due when its minute is over"
    );
    let sets: (usize, usize) = ::redis::pipe()
        .zcard("{fleet}:m:m-1@1m")
        .zcard("{fleet}:m:m-1@10m")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(sets, (0, 0), "nothing folded within the minute");
    let raw: usize = ::redis::cmd("ZCARD")
        .arg("{fleet}:m:m-1@raw")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(raw, 0, "raw points too wait in the log");
    let read = |tier| s.history("m-1", tier, 0, now + 10 * 60_000);
    assert_eq!(samples(read(TIERS[0]).await.unwrap()).len(), 3);
    let m = read(TIERS[1]).await.unwrap();
    assert_eq!(samples(m.clone()), [(minute, 3)]);
    assert!((m[0].cpu_percent - 30.0).abs() < 1e-9 && m[0].cpu_percent_max == 60.0);
    assert_eq!(
        samples(read(TIERS[2]).await.unwrap()),
        [(TIERS[2].bucket_start(minute), 3)]
    );
    assert_eq!(s.history_len("m-1").await.unwrap(), [3, 1, 1]);

    // A late report of another machine folds what is due: its own minute, not m-1's.
    s.record(&report("m-2", now - 5 * 60_000, 5.0), "k")
        .await
        .unwrap();
    assert_eq!(log_len(&mut c, "m-1").await, 3);
    let other: (usize, Option<f64>) = ::redis::pipe()
        .hlen("{fleet}:m:m-2@samples")
        .zscore("{fleet}:m:@unfolded", "m-2")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(other, (0, None), "the late minute is folded at once");

    // Once m-1's minute is over (here: its mark moved back), the node's timer (every 10 s)
    // folds its log: the minute becomes the open 1-minute bucket, and the 10-minute bucket
    // is open too.
    let _: () = ::redis::cmd("ZADD")
        .arg("{fleet}:m:@unfolded")
        .arg(minute - 10 * 60_000)
        .arg("m-1")
        .query_async(&mut c)
        .await
        .unwrap();
    let waited = std::time::Instant::now();
    while log_len(&mut c, "m-1").await > 0 {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "the timer folds it"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(unfolded(c.clone()).await, None);
    let (one, ten, open_ttl): (usize, usize, i64) = ::redis::pipe()
        .zcard("{fleet}:m:m-1@1m")
        .zcard("{fleet}:m:m-1@10m")
        .pttl("{fleet}:m:m-1@open")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!((one, ten), (0, 0), "both buckets are open");
    assert!(open_ttl > fleet::HISTORY_SPAN_MS - 60_000, "{open_ttl}");
    let raw: usize = ::redis::cmd("ZCARD")
        .arg("{fleet}:m:m-1@raw")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(raw, 3, "the fold added the raw points");
    assert_eq!(samples(read(TIERS[1]).await.unwrap()), [(minute, 3)]);
    assert_eq!(
        samples(read(TIERS[2]).await.unwrap()),
        [(TIERS[2].bucket_start(minute), 3)]
    );
    assert_eq!(s.history_len("m-1").await.unwrap(), [3, 1, 1]);
    // The export sees the same history as the readers.
    let dump = dump_all(&**s).await;
    let m1 = dump.iter().find(|d| d.machine_id == "m-1").unwrap();
    let counts: Vec<usize> = m1.history.iter().map(Vec::len).collect();
    assert_eq!(counts, [3, 1, 1]);
    assert_eq!(m1.history[2][0].n, 3);
}

/// A machine reporting more than `LOG_MAX` times in a minute (a fast agent, a flood of
/// resends) has its log folded (in the background) every `LOG_MAX` reports rather than when
/// the minute is over, so its log and raw tier stay bounded; readers see every report either
/// way.
#[tokio::test(flavor = "multi_thread")]
async fn redis_a_busy_machine_is_folded_every_log_max_reports() {
    use fleetctl::fleet::redis::LOG_MAX;
    let f = redis().await;
    let s = &f.store;
    let mut c = storage_db(&f).await;
    let ((id, minute, before, after), end) = within_one_minute(&**s, async |attempt, start| {
        let id = format!("busy-{attempt}");
        // A minute in the future (agent clock ahead): never due by time during the test.
        let minute = TIERS[1].bucket_start(start + 2 * 60_000);
        for i in 0..LOG_MAX as i64 - 1 {
            s.record(&report(&id, minute + i * 100, 10.0), "k")
                .await
                .unwrap();
        }
        let before = log_len(&mut c, &id).await;
        s.record(&report(&id, minute + 10_000, 10.0), "k")
            .await
            .unwrap();
        // Folded in the background, right after.
        let mut after = usize::MAX;
        for _ in 0..100 {
            after = log_len(&mut c, &id).await;
            if after == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (id, minute, before, after)
    })
    .await;
    assert_eq!(before, LOG_MAX as usize - 1);
    assert_eq!(after, 0, "folded at the {LOG_MAX}th report");
    let one: usize = ::redis::cmd("ZCARD")
        .arg(format!("{{fleet}}:m:{id}@1m"))
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(one, 0, "the minute is open in @open, not in its set");
    let points = s
        .history(&id, TIERS[1], 0, end + 10 * 60_000)
        .await
        .unwrap();
    assert_eq!(samples(points), [(minute, LOG_MAX as u64)]);
}

/// Runs `run(attempt, start)`, `start` being the store's clock, until a run stays within one
/// minute of that clock (a node counts reports per minute: a run that straddles a minute
/// is run again, at most three times); returns that run's result and the clock at its end.
async fn within_one_minute<T>(
    s: &dyn FleetStore,
    mut run: impl AsyncFnMut(usize, Millis) -> T,
) -> (T, Millis) {
    for attempt in 0..3 {
        let start = s.now().await.unwrap();
        let out = run(attempt, start).await;
        let end = s.now().await.unwrap();
        if TIERS[1].bucket_start(start) == TIERS[1].bucket_start(end) {
            return (out, end);
        }
    }
    panic!("three attempts each straddled a minute");
}

/// A node sets a machine's `first_seen` (`HSETNX`) with its first report of a minute, not
/// with every report; a machine forgotten and back within that minute reads as first seen
/// at its new report.
#[tokio::test(flavor = "multi_thread")]
async fn redis_first_seen_is_set_once_a_minute_per_node() {
    let f = redis().await;
    let s = &f.store;
    let mut c = storage_db(&f).await;
    let hsetnx_calls = |mut c: ::redis::aio::MultiplexedConnection| async move {
        let info: String = ::redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut c)
            .await
            .unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("cmdstat_hsetnx:calls="))
            .map_or(0, |v| v.split(',').next().unwrap().parse::<u64>().unwrap())
    };
    let ((id, start, calls, first, back), _) = within_one_minute(&**s, async |attempt, start| {
        let id = format!("m-{attempt}");
        let before = hsetnx_calls(c.clone()).await;
        for i in 0..5 {
            s.record(&report(&id, start + i, 10.0), "k").await.unwrap();
        }
        let calls = hsetnx_calls(c.clone()).await - before;
        let first = s.machine(&id).await.unwrap().unwrap();
        // Forgotten (as `forget` with a `forget_after` under a minute does) and back.
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(
            s.forget(Duration::ZERO).await.unwrap(),
            std::slice::from_ref(&id)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        s.record(&report(&id, start + 10, 10.0), "k").await.unwrap();
        let back = s.machine(&id).await.unwrap().unwrap();
        (id, start, calls, first, back)
    })
    .await;
    assert_eq!(calls, 1, "one HSETNX for five reports");
    assert!(first.first_seen >= start && first.first_seen <= first.last_seen);
    assert_eq!(back.first_seen, back.last_seen);
    assert!(back.last_seen > first.last_seen);
    let fields: Vec<Option<String>> = ::redis::cmd("HMGET")
        .arg(format!("{{fleet}}:m:{id}"))
        .arg("first_seen")
        .arg("last_seen")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(fields[0], None, "skipped this minute");
}

/// A resend (a second report with a timestamp already in the log) and a late report (for
/// a minute already folded) both count once each, where they belong.
#[tokio::test(flavor = "multi_thread")]
async fn redis_resent_and_late_reports_merge_into_their_buckets() {
    let f = redis().await;
    let s = &f.store;
    let now = s.now().await.unwrap();
    let minute = TIERS[1].bucket_start(now - 30 * 60_000);
    s.record(&report("m-1", minute + 1_000, 10.0), "k")
        .await
        .unwrap();
    s.record(&report("m-1", minute + 1_000, 30.0), "k")
        .await
        .unwrap();
    s.record(&report("m-1", minute + 61_000, 50.0), "k")
        .await
        .unwrap();
    // Late: back in the first minute, after it was folded.
    s.record(&report("m-1", minute + 2_000, 70.0), "k")
        .await
        .unwrap();
    let read = |tier| s.history("m-1", tier, 0, now + 60_000);
    assert_eq!(
        samples(read(TIERS[0]).await.unwrap()),
        [
            (minute + 1_000, 2),
            (minute + 2_000, 1),
            (minute + 61_000, 1)
        ]
    );
    let m = read(TIERS[1]).await.unwrap();
    assert_eq!(samples(m.clone()), [(minute, 3), (minute + 60_000, 1)]);
    assert!((m[0].cpu_percent - 110.0 / 3.0).abs() < 1e-9);
    let ten: u64 = samples(read(TIERS[2]).await.unwrap())
        .iter()
        .map(|(_, n)| n)
        .sum();
    assert_eq!(ten, 4);
    // Folding the late one (a later minute) keeps every sample.
    s.record(&report("m-1", minute + 121_000, 90.0), "k")
        .await
        .unwrap();
    let m = read(TIERS[1]).await.unwrap();
    assert_eq!(
        samples(m),
        [(minute, 3), (minute + 60_000, 1), (minute + 120_000, 1)]
    );
}

/// A corrupt log entry (a damaged record, in this version's `@samples` or the previous
/// version's `@log`) is an error naming the machine for its history, and does not stop the
/// machine's reports: the fold drops it.
#[tokio::test(flavor = "multi_thread")]
async fn redis_a_corrupt_log_entry_is_reported_and_does_not_block_reports() {
    let f = redis().await;
    let s = &f.store;
    let mut c = storage_db(&f).await;
    let now = s.now().await.unwrap();
    for (i, log) in ["samples", "log"].into_iter().enumerate() {
        let id = format!("m-{i}");
        let minute = TIERS[1].bucket_start(now - 10 * 60_000);
        s.record(&report(&id, minute + 1_000, 10.0), "k")
            .await
            .unwrap();
        let _: () = ::redis::cmd("HSET")
            .arg(format!("{{fleet}}:m:{id}@{log}"))
            .arg(minute + 2_000)
            .arg("not a sample")
            .query_async(&mut c)
            .await
            .unwrap();
        for tier in TIERS {
            let err = s.history(&id, tier, 0, now).await.unwrap_err().to_string();
            assert!(
                err.contains(&id) && err.contains("history log entry"),
                "{log}, tier {}: {err}",
                tier.name
            );
        }
        s.record(&report(&id, minute + 61_000, 20.0), "k")
            .await
            .unwrap();
        assert_eq!(
            samples(s.history(&id, TIERS[1], 0, now).await.unwrap()),
            [(minute, 1), (minute + 60_000, 1)],
            "{log}"
        );
        assert_eq!(
            samples(s.history(&id, TIERS[0], 0, now).await.unwrap()),
            [(minute + 1_000, 1), (minute + 61_000, 1)],
            "{log}"
        );
    }
}

/// The version before `@samples` wrote a report's raw point into the raw set at once and its
/// bucket into `@log` (eight packed doubles). During a rolling upgrade both kinds of node
/// record the same machine: readers count each sample once in every tier, and the fold folds
/// both logs, adding only `@samples`' raw points.
#[tokio::test(flavor = "multi_thread")]
async fn redis_store_folds_the_log_of_the_previous_version() {
    let f = redis().await;
    let s = &f.store;
    let mut c = storage_db(&f).await;
    let now = s.now().await.unwrap();
    let minute = TIERS[1].bucket_start(now - 10 * 60_000);
    s.record(&report("m-1", now, 10.0), "k").await.unwrap();
    // The old node's report at minute + 1 s, 40 % CPU.
    let t = minute + 1_000;
    let numbers = [1.0, 40.0, 40.0, 25.0, 1.0, 40.0, 1e6, 5e5];
    let entry: Vec<u8> = numbers.iter().flat_map(|n: &f64| n.to_le_bytes()).collect();
    let raw = serde_json::json!({"t": t, "n": 1, "cpu_sum": 40.0, "cpu_max": 40.0,
        "mem_sum": 25.0, "load_sum": 1.0, "disk_max": 40.0, "rx": 1e6, "tx": 5e5})
    .to_string();
    let _: () = ::redis::pipe()
        .zadd("{fleet}:m:m-1@raw", raw, t)
        .hset("{fleet}:m:m-1@log", t, entry)
        .query_async(&mut c)
        .await
        .unwrap();
    let read = |tier| s.history("m-1", tier, 0, now + 60_000);
    assert_eq!(samples(read(TIERS[0]).await.unwrap()), [(t, 1), (now, 1)]);
    assert_eq!(
        samples(read(TIERS[1]).await.unwrap()),
        [(minute, 1), (TIERS[1].bucket_start(now), 1)]
    );
    assert_eq!(s.history_len("m-1").await.unwrap()[0], 2);

    // Ours, late in the same minute: folded at once, with the old node's log.
    s.record(&report("m-1", minute + 2_000, 20.0), "k")
        .await
        .unwrap();
    let (log, raw): (usize, usize) = ::redis::pipe()
        .hlen("{fleet}:m:m-1@log")
        .zcard("{fleet}:m:m-1@raw")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!((log, raw), (0, 3), "both logs folded; one raw point each");
    assert_eq!(
        samples(read(TIERS[0]).await.unwrap()),
        [(t, 1), (minute + 2_000, 1), (now, 1)]
    );
    let m = read(TIERS[1]).await.unwrap();
    assert_eq!(
        samples(m.clone()),
        [(minute, 2), (TIERS[1].bucket_start(now), 1)]
    );
    assert!((m[0].cpu_percent - 30.0).abs() < 1e-9);
    assert_eq!(s.history_len("m-1").await.unwrap()[..2], [3, 2]);
}

/// The previous version keeps the open bucket of both rollup tiers in the `@open` string,
/// merges each report into it and moves a bucket to its set (a plain `ZADD`) when a later one
/// starts. During a rolling upgrade both versions record the same machine: the fold merges
/// into the same open buckets and keeps the newest bucket of each tier open there too, so a
/// bucket is either open or in its set, and no sample is lost or doubled.
#[tokio::test(flavor = "multi_thread")]
async fn redis_store_folds_the_open_string_of_the_previous_version() {
    let f = redis().await;
    let s = &f.store;
    let mut c = storage_db(&f).await;
    let now = s.now().await.unwrap();
    let ten = TIERS[2].bucket_start(now - 30 * 60_000);
    let minute = ten + 2 * 60_000;
    // The old node merged two samples at 40 % into this minute and this 10-minute bucket.
    let bucket = |t: i64| [t as f64, 2.0, 80.0, 40.0, 50.0, 2.0, 40.0, 1e6, 5e5];
    let packed: Vec<u8> = bucket(minute)
        .iter()
        .chain(bucket(ten).iter())
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let _: () = ::redis::cmd("SET")
        .arg("{fleet}:m:m-1@open")
        .arg(packed)
        .query_async(&mut c)
        .await
        .unwrap();
    // Our sample of that minute (late: folded at once) joins both open buckets.
    s.record(&report("m-1", minute + 1_000, 10.0), "k")
        .await
        .unwrap();
    let read = |tier| s.history("m-1", tier, 0, now + 60_000);
    let m = read(TIERS[1]).await.unwrap();
    assert_eq!(samples(m.clone()), [(minute, 3)]);
    assert!((m[0].cpu_percent - 30.0).abs() < 1e-9);
    assert_eq!(samples(read(TIERS[2]).await.unwrap()), [(ten, 3)]);
    assert_eq!(s.history_len("m-1").await.unwrap(), [1, 1, 1]);
    let in_set = |mut c: ::redis::aio::MultiplexedConnection, tier: &'static str| async move {
        let n: usize = ::redis::cmd("ZCARD")
            .arg(format!("{{fleet}}:m:m-1@{tier}"))
            .query_async(&mut c)
            .await
            .unwrap();
        n
    };
    assert_eq!(
        in_set(c.clone(), "1m").await,
        0,
        "the open minute is not also in the set"
    );

    // The next minute: it is the open one now, the old node's minute moves to its set.
    s.record(&report("m-1", minute + 61_000, 20.0), "k")
        .await
        .unwrap();
    assert_eq!(
        samples(read(TIERS[1]).await.unwrap()),
        [(minute, 3), (minute + 60_000, 1)]
    );
    assert_eq!(samples(read(TIERS[2]).await.unwrap()), [(ten, 4)]);
    let open: Vec<u8> = ::redis::cmd("GET")
        .arg("{fleet}:m:m-1@open")
        .query_async(&mut c)
        .await
        .unwrap();
    let n = |at: usize| f64::from_le_bytes(open[at..at + 8].try_into().unwrap());
    assert_eq!(
        (open.len(), n(0), n(8)),
        (144, (minute + 60_000) as f64, 1.0)
    );
    assert_eq!((n(72), n(80)), (ten as f64, 4.0));
    assert_eq!(in_set(c.clone(), "1m").await, 1);
    assert_eq!(in_set(c.clone(), "10m").await, 0);
    // A later 10-minute bucket closes this one into its set.
    s.record(&report("m-1", ten + 10 * 60_000 + 1_000, 30.0), "k")
        .await
        .unwrap();
    s.record(&report("m-1", ten + 11 * 60_000 + 1_000, 30.0), "k")
        .await
        .unwrap();
    assert_eq!(
        samples(read(TIERS[2]).await.unwrap()),
        [(ten, 4), (ten + 10 * 60_000, 2)]
    );
    assert_eq!(in_set(c.clone(), "10m").await, 1);
    assert_eq!(dump_all(&**s).await[0].history[2].len(), 2);
}

/// A version before `@state` keeps the latest report in the machine hash (`report`, `ts`);
/// during a rolling upgrade its nodes still write it there. Readers take the newer of the two
/// by timestamp, and a machine only the previous version recorded reads as before.
#[tokio::test(flavor = "multi_thread")]
async fn redis_reports_the_previous_version_keeps_in_the_hash_count_when_newer() {
    let f = redis().await;
    let s = &f.store;
    let mut c = storage_db(&f).await;
    let now = s.now().await.unwrap();
    s.record(&report("m-1", now, 10.0), "k").await.unwrap();
    let old_node_writes = |id: &'static str, t: Millis, cpu: f64| {
        let json = serde_json::to_string(&report(id, t, cpu)).unwrap();
        ::redis::pipe()
            .hset_multiple(
                format!("{{fleet}}:m:{id}"),
                &[
                    ("report", json),
                    ("ts", t.to_string()),
                    ("first_seen", now.to_string()),
                    ("last_seen", now.to_string()),
                    ("key", "k".to_string()),
                ],
            )
            .zadd("{fleet}:m:@index", id, now)
            .clone()
    };
    let cpu = |id| async move { s.machine(id).await.unwrap().unwrap().report.cpu_percent };
    let _: () = old_node_writes("m-1", now + 1_000, 77.0)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(cpu("m-1").await, 77.0, "the old node's report is newer");
    s.record(&report("m-1", now + 2_000, 5.0), "k")
        .await
        .unwrap();
    assert_eq!(cpu("m-1").await, 5.0, "ours is newer");
    let _: () = old_node_writes("m-2", now, 33.0)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(cpu("m-2").await, 33.0);
    let snap = s.machines().await.unwrap();
    assert!(snap.problems.is_empty(), "{:?}", snap.problems);
    assert_eq!(snap.machines.len(), 2);
}

/// A node of a version before the `@open` string keeps a rollup tier's open bucket as JSON
/// in the machine hash (`open1`, `open2`). During a rolling upgrade both kinds of node record
/// the same machine: readers see the union, and the next report folds the JSON buckets in
/// and deletes them, losing no sample.
#[tokio::test(flavor = "multi_thread")]
async fn redis_store_folds_open_buckets_left_by_an_earlier_version() {
    let f = redis().await;
    let s = &f.store;
    let now = s.now().await.unwrap();
    let t = TIERS[2].bucket_start(now - 30 * 60_000) + 10 * 60_000 + 1_000;
    s.record(&report("m-1", t, 10.0), "k").await.unwrap();
    let mut c = storage_db(&f).await;
    let bucket = |t: i64, n: u64, cpu: f64| {
        serde_json::json!({"t": t, "n": n, "cpu_sum": cpu * n as f64, "cpu_max": cpu,
            "mem_sum": 25.0 * n as f64, "load_sum": 1.0 * n as f64, "disk_max": 40.0,
            "rx": 1_000_000.0, "tx": 500_000.0})
        .to_string()
    };
    // The old node merged two samples into this minute; its 10-minute bucket is the one
    // before ours.
    let minute = TIERS[1].bucket_start(t);
    let previous = TIERS[2].bucket_start(t) - 10 * 60_000;
    let _: () = ::redis::cmd("HSET")
        .arg("{fleet}:m:m-1")
        .arg("open1")
        .arg(bucket(minute, 2, 40.0))
        .arg("open2")
        .arg(bucket(previous, 1, 70.0))
        .query_async(&mut c)
        .await
        .unwrap();
    let read = |tier| s.history("m-1", tier, 0, now + 60_000);
    assert_eq!(samples(read(TIERS[1]).await.unwrap()), [(minute, 3)]);
    assert_eq!(
        samples(read(TIERS[2]).await.unwrap()),
        [(previous, 1), (TIERS[2].bucket_start(t), 1)]
    );
    assert_eq!(s.history_len("m-1").await.unwrap(), [1, 1, 2]);

    s.record(&report("m-1", t + 1_000, 20.0), "k")
        .await
        .unwrap();
    let left: (Option<String>, Option<String>) = ::redis::cmd("HMGET")
        .arg("{fleet}:m:m-1")
        .arg("open1")
        .arg("open2")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(left, (None, None), "folded in and deleted");
    let minute_points = read(TIERS[1]).await.unwrap();
    assert_eq!(samples(minute_points.clone()), [(minute, 4)]);
    // (10 + 20 + 2 × 40) / 4
    assert!((minute_points[0].cpu_percent - 27.5).abs() < 1e-9);
    assert_eq!(
        samples(read(TIERS[2]).await.unwrap()),
        [(previous, 1), (TIERS[2].bucket_start(t), 2)]
    );
    assert_eq!(dump_all(&**s).await[0].history[2].len(), 2);
}

/// PostgreSQL follows writes by transaction id: a read right after another re-reads nothing,
/// however recently the machines reported (a clock-based store re-reads its overlap).
#[tokio::test(flavor = "multi_thread")]
async fn postgres_changes_reread_nothing_when_nothing_was_written() {
    let f = postgres().await;
    let now = f.store.now().await.unwrap();
    for i in 0..20 {
        f.store
            .record(&report(&format!("m-{i}"), now, 1.0), "k")
            .await
            .unwrap();
    }
    let all = f.other.changed_since(None).await.unwrap();
    assert_eq!((all.total, all.machines.len()), (20, 20));
    let again = f.other.changed_since(Some(all.next_since)).await.unwrap();
    assert_eq!(again.total, 20);
    assert!(
        again.machines.is_empty(),
        "{} re-read",
        again.machines.len()
    );
    f.store
        .record(&report("m-3", now + 1, 2.0), "k")
        .await
        .unwrap();
    let next = f.other.changed_since(Some(again.next_since)).await.unwrap();
    let ids: Vec<&str> = next
        .machines
        .iter()
        .map(|m| m.report.machine_id.as_str())
        .collect();
    assert_eq!(ids, ["m-3"]);
}
