//! The config model (DESIGN §3): structs, defaults, loading and validation.
//!
//! Key names are binding: they come verbatim from the original feature description
//! (`cluster.heartbeat_interval`, `sessions.redis.host`, …). Every struct denies unknown keys so
//! a typo is an error, never a silently ignored setting.
//!
//! YAML: `serde_yaml` is deprecated upstream; we use `serde-saphyr`, which is maintained,
//! panic-free on hostile input, honours `deny_unknown_fields` and reports line and column.
//! serde stops at the first problem, so a file is first checked by `validate.rs` (every problem,
//! each with file:line:column, on a span-carrying tree from `yaml.rs` built with
//! `granit-parser`, the parser under serde-saphyr) and only then deserialized.
//!
//! Submodules: `yaml` (text to positioned tree), `schema` (every key and its type),
//! `validate` (structural and semantic checks), `secrets` (env and `*_file` passwords),
//! `init` (the text `config init` writes).

pub mod init;
pub mod schema;
pub mod secrets;
pub mod validate;
pub mod yaml;

pub use validate::{Problem, Severity};

use std::fmt;
use std::path::{Path, PathBuf};

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The whole config file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub cluster: ClusterConfig,
    pub sessions: SessionsConfig,
    pub storage: StorageConfig,
    pub auth: AuthConfig,
    pub agent: AgentConfig,
    pub security: SecurityConfig,
}

/// Encryption at rest (docs/security.md).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// Keys that seal session records (and fleet reports with `storage.encrypt_reports`), one
    /// `<key-id>:<base64 of 32 bytes>` a line; the first encrypts, all decrypt.
    pub encryption_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub host: String,
    /// Port to listen on; 0 asks the OS for a free one (tests).
    pub port: u16,
    /// The URL other nodes and `lb gen-*` use to reach this node; derived from hostname and
    /// port when absent.
    pub advertise_url: Option<String>,
    /// How long a draining node keeps serving, so the load balancer notices before it exits.
    pub drain_timeout: Secs,
    /// Peers whose `X-Forwarded-For` / `X-Forwarded-Proto` we believe (CIDR list).
    pub trusted_proxies: Vec<String>,
    pub tls: Option<TlsConfig>,
    /// A client gets this long for its TLS handshake and for each request head (slowloris).
    pub header_read_timeout: Secs,
    /// A whole request, body included, gets this long before 408.
    pub request_timeout: Secs,
    /// Requests in progress at once (the health check aside); past it, 503 + Retry-After.
    pub max_concurrent_requests: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "0.0.0.0".into(),
            port: 8768,
            advertise_url: None,
            drain_timeout: Secs::from_secs(10),
            trusted_proxies: vec!["127.0.0.1/32".into()],
            tls: None,
            header_read_timeout: Secs::from_secs(5),
            request_timeout: Secs::from_secs(30),
            max_concurrent_requests: 512,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain (the node's certificate first).
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
    /// PEM CA certificates: clients (the load balancer) must present a certificate signed by
    /// one of them (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// Where shared state lives. Each backend module owns its layout; nothing outside it matches
/// on this enum except the factory that builds the backend.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Redis,
    #[default]
    Sqlite,
    File,
    Postgres,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Redis => "redis",
            BackendKind::Sqlite => "sqlite",
            BackendKind::File => "file",
            BackendKind::Postgres => "postgres",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    pub enabled: bool,
    pub backend: BackendKind,
    /// `auto` or absent: detected from the OS.
    pub hostname: Option<String>,
    /// `auto` or absent: `<hostname>-<6 random chars>`.
    pub node_id: Option<String>,
    pub heartbeat_interval: Secs,
    /// A node without a heartbeat for this long is `inactive`.
    pub node_timeout: Secs,
    /// Inactive nodes are forgotten after this long.
    pub prune_after: Secs,
    pub redis_host: String,
    pub redis_port: u16,
    pub redis_db: i64,
    pub redis_password: Option<String>,
    pub redis_password_file: Option<PathBuf>,
    /// Redis ACL user (`None`: the `default` user).
    pub redis_username: Option<String>,
    /// `host:port` of each Redis Sentinel; when set, the master is whatever they name
    /// `redis_master_name`, and `redis_host`/`redis_port` are not used.
    pub redis_sentinels: Vec<String>,
    pub redis_master_name: Option<String>,
    /// The sentinels' own password (`requirepass` in sentinel.conf).
    pub redis_sentinel_password: Option<String>,
    pub redis_sentinel_password_file: Option<PathBuf>,
    /// TLS (`rediss`) to Redis and the sentinels.
    pub redis_tls: bool,
    /// PEM CA to trust for `redis_tls` instead of the system store.
    pub redis_ca_file: Option<PathBuf>,
    /// Directory for the sqlite and file backends.
    pub state_path: PathBuf,
    /// The database for `backend: postgres`.
    pub postgres: PostgresConfig,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            enabled: false,
            backend: BackendKind::Sqlite,
            hostname: None,
            node_id: None,
            heartbeat_interval: Secs::from_secs(10),
            node_timeout: Secs::from_secs(30),
            prune_after: Secs::from_secs(86_400),
            redis_host: "localhost".into(),
            redis_port: 6379,
            redis_db: 0,
            redis_password: None,
            redis_password_file: None,
            redis_username: None,
            redis_sentinels: Vec::new(),
            redis_master_name: None,
            redis_sentinel_password: None,
            redis_sentinel_password_file: None,
            redis_tls: false,
            redis_ca_file: None,
            state_path: PathBuf::from("fleet-data/cluster"),
            postgres: PostgresConfig::default(),
        }
    }
}

