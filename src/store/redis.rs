//! The one way fleetctl talks to Redis: endpoint settings from any config section, one
//! connection handle with one deadline, one error, one key prefix and one Lua prelude.
//!
//! The cluster registry, the session store and the fleet store each keep only their keys,
//! scripts and logic; everything about reaching Redis lives here, once:
//!
//! - **Where**: a [`RedisEndpoint`] is either one server (`host`/`port`) or a Sentinel group
//!   (`sentinels` + `master_name`), with an optional ACL `username`, `password`, TLS
//!   (`rediss`, optionally with a private CA) and database number.
//! - **Connection strategy**: one multiplexed [`ConnectionManager`] per handle, and in front of
//!   it a health flag. While the link is known to be down, calls fail at once with
//!   [`Unavailable`] instead of queueing behind the manager's reconnect (so an agent's report
//!   gets a quick 503 and retries, never a 5 s stall); one background probe per handle
//!   reconnects with backoff and flips the flag back.
//! - **Failover**: with Sentinel, the probe asks the sentinels for the current master
//!   whenever a call fails with a connection error, a timeout, `READONLY`, `NOREPLICAS`,
//!   `MASTERDOWN` or `LOADING` — the symptoms of a master that died or was demoted — and
//!   moves the handle to the promoted replica by itself. One log line per event: link lost,
//!   master moved, link back.
//! - **Deadline**: every call is bounded by [`CALL_TIMEOUT`].
//! - **Keys**: every key starts with [`KEY_PREFIX`], `{fleet}:`. The braces are a Redis
//!   Cluster hash tag: all of fleetctl's keys hash to one slot, so a script that builds a key
//!   name at run time (a member of a set it declared) still touches only its declared slot.
//! - **Scripts**: [`script`] prepends one shared prelude (`now_ms()` on the server's clock,
//!   `ms()` to print integers), so no backend spells `TIME` arithmetic again.
//!
//! It must never put a password into a message or a log line: [`RedisEndpoint::location`]
//! names hosts, ports, master name and database only.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{
    ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo, RedisConnectionInfo, RedisError,
    RedisResult, Script,
};
use tracing::{debug, info, warn};

use crate::config::{ClusterConfig, RedisConfig, SessionsConfig, StorageConfig};

/// Every key fleetctl writes starts with this; `{fleet}` is a Redis Cluster hash tag.
pub const KEY_PREFIX: &str = "{fleet}:";

/// Upper bound for one call, from the moment it is issued to its reply.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// One TCP (and TLS) connect attempt, to a server or a sentinel.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// One command's reply.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
/// The probe's backoff between reconnect attempts.
const PROBE_MIN_DELAY: Duration = Duration::from_millis(50);
/// Short: a node is back within a heartbeat of Redis returning, and a refused connection
/// costs nothing.
const PROBE_MAX_DELAY: Duration = Duration::from_millis(250);

/// Lua shared by every script: the server clock in milliseconds, and integer formatting
/// (Lua prints large numbers in exponent notation otherwise).
const LUA_PRELUDE: &str = "
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- %d, not %.0f: integer printing, without the float formatter.
local function ms(n) return string.format('%d', n) end
";

/// A script with the shared prelude. `invoke_async` reloads it after a Redis restart.
pub fn script(body: &str) -> Script {
    Script::new(&script_source(body))
}

/// The whole text of a script with the shared prelude, as Redis runs it.
pub fn script_source(body: &str) -> String {
    format!("{LUA_PRELUDE}\n{body}")
}

/// Where a Redis is and how to log in, from one config section.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisEndpoint {
    /// The config section it came from (`cluster`, `sessions.redis`, `storage.redis`), so a
    /// log line says which of possibly three Redis connections it is about.
    pub section: &'static str,
    pub target: RedisTarget,
    pub db: i64,
    /// Redis ACL user; `None` is the `default` user.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Password of the sentinels themselves (`requirepass` in sentinel.conf).
    pub sentinel_password: Option<String>,
    /// `rediss`: TLS to the server (and to the sentinels).
    pub tls: bool,
    /// PEM CA certificate(s) to trust instead of the system store.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RedisTarget {
    /// One server.
    Direct { host: String, port: u16 },
    /// Whatever master the sentinels name.
    Sentinel {
        sentinels: Vec<(String, u16)>,
        master_name: String,
    },
}

