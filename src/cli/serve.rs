//! `fleetctl serve`: run one server node until SIGTERM/SIGINT, then drain and leave.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::net::TcpListener;
use tracing::{info, warn};

use super::Globals;
use crate::cluster::{self, ClusterManager, NodeInfo};
use crate::config::Config;
use crate::exit::{ExitCode, UsageError};
use crate::node::{Node, Stores};
use crate::server::{self, first_run};
use crate::systemd::Notifier;

/// Run a server node.
///
/// Starts the HTTP server (cluster endpoints now; agent API, fleet API and dashboard as they
/// land). The node registers in the cluster backend, heartbeats every
/// `cluster.heartbeat_interval`, and on SIGTERM or SIGINT drains: its health check answers 503
/// at once, it keeps serving for `server.drain_timeout` so the load balancer notices, then
/// finishes in-flight requests, deregisters and exits 0. A second signal skips the wait.
#[derive(Debug, Args)]
pub struct Serve {
    /// Address to listen on, overriding `server.host`
    #[arg(long, value_name = "ADDR")]
    pub host: Option<String>,

    /// Port to listen on, overriding `server.port` (0 picks a free port)
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,

    /// Node id, overriding `cluster.node_id` [default: <hostname>-<6 random chars>]
    #[arg(long, value_name = "ID")]
    pub node_id: Option<String>,
}

impl Serve {
    pub async fn run(self, g: &Globals) -> anyhow::Result<ExitCode> {
        // First, before the node's heap grows: see the function's doc.
        server::disable_transparent_huge_pages();
        let loaded = g.load_config()?;
        let mut config = loaded.config;
        match &loaded.path {
            Some(p) => info!(config = %p.display(), "config loaded"),
            None => info!("no config file: standalone mode on the embedded default"),
        }
        for w in &loaded.warnings {
            warn!("config: {w}");
        }
        if let Some(h) = self.host {
            config.server.host = h;
        }
        if let Some(p) = self.port {
            config.server.port = p;
        }
        if let Some(id) = self.node_id {
            config.cluster.node_id = Some(id);
        }
        // systemd (src/systemd.rs): a no-op unless started by a `Type=notify` unit.
        let notifier = Arc::new(systemd_notifier(&config));

        if config.auth.users.is_empty() {
            if config.cluster.enabled {
                warn!(
                    "no users in auth.users: nobody can log in to the dashboard; add one with `fleetctl users hash-password`"
                );
            } else {
                let data_dir = config
                    .storage
                    .db_path
                    .parent()
                    .map(std::path::Path::to_path_buf)
                    .unwrap_or_default();
                let (user, new_password) = first_run::ensure_admin(&data_dir)?;
                if let Some(password) = new_password {
                    announce_first_admin(
                        &user.username,
                        &password,
                        &first_run::admin_file(&data_dir),
                    );
                }
                config.auth.users.push(user);
            }
        }

        let addr = format!("{}:{}", config.server.host, config.server.port);
        let listener = TcpListener::bind(&addr).await.map_err(|e| {
            anyhow::Error::new(e).context(UsageError(format!(
                "cannot listen on {addr}: is another fleetctl serve running? choose another --port or `server.port`"
            )))
        })?;
        let local = listener.local_addr()?;
        let info = node_info(&config, local);
        // TLS: load the certificate now, so a bad file stops the node before it registers;
        // SIGHUP reloads it (src/server/tls.rs).
        let tls = match server::tls::TlsSettings::from_config(config.server.tls.as_ref()) {
            None => None,
            Some(settings) => {
                let tls = server::tls::ServerTls::load(settings)
                    .map_err(|e| anyhow::Error::new(UsageError(format!("server.tls: {e}"))))?;
                #[cfg(unix)]
                tls.clone()
                    .reload_on_sighup()
                    .context("cannot install the SIGHUP handler for certificate reloads")?;
                Some(tls)
            }
        };
        let scheme = if tls.is_some() { "https" } else { "http" };

        let Some(backend) = open_backend_patiently(&config.cluster, &notifier).await? else {
            info!("stopped by a signal while waiting for the cluster backend");
            return Ok(ExitCode::OK);
        };
        // Sessions and fleet data connect lazily: a store that is down now does not stop the
        // node; the routes that need it answer 503 until it is back.
        let stores = Stores::open(&config, backend).await?;
        info!(
            node_id = %info.node_id,
            url = %info.url,
            cluster = if config.cluster.enabled { "on" } else { "off" },
            backend = %config.cluster.backend,
            "fleetctl serve listening on {scheme}://{local}"
        );
        // Draining lets a load balancer move traffic away first; a standalone server has no
        // peers to move it to, so it stops at once.
        let drain_timeout = if config.cluster.enabled {
            config.server.drain_timeout.as_duration()
        } else {
            Duration::ZERO
        };
        let node = Node::start(config, info, stores).await;
        // systemd: READY=1 once registered (now, or after the first tick that registers),
        // WATCHDOG=1 after every heartbeat tick.
        notify_ready_and_feed_watchdog(node.manager(), &notifier, local);
        let shutdown = drain_on_signal(node.manager().clone(), drain_timeout, notifier.clone());
        node.serve(listener, tls, shutdown).await?;
        Ok(ExitCode::OK)
    }
}

