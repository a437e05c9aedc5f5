//! Real components for tests: private redis-server instances, free ports, the fleetctl binary.
#![allow(dead_code)]

pub mod app;
pub mod browser;
pub mod certs;
pub mod lb;
pub mod load;
pub mod node;
pub mod postgres;
pub mod redis_ha;
pub mod redis_server;
pub mod redis_target;
pub mod reliability;
pub mod tls;

use std::net::TcpListener;
use std::path::PathBuf;

#[allow(unused_imports)]
pub use redis_ha::RedisHa;
#[allow(unused_imports)]
pub use redis_server::RedisServer;

/// A port that was free on 127.0.0.1 a moment ago.
/// A free 127.0.0.1 port, never one this test process was given before: the kernel may hand
/// out a just-closed port again at once, and two servers of one test (a Redis master and its
/// replica) must not get the same one.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind 127.0.0.1:0")
            .local_addr()
            .expect("local addr")
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// The `fleetctl` binary cargo built for these tests.
pub fn fleetctl_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fleetctl"))
}

/// Find a system binary on PATH or in the sbin directories; panic with install advice if absent.
/// Real-component tests never skip: a missing server is a failure.
pub fn require_binary(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    for d in dirs {
        let p = d.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("`{name}` not found: install the Debian package `{package}` (scripts/test does this)");
}
