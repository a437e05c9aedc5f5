//! Files that several processes write: one atomic replace ([`Staged`], [`write_atomic`]), one
//! exclusive lock with a timeout ([`FileLock`]), and the clean-up of temp files a crashed
//! writer left behind ([`remove_stale_temp_files`]). Used by the file cluster backend, the file
//! session store and `lb` install.
//!
//! Atomic replace: the content goes to a temp file in the destination's directory (same
//! filesystem, so the rename is atomic), the file is fsynced, renamed over the destination, and
//! the directory is fsynced so the rename itself survives a power cut. A reader sees the old
//! file or the new one, never a mix, and a crash leaves the old one.
//!
//! Lock: `std::fs::File::try_lock`, which is `flock(2)` (Linux maps it to NFS byte-range locks,
//! so processes on other hosts are excluded too). The standard library has it since Rust 1.89,
//! so no `fs2`/`fs4` crate is needed; only the timeout is added here, because a lock that is
//! never released must surface as an error naming the file, not as a hung request.
//!
//! This module never decides what a file means, its name (beyond the temp prefix), or its
//! layout: that belongs to the backend that owns the directory. Everything here blocks; async
//! callers run it on `spawn_blocking`.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Every temp file starts with this, so directory listings can skip them and
/// [`remove_stale_temp_files`] can find them (it is also the prefix older versions used).
pub const TEMP_PREFIX: &str = ".tmp-";

/// A temp file this old belongs to a writer that crashed: no live writer takes a minute
/// between creating its temp file and renaming it.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(60);

/// Makes temp names unique within the process; the pid makes them unique across processes.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Whether `file_name` names a temp file of [`Staged`] (or of an older fleetctl).
pub fn is_temp_file(file_name: &str) -> bool {
    file_name.starts_with(TEMP_PREFIX)
}

/// A complete, synced temp file next to its destination, not yet in place. Dropped without
/// [`Staged::commit`], it is removed and the destination is untouched.
pub struct Staged {
    /// Open for `set_modified`.
    file: File,
    tmp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl Staged {
    /// Write `bytes` to a new temp file in `dest`'s directory and fsync it, so that `commit`
    /// is only a rename (callers take their lock after this). An existing `dest` keeps its
    /// permissions (a config file readable only by its service stays so).
    pub fn new(dest: &Path, bytes: &[u8]) -> io::Result<Staged> {
        let file_name = dest.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a file path", dest.display()),
            )
        })?;
        // `.tmp-<name>-<pid>-<n>`: hidden, and never ending in the destination's extension,
        // so a directory include (`haproxy -f dir/`, `include *.conf`) does not load it.
        let tmp = parent_dir(dest).join(format!(
            "{TEMP_PREFIX}{}-{}-{}",
            file_name.to_string_lossy(),
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        let staged = Staged {
            file,
            tmp,
            dest: dest.to_path_buf(),
            committed: false,
        };
        (&staged.file).write_all(bytes)?;
        if let Ok(meta) = fs::metadata(dest) {
            staged.file.set_permissions(meta.permissions())?;
        }
        // Durable before it can replace the old version: a crash leaves old or new, not empty.
        staged.file.sync_all()?;
        Ok(staged)
    }

    /// The temp file, complete: validate this before committing.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Give the new file this mtime instead of the one the filesystem stamped. Not synced
    /// before the rename (that would delay it by another fsync): after a crash the file may
    /// show the mtime of its write, a moment earlier.
    pub fn set_modified(&self, t: SystemTime) -> io::Result<()> {
        self.file.set_modified(t)
    }

    /// Rename the temp file over the destination and make the rename durable.
    pub fn commit(mut self) -> io::Result<()> {
        fs::rename(&self.tmp, &self.dest)?;
        self.committed = true;
        sync_dir(parent_dir(&self.dest))
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Replace `dest` with `bytes` so that readers see the old file or the new one, never a mix.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    Staged::new(dest, bytes)?.commit()
}

/// The directory a path's file lives in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Persist the directory entry changes (renames, creations) made in `dir`.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// An exclusive lock on a file, held until this is dropped (or the process dies: the kernel
/// releases `flock` locks with their last descriptor, so a crash never leaves a lock behind).
///
/// Waiters in one process queue on an in-process slot per path first, so a burst of calls
/// from one server (a thousand logins at once) waits in turn instead of polling `flock`
/// against each other. The timeout counts waiting without progress: in the queue it restarts
/// whenever the lock changes hands, so only a holder that keeps it, or another process that
/// does, makes a caller give up.
#[derive(Debug)]
pub struct FileLock {
    /// Declared first so it is dropped first: the `flock` is released before the next waiter
    /// of this process is let in.
    _file: File,
    _slot: LocalSlot,
}

impl FileLock {
    /// Lock `path` (created if absent), waiting at most `timeout` without progress for another
    /// process or handle to release it. Every error names the path; a timeout is
    /// `ErrorKind::TimedOut`.
    pub fn acquire(path: &Path, timeout: Duration) -> io::Result<FileLock> {
        let timed_out = || {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{} stayed locked by another process for {timeout:?}; if no fleetctl \
                     process is stuck, retry",
                    path.display()
                ),
            )
        };
        let named = |what: &str, e: io::Error| {
            io::Error::new(e.kind(), format!("cannot {what} {}: {e}", path.display()))
        };
        let slot = LocalSlot::acquire(path, timeout).ok_or_else(timed_out)?;
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| named("open lock file", e))?;
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => {
                    return Ok(FileLock {
                        _file: file,
                        _slot: slot,
                    });
                }
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(10));
                }
                Err(TryLockError::WouldBlock) => return Err(timed_out()),
                Err(TryLockError::Error(e)) => return Err(named("lock", e)),
            }
        }
    }
}