/// The one time the generated password is shown. Printed on stderr, outside the log format,
/// so it stands out and is not shipped to a log collector as structured data.
fn announce_first_admin(username: &str, password: &str, file: &std::path::Path) {
    eprintln!(
        "\n  First run: created dashboard user `{username}` with password\n\n      {password}\n\n  \
         It is shown only this once; {} holds only its argon2id hash.\n  \
         Lost it? Stop the server, delete that file and start again for a new one.\n",
        file.display()
    );
}

/// Open the cluster backend, waiting for it when it is down: after a power cut the nodes may
/// boot before Redis does, and they should join once it is up rather than exit. Bad config
/// (anything but `Unavailable`) fails at once. `None` when a signal arrives while waiting.
async fn open_backend_patiently(
    config: &crate::config::ClusterConfig,
    notifier: &Notifier,
) -> anyhow::Result<Option<std::sync::Arc<dyn cluster::ClusterBackend>>> {
    let mut delay = Duration::from_millis(250);
    let mut warned = false;
    let mut signals = Signals::new()?;
    loop {
        match cluster::backend::open(config).await {
            Ok(b) => {
                if warned {
                    info!(backend = %config.backend, "cluster backend reachable: joining");
                }
                return Ok(Some(b));
            }
            Err(e @ cluster::BackendError::Unavailable { .. }) => {
                if !warned {
                    warn!(error = %e, "cluster backend unavailable at start-up; waiting for it (health checks get no answer until then)");
                    notifier.status(&format!("waiting for the cluster backend: {e}"));
                    warned = true;
                }
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "cannot open the {} cluster backend",
                    config.backend
                )));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = signals.next() => return Ok(None),
        }
        delay = (delay * 2).min(
            config
                .heartbeat_interval
                .as_duration()
                .max(Duration::from_millis(250)),
        );
    }
}

