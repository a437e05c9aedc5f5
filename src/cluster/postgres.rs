//! The PostgreSQL cluster backend: the node registry and the leader lease in one database
//! shared by nodes on any number of hosts.
//!
//! Schema (owned by this file, applied by `store::postgres::Pg` as store `cluster`):
//! - `cluster_nodes(node_id PRIMARY KEY, hostname, port, url, version, started_at,
//!   last_heartbeat, draining, left_cluster)`: times in milliseconds on the database's clock.
//! - `cluster_leader(id = 1, holder, expires_at)`: at most one row, the lease.
//!
//! Every timestamp is computed inside the statement that writes it, from the database's clock
//! (`store::postgres::NOW_MS`), so nodes with skewed clocks agree on who is alive.
//!
//! The leader lease is a row with an expiry, not an advisory lock. An advisory lock belongs to
//! a connection: a leader cut off by a partition (or frozen by SIGSTOP, or a VM pause) keeps
//! its TCP connection, and so the lock, until the server's TCP keepalive gives up — minutes
//! in which no node leads — and once the lock is gone the old leader only finds out at its
//! next query. A row lease expires on the database's clock after `lease` whatever happens to
//! the holder: another node takes it at its next attempt, and the old holder's renewal
//! (`WHERE holder = me`) fails the moment it is reachable again, so it steps down.
//! `tests/it/postgres_cluster.rs` freezes a leader with SIGSTOP to show it.

use std::time::Duration;

use async_trait::async_trait;
use tokio_postgres::Row;

use super::backend::{
    BackendError, BackendResult, ClusterBackend, Listing, Millis, NodeInfo, NodeRecord,
    duration_millis, validate_node_id,
};
use crate::config::{BackendKind, ClusterConfig};
use crate::store::postgres::{NOW_MS, Pg, PgError, PgErrorKind, PgSchema};

