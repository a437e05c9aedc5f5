//! A private `redis-server` per test, on a free loopback port, that the test can stop and
//! restart. Never the system Redis on 6379.
//!
//! Plain: [`RedisServer::start`], [`RedisServer::start_persistent`]. TLS with a private CA made
//! for the test: [`RedisServer::start_tls`]. A least-privilege ACL user:
//! [`RedisServer::start_with_acl`]. Anything else through [`RedisServer::builder`].

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::tls::TestCa;
use super::{free_port, require_binary};

/// Password of the `default` user on servers that have an ACL user, so a client that forgets its
/// username is refused instead of silently getting full rights.
pub const ADMIN_PASSWORD: &str = "admin-test-password";

/// fleetctl's least-privilege ACL user, as the conformance suites create it (see
/// docs/cluster.md, "Redis ACL user").
pub const FLEET_ACL_USER: &str = "fleet";
pub const FLEET_ACL_PASSWORD: &str = "fleet-acl-password";

/// Everything fleetctl needs, and nothing else, after `ACL SETUSER fleet reset on >password`:
/// its own keys, no Pub/Sub channels, and exactly the commands its three Redis backends and
/// the connection probe send (the list and the reason for each is in docs/cluster.md, "Redis
/// ACL user"; keep the two identical).
pub const FLEET_ACL_RULES: &[&str] = &[
    "~{fleet}:*",
    "resetchannels",
    "-@all",
    // connection probe and clock
    "+role",
    "+time",
    // database number, on connect
    "+select",
    // Lua scripts (redis-rs: EVALSHA, SCRIPT LOAD after NOSCRIPT)
    "+evalsha",
    "+script|load",
    // keys
    "+get",
    "+set",
    "+del",
    "+exists",
    "+type",
    "+pexpire",
    "+pttl",
    "+incr",
    "+scan",
    // sets
    "+sadd",
    "+srem",
    "+smembers",
    // hashes
    "+hget",
    "+hset",
    "+hsetnx",
    "+hdel",
    "+hgetall",
    "+hmget",
    // sorted sets
    "+zadd",
    "+zrem",
    "+zcard",
    "+zrange",
    "+zrangebyscore",
    "+zremrangebyscore",
    "+zremrangebyrank",
];

/// `--tls-auth-clients`: whether a client must present a certificate signed by the test CA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsClientAuth {
    No,
    Yes,
}

impl TlsClientAuth {
    fn arg(self) -> &'static str {
        match self {
            TlsClientAuth::No => "no",
            TlsClientAuth::Yes => "yes",
        }
    }
}

/// An ACL user with exactly `rules` (after `reset on >password`), for example
/// `["~{fleet}:*", "resetchannels", "+@read", "+@write", "-@dangerous"]`.
#[derive(Clone, Debug)]
pub struct AclUser {
    pub username: String,
    pub password: String,
    pub rules: Vec<String>,
}

impl AclUser {
    pub fn new(username: &str, password: &str, rules: &[&str]) -> AclUser {
        AclUser {
            username: username.into(),
            password: password.into(),
            rules: rules.iter().map(|r| r.to_string()).collect(),
        }
    }

    /// `ACL SETUSER <name> reset on >password <rules...>` as arguments after `ACL`.
    fn setuser_args(&self) -> Vec<String> {
        let mut a = vec![
            "SETUSER".to_string(),
            self.username.clone(),
            "reset".into(),
            "on".into(),
            format!(">{}", self.password),
        ];
        a.extend(self.rules.iter().cloned());
        a
    }
}

/// How a test client reaches an instance: credentials and TLS trust. Builds `redis::Client`s the
/// way fleetctl would (username/password in `RedisConnectionInfo`, the private CA as
/// `TlsCertificates::root_cert`).
#[derive(Clone, Default)]
pub struct Access {
    pub username: Option<String>,
    pub password: Option<String>,
    /// The CA's PEM: connect with TLS and trust only this CA.
    pub tls_root: Option<Vec<u8>>,
    /// Client certificate and key (PEM) for `--tls-auth-clients yes`.
    pub tls_client: Option<(Vec<u8>, Vec<u8>)>,
}

