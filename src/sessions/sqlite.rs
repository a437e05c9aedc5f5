//! The SQLite session store: one table keyed on the id's SHA-256, for a single host.
//!
//! This file keeps the schema and the SQL; opening, transactions and busy handling are
//! `store::sqlite::Db`'s: a second process (`fleetctl sessions gc` next to a running server)
//! waits for the write lock instead of failing, reads never wait for a write, and nothing runs
//! on the async runtime. Time is this host's clock: SQLite is single-host by nature.

use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, Statement, params};

use super::{
    AtRest, ExportPage, GcProgress, Lifetimes, Millis, ProgressFn, ResealCount, Session,
    SessionData, SessionError, SessionId, SessionInfo, SessionResult, SessionStore, fields_current,
    now_millis, open_fields, seal_fields,
};
use crate::config::{BackendKind, SessionsConfig};
use crate::store::sqlite::{Db, DbError, Schema};

/// Rows deleted per transaction by `delete_expired`: small enough that a server writing
/// sessions at the same time waits milliseconds, not seconds.
const GC_BATCH: i64 = 2_000;

const SCHEMA: Schema = Schema {
    version_table: "sessions_schema_version",
    version: 1,
    sql: "
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
",
};

const COLUMNS: &str = "id_hash, user, created_at, last_seen, expires_at, csrf_token, data";

pub struct SqliteStore {
    /// The process serialises its own writes on the writer connection and SQLite's locks
    /// serialise it against other processes. `synchronous = NORMAL` loses at most the last
    /// commits on power loss; a lost session means one extra login.
    db: Db,
    lifetimes: Lifetimes,
    /// Seals `data` and `csrf_token`.
    at_rest: AtRest,
}

impl SqliteStore {
    /// Open (creating if needed) the database at `sessions.db_path`.
    pub async fn open(config: &SessionsConfig, at_rest: AtRest) -> SessionResult<SqliteStore> {
        Ok(SqliteStore {
            db: Db::open(&config.db_path, SCHEMA).await?,
            lifetimes: Lifetimes::from_config(config),
            at_rest,
        })
    }
}

impl From<DbError> for SessionError {
    fn from(e: DbError) -> SessionError {
        SessionError::Unavailable {
            backend: BackendKind::Sqlite,
            location: e.path.display().to_string(),
            message: e.message,
        }
    }
}

/// Run an insert of all [`COLUMNS`] (`?1` to `?7`, in their order) for one session.
fn insert(
    stmt: &mut Statement<'_>,
    at_rest: &AtRest,
    id_hash: &str,
    s: &Session,
) -> rusqlite::Result<usize> {
    let sealed = seal_fields(at_rest, id_hash, &s.csrf_token, &s.data);
    stmt.execute(params![
        id_hash,
        s.user,
        s.created_at,
        s.last_seen,
        s.expires_at,
        sealed.csrf_token,
        sealed.data
    ])
}

/// `WHERE` condition on `:user`: that user's sessions, or (NULL) everyone's.
fn user_filter(user: &Option<String>) -> &'static str {
    match user {
        Some(_) => "user = :user",
        None => ":user IS NULL",
    }
}

/// Decode a row; a row this version cannot read is reported and treated as absent.
fn decode_row(row: &Row<'_>, at_rest: &AtRest) -> rusqlite::Result<Option<SessionInfo>> {
    let (id_hash, decoded) = open_row(row, at_rest)?;
    match decoded {
        Ok(info) => Ok(Some(info)),
        Err(message) => {
            crate::store::unreadable::warn(
                &format!("sqlite session {id_hash}"),
                &format!(
                    "unreadable session row {id_hash} in the sqlite session store, treating it as absent: {message}"
                ),
            );
            Ok(None)
        }
    }
}

