//! The `ClusterBackend` trait: what a node registry must do, whatever stores it.
//!
//! Three implementations, one file each: `redis.rs`, `sqlite.rs`, `file.rs`. Each owns its key
//! layout or schema; nothing outside that file spells a Redis key, a SQL statement or a path
//! under `state_path`. The same conformance suite (`tests/it/cluster_conformance.rs`) runs
//! against all three, so they behave the same.
//!
//! Time: every timestamp a backend returns comes from the *backend's* clock (Redis `TIME`,
//! SQLite's own `unixepoch`, the shared filesystem's mtimes), never from the calling host, so a
//! node whose clock is minutes off is still judged alive by its heartbeats.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::config::BackendKind;

/// Milliseconds since the Unix epoch, on the backend's clock.
pub type Millis = i64;

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
}

pub type BackendResult<T> = Result<T, BackendError>;

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
    /// backend lost its data): the caller registers again.
    async fn heartbeat(&self, node_id: &str) -> BackendResult<Option<NodeRecord>>;

    /// Set or clear the drain flag. Returns false when no such node exists.
    async fn set_draining(&self, node_id: &str, draining: bool) -> BackendResult<bool>;

    /// Mark the node as cleanly gone (`left`), keeping its record until pruned.
    async fn deregister(&self, node_id: &str) -> BackendResult<()>;

    /// Delete the node's record. Returns false when no such node exists.
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

/// Open the backend named by `config.backend`. (Interim: implementations land with the
/// backend modules.)
pub async fn open(
    config: &crate::config::ClusterConfig,
) -> Result<std::sync::Arc<dyn ClusterBackend>, BackendError> {
    Err(BackendError::Unavailable {
        backend: config.backend,
        location: String::new(),
        message: "backend not built yet".into(),
    })
}
