//! `fleetctl migrate`: copy what users and agents would miss from the backends one config
//! names to those another names — login sessions (nobody is logged out), API key usage, and
//! the fleet data (machine records with every history tier) — in resumable batches, then
//! verify both sides by count and checksum.
//!
//! This module owns the copy plan, its checkpoint file and the verification digests. It
//! moves records only through the store traits (`SessionStore::export`/`import`,
//! `FleetStore::export_machines`/`import_machines`/`import_key_usage`), so it never spells a
//! key or a table, and every import is an idempotent merge: rerunning a copy, or resuming one
//! killed halfway, never double-counts.
//!
//! The node registry is deliberately not copied: its timestamps are on the old backend's
//! clock, and live nodes register again within one heartbeat on the new backend.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{BackendKind, Config, Loaded, SessionsConfig, StorageConfig};
use crate::exit::UsageError;
use crate::fleet::{self, FleetStore};
use crate::sessions::{self, SessionStore};
use crate::store::crypto::AtRest;
use crate::store::redis::{RedisEndpoint, RedisTarget};

/// What migrate copies, in the order it copies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Keyspace {
    Sessions,
    ApiKeyUsage,
    Machines,
}

pub const KEYSPACES: [Keyspace; 3] = [
    Keyspace::Sessions,
    Keyspace::ApiKeyUsage,
    Keyspace::Machines,
];

impl Keyspace {
    pub fn as_str(self) -> &'static str {
        match self {
            Keyspace::Sessions => "sessions",
            Keyspace::ApiKeyUsage => "api_key_usage",
            Keyspace::Machines => "machines",
        }
    }

    fn next(self) -> Option<Keyspace> {
        let i = KEYSPACES.iter().position(|k| *k == self)?;
        KEYSPACES.get(i + 1).copied()
    }
}

impl std::fmt::Display for Keyspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stores of one config file, opened with its keyring as `serve` opens them.
pub struct Side {
    /// The config file, as given, for messages.
    pub path: PathBuf,
    pub config: Config,
    pub sessions: Arc<dyn SessionStore>,
    pub fleet: Arc<dyn FleetStore>,
}

/// Refuse `--from` and `--to` naming one file (under two spellings or not).
pub fn refuse_same_file(from: &Path, to: &Path) -> Result<(), UsageError> {
    if absolute(from) == absolute(to) {
        return Err(UsageError(format!(
            "--from {} and --to {} are the same config file: migrate copies between the \
             backends of two different configs",
            from.display(),
            to.display()
        )));
    }
    Ok(())
}

/// Load a config with the loader `serve` uses (validated, errors with file:line:col).
pub fn load_config(path: &Path, flag: &str) -> anyhow::Result<Config> {
    if !path.exists() {
        return Err(UsageError(format!("{flag} {}: no such config file", path.display())).into());
    }
    let loaded = Loaded::from_file(path).with_context(|| format!("{flag} {}", path.display()))?;
    for w in &loaded.warnings {
        tracing::warn!("{flag} config: {w}");
    }
    Ok(loaded.config)
}

impl Side {
    /// Open both stores of `config`. A source (`must_exist`) must not be an SQLite file or
    /// session directory that does not exist yet: opening it would create an empty store and
    /// "copy" nothing, which is almost always a wrong path.
    pub async fn open(path: &Path, config: Config, must_exist: bool) -> anyhow::Result<Side> {
        if must_exist {
            for (what, p) in source_paths(&config) {
                if !p.exists() {
                    return Err(UsageError(format!(
                        "--from {}: {what} {} does not exist; is this the config the old \
                         nodes run with?",
                        path.display(),
                        p.display()
                    ))
                    .into());
                }
            }
        }
        let at_rest = AtRest::from_key_file(config.security.encryption_key_file.as_deref())
            .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
        let sessions = sessions::open_with(&config.sessions, at_rest.clone())
            .await
            .with_context(|| {
                format!(
                    "cannot open the {} session store of {}",
                    config.sessions.backend,
                    path.display()
                )
            })?;
        let fleet = fleet::open_with(&config.storage, at_rest)
            .await
            .map_err(|e| match e {
                fleet::StoreError::Config(m) => {
                    anyhow::Error::new(UsageError(format!("{}: {m}", path.display())))
                }
                other => anyhow::Error::new(other),
            })
            .with_context(|| {
                format!(
                    "cannot open the {} fleet store of {}",
                    config.storage.backend,
                    path.display()
                )
            })?;
        Ok(Side {
            path: path.to_path_buf(),
            config,
            sessions,
            fleet,
        })
    }
}

