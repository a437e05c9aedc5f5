//! Smoke tests of the Redis topologies in tests/it/support, driven with the `redis` crate
//! directly (no fleetctl): TLS with a private CA, a least-privilege ACL user, and master +
//! replica + three sentinels failing over after `kill -9` of the master.
//!
//! They also pin down how redis-rs 1.8.1 reports what a fleetctl wrapper has to react to
//! (refused TLS, NOPERM, NOAUTH, a dropped master, READONLY from a demoted one).

use std::future::Future;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncCommands, Client, ConnectionAddr, ErrorKind, RedisResult, ServerErrorKind,
    TlsCertificates, TlsMode,
};

use crate::support::redis_ha::{HaOptions, MASTER_NAME};
use crate::support::redis_server::{FLEET_ACL_RULES, FLEET_ACL_USER, TlsClientAuth};
use crate::support::{RedisHa, RedisServer};

/// Every network step is bounded: a hang is a failure, not a stuck test.
async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 10 s"))
}

fn ca_only(pem: Vec<u8>) -> TlsCertificates {
    TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    }
}

#[tokio::test]
async fn tls_with_private_ca_connects_and_plain_tcp_fails() {
    let server = RedisServer::start_tls();
    let ca = server.ca_file().expect("TLS server has a CA");
    assert!(server.url().starts_with("rediss://127.0.0.1:"));

    // `rediss://` gives `ConnectionAddr::TcpTls`; build_with_tls puts the private CA in it.
    let client = Client::build_with_tls(server.url(), ca_only(std::fs::read(ca).unwrap()))
        .expect("TLS client");
    let mut conn = within("TLS connect", client.get_multiplexed_async_connection())
        .await
        .expect("TLS connection with the private CA");
    let () = within("SET", conn.set("{fleet}:tls", "ok")).await.unwrap();
    let v: String = within("GET", conn.get("{fleet}:tls")).await.unwrap();
    assert_eq!(v, "ok");

    // The same client through a ConnectionManager (what fleetctl holds).
    let mut mgr = within("TLS ConnectionManager", ConnectionManager::new(client))
        .await
        .expect("ConnectionManager over TLS");
    let v: String = within("GET", mgr.get("{fleet}:tls")).await.unwrap();
    assert_eq!(v, "ok");

    // Plain TCP to the TLS port: the server drops the handshake, the client gets an error.
    let plain = Client::open(format!("redis://127.0.0.1:{}/", server.port)).unwrap();
    let err = within("plain connect", plain.get_multiplexed_async_connection())
        .await
        .expect_err("plain TCP to a TLS-only port must fail");
    eprintln!(
        "[redis_topologies] plain TCP to TLS port: kind={:?} {err}",
        err.kind()
    );
    assert!(err.is_io_error(), "plain TCP on the TLS port: {err:?}");

    // TLS without the private CA (system roots only): certificate not trusted.
    let untrusted = Client::open(server.url()).unwrap();
    let err = within(
        "untrusted TLS connect",
        untrusted.get_multiplexed_async_connection(),
    )
    .await
    .expect_err("a certificate from a private CA must not verify against system roots");
    eprintln!(
        "[redis_topologies] TLS without the CA: kind={:?} {err}",
        err.kind()
    );
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "expected a certificate error, got {err}"
    );

    // And the blocking helper API.
    assert!(server.ping());
}

#[tokio::test]
async fn tls_auth_clients_yes_needs_a_client_certificate() {
    let server = RedisServer::builder().tls(TlsClientAuth::Yes).start();
    let ca = server.ca().unwrap();

    let no_cert = Client::build_with_tls(server.url(), ca_only(ca.ca_pem())).unwrap();
    let refused = match within("connect", no_cert.get_multiplexed_async_connection()).await {
        Err(e) => Some(e),
        // TLS 1.3: the server may reject the missing certificate only after the handshake.
        Ok(mut c) => within("PING", redis::cmd("PING").query_async::<String>(&mut c))
            .await
            .err(),
    };
    let err = refused.expect("without a client certificate the server must refuse");
    eprintln!(
        "[redis_topologies] no client certificate: kind={:?} {err}",
        err.kind()
    );

    let with_cert = server.admin().client(server.port);
    let mut conn = within("mTLS connect", with_cert.get_multiplexed_async_connection())
        .await
        .expect("mutual TLS with the test client certificate");
    let pong: String = within("PING", redis::cmd("PING").query_async(&mut conn))
        .await
        .unwrap();
    assert_eq!(pong, "PONG");
}