impl Access {
    pub fn connection_info(&self, port: u16) -> redis::ConnectionInfo {
        use redis::IntoConnectionInfo;
        let addr = if self.tls_root.is_some() {
            redis::ConnectionAddr::TcpTls {
                host: "127.0.0.1".into(),
                port,
                insecure: false,
                tls_params: None,
            }
        } else {
            redis::ConnectionAddr::Tcp("127.0.0.1".into(), port)
        };
        let mut redis_info = redis::RedisConnectionInfo::default();
        if let Some(u) = &self.username {
            redis_info = redis_info.set_username(u);
        }
        if let Some(p) = &self.password {
            redis_info = redis_info.set_password(p);
        }
        addr.into_connection_info()
            .expect("connection info")
            .set_redis_settings(redis_info)
    }

    pub fn tls_certificates(&self) -> Option<redis::TlsCertificates> {
        self.tls_root.as_ref().map(|root| redis::TlsCertificates {
            client_tls: self
                .tls_client
                .as_ref()
                .map(|(cert, key)| redis::ClientTlsConfig {
                    client_cert: cert.clone(),
                    client_key: key.clone(),
                }),
            root_cert: Some(root.clone()),
        })
    }

    pub fn client(&self, port: u16) -> redis::Client {
        let info = self.connection_info(port);
        match self.tls_certificates() {
            Some(certs) => redis::Client::build_with_tls(info, certs).expect("TLS client"),
            None => redis::Client::open(info).expect("client"),
        }
    }

    /// A blocking connection with bounded connect, read and write timeouts.
    pub fn connect(&self, port: u16) -> redis::RedisResult<redis::Connection> {
        let conn = self
            .client(port)
            .get_connection_with_timeout(Duration::from_secs(1))?;
        conn.set_read_timeout(Some(Duration::from_secs(2)))?;
        conn.set_write_timeout(Some(Duration::from_secs(2)))?;
        Ok(conn)
    }

    /// Run one command on the instance at `port`.
    pub fn query<T: redis::FromRedisValue>(
        &self,
        port: u16,
        cmd: &redis::Cmd,
    ) -> redis::RedisResult<T> {
        cmd.query(&mut self.connect(port)?)
    }

    /// True when the instance answers PING.
    pub fn ping(&self, port: u16) -> bool {
        self.query::<String>(port, &redis::cmd("PING"))
            .is_ok_and(|p| p == "PONG")
    }
}

#[derive(Default)]
pub struct RedisServerBuilder {
    persist: bool,
    tls: Option<TlsClientAuth>,
    acl: Option<AclUser>,
    args: Vec<String>,
}

impl RedisServerBuilder {
    /// appendonly persistence, so `restart()` keeps the data.
    pub fn persistent(mut self) -> Self {
        self.persist = true;
        self
    }

    /// TLS only (`--port 0 --tls-port P`), certificates from a private CA made for this server.
    pub fn tls(mut self, auth_clients: TlsClientAuth) -> Self {
        self.tls = Some(auth_clients);
        self
    }

    /// Create this ACL user at start (and again after each restart); the `default` user then
    /// needs [`ADMIN_PASSWORD`].
    pub fn acl_user(mut self, user: AclUser) -> Self {
        self.acl = Some(user);
        self
    }

    /// An extra redis-server argument (e.g. `"--maxmemory"`, `"10mb"`).
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn start(self) -> RedisServer {
        let mut s = RedisServer {
            port: free_port(),
            dir: tempfile::tempdir().expect("tempdir"),
            child: None,
            persist: self.persist,
            tls: self.tls.map(|auth| (TestCa::generate(), auth)),
            acl: self.acl,
            args: self.args,
        };
        s.spawn();
        s
    }
}

pub struct RedisServer {
    /// The port clients connect to: the TLS port for a TLS server (its plain port is off).
    pub port: u16,
    /// Holds the data directory (for persistence tests) until the server is dropped.
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Keep an append-only file so a restart keeps data (session-survival tests).
    persist: bool,
    tls: Option<(TestCa, TlsClientAuth)>,
    acl: Option<AclUser>,
    args: Vec<String>,
}