/// Files and directories a source config's stores live in (SQLite and file backends).
fn source_paths(config: &Config) -> Vec<(&'static str, PathBuf)> {
    let mut out = Vec::new();
    match config.sessions.backend {
        BackendKind::Sqlite => out.push(("sessions.db_path", config.sessions.db_path.clone())),
        BackendKind::File => {
            out.push(("sessions.session_dir", config.sessions.session_dir.clone()))
        }
        BackendKind::Redis | BackendKind::Postgres => {}
    }
    if config.storage.backend == BackendKind::Sqlite {
        out.push(("storage.db_path", config.storage.db_path.clone()));
    }
    out
}

/// Where a session store lives, so two configs naming the same one are recognised.
pub fn sessions_identity(c: &SessionsConfig) -> String {
    match c.backend {
        BackendKind::Sqlite => format!("sqlite file {}", absolute(&c.db_path).display()),
        BackendKind::File => format!("session directory {}", absolute(&c.session_dir).display()),
        BackendKind::Redis => redis_identity(&RedisEndpoint::sessions(c)),
        BackendKind::Postgres => crate::store::postgres::identity(&c.postgres),
    }
}

/// Where a fleet store lives, so two configs naming the same one are recognised.
pub fn storage_identity(c: &StorageConfig) -> String {
    match c.backend {
        BackendKind::Redis => redis_identity(&RedisEndpoint::storage(c)),
        BackendKind::Postgres => crate::store::postgres::identity(&c.postgres),
        _ => format!("sqlite file {}", absolute(&c.db_path).display()),
    }
}

fn redis_identity(e: &RedisEndpoint) -> String {
    match &e.target {
        RedisTarget::Direct { host, port } => {
            let host = match host.as_str() {
                "localhost" | "::1" | "[::1]" => "127.0.0.1",
                h => h,
            };
            format!("redis {host}:{port} db {}", e.db)
        }
        RedisTarget::Sentinel { master_name, .. } => {
            format!("redis sentinel master {master_name} db {}", e.db)
        }
    }
}

/// `p` made absolute and with symlinks resolved as far as it exists (a destination file
/// may not exist yet).
fn absolute(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    match (p.parent(), p.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            absolute(parent).join(name)
        }
        _ => std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf()),
    }
}

/// Refuse to copy a store onto itself: the merge would be a no-op at best, and a wrong
/// config pair is what the user must fix.
pub fn refuse_same_store(from: &Config, to: &Config) -> Result<(), UsageError> {
    let pairs = [
        (
            "sessions",
            sessions_identity(&from.sessions),
            sessions_identity(&to.sessions),
        ),
        (
            "storage",
            storage_identity(&from.storage),
            storage_identity(&to.storage),
        ),
    ];
    for (section, a, b) in pairs {
        if a == b {
            return Err(UsageError(format!(
                "--from and --to name the same {section} store ({a}): migrate copies between \
                 two different stores; check the `{section}:` sections of both configs"
            )));
        }
    }
    Ok(())
}

/// The checkpoint file: which configs it belongs to and how far the copy got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    /// Absolute paths of the `--from` and `--to` configs.
    pub from: PathBuf,
    pub to: PathBuf,
    /// The keyspace being copied, and the export cursor after the last committed batch
    /// (`None`: from its start).
    pub keyspace: Keyspace,
    pub cursor: Option<String>,
    /// The whole copy finished; the next run starts a fresh pass.
    pub done: bool,
    /// Records written per keyspace in this pass.
    pub copied: BTreeMap<Keyspace, u64>,
    /// Records that could not be read from the source in this pass.
    pub unreadable: Vec<String>,
    /// When this pass started (this host's clock, ms).
    #[serde(default)]
    pub pass_started_at: i64,
    /// When the previous completed pass for this pair started, if there was one: a session
    /// created before then that the destination no longer has was copied and has ended there
    /// since (logout, revoke, expiry), so this pass does not bring it back.
    #[serde(default)]
    pub previous_pass_started_at: Option<i64>,
    /// Sessions this pass did not copy for that reason.
    #[serde(default)]
    pub ended_on_destination: u64,
}

const STATE_VERSION: u32 = 1;

impl State {
    pub fn fresh(from: &Path, to: &Path) -> State {
        State {
            version: STATE_VERSION,
            from: absolute(from),
            to: absolute(to),
            keyspace: Keyspace::Sessions,
            cursor: None,
            done: false,
            copied: BTreeMap::new(),
            unreadable: Vec::new(),
            pass_started_at: crate::store::time::now_millis(),
            previous_pass_started_at: None,
            ended_on_destination: 0,
        }
    }

