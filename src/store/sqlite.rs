//! One SQLite database as every SQLite store (cluster registry, sessions, fleet data) uses it:
//! [`Db::open`] with the store's schema, [`Db::read`] and [`Db::write`], and one error type,
//! [`DbError`], that each store maps into its own error in one place.
//!
//! Opening: WAL journal (readers never wait for the writer), `synchronous = NORMAL` (a power
//! cut can lose the last commits, never consistency), a busy timeout, and the store's schema
//! plus a schema-version check, so a file written by a newer fleetctl is refused instead of
//! being misread. The whole sequence is retried while SQLite answers busy: switching a fresh
//! file to WAL and a first schema write that has to upgrade a stale read snapshot both fail
//! with `SQLITE_BUSY` at once, without calling the busy handler (deadlock avoidance), which is
//! exactly what happens when three nodes start together.
//!
//! Writing: one writer connection per handle, taken in turn (waiting writers wait on an async
//! mutex, not on a blocking thread). Every write is one `BEGIN IMMEDIATE` transaction: the
//! write lock is taken up front, so two processes never both read an old value and both write
//! a new one, and never deadlock upgrading a read lock. A busy `BEGIN` is retried with backoff
//! until [`BUSY_TIMEOUT`]; the closure itself runs once, and its error rolls the transaction
//! back.
//!
//! Reading: a small pool of [`READERS`] read-only connections, so a slow read or a long write
//! transaction never makes other reads wait. Each read is one deferred transaction, so all its
//! statements see one snapshot. Chosen over the alternatives (checked against their docs):
//! - `tokio-rusqlite` runs one connection on one background thread, so reads would still queue
//!   behind writes on that connection; it would need the same pool on top.
//! - `r2d2_sqlite` and `deadpool-sqlite` each pin a rusqlite release older than the 0.43 this
//!   crate uses (0.37 and 0.38 at the time of writing), and `libsqlite3-sys` may be linked only
//!   once, so either would hold rusqlite back or fail to build; and both bring health checks
//!   and reconnect logic a local file does not need.
//! - A fixed set of connections behind a tokio semaphore is twenty lines, has no dependency,
//!   and a reader that is lost (a panicking closure) is simply reopened on the next read.
//!
//! rusqlite is synchronous: every call runs on `spawn_blocking`, never on the async runtime.
//! This module never spells a store's table: each store passes its [`Schema`] and its SQL.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};
use tokio::sync::Semaphore;

use super::time::Millis;

/// How long opening, a busy `BEGIN IMMEDIATE` and any statement wait for another connection's
/// lock before the call fails with [`DbErrorKind::Busy`].
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Read-only connections per handle: enough that the dashboard, the API and the leader's jobs
/// read at once on a 2-core host; each costs a file descriptor and SQLite's page cache.
pub const READERS: usize = 4;

/// SQLite's clock in milliseconds, as an SQL expression (for stores that keep time on the
/// database's clock). `subsec` needs SQLite 3.42; the bundled one is newer.
pub const NOW_MS: &str = "CAST(unixepoch('subsec') * 1000 AS INTEGER)";

/// SQLite's clock, read on `conn`.
pub fn now_ms(conn: &Connection) -> rusqlite::Result<Millis> {
    conn.query_row(&format!("SELECT {NOW_MS}"), [], |r| r.get(0))
}

/// What a store creates in its database, passed to [`Db::open`].
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    /// One-column table holding the schema version this store wrote, named by the store so
    /// that several stores may share one file.
    pub version_table: &'static str,
    /// The version this fleetctl writes; a database with a higher one is refused.
    pub version: i64,
    /// `CREATE … IF NOT EXISTS` statements, run in the first transaction of every open.
    pub sql: &'static str,
}

/// Why a database call failed. Each store turns it into its own error with one `From`.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct DbError {
    /// The database file.
    pub path: PathBuf,
    pub kind: DbErrorKind,
    /// SQLite's (or the filesystem's) explanation, with what to do where there is something.
    pub message: String,
}

/// What kind of failure a [`DbError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbErrorKind {
    /// Another connection or process held the lock for longer than [`BUSY_TIMEOUT`].
    Busy,
    /// The file or its directory cannot be created, opened, read or written.
    Io,
    /// The file is not a database, or is damaged.
    Corrupt,
    /// The database was written by a newer fleetctl.
    NewerSchema,
    /// A statement failed for another reason, or the blocking task died.
    Other,
}

