//! The file cluster backend: plain files under `state_path`, for one host or a shared
//! filesystem, with no server to run.
//!
//! Directory layout (owned by this file; nothing else builds a path under `state_path`):
//!
//! ```text
//! state_path/
//!   nodes/<id>.json     one JSON document per node: NodeInfo, started_at, draining, left.
//!                       Its mtime IS last_heartbeat.
//!   nodes/.tmp-*        files being written; renamed over <id>.json when complete (those
//!                       older than a minute, left by a crash, are removed at open)
//!   nodes.guard         exclusive-lock target around every read-modify-write of a node file
//!   .clock              rewritten to read the filesystem's clock (its fresh mtime is "now")
//!   leader.lock         {"holder": id, "lease_ms": n}; its mtime is when the lease was taken
//!                       or last renewed
//!   leader.guard        exclusive-lock target around the lease's read-check-write
//! ```
//!
//! Time comes from the filesystem: the kernel (or the NFS server) stamps a file's mtime when it
//! is written, so heartbeats written from hosts with skewed clocks are still comparable.
//! Writes are `store::fs::Staged` (temp file, fsync, rename, fsync of the directory), so a
//! reader sees the old or the new document, never half of one; the guards are
//! `store::fs::FileLock`s with a timeout.
//!
//! It must never: stamp a time from the local clock (`set_modified(SystemTime::now())`),
//! accept a node id that could name a path outside `nodes/` (see `validate_node_id`), or
//! block the async runtime (all file work runs on `spawn_blocking`).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::backend::{
    BackendError, BackendResult, ClusterBackend, Listing, Millis, NodeInfo, NodeRecord,
    duration_millis, validate_node_id,
};
use crate::config::{BackendKind, ClusterConfig};
use crate::store::fs::{self as store_fs, FileLock, Staged};
use crate::store::time::system_time_ms;

const NODES_DIR: &str = "nodes";
const NODES_GUARD: &str = "nodes.guard";
const CLOCK_PROBE: &str = ".clock";
const LEADER_LOCK: &str = "leader.lock";
const LEADER_GUARD: &str = "leader.guard";
/// How long to wait for another process's guard. The guarded sections are a few file
/// operations; waiting longer means something is stuck and the caller should hear about it.
const GUARD_TIMEOUT: Duration = Duration::from_secs(5);

/// A node file's content. `last_heartbeat` is not stored: it is the file's mtime.
#[derive(Serialize, Deserialize)]
struct StoredNode {
    #[serde(flatten)]
    info: NodeInfo,
    started_at: Millis,
    draining: bool,
    left: bool,
}

/// The leader lease file's content; the lease runs from the file's mtime.
#[derive(Serialize, Deserialize)]
struct StoredLease {
    holder: String,
    lease_ms: Millis,
}

pub struct FileBackend {
    dir: PathBuf,
}

/// What reading a node file found.
enum NodeFile {
    Missing,
    Corrupt(String),
    Found(StoredNode, SystemTime),
}

impl FileBackend {
    /// Create `state_path` and `state_path/nodes` if absent, and check that the clock probe
    /// can be written (so a read-only or missing mount fails here, not at the first heartbeat).
    pub async fn open(config: &ClusterConfig) -> BackendResult<FileBackend> {
        let backend = FileBackend {
            dir: config.state_path.clone(),
        };
        backend
            .blocking(|dir| {
                store_fs::refuse_network_filesystem(dir, "file cluster backend")
                    .map_err(|e| unavailable(dir, e.to_string()))?;
                let nodes = dir.join(NODES_DIR);
                fs::create_dir_all(&nodes).map_err(|e| io_err(dir, &nodes, "create", e))?;
                for d in [dir, nodes.as_path()] {
                    store_fs::remove_stale_temp_files(d)
                        .map_err(|e| io_err(dir, d, "clean up temp files in", e))?;
                }
                fs_now(dir)?;
                Ok(())
            })
            .await?;
        Ok(backend)
    }