#[tokio::test]
async fn acl_user_may_do_its_commands_and_is_refused_others() {
    // fleetctl's own least-privilege user (docs/cluster.md, "Redis ACL user").
    let server = RedisServer::start_with_acl(FLEET_ACL_USER, "fleet-pw", FLEET_ACL_RULES);
    let user = server.acl().unwrap().clone();

    // Username in the URL ...
    let by_url = Client::open(server.acl_url()).unwrap();
    let mut conn = within("ACL connect", by_url.get_multiplexed_async_connection())
        .await
        .expect("ACL user connects");
    // ... or in RedisConnectionInfo (what Access::connection_info does).
    let info = server.user_access().connection_info(server.port);
    assert_eq!(info.redis_settings().username(), Some("fleet"));
    let mut mgr = within(
        "ACL ConnectionManager",
        ConnectionManager::new(Client::open(info).unwrap()),
    )
    .await
    .expect("ACL user through a ConnectionManager");

    let () = within("SET", conn.set("{fleet}:a", "1")).await.unwrap();
    let v: String = within("GET", mgr.get("{fleet}:a")).await.unwrap();
    assert_eq!(v, "1");
    let n: i64 = within("DEL", mgr.del("{fleet}:a")).await.unwrap();
    assert_eq!(n, 1);

    let refused: Vec<(&str, RedisResult<redis::Value>)> = vec![
        (
            "SET outside ~{fleet}:*",
            within(
                "SET",
                redis::cmd("SET")
                    .arg("other:a")
                    .arg("1")
                    .query_async(&mut conn),
            )
            .await,
        ),
        (
            "GET outside ~{fleet}:*",
            within(
                "GET",
                redis::cmd("GET").arg("other:a").query_async(&mut conn),
            )
            .await,
        ),
        (
            "KEYS (@dangerous)",
            within("KEYS", redis::cmd("KEYS").arg("*").query_async(&mut conn)).await,
        ),
        (
            "FLUSHALL (@dangerous)",
            within("FLUSHALL", redis::cmd("FLUSHALL").query_async(&mut conn)).await,
        ),
        (
            "CONFIG GET (@admin)",
            within(
                "CONFIG",
                redis::cmd("CONFIG")
                    .arg("GET")
                    .arg("*")
                    .query_async(&mut conn),
            )
            .await,
        ),
        (
            "PING (fleetctl never sends it)",
            within("PING", redis::cmd("PING").query_async(&mut conn)).await,
        ),
        (
            "PUBLISH (no channels)",
            within(
                "PUBLISH",
                redis::cmd("PUBLISH")
                    .arg("other")
                    .arg("x")
                    .query_async(&mut conn),
            )
            .await,
        ),
    ];
    for (what, r) in refused {
        let err = r.expect_err(what);
        assert_eq!(
            err.kind(),
            ErrorKind::Server(ServerErrorKind::NoPerm),
            "{what}: {err}"
        );
    }
    // The connection is still usable after NOPERM.
    let () = within("SET", conn.set("{fleet}:b", "2")).await.unwrap();

    // Wrong password: refused while connecting.
    let wrong = Client::open(format!(
        "redis://{}:wrong@127.0.0.1:{}/",
        user.username, server.port
    ))
    .unwrap();
    let err = within("wrong password", wrong.get_multiplexed_async_connection())
        .await
        .expect_err("wrong password must be refused");
    assert_eq!(err.kind(), ErrorKind::AuthenticationFailed, "{err}");

    // No username and no password: the connection opens, every command gets NOAUTH.
    let anon = Client::open(server.url()).unwrap();
    let mut anon = within("anonymous connect", anon.get_multiplexed_async_connection())
        .await
        .expect("connect without credentials");
    let err = within(
        "GET",
        redis::cmd("GET")
            .arg("{fleet}:b")
            .query_async::<redis::Value>(&mut anon),
    )
    .await
    .expect_err("no credentials: NOAUTH");
    eprintln!(
        "[redis_topologies] no credentials: kind={:?} code={:?} {err}",
        err.kind(),
        err.code()
    );
    assert_eq!(err.code(), Some("NOAUTH"), "{err}");

    // The admin (default user) still has everything, through the helper.
    let keys: Vec<String> = server
        .admin()
        .query(server.port, redis::cmd("KEYS").arg("*"))
        .unwrap();
    assert_eq!(keys, vec!["{fleet}:b".to_string()]);
}

