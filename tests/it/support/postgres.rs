//! A private PostgreSQL server per test: `initdb` once per build into a template (under a
//! file lock, so parallel tests share it), copied into the test's own temporary directory and
//! started with `postgres` on a free 127.0.0.1 port. Never the system instance on 5432.
//!
//! The server binaries come from Debian's `postgresql` package (`/usr/lib/postgresql/*/bin`,
//! which is not on PATH); scripts/test installs it when missing, and a test that cannot find
//! it fails. As root (CI), the server runs as the `postgres` user, because PostgreSQL refuses
//! to run as root; the directories are handed to that user.
//!
//! Password authentication (scram-sha-256) for the user [`USER`], so tests exercise the
//! `password_file` path fleetctl uses in production.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

pub const USER: &str = "fleet";
pub const PASSWORD: &str = "fleet-pg-test-password";
pub const DBNAME: &str = "postgres";

pub struct PgServer {
    pub port: u16,
    /// Owned by the server's user; holds `data/`, the socket, the log and the password file.
    dir: tempfile::TempDir,
    bin: PathBuf,
    child: Option<Child>,
    owner: Option<(u32, u32)>,
    /// More `-c name=value` settings (TLS).
    settings: Vec<String>,
}

/// The directory holding `initdb`, `postgres` and `psql`'s server siblings.
fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").is_file() && p.join("postgres").is_file())
        .collect();
    found.sort();
    if let Some(newest) = found.pop() {
        return newest;
    }
    let initdb = super::require_binary("initdb", "postgresql");
    initdb.parent().unwrap().to_path_buf()
}

/// uid and gid of the `postgres` user when running as root (PostgreSQL refuses root).
fn server_owner() -> Option<(u32, u32)> {
    if std::fs::metadata("/proc/self").map(|m| m.uid()).ok()? != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let line = passwd.lines().find(|l| l.starts_with("postgres:"));
    let Some(line) = line else {
        panic!(
            "running as root and there is no `postgres` user: install the Debian package `postgresql` (scripts/test does this)"
        );
    };
    let f: Vec<&str> = line.split(':').collect();
    Some((f[2].parse().ok()?, f[3].parse().ok()?))
}

fn chown_tree(path: &Path, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        let status = Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(path)
            .status()
            .expect("chown");
        assert!(status.success(), "chown -R {}", path.display());
    }
}

