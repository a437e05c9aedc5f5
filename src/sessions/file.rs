//! The file session store: one JSON file per session in `sessions.session_dir`, named by the
//! SHA-256 of the id. **For development and single-host use only**: listing and revoking scan
//! the whole directory, and sharing the directory between hosts (NFS) gives no guarantee
//! about locking. Use Redis for a cluster.
//!
//! Writes are atomic (`store::fs::Staged`: temp file, fsync, rename, fsync of the directory), so
//! a reader sees the old or the new record, never half of one; temp files a crash left behind
//! are removed at open. Read-check-write operations (create, save, touch, revoke, the
//! login-failure counters) hold an exclusive lock on `<session_dir>/.lock`
//! (`store::fs::FileLock`, with a timeout), so two processes or two store handles never
//! interleave them. Time is this host's clock.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{
    AtRest, ExportPage, GcProgress, Lifetimes, Millis, ProgressFn, ResealCount, Session,
    SessionData, SessionError, SessionId, SessionInfo, SessionResult, SessionStore, fields_current,
    now_millis, open_fields, seal_fields,
};
use crate::config::{BackendKind, SessionsConfig};
use crate::store::fs::{FileLock, Staged, remove_if_exists, remove_stale_temp_files, write_atomic};

/// Session files are `<64 hex>.json`; anything else in the directory is not ours.
const SESSION_SUFFIX: &str = ".json";
const LOCK_FILE: &str = ".lock";
const THROTTLE_DIR: &str = "throttle";

/// Progress is reported every this many files.
const GC_REPORT_EVERY: u64 = 500;
/// How long an operation waits for another process's lock on the directory. Locked sections
/// are a few file operations (GC locks per batch); waiting longer means something is stuck.
const LOCK_TIMEOUT: Duration = Duration::from_secs(5);

pub struct FileStore {
    dir: Arc<PathBuf>,
    lifetimes: Lifetimes,
    /// Seals `csrf_token` and `data` in each file.
    at_rest: AtRest,
}

/// A login-failure counter on disk.
#[derive(Serialize, Deserialize)]
struct Failures {
    failures: u32,
    expires_at: Millis,
}

impl FileStore {
    /// Open `sessions.session_dir`, creating it (mode 0700 on Unix) if needed.
    pub async fn open(config: &SessionsConfig, at_rest: AtRest) -> SessionResult<FileStore> {
        let dir = config.session_dir.clone();
        let d = dir.clone();
        blocking(&dir, move || {
            crate::store::fs::refuse_network_filesystem(&d, "file session store")?;
            fs::create_dir_all(d.join(THROTTLE_DIR))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&d, fs::Permissions::from_mode(0o700))?;
            }
            remove_stale_temp_files(&d)?;
            remove_stale_temp_files(&d.join(THROTTLE_DIR))?;
            Ok(())
        })
        .await?;
        Ok(FileStore {
            dir: Arc::new(dir),
            lifetimes: Lifetimes::from_config(config),
            at_rest,
        })
    }

    /// Run `f` on the blocking pool with the store's directory.
    async fn run<T, F>(&self, f: F) -> SessionResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Path) -> std::io::Result<T> + Send + 'static,
    {
        let dir = self.dir.clone();
        blocking(&self.dir, move || f(&dir)).await
    }
}

async fn blocking<T, F>(dir: &Path, f: F) -> SessionResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> std::io::Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| unavailable(dir, e))?
        .map_err(|e| unavailable(dir, e))
}

fn unavailable(dir: &Path, e: impl std::fmt::Display) -> SessionError {
    SessionError::Unavailable {
        backend: BackendKind::File,
        location: dir.display().to_string(),
        message: e.to_string(),
    }
}

fn session_path(dir: &Path, id_hash: &str) -> PathBuf {
    dir.join(format!("{id_hash}{SESSION_SUFFIX}"))
}

/// The directory-wide write lock, released when the returned lock is dropped.
fn lock(dir: &Path) -> std::io::Result<FileLock> {
    FileLock::acquire(&dir.join(LOCK_FILE), LOCK_TIMEOUT)
}

/// Outcome of reading one session file.
enum Read {
    Missing,
    /// Unreadable: reported already, treated as absent.
    Corrupt,
    Found(Session),
}

/// The session in `path` (`None` when the file is missing), or why it cannot be read.
fn open_session_file(at: &AtRest, path: &Path) -> std::io::Result<Option<Result<Session, String>>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let id_hash = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(SESSION_SUFFIX))
        .unwrap_or_default();
    Ok(Some(
        serde_json::from_slice::<StoredSession>(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|stored| stored.open(at, id_hash)),
    ))
}