/// Who this node says it is: node id, hostname and the URL peers and load balancers use.
fn node_info(config: &Config, local: SocketAddr) -> NodeInfo {
    let auto = |v: &Option<String>| {
        v.as_deref()
            .filter(|s| !s.is_empty() && *s != "auto")
            .map(str::to_string)
    };
    let hostname = auto(&config.cluster.hostname).unwrap_or_else(|| {
        hostname::get()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into())
    });
    let node_id =
        auto(&config.cluster.node_id).unwrap_or_else(|| cluster::generate_node_id(&hostname));
    let url = config.server.advertise_url.clone().unwrap_or_else(|| {
        let scheme = if config.server.tls.is_some() {
            "https"
        } else {
            "http"
        };
        // A wildcard bind address is not reachable; peers and LBs need the host name.
        let host = if local.ip().is_unspecified() {
            hostname.clone()
        } else {
            local.ip().to_string()
        };
        format!("{scheme}://{host}:{}", local.port())
    });
    NodeInfo {
        node_id,
        hostname,
        port: local.port(),
        url,
        version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// Resolves when the server should stop accepting: after the first SIGTERM/SIGINT, the node
/// drains for `drain_timeout` (health 503, still serving); a second signal cuts that short.
async fn drain_on_signal(
    manager: std::sync::Arc<ClusterManager>,
    drain_timeout: Duration,
    notifier: Arc<Notifier>,
) {
    let mut signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => {
            // Without signal handling the node can only be killed; keep serving rather than
            // refusing to start, and say why a SIGTERM will not drain.
            warn!(error = %e, "cannot install SIGTERM/SIGINT handlers: the node will not drain on signals");
            std::future::pending::<()>().await;
            return;
        }
    };
    let which = signals.next().await;
    info!(
        signal = which,
        "draining: health check now answers 503; serving for {}s before stopping",
        drain_timeout.as_secs_f64()
    );
    notifier.stopping(&format!(
        "draining after {which}: serving {}s more, then leaving the cluster",
        drain_timeout.as_secs_f64()
    ));
    manager.begin_shutdown().await;
    tokio::select! {
        _ = tokio::time::sleep(drain_timeout) => info!("drain period over: finishing in-flight requests"),
        s = signals.next() => warn!(signal = s, "second signal: stopping without waiting for the drain period"),
    }
}

/// The systemd notifier from the environment, with a warning for anything unusable and for a
/// watchdog too short for the heartbeat loop to feed.
fn systemd_notifier(config: &Config) -> Notifier {
    let (notifier, problems) = Notifier::from_env();
    for p in problems {
        warn!("systemd: {p}");
    }
    if let Some(timeout) = notifier.watchdog_timeout() {
        // The loop ticks every heartbeat_interval, and one tick may take up to
        // max(heartbeat_interval, 5s) before it gives up on the backend.
        let hb = config.cluster.heartbeat_interval.as_duration();
        let worst_gap = hb + hb.max(Duration::from_secs(5));
        if timeout <= worst_gap {
            warn!(
                "systemd: WatchdogSec={}s is not longer than the heartbeat loop's worst gap ({}s = heartbeat_interval + tick timeout); systemd may restart a healthy node; set WatchdogSec to at least {}s",
                timeout.as_secs_f64(),
                worst_gap.as_secs_f64(),
                (worst_gap * 2).as_secs()
            );
        } else {
            info!(
                "systemd watchdog on: {}s, fed after every heartbeat",
                timeout.as_secs_f64()
            );
        }
    }
    notifier
}

/// Tell systemd the node is ready once it is registered in the backend and serving, and feed
/// the watchdog from the heartbeat loop. Registration may come later than start-up when the
/// backend dropped out between opening it and the first heartbeat: then the first tick that
/// registers sends READY.
fn notify_ready_and_feed_watchdog(
    manager: &Arc<ClusterManager>,
    notifier: &Arc<Notifier>,
    local: SocketAddr,
) {
    if !notifier.enabled() {
        return;
    }
    use std::sync::atomic::{AtomicBool, Ordering};
    let ready = Arc::new(AtomicBool::new(false));
    let status = format!("serving on http://{local} as node {}", manager.node_id());
    let registered = |m: &ClusterManager| !matches!(m.health(), cluster::Health::Unhealthy { .. });
    let send_ready = {
        let ready = ready.clone();
        let notifier = notifier.clone();
        move || {
            if !ready.swap(true, Ordering::SeqCst) {
                notifier.ready(&status);
            }
        }
    };
    if registered(manager) {
        send_ready();
    } else {
        notifier.status("serving, not registered in the cluster backend yet; retrying");
    }
    let notifier = notifier.clone();
    manager.on_tick(move |m| {
        notifier.watchdog();
        if registered(m) {
            send_ready();
        }
    });
}

/// SIGTERM and SIGINT as one stream.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => "SIGTERM",
                _ = self.int.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
