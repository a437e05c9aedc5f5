//! One fleetctl node, wired once: its stores, its cluster manager with the leader jobs, its
//! heartbeat, the HTTP state, and a clean exit (stop heartbeats, give up the lease, mark the
//! node `left`).
//!
//! `fleetctl serve` and the tests build nodes the same way, through [`Node::start`], so there
//! is one start-up sequence and the server state holds every store it needs (no "not
//! configured" branches at request time). Process concerns — config files, the first-run
//! admin user, binding the port, signals — stay in `cli/serve.rs`.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::cluster::{ClusterBackend, ClusterManager, NodeInfo, Timings};
use crate::config::Config;
use crate::fleet::FleetStore;
use crate::fleet::janitor::MachineJanitor;
use crate::server::tls::ServerTls;
use crate::server::{self, AppState};
use crate::sessions::SessionStore;
use crate::sessions::janitor::SessionJanitor;
use crate::store::crypto::AtRest;

/// The three stores a node works on.
#[derive(Clone)]
pub struct Stores {
    /// The node registry and leader lease (`cluster.*`).
    pub cluster: Arc<dyn ClusterBackend>,
    /// Login sessions (`sessions.*`).
    pub sessions: Arc<dyn SessionStore>,
    /// Machines and metrics (`storage.*`).
    pub fleet: Arc<dyn FleetStore>,
}

impl Stores {
    /// Open the session and fleet stores the config names, next to an already open cluster
    /// backend (which `serve` waits for patiently; the other two connect lazily, so a node
    /// whose Redis is down starts and answers 503 until it is back).
    pub async fn open(config: &Config, cluster: Arc<dyn ClusterBackend>) -> anyhow::Result<Stores> {
        // One keyring for every store, read once (config validation already checked the file).
        let at_rest = AtRest::from_key_file(config.security.encryption_key_file.as_deref())
            .context("cannot load security.encryption_key_file")?;
        let sessions = crate::sessions::open_with(&config.sessions, at_rest.clone())
            .await
            .with_context(|| {
                format!("cannot open the {} session store", config.sessions.backend)
            })?;
        // The fleet store decides from `storage.encrypt_reports` what it seals.
        let fleet = crate::fleet::open_with(&config.storage, at_rest)
            .await
            .with_context(|| format!("cannot open the {} fleet store", config.storage.backend))?;
        Ok(Stores {
            cluster,
            sessions,
            fleet,
        })
    }

    /// All three from the config, the cluster backend included (failing if it is down).
    pub async fn open_all(config: &Config) -> anyhow::Result<Stores> {
        let cluster = crate::cluster::backend::open(&config.cluster)
            .await
            .with_context(|| {
                format!("cannot open the {} cluster backend", config.cluster.backend)
            })?;
        Self::open(config, cluster).await
    }
}

/// A started node: registered (or retrying), heartbeating, running leader jobs when it leads.
pub struct Node {
    state: AppState,
    manager: Arc<ClusterManager>,
    stop: watch::Sender<bool>,
    heartbeats: tokio::task::JoinHandle<()>,
}

impl Node {
    /// Wire the node and register it. A backend outage here is not fatal: the node starts,
    /// reports unhealthy and keeps retrying in its heartbeat loop.
    pub async fn start(config: Config, info: NodeInfo, stores: Stores) -> Node {
        let manager = ClusterManager::new(
            stores.cluster.clone(),
            info,
            Timings::from_config(&config.cluster),
            vec![
                Arc::new(SessionJanitor::new(stores.sessions.clone())),
                Arc::new(MachineJanitor::new(stores.fleet.clone(), &config.storage)),
            ],
        );
        // Register before taking traffic.
        manager.tick().await;
        let (stop, stop_rx) = watch::channel(false);
        let heartbeats = manager.spawn(stop_rx);
        let state = AppState::new(config, manager.clone(), stores.sessions, stores.fleet);
        Node {
            state,
            manager,
            stop,
            heartbeats,
        }
    }

    /// The HTTP state (for `server::app(state).oneshot(..)` in tests).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn manager(&self) -> &Arc<ClusterManager> {
        &self.manager
    }

    /// Serve HTTP (HTTPS with `tls`) on `listener` until `shutdown` completes and in-flight
    /// requests are done, then stop heartbeating and leave the cluster.
    pub async fn serve(
        self,
        listener: TcpListener,
        tls: Option<Arc<ServerTls>>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let result = server::run(listener, self.state.clone(), tls, shutdown)
            .await
            .context("HTTP server failed");
        self.stop().await;
        result
    }

    /// Stop heartbeats and leader jobs, give up the lease and mark the node `left`.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.heartbeats.await;
        let id = self.manager.node_id().to_owned();
        match self.manager.deregister().await {
            Ok(()) => info!(node_id = %id, "stopped"),
            Err(e) => {
                warn!(error = %e, "could not deregister; peers will see this node inactive after node_timeout")
            }
        }
    }
}
