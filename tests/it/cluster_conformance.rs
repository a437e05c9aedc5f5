//! One conformance suite for every `ClusterBackend`: each test below is an async function
//! taking a [`Fixture`], and `conformance_suite!` instantiates it once per backend, so nextest
//! shows `cluster_conformance::redis::leader_handover`, `cluster_conformance::sqlite::…`,
//! `cluster_conformance::file::…`. The three backends must pass the same tests unchanged.
//!
//! Redis runs in three topologies (tests/it/support/redis_target.rs), each private to its
//! test: `redis` (one plain server), `redis_tls_acl` (TLS with a private CA, logged in as the
//! least-privilege ACL user of docs/cluster.md) and `redis_sentinel` (master + replica + three
//! sentinels, the master found through them). SQLite and file use a fresh tempdir. Each
//! "handle" opened from a fixture is a separate connection (or database connection, or set of
//! file handles), standing in for a separate fleetctl process.
//!
//! Timing: expiry is tested with sub-second leases and timeouts. That assumes the file
//! backend's filesystem stamps mtimes finer than ~50 ms (ext4, xfs, btrfs, tmpfs and NFSv3+
//! do; FAT and ext3 with 1-2 s granularity would not pass, and are not supported).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleetctl::cluster::backend::{self, BackendError, ClusterBackend, Millis, NodeInfo};
use fleetctl::config::{BackendKind, ClusterConfig};
use tokio::sync::Barrier;

use crate::support::RedisServer;
use crate::support::postgres::PgServer;
use crate::support::redis_target::{TestRedis, Topology};

/// A backend under test: the config that opens it and what keeps it alive.
pub struct Fixture {
    kind: BackendKind,
    config: ClusterConfig,
    redis: Option<TestRedis>,
    pg: Option<PgServer>,
    dir: tempfile::TempDir,
}

impl Fixture {
    /// A private PostgreSQL server (tests/it/support/postgres.rs).
    fn postgres() -> Fixture {
        let mut fx = Self::with(BackendKind::Postgres, None);
        let pg = PgServer::start();
        fx.config.postgres = pg.config();
        fx.pg = Some(pg);
        fx
    }

    fn new(kind: BackendKind) -> Fixture {
        assert_ne!(
            kind,
            BackendKind::Redis,
            "Redis fixtures name their topology"
        );
        Self::with(kind, None)
    }

    fn redis(topology: Topology) -> Fixture {
        Self::with(BackendKind::Redis, Some(topology))
    }

    fn with(kind: BackendKind, topology: Option<Topology>) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = ClusterConfig {
            enabled: true,
            backend: kind,
            state_path: dir.path().join("cluster"),
            ..ClusterConfig::default()
        };
        let redis = topology.map(|t| {
            let redis = TestRedis::start(t);
            redis.apply_to_cluster(&mut config, 0);
            redis
        });
        Fixture {
            kind,
            config,
            redis,
            pg: None,
            dir,
        }
    }

    /// A new handle on the same backend, like another process opening it.
    async fn open(&self) -> Arc<dyn ClusterBackend> {
        backend::open(&self.config)
            .await
            .unwrap_or_else(|e| panic!("open {} backend: {e}", self.kind))
    }

    /// `n` handles opened at the same time.
    async fn open_many(&self, n: usize) -> Vec<Arc<dyn ClusterBackend>> {
        futures::future::join_all((0..n).map(|_| self.open())).await
    }

    /// Damage the stored record of `node_id` the way a crash, a disk problem or a careless
    /// admin would. This spells each backend's storage layout on purpose: it simulates
    /// something outside fleetctl writing there.
    async fn corrupt_node(&self, node_id: &str) {
        match self.kind {
            BackendKind::Redis => {
                let mut conn = self.redis.as_ref().expect("redis fixture").admin(0);
                ::redis::cmd("SET")
                    .arg(format!("{{fleet}}:node:{node_id}"))
                    .arg("{\"node_id\": \"garbage, not json")
                    .query::<()>(&mut conn)
                    .expect("write garbage");
            }
            BackendKind::Sqlite => {
                let db = rusqlite::Connection::open(self.config.state_path.join("cluster.db"))
                    .expect("open test db");
                db.busy_timeout(Duration::from_secs(5)).unwrap();
                let n = db
                    .execute(
                        "UPDATE nodes SET port = 'not a port' WHERE node_id = ?1",
                        [node_id],
                    )
                    .expect("write bad row");
                assert_eq!(n, 1, "no row to damage");
            }
            BackendKind::Postgres => {
                let pg = self.pg.as_ref().expect("postgres fixture");
                let n = pg.psql(&format!(
                    "WITH u AS (UPDATE cluster_nodes SET port = 70000 WHERE node_id = '{node_id}' RETURNING 1) SELECT count(*) FROM u"
                ));
                assert_eq!(n, "1", "no row to damage");
            }
            BackendKind::File => {
                let path = self
                    .config
                    .state_path
                    .join("nodes")
                    .join(format!("{node_id}.json"));
                let bytes = std::fs::read(&path).expect("read node file");
                std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("truncate node file");
            }
        }
    }
}