    /// The default checkpoint file: next to the `--to` config.
    pub fn default_path(to: &Path) -> PathBuf {
        let mut name = to.file_name().unwrap_or_default().to_os_string();
        name.push(".migrate-state.json");
        to.with_file_name(name)
    }

    /// The state to continue from: the one in `path` when it belongs to this pair of configs
    /// and is not done, else a fresh one. A state of another pair is refused.
    pub fn resume_or_fresh(path: &Path, from: &Path, to: &Path) -> anyhow::Result<(State, bool)> {
        let fresh = State::fresh(from, to);
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((fresh, false)),
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("cannot read the state file {}", path.display())));
            }
        };
        let stored: State = serde_json::from_slice(&bytes).map_err(|e| {
            UsageError(format!(
                "state file {} is not a migrate state ({e}); pass --restart to overwrite it or \
                 --state to use another file",
                path.display()
            ))
        })?;
        if stored.from != fresh.from || stored.to != fresh.to {
            return Err(UsageError(format!(
                "state file {} belongs to the migration from {} to {}, not from {} to {}; \
                 pass --state FILE for this pair, or --restart to start over and overwrite it",
                path.display(),
                stored.from.display(),
                stored.to.display(),
                fresh.from.display(),
                fresh.to.display()
            ))
            .into());
        }
        if stored.done {
            Ok((
                State {
                    previous_pass_started_at: Some(stored.pass_started_at),
                    ..fresh
                },
                false,
            ))
        } else {
            Ok((stored, true))
        }
    }

    /// Write the state atomically: after a crash the file holds this state or the previous
    /// one, never half of one.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).context("cannot encode the migrate state")?;
        let path = path.to_path_buf();
        crate::store::fs::write_atomic(&path, &bytes)
            .with_context(|| format!("cannot write the state file {}", path.display()))
    }
}

/// How far one keyspace has got, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub keyspace: Keyspace,
    /// Records read from the source so far in this pass (readable or not).
    pub done: u64,
    /// Records the source held when the keyspace started (an estimate for live stores).
    pub total: u64,
    /// The keyspace is complete.
    pub finished: bool,
}

/// Records per keyspace in `side`, as `--dry-run` shows and progress bars use.
pub async fn count(side: &Side, keyspace: Keyspace) -> anyhow::Result<u64> {
    Ok(match keyspace {
        Keyspace::Sessions => side
            .sessions
            .count()
            .await
            .context("cannot count the sessions")?,
        Keyspace::ApiKeyUsage => {
            let page = side
                .fleet
                .export_key_usage()
                .await
                .context("cannot read the API key usage")?;
            (page.records.len() + page.unreadable.len()) as u64
        }
        Keyspace::Machines => {
            let snap = side
                .fleet
                .machines()
                .await
                .context("cannot count the machines")?;
            (snap.machines.len() + snap.problems.len()) as u64
        }
    })
}

