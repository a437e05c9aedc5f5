//! `ClusterManager` against every backend, in-process: pruning rules, leader hand-over
//! between nodes, drain flags followed at the next heartbeat, health transitions.

use std::sync::Arc;
use std::time::Duration;

use fleetctl::cluster::backend::{self, ClusterBackend, NodeInfo};
use fleetctl::cluster::{ClusterManager, Health, Timings};
use fleetctl::config::{BackendKind, ClusterConfig};

use crate::support::RedisServer;

struct Fixture {
    config: ClusterConfig,
    _redis: Option<RedisServer>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new(kind: BackendKind) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ClusterConfig {
            enabled: true,
            backend: kind,
            state_path: dir.path().join("cluster"),
            ..ClusterConfig::default()
        };
        let redis = (kind == BackendKind::Redis).then(|| {
            let s = RedisServer::start();
            config.redis_host = "127.0.0.1".into();
            config.redis_port = s.port;
            s
        });
        Fixture {
            config,
            _redis: redis,
            _dir: dir,
        }
    }

    async fn backend(&self) -> Arc<dyn ClusterBackend> {
        backend::open(&self.config).await.unwrap()
    }

    async fn manager(&self, id: &str, timings: Timings) -> Arc<ClusterManager> {
        ClusterManager::new(self.backend().await, info(id), timings, vec![])
    }
}

