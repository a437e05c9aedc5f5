//! The SQLite cluster backend: one database file, `state_path/cluster.db`, shared by every
//! fleetctl process on one host (SQLite locking does not work across network filesystems, so
//! this backend is single-host only; the config validator warns about that).
//!
//! Schema (owned by this file; nothing else spells a SQL statement):
//!
//! - `schema_version(version)`: one row; a database written by a newer fleetctl is refused
//!   instead of being silently misread.
//! - `nodes(node_id PRIMARY KEY, hostname, port, url, version, started_at, last_heartbeat,
//!   draining, left)`: one row per node, times in milliseconds on SQLite's clock.
//! - `leader_lease(id = 1, holder, expires_at)`: at most one row, the lease.
//!
//! Every timestamp is computed inside SQL from SQLite's clock (`store::sqlite::NOW_MS`). How the
//! file is opened, written and read is `store::sqlite::Db`'s: every write one `BEGIN IMMEDIATE`
//! transaction (the write lock is taken up front, so two processes never both read the old
//! lease and both write a new one), reads on their own connections, never on the runtime.
//!
//! It must never panic on a row it cannot read (it is reported, not unwrapped).

use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::backend::{
    BackendError, BackendResult, ClusterBackend, Listing, Millis, NodeInfo, NodeRecord,
    duration_millis, validate_node_id,
};
use crate::config::{BackendKind, ClusterConfig};
use crate::store::sqlite::{Db, DbError, DbErrorKind, NOW_MS, Schema, now_ms};

const DB_FILE: &str = "cluster.db";