/// Copy every keyspace from `state.keyspace`/`state.cursor` on, `batch` records at a time,
/// saving `state` to `state_path` after every committed batch and marking it done at the
/// end. `progress` is called after every batch.
pub async fn copy(
    from: &Side,
    to: &Side,
    batch: usize,
    state: &mut State,
    state_path: &Path,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> anyhow::Result<()> {
    let mut keyspace = Some(state.keyspace);
    // Sessions the destination has now; only needed to tell an ended session from a new one.
    let mut on_destination: Option<std::collections::HashSet<String>> = None;
    while let Some(ks) = keyspace {
        if ks == Keyspace::Sessions && state.previous_pass_started_at.is_some() {
            on_destination = Some(session_ids(to, batch).await?);
        }
        let total = count(from, ks).await?;
        let mut done = *state.copied.get(&ks).unwrap_or(&0);
        progress(Progress {
            keyspace: ks,
            done,
            total: total.max(done),
            finished: false,
        });
        loop {
            let cursor = state.cursor.clone();
            let (read, written, unreadable, next) = match ks {
                Keyspace::Sessions => {
                    let page = from
                        .sessions
                        .export(cursor, batch)
                        .await
                        .context("cannot read sessions from the --from store")?;
                    let read = page.records.len();
                    let mut records = page.records;
                    if let (Some(ids), Some(previous)) =
                        (&on_destination, state.previous_pass_started_at)
                    {
                        let before = records.len();
                        records.retain(|r| {
                            ids.contains(&r.id_hash) || r.session.created_at >= previous
                        });
                        state.ended_on_destination += (before - records.len()) as u64;
                    }
                    let written = to
                        .sessions
                        .import(records)
                        .await
                        .context("cannot write sessions to the --to store")?;
                    (read, written, page.unreadable, page.next)
                }
                Keyspace::ApiKeyUsage => {
                    // One entry per API key: a few, in one batch.
                    let page = from
                        .fleet
                        .export_key_usage()
                        .await
                        .context("cannot read API key usage from the --from store")?;
                    let read = page.records.len();
                    to.fleet
                        .import_key_usage(page.records)
                        .await
                        .context("cannot write API key usage to the --to store")?;
                    (read, read as u64, page.unreadable, None)
                }
                Keyspace::Machines => {
                    let page = from
                        .fleet
                        .export_machines(cursor, batch)
                        .await
                        .context("cannot read machines from the --from store")?;
                    let read = page.records.len();
                    let written = to
                        .fleet
                        .import_machines(page.records)
                        .await
                        .context("cannot write machines to the --to store")?;
                    (read, written, page.unreadable, page.next)
                }
            };
            done += (read + unreadable.len()) as u64;
            *state.copied.entry(ks).or_insert(0) += written;
            state.unreadable.extend(unreadable);
            state.cursor = next;
            if state.cursor.is_none() {
                // The keyspace is complete: the checkpoint moves on to the next one.
                match ks.next() {
                    Some(n) => state.keyspace = n,
                    None => state.done = true,
                }
            }
            state.save(state_path)?;
            progress(Progress {
                keyspace: ks,
                done,
                total: total.max(done),
                finished: state.cursor.is_none(),
            });
            if state.cursor.is_none() {
                break;
            }
        }
        keyspace = if state.done { None } else { ks.next() };
    }
    Ok(())
}

/// The id hashes of every live session of `side`.
async fn session_ids(
    side: &Side,
    batch: usize,
) -> anyhow::Result<std::collections::HashSet<String>> {
    let mut ids = std::collections::HashSet::new();
    let mut cursor = None;
    loop {
        let page = side
            .sessions
            .export(cursor, batch)
            .await
            .context("cannot list the sessions of the --to store")?;
        ids.extend(page.records.into_iter().map(|r| r.id_hash));
        cursor = page.next;
        if cursor.is_none() {
            return Ok(ids);
        }
    }
}

/// One side of a keyspace's verification.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Digested {
    pub count: u64,
    /// SHA-256 (hex) over `id \t sha256(record) \n` for every record, sorted by id; a record
    /// is its canonical JSON (the struct's field order, data as stored).
    pub sha256: String,
    /// Records that could not be read.
    pub unreadable: Vec<String>,
    /// Per id: the record's freshness stamp (`last_seen`, `last_used`) and, for sessions,
    /// when it was created.
    #[serde(skip)]
    stamps: BTreeMap<String, (i64, Option<i64>)>,
}

/// Both sides of a keyspace's verification.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub keyspace: Keyspace,
    pub from: Digested,
    pub to: Digested,
    /// Same count and checksum on both sides.
    pub equal: bool,
    /// Source records missing on the destination or older there: what a `--live` check
    /// requires to be 0 while the destination already serves and moves ahead.
    pub behind: u64,
}

/// How close to aging out of its tier a history point may be and still count in a digest:
/// longer than a verification takes.
const AGING_MARGIN_MS: i64 = 5 * 60_000;