/// Connection settings for a Redis server used by sessions or storage.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    pub host: String,
    pub port: u16,
    /// Database number; absent means the section's own default (sessions 1, storage 2), so
    /// `redis: { host: x }` does not silently move sessions into the cluster's database 0.
    pub db: Option<i64>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Redis ACL user (`None`: the `default` user).
    pub username: Option<String>,
    /// `host:port` of each Redis Sentinel; when set, `host`/`port` are not used.
    pub sentinels: Vec<String>,
    pub master_name: Option<String>,
    /// The sentinels' own password.
    pub sentinel_password: Option<String>,
    pub sentinel_password_file: Option<PathBuf>,
    /// TLS (`rediss`) to Redis and the sentinels.
    pub tls: bool,
    /// PEM CA to trust for `tls` instead of the system store.
    pub ca_file: Option<PathBuf>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            host: "localhost".into(),
            port: 6379,
            db: None,
            password: None,
            password_file: None,
            username: None,
            sentinels: Vec::new(),
            master_name: None,
            sentinel_password: None,
            sentinel_password_file: None,
            tls: false,
            ca_file: None,
        }
    }
}

/// How `backend: postgres` reaches its database (`cluster.postgres`, `sessions.postgres`,
/// `storage.postgres`; the three may name the same database: each store has its own tables).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresConfig {
    /// `postgres://user@host:port/dbname` (or libpq `key=value` form); when set, `host`,
    /// `port`, `dbname` and `user` are not used. No password and no `sslmode` in it: those
    /// have their own keys, so neither ends up in a log line or is silently overridden.
    pub url: Option<String>,
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub user: String,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    /// `disable` (plain TCP) or `verify-full` (TLS, certificate chain and host name checked).
    pub sslmode: PgSslMode,
    /// PEM CA to trust for `verify-full` instead of the system store.
    pub ca_file: Option<PathBuf>,
    /// Connections each store keeps open to the database, at most.
    pub pool_size: u32,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            url: None,
            host: "localhost".into(),
            port: 5432,
            dbname: "fleetctl".into(),
            user: "fleetctl".into(),
            password: None,
            password_file: None,
            sslmode: PgSslMode::Disable,
            ca_file: None,
            pool_size: 16,
        }
    }
}

/// TLS to PostgreSQL. Only the two modes that mean what they say: libpq's `prefer`, `allow`
/// and `require` accept a connection an attacker can read or impersonate, so they are refused.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PgSslMode {
    #[default]
    Disable,
    VerifyFull,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SessionsConfig {
    pub backend: BackendKind,
    /// Idle timeout, sliding.
    pub ttl: Secs,
    /// Absolute timeout from login.
    pub max_lifetime: Secs,
    /// Failed logins per user and client address allowed in `login_failure_window` before
    /// further attempts get 429 (counted in the session backend, so shared by every node).
    pub max_login_failures: u32,
    /// Failed logins per client address (any usernames) allowed in `login_failure_window`,
    /// so a flood of made-up names from one address is throttled too.
    pub max_login_failures_per_ip: u32,
    /// The throttling window; it starts at the first failure.
    pub login_failure_window: Secs,
    pub redis: RedisConfig,
    pub postgres: PostgresConfig,
    pub db_path: PathBuf,
    pub session_dir: PathBuf,
}

