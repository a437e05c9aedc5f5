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
//! Every timestamp is computed inside SQL from `unixepoch('subsec')`, and every write runs in
//! a `BEGIN IMMEDIATE` transaction (the write lock is taken up front, so two processes never
//! both read the old lease and both write a new one). WAL lets readers proceed during writes;
//! `busy_timeout` makes concurrent writers wait instead of failing.
//!
//! It must never: block the async runtime (rusqlite is synchronous, so every call runs on
//! `spawn_blocking`), or panic on a row it cannot read (it is reported, not unwrapped).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::backend::{
    BackendError, BackendResult, ClusterBackend, Listing, Millis, NodeInfo, NodeRecord,
    duration_millis, validate_node_id,
};
use crate::config::{BackendKind, ClusterConfig};

const DB_FILE: &str = "cluster.db";
const SCHEMA_VERSION: i64 = 1;

/// SQLite's clock in milliseconds. `subsec` needs SQLite 3.42; the bundled one is newer.
const NOW_MS: &str = "CAST(unixepoch('subsec') * 1000 AS INTEGER)";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
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
";

const NODE_COLUMNS: &str =
    "node_id, hostname, port, url, version, started_at, last_heartbeat, draining, left";

pub struct SqliteBackend {
    path: PathBuf,
    /// One connection per handle, used by one blocking task at a time. Processes (and other
    /// handles) have their own connections; SQLite's file locks order them.
    conn: Arc<Mutex<Connection>>,
}

impl SqliteBackend {
    /// Open (and create, if absent) `state_path/cluster.db`.
    pub async fn open(config: &ClusterConfig) -> BackendResult<SqliteBackend> {
        let dir = config.state_path.clone();
        let path = dir.join(DB_FILE);
        let p = path.clone();
        let conn = tokio::task::spawn_blocking(move || open_db(&dir, &p))
            .await
            .map_err(|e| unavailable(&path, format!("open task failed: {e}")))??;
        Ok(SqliteBackend {
            path,
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Run `f` on the connection in a blocking task; SQLite errors become `Unavailable`.
    async fn with_conn<T, F>(&self, f: F) -> BackendResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Path) -> BackendResult<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            // A panic in another call cannot leave the connection half-used: every write is
            // a transaction that rolls back on drop. So a poisoned lock is safe to reuse.
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard, &path)
        })
        .await
        .map_err(|e| unavailable(&self.path, format!("database task failed: {e}")))?
    }
}

fn unavailable(path: &Path, message: String) -> BackendError {
    BackendError::Unavailable {
        backend: BackendKind::Sqlite,
        location: path.display().to_string(),
        message,
    }
}

fn sql_err(path: &Path) -> impl Fn(rusqlite::Error) -> BackendError + '_ {
    move |e| unavailable(path, e.to_string())
}

fn corrupt(path: &Path, node_id: &str, message: String) -> BackendError {
    BackendError::Corrupt {
        backend: BackendKind::Sqlite,
        key: format!("{}: nodes row {node_id:?}", path.display()),
        message,
    }
}

fn open_db(dir: &Path, path: &Path) -> BackendResult<Connection> {
    std::fs::create_dir_all(dir).map_err(|e| {
        unavailable(
            path,
            format!("cannot create directory {}: {e}", dir.display()),
        )
    })?;
    let err = sql_err(path);
    let mut newer = None;
    let conn = crate::wal::open(path, |conn| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(SCHEMA)?;
        let version: Option<i64> =
            tx.query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))?;
        match version {
            None => {
                tx.execute(
                    "INSERT INTO schema_version (version) VALUES (?1)",
                    [SCHEMA_VERSION],
                )?;
            }
            Some(v) if v > SCHEMA_VERSION => newer = Some(v),
            Some(_) => {}
        }
        tx.commit()
    })
    .map_err(&err)?;
    if let Some(v) = newer {
        return Err(BackendError::Corrupt {
            backend: BackendKind::Sqlite,
            key: format!("{}: schema_version", path.display()),
            message: format!(
                "schema version {v} was written by a newer fleetctl (this one knows \
                 {SCHEMA_VERSION}); upgrade fleetctl"
            ),
        });
    }
    Ok(conn)
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