/// Digest of one keyspace of `side`, relative to `cutoff`, the same instant for both sides.
/// Sessions are digested as they are opened (in the clear: the ciphertext differs per
/// write) and only those still live at `cutoff`; history points only while they are more
/// than [`AGING_MARGIN_MS`] from aging out of their tier at `cutoff`. So a session expiring
/// or a point aging out between the two reads is not a difference. Nothing in a digest
/// changes by being read: exports do not touch sessions.
pub async fn digest(
    side: &Side,
    keyspace: Keyspace,
    batch: usize,
    cutoff: i64,
) -> anyhow::Result<Digested> {
    let mut lines: BTreeMap<String, (i64, Option<i64>, [u8; 32])> = BTreeMap::new();
    let mut unreadable = Vec::new();
    match keyspace {
        Keyspace::Sessions => {
            let mut cursor = None;
            loop {
                let page = side.sessions.export(cursor, batch).await.with_context(|| {
                    format!("cannot read the sessions of {}", side.path.display())
                })?;
                for r in page.records {
                    if r.session.expires_at > cutoff {
                        let h = record_hash(&r)?;
                        lines.insert(
                            r.id_hash.clone(),
                            (r.session.last_seen, Some(r.session.created_at), h),
                        );
                    }
                }
                unreadable.extend(page.unreadable);
                cursor = page.next;
                if cursor.is_none() {
                    break;
                }
            }
        }
        Keyspace::ApiKeyUsage => {
            let page = side.fleet.export_key_usage().await.with_context(|| {
                format!("cannot read the API key usage of {}", side.path.display())
            })?;
            unreadable.extend(page.unreadable);
            for u in page.records {
                let h = record_hash(&u)?;
                lines.insert(u.name.clone(), (u.last_used, None, h));
            }
        }
        Keyspace::Machines => {
            let mut cursor = None;
            loop {
                let page = side
                    .fleet
                    .export_machines(cursor, batch)
                    .await
                    .with_context(|| {
                        format!("cannot read the machines of {}", side.path.display())
                    })?;
                for mut m in page.records {
                    // Points about to age out of their tier may be gone from whichever side
                    // is read second: both sides leave them out.
                    for (points, tier) in m.history.iter_mut().zip(fleet::TIERS.iter()) {
                        let oldest = cutoff - tier.retention_ms + AGING_MARGIN_MS;
                        points.retain(|p| p.t >= oldest);
                    }
                    let h = record_hash(&m)?;
                    lines.insert(m.machine_id.clone(), (m.record.last_seen, None, h));
                }
                unreadable.extend(page.unreadable);
                cursor = page.next;
                if cursor.is_none() {
                    break;
                }
            }
        }
    }
    let mut total = Sha256::new();
    for (id, (_, _, h)) in &lines {
        total.update(id.as_bytes());
        total.update(b"\t");
        total.update(hex::encode(h).as_bytes());
        total.update(b"\n");
    }
    Ok(Digested {
        count: lines.len() as u64,
        sha256: hex::encode(total.finalize()),
        unreadable,
        stamps: lines
            .into_iter()
            .map(|(id, (stamp, created, _))| (id, (stamp, created)))
            .collect(),
    })
}

/// Verify every keyspace: digests of both sides, compared. `ended_before` is the start of
/// the previous completed pass (see [`State::previous_pass_started_at`]): a session created
/// before it and missing on the destination ended there and is not counted as behind.
pub async fn verify(
    from: &Side,
    to: &Side,
    batch: usize,
    ended_before: Option<i64>,
) -> anyhow::Result<Vec<Verification>> {
    // A minute ahead: a session that expires while the two sides are read is left out of
    // both rather than counted on one (and history points likewise, see `digest`).
    let cutoff = crate::store::time::now_millis() + 60_000;
    let mut out = Vec::new();
    for ks in KEYSPACES {
        let a = digest(from, ks, batch, cutoff).await?;
        let b = digest(to, ks, batch, cutoff).await?;
        let behind = a
            .stamps
            .iter()
            .filter(|(id, (stamp, created))| match b.stamps.get(*id) {
                Some((s, _)) => s < stamp,
                None => !matches!((created, ended_before), (Some(c), Some(e)) if *c < e),
            })
            .count() as u64;
        out.push(Verification {
            keyspace: ks,
            equal: a.count == b.count && a.sha256 == b.sha256,
            behind,
            from: a,
            to: b,
        });
    }
    Ok(out)
}

/// The process's peak resident set size in KiB (`VmHWM` of /proc/self/status; Linux only).
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// SHA-256 of a record's canonical JSON.
fn record_hash<T: Serialize>(record: &T) -> anyhow::Result<[u8; 32]> {
    let json = serde_json::to_vec(record).context("cannot encode a record for its checksum")?;
    Ok(Sha256::digest(json).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyspaces_follow_each_other() {
        assert_eq!(Keyspace::Sessions.next(), Some(Keyspace::ApiKeyUsage));
        assert_eq!(Keyspace::ApiKeyUsage.next(), Some(Keyspace::Machines));
        assert_eq!(Keyspace::Machines.next(), None);
    }

    #[test]
    fn default_state_file_sits_next_to_the_new_config() {
        assert_eq!(
            State::default_path(Path::new("/etc/fleet/new.yaml")),
            PathBuf::from("/etc/fleet/new.yaml.migrate-state.json")
        );
    }

    #[test]
    fn same_redis_under_another_name_is_the_same_store() {
        let mut a = Config::default();
        a.sessions.backend = BackendKind::Redis;
        a.sessions.redis.host = "localhost".into();
        let mut b = a.clone();
        b.sessions.redis.host = "127.0.0.1".into();
        b.storage.db_path = PathBuf::from("/elsewhere/fleet.db");
        let err = refuse_same_store(&a, &b).unwrap_err();
        assert!(err.0.contains("same sessions store"), "{}", err.0);
        b.sessions.redis.db = Some(5);
        refuse_same_store(&a, &b).unwrap();
    }

    #[test]
    fn peak_rss_is_read() {
        assert!(peak_rss_kib().unwrap_or(1) > 0);
    }
}
