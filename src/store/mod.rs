//! The storage infrastructure every backend shares: how to reach Redis, SQLite and the
//! filesystem, written once. The cluster registry (`cluster::ClusterBackend`), the session
//! store (`sessions::SessionStore`) and the fleet store (`fleet::FleetStore`) keep only their
//! own keys, SQL and logic; connections, deadlines, transactions, atomic writes and backoff
//! live here.
//!
//! - `batch`: group commit, so writes that arrive together share one store call.
//! - `redis`: one Redis handle for the three Redis backends.
//! - `sqlite`: one [`sqlite::Db`] (WAL, `BEGIN IMMEDIATE` writes with busy retry, a pool of
//!   read-only connections, schema-version check) and one [`sqlite::DbError`].
//! - `postgres`: one [`postgres::Pg`] pool (deadlines on every call, versioned migrations
//!   under an advisory lock, the database's clock) and one [`postgres::PgError`].
//! - `fs`: one atomic file replace (temp file, fsync, rename, fsync of the directory), one
//!   exclusive file lock with a timeout, and the clean-up of temp files left by a crash.
//! - `crypto`: the [`crypto::Keyring`] of `security.encryption_key_file` and the sealed
//!   envelope stores write for secret fields.
//! - `time`: the crate's one [`time::Millis`] and its RFC 3339 forms.
//! - `unreadable`: one warning per unreadable record, not one per read.
//!
//! What this layer must never do: know a store's tables, keys or file names (each backend
//! passes its own), choose a backend (each trait's `open` does), or block the async runtime
//! (the async entry points run their work on `spawn_blocking`; the `fs` functions are
//! blocking and are called from there).

pub mod batch;
pub mod crypto;
pub mod fs;
pub mod postgres;
pub mod redis;
pub mod sqlite;
pub mod time;
pub mod unreadable;

/// One page of a store's export for `fleetctl migrate`: the records read, the records that
/// could not be read (named, with why: sealed with a key not in the keyring, corrupt), so
/// migrate can report them instead of dropping them, and the opaque cursor for the next page
/// (`None` when the export is complete).
#[derive(Debug, Clone, PartialEq)]
pub struct ExportPage<T> {
    pub records: Vec<T>,
    pub unreadable: Vec<String>,
    pub next: Option<String>,
}

/// rustls needs one process-wide crypto provider when more than one is compiled in (reqwest
/// and redis pull in different defaults); install aws-lc-rs once, before the first TLS config.
pub fn ensure_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means another part of the process installed one first, which is just as good.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}