impl RedisServer {
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder::default()
    }

    /// Start a fresh server that keeps nothing on disk.
    pub fn start() -> RedisServer {
        Self::builder().start()
    }

    /// Start a server with appendonly persistence, so `restart()` keeps its data.
    pub fn start_persistent() -> RedisServer {
        Self::builder().persistent().start()
    }

    /// A TLS-only server (`--port 0 --tls-port P --tls-auth-clients no`) with a private CA:
    /// clients must trust [`RedisServer::ca_file`]; a plain TCP client on `port` fails.
    pub fn start_tls() -> RedisServer {
        Self::builder().tls(TlsClientAuth::No).start()
    }

    /// A plain server with one least-privilege ACL user (see [`AclUser`]).
    pub fn start_with_acl(username: &str, password: &str, rules: &[&str]) -> RedisServer {
        Self::builder()
            .acl_user(AclUser::new(username, password, rules))
            .start()
    }

    /// `redis://127.0.0.1:P/`, or `rediss://127.0.0.1:P/` for a TLS server (no credentials).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}/", self.port)
    }

    /// Like [`RedisServer::url`], with the ACL user's `user:password@`.
    pub fn acl_url(&self) -> String {
        let u = self.acl.as_ref().expect("server has no ACL user");
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!(
            "{scheme}://{}:{}@127.0.0.1:{}/",
            u.username, u.password, self.port
        )
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// The private CA's certificate (PEM file) of a TLS server.
    pub fn ca_file(&self) -> Option<&Path> {
        self.tls.as_ref().map(|(ca, _)| ca.ca_cert.as_path())
    }

    /// The private CA (with a client certificate for `TlsClientAuth::Yes`) of a TLS server.
    pub fn ca(&self) -> Option<&TestCa> {
        self.tls.as_ref().map(|(ca, _)| ca)
    }

    pub fn acl(&self) -> Option<&AclUser> {
        self.acl.as_ref()
    }

    /// Full rights: the `default` user (with [`ADMIN_PASSWORD`] when there is an ACL user),
    /// over TLS with the client certificate when the server is TLS.
    pub fn admin(&self) -> Access {
        let mut a = self.tls_access();
        if self.acl.is_some() {
            a.password = Some(ADMIN_PASSWORD.into());
        }
        a
    }

    /// As the ACL user.
    pub fn user_access(&self) -> Access {
        let u = self.acl.as_ref().expect("server has no ACL user");
        let mut a = self.tls_access();
        a.username = Some(u.username.clone());
        a.password = Some(u.password.clone());
        a
    }

    fn tls_access(&self) -> Access {
        match &self.tls {
            None => Access::default(),
            Some((ca, auth)) => Access {
                tls_root: Some(ca.ca_pem()),
                tls_client: (*auth == TlsClientAuth::Yes)
                    .then(|| (ca.client_cert_pem(), ca.client_key_pem())),
                ..Access::default()
            },
        }
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.dir.path().join("redis.log"), 20)
    }

    fn spawn(&mut self) {
        let bin = require_binary("redis-server", "redis-server");
        let mut cmd = Command::new(bin);
        match &self.tls {
            None => {
                cmd.arg("--port").arg(self.port.to_string());
            }
            Some((ca, auth)) => {
                cmd.args(["--port", "0", "--tls-port"])
                    .arg(self.port.to_string())
                    .args(ca.server_args())
                    .args(["--tls-auth-clients", auth.arg()]);
            }
        }
        if self.acl.is_some() {
            cmd.args(["--requirepass", ADMIN_PASSWORD]);
        }
        cmd.args(["--bind", "127.0.0.1", "--save", ""])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(self.dir.path().join("redis.log"))
            .args(["--appendonly", if self.persist { "yes" } else { "no" }])
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ping() {
                if let Some(user) = &self.acl {
                    let mut acl = redis::cmd("ACL");
                    for a in user.setuser_args() {
                        acl.arg(a);
                    }
                    self.admin()
                        .query::<()>(self.port, &acl)
                        .unwrap_or_else(|e| panic!("ACL SETUSER {}: {e}", user.username));
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "redis-server on port {} did not answer PING within 10 s; log:\n{}",
            self.port,
            self.log_tail()
        );
    }

    /// True when the server answers PING (as the admin).
    pub fn ping(&self) -> bool {
        self.admin().ping(self.port)
    }

    /// Kill the server (SIGKILL: an outage, not a clean shutdown).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port (and, if persistent, the same data).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last `n` lines of a log file ("" if it does not exist).
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
