//! A private Redis high-availability topology per test: one master, one replica and three
//! sentinels (quorum 2), all on free 127.0.0.1 ports. Never the system Redis.
//!
//! Data nodes run with `appendonly yes`, `appendfsync always`; the initial master also with
//! `min-replicas-to-write 1` (it refuses writes while its replica is away). Sentinels run as
//! `redis-server <conf> --sentinel` (Debian ships no separate `redis-sentinel` binary here) with
//! `down-after-milliseconds 1000` and `failover-timeout 3000`, so after `kill -9` of the master a
//! failover finishes in a few seconds.
//!
//! Variants ([`HaOptions`]): `requirepass`/`masterauth` on the data nodes with
//! `sentinel auth-pass`, a password on the sentinels themselves (`requirepass` +
//! `sentinel sentinel-pass`), and TLS everywhere (`--port 0`, `tls-replication yes`) with a
//! private CA.
//!
//! Every process is SIGKILLed when the [`RedisHa`] is dropped; every wait is bounded. Files live
//! in `/dev/shm` when it exists (see [`memory_tempdir`]).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::redis_server::{Access, log_tail};
use super::tls::TestCa;
use super::{free_port, require_binary};

pub const MASTER_NAME: &str = "fleet";
pub const DOWN_AFTER_MS: u64 = 1000;
pub const FAILOVER_TIMEOUT_MS: u64 = 3000;

#[derive(Clone, Debug, Default)]
pub struct HaOptions {
    /// `requirepass` + `masterauth` on master and replica, `sentinel auth-pass` on sentinels.
    pub password: Option<String>,
    /// `requirepass` on the sentinels (and `sentinel sentinel-pass`, so they talk to each other).
    pub sentinel_password: Option<String>,
    /// TLS only, on every instance and link, with a private CA (`tls-auth-clients no`).
    pub tls: bool,
}

struct Instance {
    port: u16,
    dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    log: PathBuf,
}

impl Instance {
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }
}

pub struct RedisHa {
    /// Holds every instance's directory until the topology is dropped.
    _dir: tempfile::TempDir,
    opts: HaOptions,
    ca: Option<TestCa>,
    /// `[initial master, initial replica]`.
    data: Vec<Instance>,
    sentinels: Vec<Instance>,
    /// Port of the master `kill_master` killed last.
    killed_master: Option<u16>,
}

impl RedisHa {
    pub fn start() -> RedisHa {
        Self::start_with(HaOptions::default())
    }

    pub fn start_with(opts: HaOptions) -> RedisHa {
        let ha = Self::start_unready(opts);
        ha.wait_sentinels_ready(Duration::from_secs(15));
        ha
    }

    /// For tests of clients, not of failover: returns as soon as master and replica are in
    /// sync and every sentinel names the master, without waiting the ~2 s until the sentinels
    /// have found each other (their hello messages) and could authorise a failover.
    pub fn start_for_clients(opts: HaOptions) -> RedisHa {
        let ha = Self::start_unready(opts);
        ha.wait_sentinels_name_master(Duration::from_secs(10));
        ha
    }

    fn start_unready(opts: HaOptions) -> RedisHa {
        let dir = memory_tempdir();
        let ca = opts.tls.then(TestCa::generate);
        let mut ha = RedisHa {
            _dir: dir,
            opts,
            ca,
            data: Vec::new(),
            sentinels: Vec::new(),
            killed_master: None,
        };
        let master_port = free_port();
        let replica_port = free_port();
        let m = ha.data_instance("master", master_port, None, true);
        ha.data.push(m);
        ha.spawn_data(0);
        let r = ha.data_instance("replica", replica_port, Some(master_port), false);
        ha.data.push(r);
        ha.spawn_data(1);
        ha.wait_replica_synced(replica_port, master_port, Duration::from_secs(10));
        ha.wait_master_counts_replica(master_port, Duration::from_secs(10));
        // Sentinels last: their first INFO of the master then already lists the replica.
        for i in 0..3 {
            let s = ha.sentinel_instance(i, master_port);
            ha.sentinels.push(s);
            let idx = ha.sentinels.len() - 1;
            ha.spawn_sentinel(idx);
        }
        ha
    }

    pub fn master_name(&self) -> &str {
        MASTER_NAME
    }