fn read_session(at: &AtRest, path: &Path) -> std::io::Result<Read> {
    let Some(decoded) = open_session_file(at, path)? else {
        return Ok(Read::Missing);
    };
    match decoded {
        Ok(s) => Ok(Read::Found(s)),
        Err(e) => {
            crate::store::unreadable::warn(
                &path.display().to_string(),
                &format!(
                    "unreadable session file {}, treating it as absent: {e}",
                    path.display()
                ),
            );
            Ok(Read::Corrupt)
        }
    }
}

/// The live session in `path`, if any.
fn read_live(at: &AtRest, path: &Path, now: Millis) -> std::io::Result<Option<Session>> {
    Ok(match read_session(at, path)? {
        Read::Found(s) if s.expires_at > now => Some(s),
        _ => None,
    })
}

/// Every session file in `dir`: (id hash, path).
fn session_files(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(hash) = name.strip_suffix(SESSION_SUFFIX) else {
            continue;
        };
        if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            out.push((hash.to_owned(), entry.path()));
        }
    }
    Ok(out)
}

/// Live sessions in `dir`, optionally of one user, oldest first.
fn list_live(
    at: &AtRest,
    dir: &Path,
    user: Option<&str>,
    now: Millis,
) -> std::io::Result<Vec<SessionInfo>> {
    let mut out = Vec::new();
    for (id_hash, path) in session_files(dir)? {
        if let Some(session) = read_live(at, &path, now)?
            && user.is_none_or(|u| u == session.user)
        {
            out.push(SessionInfo { id_hash, session });
        }
    }
    out.sort_by_key(|i| i.session.created_at);
    Ok(out)
}

/// A session file: the [`Session`] fields, with `csrf_token` and `data` as the store writes
/// them (sealed envelopes, or plaintext in files written without a key file).
#[derive(Serialize, Deserialize)]
struct StoredSession {
    user: String,
    created_at: Millis,
    last_seen: Millis,
    expires_at: Millis,
    csrf_token: String,
    /// A JSON object in plaintext files, an envelope string in sealed ones.
    data: serde_json::Value,
}

impl StoredSession {
    fn seal(at: &AtRest, id_hash: &str, s: &Session) -> StoredSession {
        let sealed = seal_fields(at, id_hash, &s.csrf_token, &s.data);
        let data = if at.is_enabled() {
            serde_json::Value::String(sealed.data)
        } else {
            serde_json::Value::Object(s.data.clone())
        };
        StoredSession {
            user: s.user.clone(),
            created_at: s.created_at,
            last_seen: s.last_seen,
            expires_at: s.expires_at,
            csrf_token: sealed.csrf_token,
            data,
        }
    }

    fn open(self, at: &AtRest, id_hash: &str) -> Result<Session, String> {
        let data_text = match self.data {
            serde_json::Value::String(envelope) => envelope,
            other => other.to_string(),
        };
        let (csrf_token, data) = open_fields(at, id_hash, &self.csrf_token, &data_text)?;
        Ok(Session {
            user: self.user,
            created_at: self.created_at,
            last_seen: self.last_seen,
            expires_at: self.expires_at,
            csrf_token,
            data,
        })
    }
}

fn encode(at: &AtRest, id_hash: &str, session: &Session) -> Vec<u8> {
    serde_json::to_vec(&StoredSession::seal(at, id_hash, session))
        .expect("a Session always serialises")
}

#[async_trait]
impl SessionStore for FileStore {
    fn backend(&self) -> BackendKind {
        BackendKind::File
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
        let id_hash = id.storage_key();
        let bytes = encode(&self.at_rest, &id_hash, &session);
        let at = self.at_rest.clone();
        let created = self
            .run(move |dir| {
                let target = session_path(dir, &id_hash);
                // Synced before taking the lock: under it, only a check and a rename.
                let staged = Staged::new(&target, &bytes)?;
                let _lock = lock(dir)?;
                if read_live(&at, &target, now)?.is_some() {
                    return Ok(false);
                }
                staged.commit()?;
                Ok(true)
            })
            .await?;
        if created {
            Ok(session)
        } else {
            Err(SessionError::AlreadyExists)
        }
    }

    async fn load(&self, id: &SessionId) -> SessionResult<Option<Session>> {
        let id_hash = id.storage_key();
        let now = now_millis();
        let at = self.at_rest.clone();
        self.run(move |dir| read_live(&at, &session_path(dir, &id_hash), now))
            .await
    }

    async fn save(&self, id: &SessionId, session: &Session) -> SessionResult<Session> {
        let data = session.data.clone();
        let csrf = session.csrf_token.clone();
        self.renew(id, move |stored| {
            stored.data = data;
            stored.csrf_token = csrf;
        })
        .await?
        .ok_or(SessionError::NotFound)
    }

    async fn touch(&self, id: &SessionId) -> SessionResult<Option<Session>> {
        self.renew(id, |_| {}).await
    }

