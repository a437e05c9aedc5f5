//! Login sessions shared by every node (DESIGN §5): the [`Session`] record, the [`SessionId`]
//! that travels in the cookie, and the [`SessionStore`] trait with one implementation per
//! backend (`redis.rs`, `sqlite.rs`, `file.rs`), chosen once by [`open`].
//!
//! What every store guarantees, checked by `tests/it/session_conformance.rs`:
//! - the raw id never reaches storage; records are keyed on [`SessionId::storage_key`]
//!   (SHA-256, hex), so a dump of the store yields no usable cookie;
//! - a session expires after `sessions.ttl` without use (sliding) and, whatever its use, at
//!   `created_at + sessions.max_lifetime`; an expired session is absent, never returned;
//! - `save`/`touch` never resurrect a session that was deleted or revoked meanwhile;
//! - a record that cannot be decoded is absent and reported with `tracing::warn!`, never a panic;
//! - backend failures are [`SessionError::Unavailable`] so the server can answer 503 and keep the
//!   cookie: an outage must not log everyone out.
//!
//! This module never spells a Redis key, an SQL statement or a file name; each store owns its
//! layout.

pub mod file;
pub mod janitor;
pub mod postgres;
pub mod redis;
pub mod sqlite;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{BackendKind, SessionsConfig};
pub use crate::store::crypto::{AtRest, ResealCount};

pub use crate::store::ExportPage;
pub use crate::store::time::Millis;
/// This host's clock (SQLite and file stores; Redis uses its own `TIME`), and durations in ms.
pub(crate) use crate::store::time::{duration_ms, now_millis};

/// Data a handler may keep in a session (flash messages, preferences). Small: it is written on
/// every save.
pub type SessionData = serde_json::Map<String, serde_json::Value>;

/// Bytes of OS randomness in a session id (256 bits) and in a CSRF token.
const ID_BYTES: usize = 32;

/// The secret a browser holds in its cookie. 256 bits from the OS RNG, hex-encoded (URL- and
/// cookie-safe). Neither `Debug` nor any log line shows it; only [`SessionId::cookie_value`]
/// does, for the `Set-Cookie` header.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId(String);

impl SessionId {
    /// A fresh id from the OS RNG. Call on every login (a new id defeats session fixation).
    pub fn generate() -> Result<SessionId, SessionError> {
        Ok(SessionId(random_hex()?))
    }

    /// Accept a cookie value only if it has the shape `generate` produces, so a forged or
    /// truncated cookie is rejected before any store lookup.
    pub fn parse(cookie_value: &str) -> Option<SessionId> {
        let well_formed = cookie_value.len() == ID_BYTES * 2
            && cookie_value
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        well_formed.then(|| SessionId(cookie_value.to_owned()))
    }

    /// The raw value, for the `Set-Cookie` header only.
    pub fn cookie_value(&self) -> &str {
        &self.0
    }

    /// What stores key on: lowercase hex SHA-256 of the raw id.
    pub fn storage_key(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A short prefix of the *hash* lets logs correlate requests without leaking the cookie.
        write!(f, "SessionId(sha256:{}…)", &self.storage_key()[..12])
    }
}

/// 32 bytes from the OS RNG as 64 lowercase hex characters.
fn random_hex() -> Result<String, SessionError> {
    let mut bytes = [0u8; ID_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| SessionError::Rng(e.to_string()))?;
    Ok(hex::encode(bytes))
}

/// A logged-in user's server-side state. `Debug` leaves out the CSRF token and the data.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub user: String,
    /// Login time; the absolute lifetime counts from here.
    pub created_at: Millis,
    /// Last `create`/`save`/`touch`; the idle timeout slides from here.
    pub last_seen: Millis,
    /// `min(last_seen + ttl, created_at + max_lifetime)`: after this the session is gone.
    pub expires_at: Millis,
    /// Per-session token that state-changing forms must echo back.
    pub csrf_token: String,
    pub data: SessionData,
}

