//! The config schema as data: every key, its type and whether it may be null.
//!
//! The validator walks the YAML tree against this table. It mirrors the serde structs in
//! `config/mod.rs`; the tests at the bottom fail if the two drift apart (a field added to a
//! struct but not here, or the other way round).

/// What a key holds.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    Bool,
    /// An integer in `min..=max`.
    Int {
        min: i64,
        max: i64,
    },
    /// A TCP port; `any_free` allows 0, meaning "let the OS pick a free port".
    Port {
        any_free: bool,
    },
    /// Integer seconds or a string with a unit (`500ms`, `10s`, `5m`, `1h`, `1d`).
    Duration,
    Str,
    /// A string that must never be echoed back in a message.
    Secret,
    /// An `http://` or `https://` URL.
    Url,
    /// An IP address or a CIDR block.
    Cidr,
    /// `host:port` (`[v6]:port`), e.g. a Redis Sentinel.
    HostPort,
    Enum(&'static [&'static str]),
    Path,
    /// 64 hex digits.
    Sha256,
    /// An argon2id PHC string.
    PasswordHash,
    List(&'static Ty),
    Struct(&'static [Field]),
}

#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub ty: Ty,
    /// `null` is allowed (the serde field is an `Option`).
    pub nullable: bool,
    /// The key must be present (the serde struct has no default for it).
    pub required: bool,
}

const fn key(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        nullable: false,
        required: false,
    }
}

const fn opt(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        nullable: true,
        required: false,
    }
}

const fn req(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        nullable: false,
        required: true,
    }
}

pub const BACKENDS: &[&str] = &["redis", "sqlite", "file", "postgres"];
/// Fleet data has no file backend.
pub const STORAGE_BACKENDS: &[&str] = &["sqlite", "redis", "postgres"];
pub const PG_SSLMODES: &[&str] = &["disable", "verify-full"];
const PORT: Ty = Ty::Port { any_free: false };
const REDIS_DB: Ty = Ty::Int {
    min: 0,
    max: i64::MAX,
};

pub static TLS: &[Field] = &[
    opt("cert", Ty::Path),
    opt("key", Ty::Path),
    opt("client_ca", Ty::Path),
];

pub static SERVER: &[Field] = &[
    key("host", Ty::Str),
    key("port", Ty::Port { any_free: true }),
    opt("advertise_url", Ty::Url),
    key("drain_timeout", Ty::Duration),
    key("trusted_proxies", Ty::List(&Ty::Cidr)),
    opt("tls", Ty::Struct(TLS)),
    key("header_read_timeout", Ty::Duration),
    key("request_timeout", Ty::Duration),
    key(
        "max_concurrent_requests",
        Ty::Int {
            min: 1,
            max: 1_000_000,
        },
    ),
];

pub static CLUSTER: &[Field] = &[
    key("enabled", Ty::Bool),
    key("backend", Ty::Enum(BACKENDS)),
    opt("hostname", Ty::Str),
    opt("node_id", Ty::Str),
    key("heartbeat_interval", Ty::Duration),
    key("node_timeout", Ty::Duration),
    key("prune_after", Ty::Duration),
    key("redis_host", Ty::Str),
    key("redis_port", PORT),
    key("redis_db", REDIS_DB),
    opt("redis_password", Ty::Secret),
    opt("redis_password_file", Ty::Path),
    opt("redis_username", Ty::Str),
    key("redis_sentinels", Ty::List(&Ty::HostPort)),
    opt("redis_master_name", Ty::Str),
    opt("redis_sentinel_password", Ty::Secret),
    opt("redis_sentinel_password_file", Ty::Path),
    key("redis_tls", Ty::Bool),
    opt("redis_ca_file", Ty::Path),
    key("state_path", Ty::Path),
    key("postgres", Ty::Struct(POSTGRES)),
];

pub static REDIS: &[Field] = &[
    key("host", Ty::Str),
    key("port", PORT),
    opt("db", REDIS_DB),
    opt("password", Ty::Secret),
    opt("password_file", Ty::Path),
    opt("username", Ty::Str),
    key("sentinels", Ty::List(&Ty::HostPort)),
    opt("master_name", Ty::Str),
    opt("sentinel_password", Ty::Secret),
    opt("sentinel_password_file", Ty::Path),
    key("tls", Ty::Bool),
    opt("ca_file", Ty::Path),
];