    async fn blocking<T, F>(&self, f: F) -> BackendResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Path) -> BackendResult<T> + Send + 'static,
    {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || f(&dir))
            .await
            .map_err(|e| unavailable(&self.dir, format!("file task failed: {e}")))?
    }
}

fn unavailable(dir: &Path, message: String) -> BackendError {
    BackendError::Unavailable {
        backend: BackendKind::File,
        location: dir.display().to_string(),
        message,
    }
}

fn io_err(dir: &Path, path: &Path, what: &str, e: io::Error) -> BackendError {
    unavailable(dir, format!("cannot {what} {}: {e}", path.display()))
}

fn node_path(dir: &Path, node_id: &str) -> PathBuf {
    dir.join(NODES_DIR).join(format!("{node_id}.json"))
}

/// The filesystem's clock: rewrite the probe file and read back the mtime the filesystem
/// gave it. Concurrent probes from other processes are harmless: any fresh stamp is "now".
fn fs_now(dir: &Path) -> BackendResult<Millis> {
    fs_clock(dir).map(system_time_ms)
}

/// [`fs_now`] as the filesystem's own time value, to stamp another file with.
fn fs_clock(dir: &Path) -> BackendResult<SystemTime> {
    let path = dir.join(CLOCK_PROBE);
    let stamp = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        f.write_all(b"fleetctl reads the filesystem clock from this file's mtime\n")?;
        f.metadata()?.modified()
    })();
    stamp.map_err(|e| io_err(dir, &path, "write clock probe", e))
}

/// Hold an exclusive lock on `dir/name` until the returned lock is dropped. It is `flock`,
/// which Linux maps to NFS locks, so processes on other hosts are excluded too.
fn guard(dir: &Path, name: &str) -> BackendResult<FileLock> {
    FileLock::acquire(&dir.join(name), GUARD_TIMEOUT).map_err(|e| unavailable(dir, e.to_string()))
}

/// Replace `path` with `bytes` atomically and return its mtime: the filesystem's clock read
/// after the content was synced, just before the rename, so a slow fsync never makes a fresh
/// heartbeat or lease look older than it is (a lease stamped before a 300 ms fsync would
/// expire 300 ms early for everyone else). With `keep_mtime`, the new file gets that earlier
/// mtime instead: a value the filesystem itself stamped before, so no local clock is involved.
/// That is how a drain flag is written without counting as a heartbeat.
fn write_atomic(
    dir: &Path,
    path: &Path,
    bytes: &[u8],
    keep_mtime: Option<SystemTime>,
) -> BackendResult<SystemTime> {
    let io = |e: io::Error| io_err(dir, path, "write", e);
    let staged = Staged::new(path, bytes).map_err(io)?;
    let mtime = match keep_mtime {
        Some(t) => t,
        None => fs_clock(dir)?,
    };
    staged.set_modified(mtime).map_err(io)?;
    staged.commit().map_err(io)?;
    Ok(mtime)
}

/// A file's content and mtime, read as one version; `None` when it does not exist.
fn read_versioned(dir: &Path, path: &Path) -> BackendResult<Option<(Vec<u8>, SystemTime)>> {
    store_fs::read_with_mtime(path).map_err(|e| io_err(dir, path, "read", e))
}

/// Read a node file through one open handle, so content and mtime belong to the same version
/// even if it is being replaced.
fn read_node(dir: &Path, node_id: &str) -> BackendResult<NodeFile> {
    let Some((bytes, mtime)) = read_versioned(dir, &node_path(dir, node_id))? else {
        return Ok(NodeFile::Missing);
    };
    Ok(match serde_json::from_slice::<StoredNode>(&bytes) {
        Ok(stored) if stored.info.node_id == node_id => NodeFile::Found(stored, mtime),
        Ok(stored) => NodeFile::Corrupt(format!("holds node_id {:?}", stored.info.node_id)),
        Err(e) => NodeFile::Corrupt(e.to_string()),
    })
}