/// A master client as fleetctl would get one: ask the sentinels, connect to what they name.
async fn master_via_sentinels(sentinels: &mut SentinelClient) -> Client {
    within(
        "SentinelClient::async_get_client",
        sentinels.async_get_client(),
    )
    .await
    .expect("the sentinels name a master")
}

fn port_of(client: &Client) -> u16 {
    match client.get_connection_info().addr() {
        ConnectionAddr::Tcp(_, port) | ConnectionAddr::TcpTls { port, .. } => *port,
        other => panic!("unexpected address {other:?}"),
    }
}

fn fast_manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_number_of_retries(1)
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(1)))
}

/// Write through a ConnectionManager until the error is not an I/O error (bounded).
async fn write_until_not_io(mgr: &mut ConnectionManager, deadline: Duration) -> RedisResult<()> {
    let end = Instant::now() + deadline;
    loop {
        let r: RedisResult<()> = within("SET", mgr.set("{fleet}:probe", "x")).await;
        match r {
            Err(e) if e.is_io_error() && Instant::now() < end => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => return other,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ha_sentinels_promote_the_replica_after_kill_9_and_the_key_survives() {
    let started = Instant::now();
    let mut ha = RedisHa::start();
    eprintln!(
        "[redis_topologies] ha_start_ms={}",
        started.elapsed().as_millis()
    );
    assert_eq!(ha.master_name(), MASTER_NAME);
    assert_eq!(ha.sentinel_addrs().len(), 3);
    let first_master = ha.current_master_port();
    assert_eq!(first_master, ha.data_ports()[0]);

    let urls: Vec<String> = ha
        .sentinel_addrs()
        .iter()
        .map(|a| format!("redis://{a}/"))
        .collect();
    let mut sentinels =
        SentinelClient::build(urls, MASTER_NAME, None, SentinelServerType::Master).unwrap();
    let master = master_via_sentinels(&mut sentinels).await;
    assert_eq!(port_of(&master), first_master);

    let mut mgr = within(
        "ConnectionManager",
        ConnectionManager::new_with_config(master, fast_manager_config()),
    )
    .await
    .expect("connect to the master");
    let () = within("SET", mgr.set("{fleet}:survivor", "kept"))
        .await
        .unwrap();
    // Acknowledged by the replica before the master dies (replication is asynchronous).
    let acked: i64 = within(
        "WAIT",
        redis::cmd("WAIT").arg(1).arg(2000).query_async(&mut mgr),
    )
    .await
    .unwrap();
    assert_eq!(acked, 1, "the replica acknowledged the write");

    let killed = ha.kill_master();
    assert_eq!(killed, first_master);
    let t0 = Instant::now();

    // The manager still points at the dead master: a connection error, not a Redis error.
    let err = within(
        "SET on the killed master",
        mgr.set::<_, _, ()>("{fleet}:x", "y"),
    )
    .await
    .expect_err("the master is dead");
    eprintln!(
        "[redis_topologies] command to killed master: kind={:?} io={} dropped={} refused={} {err}",
        err.kind(),
        err.is_io_error(),
        err.is_connection_dropped(),
        err.is_connection_refusal()
    );
    assert!(err.is_io_error(), "{err:?}");

    let new_master = ha.wait_for_failover(Duration::from_secs(15));
    let took = t0.elapsed();
    eprintln!(
        "[redis_topologies] sentinel_failover_ms={}",
        took.as_millis()
    );
    assert_ne!(new_master, killed);
    assert_eq!(new_master, ha.data_ports()[1], "the replica was promoted");
    assert!(took < Duration::from_secs(15), "failover took {took:?}");

    // Ask the sentinels again: the new master, with the key.
    let master = master_via_sentinels(&mut sentinels).await;
    assert_eq!(port_of(&master), new_master);
    let mut fresh = within("ConnectionManager", ConnectionManager::new(master))
        .await
        .expect("connect to the new master");
    let v: Option<String> = within("GET", fresh.get("{fleet}:survivor")).await.unwrap();
    assert_eq!(v.as_deref(), Some("kept"), "the key is on the new master");
    let () = within("SET", fresh.set("{fleet}:after", "1"))
        .await
        .unwrap();

    // The old master comes back as a replica. The stale manager reconnects to the old address
    // by itself (it never asks the sentinels) and now gets READONLY on writes.
    let restarted = Instant::now();
    ha.restart_as_replica(killed);
    eprintln!(
        "[redis_topologies] restart_as_replica_ms={}",
        restarted.elapsed().as_millis()
    );
    match ha
        .data_access()
        .query::<redis::Role>(killed, &redis::cmd("ROLE"))
        .unwrap()
    {
        redis::Role::Replica { primary_port, .. } => assert_eq!(primary_port, new_master),
        other => panic!("restarted node is not a replica: {other:?}"),
    }
    let err = write_until_not_io(&mut mgr, Duration::from_secs(10))
        .await
        .expect_err("a write to a replica fails");
    eprintln!(
        "[redis_topologies] write to demoted master: kind={:?} code={:?} {err}",
        err.kind(),
        err.code()
    );
    assert_eq!(
        err.kind(),
        ErrorKind::Server(ServerErrorKind::ReadOnly),
        "{err}"
    );
    assert!(
        !err.is_unrecoverable_error(),
        "READONLY does not make the manager reconnect"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ha_with_passwords_and_tls_fails_over() {
    let opts = HaOptions {
        password: Some("data-pw".into()),
        sentinel_password: Some("sentinel-pw".into()),
        tls: true,
    };
    let mut ha = RedisHa::start_with(opts);
    let ca = ha.ca().unwrap().ca_pem();

    let addrs: Vec<ConnectionAddr> = ha
        .sentinel_ports()
        .into_iter()
        .map(|port| ConnectionAddr::TcpTls {
            host: "127.0.0.1".into(),
            port,
            insecure: false,
            tls_params: None,
        })
        .collect();
    let mut sentinels =
        SentinelClientBuilder::new(addrs.clone(), MASTER_NAME, SentinelServerType::Master)
            .unwrap()
            .set_client_to_sentinel_password("sentinel-pw")
            .set_client_to_sentinel_certificates(ca_only(ca.clone()))
            .set_client_to_redis_password("data-pw")
            .set_client_to_redis_tls_mode(TlsMode::Secure)
            .set_client_to_redis_certificates(ca_only(ca.clone()))
            .build()
            .unwrap();
    let master = master_via_sentinels(&mut sentinels).await;
    let first = port_of(&master);
    assert!(matches!(
        master.get_connection_info().addr(),
        ConnectionAddr::TcpTls { .. }
    ));
    let mut conn = within("connect", master.get_multiplexed_async_connection())
        .await
        .expect("TLS + password to the master");
    let () = within("SET", conn.set("{fleet}:secure", "kept"))
        .await
        .unwrap();
    let acked: i64 = within(
        "WAIT",
        redis::cmd("WAIT").arg(1).arg(2000).query_async(&mut conn),
    )
    .await
    .unwrap();
    assert_eq!(acked, 1);

    // Without the sentinel password the sentinels refuse.
    let mut no_pw =
        SentinelClientBuilder::new(addrs.clone(), MASTER_NAME, SentinelServerType::Master)
            .unwrap()
            .set_client_to_sentinel_certificates(ca_only(ca.clone()))
            .set_client_to_redis_password("data-pw")
            .set_client_to_redis_tls_mode(TlsMode::Secure)
            .set_client_to_redis_certificates(ca_only(ca.clone()))
            .build()
            .unwrap();
    let err = within("lookup without sentinel password", no_pw.async_get_client())
        .await
        .expect_err("sentinels require their password");
    eprintln!(
        "[redis_topologies] sentinel without password: kind={:?} {err}",
        err.kind()
    );

    let killed = ha.kill_master();
    assert_eq!(killed, first);
    let t0 = Instant::now();
    let new_master = ha.wait_for_failover(Duration::from_secs(15));
    eprintln!(
        "[redis_topologies] sentinel_tls_failover_ms={}",
        t0.elapsed().as_millis()
    );

    let master = master_via_sentinels(&mut sentinels).await;
    assert_eq!(port_of(&master), new_master);
    let mut conn = within("connect", master.get_multiplexed_async_connection())
        .await
        .expect("TLS + password to the new master");
    let v: Option<String> = within("GET", conn.get("{fleet}:secure")).await.unwrap();
    assert_eq!(v.as_deref(), Some("kept"));

    ha.restart_as_replica(killed);
    assert_eq!(ha.current_master_port(), new_master);
}