pub static POSTGRES: &[Field] = &[
    opt("url", Ty::Str),
    key("host", Ty::Str),
    key("port", PORT),
    key("dbname", Ty::Str),
    key("user", Ty::Str),
    opt("password", Ty::Secret),
    opt("password_file", Ty::Path),
    key("sslmode", Ty::Enum(PG_SSLMODES)),
    opt("ca_file", Ty::Path),
    key("pool_size", Ty::Int { min: 1, max: 1000 }),
];

pub static SESSIONS: &[Field] = &[
    key("backend", Ty::Enum(BACKENDS)),
    key("ttl", Ty::Duration),
    key("max_lifetime", Ty::Duration),
    key(
        "max_login_failures",
        Ty::Int {
            min: 1,
            max: 1_000_000,
        },
    ),
    key(
        "max_login_failures_per_ip",
        Ty::Int {
            min: 1,
            max: 1_000_000,
        },
    ),
    key("login_failure_window", Ty::Duration),
    key("redis", Ty::Struct(REDIS)),
    key("postgres", Ty::Struct(POSTGRES)),
    key("db_path", Ty::Path),
    key("session_dir", Ty::Path),
];

pub static STORAGE: &[Field] = &[
    key("backend", Ty::Enum(STORAGE_BACKENDS)),
    key("db_path", Ty::Path),
    key("redis", Ty::Struct(REDIS)),
    key("postgres", Ty::Struct(POSTGRES)),
    key("stale_after", Ty::Duration),
    key("offline_after", Ty::Duration),
    key("forget_after", Ty::Duration),
    key("encrypt_reports", Ty::Bool),
];

pub static SECURITY: &[Field] = &[opt("encryption_key_file", Ty::Path)];

pub static USER: &[Field] = &[
    req("username", Ty::Str),
    req("password_hash", Ty::PasswordHash),
];

pub static KEY: &[Field] = &[req("name", Ty::Str), req("sha256", Ty::Sha256)];

pub static AUTH: &[Field] = &[
    key("users", Ty::List(&Ty::Struct(USER))),
    key("api_keys", Ty::List(&Ty::Struct(KEY))),
    key("admin_tokens", Ty::List(&Ty::Struct(KEY))),
    key("metrics_tokens", Ty::List(&Ty::Struct(KEY))),
];

pub static AGENT: &[Field] = &[
    opt("server", Ty::Url),
    opt("api_key_file", Ty::Path),
    opt("ca_file", Ty::Path),
    key("interval", Ty::Duration),
];

/// The top level of the file.
pub static CONFIG: &[Field] = &[
    key("server", Ty::Struct(SERVER)),
    key("cluster", Ty::Struct(CLUSTER)),
    key("sessions", Ty::Struct(SESSIONS)),
    key("storage", Ty::Struct(STORAGE)),
    key("auth", Ty::Struct(AUTH)),
    key("agent", Ty::Struct(AGENT)),
    key("security", Ty::Struct(SECURITY)),
];

/// Every key path in the schema (`cluster.heartbeat_interval`, `auth.users[].username`).
pub fn all_paths() -> Vec<String> {
    fn walk(prefix: &str, fields: &[Field], out: &mut Vec<String>) {
        for f in fields {
            let path = if prefix.is_empty() {
                f.name.to_string()
            } else {
                format!("{prefix}.{}", f.name)
            };
            out.push(path.clone());
            match f.ty {
                Ty::Struct(inner) => walk(&path, inner, out),
                Ty::List(Ty::Struct(inner)) => walk(&format!("{path}[]"), inner, out),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk("", CONFIG, &mut out);
    out
}

/// The sections (dotted paths) where a key of this name is valid, for "belongs under" hints.
pub fn sections_with_key(name: &str) -> Vec<String> {
    all_paths()
        .into_iter()
        .filter_map(|p| {
            let (parent, last) = p.rsplit_once('.')?;
            (last == name).then(|| parent.to_string())
        })
        .collect()
}