const SCHEMA: Schema = Schema {
    version_table: "schema_version",
    version: 1,
    sql: "
CREATE TABLE IF NOT EXISTS nodes (
    node_id        TEXT PRIMARY KEY NOT NULL,
    hostname       TEXT NOT NULL,
    port           INTEGER NOT NULL,
    url            TEXT NOT NULL,
    version        TEXT NOT NULL,
    started_at     INTEGER NOT NULL,
    last_heartbeat INTEGER NOT NULL,
    draining       INTEGER NOT NULL DEFAULT 0,
    left           INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS leader_lease (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
",
};

const NODE_COLUMNS: &str =
    "node_id, hostname, port, url, version, started_at, last_heartbeat, draining, left";

pub struct SqliteBackend {
    /// This handle's connections; processes (and other handles) have their own, and SQLite's
    /// file locks order them.
    db: Db,
}

impl SqliteBackend {
    /// Open (and create, if absent) `state_path/cluster.db`.
    pub async fn open(config: &ClusterConfig) -> BackendResult<SqliteBackend> {
        let db = Db::open(&config.state_path.join(DB_FILE), SCHEMA).await?;
        Ok(SqliteBackend { db })
    }
}

impl From<DbError> for BackendError {
    fn from(e: DbError) -> BackendError {
        match e.kind {
            DbErrorKind::NewerSchema => BackendError::Corrupt {
                backend: BackendKind::Sqlite,
                key: format!("{}: schema_version", e.path.display()),
                message: e.message,
            },
            _ => BackendError::Unavailable {
                backend: BackendKind::Sqlite,
                location: e.path.display().to_string(),
                message: e.message,
            },
        }
    }
}

/// Read one `nodes` row; a value of the wrong type or range is an error naming the column.
fn node_from_row(row: &Row<'_>) -> rusqlite::Result<NodeRecord> {
    Ok(NodeRecord {
        info: NodeInfo {
            node_id: row.get(0)?,
            hostname: row.get(1)?,
            port: row.get(2)?,
            url: row.get(3)?,
            version: row.get(4)?,
        },
        started_at: row.get(5)?,
        last_heartbeat: row.get(6)?,
        draining: row.get(7)?,
        left: row.get(8)?,
    })
}

/// A `nodes` row as a read-modify-write finds it.
enum StoredNode {
    Missing,
    /// Its columns cannot be read; why.
    Unreadable(String),
    Found,
}

/// Whether `node_id` has a row, and whether this version can read it.
fn stored_node(conn: &Connection, node_id: &str) -> rusqlite::Result<StoredNode> {
    let row = conn
        .query_row(
            &format!("SELECT {NODE_COLUMNS} FROM nodes WHERE node_id = ?1"),
            [node_id],
            node_from_row,
        )
        .optional();
    match row {
        Ok(None) => Ok(StoredNode::Missing),
        Ok(Some(_)) => Ok(StoredNode::Found),
        Err(
            e @ (rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::FromSqlConversionFailure(..)),
        ) => Ok(StoredNode::Unreadable(e.to_string())),
        Err(e) => Err(e),
    }
}

impl SqliteBackend {
    /// Set one flag column of a node, refusing rows that cannot be read (so an admin hears the
    /// row is broken, and it is left as it was).
    async fn set_flag(
        &self,
        node_id: &str,
        column: &'static str,
        value: bool,
    ) -> BackendResult<bool> {
        validate_node_id(node_id)?;
        let id = node_id.to_string();
        let stored = self
            .db
            .write(move |tx| {
                let stored = stored_node(tx, &id)?;
                if let StoredNode::Found = stored {
                    // `column` is one of two literals chosen by this file, never caller input.
                    tx.execute(
                        &format!("UPDATE nodes SET {column} = ?2 WHERE node_id = ?1"),
                        params![id, value],
                    )?;
                }
                Ok(stored)
            })
            .await?;
        match stored {
            StoredNode::Missing => Ok(false),
            StoredNode::Found => Ok(true),
            StoredNode::Unreadable(message) => Err(BackendError::Corrupt {
                backend: BackendKind::Sqlite,
                key: format!("{}: nodes row {node_id:?}", self.db.path().display()),
                message,
            }),
        }
    }
}

#[async_trait]
impl ClusterBackend for SqliteBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Sqlite
    }

    fn location(&self) -> String {
        self.db.path().display().to_string()
    }

    async fn now(&self) -> BackendResult<Millis> {
        Ok(self.db.read(now_ms).await?)
    }

    async fn register(&self, node: &NodeInfo) -> BackendResult<NodeRecord> {
        validate_node_id(&node.node_id)?;
        let node = node.clone();
        let sql = format!(
            "INSERT OR REPLACE INTO nodes ({NODE_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, {NOW_MS}, {NOW_MS}, 0, 0)
             RETURNING {NODE_COLUMNS}"
        );
        let p = (
            node.node_id,
            node.hostname,
            node.port,
            node.url,
            node.version,
        );
        Ok(self
            .db
            .write(move |tx| tx.query_row(&sql, params![p.0, p.1, p.2, p.3, p.4], node_from_row))
            .await?)
    }

    async fn heartbeat(&self, node_id: &str) -> BackendResult<Option<NodeRecord>> {
        validate_node_id(node_id)?;
        let id = node_id.to_string();
        let sql = format!(
            "UPDATE nodes SET last_heartbeat = {NOW_MS} WHERE node_id = ?1
             RETURNING {NODE_COLUMNS}"
        );
        Ok(self
            .db
            .write(move |tx| match stored_node(tx, &id)? {
                // Gone, or unreadable (left untouched and reported as gone, so the node
                // registers again and replaces it).
                StoredNode::Missing | StoredNode::Unreadable(_) => Ok(None),
                StoredNode::Found => tx.query_row(&sql, [&id], node_from_row).map(Some),
            })
            .await?)
    }

    async fn set_draining(&self, node_id: &str, draining: bool) -> BackendResult<bool> {
        self.set_flag(node_id, "draining", draining).await
    }

    async fn deregister(&self, node_id: &str) -> BackendResult<()> {
        self.set_flag(node_id, "left", true).await.map(|_| ())
    }

    async fn remove(&self, node_id: &str) -> BackendResult<bool> {
        validate_node_id(node_id)?;
        let id = node_id.to_string();
        let n = self
            .db
            .write(move |tx| tx.execute("DELETE FROM nodes WHERE node_id = ?1", [&id]))
            .await?;
        Ok(n > 0)
    }

    async fn list(&self) -> BackendResult<Listing> {
        let location = self.location();
        // One read transaction: the clock and the rows come from the same snapshot.
        Ok(self
            .db
            .read(move |conn| {
                let mut listing = Listing {
                    now: now_ms(conn)?,
                    ..Listing::default()
                };
                let mut stmt = conn.prepare(&format!(
                    "SELECT {NODE_COLUMNS} FROM nodes ORDER BY node_id"
                ))?;
                let mut rows = stmt.query([])?;
                while let Some(row) = rows.next()? {
                    match node_from_row(row) {
                        Ok(rec) => listing.nodes.push(rec),
                        Err(e) => {
                            let id = match row.get::<_, String>(0) {
                                Ok(id) => format!("{id:?}"),
                                Err(_) => format!("{:?}", row.get_ref(0).ok()),
                            };
                            listing
                                .problems
                                .push(format!("{location}: nodes row {id}: {e}"));
                        }
                    }
                }
                Ok(listing)
            })
            .await?)
    }

    async fn try_acquire_leader(&self, node_id: &str, lease: Duration) -> BackendResult<bool> {
        validate_node_id(node_id)?;
        let id = node_id.to_string();
        let ms = duration_millis(lease);
        // Take the lease when there is none, it expired, or it is ours (renewal).
        let take = format!(
            "INSERT INTO leader_lease (id, holder, expires_at) VALUES (1, ?1, {NOW_MS} + ?2)
             ON CONFLICT (id) DO UPDATE SET holder = excluded.holder,
                                            expires_at = excluded.expires_at
             WHERE leader_lease.holder = excluded.holder
                OR leader_lease.expires_at <= {NOW_MS}"
        );
        let holder = self
            .db
            .write(move |tx| {
                tx.execute(&take, params![id, ms])?;
                tx.query_row("SELECT holder FROM leader_lease WHERE id = 1", [], |r| {
                    r.get::<_, String>(0)
                })
                .optional()
            })
            .await?;
        Ok(holder.as_deref() == Some(node_id))
    }

    async fn release_leader(&self, node_id: &str) -> BackendResult<()> {
        validate_node_id(node_id)?;
        let id = node_id.to_string();
        self.db
            .write(move |tx| tx.execute("DELETE FROM leader_lease WHERE holder = ?1", [&id]))
            .await?;
        Ok(())
    }

    async fn leader(&self) -> BackendResult<Option<String>> {
        let sql = format!("SELECT holder FROM leader_lease WHERE id = 1 AND expires_at > {NOW_MS}");
        Ok(self
            .db
            .read(move |conn| conn.query_row(&sql, [], |r| r.get(0)).optional())
            .await?)
    }
}