impl RedisEndpoint {
    /// `cluster.redis_*`.
    pub fn cluster(c: &ClusterConfig) -> RedisEndpoint {
        RedisEndpoint {
            section: "cluster",
            target: target(
                &c.redis_host,
                c.redis_port,
                &c.redis_sentinels,
                c.redis_master_name.as_deref(),
            ),
            db: c.redis_db,
            username: c.redis_username.clone(),
            password: c.redis_password.clone(),
            sentinel_password: c.redis_sentinel_password.clone(),
            tls: c.redis_tls,
            ca_file: c.redis_ca_file.clone(),
        }
    }

    /// `sessions.redis.*`.
    pub fn sessions(c: &SessionsConfig) -> RedisEndpoint {
        Self::section("sessions.redis", &c.redis, c.redis_db())
    }

    /// `storage.redis.*`.
    pub fn storage(c: &StorageConfig) -> RedisEndpoint {
        Self::section("storage.redis", &c.redis, c.redis_db())
    }

    fn section(section: &'static str, r: &RedisConfig, db: i64) -> RedisEndpoint {
        RedisEndpoint {
            section,
            target: target(&r.host, r.port, &r.sentinels, r.master_name.as_deref()),
            db,
            username: r.username.clone(),
            password: r.password.clone(),
            sentinel_password: r.sentinel_password.clone(),
            tls: r.tls,
            ca_file: r.ca_file.clone(),
        }
    }

    /// For messages: `redis://host:port/db`, `rediss://…`, or
    /// `redis+sentinel://s1:p,s2:p/master/db`. Never a password.
    pub fn location(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        match &self.target {
            RedisTarget::Direct { host, port } => {
                format!("{scheme}://{host}:{port}/{}", self.db)
            }
            RedisTarget::Sentinel {
                sentinels,
                master_name,
            } => {
                let list: Vec<String> = sentinels.iter().map(|(h, p)| format!("{h}:{p}")).collect();
                format!(
                    "{scheme}+sentinel://{}/{master_name}/{}",
                    list.join(","),
                    self.db
                )
            }
        }
    }
}

/// Sentinels win when listed (the validator rejects setting both `host` and `sentinels`).
/// Entries were checked to be `host:port` by the validator; one that still does not parse is
/// skipped here and named by [`Redis`]'s "no sentinel answered" message.
fn target(host: &str, port: u16, sentinels: &[String], master: Option<&str>) -> RedisTarget {
    if sentinels.is_empty() {
        return RedisTarget::Direct {
            host: host.to_owned(),
            port,
        };
    }
    RedisTarget::Sentinel {
        sentinels: sentinels
            .iter()
            .filter_map(|s| parse_host_port(s))
            .collect(),
        master_name: master.unwrap_or_default().to_owned(),
    }
}

/// `host:port` or `[v6]:port`.
pub fn parse_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || host.contains(':') && !s.starts_with('[') {
        return None;
    }
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    Some((host.to_owned(), port))
}

/// Redis could not be reached or answered with an I/O-level failure; retry later. Each
/// store turns it into its own trait's "unavailable" error.
#[derive(Debug, Clone, thiserror::Error)]
#[error("redis unavailable at {location}: {message}")]
pub struct Unavailable {
    pub location: String,
    pub message: String,
}

/// A handle on one Redis endpoint. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Redis {
    shared: Arc<Shared>,
}

struct Shared {
    endpoint: RedisEndpoint,
    location: String,
    /// The CA read at open, so a failover does not read the file again.
    root_cert: Option<Vec<u8>>,
    /// The current server and its connection; `None` until a master is known.
    link: RwLock<Option<Link>>,
    /// False while the link is known to be broken: calls fail fast, the probe reconnects.
    healthy: AtomicBool,
    /// A probe task is running (at most one per handle).
    probing: AtomicBool,
    /// Why the link is down, for the fail-fast message ("connection refused" beats
    /// "not connected").
    last_error: std::sync::Mutex<String>,
}

#[derive(Clone)]
struct Link {
    addr: (String, u16),
    conn: ConnectionManager,
}

