//! The `ClusterBackend` trait: what a node registry must do, whatever stores it.
//!
//! Four implementations, one file each: `redis.rs`, `sqlite.rs`, `file.rs`, `postgres.rs`. Each owns its key
//! layout or schema; nothing outside that file spells a Redis key, a SQL statement or a path
//! under `state_path`. The same conformance suite (`tests/it/cluster_conformance.rs`) runs
//! against all three, so they behave the same.
//!
//! Time: every timestamp a backend returns comes from the *backend's* clock (Redis `TIME`,
//! SQLite's own `unixepoch`, the shared filesystem's mtimes), never from the calling host, so a
//! node whose clock is minutes off is still judged alive by its heartbeats.
//!
//! This file also owns the two things every backend shares: [`open`], the only place that
//! matches on the configured backend kind, and [`validate_node_id`], so a node id that one
//! backend accepts is accepted by all of them (and none can escape the file backend's
//! directory).
//!
//! Damaged records, the same in every backend: `list` skips them and names them in
//! [`Listing::problems`]; `heartbeat` answers `None` (so the node registers again, which
//! replaces the damaged record with a good one); `set_draining` and `deregister` answer
//! [`BackendError::Corrupt`] (an admin should hear the record is broken, not "no such node");
//! `remove` deletes them (it is the operator's way to clear one).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::config::{BackendKind, ClusterConfig};

/// Milliseconds since the Unix epoch; here always on the backend's clock.
pub use crate::store::time::Millis;

/// What a node says about itself when it registers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub node_id: String,
    pub hostname: String,
    pub port: u16,
    /// Advertised URL other nodes and load balancers use.
    pub url: String,
    /// fleetctl version the node runs (rolling upgrades show mixed versions).
    pub version: String,
}

/// A node as stored in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    #[serde(flatten)]
    pub info: NodeInfo,
    /// When the node (last) registered, backend clock.
    pub started_at: Millis,
    /// Last heartbeat, backend clock.
    pub last_heartbeat: Millis,
    /// Set by `fleetctl nodes drain` or by the node itself on SIGTERM; the node reads it at
    /// its next heartbeat.
    pub draining: bool,
    /// Set when the node deregistered cleanly; the record stays (state `left`) until pruned.
    pub left: bool,
}

/// The registry's content at one instant.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// The backend's clock when the listing was read; node ages are computed against it.
    pub now: Millis,
    pub nodes: Vec<NodeRecord>,
    /// Records that could not be read (garbage JSON, truncated files). They are skipped, and
    /// reported here so the operator hears about them instead of seeing a crash.
    pub problems: Vec<String>,
}

/// Why a backend call failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend cannot be reached or answered with an I/O error; retry later.
    #[error("{backend} backend unavailable at {location}: {message}")]
    Unavailable {
        backend: BackendKind,
        location: String,
        message: String,
    },
    /// A stored record is not what this version of fleetctl wrote.
    #[error("corrupt record {key} in the {backend} backend: {message}")]
    Corrupt {
        backend: BackendKind,
        key: String,
        message: String,
    },
    /// A node id that is empty, too long, or could name a path outside the state directory.
    #[error("invalid node id {node_id:?}: {reason}")]
    InvalidNodeId { node_id: String, reason: String },
}

pub type BackendResult<T> = Result<T, BackendError>;

impl From<crate::store::redis::Unavailable> for BackendError {
    fn from(e: crate::store::redis::Unavailable) -> Self {
        BackendError::Unavailable {
            backend: BackendKind::Redis,
            location: e.location,
            message: e.message,
        }
    }
}