impl DbError {
    fn new(path: &Path, kind: DbErrorKind, message: impl Into<String>) -> DbError {
        DbError {
            path: path.to_path_buf(),
            kind,
            message: message.into(),
        }
    }

    fn sql(path: &Path, e: rusqlite::Error) -> DbError {
        let kind = match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => DbErrorKind::Busy,
            Some(
                ErrorCode::CannotOpen
                | ErrorCode::SystemIoFailure
                | ErrorCode::DiskFull
                | ErrorCode::PermissionDenied
                | ErrorCode::ReadOnly
                | ErrorCode::FileLockingProtocolFailed
                | ErrorCode::NoLargeFileSupport,
            ) => DbErrorKind::Io,
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => DbErrorKind::Corrupt,
            _ => DbErrorKind::Other,
        };
        let message = match kind {
            DbErrorKind::Busy => format!(
                "{e} (still locked by another connection after {BUSY_TIMEOUT:?}; retry later)"
            ),
            _ => e.to_string(),
        };
        DbError::new(path, kind, message)
    }
}

pub type DbResult<T> = Result<T, DbError>;

/// An open database: one writer connection and a pool of readers. Cheap to clone; clones share
/// the connections.
#[derive(Clone)]
pub struct Db {
    path: PathBuf,
    /// The only connection that writes; SQLite allows one writer at a time anyway, and taking
    /// turns here means this process never makes itself busy.
    writer: Arc<tokio::sync::Mutex<Connection>>,
    readers: Arc<ReadPool>,
    /// How long a write waits for another process's write lock.
    busy_timeout: Duration,
}

/// At most [`READERS`] reads at once, each on a connection of its own.
struct ReadPool {
    permits: Arc<Semaphore>,
    /// Connections not in use. Fewer than the permits until first use, or after a read
    /// panicked with its connection; [`ReadPool::take`] opens a new one then.
    idle: Mutex<Vec<Connection>>,
}

impl Db {
    /// Open (creating it and its directory if absent) the database at `path` and bring it to
    /// `schema`.
    pub async fn open(path: &Path, schema: Schema) -> DbResult<Db> {
        Db::open_with(path, schema, BUSY_TIMEOUT).await
    }

    async fn open_with(path: &Path, schema: Schema, busy_timeout: Duration) -> DbResult<Db> {
        let p = path.to_path_buf();
        let writer = blocking(path, move || open_writer(&p, schema, busy_timeout)).await?;
        Ok(Db {
            path: path.to_path_buf(),
            writer: Arc::new(tokio::sync::Mutex::new(writer)),
            readers: Arc::new(ReadPool {
                permits: Arc::new(Semaphore::new(READERS)),
                idle: Mutex::new(Vec::with_capacity(READERS)),
            }),
            busy_timeout,
        })
    }

    /// The database file, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `f` on a read-only connection, in one read transaction (one snapshot). Reads run
    /// side by side, and while a write transaction is open.
    pub async fn read<T, F>(&self, f: F) -> DbResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let permit = Arc::clone(&self.readers.permits)
            .acquire_owned()
            .await
            .expect("the read semaphore is never closed");
        let (readers, path, busy) = (
            Arc::clone(&self.readers),
            self.path.clone(),
            self.busy_timeout,
        );
        blocking(&self.path, move || {
            let _permit = permit;
            let conn = readers.take(&path, busy)?;
            let result = (|| {
                let tx = conn.unchecked_transaction()?;
                let value = f(&tx)?;
                tx.commit()?;
                Ok(value)
            })();
            readers.put(conn);
            result.map_err(|e| DbError::sql(&path, e))
        })
        .await
    }

    /// Run `f` in one `BEGIN IMMEDIATE` transaction on the writer connection and commit it;
    /// an error from `f` rolls it back. A busy `BEGIN` is retried with backoff until the busy
    /// timeout; `f` runs once.
    pub async fn write<T, F>(&self, f: F) -> DbResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction) -> rusqlite::Result<T> + Send + 'static,
    {
        let mut conn = Arc::clone(&self.writer).lock_owned().await;
        let (path, busy) = (self.path.clone(), self.busy_timeout);
        blocking(&self.path, move || {
            let deadline = Instant::now() + busy;
            let mut f = Some(f);
            retry_busy(deadline, || {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let f = f.take().expect("the transaction began, so this runs once");
                let value = f(&tx)?;
                tx.commit()?;
                Ok(value)
            })
            .map_err(|e| DbError::sql(&path, e))
        })
        .await
    }
}