impl Redis {
    /// A handle that connects in the background: a node can start while Redis is down, and
    /// its calls fail with [`Unavailable`] until Redis is reachable. Waits (bounded) for the
    /// first connection so a command run right after `open` normally finds Redis ready.
    pub async fn open(endpoint: RedisEndpoint) -> Result<Redis, Unavailable> {
        let location = endpoint.location();
        let root_cert = match &endpoint.ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| Unavailable {
                location: location.clone(),
                message: format!(
                    "cannot read {}.ca_file {}: {e}",
                    endpoint.section,
                    path.display()
                ),
            })?),
            None => None,
        };
        if endpoint.tls {
            crate::store::ensure_crypto_provider();
        }
        let redis = Redis {
            shared: Arc::new(Shared {
                endpoint,
                location,
                root_cert,
                link: RwLock::new(None),
                healthy: AtomicBool::new(false),
                probing: AtomicBool::new(true),
                last_error: std::sync::Mutex::new(String::new()),
            }),
        };
        // The first probe runs inline (bounded), later ones in the background.
        let first = tokio::time::timeout(CALL_TIMEOUT, redis.shared.probe_once()).await;
        let why = match first {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(format!("no answer within {CALL_TIMEOUT:?}")),
        };
        match why {
            None => redis.shared.healthy.store(true, Ordering::Release),
            Some(why) => {
                // debug: a one-shot CLI command reports the failure itself, and `serve` says once
                // that it is waiting.
                debug!(
                    section = redis.shared.endpoint.section,
                    "redis {} not reachable yet ({why}); calls fail until it is",
                    redis.shared.location
                );
                redis.shared.set_last_error(why);
            }
        }
        redis.shared.probing.store(false, Ordering::Release);
        if !redis.is_connected() {
            Shared::start_probe(&redis.shared);
        }
        Ok(redis)
    }

    /// Like [`Redis::open`], but failing when Redis cannot be reached now (the cluster
    /// registry waits for its backend at start-up instead of serving without one).
    pub async fn connect(endpoint: RedisEndpoint) -> Result<Redis, Unavailable> {
        let redis = Redis::open(endpoint).await?;
        if redis.is_connected() {
            Ok(redis)
        } else {
            Err(redis.unavailable("connect", redis.shared.last_error()))
        }
    }

    /// `redis://host:port/db` and the like, for messages.
    pub fn location(&self) -> &str {
        &self.shared.location
    }

    /// Whether the last call (or probe) reached Redis.
    pub fn is_connected(&self) -> bool {
        self.shared.healthy.load(Ordering::Acquire)
    }

    pub fn unavailable(&self, what: &str, message: impl std::fmt::Display) -> Unavailable {
        Unavailable {
            location: self.shared.location.clone(),
            message: format!("{what}: {message}"),
        }
    }

    /// Run `f` on the connection under [`CALL_TIMEOUT`]. Every Redis error is
    /// [`Unavailable`]; use [`Redis::call_raw`] to look at server errors such as
    /// `WRONGTYPE` yourself.
    pub async fn call<T, F, Fut>(&self, what: &str, f: F) -> Result<T, Unavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        self.call_raw(what, f)
            .await?
            .map_err(|e| self.unavailable(what, e))
    }

    /// Like [`Redis::call`], but hands back the reply as Redis gave it. The outer error is
    /// "could not talk to Redis" (down, timed out, failing over); the inner one is whatever
    /// the server answered, for the caller to judge (e.g. `WRONGTYPE` on a damaged key).
    pub async fn call_raw<T, F, Fut>(&self, what: &str, f: F) -> Result<RedisResult<T>, Unavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let link = self.shared.current_link();
        let Some(link) = link.filter(|_| self.is_connected()) else {
            Shared::start_probe(&self.shared);
            let why = self.shared.last_error();
            return Err(self.unavailable(
                what,
                format!("not connected ({why}); reconnecting in the background"),
            ));
        };
        match tokio::time::timeout(CALL_TIMEOUT, f(link.conn)).await {
            Ok(Err(e)) if is_link_failure(&e) => {
                self.shared.mark_down(&e.to_string());
                Err(self.unavailable(what, e))
            }
            Ok(reply) => Ok(reply),
            Err(_) => {
                let why = format!("no answer within {CALL_TIMEOUT:?}");
                self.shared.mark_down(&why);
                Err(self.unavailable(what, why))
            }
        }
    }

    /// The server's clock in milliseconds.
    pub async fn now_ms(&self) -> Result<i64, Unavailable> {
        let (secs, micros): (i64, i64) = self
            .call("TIME", |mut c| async move {
                redis::cmd("TIME").query_async(&mut c).await
            })
            .await?;
        Ok(secs * 1000 + micros / 1000)
    }
}

