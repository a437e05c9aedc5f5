//! The PostgreSQL session store: one table keyed on the id's SHA-256, shared by every node.
//!
//! Schema (owned by this file, applied by `store::postgres::Pg` as store `sessions`):
//! - `sessions(id_hash PRIMARY KEY, username, created_at, last_seen, expires_at, csrf_token,
//!   data)`: times in milliseconds on the database's clock; indexes on `expires_at` (reads,
//!   `sessions gc`) and `username` (revocation, listing).
//! - `login_failures(key PRIMARY KEY, failures, expires_at)`: the login throttle's counters.
//!
//! Time is the database's clock, read inside each statement, so nodes with skewed clocks agree
//! on when a session expires. Every operation is one statement (one round trip, atomic), except
//! the batches of `reseal`.

use std::time::Duration;

use async_trait::async_trait;
use tokio_postgres::Row;

use super::{
    AtRest, ExportPage, GcProgress, Lifetimes, ProgressFn, ResealCount, Session, SessionData,
    SessionError, SessionId, SessionInfo, SessionResult, SessionStore, fields_current,
    new_csrf_token, open_fields, seal_fields,
};
use crate::config::{BackendKind, SessionsConfig};
use crate::store::postgres::{Pg, PgError, PgSchema, WITH_NOW};

/// Rows deleted (or re-sealed) per statement: short enough that logins never wait long.
const GC_BATCH: i64 = 5_000;

