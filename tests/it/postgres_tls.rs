//! `sslmode: verify-full` against a real PostgreSQL with TLS: the connection is encrypted
//! (the server says so in `pg_stat_ssl`), a server certificate from another CA is refused,
//! and a server without TLS is refused rather than used in the clear. Every case goes through
//! the session store, as a node would.

use std::time::Duration;

use fleetctl::config::{BackendKind, PgSslMode, PostgresConfig, SessionsConfig};
use fleetctl::sessions::{self, SessionData, SessionError};

use crate::support::certs::Pki;
use crate::support::postgres::PgServer;

fn sessions_config(pg: PostgresConfig) -> SessionsConfig {
    SessionsConfig {
        backend: BackendKind::Postgres,
        postgres: pg,
        ..SessionsConfig::default()
    }
}

fn verify_full(server: &PgServer, ca: &std::path::Path) -> PostgresConfig {
    PostgresConfig {
        sslmode: PgSslMode::VerifyFull,
        ca_file: Some(ca.to_path_buf()),
        ..server.config()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_full_encrypts_and_checks_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "pg-ca");
    let server = PgServer::start_tls(&pki.issue("localhost"));

    let store = sessions::open(&sessions_config(verify_full(&server, &pki.ca)))
        .await
        .unwrap();
    let (id, _) = store.start("alice", SessionData::new()).await.unwrap();
    assert_eq!(store.load(&id).await.unwrap().unwrap().user, "alice");
    // Every fleetctl connection the server has is a TLS one.
    let ssl = server.psql(
        "SELECT string_agg(s.ssl::text, ',') FROM pg_stat_ssl s
         JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'fleetctl'",
    );
    assert!(
        !ssl.is_empty() && ssl.split(',').all(|s| s == "true"),
        "ssl: {ssl:?}"
    );

    // A certificate from a CA the config does not trust: refused, not used.
    std::fs::create_dir(dir.path().join("other")).unwrap();
    let other = Pki::new(&dir.path().join("other"), "other-ca");
    let store = sessions::open(&sessions_config(verify_full(&server, &other.ca)))
        .await
        .unwrap();
    match tokio::time::timeout(
        Duration::from_secs(15),
        store.start("bob", SessionData::new()),
    )
    .await
    .unwrap()
    {
        Err(SessionError::Unavailable { message, .. }) => {
            assert!(
                message.to_lowercase().contains("certificate"),
                "the error says why: {message}"
            )
        }
        other => panic!("an untrusted server certificate was accepted: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_full_never_falls_back_to_plain_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "pg-ca");
    let plain = PgServer::start(); // no TLS at all
    let store = sessions::open(&sessions_config(verify_full(&plain, &pki.ca)))
        .await
        .unwrap();
    let result = tokio::time::timeout(
        Duration::from_secs(15),
        store.start("carol", SessionData::new()),
    )
    .await
    .unwrap();
    assert!(
        matches!(result, Err(SessionError::Unavailable { .. })),
        "a server without TLS was used in the clear: {result:?}"
    );
    assert_eq!(
        plain.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fleetctl'"),
        "0"
    );
}
