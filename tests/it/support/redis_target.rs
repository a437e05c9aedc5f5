//! The Redis topologies the conformance suites run fleetctl's Redis backends against, and the
//! fleetctl config that reaches each one:
//!
//! - [`Topology::Plain`]: one private redis-server, `default` user, no password.
//! - [`Topology::TlsAcl`]: TLS only, certificates from a private CA (fleetctl gets `tls: true`
//!   and `ca_file`), and fleetctl logs in as the least-privilege ACL user [`FLEET_ACL_USER`]
//!   with exactly [`FLEET_ACL_RULES`]; the `default` user is locked behind
//!   [`ADMIN_PASSWORD`](super::redis_server::ADMIN_PASSWORD).
//! - [`Topology::Sentinel`]: master + replica + three sentinels ([`RedisHa::start_for_clients`])
//!   with a password on the data nodes and another on the sentinels; fleetctl gets `sentinels`
//!   + `master_name` (and both passwords) and finds the master through them.
//!
//! Each test starts its own: nextest runs every test in its own process, so a topology shared
//! behind a static would be started once per test anyway.

use std::path::PathBuf;

use fleetctl::config::{ClusterConfig, RedisConfig};

use super::RedisHa;
use super::redis_ha::HaOptions;
use super::redis_server::{AclUser, FLEET_ACL_PASSWORD, FLEET_ACL_RULES, FLEET_ACL_USER};
use super::redis_server::{RedisServer, TlsClientAuth};

/// Password of the data nodes of the Sentinel topology (`requirepass`, `default` user).
pub const SENTINEL_DATA_PASSWORD: &str = "ha-data-password";
/// Password of the sentinels themselves (`requirepass` in sentinel.conf).
pub const SENTINEL_PASSWORD: &str = "ha-sentinel-password";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topology {
    Plain,
    TlsAcl,
    Sentinel,
}

/// One running topology. Dropping it kills every process.
pub enum TestRedis {
    Plain(RedisServer),
    TlsAcl(RedisServer),
    Sentinel(RedisHa),
}

impl TestRedis {
    pub fn start(topology: Topology) -> TestRedis {
        match topology {
            Topology::Plain => TestRedis::Plain(RedisServer::start()),
            Topology::TlsAcl => TestRedis::TlsAcl(
                RedisServer::builder()
                    .tls(TlsClientAuth::No)
                    .acl_user(AclUser::new(
                        FLEET_ACL_USER,
                        FLEET_ACL_PASSWORD,
                        FLEET_ACL_RULES,
                    ))
                    .start(),
            ),
            Topology::Sentinel => TestRedis::Sentinel(RedisHa::start_for_clients(HaOptions {
                password: Some(SENTINEL_DATA_PASSWORD.into()),
                sentinel_password: Some(SENTINEL_PASSWORD.into()),
                tls: false,
            })),
        }
    }

    /// The plain or TLS server (panics for the Sentinel topology).
    pub fn server(&self) -> &RedisServer {
        match self {
            TestRedis::Plain(s) | TestRedis::TlsAcl(s) => s,
            TestRedis::Sentinel(_) => panic!("a Sentinel topology has no single server"),
        }
    }

    pub fn server_mut(&mut self) -> &mut RedisServer {
        match self {
            TestRedis::Plain(s) | TestRedis::TlsAcl(s) => s,
            TestRedis::Sentinel(_) => panic!("a Sentinel topology has no single server"),
        }
    }

    /// `sessions.redis` / `storage.redis` settings that reach this topology (`db` as given).
    pub fn redis_config(&self, db: Option<i64>) -> RedisConfig {
        let mut r = RedisConfig {
            db,
            ..RedisConfig::default()
        };
        match self {
            TestRedis::Plain(s) => {
                r.host = "127.0.0.1".into();
                r.port = s.port;
            }
            TestRedis::TlsAcl(s) => {
                r.host = "127.0.0.1".into();
                r.port = s.port;
                r.tls = true;
                r.ca_file = Some(ca_file(s));
                r.username = Some(FLEET_ACL_USER.into());
                r.password = Some(FLEET_ACL_PASSWORD.into());
            }
            TestRedis::Sentinel(ha) => {
                r.sentinels = ha.sentinel_addrs();
                r.master_name = Some(ha.master_name().into());
                r.password = Some(SENTINEL_DATA_PASSWORD.into());
                r.sentinel_password = Some(SENTINEL_PASSWORD.into());
                r.tls = ha.options().tls;
                r.ca_file = ha.ca_file();
            }
        }
        r
    }

    /// The same settings as `cluster.redis_*`.
    pub fn apply_to_cluster(&self, c: &mut ClusterConfig, db: i64) {
        let r = self.redis_config(Some(db));
        c.redis_host = r.host;
        c.redis_port = r.port;
        c.redis_db = db;
        c.redis_username = r.username;
        c.redis_password = r.password;
        c.redis_sentinels = r.sentinels;
        c.redis_master_name = r.master_name;
        c.redis_sentinel_password = r.sentinel_password;
        c.redis_tls = r.tls;
        c.redis_ca_file = r.ca_file;
    }

    /// A connection with full rights to database `db` of the (current) master, for a test to
    /// look at or damage what fleetctl stored, as something outside fleetctl would.
    pub fn admin(&self, db: i64) -> redis::Connection {
        let (access, port) = match self {
            TestRedis::Plain(s) | TestRedis::TlsAcl(s) => (s.admin(), s.port),
            TestRedis::Sentinel(ha) => (ha.data_access(), ha.current_master_port()),
        };
        let mut conn = access
            .connect(port)
            .unwrap_or_else(|e| panic!("admin connection to port {port}: {e}"));
        redis::cmd("SELECT")
            .arg(db)
            .query::<()>(&mut conn)
            .unwrap_or_else(|e| panic!("SELECT {db}: {e}"));
        conn
    }
}

fn ca_file(s: &RedisServer) -> PathBuf {
    s.ca_file().expect("TLS server has a CA").to_path_buf()
}