fn node(id: &str) -> NodeInfo {
    NodeInfo {
        node_id: id.to_string(),
        hostname: format!("{id}.host"),
        port: 8768,
        url: format!("http://{id}.host:8768"),
        version: "0.1.0".into(),
    }
}

fn ms(d: Duration) -> Millis {
    d.as_millis() as Millis
}

/// Slack for comparing two readings of the backend clock taken a moment apart (file mtimes
/// come from the kernel's coarse clock, a few milliseconds behind).
const CLOCK_SLACK_MS: Millis = 20;

async fn register_lists_node_with_backend_clock(fx: Fixture) {
    let b = fx.open().await;
    assert_eq!(b.kind(), fx.kind);
    assert!(!b.location().is_empty());

    let before = b.now().await.unwrap();
    let rec = b.register(&node("n1")).await.unwrap();
    let after = b.now().await.unwrap();
    assert!(
        before - CLOCK_SLACK_MS <= rec.started_at && rec.started_at <= after + CLOCK_SLACK_MS,
        "started_at {} not within backend now [{before}, {after}]",
        rec.started_at
    );
    assert!(rec.last_heartbeat >= rec.started_at);
    assert_eq!(rec.info, node("n1"));
    assert!(!rec.draining && !rec.left);

    let listing = b.list().await.unwrap();
    assert_eq!(listing.nodes, vec![rec.clone()]);
    assert!(listing.problems.is_empty(), "{:?}", listing.problems);
    assert!(listing.now >= rec.last_heartbeat - CLOCK_SLACK_MS);

    // Registering again replaces the record and restarts its clock.
    let again = b.register(&node("n1")).await.unwrap();
    assert!(again.started_at >= rec.started_at);
    assert_eq!(b.list().await.unwrap().nodes.len(), 1);
}