fn record(stored: StoredNode, mtime: SystemTime) -> NodeRecord {
    NodeRecord {
        info: stored.info,
        started_at: stored.started_at,
        last_heartbeat: system_time_ms(mtime),
        draining: stored.draining,
        left: stored.left,
    }
}

fn corrupt(dir: &Path, node_id: &str, message: String) -> BackendError {
    BackendError::Corrupt {
        backend: BackendKind::File,
        key: node_path(dir, node_id).display().to_string(),
        message,
    }
}

/// Change one flag of a node, keeping its heartbeat time. `Ok(false)` when there is no node.
fn update_flag(
    dir: &Path,
    node_id: &str,
    change: impl FnOnce(&mut StoredNode),
) -> BackendResult<bool> {
    let _guard = guard(dir, NODES_GUARD)?;
    match read_node(dir, node_id)? {
        NodeFile::Missing => Ok(false),
        NodeFile::Corrupt(why) => Err(corrupt(dir, node_id, why)),
        NodeFile::Found(mut stored, mtime) => {
            change(&mut stored);
            let bytes = serde_json::to_vec_pretty(&stored).expect("StoredNode serializes");
            write_atomic(dir, &node_path(dir, node_id), &bytes, Some(mtime))?;
            Ok(true)
        }
    }
}

/// The lease file's holder and expiry (filesystem clock), if it exists and can be read.
/// An unreadable lease file counts as no lease: it would otherwise block every election.
fn read_lease(dir: &Path) -> BackendResult<Option<(String, Millis)>> {
    let Some((bytes, mtime)) = read_versioned(dir, &dir.join(LEADER_LOCK))? else {
        return Ok(None);
    };
    Ok(serde_json::from_slice::<StoredLease>(&bytes)
        .ok()
        .map(|l| (l.holder, system_time_ms(mtime).saturating_add(l.lease_ms))))
}