impl ReadPool {
    fn take(&self, path: &Path, busy_timeout: Duration) -> DbResult<Connection> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => open_reader(path, busy_timeout).map_err(|e| DbError::sql(path, e)),
        }
    }

    fn put(&self, conn: Connection) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
    }
}

/// Run `f` on the blocking pool; a task that panicked or was cancelled is an error, not a
/// panic of the caller.
async fn blocking<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> DbResult<T> + Send + 'static,
) -> DbResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        DbError::new(
            path,
            DbErrorKind::Other,
            format!("database task failed: {e}"),
        )
    })?
}

/// Call `attempt` until it succeeds, fails with something other than busy, or `deadline`
/// passes. For the busy answers SQLite gives without waiting in its busy handler.
fn retry_busy<T>(
    deadline: Instant,
    mut attempt: impl FnMut() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let mut pause = Duration::from_millis(5);
    loop {
        match attempt() {
            Err(e) if is_busy(&e) && Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Open the writer: create the directory, switch to WAL, create the schema and check its
/// version, retrying the whole sequence while SQLite answers busy.
fn open_writer(path: &Path, schema: Schema, busy_timeout: Duration) -> DbResult<Connection> {
    let dir = path.parent().unwrap_or(Path::new(""));
    // Before creating anything: a database on NFS or SMB must not come into existence at all.
    crate::store::fs::refuse_network_filesystem(dir, "SQLite database")
        .map_err(|e| DbError::new(path, DbErrorKind::Io, e.to_string()))?;
    if !dir.as_os_str().is_empty() {
        std::fs::create_dir_all(dir).map_err(|e| {
            DbError::new(
                path,
                DbErrorKind::Io,
                format!("cannot create directory {}: {e}", dir.display()),
            )
        })?;
    }
    let deadline = Instant::now() + busy_timeout;
    let (conn, found) = retry_busy(deadline, || {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(busy_timeout)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                Some(format!(
                    "cannot switch to WAL journal mode (got {mode}); is the file on a \
                     filesystem without shared memory support?"
                )),
            ));
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Overwrite the bytes of a deleted or rewritten row where that costs no extra I/O, so
        // a record re-sealed under encryption at rest leaves no plaintext copy in its page.
        conn.pragma_update(None, "secure_delete", "FAST")?;
        let found = init_schema(&mut conn, schema)?;
        Ok((conn, found))
    })
    .map_err(|e| DbError::sql(path, e))?;
    match found {
        Some(v) if v > schema.version => Err(DbError::new(
            path,
            DbErrorKind::NewerSchema,
            format!(
                "schema version {v} was written by a newer fleetctl (this one knows {}); \
                 upgrade fleetctl",
                schema.version
            ),
        )),
        _ => Ok(conn),
    }
}

/// Create the schema and record its version if none is recorded; returns the version found.
fn init_schema(conn: &mut Connection, schema: Schema) -> rusqlite::Result<Option<i64>> {
    let table = schema.version_table;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (version INTEGER NOT NULL);\n{}",
        schema.sql
    ))?;
    let found: Option<i64> =
        tx.query_row(&format!("SELECT max(version) FROM {table}"), [], |r| {
            r.get(0)
        })?;
    if found.is_none() {
        tx.execute(
            &format!("INSERT INTO {table} (version) VALUES (?1)"),
            [schema.version],
        )?;
    }
    tx.commit()?;
    Ok(found)
}

