//! The storage layer under the three store traits (`cluster::ClusterBackend`,
//! `sessions::SessionStore`, `fleet::FleetStore`): how fleetctl talks to a database or a
//! directory, written once, so that each backend file keeps only its keys, SQL and logic.
//!
//! - `sqlite`: one [`sqlite::Db`] (WAL, `BEGIN IMMEDIATE` writes with busy retry, a pool of
//!   read-only connections, schema-version check) and one [`sqlite::DbError`].
//! - `fs`: one atomic file replace (temp file, fsync, rename, fsync of the directory), one
//!   exclusive file lock with a timeout, and the clean-up of temp files left by a crash.
//! - `time`: the crate's one [`time::Millis`] and its RFC 3339 forms.
//!
//! What this layer must never do: know a store's tables, keys or file names (each backend
//! passes its own), choose a backend (each trait's `open` does), or block the async runtime
//! (the async entry points run their work on `spawn_blocking`; the `fs` functions are
//! blocking and are called from there).

pub mod fs;
pub mod sqlite;
pub mod time;
