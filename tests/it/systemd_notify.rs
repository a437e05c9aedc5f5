//! `fleetctl serve` speaks systemd's notify protocol (src/systemd.rs) to a fake service
//! manager: the test binds the unix datagram socket itself and passes it as `NOTIFY_SOCKET`,
//! the one stand-in in this suite (no systemd runs as PID 1 here). Everything else is real:
//! a private redis-server and real `fleetctl serve` processes.
//!
//! Checked: READY=1 only once the node is registered (also when Redis comes up after the
//! node), WATCHDOG=1 from every heartbeat when WATCHDOG_USEC is set and never otherwise,
//! STOPPING=1 on SIGTERM, and unusable NOTIFY_SOCKET / WATCHDOG_USEC values named in the log.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::node::{ADMIN_TOKEN, sha256_hex};
use crate::support::{RedisServer, fleetctl_bin, free_port};

/// The fake service manager's end: a bound datagram socket.
struct FakeSystemd {
    socket: UnixDatagram,
    path: PathBuf,
}

impl FakeSystemd {
    fn bind(dir: &Path) -> FakeSystemd {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the fake NOTIFY_SOCKET");
        FakeSystemd { socket, path }
    }

    /// The next notification, or `None` after `timeout`.
    fn recv(&self, timeout: Duration) -> Option<String> {
        self.socket.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = [0u8; 4096];
        match self.socket.recv(&mut buf) {
            Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("recv on the fake NOTIFY_SOCKET: {e}"),
        }
    }

    /// Notifications until one satisfies `pred` (returned with those before it).
    fn until(&self, timeout: Duration, what: &str, pred: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if let Some(m) = self.recv(left) {
                let done = pred(&m);
                seen.push(m);
                if done {
                    return seen;
                }
            } else {
                break;
            }
        }
        panic!("no {what} within {timeout:?}; got {seen:?}");
    }

    /// Everything that arrives within `window`.
    fn drain_for(&self, window: Duration) -> Vec<String> {
        let deadline = Instant::now() + window;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.recv(left) {
                Some(m) => seen.push(m),
                None => break,
            }
        }
        seen
    }
}

/// A `fleetctl serve` child with extra environment, killed on drop.
struct Served {
    child: Child,
    log: PathBuf,
    port: u16,
}