fn as_owner(cmd: &mut Command, owner: Option<(u32, u32)>) -> &mut Command {
    if let Some((uid, gid)) = owner {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

/// The initdb'd template, made once per build directory.
fn template(bin: &Path, owner: Option<(u32, u32)>) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pg-template");
    std::fs::create_dir_all(&root).unwrap();
    let lock = std::fs::File::create(root.join("lock")).unwrap();
    lock.lock().unwrap();
    let data = root.join("data");
    if !root.join("done").exists() {
        let _ = std::fs::remove_dir_all(&data);
        let pwfile = root.join("pwfile");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        // The server's user must reach the template through every parent directory.
        let mut p = root.clone();
        while let Some(parent) = p.parent() {
            if let Ok(m) = std::fs::metadata(parent)
                && m.mode() & 0o001 == 0
                && owner.is_some()
            {
                let _ = Command::new("chmod").arg("o+x").arg(parent).status();
            }
            p = parent.to_path_buf();
        }
        std::fs::create_dir_all(&data).unwrap();
        chown_tree(&root, owner);
        let out = as_owner(&mut Command::new(bin.join("initdb")), owner)
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                USER,
                "--auth=scram-sha-256",
                "--no-sync",
                "-E",
                "UTF8",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(root.join("done"), "").unwrap();
    }
    data
}

impl PgServer {
    pub fn start() -> PgServer {
        Self::start_with(None)
    }

    /// A server that also accepts TLS, with `leaf` as its certificate (`ssl = on`; plain
    /// connections are still allowed, so a client that silently skipped TLS would connect).
    pub fn start_tls(leaf: &super::certs::Leaf) -> PgServer {
        Self::start_with(Some(leaf))
    }

    fn start_with(tls: Option<&super::certs::Leaf>) -> PgServer {
        let bin = bin_dir();
        let owner = server_owner();
        let template = template(&bin, owner);
        let dir = tempfile::Builder::new()
            .prefix("fleet-pg-")
            .tempdir()
            .unwrap();
        let status = Command::new("cp")
            .arg("-a")
            .arg(&template)
            .arg(dir.path().join("data"))
            .status()
            .unwrap();
        assert!(status.success(), "copy the PostgreSQL template");
        std::fs::write(dir.path().join("password"), format!("{PASSWORD}\n")).unwrap();
        let mut settings = Vec::new();
        if let Some(leaf) = tls {
            use std::os::unix::fs::PermissionsExt;
            let (cert, key) = (dir.path().join("server.crt"), dir.path().join("server.key"));
            std::fs::copy(&leaf.cert, &cert).unwrap();
            std::fs::copy(&leaf.key, &key).unwrap();
            // PostgreSQL refuses a key file others can read.
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
            settings.push("ssl=on".to_string());
            settings.push(format!("ssl_cert_file={}", cert.display()));
            settings.push(format!("ssl_key_file={}", key.display()));
        }
        chown_tree(dir.path(), owner);
        // fleetctl (root in CI) reads the password file; keep it readable by the test user.
        let mut server = PgServer {
            port: free_port(),
            dir,
            bin,
            child: None,
            owner,
            settings,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .unwrap();
        chown_tree(&self.dir.path().join("server.log"), self.owner);
        let child = as_owner(&mut Command::new(self.bin.join("postgres")), self.owner)
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string()])
            .arg("-k")
            .arg(self.dir.path())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                // A crash of the server process (what the tests do) loses nothing with fsync
                // off: the page cache survives it. Commits stay synchronous.
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=300",
                "-c",
                "shared_buffers=64MB",
                "-c",
                "log_lock_waits=on",
                "-c",
                "deadlock_timeout=200ms",
                "-c",
                "log_min_duration_statement=200",
            ])
            .args(self.settings.iter().flat_map(|s| ["-c", s.as_str()]))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(30));
    }

    /// Wait until the server accepts a login and answers a query.
    fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.try_psql("SELECT 1").is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "postgres on port {} did not become ready in {timeout:?}:\n{}",
                self.port,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// A file holding the password, as `password_file` reads it.
    pub fn password_file(&self) -> PathBuf {
        self.dir.path().join("password")
    }

    /// The `postgres:` section (indented by `indent` spaces) for a fleetctl config.
    pub fn yaml(&self, indent: usize) -> String {
        let pad = " ".repeat(indent);
        format!(
            "{pad}postgres:\n{pad}  host: 127.0.0.1\n{pad}  port: {}\n{pad}  dbname: {DBNAME}\n{pad}  user: {USER}\n{pad}  password_file: {}\n",
            self.port,
            self.password_file().display()
        )
    }

    /// The same as a config struct, for the in-process conformance suites.
    pub fn config(&self) -> fleetctl::config::PostgresConfig {
        fleetctl::config::PostgresConfig {
            host: "127.0.0.1".into(),
            port: self.port,
            dbname: DBNAME.into(),
            user: USER.into(),
            password: Some(PASSWORD.into()),
            ..Default::default()
        }
    }

    fn try_psql(&self, sql: &str) -> Result<String, String> {
        let psql = self.bin.join("psql");
        let psql = if psql.is_file() {
            psql
        } else {
            super::require_binary("psql", "postgresql-client")
        };
        let out = Command::new(psql)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args([
                "-U",
                USER,
                "-d",
                DBNAME,
                "-XAtq",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .env("PGPASSWORD", PASSWORD)
            .env("PGCONNECT_TIMEOUT", "2")
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).to_string())
        }
    }

    /// Run SQL with psql and return its unaligned output; panics on an error.
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql)
            .unwrap_or_else(|e| panic!("psql {sql:?} failed: {e}"))
    }

    /// Crash the server (SIGKILL the postmaster; its backends exit when they notice).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The whole process group: the postmaster and every backend at once.
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
        }
    }

    /// Immediate shutdown (SIGQUIT): what `pg_ctl stop -m immediate` does.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-s", "QUIT", "--", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start again on the same data and port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        self.spawn();
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!(
                "--- postgres on port {} (last lines of its log) ---\n{}",
                self.port,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        self.kill9();
    }
}