const SCHEMA: PgSchema = PgSchema {
    store: "sessions",
    migrations: &["
CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    username   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    csrf_token TEXT NOT NULL,
    data       TEXT NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_username ON sessions (username);
CREATE TABLE login_failures (
    key        TEXT PRIMARY KEY,
    failures   INTEGER NOT NULL,
    expires_at BIGINT NOT NULL
);
"],
};

const COLUMNS: &str = "id_hash, username, created_at, last_seen, expires_at, csrf_token, data";

pub struct PostgresStore {
    pg: Pg,
    lifetimes: Lifetimes,
    at_rest: AtRest,
}

impl PostgresStore {
    pub async fn open(config: &SessionsConfig, at_rest: AtRest) -> SessionResult<PostgresStore> {
        Ok(PostgresStore {
            pg: Pg::open(&config.postgres, "sessions.postgres", SCHEMA).await?,
            lifetimes: Lifetimes::from_config(config),
            at_rest,
        })
    }

    /// Decode rows of [`COLUMNS`]; a row whose sealed fields do not open is reported once and
    /// left out, as if absent.
    fn decode(&self, rows: Vec<Row>) -> Vec<SessionInfo> {
        rows.iter().filter_map(|r| self.decode_row(r)).collect()
    }

    /// A row of [`COLUMNS`] as a session, or why its sealed fields do not open.
    fn open_row(&self, row: &Row) -> Result<SessionInfo, String> {
        let id_hash: String = row.get(0);
        let csrf: String = row.get(5);
        let data: String = row.get(6);
        let (csrf_token, data) = open_fields(&self.at_rest, &id_hash, &csrf, &data)?;
        Ok(SessionInfo {
            session: Session {
                user: row.get(1),
                created_at: row.get(2),
                last_seen: row.get(3),
                expires_at: row.get(4),
                csrf_token,
                data,
            },
            id_hash,
        })
    }

    fn decode_row(&self, row: &Row) -> Option<SessionInfo> {
        match self.open_row(row) {
            Ok(info) => Some(info),
            Err(message) => {
                let id_hash: String = row.get(0);
                crate::store::unreadable::warn(
                    &format!("postgres session {id_hash}"),
                    &format!(
                        "unreadable session row {id_hash} in the postgres session store, treating it as absent: {message}"
                    ),
                );
                None
            }
        }
    }

    /// End the sessions of `user` (or everyone's); returns how many of them were live.
    async fn revoke(&self, user: Option<&str>) -> SessionResult<u64> {
        let row = self
            .pg
            .conn()
            .await?
            .query_one(
                &format!(
                    "{WITH_NOW}, d AS (DELETE FROM sessions WHERE $1::text IS NULL OR username = $1
                                       RETURNING expires_at)
                     SELECT count(*) FILTER (WHERE d.expires_at > t.now) FROM d, t"
                ),
                &[&user],
            )
            .await?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    async fn count_where(&self, condition: &str) -> SessionResult<u64> {
        let row = self
            .pg
            .conn()
            .await?
            .query_one(
                &format!("{WITH_NOW} SELECT count(*) FROM sessions, t WHERE {condition}"),
                &[],
            )
            .await?;
        Ok(row.get::<_, i64>(0) as u64)
    }
}

impl From<PgError> for SessionError {
    fn from(e: PgError) -> SessionError {
        SessionError::Unavailable {
            backend: BackendKind::Postgres,
            location: e.location,
            message: e.message,
        }
    }
}

#[async_trait]
impl SessionStore for PostgresStore {
    fn backend(&self) -> BackendKind {
        BackendKind::Postgres
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
        let key = id.storage_key();
        let csrf_token = new_csrf_token()?;
        let sealed = seal_fields(&self.at_rest, &key, &csrf_token, &data);
        let (idle, absolute) = (self.lifetimes.idle_ms(), self.lifetimes.absolute_ms());
        // An expired row under the same hash is dead: replace it, as Redis would after its key
        // expired; a live one is never overwritten.
        let row = self
            .pg
            .conn()
            .await?
            .query_opt(
                &format!(
                    "{WITH_NOW}
                     INSERT INTO sessions ({COLUMNS})
                     SELECT $1, $2, t.now, t.now, LEAST(t.now + $3, t.now + $4), $5, $6 FROM t
                     ON CONFLICT (id_hash) DO UPDATE SET
                         username = excluded.username, created_at = excluded.created_at,
                         last_seen = excluded.last_seen, expires_at = excluded.expires_at,
                         csrf_token = excluded.csrf_token, data = excluded.data
                     WHERE sessions.expires_at <= excluded.created_at
                     RETURNING created_at, last_seen, expires_at"
                ),
                &[
                    &key,
                    &user,
                    &idle,
                    &absolute,
                    &sealed.csrf_token,
                    &sealed.data,
                ],
            )
            .await?;
        let Some(row) = row else {
            return Err(SessionError::AlreadyExists);
        };
        Ok(Session {
            user: user.to_owned(),
            created_at: row.get(0),
            last_seen: row.get(1),
            expires_at: row.get(2),
            csrf_token,
            data,
        })
    }

    async fn load(&self, id: &SessionId) -> SessionResult<Option<Session>> {
        let key = id.storage_key();
        let rows = self
            .pg
            .conn()
            .await?
            .query(
                &format!(
                    "{WITH_NOW} SELECT {COLUMNS} FROM sessions, t
                     WHERE id_hash = $1 AND expires_at > t.now"
                ),
                &[&key],
            )
            .await?;
        Ok(self.decode(rows).into_iter().next().map(|i| i.session))
    }

    async fn save(&self, id: &SessionId, session: &Session) -> SessionResult<Session> {
        let key = id.storage_key();
        let sealed = seal_fields(&self.at_rest, &key, &session.csrf_token, &session.data);
        let (idle, absolute) = (self.lifetimes.idle_ms(), self.lifetimes.absolute_ms());
        let rows = self
            .pg
            .conn()
            .await?
            .query(
                &format!(
                    "{WITH_NOW}
                     UPDATE sessions SET data = $2, csrf_token = $3, last_seen = t.now,
                         expires_at = LEAST(t.now + $4, created_at + $5)
                     FROM t
                     WHERE id_hash = $1 AND expires_at > t.now AND created_at + $5 > t.now
                     RETURNING {COLUMNS}"
                ),
                &[&key, &sealed.data, &sealed.csrf_token, &idle, &absolute],
            )
            .await?;
        self.decode(rows)
            .into_iter()
            .next()
            .map(|i| i.session)
            .ok_or(SessionError::NotFound)
    }

    async fn touch(&self, id: &SessionId) -> SessionResult<Option<Session>> {
        let key = id.storage_key();
        let (idle, absolute) = (self.lifetimes.idle_ms(), self.lifetimes.absolute_ms());
        let rows = self
            .pg
            .conn()
            .await?
            .query(
                &format!(
                    "{WITH_NOW}
                     UPDATE sessions SET last_seen = t.now,
                         expires_at = LEAST(t.now + $2, created_at + $3)
                     FROM t
                     WHERE id_hash = $1 AND expires_at > t.now AND created_at + $3 > t.now
                     RETURNING {COLUMNS}"
                ),
                &[&key, &idle, &absolute],
            )
            .await?;
        Ok(self.decode(rows).into_iter().next().map(|i| i.session))
    }

    async fn delete(&self, id: &SessionId) -> SessionResult<bool> {
        let key = id.storage_key();
        let row = self
            .pg
            .conn()
            .await?
            .query_opt(
                &format!(
                    "{WITH_NOW}, d AS (DELETE FROM sessions WHERE id_hash = $1 RETURNING expires_at)
                     SELECT d.expires_at > t.now FROM d, t"
                ),
                &[&key],
            )
            .await?;
        Ok(row.is_some_and(|r| r.get::<_, bool>(0)))
    }

    async fn delete_expired(&self, progress: ProgressFn<'_>) -> SessionResult<u64> {
        let total = self.count_where("expires_at <= t.now").await?;
        let mut done = 0u64;
        progress(GcProgress { done, total });
        loop {
            // One short statement per batch, so logins keep going during a large GC.
            let mut c = self.pg.conn().await?;
            let deleted = c
                .execute(
                    &format!(
                        "{WITH_NOW} DELETE FROM sessions WHERE id_hash IN
                           (SELECT id_hash FROM sessions, t WHERE expires_at <= t.now LIMIT $1)"
                    ),
                    &[&GC_BATCH],
                )
                .await?;
            done += deleted;
            progress(GcProgress {
                done,
                total: total.max(done),
            });
            if deleted < GC_BATCH as u64 {
                c.execute(
                    &format!(
                        "{WITH_NOW} DELETE FROM login_failures USING t WHERE expires_at <= t.now"
                    ),
                    &[],
                )
                .await?;
                return Ok(done);
            }
        }
    }

    async fn list(&self, user: Option<&str>) -> SessionResult<Vec<SessionInfo>> {
        let rows = self
            .pg
            .conn()
            .await?
            .query(
                &format!(
                    "{WITH_NOW} SELECT {COLUMNS} FROM sessions, t
                     WHERE ($1::text IS NULL OR username = $1) AND expires_at > t.now
                     ORDER BY created_at, id_hash"
                ),
                &[&user],
            )
            .await?;
        Ok(self.decode(rows))
    }

    async fn revoke_user(&self, user: &str) -> SessionResult<u64> {
        self.revoke(Some(user)).await
    }

    async fn revoke_all(&self) -> SessionResult<u64> {
        self.revoke(None).await
    }

    async fn count(&self) -> SessionResult<u64> {
        self.count_where("expires_at > t.now").await
    }

    async fn record_failure(&self, key: &str, window: Duration) -> SessionResult<u32> {
        let window = super::duration_ms(window);
        let row = self
            .pg
            .conn()
            .await?
            .query_one(
                &format!(
                    "{WITH_NOW}
                     INSERT INTO login_failures (key, failures, expires_at)
                     SELECT $1, 1, t.now + $2 FROM t
                     ON CONFLICT (key) DO UPDATE SET
                         failures = CASE WHEN login_failures.expires_at <= excluded.expires_at - $2
                                         THEN 1 ELSE login_failures.failures + 1 END,
                         expires_at = CASE WHEN login_failures.expires_at <= excluded.expires_at - $2
                                           THEN excluded.expires_at
                                           ELSE login_failures.expires_at END
                     RETURNING failures"
                ),
                &[&key, &window],
            )
            .await?;
        Ok(u32::try_from(row.get::<_, i32>(0)).unwrap_or(u32::MAX))
    }

    async fn clear_failures(&self, key: &str) -> SessionResult<()> {
        self.pg
            .conn()
            .await?
            .execute("DELETE FROM login_failures WHERE key = $1", &[&key])
            .await?;
        Ok(())
    }

    async fn export(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> SessionResult<ExportPage<SessionInfo>> {
        let after = cursor.unwrap_or_default();
        let limit = limit.max(1) as i64;
        let rows = self
            .pg
            .conn()
            .await?
            .query(
                &format!(
                    "{WITH_NOW} SELECT {COLUMNS} FROM sessions, t
                     WHERE id_hash > $1 AND expires_at > t.now ORDER BY id_hash LIMIT $2"
                ),
                &[&after, &limit],
            )
            .await?;
        let next = (rows.len() as i64 == limit)
            .then(|| rows.last().map(|r| r.get::<_, String>(0)))
            .flatten();
        let mut page = ExportPage {
            records: Vec::with_capacity(rows.len()),
            unreadable: Vec::new(),
            next,
        };
        for row in &rows {
            match self.open_row(row) {
                Ok(info) => page.records.push(info),
                Err(why) => page.unreadable.push(format!(
                    "postgres session {}: {why}",
                    row.get::<_, String>(0)
                )),
            }
        }
        Ok(page)
    }

    async fn import(&self, records: Vec<SessionInfo>) -> SessionResult<u64> {
        // One statement a batch (arrays, not one round trip per record); a record replaces
        // a stored one only when it is as recent, so a second pass never undoes a newer save.
        let mut cols: (
            Vec<String>,
            Vec<String>,
            Vec<i64>,
            Vec<i64>,
            Vec<i64>,
            Vec<String>,
            Vec<String>,
        ) = Default::default();
        for r in &records {
            let s = &r.session;
            let sealed = seal_fields(&self.at_rest, &r.id_hash, &s.csrf_token, &s.data);
            cols.0.push(r.id_hash.clone());
            cols.1.push(s.user.clone());
            cols.2.push(s.created_at);
            cols.3.push(s.last_seen);
            cols.4.push(s.expires_at);
            cols.5.push(sealed.csrf_token);
            cols.6.push(sealed.data);
        }
        Ok(self
            .pg
            .conn()
            .await?
            .execute(
                &format!(
                    "INSERT INTO sessions ({COLUMNS})
                     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[],
                                          $5::bigint[], $6::text[], $7::text[])
                     ON CONFLICT (id_hash) DO UPDATE SET
                         username = excluded.username, created_at = excluded.created_at,
                         last_seen = excluded.last_seen, expires_at = excluded.expires_at,
                         csrf_token = excluded.csrf_token, data = excluded.data
                     WHERE excluded.last_seen >= sessions.last_seen"
                ),
                &[
                    &cols.0, &cols.1, &cols.2, &cols.3, &cols.4, &cols.5, &cols.6,
                ],
            )
            .await?)
    }

    async fn reseal(&self, progress: ProgressFn<'_>) -> SessionResult<ResealCount> {
        let total = {
            let row = self
                .pg
                .conn()
                .await?
                .query_one("SELECT count(*) FROM sessions", &[])
                .await?;
            row.get::<_, i64>(0) as u64
        };
        progress(GcProgress { done: 0, total });
        let mut count = ResealCount::default();
        let mut after = String::new();
        loop {
            let mut c = self.pg.conn().await?;
            // One transaction a batch, rows locked: a concurrent save waits for it and then
            // writes its own (sealed) fields, so no save is lost.
            c.begin().await?;
            let rows = c
                .query(
                    "SELECT id_hash, csrf_token, data FROM sessions WHERE id_hash > $1
                     ORDER BY id_hash LIMIT $2 FOR UPDATE",
                    &[&after, &GC_BATCH],
                )
                .await?;
            let mut batch = ResealCount::default();
            for row in &rows {
                let (id_hash, csrf, data): (String, String, String) =
                    (row.get(0), row.get(1), row.get(2));
                batch.examined += 1;
                if fields_current(&self.at_rest, &csrf, &data) {
                    continue;
                }
                let Ok((csrf, data)) = open_fields(&self.at_rest, &id_hash, &csrf, &data) else {
                    batch.unreadable += 1;
                    continue;
                };
                let sealed = seal_fields(&self.at_rest, &id_hash, &csrf, &data);
                c.execute(
                    "UPDATE sessions SET csrf_token = $2, data = $3 WHERE id_hash = $1",
                    &[&id_hash, &sealed.csrf_token, &sealed.data],
                )
                .await?;
                batch.resealed += 1;
            }
            c.commit().await?;
            count.add(batch);
            progress(GcProgress {
                done: count.examined,
                total: total.max(count.examined),
            });
            match rows.last() {
                Some(last) if batch.examined == GC_BATCH as u64 => after = last.get(0),
                _ => return Ok(count),
            }
        }
    }
}
