//! Real `fleetctl serve` processes for cross-process tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{fleetctl_bin, free_port};

/// The admin token every test config accepts.
pub const ADMIN_TOKEN: &str = "fleetadm_test_token_for_integration_tests";

pub fn sha256_hex(s: &str) -> String {
    fleetctl::credentials::sha256_hex(s)
}

/// One `fleetctl serve` process with its own port and log file.
pub struct Node {
    pub node_id: String,
    pub port: u16,
    pub config: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
    /// Extra wrapper (e.g. `faketime -f -5m`) to run the binary under.
    wrapper: Vec<String>,
    /// The node's `RUST_LOG`.
    log_filter: String,
}

impl Node {
    /// Start a node with `config` (a file path) and wait until its port accepts connections.
    pub fn start(config: &Path, node_id: &str) -> Node {
        Self::start_wrapped(config, node_id, &[])
    }

    pub fn start_wrapped(config: &Path, node_id: &str, wrapper: &[&str]) -> Node {
        Self::start_full(config, node_id, wrapper, "info")
    }

    /// Start a node whose log also shows what `log_filter` (a `RUST_LOG`) enables, e.g.
    /// `info,fleetctl::leader_jobs=debug`.
    pub fn start_logging(config: &Path, node_id: &str, log_filter: &str) -> Node {
        Self::start_full(config, node_id, &[], log_filter)
    }

    fn start_full(config: &Path, node_id: &str, wrapper: &[&str], log_filter: &str) -> Node {
        let dir = config.parent().expect("config dir");
        let mut node = Node {
            node_id: node_id.to_string(),
            port: free_port(),
            config: config.to_path_buf(),
            log: dir.join(format!("{node_id}.log")),
            child: None,
            wrapper: wrapper.iter().map(|s| s.to_string()).collect(),
            log_filter: log_filter.to_string(),
        };
        node.spawn();
        node
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open node log");
        let mut cmd = match self.wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(fleetctl_bin());
                c
            }
            None => Command::new(fleetctl_bin()),
        };
        // Relative default paths (`fleet-data/…`) land in the test's directory, not the repo.
        cmd.current_dir(self.config.parent().expect("config dir"))
            .arg("--config")
            .arg(&self.config)
            .args(["serve", "--host", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .args(["--node-id", &self.node_id])
            .env("RUST_LOG", &self.log_filter)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log);
        // Its own process group, so `kill9` also reaches a node started under a wrapper
        // (faketime forks it) instead of leaving it running after the test.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        self.child = Some(cmd.spawn().expect("spawn fleetctl serve"));
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "fleetctl serve exited early with {status}; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!(
            "node {} did not listen within 15 s; log:\n{}",
            self.node_id,
            self.log_text()
        );
    }

    /// Start the same node again (same id, port and config) after it stopped.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The node's URL when it serves `server.tls`.
    pub fn https_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            // The whole group: the node and whatever wrapper started it.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", c.id())])
                .stderr(Stdio::null())
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// Wait for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(s) = child.try_wait().expect("try_wait") {
                self.child = None;
                return s;
            }
            if Instant::now() > deadline {
                panic!(
                    "node {} did not exit within {timeout:?}; log:\n{}",
                    self.node_id,
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `GET url` → (status, JSON body or Null).
pub async fn get_json(url: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    match req.send().await {
        Ok(res) => {
            let status = res.status().as_u16();
            let body = res.json().await.unwrap_or(serde_json::Value::Null);
            (status, body)
        }
        Err(e) => panic!("GET {url} failed: {e}"),
    }
}

/// Run `fleetctl <args>` to completion → (exit code, stdout, stderr).
pub fn fleetctl(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(fleetctl_bin())
        .args(args)
        .env_remove("FLEETCTL_CONFIG")
        .env_remove("FLEETCTL_OUTPUT")
        .output()
        .expect("run fleetctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Poll `f` every 50 ms until it returns `Some`, or panic with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