impl Session {
    /// A session just logged in at `now` (the caller's chosen clock), with a fresh CSRF token.
    pub(crate) fn fresh(
        user: &str,
        now: Millis,
        lifetimes: &Lifetimes,
        data: SessionData,
    ) -> SessionResult<Session> {
        Ok(Session {
            user: user.to_owned(),
            created_at: now,
            last_seen: now,
            expires_at: lifetimes.expires_at(now, now),
            csrf_token: new_csrf_token()?,
            data,
        })
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("user", &self.user)
            .field("created_at", &self.created_at)
            .field("last_seen", &self.last_seen)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A session as listed by admin tools: the hash it is stored under, never the raw id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub id_hash: String,
    #[serde(flatten)]
    pub session: Session,
}

/// The two timeouts of DESIGN §5, taken from `sessions.ttl` and `sessions.max_lifetime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// Idle timeout, renewed by every save or touch.
    pub idle: Duration,
    /// Absolute timeout from login; no renewal extends a session past it.
    pub absolute: Duration,
}

impl Lifetimes {
    pub fn from_config(config: &SessionsConfig) -> Lifetimes {
        Lifetimes {
            idle: config.ttl.as_duration(),
            absolute: config.max_lifetime.as_duration(),
        }
    }

    pub fn idle_ms(&self) -> i64 {
        duration_ms(self.idle)
    }

    pub fn absolute_ms(&self) -> i64 {
        duration_ms(self.absolute)
    }

    /// When a session created at `created_at` and last used at `now` expires.
    pub fn expires_at(&self, created_at: Millis, now: Millis) -> Millis {
        now.saturating_add(self.idle_ms())
            .min(created_at.saturating_add(self.absolute_ms()))
    }
}

/// How far `delete_expired` has got, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcProgress {
    /// Records examined (file store) or deleted (SQLite) so far.
    pub done: u64,
    /// What `done` will reach when the run completes.
    pub total: u64,
}

/// Called by `delete_expired` after every batch.
pub type ProgressFn<'a> = &'a (dyn Fn(GcProgress) + Send + Sync);

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The backend cannot be reached or failed an I/O operation. The server answers 503 and
    /// keeps the cookie; retrying later may succeed.
    #[error("{backend} session store unavailable at {location}: {message}")]
    Unavailable {
        backend: BackendKind,
        location: String,
        message: String,
    },
    /// `create` was given an id that names a live session.
    #[error("a live session already has this id")]
    AlreadyExists,
    /// `save` on a session that expired, was logged out or was revoked meanwhile.
    #[error("session not found (expired, logged out or revoked)")]
    NotFound,
    /// The `sessions:` config section cannot be used as it is.
    #[error("sessions config: {0}")]
    Config(String),
    #[error("cannot read random bytes from the OS: {0}")]
    Rng(String),
}

pub type SessionResult<T> = Result<T, SessionError>;

