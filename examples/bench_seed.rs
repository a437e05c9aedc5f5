//! Seeds stores for `scripts/bench-scale` through the crate's own store APIs, so the
//! benchmark measures exactly the layout `fleetctl` writes.
//!
//!   cargo run --release --example bench_seed -- CONFIG sessions N   # N expired SQLite sessions
//!   cargo run --release --example bench_seed -- CONFIG cluster N    # N active nodes + a leader
//!   cargo run --release --example bench_seed -- CONFIG fleet N      # N machines, 24 h of history
//!   cargo run --release --example bench_seed -- CONFIG live-sessions N   # N live sessions
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
        bail!("usage: bench_seed CONFIG sessions|cluster|fleet|live-sessions N");
    };
    let n: u64 = n.parse().context("N must be a number")?;
    let config = Loaded::from_file(Path::new(config))?.config;
    match what.as_str() {
        "sessions" => seed_sessions(&config.sessions, n).await,
        "cluster" => seed_cluster(&config.cluster, n).await,
        "fleet" => seed_fleet(&config.storage, n).await,
        "live-sessions" => seed_live_sessions(&config.sessions, n).await,
        other => {
            bail!("unknown store {other:?}: expected sessions, cluster, fleet or live-sessions")
        }
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

/// `n` machines `bench-m-000000…` in `storage`, each with 24 hours of history as an agent
/// reporting every 5 s leaves it: 720 raw points (the last hour), 1,440 one-minute and 144
/// ten-minute rollups. Written with `import_machines`, 100 machines a call.
async fn seed_fleet(config: &fleetctl::config::StorageConfig, n: u64) -> anyhow::Result<()> {
    use fleetctl::fleet::{self, MachineDump, MachineRecord, Rollup};
    let store = fleet::open(config).await?;
    let now = store.now().await?;
    let point = |t: i64, i: i64, n: u64| Rollup {
        t,
        n,
        cpu_sum: (i % 97) as f64 * n as f64 / 3.0,
        cpu_max: 99.5,
        mem_sum: (i % 89) as f64 * n as f64 / 7.0,
        load_sum: 0.1 * i as f64,
        disk_max: 42.0,
        rx: 1e9 + i as f64,
        tx: 2e9 + i as f64,
    };
    let mut done = 0;
    while done < n {
        let batch: Vec<MachineDump> = (done..n.min(done + 100))
            .map(|m| {
                let id = format!("bench-m-{m:06}");
                let report: fleetctl::fleet::Report = serde_json::from_value(serde_json::json!({
                    "machine_id": id, "hostname": format!("{id}.example.com"),
                    "os": "Debian GNU/Linux 12", "kernel": "6.1.0", "agent_version": "0.1.0",
                    "timestamp": fleetctl::store::time::rfc3339(now - 5_000),
                    "uptime_secs": 86_400, "cpu_percent": 12.5, "cpu_cores": 4,
                    "load": [0.5, 0.4, 0.3],
                    "memory": {"total_bytes": 8_000_000_000u64, "used_bytes": 2_000_000_000u64},
                    "swap": {"total_bytes": 0, "used_bytes": 0},
                    "disks": [{"mount": "/", "total_bytes": 100_000_000_000u64,
                               "used_bytes": 40_000_000_000u64}],
                    "network": {"rx_bytes": 1_000_000, "tx_bytes": 500_000}
                }))
                .expect("a valid report");
                MachineDump {
                    machine_id: id,
                    record: MachineRecord {
                        report,
                        first_seen: now - 86_400_000,
                        last_seen: now - 5_000,
                        api_key: if m % 2 == 0 { "web-tier" } else { "db-tier" }.into(),
                        offline_since: None,
                    },
                    history: [
                        (0..720)
                            .map(|i| point(now - 5_000 * (720 - i), i, 1))
                            .collect(),
                        (0..1440)
                            .map(|i| point((now / 60_000 - (1440 - i)) * 60_000 + 60_000, i, 12))
                            .collect(),
                        (0..144)
                            .map(|i| point((now / 600_000 - (144 - i)) * 600_000 + 600_000, i, 120))
                            .collect(),
                    ],
                }
            })
            .collect();
        done += store.import_machines(batch).await?;
    }
    let usage = ["web-tier", "db-tier"].map(|name| fleet::KeyUsage {
        name: name.into(),
        last_used: now,
    });
    store.import_key_usage(usage.to_vec()).await?;
    eprintln!(
        "seeded {done} machines with 24 h of history in the {} store",
        store.kind()
    );
    Ok(())
}

/// `n` live sessions (logged in an hour ago, used a minute ago) in `sessions`.
async fn seed_live_sessions(
    config: &fleetctl::config::SessionsConfig,
    n: u64,
) -> anyhow::Result<()> {
    let store = fleetctl::sessions::open(config).await?;
    let now = fleetctl::store::time::now_millis();
    let mut seeded = 0;
    while seeded < n {
        let chunk: Vec<SessionInfo> = (seeded..n.min(seeded + 5_000))
            .map(|i| {
                let mut data = SessionData::new();
                data.insert("theme".into(), serde_json::json!("dark"));
                SessionInfo {
                    id_hash: hex::encode(Sha256::digest(format!("bench-live-{i}"))),
                    session: Session {
                        user: format!("user{}", i % 1000),
                        created_at: now - 3_600_000,
                        last_seen: now - 60_000,
                        expires_at: now + 3_600_000,
                        csrf_token: hex::encode(Sha256::digest(format!("csrf-{i}"))),
                        data,
                    },
                }
            })
            .collect();
        seeded += store.import(chunk).await?;
    }
    eprintln!(
        "seeded {seeded} live sessions in the {} store",
        store.backend()
    );
    Ok(())
}
