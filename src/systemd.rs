//! The systemd notify protocol (`sd_notify(3)`), spoken directly: one datagram of
//! `KEY=VALUE` lines per notification, sent to the unix socket named by `NOTIFY_SOCKET`.
//!
//! `fleetctl serve` under `Type=notify` (`packaging/fleetctl.service`) says `READY=1` once the
//! node has registered and serves, `STOPPING=1` when it starts draining, `STATUS=…` while it
//! waits for its backend, and `WATCHDOG=1` after each heartbeat-loop tick when the unit sets
//! `WatchdogSec=` (systemd then passes `WATCHDOG_USEC`), so a wedged heartbeat loop gets the
//! node restarted.
//!
//! Why not the `sd-notify` crate: the protocol is one `sendto` on a datagram socket, std has
//! everything for it (including Linux abstract sockets, `@name`), and owning it lets the
//! environment be read once into a value that tests build from strings. Outside systemd
//! (`NOTIFY_SOCKET` unset) every call is a no-op. A notification that cannot be sent is
//! logged once and never stops the node: systemd supervision is advisory to a server that
//! must keep serving.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tracing::{debug, warn};

/// Where notifications go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyTarget {
    /// A socket file (`NOTIFY_SOCKET=/run/systemd/notify`).
    Path(PathBuf),
    /// A Linux abstract socket (`NOTIFY_SOCKET=@name`).
    Abstract(Vec<u8>),
}

/// Why the systemd environment was not usable. Logged as a warning by `serve`, which then
/// runs without notifications (or without the watchdog) rather than refusing to start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyEnvError {
    #[error(
        "NOTIFY_SOCKET={0:?} is neither an absolute socket path nor an abstract socket (@name); not notifying systemd"
    )]
    BadSocket(String),
    #[error(
        "WATCHDOG_USEC={0:?} is not a positive number of microseconds; the systemd watchdog will not be fed"
    )]
    BadWatchdogUsec(String),
}

/// This process's link to the service manager, read once from the environment.
#[derive(Debug)]
pub struct Notifier {
    target: Option<NotifyTarget>,
    /// `WATCHDOG_USEC` when it is meant for this process (`WATCHDOG_PID` absent or ours).
    watchdog: Option<Duration>,
    /// Logged the first failed send already.
    warned: AtomicBool,
}

impl Notifier {
    /// A notifier that sends nothing (not under systemd, or tests).
    pub fn disabled() -> Notifier {
        Notifier {
            target: None,
            watchdog: None,
            warned: AtomicBool::new(false),
        }
    }

    /// Read `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from the process environment.
    /// Unusable values are returned as warnings and leave that part disabled.
    pub fn from_env() -> (Notifier, Vec<NotifyEnvError>) {
        let var = |k: &str| std::env::var(k).ok();
        Notifier::from_vars(
            var("NOTIFY_SOCKET").as_deref(),
            var("WATCHDOG_USEC").as_deref(),
            var("WATCHDOG_PID").as_deref(),
            std::process::id(),
        )
    }

    /// The same from explicit values, for tests.
    pub fn from_vars(
        notify_socket: Option<&str>,
        watchdog_usec: Option<&str>,
        watchdog_pid: Option<&str>,
        pid: u32,
    ) -> (Notifier, Vec<NotifyEnvError>) {
        let mut problems = Vec::new();
        let target = match notify_socket.filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => match parse_target(s) {
                Some(t) => Some(t),
                None => {
                    problems.push(NotifyEnvError::BadSocket(s.to_string()));
                    None
                }
            },
        };
        // systemd sets WATCHDOG_PID to the main process; a child that inherited the variables
        // must not feed its parent's watchdog.
        let for_us = watchdog_pid.is_none_or(|p| p.trim().parse::<u32>().ok() == Some(pid));
        let watchdog = match watchdog_usec.filter(|s| !s.is_empty()) {
            Some(_) if !for_us || target.is_none() => None,
            None => None,
            Some(s) => match s.trim().parse::<u64>() {
                Ok(usec) if usec > 0 => Some(Duration::from_micros(usec)),
                _ => {
                    problems.push(NotifyEnvError::BadWatchdogUsec(s.to_string()));
                    None
                }
            },
        };
        (
            Notifier {
                target,
                watchdog,
                warned: AtomicBool::new(false),
            },
            problems,
        )
    }

    /// Whether a service manager is listening at all.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// The watchdog timeout systemd asked for, if any. Feed it at least twice per timeout.
    pub fn watchdog_timeout(&self) -> Option<Duration> {
        self.watchdog
    }

    /// `READY=1`: start-up finished, the node is registered and serving.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    /// `STOPPING=1`: the node is draining and will exit.
    pub fn stopping(&self, status: &str) {
        self.send(&format!("STOPPING=1\nSTATUS={}", one_line(status)));
    }

    /// `STATUS=…`: shown by `systemctl status`.
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }

    /// `WATCHDOG=1`, only when the unit enabled the watchdog.
    pub fn watchdog(&self) {
        if self.watchdog.is_some() {
            self.send("WATCHDOG=1");
        }
    }

    /// Send one notification; failures are logged once, then at debug.
    fn send(&self, message: &str) {
        let Some(target) = &self.target else {
            return;
        };
        if let Err(e) = send_to(target, message) {
            if self.warned.swap(true, Ordering::Relaxed) {
                debug!(error = %e, "systemd notification not sent");
            } else {
                warn!(error = %e, socket = ?target, "cannot notify systemd (NOTIFY_SOCKET); the unit may time out or be restarted by its watchdog");
            }
        }
    }
}

