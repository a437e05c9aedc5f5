//! The SQLite session store: one table keyed on the id's SHA-256, for a single host.
//!
//! WAL lets readers continue while a writer commits; `busy_timeout` makes a second process
//! (`fleetctl sessions gc` next to a running server) wait instead of failing; every write runs
//! in an IMMEDIATE transaction so two writers never deadlock upgrading a read lock. rusqlite is
//! synchronous, so every call runs on `spawn_blocking` and never stalls the async runtime.
//! Time is this host's clock: SQLite is single-host by nature.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::{
    GcProgress, Lifetimes, Millis, ProgressFn, Session, SessionData, SessionError, SessionId,
    SessionInfo, SessionResult, SessionStore, now_millis,
};
use crate::config::{BackendKind, SessionsConfig};

/// Rows deleted per transaction by `delete_expired`: small enough that a server writing
/// sessions at the same time waits milliseconds, not seconds.
const GC_BATCH: i64 = 2_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sessions (
    id_hash    TEXT PRIMARY KEY NOT NULL,
    user       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    csrf_token TEXT NOT NULL,
    data       TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions(expires_at);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user);
CREATE TABLE IF NOT EXISTS login_failures (
    key        TEXT PRIMARY KEY NOT NULL,
    failures   INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
";

const COLUMNS: &str = "id_hash, user, created_at, last_seen, expires_at, csrf_token, data";

pub struct SqliteStore {
    /// One connection: the process serialises its own writes here and SQLite's locks
    /// serialise it against other processes.
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    lifetimes: Lifetimes,
}

impl SqliteStore {
    /// Open (creating if needed) the database at `sessions.db_path`.
    pub async fn open(config: &SessionsConfig) -> SessionResult<SqliteStore> {
        let path = config.db_path.clone();
        let lifetimes = Lifetimes::from_config(config);
        let p = path.clone();
        let conn = tokio::task::spawn_blocking(move || open_connection(&p))
            .await
            .map_err(|e| unavailable(&path, e))?
            .map_err(|e| unavailable(&path, e))?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            path,
            lifetimes,
        })
    }

    /// Insert complete records in one transaction, bypassing the clock: for migrating sessions
    /// between stores and for seeding large stores in tests. Existing ids are overwritten.
    pub async fn import(&self, records: Vec<SessionInfo>) -> SessionResult<u64> {
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut n = 0;
            {
                let mut stmt = tx.prepare(&format!(
                    "INSERT OR REPLACE INTO sessions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ))?;
                for r in &records {
                    let s = &r.session;
                    let data = serde_json::Value::Object(s.data.clone()).to_string();
                    n += stmt.execute(params![
                        r.id_hash,
                        s.user,
                        s.created_at,
                        s.last_seen,
                        s.expires_at,
                        s.csrf_token,
                        data
                    ])? as u64;
                }
            }
            tx.commit()?;
            Ok(n)
        })
        .await
    }

    /// Run `f` with the connection on the blocking pool.
    async fn run<T, F>(&self, f: F) -> SessionResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| unavailable(&self.path, e))?;
        result.map_err(|e| unavailable(&self.path, e))
    }
}

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    // NORMAL sync (set by wal::open) loses at most the last commits on power loss; a lost
    // session means one extra login.
    crate::wal::open(path, |conn| conn.execute_batch(SCHEMA))
}

