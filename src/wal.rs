//! Opening a SQLite database the way all three SQLite stores (cluster registry, sessions, fleet
//! data) need it: WAL journal, a busy timeout, `synchronous = NORMAL`, and the store's own
//! schema — robust against several processes opening the same new file at the same moment.
//!
//! Why a retry loop on top of `busy_timeout`: SQLite does not call the busy handler in every
//! contended case. Switching a fresh file to WAL and a first schema write that has to upgrade
//! a stale read snapshot both fail with `SQLITE_BUSY` at once (deadlock avoidance), which is
//! exactly what happens when three nodes start together. Those cases are safe to retry from
//! the top. This module never spells a table: each store passes its schema as `init`.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode};

/// How long an open (and any later statement) waits for another process's lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Open `path` (creating its directory), switch it to WAL and run `init` (schema creation),
/// retrying the whole sequence while SQLite answers busy/locked, for up to [`BUSY_TIMEOUT`].
pub fn open(
    path: &Path,
    mut init: impl FnMut(&mut Connection) -> rusqlite::Result<()>,
) -> rusqlite::Result<Connection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // A directory that cannot be created surfaces as SQLite's "unable to open database
        // file" below, with the path in the caller's message.
        let _ = std::fs::create_dir_all(dir);
    }
    let deadline = Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(5);
    loop {
        match try_open(path, &mut init) {
            Err(e) if is_busy(&e) && Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

fn try_open(
    path: &Path,
    init: &mut impl FnMut(&mut Connection) -> rusqlite::Result<()>,
) -> rusqlite::Result<Connection> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(format!(
                "cannot switch to WAL journal mode (got {mode}); is the file on a filesystem without shared memory support?"
            )),
        ));
    }
    // In WAL mode NORMAL can lose the last commits on power loss, never consistency.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    init(&mut conn)?;
    Ok(conn)
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many connections opening one new file at the same instant all succeed.
    #[test]
    fn concurrent_first_opens_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("x.db");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(16));
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    open(&path, |c| {
                        c.execute_batch("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
                    })
                    .map(|_| ())
                    .map_err(|e| e.to_string())
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
    }
}