fn parse_target(s: &str) -> Option<NotifyTarget> {
    if let Some(name) = s.strip_prefix('@') {
        (!name.is_empty()).then(|| NotifyTarget::Abstract(name.as_bytes().to_vec()))
    } else if s.starts_with('/') {
        Some(NotifyTarget::Path(PathBuf::from(s)))
    } else {
        None
    }
}

/// `STATUS=` is one line: a newline would start another assignment.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

fn send_to(target: &NotifyTarget, message: &str) -> std::io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    let addr = match target {
        NotifyTarget::Path(p) => SocketAddr::from_pathname(p)?,
        NotifyTarget::Abstract(name) => abstract_addr(name)?,
    };
    let sent = socket.send_to_addr(message.as_bytes(), &addr)?;
    if sent != message.len() {
        return Err(std::io::Error::other(format!(
            "sent {sent} of {} bytes",
            message.len()
        )));
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn abstract_addr(name: &[u8]) -> std::io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name)
}

#[cfg(not(target_os = "linux"))]
fn abstract_addr(_name: &[u8]) -> std::io::Result<SocketAddr> {
    Err(std::io::Error::other(
        "abstract unix sockets exist only on Linux",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_socket_means_disabled_and_silent() {
        let (n, problems) = Notifier::from_vars(None, Some("30000000"), None, 1);
        assert!(problems.is_empty());
        assert!(!n.enabled());
        // A watchdog without a socket to feed it is meaningless.
        assert_eq!(n.watchdog_timeout(), None);
        n.ready("x");
        n.watchdog();
    }

    #[test]
    fn relative_socket_path_is_refused_with_a_reason() {
        let (n, problems) = Notifier::from_vars(Some("notify.sock"), None, None, 1);
        assert!(!n.enabled());
        assert_eq!(
            problems,
            vec![NotifyEnvError::BadSocket("notify.sock".into())]
        );
        assert!(problems[0].to_string().contains("absolute socket path"));
        let (_, problems) = Notifier::from_vars(Some("@"), None, None, 1);
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn watchdog_usec_is_parsed_and_checked() {
        let (n, p) = Notifier::from_vars(Some("/run/x"), Some("15000000"), None, 7);
        assert!(p.is_empty());
        assert_eq!(n.watchdog_timeout(), Some(Duration::from_secs(15)));
        for bad in ["abc", "0", "-5", "1.5"] {
            let (n, p) = Notifier::from_vars(Some("/run/x"), Some(bad), None, 7);
            assert_eq!(n.watchdog_timeout(), None, "{bad}");
            assert_eq!(
                p,
                vec![NotifyEnvError::BadWatchdogUsec(bad.into())],
                "{bad}"
            );
        }
    }

    #[test]
    fn watchdog_meant_for_another_pid_is_ignored() {
        let (n, p) = Notifier::from_vars(Some("/run/x"), Some("15000000"), Some("42"), 7);
        assert!(p.is_empty());
        assert_eq!(n.watchdog_timeout(), None);
        let (n, _) = Notifier::from_vars(Some("/run/x"), Some("15000000"), Some("7"), 7);
        assert_eq!(n.watchdog_timeout(), Some(Duration::from_secs(15)));
    }

    #[test]
    fn datagrams_reach_a_bound_socket_one_line_per_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let (n, _) = Notifier::from_vars(path.to_str(), Some("1000000"), None, 1);
        n.ready("serving\non :8768");
        n.watchdog();
        let mut buf = [0u8; 512];
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=serving on :8768");
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
    }

    #[test]
    fn a_missing_socket_does_not_panic() {
        let (n, _) = Notifier::from_vars(Some("/nonexistent/notify.sock"), None, None, 1);
        n.ready("a");
        n.stopping("b");
    }
}