    async fn delete(&self, id: &SessionId) -> SessionResult<bool> {
        let id_hash = id.storage_key();
        let now = now_millis();
        let at = self.at_rest.clone();
        self.run(move |dir| {
            let target = session_path(dir, &id_hash);
            let _lock = lock(dir)?;
            let live = read_live(&at, &target, now)?.is_some();
            remove_if_exists(&target)?;
            Ok(live)
        })
        .await
    }

    async fn delete_expired(&self, progress: ProgressFn<'_>) -> SessionResult<u64> {
        let now = now_millis();
        let files = self.run(session_files).await?;
        let total = files.len() as u64;
        progress(GcProgress { done: 0, total });
        let mut deleted = 0u64;
        for (i, chunk) in files.chunks(GC_REPORT_EVERY as usize).enumerate() {
            let chunk = chunk.to_vec();
            let at = self.at_rest.clone();
            deleted += self
                .run(move |dir| {
                    let _lock = lock(dir)?;
                    let mut n = 0;
                    for (_, path) in chunk {
                        // Corrupt files stay for the operator to inspect; they are reported
                        // and otherwise ignored.
                        if let Read::Found(s) = read_session(&at, &path)?
                            && s.expires_at <= now
                            && remove_if_exists(&path)?
                        {
                            n += 1;
                        }
                    }
                    Ok(n)
                })
                .await?;
            let done = ((i as u64 + 1) * GC_REPORT_EVERY).min(total);
            progress(GcProgress { done, total });
        }
        let throttle_deleted = self
            .run(move |dir| {
                let _lock = lock(dir)?;
                for entry in fs::read_dir(dir.join(THROTTLE_DIR))? {
                    let path = entry?.path();
                    let expired = fs::read(&path)
                        .ok()
                        .and_then(|b| serde_json::from_slice::<Failures>(&b).ok())
                        .is_none_or(|f| f.expires_at <= now);
                    if expired {
                        remove_if_exists(&path)?;
                    }
                }
                Ok(())
            })
            .await;
        throttle_deleted?;
        Ok(deleted)
    }

    async fn list(&self, user: Option<&str>) -> SessionResult<Vec<SessionInfo>> {
        let now = now_millis();
        let user = user.map(str::to_owned);
        let at = self.at_rest.clone();
        self.run(move |dir| list_live(&at, dir, user.as_deref(), now))
            .await
    }

    async fn reseal(&self, progress: ProgressFn<'_>) -> SessionResult<ResealCount> {
        let files = self.run(session_files).await?;
        let total = files.len() as u64;
        progress(GcProgress { done: 0, total });
        let mut count = ResealCount::default();
        for chunk in files.chunks(GC_REPORT_EVERY as usize) {
            let chunk = chunk.to_vec();
            let at = self.at_rest.clone();
            let batch = self
                .run(move |dir| {
                    // Under the directory lock, so a concurrent save is not overwritten.
                    let _lock = lock(dir)?;
                    let mut batch = ResealCount::default();
                    for (id_hash, path) in chunk {
                        let Ok(bytes) = fs::read(&path) else { continue };
                        batch.examined += 1;
                        let Ok(stored) = serde_json::from_slice::<StoredSession>(&bytes) else {
                            batch.unreadable += 1;
                            continue;
                        };
                        let current = match &stored.data {
                            serde_json::Value::String(d) => {
                                fields_current(&at, &stored.csrf_token, d)
                            }
                            _ => !at.is_enabled(),
                        };
                        if current {
                            continue;
                        }
                        match stored.open(&at, &id_hash) {
                            Ok(session) => {
                                write_atomic(&path, &encode(&at, &id_hash, &session))?;
                                batch.resealed += 1;
                            }
                            Err(_) => batch.unreadable += 1,
                        }
                    }
                    Ok(batch)
                })
                .await?;
            count.add(batch);
            progress(GcProgress {
                done: count.examined,
                total: total.max(count.examined),
            });
        }
        Ok(count)
    }