/// This process's turn at one lock path.
#[derive(Debug)]
struct LocalSlot(Arc<SlotState>);

#[derive(Debug, Default)]
struct SlotState {
    /// (held, how many times it has been taken): the count tells a waiter there was progress.
    taken: Mutex<(bool, u64)>,
    released: Condvar,
}

/// One slot per lock path this process has used; a handful per process, kept for its life.
static LOCAL_SLOTS: Mutex<Option<HashMap<PathBuf, Arc<SlotState>>>> = Mutex::new(None);

impl LocalSlot {
    /// Wait for this process's turn at `path`; `None` when the holder kept it for `timeout`.
    fn acquire(path: &Path, timeout: Duration) -> Option<LocalSlot> {
        let state = {
            let mut slots = LOCAL_SLOTS.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(
                slots
                    .get_or_insert_with(HashMap::new)
                    .entry(path.to_path_buf())
                    .or_default(),
            )
        };
        let mut taken = state.taken.lock().unwrap_or_else(|p| p.into_inner());
        let mut seen = taken.1;
        let mut deadline = Instant::now() + timeout;
        while taken.0 {
            if taken.1 != seen {
                (seen, deadline) = (taken.1, Instant::now() + timeout);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            taken = state
                .released
                .wait_timeout(taken, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *taken = (true, taken.1.wrapping_add(1));
        drop(taken);
        Some(LocalSlot(state))
    }
}

impl Drop for LocalSlot {
    fn drop(&mut self) {
        self.0.taken.lock().unwrap_or_else(|p| p.into_inner()).0 = false;
        self.0.released.notify_one();
    }
}

/// Read a whole file and its mtime through one open handle, so both belong to the same version
/// even while it is being replaced. `None` when there is no such file.
pub fn read_with_mtime(path: &Path) -> io::Result<Option<(Vec<u8>, SystemTime)>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let mtime = file.metadata()?.modified()?;
    Ok(Some((bytes, mtime)))
}

/// Delete `path`; false when it was already gone.
pub fn remove_if_exists(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Delete the temp files in `dir` older than [`STALE_TEMP_AGE`]: what a writer that crashed
/// between creating and renaming its temp file left behind. Returns how many were removed.
/// A missing directory has none.
pub fn remove_stale_temp_files(dir: &Path) -> io::Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        if !is_temp_file(&entry.file_name().to_string_lossy()) {
            continue;
        }
        // Vanished (renamed or removed by its writer) since the listing: not ours to count.
        let Ok(modified) = entry.metadata().and_then(|m| m.modified()) else {
            continue;
        };
        if now
            .duration_since(modified)
            .is_ok_and(|age| age >= STALE_TEMP_AGE)
            && remove_if_exists(&entry.path())?
        {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(
            dir = %dir.display(),
            "removed {removed} temp files left behind by an interrupted write in {}",
            dir.display()
        );
    }
    Ok(removed)
}

/// Why a directory cannot hold a SQLite database or a file backend: it is on a network
/// filesystem, where `flock(2)` and SQLite's POSIX locks and WAL shared memory are not
/// reliable (NFS, SMB and FUSE network mounts emulate them, some silently no-op them), so two
/// nodes could both believe they hold a lock and corrupt the store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{} is on a {fs_name} network filesystem, where file locking (flock, SQLite's POSIX locks and \
     WAL shared memory) is not reliable, so nodes sharing it could corrupt the {what}; put it on \
     a local disk, or use the redis backend to share it between hosts",
    path.display()
)]
pub struct NetworkFilesystem {
    /// The directory that was checked.
    pub path: PathBuf,
    /// What lives there, for the message ("SQLite database", "session store", …).
    pub what: String,
    /// The filesystem's name (`nfs`, `cifs`, `fuse.sshfs`, …).
    pub fs_name: String,
}