impl SessionsConfig {
    /// Sessions live in Redis database 1 unless the config says otherwise.
    pub fn redis_db(&self) -> i64 {
        self.redis.db.unwrap_or(1)
    }
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            backend: BackendKind::Sqlite,
            ttl: Secs::from_secs(3600),
            max_lifetime: Secs::from_secs(43_200),
            max_login_failures: 5,
            max_login_failures_per_ip: 100,
            login_failure_window: Secs::from_secs(900),
            redis: RedisConfig::default(),
            postgres: PostgresConfig::default(),
            db_path: PathBuf::from("fleet-data/sessions.db"),
            session_dir: PathBuf::from("fleet-data/sessions"),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub backend: BackendKind,
    pub db_path: PathBuf,
    pub redis: RedisConfig,
    pub postgres: PostgresConfig,
    /// A machine without a report for this long is `stale` (a report or two missed).
    pub stale_after: Secs,
    /// A machine without a report for this long is `offline`.
    pub offline_after: Secs,
    /// A machine without a report for this long is forgotten.
    pub forget_after: Secs,
    /// Seal each machine's stored report with `security.encryption_key_file`.
    pub encrypt_reports: bool,
}

impl StorageConfig {
    /// Fleet data lives in Redis database 2 unless the config says otherwise.
    pub fn redis_db(&self) -> i64 {
        self.redis.db.unwrap_or(2)
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            backend: BackendKind::Sqlite,
            db_path: PathBuf::from("fleet-data/fleet.db"),
            redis: RedisConfig::default(),
            postgres: PostgresConfig::default(),
            stale_after: Secs::from_secs(60),
            offline_after: Secs::from_secs(300),
            forget_after: Secs::from_secs(30 * 86_400),
            encrypt_reports: false,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub users: Vec<UserEntry>,
    pub api_keys: Vec<KeyEntry>,
    pub admin_tokens: Vec<KeyEntry>,
    /// Bearer tokens for `GET /metrics`. Empty: `/metrics` needs no token (keep it on a
    /// trusted network); otherwise a scrape needs one of these or an admin token.
    pub metrics_tokens: Vec<KeyEntry>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub username: String,
    /// argon2id PHC string; the password itself is never stored.
    pub password_hash: String,
}

/// An agent API key or admin token: only its SHA-256 is kept.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    pub name: String,
    /// Lowercase hex SHA-256 of the key.
    pub sha256: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    pub server: Option<String>,
    pub api_key_file: Option<PathBuf>,
    /// PEM CA certificates an https:// server must chain to (a private CA).
    pub ca_file: Option<PathBuf>,
    pub interval: Secs,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            server: None,
            api_key_file: None,
            ca_file: None,
            interval: Secs::from_secs(10),
        }
    }
}

/// A duration written as integer seconds or a string with a unit (`500ms`, `10s`, `5m`, `1h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Secs(pub Duration);

impl Secs {
    pub const fn from_secs(s: u64) -> Self {
        Secs(Duration::from_secs(s))
    }

    pub fn as_duration(self) -> Duration {
        self.0
    }

    /// Parse `10`, `10s`, `500ms`, `5m`, `1h`, `1d`.
    pub fn parse(text: &str) -> Result<Secs, String> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (digits, unit) = t.split_at(split);
        let n: u64 = digits.parse().map_err(|_| {
            format!("`{text}` is not a duration; write seconds (30) or a number with a unit (500ms, 10s, 5m, 1h, 1d)")
        })?;
        let ms = match unit.trim() {
            "ms" => Some(n),
            "" | "s" => n.checked_mul(1000),
            "m" => n.checked_mul(60_000),
            "h" => n.checked_mul(3_600_000),
            "d" => n.checked_mul(86_400_000),
            other => {
                return Err(format!(
                    "unknown duration unit `{other}` in `{text}`; use ms, s, m, h or d"
                ));
            }
        };
        ms.map(|ms| Secs(Duration::from_millis(ms)))
            .ok_or_else(|| format!("duration `{text}` is too large"))
    }
}

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if !ms.is_multiple_of(1000) {
            write!(f, "{ms}ms")
        } else {
            write!(f, "{}s", ms / 1000)
        }
    }
}