const SCHEMA: PgSchema = PgSchema {
    store: "cluster",
    migrations: &["
CREATE TABLE cluster_nodes (
    node_id        TEXT PRIMARY KEY,
    hostname       TEXT NOT NULL,
    port           INTEGER NOT NULL,
    url            TEXT NOT NULL,
    version        TEXT NOT NULL,
    started_at     BIGINT NOT NULL,
    last_heartbeat BIGINT NOT NULL,
    draining       BOOLEAN NOT NULL DEFAULT false,
    left_cluster   BOOLEAN NOT NULL DEFAULT false
);
CREATE TABLE cluster_leader (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
"],
};

const NODE_COLUMNS: &str =
    "node_id, hostname, port, url, version, started_at, last_heartbeat, draining, left_cluster";

pub struct PostgresBackend {
    pg: Pg,
}

impl PostgresBackend {
    pub async fn open(config: &ClusterConfig) -> BackendResult<PostgresBackend> {
        Ok(PostgresBackend {
            pg: Pg::open(&config.postgres, "cluster.postgres", SCHEMA).await?,
        })
    }
}

impl From<PgError> for BackendError {
    fn from(e: PgError) -> BackendError {
        match e.kind {
            PgErrorKind::NewerSchema => BackendError::Corrupt {
                backend: BackendKind::Postgres,
                key: format!("{}: fleetctl_schema", e.location),
                message: e.message,
            },
            _ => BackendError::Unavailable {
                backend: BackendKind::Postgres,
                location: e.location,
                message: e.message,
            },
        }
    }
}

/// A `cluster_nodes` row. The columns are typed, so a row is always readable; a port outside
/// `u16` (written by hand) is the one thing that is not, and it is reported.
fn node_from_row(row: &Row) -> Result<NodeRecord, String> {
    let port: i32 = row.get(2);
    Ok(NodeRecord {
        info: NodeInfo {
            node_id: row.get(0),
            hostname: row.get(1),
            port: u16::try_from(port).map_err(|_| format!("port {port} is not a TCP port"))?,
            url: row.get(3),
            version: row.get(4),
        },
        started_at: row.get(5),
        last_heartbeat: row.get(6),
        draining: row.get(7),
        left: row.get(8),
    })
}

impl PostgresBackend {
    fn corrupt(&self, node_id: &str, message: String) -> BackendError {
        BackendError::Corrupt {
            backend: BackendKind::Postgres,
            key: format!("{}: cluster_nodes row {node_id:?}", self.pg.location()),
            message,
        }
    }

    /// Set one flag column, refusing a row that cannot be read.
    async fn set_flag(&self, node_id: &str, column: &str, value: bool) -> BackendResult<bool> {
        validate_node_id(node_id)?;
        let mut c = self.pg.conn().await?;
        let Some(row) = c
            .query_opt(
                &format!("SELECT {NODE_COLUMNS} FROM cluster_nodes WHERE node_id = $1"),
                &[&node_id],
            )
            .await?
        else {
            return Ok(false);
        };
        node_from_row(&row).map_err(|m| self.corrupt(node_id, m))?;
        // `column` is one of two literals chosen by this file, never caller input.
        let n = c
            .execute(
                &format!("UPDATE cluster_nodes SET {column} = $2 WHERE node_id = $1"),
                &[&node_id, &value],
            )
            .await?;
        Ok(n > 0)
    }
}

#[async_trait]
impl ClusterBackend for PostgresBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Postgres
    }

    fn location(&self) -> String {
        self.pg.location().to_string()
    }

    async fn now(&self) -> BackendResult<Millis> {
        Ok(self.pg.conn().await?.now_ms().await?)
    }

    async fn register(&self, node: &NodeInfo) -> BackendResult<NodeRecord> {
        validate_node_id(&node.node_id)?;
        let port = i32::from(node.port);
        let row = self
            .pg
            .conn()
            .await?
            .query_one(
                &format!(
                    "INSERT INTO cluster_nodes ({NODE_COLUMNS})
                     VALUES ($1, $2, $3, $4, $5, {NOW_MS}, {NOW_MS}, false, false)
                     ON CONFLICT (node_id) DO UPDATE SET
                         hostname = excluded.hostname, port = excluded.port,
                         url = excluded.url, version = excluded.version,
                         started_at = excluded.started_at,
                         last_heartbeat = excluded.last_heartbeat,
                         draining = false, left_cluster = false
                     RETURNING {NODE_COLUMNS}"
                ),
                &[
                    &node.node_id,
                    &node.hostname,
                    &port,
                    &node.url,
                    &node.version,
                ],
            )
            .await?;
        node_from_row(&row).map_err(|m| self.corrupt(&node.node_id, m))
    }

    async fn heartbeat(&self, node_id: &str) -> BackendResult<Option<NodeRecord>> {
        validate_node_id(node_id)?;
        let row = self
            .pg
            .conn()
            .await?
            .query_opt(
                &format!(
                    "UPDATE cluster_nodes SET last_heartbeat = {NOW_MS} WHERE node_id = $1
                     RETURNING {NODE_COLUMNS}"
                ),
                &[&node_id],
            )
            .await?;
        // An unreadable row reads as gone: the node registers again, which replaces it.
        Ok(row.and_then(|r| node_from_row(&r).ok()))
    }

    async fn set_draining(&self, node_id: &str, draining: bool) -> BackendResult<bool> {
        self.set_flag(node_id, "draining", draining).await
    }

    async fn deregister(&self, node_id: &str) -> BackendResult<()> {
        self.set_flag(node_id, "left_cluster", true)
            .await
            .map(|_| ())
    }

    async fn remove(&self, node_id: &str) -> BackendResult<bool> {
        validate_node_id(node_id)?;
        let n = self
            .pg
            .conn()
            .await?
            .execute("DELETE FROM cluster_nodes WHERE node_id = $1", &[&node_id])
            .await?;
        Ok(n > 0)
    }

    async fn list(&self) -> BackendResult<Listing> {
        // One statement, one clock reading (MATERIALIZED: `clock_timestamp()` would otherwise
        // be read once per row), and a row even when the registry is empty.
        let rows = self
            .pg
            .conn()
            .await?
            .query(
                &format!(
                    "WITH t AS MATERIALIZED (SELECT {NOW_MS} AS now)
                     SELECT {NODE_COLUMNS}, t.now FROM t LEFT JOIN cluster_nodes ON true
                     ORDER BY node_id"
                ),
                &[],
            )
            .await?;
        let mut listing = Listing::default();
        for row in rows {
            let id: Option<String> = row.get(0);
            listing.now = row.get(9);
            let Some(id) = id else { continue };
            match node_from_row(&row) {
                Ok(rec) => listing.nodes.push(rec),
                Err(e) => listing.problems.push(format!(
                    "{}: cluster_nodes row {id:?}: {e}",
                    self.pg.location()
                )),
            }
        }
        Ok(listing)
    }

    async fn try_acquire_leader(&self, node_id: &str, lease: Duration) -> BackendResult<bool> {
        validate_node_id(node_id)?;
        let ms = duration_millis(lease);
        // Take the lease when there is none, it expired, or it is ours (renewal); one
        // statement, so two nodes never both see it free. RETURNING yields a row only when
        // this node wrote it.
        let row = self
            .pg
            .conn()
            .await?
            .query_opt(
                &format!(
                    "INSERT INTO cluster_leader (id, holder, expires_at) VALUES (1, $1, {NOW_MS} + $2)
                     ON CONFLICT (id) DO UPDATE SET holder = excluded.holder,
                                                    expires_at = excluded.expires_at
                     WHERE cluster_leader.holder = excluded.holder
                        OR cluster_leader.expires_at <= {NOW_MS}
                     RETURNING holder"
                ),
                &[&node_id, &ms],
            )
            .await?;
        Ok(row.is_some())
    }

    async fn release_leader(&self, node_id: &str) -> BackendResult<()> {
        validate_node_id(node_id)?;
        self.pg
            .conn()
            .await?
            .execute("DELETE FROM cluster_leader WHERE holder = $1", &[&node_id])
            .await?;
        Ok(())
    }

    async fn leader(&self) -> BackendResult<Option<String>> {
        Ok(self
            .pg
            .conn()
            .await?
            .query_opt(
                &format!(
                    "SELECT holder FROM cluster_leader WHERE id = 1 AND expires_at > {NOW_MS}"
                ),
                &[],
            )
            .await?
            .map(|r| r.get(0)))
    }
}
