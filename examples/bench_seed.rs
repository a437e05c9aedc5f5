//! Seeds stores for `scripts/bench-scale` through the crate's own store APIs, so the
//! benchmark measures exactly the layout `fleetctl` writes.
//!
//!   cargo run --release --example bench_seed -- CONFIG sessions N   # N expired SQLite sessions
//!   cargo run --release --example bench_seed -- CONFIG cluster N    # N active nodes + a leader
//!
//! Sessions go to `sessions.db_path` (the config's `sessions.backend` must be `sqlite`); nodes go
//! to whatever `cluster.backend` the config names.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use fleetctl::cluster::NodeInfo;
use fleetctl::cluster::backend;
use fleetctl::config::{BackendKind, Loaded};
use fleetctl::sessions::sqlite::SqliteStore;
use fleetctl::sessions::{AtRest, Session, SessionData, SessionInfo, SessionStore};
use sha2::{Digest, Sha256};

/// Sessions per `import` call (one transaction each): large enough to amortise the commit,
/// small enough that the seeder itself stays small in memory.
const IMPORT_CHUNK: u64 = 50_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [config, what, n] = args.as_slice() else {
        bail!("usage: bench_seed CONFIG sessions|cluster N");
    };
    let n: u64 = n.parse().context("N must be a number")?;
    let config = Loaded::from_file(Path::new(config))?.config;
    match what.as_str() {
        "sessions" => seed_sessions(&config.sessions, n).await,
        "cluster" => seed_cluster(&config.cluster, n).await,
        other => bail!("unknown store {other:?}: expected sessions or cluster"),
    }
}

/// `n` sessions that expired an hour ago, under `sessions.db_path`.
async fn seed_sessions(config: &fleetctl::config::SessionsConfig, n: u64) -> anyhow::Result<()> {
    if config.backend != BackendKind::Sqlite {
        bail!("sessions.backend must be sqlite, not {}", config.backend);
    }
    let store = SqliteStore::open(config, AtRest::none()).await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let expired_at = now - 3_600_000;
    let mut seeded = 0;
    while seeded < n {
        let chunk: Vec<SessionInfo> = (seeded..n.min(seeded + IMPORT_CHUNK))
            .map(|i| SessionInfo {
                id_hash: hex::encode(Sha256::digest(format!("bench-session-{i}"))),
                session: Session {
                    user: format!("user{}", i % 1000),
                    created_at: expired_at - 7_200_000,
                    last_seen: expired_at - 3_600_000,
                    expires_at: expired_at,
                    csrf_token: hex::encode(Sha256::digest(format!("csrf-{i}"))),
                    data: SessionData::new(),
                },
            })
            .collect();
        seeded += store.import(chunk).await?;
    }
    eprintln!("seeded {seeded} expired sessions");
    Ok(())
}

/// `n` freshly registered nodes `bench-node-000…`, the first holding the leader lease for an
/// hour so `cluster status` reports a healthy cluster.
async fn seed_cluster(config: &fleetctl::config::ClusterConfig, n: u64) -> anyhow::Result<()> {
    let backend = backend::open(config).await?;
    for i in 0..n {
        backend
            .register(&NodeInfo {
                node_id: format!("bench-node-{i:03}"),
                hostname: format!("bench-host-{i:03}"),
                port: 8768,
                url: format!("http://bench-host-{i:03}:8768"),
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .await?;
    }
    if !backend
        .try_acquire_leader("bench-node-000", Duration::from_secs(3600))
        .await?
    {
        bail!("another node already holds the leader lease");
    }
    eprintln!("registered {n} nodes in the {} backend", backend.kind());
    Ok(())
}