/// Errors that mean "this connection or this server cannot serve us now": the handle goes
/// down and the probe reconnects (asking the sentinels first, when there are any).
fn is_link_failure(e: &RedisError) -> bool {
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout() {
        return true;
    }
    if matches!(
        e.kind(),
        ErrorKind::Server(
            redis::ServerErrorKind::ReadOnly
                | redis::ServerErrorKind::MasterDown
                | redis::ServerErrorKind::BusyLoading
        )
    ) {
        return true;
    }
    // A write inside a script on a demoted master fails as a script error whose text
    // carries the original code.
    let text = e.to_string();
    ["READONLY", "NOREPLICAS", "MASTERDOWN", "LOADING"]
        .iter()
        .any(|code| e.code() == Some(code) || text.contains(code))
}

impl Shared {
    fn current_link(&self) -> Option<Link> {
        self.link.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_last_error(&self, why: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = why;
    }

    fn last_error(&self) -> String {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The link failed: say so once, and let the probe reconnect.
    fn mark_down(self: &Arc<Self>, why: &str) {
        self.set_last_error(why.to_owned());
        if self.healthy.swap(false, Ordering::AcqRel) {
            warn!(
                section = self.endpoint.section,
                "redis {} lost ({why}); reconnecting in the background", self.location
            );
        }
        Shared::start_probe(self);
    }

    fn start_probe(this: &Arc<Self>) {
        if this.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak: Weak<Shared> = Arc::downgrade(this);
        tokio::spawn(async move {
            let mut delay = PROBE_MIN_DELAY;
            loop {
                // The handle was dropped: nobody needs the connection any more.
                let Some(shared) = weak.upgrade() else { return };
                let attempt = tokio::time::timeout(CALL_TIMEOUT, shared.probe_once()).await;
                let failure = match attempt {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e),
                    Err(_) => Some(format!("no answer within {CALL_TIMEOUT:?}")),
                };
                if let Some(why) = failure {
                    shared.set_last_error(why);
                } else {
                    shared.healthy.store(true, Ordering::Release);
                    shared.probing.store(false, Ordering::Release);
                    let addr = shared.current_link().map(|l| l.addr).unwrap_or_default();
                    info!(
                        section = shared.endpoint.section,
                        "redis {} reachable (server {}:{})", shared.location, addr.0, addr.1
                    );
                    return;
                }
                drop(shared);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(PROBE_MAX_DELAY);
            }
        });
    }

    /// One attempt: find the server (asking the sentinels), make sure the link points at it,
    /// and check that it answers as a master.
    async fn probe_once(&self) -> Result<(), String> {
        let addr = match &self.endpoint.target {
            RedisTarget::Direct { host, port } => (host.clone(), *port),
            RedisTarget::Sentinel {
                sentinels,
                master_name,
            } => self.ask_sentinels(sentinels, master_name).await?,
        };
        let link = match self.current_link() {
            Some(link) if link.addr == addr => link,
            previous => {
                let conn = self.connection_to(&addr)?;
                if let Some(old) = previous {
                    info!(
                        section = self.endpoint.section,
                        "redis {}: master moved from {}:{} to {}:{}",
                        self.location,
                        old.addr.0,
                        old.addr.1,
                        addr.0,
                        addr.1
                    );
                }
                let link = Link { addr, conn };
                *self.link.write().unwrap_or_else(|p| p.into_inner()) = Some(link.clone());
                link
            }
        };
        let mut conn = link.conn;
        if matches!(self.endpoint.target, RedisTarget::Direct { .. }) {
            // One server: any answer proves the link (and the login). TIME is a command every
            // fleetctl user may run; ROLE is not (`-@dangerous` removes it), and a plain server
            // configured as someone's replica is the operator's choice.
            let _: (i64, i64) = redis::cmd("TIME")
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            return Ok(());
        }
        // With Sentinel, insist on the master: right after a failover the sentinels may still
        // name a replica that is being promoted.
        let role: Vec<redis::Value> = redis::cmd("ROLE")
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        match role.first() {
            Some(redis::Value::BulkString(r)) if r == b"master" => Ok(()),
            Some(redis::Value::SimpleString(r)) if r == "master" => Ok(()),
            _ => Err(format!(
                "{}:{} is not a master yet",
                link.addr.0, link.addr.1
            )),
        }
    }

    fn connection_info(&self, host: &str, port: u16, db: i64, auth: Auth) -> ConnectionInfo {
        let addr = if self.endpoint.tls {
            ConnectionAddr::TcpTls {
                host: host.to_owned(),
                port,
                insecure: false,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(host.to_owned(), port)
        };
        let mut settings = RedisConnectionInfo::default().set_db(db);
        match auth {
            Auth::Server => {
                if let Some(u) = &self.endpoint.username {
                    settings = settings.set_username(u);
                }
                if let Some(p) = &self.endpoint.password {
                    settings = settings.set_password(p);
                }
            }
            Auth::Sentinel => {
                if let Some(p) = &self.endpoint.sentinel_password {
                    settings = settings.set_password(p);
                }
            }
        }
        addr.into_connection_info()
            .expect("a host and port always make connection info")
            .set_redis_settings(settings)
    }

    fn client(&self, info: ConnectionInfo) -> Result<redis::Client, String> {
        let built = if self.endpoint.tls {
            redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: self.root_cert.clone(),
                },
            )
        } else {
            redis::Client::open(info)
        };
        built.map_err(|e| e.to_string())
    }