fn info(id: &str) -> NodeInfo {
    NodeInfo {
        node_id: id.into(),
        hostname: "localhost".into(),
        port: 1,
        url: format!("http://{id}:1"),
        version: "test".into(),
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

macro_rules! manager_suite {
    ($($kind:ident => $backend:expr),*) => {$(
        mod $kind {
            use super::*;
            #[tokio::test(flavor = "multi_thread")]
            async fn prunes_dead_nodes_but_not_in_its_first_node_timeout() {
                super::prunes_dead_nodes_but_not_in_its_first_node_timeout(Fixture::new($backend)).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn leader_hands_over_when_the_leader_dies() {
                super::leader_hands_over_when_the_leader_dies(Fixture::new($backend)).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn admin_drain_is_followed_and_leadership_moves() {
                super::admin_drain_is_followed_and_leadership_moves(Fixture::new($backend)).await;
            }
        }
    )*};
}

manager_suite!(redis => BackendKind::Redis, sqlite => BackendKind::Sqlite, file => BackendKind::File);

async fn prunes_dead_nodes_but_not_in_its_first_node_timeout(f: Fixture) {
    let b = f.backend().await;
    b.register(&info("dead")).await.unwrap();
    b.register(&info("gone")).await.unwrap();
    b.deregister("gone").await.unwrap();
    tokio::time::sleep(ms(400)).await;
    // Both are silent for longer than prune_after, but the manager has just started.
    let timings = Timings {
        heartbeat_interval: ms(100),
        node_timeout: ms(800),
        prune_after: ms(200),
    };
    let m = f.manager("live", timings).await;
    m.tick().await;
    m.run_due_jobs().await;
    assert!(m.is_leader());
    let ids = |b: Arc<dyn ClusterBackend>| async move {
        let mut v: Vec<String> = b
            .list()
            .await
            .unwrap()
            .nodes
            .into_iter()
            .map(|n| n.info.node_id)
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        ids(b.clone()).await,
        ["dead", "gone", "live"],
        "nothing pruned in the first node_timeout"
    );
    tokio::time::sleep(ms(900)).await;
    m.tick().await;
    // Leader jobs run as their own tasks in a node; here, one deterministic round.
    m.run_due_jobs().await;
    assert_eq!(
        ids(b.clone()).await,
        ["live"],
        "inactive and left nodes pruned after prune_after"
    );
}

async fn leader_hands_over_when_the_leader_dies(f: Fixture) {
    let timings = Timings {
        heartbeat_interval: ms(100),
        node_timeout: ms(600),
        prune_after: Duration::from_secs(3600),
    };
    let a = f.manager("a", timings).await;
    let b = f.manager("b", timings).await;
    a.tick().await;
    b.tick().await;
    assert!(a.is_leader() && !b.is_leader(), "first to tick leads");
    // `a` dies (stops heartbeating). `b` keeps ticking and must take over within one lease
    // period plus one heartbeat.
    let died = std::time::Instant::now();
    while !b.is_leader() {
        assert!(
            died.elapsed() < timings.node_timeout + timings.heartbeat_interval * 2,
            "no hand-over after {:?}",
            died.elapsed()
        );
        tokio::time::sleep(timings.heartbeat_interval).await;
        b.tick().await;
        assert!(
            !(a.is_leader() && b.is_leader()),
            "two nodes believe they lead"
        );
    }
    eprintln!(
        "[measure] {:?}: leader hand-over after {:.2}s (lease {:?})",
        f.config.backend,
        died.elapsed().as_secs_f64(),
        timings.node_timeout
    );
    // The old leader comes back: it must see it lost the lease.
    a.tick().await;
    assert!(!a.is_leader());
    assert_eq!(
        f.backend().await.leader().await.unwrap().as_deref(),
        Some("b")
    );
}

async fn admin_drain_is_followed_and_leadership_moves(f: Fixture) {
    let timings = Timings {
        heartbeat_interval: ms(100),
        node_timeout: ms(600),
        prune_after: Duration::from_secs(3600),
    };
    let a = f.manager("a", timings).await;
    let b = f.manager("b", timings).await;
    a.tick().await;
    b.tick().await;
    assert_eq!(a.health(), Health::Healthy);
    assert!(a.is_leader());
    f.backend().await.set_draining("a", true).await.unwrap();
    assert_eq!(
        a.health(),
        Health::Healthy,
        "seen at the next heartbeat, not before"
    );
    a.tick().await;
    assert!(
        matches!(a.health(), Health::Draining { .. }),
        "{:?}",
        a.health()
    );
    assert!(!a.is_leader(), "a draining node gives the lease up");
    b.tick().await;
    assert!(
        b.is_leader(),
        "the lease was released, so the next node takes it at once"
    );
    f.backend().await.set_draining("a", false).await.unwrap();
    a.tick().await;
    assert_eq!(a.health(), Health::Healthy);

    // SIGTERM-style drain is final: an undrain in the backend does not bring it back.
    a.begin_shutdown().await;
    assert!(matches!(a.health(), Health::Draining { .. }));
    f.backend().await.set_draining("a", false).await.unwrap();
    a.tick().await;
    assert!(matches!(a.health(), Health::Draining { .. }));
    a.deregister().await.unwrap();
    let listing = f.backend().await.list().await.unwrap();
    assert!(
        listing
            .nodes
            .iter()
            .any(|n| n.info.node_id == "a" && n.left)
    );
}

/// A job that never finishes on its own: counts its steps, one every 20 ms.
struct EndlessJob {
    steps: Arc<std::sync::atomic::AtomicU64>,
}

#[async_trait::async_trait]
impl fleetctl::cluster::manager::LeaderJob for EndlessJob {
    fn name(&self) -> &str {
        "endless"
    }
    fn every(&self) -> Duration {
        ms(50)
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(60)
    }
    async fn run(&self) -> anyhow::Result<String> {
        loop {
            self.steps.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(ms(20)).await;
        }
    }
}

/// A leader job that runs for a long time (a GC over a million sessions) does not delay the
/// heartbeat, and stops at its next step once the lease is gone.
#[tokio::test(flavor = "multi_thread")]
async fn a_long_leader_job_never_delays_heartbeats_and_stops_with_the_lease() {
    use std::sync::atomic::Ordering;
    let f = Fixture::new(BackendKind::Sqlite);
    let timings = Timings {
        heartbeat_interval: ms(100),
        node_timeout: ms(600),
        prune_after: Duration::from_secs(3600),
    };
    let steps = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let job = Arc::new(EndlessJob {
        steps: steps.clone(),
    });
    let m = ClusterManager::new(f.backend().await, info("busy"), timings, vec![job]);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let handle = m.spawn(stop_rx);
    // Past the warm-up (one node_timeout), the job runs and keeps running.
    crate::support::node::eventually(Duration::from_secs(5), "the job to run", || async {
        (steps.load(Ordering::SeqCst) > 10).then_some(())
    })
    .await;
    // Meanwhile heartbeats keep landing: the record is never older than two intervals.
    let b = f.backend().await;
    for _ in 0..10 {
        let l = b.list().await.unwrap();
        let age = l.now - l.nodes[0].last_heartbeat;
        assert!(age < 250, "heartbeat {age} ms old while the job runs");
        assert!(m.is_leader());
        tokio::time::sleep(ms(100)).await;
    }
    // Drained: the node gives the lease up at its next heartbeat, and the job stops.
    b.set_draining("busy", true).await.unwrap();
    crate::support::node::eventually(Duration::from_secs(2), "leadership given up", || async {
        (!m.is_leader()).then_some(())
    })
    .await;
    tokio::time::sleep(ms(100)).await;
    let at_stop = steps.load(Ordering::SeqCst);
    tokio::time::sleep(ms(300)).await;
    assert_eq!(
        steps.load(Ordering::SeqCst),
        at_stop,
        "the job took steps after the lease was gone"
    );
    stop_tx.send(true).unwrap();
    handle.await.unwrap();
}