/// A shared node registry with a leader lease.
///
/// Implementations must be safe to call from many tasks and many processes at once.
#[async_trait]
pub trait ClusterBackend: Send + Sync + 'static {
    /// Which backend this is (reported in `cluster status`).
    fn kind(&self) -> BackendKind;

    /// Where it lives, for messages (`redis://host:6379/0`, a directory, a database file).
    fn location(&self) -> String;

    /// The backend's clock.
    async fn now(&self) -> BackendResult<Millis>;

    /// Insert or replace this node's record: `started_at` and `last_heartbeat` = backend now,
    /// `draining` and `left` cleared.
    async fn register(&self, node: &NodeInfo) -> BackendResult<NodeRecord>;

    /// Refresh `last_heartbeat` to backend now and return the stored record (so the node sees
    /// a drain flag set by an admin). `None` when the record is gone (pruned, removed, or the
    /// backend lost its data) or damaged beyond reading (left untouched; `list` reports it):
    /// the caller registers again, which replaces it.
    async fn heartbeat(&self, node_id: &str) -> BackendResult<Option<NodeRecord>>;

    /// Set or clear the drain flag, without counting as a heartbeat. Returns false when no
    /// such node exists, [`BackendError::Corrupt`] when its record cannot be read.
    async fn set_draining(&self, node_id: &str, draining: bool) -> BackendResult<bool>;

    /// Mark the node as cleanly gone (`left`), keeping its record until pruned. Does nothing
    /// when no such node exists (it was already removed or pruned); [`BackendError::Corrupt`]
    /// when its record cannot be read.
    async fn deregister(&self, node_id: &str) -> BackendResult<()>;

    /// Delete the node's record, readable or not. Returns false when no such node exists.
    async fn remove(&self, node_id: &str) -> BackendResult<bool>;

    /// Every readable record, the backend's clock, and the records that could not be read.
    async fn list(&self) -> BackendResult<Listing>;

    /// Take the leader lease for `lease`, or renew it if `node_id` already holds it.
    /// Returns true when `node_id` holds the lease afterwards. At most one node holds it at
    /// any instant; an expired lease (holder dead) can be taken by anyone.
    async fn try_acquire_leader(&self, node_id: &str, lease: Duration) -> BackendResult<bool>;

    /// Give the lease up if `node_id` holds it (compare-and-delete); otherwise do nothing.
    async fn release_leader(&self, node_id: &str) -> BackendResult<()>;

    /// The current lease holder, if the lease has not expired.
    async fn leader(&self) -> BackendResult<Option<String>>;
}

/// Open the backend the config names. The only place that matches on [`BackendKind`]: callers
/// hold an `Arc<dyn ClusterBackend>` and never ask which one it is.
pub async fn open(config: &ClusterConfig) -> BackendResult<Arc<dyn ClusterBackend>> {
    Ok(match config.backend {
        BackendKind::Redis => Arc::new(super::redis::RedisBackend::open(config).await?),
        BackendKind::Sqlite => Arc::new(super::sqlite::SqliteBackend::open(config).await?),
        BackendKind::File => Arc::new(super::file::FileBackend::open(config).await?),
        BackendKind::Postgres => Arc::new(super::postgres::PostgresBackend::open(config).await?),
    })
}

/// Longest node id accepted. File names are limited to 255 bytes and the file backend adds
/// `.json`; the default id (`<hostname>-<6 chars>`) of a 253-byte FQDN does not fit, but
/// no real host name is that long and a clear error beats a truncated file name.
pub const MAX_NODE_ID_LEN: usize = 200;

/// Check that `node_id` is usable as a Redis key part, a SQL value and a file name alike:
/// 1 to [`MAX_NODE_ID_LEN`] ASCII letters, digits, `.`, `_` or `-`, not starting with `.`
/// (which rules out `.`, `..` and hidden or temporary files) and without any path separator.
pub fn validate_node_id(node_id: &str) -> BackendResult<()> {
    let reject = |reason: &str| {
        Err(BackendError::InvalidNodeId {
            node_id: node_id.to_string(),
            reason: reason.to_string(),
        })
    };
    if node_id.is_empty() {
        return reject("it is empty");
    }
    if node_id.len() > MAX_NODE_ID_LEN {
        return reject(&format!("it is longer than {MAX_NODE_ID_LEN} bytes"));
    }
    if node_id.starts_with('.') {
        return reject("it must not start with '.'");
    }
    if let Some(c) = node_id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return reject(&format!(
            "{c:?} is not allowed; use only letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// A lease or timeout in milliseconds, as stored by the backends (saturating: a lease of
/// centuries is still "forever", not a negative number).
pub(crate) fn duration_millis(d: Duration) -> Millis {
    crate::store::time::duration_ms(d).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_that_could_escape_a_directory_are_rejected() {
        for bad in [
            "", ".", "..", "../x", "a/b", "a\\b", ".hidden", "a b", "a\0b", "é",
        ] {
            assert!(validate_node_id(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_node_id(&"a".repeat(MAX_NODE_ID_LEN + 1)).is_err());
    }

    #[test]
    fn default_style_node_ids_are_accepted() {
        for good in [
            "web-01-a1b2c3",
            "server-01.company.com-XyZ123",
            "n_1",
            "a..b",
        ] {
            validate_node_id(good).unwrap();
        }
    }
}