/// A read-only connection on a database the writer has already brought to WAL and its schema.
fn open_reader(path: &Path, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(busy_timeout)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: Schema = Schema {
        version_table: "t_schema_version",
        version: 1,
        sql: "CREATE TABLE IF NOT EXISTS t (x INTEGER NOT NULL);",
    };

    fn count(c: &Connection) -> rusqlite::Result<i64> {
        c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
    }

    /// Many handles opening one new file at the same instant all succeed.
    #[test]
    fn concurrent_first_opens_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("x.db");
        let barrier = Arc::new(std::sync::Barrier::new(16));
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap();
                    barrier.wait();
                    rt.block_on(async {
                        let db = Db::open(&path, SCHEMA).await?;
                        db.write(|tx| tx.execute("INSERT INTO t VALUES (1)", []))
                            .await
                    })
                    .map_err(|e| e.to_string())
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let rows = rt.block_on(async { Db::open(&path, SCHEMA).await?.read(count).await });
        assert_eq!(rows.unwrap(), 16);
    }

    #[tokio::test]
    async fn reads_proceed_while_a_write_transaction_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("x.db"), SCHEMA).await.unwrap();
        let (inside_tx, inside_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let writer = tokio::spawn({
            let db = db.clone();
            async move {
                db.write(move |tx| {
                    tx.execute("INSERT INTO t VALUES (1)", [])?;
                    inside_tx.send(()).unwrap();
                    go_rx.recv().unwrap();
                    Ok(())
                })
                .await
            }
        });
        tokio::task::spawn_blocking(move || inside_rx.recv().unwrap())
            .await
            .unwrap();

        // Several reads at once, all while the write transaction is still open: they see the
        // last committed state.
        let reads = futures::future::join_all((0..READERS * 2).map(|_| db.read(count)));
        let seen = tokio::time::timeout(Duration::from_secs(2), reads)
            .await
            .expect("reads waited for the open write transaction");
        assert!(seen.into_iter().all(|n| n.unwrap() == 0));

        go_tx.send(()).unwrap();
        writer.await.unwrap().unwrap();
        assert_eq!(db.read(count).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_write_waits_for_another_process_lock_then_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let db = Db::open(&path, SCHEMA).await.unwrap();
        // Another process (here: a plain connection) holds the write lock for a while.
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let holder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            other.execute_batch("COMMIT").unwrap();
        });
        let started = Instant::now();
        db.write(|tx| tx.execute("INSERT INTO t VALUES (1)", []))
            .await
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(250));
        holder.join().unwrap();
        assert_eq!(db.read(count).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_lock_held_past_the_busy_timeout_is_a_busy_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let db = Db::open_with(&path, SCHEMA, Duration::from_millis(200))
            .await
            .unwrap();
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let err = db
            .write(|tx| tx.execute("INSERT INTO t VALUES (1)", []))
            .await
            .unwrap_err();
        assert_eq!(err.kind, DbErrorKind::Busy);
        assert_eq!(err.path, path);
        assert!(err.to_string().contains("retry later"), "{err}");
        other.execute_batch("ROLLBACK").unwrap();
        // Nothing was left half-done: the next write goes through.
        db.write(|tx| tx.execute("INSERT INTO t VALUES (1)", []))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_error_in_a_write_rolls_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("x.db"), SCHEMA).await.unwrap();
        let err = db
            .write(|tx| {
                tx.execute("INSERT INTO t VALUES (1)", [])?;
                tx.execute("INSERT INTO no_such_table VALUES (1)", [])
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind, DbErrorKind::Other);
        assert_eq!(db.read(count).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn reads_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("x.db"), SCHEMA).await.unwrap();
        let err = db
            .read(|c| c.execute("INSERT INTO t VALUES (1)", []))
            .await
            .unwrap_err();
        assert_eq!(err.kind, DbErrorKind::Io, "{err}");
    }

    #[tokio::test]
    async fn a_database_from_a_newer_fleetctl_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        Db::open(&path, SCHEMA).await.unwrap();
        Connection::open(&path)
            .unwrap()
            .execute("UPDATE t_schema_version SET version = 9", [])
            .unwrap();
        let err = Db::open(&path, SCHEMA).await.err().unwrap();
        assert_eq!(err.kind, DbErrorKind::NewerSchema);
        assert!(err.message.contains("upgrade fleetctl"), "{err}");
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_database_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        let err = Db::open(&path, SCHEMA).await.err().unwrap();
        assert_eq!(err.kind, DbErrorKind::Corrupt, "{err}");
    }
}