/// A row's id hash and its session, or why it cannot be read.
fn open_row(
    row: &Row<'_>,
    at_rest: &AtRest,
) -> rusqlite::Result<(String, Result<SessionInfo, String>)> {
    let id_hash: String = row.get(0)?;
    let decoded = (|| -> Result<SessionInfo, String> {
        let get_err = |e: rusqlite::Error| e.to_string();
        let csrf_text: String = row.get(5).map_err(get_err)?;
        let data_text: String = row.get(6).map_err(get_err)?;
        let (csrf_token, data) = open_fields(at_rest, &id_hash, &csrf_text, &data_text)?;
        Ok(SessionInfo {
            id_hash: id_hash.clone(),
            session: Session {
                user: row.get(1).map_err(get_err)?,
                created_at: row.get(2).map_err(get_err)?,
                last_seen: row.get(3).map_err(get_err)?,
                expires_at: row.get(4).map_err(get_err)?,
                csrf_token,
                data,
            },
        })
    })();
    Ok((id_hash, decoded))
}

fn query_sessions(
    conn: &Connection,
    at_rest: &AtRest,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<Vec<SessionInfo>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(params, |row| decode_row(row, at_rest))?;
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
        let at_rest = self.at_rest.clone();
        // An expired row under the same hash is dead: replace it, as Redis would after its key
        // expired.
        let sql = format!(
            "INSERT INTO sessions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(id_hash) DO UPDATE SET
               user = excluded.user, created_at = excluded.created_at,
               last_seen = excluded.last_seen, expires_at = excluded.expires_at,
               csrf_token = excluded.csrf_token, data = excluded.data
             WHERE sessions.expires_at <= ?3"
        );
        let inserted = self
            .db
            .write(move |tx| insert(&mut tx.prepare(&sql)?, &at_rest, &key, &s))
            .await?;
        if inserted == 0 {
            return Err(SessionError::AlreadyExists);
        }
        Ok(session)
    }

    async fn load(&self, id: &SessionId) -> SessionResult<Option<Session>> {
        let key = id.storage_key();
        let at_rest = self.at_rest.clone();
        let now = now_millis();
        let sql = format!("SELECT {COLUMNS} FROM sessions WHERE id_hash = ?1 AND expires_at > ?2");
        let found = self
            .db
            .read(move |conn| query_sessions(conn, &at_rest, &sql, params![key, now]))
            .await?;
        Ok(found.into_iter().next().map(|i| i.session))
    }

    async fn save(&self, id: &SessionId, session: &Session) -> SessionResult<Session> {
        let key = id.storage_key();
        let at_rest = self.at_rest.clone();
        let now = now_millis();
        let idle = self.lifetimes.idle_ms();
        let absolute = self.lifetimes.absolute_ms();
        let sealed = seal_fields(&self.at_rest, &key, &session.csrf_token, &session.data);
        let (data, csrf) = (sealed.data, sealed.csrf_token);
        let sql = format!(
            "UPDATE sessions SET data = ?3, csrf_token = ?4, last_seen = ?2,
               expires_at = MIN(?2 + ?5, created_at + ?6)
             WHERE id_hash = ?1 AND expires_at > ?2 AND created_at + ?6 > ?2
             RETURNING {COLUMNS}"
        );
        let updated = self
            .db
            .write(move |tx| {
                query_sessions(
                    tx,
                    &at_rest,
                    &sql,
                    params![key, now, data, csrf, idle, absolute],
                )
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
        let at_rest = self.at_rest.clone();
        let now = now_millis();
        let idle = self.lifetimes.idle_ms();
        let absolute = self.lifetimes.absolute_ms();
        let sql = format!(
            "UPDATE sessions SET last_seen = ?2, expires_at = MIN(?2 + ?3, created_at + ?4)
             WHERE id_hash = ?1 AND expires_at > ?2 AND created_at + ?4 > ?2
             RETURNING {COLUMNS}"
        );
        let updated = self
            .db
            .write(move |tx| query_sessions(tx, &at_rest, &sql, params![key, now, idle, absolute]))
            .await?;
        Ok(updated.into_iter().next().map(|i| i.session))
    }

    async fn delete(&self, id: &SessionId) -> SessionResult<bool> {
        let key = id.storage_key();
        let now = now_millis();
        let expires_at: Option<Millis> = self
            .db
            .write(move |tx| {
                let expires_at = tx
                    .query_row(
                        "SELECT expires_at FROM sessions WHERE id_hash = ?1",
                        params![key],
                        |r| r.get(0),
                    )
                    .optional()?;
                tx.execute("DELETE FROM sessions WHERE id_hash = ?1", params![key])?;
                Ok(expires_at)
            })
            .await?;
        Ok(expires_at.is_some_and(|exp| exp > now))
    }

    async fn delete_expired(&self, progress: ProgressFn<'_>) -> SessionResult<u64> {
        let now = now_millis();
        let total = self.count_where("expires_at <= ?1", now).await?;
        let mut done = 0u64;
        progress(GcProgress { done, total });
        loop {
            // One short transaction per batch; the lock is released between batches so a
            // running server keeps serving logins during a large GC.
            let deleted = self
                .db
                .write(move |tx| {
                    let n = tx.execute(
                        "DELETE FROM sessions WHERE id_hash IN
                           (SELECT id_hash FROM sessions WHERE expires_at <= ?1 LIMIT ?2)",
                        params![now, GC_BATCH],
                    )?;
                    tx.execute(
                        "DELETE FROM login_failures WHERE expires_at <= ?1",
                        params![now],
                    )?;
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
        let at_rest = self.at_rest.clone();
        let user = user.map(str::to_owned);
        let sql = format!(
            "SELECT {COLUMNS} FROM sessions WHERE {} AND expires_at > :now ORDER BY created_at",
            user_filter(&user)
        );
        Ok(self
            .db
            .read(move |conn| {
                query_sessions(
                    conn,
                    &at_rest,
                    &sql,
                    rusqlite::named_params! {":user": user, ":now": now},
                )
            })
            .await?)
    }

    async fn reseal(&self, progress: ProgressFn<'_>) -> SessionResult<ResealCount> {
        let total = self
            .db
            .read(|c| c.query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get::<_, i64>(0)))
            .await? as u64;
        progress(GcProgress { done: 0, total });
        let mut count = ResealCount::default();
        let mut after = String::new();
        loop {
            let at_rest = self.at_rest.clone();
            let from = std::mem::take(&mut after);
            // One transaction a batch: a concurrent save waits for it, so no save is lost.
            let (batch, last) = self
                .db
                .write(move |tx| {
                    let rows: Vec<(String, String, String)> = tx
                        .prepare(
                            "SELECT id_hash, csrf_token, data FROM sessions
                             WHERE id_hash > ?1 ORDER BY id_hash LIMIT ?2",
                        )?
                        .query_map(params![from, GC_BATCH], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                        })?
                        .collect::<rusqlite::Result<_>>()?;
                    let mut batch = ResealCount::default();
                    for (id_hash, csrf, data) in &rows {
                        batch.examined += 1;
                        if fields_current(&at_rest, csrf, data) {
                            continue;
                        }
                        let Ok((csrf, data)) = open_fields(&at_rest, id_hash, csrf, data) else {
                            batch.unreadable += 1;
                            continue;
                        };
                        let sealed = seal_fields(&at_rest, id_hash, &csrf, &data);
                        tx.execute(
                            "UPDATE sessions SET csrf_token = ?2, data = ?3 WHERE id_hash = ?1",
                            params![id_hash, sealed.csrf_token, sealed.data],
                        )?;
                        batch.resealed += 1;
                    }
                    Ok((batch, rows.last().map(|r| r.0.clone())))
                })
                .await?;
            count.add(batch);
            progress(GcProgress {
                done: count.examined,
                total: total.max(count.examined),
            });
            match last {
                Some(last) if batch.examined == GC_BATCH as u64 => after = last,
                _ => return Ok(count),
            }
        }
    }

    async fn export(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> SessionResult<ExportPage<SessionInfo>> {
        let at_rest = self.at_rest.clone();
        let now = now_millis();
        let after = cursor.unwrap_or_default();
        let limit = limit.max(1);
        let sql = format!(
            "SELECT {COLUMNS} FROM sessions WHERE id_hash > ?1 AND expires_at > ?2
             ORDER BY id_hash LIMIT ?3"
        );
        let rows = self
            .db
            .read(move |conn| {
                let mut stmt = conn.prepare(&sql)?;
                let rows = stmt.query_map(params![after, now, limit as i64], |row| {
                    open_row(row, &at_rest)
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        let next = (rows.len() == limit)
            .then(|| rows.last().map(|(id, _)| id.clone()))
            .flatten();
        let mut page = ExportPage {
            records: Vec::with_capacity(rows.len()),
            unreadable: Vec::new(),
            next,
        };
        for (id_hash, decoded) in rows {
            match decoded {
                Ok(info) => page.records.push(info),
                Err(why) => page
                    .unreadable
                    .push(format!("sqlite session {id_hash}: {why}")),
            }
        }
        Ok(page)
    }

    async fn import(&self, records: Vec<SessionInfo>) -> SessionResult<u64> {
        // Expired records are written too (they read as absent until GC removes them): the
        // `sessions gc` tests and benchmarks seed stores this way.
        let sql = format!(
            "INSERT INTO sessions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(id_hash) DO UPDATE SET
               user = excluded.user, created_at = excluded.created_at,
               last_seen = excluded.last_seen, expires_at = excluded.expires_at,
               csrf_token = excluded.csrf_token, data = excluded.data
             WHERE excluded.last_seen >= sessions.last_seen"
        );
        let at_rest = self.at_rest.clone();
        Ok(self
            .db
            .write(move |tx| {
                let mut stmt = tx.prepare(&sql)?;
                let mut n = 0;
                for r in &records {
                    n += insert(&mut stmt, &at_rest, &r.id_hash, &r.session)? as u64;
                }
                Ok(n)
            })
            .await?)
    }

    async fn revoke_user(&self, user: &str) -> SessionResult<u64> {
        self.revoke(Some(user.to_owned())).await
    }

    async fn revoke_all(&self) -> SessionResult<u64> {
        self.revoke(None).await
    }

    async fn count(&self) -> SessionResult<u64> {
        self.count_where("expires_at > ?1", now_millis()).await
    }

    async fn record_failure(&self, key: &str, window: Duration) -> SessionResult<u32> {
        let key = key.to_owned();
        let now = now_millis();
        let expires: Millis = now.saturating_add(super::duration_ms(window));
        let failures: i64 = self
            .db
            .write(move |tx| {
                tx.query_row(
                    "INSERT INTO login_failures (key, failures, expires_at) VALUES (?1, 1, ?3)
                     ON CONFLICT(key) DO UPDATE SET
                       failures = CASE WHEN expires_at <= ?2 THEN 1 ELSE failures + 1 END,
                       expires_at = CASE WHEN expires_at <= ?2 THEN ?3 ELSE expires_at END
                     RETURNING failures",
                    params![key, now, expires],
                    |r| r.get(0),
                )
            })
            .await?;
        Ok(u32::try_from(failures).unwrap_or(u32::MAX))
    }

    async fn clear_failures(&self, key: &str) -> SessionResult<()> {
        let key = key.to_owned();
        self.db
            .write(move |tx| tx.execute("DELETE FROM login_failures WHERE key = ?1", params![key]))
            .await?;
        Ok(())
    }
}

impl SqliteStore {
    /// How many sessions satisfy `condition`, in which `?1` is `now`.
    async fn count_where(&self, condition: &'static str, now: Millis) -> SessionResult<u64> {
        let sql = format!("SELECT COUNT(*) FROM sessions WHERE {condition}");
        let n: i64 = self
            .db
            .read(move |conn| conn.query_row(&sql, params![now], |r| r.get(0)))
            .await?;
        Ok(n as u64)
    }

    /// End the sessions of `user` (or everyone's); returns how many of them were live.
    async fn revoke(&self, user: Option<String>) -> SessionResult<u64> {
        let now = now_millis();
        let filter = user_filter(&user);
        let count = format!("SELECT COUNT(*) FROM sessions WHERE {filter} AND expires_at > :now");
        let delete = format!("DELETE FROM sessions WHERE {filter}");
        let live: i64 = self
            .db
            .write(move |tx| {
                let live = tx.query_row(
                    &count,
                    rusqlite::named_params! {":user": user, ":now": now},
                    |r| r.get(0),
                )?;
                tx.execute(&delete, rusqlite::named_params! {":user": user})?;
                Ok(live)
            })
            .await?;
        Ok(live as u64)
    }
}