    /// `"127.0.0.1:port"` of each sentinel.
    pub fn sentinel_addrs(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect()
    }

    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(|s| s.port).collect()
    }

    /// Ports of the two data nodes, `[initial master, initial replica]`.
    pub fn data_ports(&self) -> Vec<u16> {
        self.data.iter().map(|d| d.port).collect()
    }

    /// The private CA of a TLS topology.
    pub fn ca(&self) -> Option<&TestCa> {
        self.ca.as_ref()
    }

    pub fn ca_file(&self) -> Option<PathBuf> {
        self.ca.as_ref().map(|c| c.ca_cert.clone())
    }

    pub fn options(&self) -> &HaOptions {
        &self.opts
    }

    /// How clients reach master and replica (password, TLS).
    pub fn data_access(&self) -> Access {
        Access {
            password: self.opts.password.clone(),
            tls_root: self.ca.as_ref().map(TestCa::ca_pem),
            ..Access::default()
        }
    }

    /// How clients reach the sentinels (sentinel password, TLS).
    pub fn sentinel_access(&self) -> Access {
        Access {
            password: self.opts.sentinel_password.clone(),
            tls_root: self.ca.as_ref().map(TestCa::ca_pem),
            ..Access::default()
        }
    }

    /// `SENTINEL GET-MASTER-ADDR-BY-NAME` from the first sentinel that answers, if any does.
    pub fn try_master_port(&self) -> Option<u16> {
        let access = self.sentinel_access();
        let cmd = sentinel_cmd(&["GET-MASTER-ADDR-BY-NAME", MASTER_NAME]);
        self.sentinels.iter().find_map(|s| {
            access
                .query::<Option<(String, u16)>>(s.port, &cmd)
                .ok()
                .flatten()
                .map(|(_, port)| port)
        })
    }

    /// The current master's port, as a sentinel reports it (waits up to 5 s for an answer).
    pub fn current_master_port(&self) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(p) = self.try_master_port() {
                return p;
            }
            if Instant::now() >= deadline {
                panic!(
                    "no sentinel reported a master for {MASTER_NAME} within 5 s\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL the current master (as the sentinels see it); returns its port.
    pub fn kill_master(&mut self) -> u16 {
        let port = self.current_master_port();
        self.kill(port);
        self.killed_master = Some(port);
        port
    }

    /// SIGKILL the data node on `port`.
    pub fn kill(&mut self, port: u16) {
        self.data_mut(port).kill();
    }

    /// Each sentinel's view of the master: `(port, flags)` from `SENTINEL MASTER`, `None` for a
    /// sentinel that did not answer.
    pub fn sentinel_views(&self) -> Vec<Option<(u16, String)>> {
        let access = self.sentinel_access();
        let cmd = sentinel_cmd(&["MASTER", MASTER_NAME]);
        self.sentinels
            .iter()
            .map(|s| {
                let m = access
                    .query::<std::collections::HashMap<String, String>>(s.port, &cmd)
                    .ok()?;
                Some((m.get("port")?.parse().ok()?, m.get("flags")?.clone()))
            })
            .collect()
    }

    /// Wait until the failover after [`RedisHa::kill_master`] has finished: every sentinel names
    /// the same new master with flags exactly `master` (not down, so the redis-rs sentinel
    /// lookup accepts it from any of them) and that node answers `ROLE` as master. Returns its
    /// port. Panics (with every view and log) on timeout.
    pub fn wait_for_failover(&self, timeout: Duration) -> u16 {
        let old = self
            .killed_master
            .expect("wait_for_failover without kill_master");
        let deadline = Instant::now() + timeout;
        let data = self.data_access();
        loop {
            let views = self.sentinel_views();
            if let Some(Some((p, _))) = views.first()
                && *p != old
                && views
                    .iter()
                    .all(|v| v.as_ref().is_some_and(|(q, f)| q == p && f == "master"))
                && matches!(
                    data.query::<redis::Role>(*p, &redis::cmd("ROLE")),
                    Ok(redis::Role::Primary { .. })
                )
            {
                return *p;
            }
            if Instant::now() >= deadline {
                panic!(
                    "no finished failover from port {old} within {timeout:?}; sentinel views \
                     (port, flags): {views:?}\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Start the (killed) data node on `port` again, as a replica of the current master, with its
    /// data directory; waits until it is in sync.
    pub fn restart_as_replica(&mut self, port: u16) {
        let master = self.current_master_port();
        assert_ne!(master, port, "{port} is the current master");
        let i = self.data_index(port);
        self.data[i].kill();
        let args = &mut self.data[i].args;
        if let Some(pos) = args.iter().position(|a| a == "--replicaof") {
            args.drain(pos..pos + 3);
        }
        args.extend(["--replicaof".into(), "127.0.0.1".into(), master.to_string()]);
        self.spawn_data(i);
        self.wait_replica_synced(port, master, Duration::from_secs(15));
        self.wait_sentinels_see_replica(port, Duration::from_secs(15));
    }

    /// Wait until every sentinel lists the node on `port` as a replica that is up (so it can be
    /// promoted by the next failover).
    fn wait_sentinels_see_replica(&self, port: u16, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let access = self.sentinel_access();
        let cmd = sentinel_cmd(&["REPLICAS", MASTER_NAME]);
        loop {
            let ok = self.sentinels.iter().all(|s| {
                access
                    .query::<Vec<std::collections::HashMap<String, String>>>(s.port, &cmd)
                    .is_ok_and(|rs| {
                        rs.iter().any(|r| {
                            r.get("port").map(String::as_str) == Some(&port.to_string())
                                && r.get("flags").map(String::as_str) == Some("slave")
                        })
                    })
            });
            if ok {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "sentinels do not all list {port} as an up replica within {timeout:?}\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every instance's log tail, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for inst in self.data.iter().chain(&self.sentinels) {
            out.push_str(&format!(
                "--- {} (port {}, {}):\n{}\n",
                inst.log.display(),
                inst.port,
                if inst.child.is_some() {
                    "running"
                } else {
                    "killed"
                },
                log_tail(&inst.log, 25)
            ));
        }
        out
    }

    fn data_index(&self, port: u16) -> usize {
        self.data
            .iter()
            .position(|d| d.port == port)
            .unwrap_or_else(|| panic!("no data node on port {port}"))
    }

    fn data_mut(&mut self, port: u16) -> &mut Instance {
        let i = self.data_index(port);
        &mut self.data[i]
    }

    fn tls_args(&self, port: u16) -> Vec<String> {
        let mut a = Vec::new();
        match &self.ca {
            None => a.extend(["--port".into(), port.to_string()]),
            Some(ca) => {
                a.extend(["--port".into(), "0".into(), "--tls-port".into()]);
                a.push(port.to_string());
                a.extend(ca.server_args());
                a.extend(
                    ["--tls-replication", "yes", "--tls-auth-clients", "no"].map(String::from),
                );
            }
        }
        a
    }

    fn data_instance(
        &self,
        name: &str,
        port: u16,
        replica_of: Option<u16>,
        min_replicas: bool,
    ) -> Instance {
        let dir = self._dir.path().join(name);
        std::fs::create_dir(&dir).expect("instance dir");
        let log = dir.join("redis.log");
        let mut args = self.tls_args(port);
        args.extend(
            [
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                // Full syncs start at once (the default waits 5 s for more replicas).
                "--repl-diskless-sync-delay",
                "0",
            ]
            .map(String::from),
        );
        args.push("--dir".into());
        args.push(dir.to_str().unwrap().into());
        args.push("--logfile".into());
        args.push(log.to_str().unwrap().into());
        if min_replicas {
            args.extend(
                [
                    "--min-replicas-to-write",
                    "1",
                    "--min-replicas-max-lag",
                    "10",
                ]
                .map(String::from),
            );
        }
        if let Some(pw) = &self.opts.password {
            args.extend([
                "--requirepass".into(),
                pw.clone(),
                "--masterauth".into(),
                pw.clone(),
            ]);
        }
        if let Some(m) = replica_of {
            args.extend(["--replicaof".into(), "127.0.0.1".into(), m.to_string()]);
        }
        Instance {
            port,
            dir,
            args,
            child: None,
            log,
        }
    }

    fn sentinel_instance(&self, i: usize, master_port: u16) -> Instance {
        let port = free_port();
        let dir = self._dir.path().join(format!("sentinel{i}"));
        std::fs::create_dir(&dir).expect("sentinel dir");
        let log = dir.join("sentinel.log");
        let mut conf = String::new();
        match &self.ca {
            None => conf.push_str(&format!("port {port}\n")),
            Some(ca) => conf.push_str(&format!(
                "port 0\ntls-port {port}\ntls-replication yes\ntls-auth-clients no\n\
                 tls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\n",
                ca.server_cert.display(),
                ca.server_key.display(),
                ca.ca_cert.display()
            )),
        }
        conf.push_str(&format!(
            "bind 127.0.0.1\ndir {}\nlogfile {}\n\
             sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
             sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n\
             sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n\
             sentinel parallel-syncs {MASTER_NAME} 1\n",
            dir.display(),
            log.display()
        ));
        if let Some(pw) = &self.opts.password {
            conf.push_str(&format!("sentinel auth-pass {MASTER_NAME} {pw}\n"));
        }
        if let Some(pw) = &self.opts.sentinel_password {
            conf.push_str(&format!("requirepass {pw}\nsentinel sentinel-pass {pw}\n"));
        }
        // Sentinel rewrites its config file, so each has its own, writable.
        let conf_path = dir.join("sentinel.conf");
        std::fs::write(&conf_path, conf).expect("write sentinel.conf");
        Instance {
            port,
            dir,
            args: vec![conf_path.to_str().unwrap().into(), "--sentinel".into()],
            child: None,
            log,
        }
    }

    fn spawn_data(&mut self, i: usize) {
        let child = spawn(&self.data[i].args);
        self.data[i].child = Some(child);
        let port = self.data[i].port;
        self.wait_ping(&self.data_access(), port, "redis-server");
    }

    fn spawn_sentinel(&mut self, i: usize) {
        let child = spawn(&self.sentinels[i].args);
        self.sentinels[i].child = Some(child);
        let port = self.sentinels[i].port;
        self.wait_ping(&self.sentinel_access(), port, "sentinel");
    }

    fn wait_ping(&self, access: &Access, port: u16, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if access.ping(port) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "{what} on port {port} did not answer PING within 10 s\n{}",
            self.logs()
        );
    }

    /// Wait until the node on `port` replicates `master` with the link up.
    fn wait_replica_synced(&self, port: u16, master: u16, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let access = self.data_access();
        loop {
            if let Ok(redis::Role::Replica {
                primary_port,
                replication_state,
                ..
            }) = access.query::<redis::Role>(port, &redis::cmd("ROLE"))
                && primary_port == master
                && replication_state == "connected"
            {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "replica on port {port} not in sync with {master} within {timeout:?}\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until the master counts its replica as good for `min-replicas-to-write` (it takes
    /// the replica online only at its first ACK after the sync, a moment after the replica
    /// itself reports `connected`); before that every write fails with `NOREPLICAS`.
    fn wait_master_counts_replica(&self, master: u16, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let access = self.data_access();
        loop {
            let info = access
                .query::<String>(master, redis::cmd("INFO").arg("replication"))
                .unwrap_or_default();
            if info.lines().any(|l| l.trim() == "min_slaves_good_slaves:1") {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "master {master} does not count its replica as good within {timeout:?}:\n\
                     {info}\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait until every sentinel answers `GET-MASTER-ADDR-BY-NAME` with the initial master.
    fn wait_sentinels_name_master(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let access = self.sentinel_access();
        let cmd = sentinel_cmd(&["GET-MASTER-ADDR-BY-NAME", MASTER_NAME]);
        let master = self.data[0].port;
        loop {
            let ready = self.sentinels.iter().all(|s| {
                access
                    .query::<Option<(String, u16)>>(s.port, &cmd)
                    .is_ok_and(|m| m.is_some_and(|(_, p)| p == master))
            });
            if ready {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "sentinels do not all name master {master} within {timeout:?}\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait until every sentinel sees the master up, its replica and the two other sentinels,
    /// and `SENTINEL CKQUORUM` passes, so a failover can be authorised.
    fn wait_sentinels_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let access = self.sentinel_access();
        let master_cmd = sentinel_cmd(&["MASTER", MASTER_NAME]);
        let ckquorum = sentinel_cmd(&["CKQUORUM", MASTER_NAME]);
        loop {
            let ready = self.sentinels.iter().all(|s| {
                let Ok(m) =
                    access.query::<std::collections::HashMap<String, String>>(s.port, &master_cmd)
                else {
                    return false;
                };
                m.get("flags").map(String::as_str) == Some("master")
                    && m.get("num-slaves").map(String::as_str) == Some("1")
                    && m.get("num-other-sentinels").map(String::as_str) == Some("2")
                    && access.query::<String>(s.port, &ckquorum).is_ok()
            });
            if ready {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "sentinels not ready (master, 1 replica, 3 sentinels) within {timeout:?}\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for RedisHa {
    fn drop(&mut self) {
        for inst in self.sentinels.iter_mut().chain(self.data.iter_mut()) {
            inst.kill();
        }
    }
}

/// A temporary directory in RAM (`/dev/shm`) when there is one. Sentinels `fsync` their config
/// on every state change and `appendfsync always` fsyncs every write: on a disk shared with
/// parallel cargo builds one such fsync can block an instance for seconds, long enough for the
/// other sentinels to mark it down (a stalled failover leader then fails over a second time, back
/// to the old master). A killed process loses nothing from the page cache, so what these tests
/// prove about `kill -9` holds on tmpfs too.
fn memory_tempdir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(d) = tempfile::Builder::new()
            .prefix("fleet-redis-ha")
            .tempdir_in(shm)
    {
        return d;
    }
    tempfile::tempdir().expect("tempdir")
}

fn sentinel_cmd(args: &[&str]) -> redis::Cmd {
    let mut c = redis::cmd("SENTINEL");
    for a in args {
        c.arg(*a);
    }
    c
}

fn spawn(args: &[String]) -> Child {
    let bin = require_binary("redis-server", "redis-server");
    Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server")
}