impl Served {
    fn start(config: &Path, node_id: &str, env: &[(&str, &str)]) -> Served {
        let dir = config.parent().unwrap();
        let log = dir.join(format!("{node_id}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let port = free_port();
        let mut cmd = Command::new(fleetctl_bin());
        cmd.current_dir(dir)
            .arg("--config")
            .arg(config)
            .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--node-id", node_id])
            .env("RUST_LOG", "info")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        Served {
            child: cmd.spawn().expect("spawn fleetctl serve"),
            log,
            port,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn sigterm(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM");
    }

    fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "node did not exit; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(dir: &Path, redis_port: u16) -> PathBuf {
    let config = dir.join("fleet.yaml");
    std::fs::write(
        &config,
        format!(
            "server:\n  drain_timeout: 1\n\
             cluster:\n  enabled: true\n  backend: redis\n  heartbeat_interval: 1\n  node_timeout: 3\n  \
             redis_host: 127.0.0.1\n  redis_port: {redis_port}\n\
             auth:\n  admin_tokens:\n    - {{ name: tests, sha256: \"{}\" }}\n",
            sha256_hex(ADMIN_TOKEN)
        ),
    )
    .unwrap();
    config
}

/// The node's record as `cluster status --output json` reads it from the backend.
fn registered_state(config: &Path, node_id: &str) -> Option<String> {
    let out = Command::new(fleetctl_bin())
        .arg("--config")
        .arg(config)
        .args(["--output", "json", "cluster", "status"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["node_id"] == node_id)
        .and_then(|n| n["status"].as_str().map(str::to_string))
}

#[test]
fn ready_after_registration_watchdog_every_heartbeat_stopping_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start();
    let config = write_config(dir.path(), redis.port);
    let systemd = FakeSystemd::bind(dir.path());
    let t0 = Instant::now();
    let mut node = Served::start(
        &config,
        "notify-1",
        &[
            ("NOTIFY_SOCKET", systemd.path.to_str().unwrap()),
            ("WATCHDOG_USEC", "20000000"),
        ],
    );

    let before = systemd.until(Duration::from_secs(15), "READY=1", |m| {
        m.starts_with("READY=1")
    });
    let ready = before.last().unwrap();
    println!(
        "[measure] READY=1 {:.2}s after spawn",
        t0.elapsed().as_secs_f64()
    );
    assert!(
        ready.contains(&format!("STATUS=serving on http://127.0.0.1:{}", node.port))
            && ready.contains("as node notify-1"),
        "{ready:?}"
    );
    // READY means registered: the backend already lists the node.
    assert_eq!(
        registered_state(&config, "notify-1").as_deref(),
        Some("active"),
        "READY=1 before the node was in the registry; log:\n{}",
        node.log_text()
    );

    // Heartbeat 1 s: a few WATCHDOG=1 in 3.5 s, and nothing but WATCHDOG=1.
    let pings = systemd.drain_for(Duration::from_millis(3500));
    assert!(pings.len() >= 3, "WATCHDOG=1 per heartbeat: {pings:?}");
    assert!(pings.iter().all(|m| m == "WATCHDOG=1"), "{pings:?}");

    node.sigterm();
    let stopping = systemd.until(Duration::from_secs(5), "STOPPING=1", |m| {
        m.starts_with("STOPPING=1")
    });
    assert!(
        stopping
            .last()
            .unwrap()
            .contains("STATUS=draining after SIGTERM"),
        "{stopping:?}"
    );
    let status = node.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit {status}; log:\n{}", node.log_text());
    assert!(
        node.log_text().contains("systemd watchdog on: 20s"),
        "{}",
        node.log_text()
    );
}

#[test]
fn ready_waits_for_the_backend_and_no_watchdog_without_watchdog_usec() {
    let dir = tempfile::tempdir().unwrap();
    // Learn a free port for Redis, then keep Redis down while the node starts.
    let mut redis = RedisServer::start();
    redis.stop();
    let config = write_config(dir.path(), redis.port);
    let systemd = FakeSystemd::bind(dir.path());
    let node = Served::start(
        &config,
        "notify-2",
        &[("NOTIFY_SOCKET", systemd.path.to_str().unwrap())],
    );

    let waiting = systemd.until(Duration::from_secs(10), "STATUS=waiting", |m| {
        m.starts_with("STATUS=waiting for the cluster backend")
    });
    assert!(
        waiting.iter().all(|m| !m.contains("READY=1")),
        "{waiting:?}"
    );
    // Still not ready two seconds later: Redis is down.
    let quiet = systemd.drain_for(Duration::from_secs(2));
    assert!(quiet.iter().all(|m| !m.contains("READY=1")), "{quiet:?}");

    redis.restart();
    let up = Instant::now();
    let msgs = systemd.until(Duration::from_secs(10), "READY=1", |m| {
        m.starts_with("READY=1")
    });
    println!(
        "[measure] READY=1 {:.2}s after Redis came up",
        up.elapsed().as_secs_f64()
    );
    assert!(msgs.iter().all(|m| m != "WATCHDOG=1"), "{msgs:?}");
    // No WATCHDOG_USEC: heartbeats happen, but nothing feeds a watchdog nobody asked for.
    let after = systemd.drain_for(Duration::from_millis(2500));
    assert!(after.is_empty(), "unexpected notifications: {after:?}");
    assert_eq!(
        registered_state(&config, "notify-2").as_deref(),
        Some("active"),
        "log:\n{}",
        node.log_text()
    );
}

#[test]
fn unusable_systemd_variables_are_named_and_the_node_still_serves() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start();
    let config = write_config(dir.path(), redis.port);
    let systemd = FakeSystemd::bind(dir.path());
    let sock = systemd.path.to_str().unwrap().to_string();

    // A relative socket path: no notifications at all, one warning naming the value.
    let node = Served::start(&config, "notify-3", &[("NOTIFY_SOCKET", "notify.sock")]);
    wait_for_log(
        &node,
        "NOTIFY_SOCKET=\"notify.sock\" is neither an absolute socket path",
    );
    assert_eq!(
        wait_registered(&config, "notify-3"),
        "active",
        "the node serves regardless"
    );
    drop(node);

    // A malformed WATCHDOG_USEC: READY still comes, WATCHDOG=1 never does.
    let node = Served::start(
        &config,
        "notify-4",
        &[("NOTIFY_SOCKET", &sock), ("WATCHDOG_USEC", "soon")],
    );
    systemd.until(Duration::from_secs(15), "READY=1", |m| {
        m.starts_with("READY=1")
    });
    let after = systemd.drain_for(Duration::from_millis(2500));
    assert!(after.is_empty(), "{after:?}");
    wait_for_log(
        &node,
        "WATCHDOG_USEC=\"soon\" is not a positive number of microseconds",
    );
    drop(node);

    // WATCHDOG_PID naming another process (inherited variables): not ours to feed.
    let node = Served::start(
        &config,
        "notify-5",
        &[
            ("NOTIFY_SOCKET", &sock),
            ("WATCHDOG_USEC", "20000000"),
            ("WATCHDOG_PID", "1"),
        ],
    );
    systemd.until(Duration::from_secs(15), "READY=1", |m| {
        m.starts_with("READY=1")
    });
    let after = systemd.drain_for(Duration::from_millis(2500));
    assert!(after.is_empty(), "{after:?}");
    drop(node);

    // A watchdog shorter than the heartbeat loop can feed: warned, with the fix.
    let node = Served::start(
        &config,
        "notify-6",
        &[("NOTIFY_SOCKET", &sock), ("WATCHDOG_USEC", "3000000")],
    );
    wait_for_log(&node, "set WatchdogSec to at least 12s");
}

fn wait_for_log(node: &Served, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if node.log_text().contains(needle) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("log lacks {needle:?}:\n{}", node.log_text());
}

fn wait_registered(config: &Path, node_id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(s) = registered_state(config, node_id) {
            return s;
        }
        assert!(Instant::now() < deadline, "{node_id} never registered");
        std::thread::sleep(Duration::from_millis(100));
    }
}