/// Server-side session storage. One implementation per backend, all with the same behaviour;
/// used as `Arc<dyn SessionStore>` by the HTTP layer and the CLI.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Which backend this is (for messages and `sessions gc`).
    fn backend(&self) -> BackendKind;

    /// The timeouts this store applies.
    fn lifetimes(&self) -> Lifetimes;

    /// Store a new session for `user` under `id`, with a fresh CSRF token. Fails with
    /// [`SessionError::AlreadyExists`] if `id` names a live session.
    async fn create(&self, id: &SessionId, user: &str, data: SessionData)
    -> SessionResult<Session>;

    /// The live session under `id`; `None` when absent, expired or unreadable.
    async fn load(&self, id: &SessionId) -> SessionResult<Option<Session>>;

    /// Write `session.data` and `session.csrf_token` and renew the idle timeout (capped by the
    /// absolute lifetime). `user` and `created_at` are fixed at creation and not rewritten.
    /// Fails with [`SessionError::NotFound`] if the session is no longer live: a save never
    /// brings back a session that was logged out or revoked.
    async fn save(&self, id: &SessionId, session: &Session) -> SessionResult<Session>;

    /// Renew the idle timeout without changing data; `None` if the session is no longer live.
    async fn touch(&self, id: &SessionId) -> SessionResult<Option<Session>>;

    /// End one session (logout). True if it existed.
    async fn delete(&self, id: &SessionId) -> SessionResult<bool>;

    /// Remove expired records, calling `progress` as it goes; returns how many were removed.
    /// Redis expires keys itself and returns 0.
    async fn delete_expired(&self, progress: ProgressFn<'_>) -> SessionResult<u64>;

    /// Live sessions, of one user or of everyone, oldest first.
    async fn list(&self, user: Option<&str>) -> SessionResult<Vec<SessionInfo>>;

    /// End every session of `user`, on every node at once. Returns how many were live.
    async fn revoke_user(&self, user: &str) -> SessionResult<u64>;

    /// End every session. Returns how many were live.
    async fn revoke_all(&self) -> SessionResult<u64>;

    /// Live sessions.
    async fn count(&self) -> SessionResult<u64>;

    /// Count a failed login for `key` (e.g. `user|ip`) and return the failures in the current
    /// window; the window starts at the first failure and the count resets after it. Shared by
    /// every node using this backend.
    async fn record_failure(&self, key: &str, window: Duration) -> SessionResult<u32>;

    /// Forget the failures of `key` (after a successful login).
    async fn clear_failures(&self, key: &str) -> SessionResult<()>;

    /// Rewrite, in batches, every record whose `data` or `csrf_token` is not sealed with the
    /// first key of the store's keyring (key rotation, or records from before encryption was
    /// on). Safe to rerun and to run while nodes serve: a record saved meanwhile is left as
    /// the save wrote it. Records that do not open are counted and left alone.
    async fn reseal(&self, progress: ProgressFn<'_>) -> SessionResult<ResealCount>;

    /// Live sessions in store order after the opaque `cursor` (`None` = start), at most about
    /// `limit`, opened with this store's keyring (so they come out in the clear), and the
    /// cursor for the next call (`None` when done). Records that do not open are named in
    /// `unreadable`, not dropped silently. For `fleetctl migrate`.
    async fn export(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> SessionResult<ExportPage<SessionInfo>>;

    /// Write complete records with their times as they are (not on this store's clock),
    /// sealed with this store's keyring, replacing a record under the same id hash only when
    /// the incoming one has a later or equal `last_seen`. Idempotent. Expired records are
    /// never live: SQLite and file keep them until `delete_expired`, Redis drops them at once
    /// (and does not count them). Returns the records written. For `fleetctl migrate`.
    async fn import(&self, records: Vec<SessionInfo>) -> SessionResult<u64>;

    /// Log `user` in: a new session under a freshly generated id (never one the client
    /// offered, so a planted cookie is useless).
    async fn start(&self, user: &str, data: SessionData) -> SessionResult<(SessionId, Session)> {
        // A collision of 256-bit random ids does not happen; one retry documents the intent.
        for _ in 0..2 {
            let id = SessionId::generate()?;
            match self.create(&id, user, data.clone()).await {
                Ok(session) => return Ok((id, session)),
                Err(SessionError::AlreadyExists) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(SessionError::AlreadyExists)
    }
}

/// Build the store `sessions.backend` names, writing `data` and `csrf_token` in the clear
/// (tests and tools that have no key file; sealed records found anyway read as absent).
pub async fn open(config: &SessionsConfig) -> SessionResult<Arc<dyn SessionStore>> {
    open_with(config, AtRest::none()).await
}

/// Build the store `sessions.backend` names, sealing every record's `data` and `csrf_token`
/// with `at_rest` (from `security.encryption_key_file`).
pub async fn open_with(
    config: &SessionsConfig,
    at_rest: AtRest,
) -> SessionResult<Arc<dyn SessionStore>> {
    Ok(match config.backend {
        BackendKind::Redis => Arc::new(redis::RedisStore::open(config, at_rest).await?),
        BackendKind::Sqlite => Arc::new(sqlite::SqliteStore::open(config, at_rest).await?),
        BackendKind::File => Arc::new(file::FileStore::open(config, at_rest).await?),
        BackendKind::Postgres => Arc::new(postgres::PostgresStore::open(config, at_rest).await?),
    })
}

/// A session's secret fields as a store writes them.
pub(crate) struct StoredFields {
    pub csrf_token: String,
    pub data: String,
}

/// Associated data of a sealed field: the field and the record's id hash, so a sealed value
/// copied into another session, or from `data` into `csrf_token`, does not open.
fn field_ad(field: &str, id_hash: &str) -> String {
    format!("session:{field}:{id_hash}")
}

/// What a store writes for `csrf_token` and `data` (JSON), sealed when `at_rest` has keys.
pub(crate) fn seal_fields(
    at_rest: &AtRest,
    id_hash: &str,
    csrf_token: &str,
    data: &SessionData,
) -> StoredFields {
    let json = serde_json::Value::Object(data.clone()).to_string();
    StoredFields {
        csrf_token: at_rest.seal(csrf_token, &field_ad("csrf_token", id_hash)),
        data: at_rest.seal(&json, &field_ad("data", id_hash)),
    }
}

/// Whether stored fields are already what a write would store now.
pub(crate) fn fields_current(at_rest: &AtRest, csrf_token: &str, data: &str) -> bool {
    at_rest.is_current(csrf_token) && at_rest.is_current(data)
}

/// The CSRF token and data of stored fields; the error says why the record is unreadable
/// (for the store's "treating it as absent" warning), naming the key id when it is a key.
pub(crate) fn open_fields(
    at_rest: &AtRest,
    id_hash: &str,
    csrf_token: &str,
    data: &str,
) -> Result<(String, SessionData), String> {
    let csrf = at_rest
        .open(csrf_token, &field_ad("csrf_token", id_hash))
        .map_err(|e| format!("field csrf_token {e}"))?;
    let json = at_rest
        .open(data, &field_ad("data", id_hash))
        .map_err(|e| format!("field data {e}"))?;
    match serde_json::from_str::<serde_json::Value>(&json) {
        Ok(serde_json::Value::Object(map)) => Ok((csrf, map)),
        Ok(_) => Err("field data is not a JSON object".into()),
        Err(e) => Err(format!("field data is not JSON: {e}")),
    }
}

/// A new CSRF token (256 bits, hex).
pub(crate) fn new_csrf_token() -> SessionResult<String> {
    random_hex()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_256_bit_hex_and_distinct() {
        let a = SessionId::generate().unwrap();
        let b = SessionId::generate().unwrap();
        assert_eq!(a.cookie_value().len(), 64);
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(a.cookie_value()), Some(a.clone()));
    }

    #[test]
    fn debug_never_shows_the_raw_id() {
        let id = SessionId::generate().unwrap();
        let shown = format!("{id:?}");
        assert!(!shown.contains(id.cookie_value()));
        assert!(shown.contains(&id.storage_key()[..12]));
    }

    #[test]
    fn parse_rejects_forged_shapes() {
        for bad in ["", "abc", &"A".repeat(64), &"g".repeat(64), &"a".repeat(65)] {
            assert_eq!(SessionId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn absolute_lifetime_caps_sliding_expiry() {
        let l = Lifetimes {
            idle: Duration::from_secs(10),
            absolute: Duration::from_secs(15),
        };
        assert_eq!(l.expires_at(0, 1_000), 11_000);
        assert_eq!(l.expires_at(0, 9_000), 15_000);
    }
}