/// Network filesystems by `statfs(2)` `f_type` (linux/magic.h). FUSE is not here: its magic
/// says nothing of what is behind it, so [`network_fuse_subtype`] looks at the mount table.
const NETWORK_MAGIC: &[(u64, &str)] = &[
    (0x6969, "nfs"),
    (0x517b, "smb"),
    (0xff53_4d42, "cifs"),
    (0xfe53_4d42, "smb2"),
    (0x5346_414f, "afs"),
    (0x6b41_4653, "kafs"),
    (0x00c3_6400, "ceph"),
    (0x7375_7245, "coda"),
    (0x564c, "ncp"),
    (0x0102_1997, "9p"),
    (0x0bd0_0bd0, "lustre"),
    (0x6e66_7364, "nfsd"),
];

/// `statfs` `f_type` of every FUSE mount.
const FUSE_MAGIC: u64 = 0x6573_5546;

/// FUSE filesystems that reach another host (`fuse.<subtype>` in /proc/self/mounts).
const NETWORK_FUSE: &[&str] = &[
    "sshfs",
    "glusterfs",
    "ceph-fuse",
    "s3fs",
    "rclone",
    "gcsfuse",
    "goofys",
    "davfs",
    "smbnetfs",
    "lizardfs",
    "moosefs",
    "mfs",
    "juicefs",
    "beegfs",
];

/// The network filesystem a `statfs` magic number stands for; `None` for local ones and for
/// FUSE (see [`network_fuse_subtype`]).
pub fn network_filesystem_name(magic: u64) -> Option<&'static str> {
    NETWORK_MAGIC
        .iter()
        .find(|(m, _)| *m == magic)
        .map(|(_, name)| *name)
}

/// Whether a FUSE mount type from the mount table (`fuse.sshfs`, `fuse.glusterfs`) reaches
/// another host.
pub fn is_network_fuse_type(fs_type: &str) -> bool {
    let subtype = fs_type
        .strip_prefix("fuse.")
        .or_else(|| fs_type.strip_prefix("fuseblk."))
        .unwrap_or(fs_type);
    NETWORK_FUSE.contains(&subtype) || fs_type == "glusterfs"
}

/// The type in `mounts` (`/proc/self/mounts` text) of the mount that holds `path` (the longest
/// mount point that is a prefix of it), when that is a network FUSE filesystem.
fn network_fuse_subtype(mounts: &str, path: &Path) -> Option<String> {
    let mut best: Option<(usize, &str)> = None;
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(_source), Some(point), Some(fs_type)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        // The mount table escapes spaces as \040.
        let point = point.replace("\\040", " ");
        if path.starts_with(&point) && best.is_none_or(|(len, _)| point.len() >= len) {
            best = Some((point.len(), fs_type));
        }
    }
    best.map(|(_, t)| t)
        .filter(|t| is_network_fuse_type(t))
        .map(str::to_owned)
}