    fn connection_to(&self, addr: &(String, u16)) -> Result<ConnectionManager, String> {
        let client =
            self.client(self.connection_info(&addr.0, addr.1, self.endpoint.db, Auth::Server))?;
        // One quick retry inside the manager; the probe is the long-term retry, and calls
        // never wait for either.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(200));
        ConnectionManager::new_lazy_with_config(client, config).map_err(|e| e.to_string())
    }

    /// The master's address according to the first sentinel that knows it.
    async fn ask_sentinels(
        &self,
        sentinels: &[(String, u16)],
        master_name: &str,
    ) -> Result<(String, u16), String> {
        let mut failures = Vec::new();
        for (host, port) in sentinels {
            let info = self.connection_info(host, *port, 0, Auth::Sentinel);
            let asked = async {
                let client = self.client(info)?;
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT));
                let mut conn = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map_err(|e| e.to_string())?;
                let reply: Option<(String, u16)> = redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg(master_name)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                reply.ok_or_else(|| format!("does not know master {master_name:?}"))
            };
            match tokio::time::timeout(CONNECT_TIMEOUT + RESPONSE_TIMEOUT, asked).await {
                Ok(Ok(addr)) => return Ok(addr),
                Ok(Err(e)) => failures.push(format!("{host}:{port}: {e}")),
                Err(_) => failures.push(format!("{host}:{port}: no answer")),
            }
        }
        if failures.is_empty() {
            return Err("no sentinel configured".into());
        }
        Err(format!(
            "no sentinel named the master: {}",
            failures.join("; ")
        ))
    }
}

/// Whose credentials a connection uses: the data server's (ACL user + password) or the
/// sentinels' (their own password, default user).
#[derive(Clone, Copy)]
enum Auth {
    Server,
    Sentinel,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(
            parse_host_port("10.0.0.1:26379"),
            Some(("10.0.0.1".into(), 26379))
        );
        assert_eq!(parse_host_port("[::1]:26379"), Some(("::1".into(), 26379)));
        assert_eq!(
            parse_host_port("redis-a.internal:1"),
            Some(("redis-a.internal".into(), 1))
        );
        for bad in [
            "",
            "host",
            "host:",
            ":26379",
            "host:0",
            "host:70000",
            "::1:26379",
            "h:p",
        ] {
            assert_eq!(parse_host_port(bad), None, "{bad:?} accepted");
        }
    }

    #[test]
    fn locations_never_show_passwords() {
        let mut c = ClusterConfig {
            redis_password: Some("hunter2".into()),
            redis_sentinel_password: Some("s3cret".into()),
            ..ClusterConfig::default()
        };
        assert_eq!(
            RedisEndpoint::cluster(&c).location(),
            "redis://localhost:6379/0"
        );
        c.redis_sentinels = vec!["a:26379".into(), "b:26380".into()];
        c.redis_master_name = Some("fleet".into());
        c.redis_tls = true;
        let loc = RedisEndpoint::cluster(&c).location();
        assert_eq!(loc, "rediss+sentinel://a:26379,b:26380/fleet/0");
        assert!(!loc.contains("hunter2") && !loc.contains("s3cret"));
    }
}
