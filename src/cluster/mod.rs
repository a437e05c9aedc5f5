//! Cluster membership: nodes, their states, the status report, and the manager that registers
//! this node, heartbeats, holds the leader lease and drains.
//!
//! States are computed here from stored records and the *backend's* clock; backends store
//! facts (timestamps, flags), never states, so every reader agrees on what "inactive" means.

pub mod admin;
pub mod backend;
pub mod file;
pub mod manager;
pub mod nagios;
pub mod postgres;
pub mod redis;
pub mod sqlite;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use backend::{BackendError, ClusterBackend, Listing, Millis, NodeInfo, NodeRecord};
pub use manager::{ClusterManager, Health, Timings};

use crate::config::BackendKind;

/// A node's state as everyone sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Heartbeating and taking work.
    Active,
    /// Heartbeating but refusing new work: its health check fails so load balancers move away.
    Draining,
    /// No heartbeat for `node_timeout`: crashed, partitioned or frozen.
    Inactive,
    /// Deregistered cleanly on shutdown.
    Left,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Active => "active",
            NodeState::Draining => "draining",
            NodeState::Inactive => "inactive",
            NodeState::Left => "left",
        }
    }

    /// The state of `record` at backend time `now`.
    pub fn of(record: &NodeRecord, now: Millis, node_timeout: Duration) -> NodeState {
        if record.left {
            NodeState::Left
        } else if now.saturating_sub(record.last_heartbeat) > node_timeout.as_millis() as i64 {
            NodeState::Inactive
        } else if record.draining {
            NodeState::Draining
        } else {
            NodeState::Active
        }
    }
}

impl std::fmt::Display for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One node in `GET /api/fleet/cluster/status`. The first six fields are the original
/// description's, verbatim; the rest are additions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    pub node_id: String,
    pub hostname: String,
    pub port: u16,
    pub status: NodeState,
    /// RFC 3339 UTC.
    pub last_heartbeat: String,
    pub url: String,
    pub version: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// Seconds since the last heartbeat, on the backend's clock.
    pub heartbeat_age: f64,
    pub leader: bool,
}

/// `GET /api/fleet/cluster/status` and `fleetctl cluster status --output json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub enabled: bool,
    /// The node that answered; `null` when the CLI read the backend directly.
    pub node_id: Option<String>,
    pub backend: String,
    pub total_nodes: usize,
    pub active_nodes: usize,
    pub inactive_nodes: usize,
    pub draining_nodes: usize,
    pub left_nodes: usize,
    pub leader: Option<String>,
    pub nodes: Vec<NodeView>,
    /// Records the backend could not read (reported, skipped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

impl ClusterStatus {
    /// Build the report from a listing. Nodes are sorted by id so output is stable.
    pub fn from_listing(
        listing: Listing,
        leader: Option<String>,
        backend: BackendKind,
        answering_node: Option<String>,
        node_timeout: Duration,
    ) -> ClusterStatus {
        let now = listing.now;
        let mut nodes: Vec<NodeView> = listing
            .nodes
            .into_iter()
            .map(|r| {
                let status = NodeState::of(&r, now, node_timeout);
                NodeView {
                    leader: leader.as_deref() == Some(r.info.node_id.as_str()),
                    node_id: r.info.node_id,
                    hostname: r.info.hostname,
                    port: r.info.port,
                    status,
                    last_heartbeat: rfc3339(r.last_heartbeat),
                    url: r.info.url,
                    version: r.info.version,
                    started_at: rfc3339(r.started_at),
                    heartbeat_age: (now.saturating_sub(r.last_heartbeat)).max(0) as f64 / 1000.0,
                }
            })
            .collect();
        nodes.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        let count = |s: NodeState| nodes.iter().filter(|n| n.status == s).count();
        ClusterStatus {
            enabled: true,
            node_id: answering_node,
            backend: backend.as_str().to_string(),
            total_nodes: nodes.len(),
            active_nodes: count(NodeState::Active),
            inactive_nodes: count(NodeState::Inactive),
            draining_nodes: count(NodeState::Draining),
            left_nodes: count(NodeState::Left),
            leader,
            nodes,
            problems: listing.problems,
        }
    }

    /// Read the registry through `backend` and build the report.
    pub async fn read(
        backend: &dyn ClusterBackend,
        answering_node: Option<String>,
        node_timeout: Duration,
    ) -> Result<ClusterStatus, BackendError> {
        let listing = backend.list().await?;
        let leader = backend.leader().await?;
        Ok(ClusterStatus::from_listing(
            listing,
            leader,
            backend.kind(),
            answering_node,
            node_timeout,
        ))
    }
}

pub use crate::store::time::rfc3339;

/// `<hostname>-<6 random lowercase alphanumerics>`: unique per process start, readable in
/// tables, and stable in shape across restarts so operators can tell which host it is.
pub fn generate_node_id(hostname: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 6];
    // The OS RNG failing is not something a node can work around; fall back to the clock
    // so start-up still succeeds with a unique-enough suffix.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        bytes = [
            nanos as u8,
            (nanos >> 8) as u8,
            (nanos >> 16) as u8,
            (nanos >> 24) as u8,
            std::process::id() as u8,
            (std::process::id() >> 8) as u8,
        ];
    }
    let short_host = hostname.split('.').next().unwrap_or(hostname);
    let suffix: String = bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    format!("{short_host}-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(last_heartbeat: Millis, draining: bool, left: bool) -> NodeRecord {
        NodeRecord {
            info: NodeInfo {
                node_id: "n1".into(),
                hostname: "h".into(),
                port: 1,
                url: "http://h:1".into(),
                version: "0".into(),
            },
            started_at: 0,
            last_heartbeat,
            draining,
            left,
        }
    }

    #[test]
    fn state_follows_heartbeat_age_on_the_backend_clock() {
        let t = Duration::from_secs(30);
        assert_eq!(
            NodeState::of(&record(1_000, false, false), 31_000, t),
            NodeState::Active
        );
        assert_eq!(
            NodeState::of(&record(1_000, false, false), 31_001, t),
            NodeState::Inactive
        );
        assert_eq!(
            NodeState::of(&record(1_000, true, false), 2_000, t),
            NodeState::Draining
        );
        // A draining node that stopped heartbeating is dead, not draining.
        assert_eq!(
            NodeState::of(&record(1_000, true, false), 99_000, t),
            NodeState::Inactive
        );
        assert_eq!(
            NodeState::of(&record(1_000, false, true), 2_000, t),
            NodeState::Left
        );
    }

    #[test]
    fn node_ids_have_host_and_six_char_suffix() {
        let id = generate_node_id("server-01.company.com");
        let (host, suffix) = id.rsplit_once('-').unwrap();
        assert_eq!(host, "server-01");
        assert_eq!(suffix.len(), 6);
        assert_ne!(generate_node_id("h"), generate_node_id("h"));
    }
}