fn now_ms(conn: &Connection, path: &Path) -> BackendResult<Millis> {
    conn.query_row(&format!("SELECT {NOW_MS}"), [], |r| r.get(0))
        .map_err(sql_err(path))
}

/// Set one flag column of a node in an immediate transaction, refusing rows that cannot be
/// read (so an admin hears the row is broken, and it is left as it was).
fn set_flag(
    conn: &mut Connection,
    path: &Path,
    node_id: &str,
    column: &str,
    value: bool,
) -> BackendResult<bool> {
    let err = sql_err(path);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&err)?;
    let row = tx
        .query_row(
            &format!("SELECT {NODE_COLUMNS} FROM nodes WHERE node_id = ?1"),
            [node_id],
            node_from_row,
        )
        .optional();
    match row {
        Ok(None) => return Ok(false),
        Ok(Some(_)) => {}
        Err(e) => return Err(corrupt(path, node_id, e.to_string())),
    }
    // `column` is one of two literals chosen by this file, never caller input.
    tx.execute(
        &format!("UPDATE nodes SET {column} = ?2 WHERE node_id = ?1"),
        params![node_id, value],
    )
    .map_err(&err)?;
    tx.commit().map_err(&err)?;
    Ok(true)
}

#[async_trait]
impl ClusterBackend for SqliteBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Sqlite
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    async fn now(&self) -> BackendResult<Millis> {
        self.with_conn(|conn, path| now_ms(conn, path)).await
    }

    async fn register(&self, node: &NodeInfo) -> BackendResult<NodeRecord> {
        validate_node_id(&node.node_id)?;
        let node = node.clone();
        self.with_conn(move |conn, path| {
            let err = sql_err(path);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            let rec = tx
                .query_row(
                    &format!(
                        "INSERT OR REPLACE INTO nodes ({NODE_COLUMNS})
                         VALUES (?1, ?2, ?3, ?4, ?5, {NOW_MS}, {NOW_MS}, 0, 0)
                         RETURNING {NODE_COLUMNS}"
                    ),
                    params![
                        node.node_id,
                        node.hostname,
                        node.port,
                        node.url,
                        node.version
                    ],
                    node_from_row,
                )
                .map_err(&err)?;
            tx.commit().map_err(&err)?;
            Ok(rec)
        })
        .await
    }

    async fn heartbeat(&self, node_id: &str) -> BackendResult<Option<NodeRecord>> {
        validate_node_id(node_id)?;
        let node_id = node_id.to_string();
        self.with_conn(move |conn, path| {
            let err = sql_err(path);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            let row = tx
                .query_row(
                    &format!(
                        "UPDATE nodes SET last_heartbeat = {NOW_MS} WHERE node_id = ?1
                         RETURNING {NODE_COLUMNS}"
                    ),
                    [&node_id],
                    node_from_row,
                )
                .optional();
            match row {
                Ok(Some(rec)) => {
                    tx.commit().map_err(&err)?;
                    Ok(Some(rec))
                }
                Ok(None) => Ok(None),
                // A row with unreadable columns: rolled back (untouched) and reported as
                // gone, so the node registers again and replaces it.
                Err(
                    rusqlite::Error::InvalidColumnType(..)
                    | rusqlite::Error::IntegralValueOutOfRange(..)
                    | rusqlite::Error::FromSqlConversionFailure(..),
                ) => Ok(None),
                Err(e) => Err(err(e)),
            }
        })
        .await
    }

    async fn set_draining(&self, node_id: &str, draining: bool) -> BackendResult<bool> {
        validate_node_id(node_id)?;
        let node_id = node_id.to_string();
        self.with_conn(move |conn, path| set_flag(conn, path, &node_id, "draining", draining))
            .await
    }

    async fn deregister(&self, node_id: &str) -> BackendResult<()> {
        validate_node_id(node_id)?;
        let node_id = node_id.to_string();
        self.with_conn(move |conn, path| set_flag(conn, path, &node_id, "left", true).map(|_| ()))
            .await
    }

    async fn remove(&self, node_id: &str) -> BackendResult<bool> {
        validate_node_id(node_id)?;
        let node_id = node_id.to_string();
        self.with_conn(move |conn, path| {
            let err = sql_err(path);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            let n = tx
                .execute("DELETE FROM nodes WHERE node_id = ?1", [&node_id])
                .map_err(&err)?;
            tx.commit().map_err(&err)?;
            Ok(n > 0)
        })
        .await
    }

    async fn list(&self) -> BackendResult<Listing> {
        self.with_conn(|conn, path| {
            let err = sql_err(path);
            // One read transaction: the clock and the rows come from the same snapshot.
            let tx = conn.transaction().map_err(&err)?;
            let now = now_ms(&tx, path)?;
            let mut listing = Listing {
                now,
                ..Listing::default()
            };
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT {NODE_COLUMNS} FROM nodes ORDER BY node_id"
                ))
                .map_err(&err)?;
            let mut rows = stmt.query([]).map_err(&err)?;
            while let Some(row) = rows.next().map_err(&err)? {
                match node_from_row(row) {
                    Ok(rec) => listing.nodes.push(rec),
                    Err(e) => {
                        let id = match row.get::<_, String>(0) {
                            Ok(id) => format!("{id:?}"),
                            Err(_) => format!("{:?}", row.get_ref(0).ok()),
                        };
                        listing
                            .problems
                            .push(format!("{}: nodes row {id}: {e}", path.display()));
                    }
                }
            }
            Ok(listing)
        })
        .await
    }

    async fn try_acquire_leader(&self, node_id: &str, lease: Duration) -> BackendResult<bool> {
        validate_node_id(node_id)?;
        let node_id = node_id.to_string();
        let ms = duration_millis(lease);
        self.with_conn(move |conn, path| {
            let err = sql_err(path);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            // Take the lease when there is none, it expired, or it is ours (renewal).
            tx.execute(
                &format!(
                    "INSERT INTO leader_lease (id, holder, expires_at) VALUES (1, ?1, {NOW_MS} + ?2)
                     ON CONFLICT (id) DO UPDATE SET holder = excluded.holder,
                                                    expires_at = excluded.expires_at
                     WHERE leader_lease.holder = excluded.holder
                        OR leader_lease.expires_at <= {NOW_MS}"
                ),
                params![node_id, ms],
            )
            .map_err(&err)?;
            let holder: Option<String> = tx
                .query_row("SELECT holder FROM leader_lease WHERE id = 1", [], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(&err)?;
            tx.commit().map_err(&err)?;
            Ok(holder.as_deref() == Some(node_id.as_str()))
        })
        .await
    }

    async fn release_leader(&self, node_id: &str) -> BackendResult<()> {
        validate_node_id(node_id)?;
        let node_id = node_id.to_string();
        self.with_conn(move |conn, path| {
            let err = sql_err(path);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(&err)?;
            tx.execute("DELETE FROM leader_lease WHERE holder = ?1", [&node_id])
                .map_err(&err)?;
            tx.commit().map_err(&err)?;
            Ok(())
        })
        .await
    }

    async fn leader(&self) -> BackendResult<Option<String>> {
        self.with_conn(|conn, path| {
            conn.query_row(
                &format!("SELECT holder FROM leader_lease WHERE id = 1 AND expires_at > {NOW_MS}"),
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql_err(path))
        })
        .await
    }
}
