//! PostgreSQL schema migrations: nodes starting at once against an empty database migrate it
//! once (the advisory lock), and a database migrated by a newer fleetctl is refused with a
//! message that says what to do.

use fleetctl::config::{BackendKind, ClusterConfig, SessionsConfig, StorageConfig};

use crate::support::postgres::PgServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twelve_stores_opening_at_once_migrate_each_store_once() {
    let pg = PgServer::start();
    let cluster = ClusterConfig {
        backend: BackendKind::Postgres,
        postgres: pg.config(),
        ..ClusterConfig::default()
    };
    let sessions = SessionsConfig {
        backend: BackendKind::Postgres,
        postgres: pg.config(),
        ..SessionsConfig::default()
    };
    let storage = StorageConfig {
        backend: BackendKind::Postgres,
        postgres: pg.config(),
        ..StorageConfig::default()
    };
    // Four "nodes", each opening its three stores, all at the same moment.
    let opens = (0..4).map(|_| async {
        let (c, s, f) = tokio::join!(
            fleetctl::cluster::backend::open(&cluster),
            fleetctl::sessions::open(&sessions),
            fleetctl::fleet::open(&storage),
        );
        let (c, s, f) = (c.unwrap(), s.unwrap(), f.unwrap());
        // Each works right away.
        c.now().await.unwrap();
        s.count().await.unwrap();
        f.now().await.unwrap();
    });
    futures::future::join_all(opens).await;
    assert_eq!(
        pg.psql(
            "SELECT string_agg(store || ':' || version, ',' ORDER BY store) FROM fleetctl_schema"
        ),
        "cluster:1,fleet:1,sessions:1"
    );
    // One history row per applied migration: nothing ran twice.
    assert_eq!(pg.psql("SELECT count(*) FROM fleetctl_schema_history"), "3");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_from_a_newer_fleetctl_is_refused() {
    let pg = PgServer::start();
    let storage = StorageConfig {
        backend: BackendKind::Postgres,
        postgres: pg.config(),
        ..StorageConfig::default()
    };
    fleetctl::fleet::open(&storage).await.unwrap();
    pg.psql("UPDATE fleetctl_schema SET version = 99 WHERE store = 'fleet'");
    let err = fleetctl::fleet::open(&storage)
        .await
        .err()
        .expect("refused");
    let message = err.to_string();
    assert!(
        message.contains("newer fleetctl") && message.contains("upgrade fleetctl"),
        "{message}"
    );
}