fn unavailable(path: &Path, e: impl std::fmt::Display) -> SessionError {
    SessionError::Unavailable {
        backend: BackendKind::Sqlite,
        location: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Decode a row; a row this version cannot read is reported and treated as absent.
fn decode_row(row: &Row<'_>) -> rusqlite::Result<Option<SessionInfo>> {
    let id_hash: String = row.get(0)?;
    let decoded = (|| -> Result<SessionInfo, String> {
        let get_err = |e: rusqlite::Error| e.to_string();
        let data_text: String = row.get(6).map_err(get_err)?;
        let data = match serde_json::from_str::<serde_json::Value>(&data_text) {
            Ok(serde_json::Value::Object(map)) => map,
            Ok(_) => return Err("data is not a JSON object".into()),
            Err(e) => return Err(format!("data is not JSON: {e}")),
        };
        Ok(SessionInfo {
            id_hash: id_hash.clone(),
            session: Session {
                user: row.get(1).map_err(get_err)?,
                created_at: row.get(2).map_err(get_err)?,
                last_seen: row.get(3).map_err(get_err)?,
                expires_at: row.get(4).map_err(get_err)?,
                csrf_token: row.get(5).map_err(get_err)?,
                data,
            },
        })
    })();
    match decoded {
        Ok(info) => Ok(Some(info)),
        Err(message) => {
            tracing::warn!(
                key = %id_hash,
                "unreadable session row {id_hash} in the sqlite session store, treating it as absent: {message}"
            );
            Ok(None)
        }
    }
}

fn query_sessions(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<Vec<SessionInfo>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(params, decode_row)?;
    let mut out = Vec::new();
    for row in rows {
        if let Some(info) = row? {
            out.push(info);
        }
    }
    Ok(out)
}

#[async_trait]
impl SessionStore for SqliteStore {
    fn backend(&self) -> BackendKind {
        BackendKind::Sqlite
    }

    fn lifetimes(&self) -> Lifetimes {
        self.lifetimes
    }

    async fn create(
        &self,
        id: &SessionId,
        user: &str,
        data: SessionData,
    ) -> SessionResult<Session> {
        let now = now_millis();
        let session = Session::fresh(user, now, &self.lifetimes, data)?;
        let key = id.storage_key();
        let s = session.clone();
        let inserted = self
            .run(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                // An expired row under the same hash is dead: replace it, as Redis would
                // after its key expired.
                let n = tx.execute(
                    &format!(
                        "INSERT INTO sessions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                         ON CONFLICT(id_hash) DO UPDATE SET
                           user = excluded.user, created_at = excluded.created_at,
                           last_seen = excluded.last_seen, expires_at = excluded.expires_at,
                           csrf_token = excluded.csrf_token, data = excluded.data
                         WHERE sessions.expires_at <= ?3"
                    ),
                    params![
                        key,
                        s.user,
                        s.created_at,
                        s.last_seen,
                        s.expires_at,
                        s.csrf_token,
                        serde_json::Value::Object(s.data.clone()).to_string()
                    ],
                )?;
                tx.commit()?;
                Ok(n)
            })
            .await?;
        if inserted == 0 {
            return Err(SessionError::AlreadyExists);
        }
        Ok(session)
    }

    async fn load(&self, id: &SessionId) -> SessionResult<Option<Session>> {
        let key = id.storage_key();
        let now = now_millis();
        let found = self
            .run(move |conn| {
                query_sessions(
                    conn,
                    &format!(
                        "SELECT {COLUMNS} FROM sessions WHERE id_hash = ?1 AND expires_at > ?2"
                    ),
                    params![key, now],
                )
            })
            .await?;
        Ok(found.into_iter().next().map(|i| i.session))
    }

    async fn save(&self, id: &SessionId, session: &Session) -> SessionResult<Session> {
        let key = id.storage_key();
        let now = now_millis();
        let idle = self.lifetimes.idle_ms();
        let absolute = self.lifetimes.absolute_ms();
        let data = serde_json::Value::Object(session.data.clone()).to_string();
        let csrf = session.csrf_token.clone();
        let updated = self
            .run(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let rows = query_sessions(
                    &tx,
                    &format!(
                        "UPDATE sessions SET data = ?3, csrf_token = ?4, last_seen = ?2,
                           expires_at = MIN(?2 + ?5, created_at + ?6)
                         WHERE id_hash = ?1 AND expires_at > ?2 AND created_at + ?6 > ?2
                         RETURNING {COLUMNS}"
                    ),
                    params![key, now, data, csrf, idle, absolute],
                )?;
                tx.commit()?;
                Ok(rows)
            })
            .await?;
        updated
            .into_iter()
            .next()
            .map(|i| i.session)
            .ok_or(SessionError::NotFound)
    }

    async fn touch(&self, id: &SessionId) -> SessionResult<Option<Session>> {
        let key = id.storage_key();
        let now = now_millis();
        let idle = self.lifetimes.idle_ms();
        let absolute = self.lifetimes.absolute_ms();
        let updated = self
            .run(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let rows = query_sessions(
                    &tx,
                    &format!(
                        "UPDATE sessions SET last_seen = ?2,
                           expires_at = MIN(?2 + ?3, created_at + ?4)
                         WHERE id_hash = ?1 AND expires_at > ?2 AND created_at + ?4 > ?2
                         RETURNING {COLUMNS}"
                    ),
                    params![key, now, idle, absolute],
                )?;
                tx.commit()?;
                Ok(rows)
            })
            .await?;
        Ok(updated.into_iter().next().map(|i| i.session))
    }

    async fn delete(&self, id: &SessionId) -> SessionResult<bool> {
        let key = id.storage_key();
        let now = now_millis();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let live: Option<i64> = tx
                .query_row(
                    "SELECT expires_at FROM sessions WHERE id_hash = ?1",
                    params![key],
                    |r| r.get(0),
                )
                .optional()?;
            tx.execute("DELETE FROM sessions WHERE id_hash = ?1", params![key])?;
            tx.commit()?;
            Ok(live.is_some_and(|exp| exp > now))
        })
        .await
    }

    async fn delete_expired(&self, progress: ProgressFn<'_>) -> SessionResult<u64> {
        let now = now_millis();
        let total: i64 = self
            .run(move |conn| {
                conn.query_row(
                    "SELECT COUNT(*) FROM sessions WHERE expires_at <= ?1",
                    params![now],
                    |r| r.get(0),
                )
            })
            .await?;
        let total = total as u64;
        let mut done = 0u64;
        progress(GcProgress { done, total });
        loop {
            // One short transaction per batch; the lock is released between batches so a
            // running server keeps serving logins during a large GC.
            let deleted = self
                .run(move |conn| {
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    let n = tx.execute(
                        "DELETE FROM sessions WHERE id_hash IN
                           (SELECT id_hash FROM sessions WHERE expires_at <= ?1 LIMIT ?2)",
                        params![now, GC_BATCH],
                    )?;
                    tx.execute(
                        "DELETE FROM login_failures WHERE expires_at <= ?1",
                        params![now],
                    )?;
                    tx.commit()?;
                    Ok(n as u64)
                })
                .await?;
            done += deleted;
            progress(GcProgress {
                done,
                total: total.max(done),
            });
            if deleted < GC_BATCH as u64 {
                return Ok(done);
            }
        }
    }

    async fn list(&self, user: Option<&str>) -> SessionResult<Vec<SessionInfo>> {
        let now = now_millis();
        let user = user.map(str::to_owned);
        self.run(move |conn| match user {
            Some(u) => query_sessions(
                conn,
                &format!(
                    "SELECT {COLUMNS} FROM sessions WHERE user = ?1 AND expires_at > ?2
                     ORDER BY created_at"
                ),
                params![u, now],
            ),
            None => query_sessions(
                conn,
                &format!(
                    "SELECT {COLUMNS} FROM sessions WHERE expires_at > ?1 ORDER BY created_at"
                ),
                params![now],
            ),
        })
        .await
    }

    async fn revoke_user(&self, user: &str) -> SessionResult<u64> {
        let now = now_millis();
        let user = user.to_owned();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let live: i64 = tx.query_row(
                "SELECT COUNT(*) FROM sessions WHERE user = ?1 AND expires_at > ?2",
                params![user, now],
                |r| r.get(0),
            )?;
            tx.execute("DELETE FROM sessions WHERE user = ?1", params![user])?;
            tx.commit()?;
            Ok(live as u64)
        })
        .await
    }

    async fn revoke_all(&self) -> SessionResult<u64> {
        let now = now_millis();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let live: i64 = tx.query_row(
                "SELECT COUNT(*) FROM sessions WHERE expires_at > ?1",
                params![now],
                |r| r.get(0),
            )?;
            tx.execute("DELETE FROM sessions", [])?;
            tx.commit()?;
            Ok(live as u64)
        })
        .await
    }

    async fn count(&self) -> SessionResult<u64> {
        let now = now_millis();
        self.run(move |conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM sessions WHERE expires_at > ?1",
                params![now],
                |r| r.get::<_, i64>(0),
            )
        })
        .await
        .map(|n| n as u64)
    }

    async fn record_failure(&self, key: &str, window: Duration) -> SessionResult<u32> {
        let key = key.to_owned();
        let now = now_millis();
        let expires: Millis = now.saturating_add(super::duration_ms(window));
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let failures: i64 = tx.query_row(
                "INSERT INTO login_failures (key, failures, expires_at) VALUES (?1, 1, ?3)
                 ON CONFLICT(key) DO UPDATE SET
                   failures = CASE WHEN expires_at <= ?2 THEN 1 ELSE failures + 1 END,
                   expires_at = CASE WHEN expires_at <= ?2 THEN ?3 ELSE expires_at END
                 RETURNING failures",
                params![key, now, expires],
                |r| r.get(0),
            )?;
            tx.commit()?;
            Ok(u32::try_from(failures).unwrap_or(u32::MAX))
        })
        .await
    }

    async fn clear_failures(&self, key: &str) -> SessionResult<()> {
        let key = key.to_owned();
        self.run(move |conn| {
            conn.execute("DELETE FROM login_failures WHERE key = ?1", params![key])?;
            Ok(())
        })
        .await
    }
}