async fn heartbeat_advances_last_heartbeat(fx: Fixture) {
    let b = fx.open().await;
    let rec = b.register(&node("n1")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let beat = b.heartbeat("n1").await.unwrap().expect("node exists");
    assert!(
        beat.last_heartbeat >= rec.last_heartbeat + 40,
        "heartbeat {} did not advance from {}",
        beat.last_heartbeat,
        rec.last_heartbeat
    );
    assert_eq!(beat.started_at, rec.started_at);
    assert_eq!(beat.info, rec.info);
    let listed = b.list().await.unwrap().nodes;
    assert_eq!(listed[0].last_heartbeat, beat.last_heartbeat);
}

async fn silent_node_ages_past_timeout(fx: Fixture) {
    let node_timeout = Duration::from_millis(300);
    let b = fx.open().await;
    b.register(&node("quiet")).await.unwrap();
    tokio::time::sleep(node_timeout + Duration::from_millis(150)).await;

    let listing = b.list().await.unwrap();
    let age = listing.now - listing.nodes[0].last_heartbeat;
    assert!(
        age > ms(node_timeout),
        "age {age} ms after a silent {node_timeout:?}"
    );

    b.heartbeat("quiet").await.unwrap().expect("node exists");
    let listing = b.list().await.unwrap();
    let age = listing.now - listing.nodes[0].last_heartbeat;
    assert!(
        age < ms(node_timeout),
        "age {age} ms right after a heartbeat"
    );
}

async fn heartbeat_after_remove_returns_none(fx: Fixture) {
    let b = fx.open().await;
    b.register(&node("n1")).await.unwrap();
    assert!(b.remove("n1").await.unwrap());
    assert!(b.heartbeat("n1").await.unwrap().is_none());
    assert!(
        !b.remove("n1").await.unwrap(),
        "second remove finds nothing"
    );
    assert!(b.heartbeat("never-registered").await.unwrap().is_none());
    assert!(b.list().await.unwrap().nodes.is_empty());
}

async fn drain_flag_from_another_handle_is_seen_at_next_heartbeat(fx: Fixture) {
    let node_handle = fx.open().await;
    let admin = fx.open().await;
    let rec = node_handle.register(&node("n1")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;

    assert!(admin.set_draining("n1", true).await.unwrap());
    // Draining a node is not a sign of life: a dead node must not look alive because an
    // admin drained it.
    let listed = admin.list().await.unwrap().nodes;
    assert!(listed[0].draining);
    assert_eq!(listed[0].last_heartbeat, rec.last_heartbeat);

    let beat = node_handle.heartbeat("n1").await.unwrap().unwrap();
    assert!(beat.draining, "node did not see the drain flag");

    assert!(admin.set_draining("n1", false).await.unwrap());
    let beat = node_handle.heartbeat("n1").await.unwrap().unwrap();
    assert!(!beat.draining, "node did not see the undrain");

    assert!(!admin.set_draining("no-such-node", true).await.unwrap());
}

async fn deregister_marks_left_and_register_clears_it(fx: Fixture) {
    let b = fx.open().await;
    b.register(&node("n1")).await.unwrap();
    b.register(&node("n2")).await.unwrap();
    b.set_draining("n1", true).await.unwrap();
    b.deregister("n1").await.unwrap();
    b.deregister("no-such-node").await.unwrap();

    let listing = b.list().await.unwrap();
    let n1 = listing
        .nodes
        .iter()
        .find(|n| n.info.node_id == "n1")
        .unwrap();
    let n2 = listing
        .nodes
        .iter()
        .find(|n| n.info.node_id == "n2")
        .unwrap();
    assert!(n1.left, "deregistered node is not marked left");
    assert!(!n2.left);

    let back = b.register(&node("n1")).await.unwrap();
    assert!(
        !back.left && !back.draining,
        "register must clear left and draining"
    );
}

async fn leader_handover(fx: Fixture) {
    let a = fx.open().await;
    let b = fx.open().await;
    let lease = Duration::from_secs(30);
    assert_eq!(a.leader().await.unwrap(), None);

    assert!(a.try_acquire_leader("a", lease).await.unwrap());
    assert!(!b.try_acquire_leader("b", lease).await.unwrap());
    assert_eq!(b.leader().await.unwrap().as_deref(), Some("a"));
    assert!(
        a.try_acquire_leader("a", lease).await.unwrap(),
        "holder renews"
    );

    // Releasing someone else's lease does nothing.
    b.release_leader("b").await.unwrap();
    assert_eq!(b.leader().await.unwrap().as_deref(), Some("a"));

    a.release_leader("a").await.unwrap();
    assert_eq!(b.leader().await.unwrap(), None);
    assert!(b.try_acquire_leader("b", lease).await.unwrap());
    assert_eq!(a.leader().await.unwrap().as_deref(), Some("b"));
    assert!(!a.try_acquire_leader("a", lease).await.unwrap());
}

async fn expired_lease_is_taken_within_one_period(fx: Fixture) {
    let a = fx.open().await;
    let b = fx.open().await;
    let lease = Duration::from_millis(500);
    assert!(a.try_acquire_leader("a", lease).await.unwrap());
    let taken_at = Instant::now();
    // "a" dies here: it never renews. "b" keeps trying, as its heartbeat loop would.
    loop {
        if b.try_acquire_leader("b", lease).await.unwrap() {
            break;
        }
        assert!(
            taken_at.elapsed() < lease + Duration::from_millis(300),
            "lease not taken over within one lease period"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let waited = taken_at.elapsed();
    assert!(
        waited + Duration::from_millis(100) >= lease,
        "lease taken over after {waited:?}, before it expired"
    );
    assert_eq!(a.leader().await.unwrap().as_deref(), Some("b"));
    assert!(
        !a.try_acquire_leader("a", lease).await.unwrap(),
        "the old holder must not renew a lease it lost"
    );
}

async fn twenty_nodes_register_concurrently(fx: Fixture) {
    let handles = fx.open_many(20).await;
    let start = Arc::new(Barrier::new(handles.len()));
    let tasks: Vec<_> = handles
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let (h, start) = (h.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                let id = format!("node-{i:02}");
                h.register(&node(&id)).await.unwrap();
                h.heartbeat(&id).await.unwrap().expect("own record");
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let listing = handles[0].list().await.unwrap();
    let ids: HashSet<_> = listing
        .nodes
        .iter()
        .map(|n| n.info.node_id.clone())
        .collect();
    assert_eq!(ids.len(), 20, "listed: {ids:?}");
    assert!(listing.problems.is_empty(), "{:?}", listing.problems);
}

async fn contended_lease_has_one_holder_at_a_time(fx: Fixture) {
    const CONTENDERS: usize = 10;
    let handles = fx.open_many(CONTENDERS).await;

    // Rounds of simultaneous attempts on a free lease: after a release, and after expiry.
    for round in 0..4 {
        let start = Arc::new(Barrier::new(CONTENDERS));
        // Long enough that the winner still holds it when `leader()` is read on a loaded machine.
        let short = Duration::from_millis(600);
        let lease = if round % 2 == 0 {
            Duration::from_secs(30)
        } else {
            short
        };
        let tasks: Vec<_> = handles
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let (h, start) = (h.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    let id = format!("c{i}");
                    h.try_acquire_leader(&id, lease)
                        .await
                        .unwrap()
                        .then_some(id)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            winners.extend(t.await.unwrap());
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let leader = handles[0].leader().await.unwrap();
        assert_eq!(leader.as_ref(), Some(&winners[0]), "round {round}");
        if lease == short {
            tokio::time::sleep(short + Duration::from_millis(100)).await;
        } else {
            handles[0].release_leader(&winners[0]).await.unwrap();
        }
    }

    // Overlapping attempts while the holder keeps renewing: nobody else ever wins.
    let lease = Duration::from_secs(3);
    let until = Instant::now() + Duration::from_millis(1500);
    let tasks: Vec<_> = handles
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let h = h.clone();
            tokio::spawn(async move {
                let id = format!("c{i}");
                let mut won = false;
                while Instant::now() < until {
                    won |= h.try_acquire_leader(&id, lease).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                won.then_some(id)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        winners.extend(t.await.unwrap());
    }
    assert_eq!(
        winners.len(),
        1,
        "several holders under contention: {winners:?}"
    );
}

async fn corrupt_records_are_reported_and_skipped(fx: Fixture) {
    let b = fx.open().await;
    b.register(&node("good")).await.unwrap();
    b.register(&node("bad")).await.unwrap();
    fx.corrupt_node("bad").await;

    let listing = b.list().await.unwrap();
    let ids: Vec<_> = listing
        .nodes
        .iter()
        .map(|n| n.info.node_id.as_str())
        .collect();
    assert_eq!(ids, ["good"]);
    assert_eq!(listing.problems.len(), 1, "{:?}", listing.problems);
    assert!(
        listing.problems[0].contains("bad"),
        "problem does not name the record: {}",
        listing.problems[0]
    );

    // Documented in backend.rs: heartbeat answers None (the node re-registers over it),
    // admin changes answer Corrupt, and neither touches the damaged record.
    assert!(b.heartbeat("bad").await.unwrap().is_none());
    let err = b.set_draining("bad", true).await.unwrap_err();
    assert!(matches!(err, BackendError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("bad"), "{err}");
    let err = b.deregister("bad").await.unwrap_err();
    assert!(matches!(err, BackendError::Corrupt { .. }), "{err}");
    assert_eq!(b.list().await.unwrap().problems.len(), 1);

    // The operator's way out: remove it; or the node's: register again.
    assert!(b.remove("bad").await.unwrap());
    let listing = b.list().await.unwrap();
    assert!(listing.problems.is_empty(), "{:?}", listing.problems);
    b.register(&node("bad")).await.unwrap();
    fx.corrupt_node("bad").await;
    b.register(&node("bad")).await.unwrap();
    let listing = b.list().await.unwrap();
    assert_eq!(listing.nodes.len(), 2);
    assert!(listing.problems.is_empty(), "{:?}", listing.problems);
}

async fn invalid_node_ids_are_rejected(fx: Fixture) {
    let b = fx.open().await;
    let long = "x".repeat(300);
    let bad_ids = [
        "",
        ".",
        "..",
        "../escape",
        "a/b",
        "/etc/passwd",
        "..\\x",
        "a b",
        "x\0y",
        &long,
    ];
    for id in bad_ids {
        let invalid = |r: Result<(), BackendError>| {
            assert!(
                matches!(r, Err(BackendError::InvalidNodeId { .. })),
                "{id:?} accepted: {r:?}"
            )
        };
        invalid(b.register(&node(id)).await.map(|_| ()));
        invalid(b.heartbeat(id).await.map(|_| ()));
        invalid(b.set_draining(id, true).await.map(|_| ()));
        invalid(b.deregister(id).await);
        invalid(b.remove(id).await.map(|_| ()));
        invalid(
            b.try_acquire_leader(id, Duration::from_secs(5))
                .await
                .map(|_| ()),
        );
        invalid(b.release_leader(id).await);
    }
    let listing = b.list().await.unwrap();
    assert!(listing.nodes.is_empty() && listing.problems.is_empty());
    assert!(!fx.dir.path().join("escape.json").exists());
}

macro_rules! conformance_suite {
    ($($test:ident),* $(,)?) => {
        conformance_suite!(@backend redis, Fixture::redis(Topology::Plain); $($test),*);
        conformance_suite!(@backend redis_tls_acl, Fixture::redis(Topology::TlsAcl); $($test),*);
        conformance_suite!(@backend redis_sentinel, Fixture::redis(Topology::Sentinel); $($test),*);
        conformance_suite!(@backend sqlite, Fixture::new(BackendKind::Sqlite); $($test),*);
        conformance_suite!(@backend file, Fixture::new(BackendKind::File); $($test),*);
        conformance_suite!(@backend postgres, Fixture::postgres(); $($test),*);
    };
    (@backend $module:ident, $fixture:expr; $($test:ident),*) => {
        mod $module {
            #[allow(unused_imports)]
            use super::{BackendKind, Fixture, Topology};
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test($fixture).await;
                }
            )*
        }
    };
}

conformance_suite!(
    register_lists_node_with_backend_clock,
    heartbeat_advances_last_heartbeat,
    silent_node_ages_past_timeout,
    heartbeat_after_remove_returns_none,
    drain_flag_from_another_handle_is_seen_at_next_heartbeat,
    deregister_marks_left_and_register_clears_it,
    leader_handover,
    expired_lease_is_taken_within_one_period,
    twenty_nodes_register_concurrently,
    contended_lease_has_one_holder_at_a_time,
    corrupt_records_are_reported_and_skipped,
    invalid_node_ids_are_rejected,
);

/// Redis only: outages and credentials.
mod redis_outage {
    use super::*;

    fn config_for(server: &RedisServer) -> ClusterConfig {
        ClusterConfig {
            enabled: true,
            backend: BackendKind::Redis,
            redis_host: "127.0.0.1".into(),
            redis_port: server.port,
            redis_db: 0,
            ..ClusterConfig::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn open_against_stopped_server_is_unavailable_within_seconds() {
        let mut server = RedisServer::start();
        server.stop();
        let config = ClusterConfig {
            redis_password: Some("hunter2-secret".into()),
            ..config_for(&server)
        };
        let started = Instant::now();
        let err = match backend::open(&config).await {
            Ok(_) => panic!("opened a stopped redis"),
            Err(e) => e,
        };
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "took {:?}",
            started.elapsed()
        );
        let BackendError::Unavailable { location, .. } = &err else {
            panic!("expected Unavailable, got {err}");
        };
        assert_eq!(location, &format!("redis://127.0.0.1:{}/0", server.port));
        let message = err.to_string();
        assert!(message.contains(location.as_str()), "{message}");
        assert!(
            !message.contains("hunter2"),
            "password in message: {message}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn open_against_a_silent_server_gives_up_within_seconds() {
        // Accepts TCP connections (the kernel completes them from the backlog) and never
        // answers: a hung or firewalled-after-connect Redis.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let config = ClusterConfig {
            enabled: true,
            backend: BackendKind::Redis,
            redis_host: "127.0.0.1".into(),
            redis_port: silent.local_addr().unwrap().port(),
            ..ClusterConfig::default()
        };
        let started = Instant::now();
        let err = match backend::open(&config).await {
            Ok(_) => panic!("opened a server that never answers"),
            Err(e) => e,
        };
        assert!(matches!(err, BackendError::Unavailable { .. }), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(7),
            "took {:?}",
            started.elapsed()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn same_handle_works_again_after_restart() {
        let mut server = RedisServer::start();
        let b = backend::open(&config_for(&server)).await.unwrap();
        b.register(&node("n1")).await.unwrap();

        server.stop();
        let started = Instant::now();
        let err = b.heartbeat("n1").await.unwrap_err();
        assert!(matches!(err, BackendError::Unavailable { .. }), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "took {:?}",
            started.elapsed()
        );

        server.restart();
        let restarted = Instant::now();
        // The server came back empty: the node hears "not registered" and registers again.
        let beat = loop {
            match b.heartbeat("n1").await {
                Ok(beat) => break beat,
                Err(e) if restarted.elapsed() < Duration::from_secs(5) => {
                    eprintln!("not yet reconnected: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("no reconnect within 5 s of the restart: {e}"),
            }
        };
        assert!(beat.is_none());
        b.register(&node("n1")).await.unwrap();
        assert_eq!(b.list().await.unwrap().nodes.len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn password_is_used_and_never_shown() {
        let server = RedisServer::start();
        let client = ::redis::Client::open(server.url()).unwrap();
        let mut conn = client.get_connection().unwrap();
        ::redis::cmd("CONFIG")
            .arg("SET")
            .arg("requirepass")
            .arg("right-secret")
            .query::<()>(&mut conn)
            .unwrap();

        let good = ClusterConfig {
            redis_password: Some("right-secret".into()),
            ..config_for(&server)
        };
        let b = backend::open(&good).await.unwrap();
        b.register(&node("n1")).await.unwrap();

        let wrong = ClusterConfig {
            redis_password: Some("wrong-secret".into()),
            ..config_for(&server)
        };
        let err = match backend::open(&wrong).await {
            Ok(_) => panic!("opened with a wrong password"),
            Err(e) => e,
        };
        assert!(matches!(err, BackendError::Unavailable { .. }), "{err}");
        assert!(!err.to_string().contains("wrong-secret"), "{err}");
    }
}

/// The ACL user of docs/cluster.md is the one the `redis_tls_acl` suites log in as.
#[test]
fn documented_acl_user_is_the_one_the_suites_use() {
    use crate::support::redis_server::{FLEET_ACL_RULES, FLEET_ACL_USER};
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/cluster.md"))
        .expect("read docs/cluster.md");
    let section = doc
        .split_once("\n## Redis ACL user\n")
        .expect("docs/cluster.md has a \"Redis ACL user\" section")
        .1;
    let line = section
        .lines()
        .find(|l| l.starts_with("ACL SETUSER "))
        .expect("the section shows an ACL SETUSER line");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        &words[..5],
        ["ACL", "SETUSER", FLEET_ACL_USER, "reset", "on"],
        "{line}"
    );
    assert!(words[5].starts_with('>'), "{line}");
    assert_eq!(
        &words[6..],
        FLEET_ACL_RULES,
        "docs/cluster.md and FLEET_ACL_RULES (tests/it/support/redis_server.rs) differ"
    );
}