    async fn export(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> SessionResult<ExportPage<SessionInfo>> {
        // The cursor is the last id hash returned: files are exported in name order.
        let now = now_millis();
        let at = self.at_rest.clone();
        let limit = limit.max(1);
        self.run(move |dir| {
            let after = cursor.unwrap_or_default();
            let mut files: Vec<(String, PathBuf)> = session_files(dir)?
                .into_iter()
                .filter(|(h, _)| *h > after)
                .collect();
            files.sort_unstable();
            let more = files.len() > limit;
            files.truncate(limit);
            let mut page = ExportPage {
                records: Vec::with_capacity(files.len()),
                unreadable: Vec::new(),
                next: more.then(|| files.last().map(|(h, _)| h.clone())).flatten(),
            };
            for (id_hash, path) in files {
                match open_session_file(&at, &path)? {
                    Some(Ok(session)) if session.expires_at > now => {
                        page.records.push(SessionInfo { id_hash, session })
                    }
                    Some(Err(why)) => page
                        .unreadable
                        .push(format!("session file {}: {why}", path.display())),
                    _ => {} // expired, or removed since the listing
                }
            }
            Ok(page)
        })
        .await
    }

    async fn import(&self, records: Vec<SessionInfo>) -> SessionResult<u64> {
        let at = self.at_rest.clone();
        self.run(move |dir| {
            let _lock = lock(dir)?;
            let mut n = 0;
            for r in &records {
                let target = session_path(dir, &r.id_hash);
                // Only the stored `last_seen` matters here, so a record this keyring cannot
                // open is still compared (and replaced) rather than skipped.
                let stored_seen = fs::read(&target)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<StoredSession>(&b).ok())
                    .map(|s| s.last_seen);
                if stored_seen.is_some_and(|seen| seen > r.session.last_seen) {
                    continue;
                }
                write_atomic(&target, &encode(&at, &r.id_hash, &r.session))?;
                n += 1;
            }
            Ok(n)
        })
        .await
    }

    async fn revoke_user(&self, user: &str) -> SessionResult<u64> {
        let user = user.to_owned();
        let at = self.at_rest.clone();
        self.run(move |dir| {
            let _lock = lock(dir)?;
            let now = now_millis();
            let mut n = 0;
            for (_, path) in session_files(dir)? {
                if let Read::Found(s) = read_session(&at, &path)?
                    && s.user == user
                {
                    remove_if_exists(&path)?;
                    if s.expires_at > now {
                        n += 1;
                    }
                }
            }
            Ok(n)
        })
        .await
    }

    async fn revoke_all(&self) -> SessionResult<u64> {
        let at = self.at_rest.clone();
        self.run(move |dir| {
            let _lock = lock(dir)?;
            let now = now_millis();
            let mut n = 0;
            for (_, path) in session_files(dir)? {
                let live = read_live(&at, &path, now)?.is_some();
                if remove_if_exists(&path)? && live {
                    n += 1;
                }
            }
            Ok(n)
        })
        .await
    }

    async fn count(&self) -> SessionResult<u64> {
        let now = now_millis();
        let at = self.at_rest.clone();
        self.run(move |dir| Ok(list_live(&at, dir, None, now)?.len() as u64))
            .await
    }

    async fn record_failure(&self, key: &str, window: Duration) -> SessionResult<u32> {
        // Hash the key: it holds a user name and an address, neither safe as a file name.
        let name = hex::encode(Sha256::digest(key.as_bytes()));
        let window_ms = super::duration_ms(window);
        self.run(move |dir| {
            let path = dir.join(THROTTLE_DIR).join(&name);
            let _lock = lock(dir)?;
            let now = now_millis();
            let current = fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Failures>(&b).ok())
                .filter(|f| f.expires_at > now);
            let next = match current {
                Some(f) => Failures {
                    failures: f.failures.saturating_add(1),
                    expires_at: f.expires_at,
                },
                None => Failures {
                    failures: 1,
                    expires_at: now.saturating_add(window_ms),
                },
            };
            let bytes = serde_json::to_vec(&next).expect("counter serialises");
            write_atomic(&path, &bytes)?;
            Ok(next.failures)
        })
        .await
    }

    async fn clear_failures(&self, key: &str) -> SessionResult<()> {
        let name = hex::encode(Sha256::digest(key.as_bytes()));
        self.run(move |dir| {
            let _lock = lock(dir)?;
            remove_if_exists(&dir.join(THROTTLE_DIR).join(name))?;
            Ok(())
        })
        .await
    }
}

impl FileStore {
    /// Apply `change` to the live session under `id` and renew its idle timeout (capped by the
    /// absolute lifetime); `None`, and nothing written, when it is no longer live.
    async fn renew(
        &self,
        id: &SessionId,
        change: impl FnOnce(&mut Session) + Send + 'static,
    ) -> SessionResult<Option<Session>> {
        let id_hash = id.storage_key();
        let lifetimes = self.lifetimes;
        let at = self.at_rest.clone();
        self.run(move |dir| {
            let target = session_path(dir, &id_hash);
            let _lock = lock(dir)?;
            let now = now_millis();
            let Some(mut stored) = read_live(&at, &target, now)? else {
                return Ok(None);
            };
            change(&mut stored);
            stored.last_seen = now;
            stored.expires_at = lifetimes.expires_at(stored.created_at, now);
            if stored.expires_at <= now {
                remove_if_exists(&target)?;
                return Ok(None);
            }
            write_atomic(&target, &encode(&at, &id_hash, &stored))?;
            Ok(Some(stored))
        })
        .await
    }
}