#[async_trait]
impl ClusterBackend for FileBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::File
    }

    fn location(&self) -> String {
        self.dir.display().to_string()
    }

    async fn now(&self) -> BackendResult<Millis> {
        self.blocking(fs_now).await
    }

    async fn register(&self, node: &NodeInfo) -> BackendResult<NodeRecord> {
        validate_node_id(&node.node_id)?;
        let info = node.clone();
        self.blocking(move |dir| {
            let _guard = guard(dir, NODES_GUARD)?;
            let stored = StoredNode {
                started_at: fs_now(dir)?,
                info,
                draining: false,
                left: false,
            };
            let bytes = serde_json::to_vec_pretty(&stored).expect("StoredNode serializes");
            let mtime = write_atomic(dir, &node_path(dir, &stored.info.node_id), &bytes, None)?;
            Ok(record(stored, mtime))
        })
        .await
    }

    async fn heartbeat(&self, node_id: &str) -> BackendResult<Option<NodeRecord>> {
        validate_node_id(node_id)?;
        let node_id = node_id.to_string();
        self.blocking(move |dir| {
            let _guard = guard(dir, NODES_GUARD)?;
            match read_node(dir, &node_id)? {
                // Gone or damaged (left untouched): the node registers again.
                NodeFile::Missing | NodeFile::Corrupt(_) => Ok(None),
                NodeFile::Found(stored, _) => {
                    // Rewriting the document is what makes the filesystem stamp a new mtime.
                    let bytes = serde_json::to_vec_pretty(&stored).expect("StoredNode serializes");
                    let mtime = write_atomic(dir, &node_path(dir, &node_id), &bytes, None)?;
                    Ok(Some(record(stored, mtime)))
                }
            }
        })
        .await
    }

    async fn set_draining(&self, node_id: &str, draining: bool) -> BackendResult<bool> {
        validate_node_id(node_id)?;
        let node_id = node_id.to_string();
        self.blocking(move |dir| update_flag(dir, &node_id, |s| s.draining = draining))
            .await
    }

    async fn deregister(&self, node_id: &str) -> BackendResult<()> {
        validate_node_id(node_id)?;
        let node_id = node_id.to_string();
        self.blocking(move |dir| update_flag(dir, &node_id, |s| s.left = true).map(|_| ()))
            .await
    }

    async fn remove(&self, node_id: &str) -> BackendResult<bool> {
        validate_node_id(node_id)?;
        let node_id = node_id.to_string();
        self.blocking(move |dir| {
            let _guard = guard(dir, NODES_GUARD)?;
            let path = node_path(dir, &node_id);
            store_fs::remove_if_exists(&path).map_err(|e| io_err(dir, &path, "remove", e))
        })
        .await
    }

    async fn list(&self) -> BackendResult<Listing> {
        self.blocking(|dir| {
            // No guard: renames are atomic, so every file read is one complete version.
            let mut listing = Listing {
                now: fs_now(dir)?,
                ..Listing::default()
            };
            let nodes_dir = dir.join(NODES_DIR);
            let entries =
                fs::read_dir(&nodes_dir).map_err(|e| io_err(dir, &nodes_dir, "list", e))?;
            for entry in entries {
                let entry = entry.map_err(|e| io_err(dir, &nodes_dir, "list", e))?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if store_fs::is_temp_file(&name) {
                    continue;
                }
                let path = entry.path();
                let problem = |why: String| format!("{}: {why}", path.display());
                let Some(node_id) = name.strip_suffix(".json") else {
                    listing
                        .problems
                        .push(problem("not a node file (expected <node_id>.json)".into()));
                    continue;
                };
                if let Err(e) = validate_node_id(node_id) {
                    listing.problems.push(problem(e.to_string()));
                    continue;
                }
                match read_node(dir, node_id)? {
                    // Removed between read_dir and open: not a problem, just gone.
                    NodeFile::Missing => {}
                    NodeFile::Corrupt(why) => listing.problems.push(problem(why)),
                    NodeFile::Found(stored, mtime) => listing.nodes.push(record(stored, mtime)),
                }
            }
            listing
                .nodes
                .sort_by(|a, b| a.info.node_id.cmp(&b.info.node_id));
            Ok(listing)
        })
        .await
    }

    async fn try_acquire_leader(&self, node_id: &str, lease: Duration) -> BackendResult<bool> {
        validate_node_id(node_id)?;
        let node_id = node_id.to_string();
        let lease_ms = duration_millis(lease);
        self.blocking(move |dir| {
            // The guard makes read-check-write one step: two processes can never both see
            // an expired lease and both write themselves in.
            let _guard = guard(dir, LEADER_GUARD)?;
            let now = fs_now(dir)?;
            let free = match read_lease(dir)? {
                None => true,
                Some((holder, expires_at)) => holder == node_id || expires_at <= now,
            };
            if !free {
                return Ok(false);
            }
            let bytes = serde_json::to_vec(&StoredLease {
                holder: node_id,
                lease_ms,
            })
            .expect("StoredLease serializes");
            write_atomic(dir, &dir.join(LEADER_LOCK), &bytes, None)?;
            Ok(true)
        })
        .await
    }

    async fn release_leader(&self, node_id: &str) -> BackendResult<()> {
        validate_node_id(node_id)?;
        let node_id = node_id.to_string();
        self.blocking(move |dir| {
            let _guard = guard(dir, LEADER_GUARD)?;
            if let Some((holder, _)) = read_lease(dir)?
                && holder == node_id
            {
                let path = dir.join(LEADER_LOCK);
                store_fs::remove_if_exists(&path).map_err(|e| io_err(dir, &path, "remove", e))?;
            }
            Ok(())
        })
        .await
    }

    async fn leader(&self) -> BackendResult<Option<String>> {
        self.blocking(|dir| {
            let now = fs_now(dir)?;
            Ok(read_lease(dir)?
                .filter(|(_, expires_at)| *expires_at > now)
                .map(|(holder, _)| holder))
        })
        .await
    }
}