impl Serialize for Secs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Secs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Secs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration: seconds (30) or a number with a unit (500ms, 10s, 5m)")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Secs, E> {
                Ok(Secs::from_secs(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Secs, E> {
                u64::try_from(v)
                    .map(Secs::from_secs)
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secs, E> {
                Secs::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A config that failed to load or validate. Its `Display` lists every problem (errors and the
/// warnings found alongside them), each with file:line:column.
#[derive(Debug)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl ConfigError {
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.is_error())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors().count();
        write!(
            f,
            "invalid config ({n} error{}):",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {}", p.to_string().replace('\n', "\n  "))?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// A config together with where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// `None` for the embedded standalone default.
    pub path: Option<PathBuf>,
    /// Problems that do not stop the config from working; `serve` logs them at start-up.
    pub warnings: Vec<Problem>,
}

impl Loaded {
    /// The embedded standalone default (no file).
    pub fn embedded_default() -> Loaded {
        Loaded {
            config: Config::default(),
            path: None,
            warnings: Vec::new(),
        }
    }

    /// `--config` if given, else `./fleet.yaml` if present, else the embedded default.
    pub fn discover(explicit: Option<&Path>) -> anyhow::Result<Loaded> {
        let path = match explicit {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from("fleet.yaml")).filter(|p| p.exists()),
        };
        match path {
            None => Ok(Loaded::embedded_default()),
            Some(path) => Loaded::from_file(&path),
        }
    }

    /// Read, validate and resolve the secrets of one file, with the process environment.
    pub fn from_file(path: &Path) -> anyhow::Result<Loaded> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            crate::exit::UsageError(format!("cannot read config file {}: {e}", path.display()))
        })?;
        let (config, warnings) = Config::load_str(&text, path, &process_env)?;
        Ok(Loaded {
            config,
            path: Some(path.to_path_buf()),
            warnings,
        })
    }
}

/// The process environment, for `Config::load_str`.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl Config {
    /// Parse, validate and resolve secrets (from the process environment and `*_file`s);
    /// `origin` names the file in messages. Warnings are dropped: use [`Config::load_str`] or
    /// [`Loaded`] to keep them.
    pub fn from_yaml(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        Config::load_str(text, origin, &process_env).map(|(config, _)| config)
    }

    /// Everything `config validate` reports, in file order: structural and semantic problems,
    /// then secret files that cannot be read. The config is returned when there is no error.
    pub fn check_str(
        text: &str,
        origin: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> (Vec<Problem>, Option<Config>) {
        let checked = validate::check(text, origin);
        let mut problems = checked.problems;
        let Some(mut config) = checked.config else {
            return (problems, None);
        };
        if problems.iter().any(Problem::is_error) {
            return (problems, None);
        }
        problems.extend(secrets::resolve(&mut config, env, &checked.index, origin));
        problems.extend(secrets::check_key_file(&config, &checked.index, origin));
        if problems.iter().any(Problem::is_error) {
            return (problems, None);
        }
        // The validator accepted the text; deserializing it with serde-saphyr as well means
        // a drift between schema.rs and the structs shows up as an error, never as a silently
        // different config.
        if checked.tree.is_some() {
            match serde_saphyr::from_str::<Config>(text) {
                Ok(mut parsed) => {
                    parsed.cluster.redis_password = config.cluster.redis_password.take();
                    parsed.sessions.redis.password = config.sessions.redis.password.take();
                    parsed.storage.redis.password = config.storage.redis.password.take();
                    parsed.cluster.redis_sentinel_password =
                        config.cluster.redis_sentinel_password.take();
                    parsed.sessions.redis.sentinel_password =
                        config.sessions.redis.sentinel_password.take();
                    parsed.storage.redis.sentinel_password =
                        config.storage.redis.sentinel_password.take();
                    parsed.cluster.postgres.password = config.cluster.postgres.password.take();
                    parsed.sessions.postgres.password = config.sessions.postgres.password.take();
                    parsed.storage.postgres.password = config.storage.postgres.password.take();
                    config = parsed;
                }
                Err(e) => {
                    problems.push(Problem {
                        severity: Severity::Error,
                        file: origin.display().to_string(),
                        line: 1,
                        column: 1,
                        key: String::new(),
                        message: format!("internal error: the validator accepted a file the config structs reject: {e}"),
                        hint: Some("please report this as a bug in fleetctl".into()),
                    });
                    return (problems, None);
                }
            }
        }
        (problems, Some(config))
    }

    /// Like [`Config::check_str`], as a `Result`: the config and its warnings, or every problem.
    pub fn load_str(
        text: &str,
        origin: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Config, Vec<Problem>), ConfigError> {
        match Config::check_str(text, origin, env) {
            (problems, Some(config)) => Ok((config, problems)),
            (problems, None) => Err(ConfigError { problems }),
        }
    }

    /// A copy with every secret replaced by `***`, for `config show` and logs.
    pub fn redacted(&self) -> Config {
        const MASK: &str = "***";
        let mut c = self.clone();
        for password in [
            &mut c.cluster.redis_password,
            &mut c.sessions.redis.password,
            &mut c.storage.redis.password,
            &mut c.cluster.redis_sentinel_password,
            &mut c.sessions.redis.sentinel_password,
            &mut c.storage.redis.sentinel_password,
        ] {
            if password.is_some() {
                *password = Some(MASK.into());
            }
        }
        for user in &mut c.auth.users {
            user.password_hash = MASK.into();
        }
        c
    }
}

#[cfg(test)]
mod tests;