/// Refuse `dir` (or, when it does not exist yet, its nearest existing ancestor) if it is on a
/// network filesystem. Called when a SQLite database or a file backend is opened; `what` names
/// it in the error. Any other failure to tell (no `statfs`) accepts the directory: this check
/// exists to stop a known-bad setup, not to make a local one fail.
pub fn refuse_network_filesystem(dir: &Path, what: &str) -> io::Result<()> {
    let mut probe = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    while !probe.exists() {
        match probe.parent() {
            Some(p) if !p.as_os_str().is_empty() => probe = p,
            _ => {
                probe = Path::new(".");
                break;
            }
        }
    }
    let Ok(stat) = rustix::fs::statfs(probe) else {
        return Ok(());
    };
    // `f_type`'s integer type differs between targets.
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    let magic = (stat.f_type as i64 as u64) & 0xffff_ffff;
    let fs_name = match network_filesystem_name(magic) {
        Some(name) => Some(name.to_owned()),
        None if magic == FUSE_MAGIC => {
            let absolute = fs::canonicalize(probe).unwrap_or_else(|_| probe.to_path_buf());
            fs::read_to_string("/proc/self/mounts")
                .ok()
                .and_then(|mounts| network_fuse_subtype(&mounts, &absolute))
        }
        None => None,
    };
    match fs_name {
        None => Ok(()),
        Some(fs_name) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            NetworkFilesystem {
                path: dir.to_path_buf(),
                what: what.to_owned(),
                fs_name,
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_leaves_the_old_or_the_new_content() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("config.cfg");
        write_atomic(&dest, b"old").unwrap();

        // A writer that fails before committing (here: dropped) leaves the old content and
        // no temp file.
        let staged = Staged::new(&dest, b"half-written new").unwrap();
        assert_eq!(fs::read(staged.path()).unwrap(), b"half-written new");
        assert_eq!(fs::read(&dest).unwrap(), b"old");
        drop(staged);
        assert_eq!(fs::read(&dest).unwrap(), b"old");

        write_atomic(&dest, b"new").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"new");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["config.cfg"]);
    }

    #[test]
    fn readers_never_see_a_partial_file_while_it_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("doc");
        let (a, b) = (vec![b'a'; 64 * 1024], vec![b'b'; 64 * 1024]);
        write_atomic(&dest, &a).unwrap();
        let writer = {
            let (dest, a, b) = (dest.clone(), a.clone(), b.clone());
            std::thread::spawn(move || {
                for i in 0..20 {
                    write_atomic(&dest, if i % 2 == 0 { &b } else { &a }).unwrap();
                }
            })
        };
        while !writer.is_finished() {
            let seen = fs::read(&dest).unwrap();
            assert!(seen == a || seen == b, "read a mix of {} bytes", seen.len());
        }
        writer.join().unwrap();
    }

    #[test]
    fn an_existing_destination_keeps_its_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("secret.cfg");
        fs::write(&dest, "x").unwrap();
        fs::set_permissions(&dest, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&dest, b"y").unwrap();
        let mode = fs::metadata(&dest).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
    }

    #[test]
    fn a_lock_held_elsewhere_times_out_with_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nodes.guard");
        // Another process's lock: a `flock` on a descriptor of its own.
        let other = File::create(&path).unwrap();
        other.lock().unwrap();
        let started = Instant::now();
        let err = FileLock::acquire(&path, Duration::from_millis(200)).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("stayed locked"), "{message}");

        // Released: the next caller gets it at once.
        drop(other);
        FileLock::acquire(&path, Duration::from_millis(200)).unwrap();
    }

    #[test]
    fn a_holder_in_this_process_that_keeps_the_lock_times_out_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        let _held = FileLock::acquire(&path, Duration::from_secs(1)).unwrap();
        let err = FileLock::acquire(&path, Duration::from_millis(100)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn a_long_queue_in_one_process_waits_in_turn_without_timing_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = Arc::new(dir.path().join(".lock"));
        // 40 holders of 10 ms each: the last waits far longer than the timeout, but the lock
        // changes hands all along.
        let threads: Vec<_> = (0..40)
            .map(|_| {
                let path = Arc::clone(&path);
                std::thread::spawn(move || {
                    let _lock = FileLock::acquire(&path, Duration::from_millis(100))?;
                    std::thread::sleep(Duration::from_millis(10));
                    io::Result::Ok(())
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap().unwrap();
        }
    }

    #[test]
    fn a_waiting_lock_is_granted_when_the_holder_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        let held = FileLock::acquire(&path, Duration::from_secs(1)).unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            drop(held);
        });
        FileLock::acquire(&path, Duration::from_secs(5)).unwrap();
        releaser.join().unwrap();
    }

    #[test]
    fn only_old_temp_files_are_cleaned_up() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join(".tmp-node.json-1-0");
        let fresh = dir.path().join(".tmp-node.json-1-1");
        let data = dir.path().join("node.json");
        for p in [&old, &fresh, &data] {
            fs::write(p, "x").unwrap();
        }
        let two_minutes_ago = SystemTime::now() - Duration::from_secs(120);
        File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(two_minutes_ago)
            .unwrap();
        File::options()
            .write(true)
            .open(&data)
            .unwrap()
            .set_modified(two_minutes_ago)
            .unwrap();

        assert_eq!(remove_stale_temp_files(dir.path()).unwrap(), 1);
        assert!(!old.exists());
        assert!(fresh.exists(), "a live writer's temp file was removed");
        assert!(data.exists(), "a data file was removed");
        assert_eq!(
            remove_stale_temp_files(&dir.path().join("absent")).unwrap(),
            0
        );
    }

    #[test]
    fn network_filesystems_are_recognised_by_magic() {
        for (magic, name) in [
            (0x6969, "nfs"),
            (0xff53_4d42, "cifs"),
            (0xfe53_4d42, "smb2"),
            (0x00c3_6400, "ceph"),
            (0x0102_1997, "9p"),
            (0x5346_414f, "afs"),
        ] {
            assert_eq!(network_filesystem_name(magic), Some(name), "{magic:#x}");
        }
        // ext4, tmpfs, xfs, btrfs, overlayfs, and FUSE (decided by its subtype).
        for local in [
            0xef53,
            0x0102_1994,
            0x5846_5342,
            0x9123_683e,
            0x794c_7630,
            FUSE_MAGIC,
        ] {
            assert_eq!(network_filesystem_name(local), None, "{local:#x}");
        }
    }

    #[test]
    fn fuse_mounts_are_judged_by_their_subtype() {
        let mounts = "\
/dev/sda1 / ext4 rw 0 0
host:/export /mnt/remote fuse.sshfs rw 0 0
/dev/fuse /mnt/remote/local fuse.fuse-overlayfs rw 0 0
gluster:/vol /srv/gluster fuse.glusterfs rw 0 0
";
        let at = |p: &str| network_fuse_subtype(mounts, Path::new(p));
        assert_eq!(at("/mnt/remote/db").as_deref(), Some("fuse.sshfs"));
        assert_eq!(at("/srv/gluster/x").as_deref(), Some("fuse.glusterfs"));
        assert_eq!(
            at("/mnt/remote/local/db"),
            None,
            "the longest mount point wins"
        );
        assert_eq!(at("/var/lib/fleet"), None);
    }

    #[test]
    fn a_local_directory_is_accepted_and_a_missing_one_checks_its_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        refuse_network_filesystem(dir.path(), "test store").unwrap();
        refuse_network_filesystem(&dir.path().join("not/yet/created"), "test store").unwrap();
        refuse_network_filesystem(Path::new(""), "test store").unwrap();
        // tmpfs, where the machine has one mounted.
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            refuse_network_filesystem(shm, "test store").unwrap();
        }
    }

    #[test]
    fn the_refusal_says_why_and_what_to_use_instead() {
        let e = NetworkFilesystem {
            path: PathBuf::from("/mnt/nfs/fleet"),
            what: "SQLite database".into(),
            fs_name: "nfs".into(),
        }
        .to_string();
        assert!(
            e.contains("/mnt/nfs/fleet is on a nfs network filesystem"),
            "{e}"
        );
        assert!(e.contains("locking"), "{e}");
        assert!(e.contains("local disk") && e.contains("redis"), "{e}");
    }
}
