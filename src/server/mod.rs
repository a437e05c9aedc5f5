//! The HTTP server: one axum `Router` for the agent API, fleet API, dashboard and cluster
//! endpoints, and `run`, which serves it until a shutdown future completes.
//!
//! `run` takes its listener and its shutdown signal as arguments (the mini-redis pattern), so
//! tests bind 127.0.0.1:0 and stop the server at will; `app` builds the router alone so tests
//! can call it with `tower::ServiceExt::oneshot` without a socket.

pub mod agent;
pub mod auth;
pub mod cluster_api;
pub mod cookie;
pub mod envelope;
pub mod error;
pub mod first_run;
pub mod fleet_api;
pub mod hardening;
pub mod health;
pub mod listener;
pub mod metrics;
pub mod proxy;
pub mod request_id;
pub mod tls;
pub mod verify_pool;
pub mod web;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::routing::{delete, get, post};
use tokio::net::TcpListener;

use crate::cluster::{ClusterManager, ClusterStatus, Health};
use crate::config::Config;
use crate::fleet::FleetStore;
use crate::fleet::view::Thresholds;
use error::ApiError;

/// Every response names the node that served it, so operators (and failover tests) can tell
/// which node behind the load balancer answered.
pub const NODE_HEADER: &str = "x-fleet-node";

/// Shared by every handler. Cheap to clone. Built by [`crate::node::Node::start`].
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
    /// Login sessions, cookies and trusted proxies.
    web: Arc<auth::WebAuth>,
}

#[derive(Clone)]
struct Inner {
    config: Config,
    node: Arc<ClusterManager>,
    /// `cluster.enabled`: standalone nodes still keep a one-node registry, but say so.
    cluster_enabled: bool,
    /// The node id as a header value, built once.
    node_header: HeaderValue,
    /// Machines and metrics (`storage.*`).
    fleet: Arc<dyn FleetStore>,
    /// The node's index of the fleet, for the summary, the listing and `/metrics`.
    fleet_index: Arc<crate::fleet::index::FleetIndex>,
    /// This node's Prometheus metrics.
    metrics: Arc<metrics::Metrics>,
}

impl AppState {
    pub fn new(
        config: Config,
        node: Arc<ClusterManager>,
        sessions: Arc<dyn crate::sessions::SessionStore>,
        fleet: Arc<dyn FleetStore>,
    ) -> AppState {
        let node_header = HeaderValue::from_str(node.node_id())
            .unwrap_or_else(|_| HeaderValue::from_static("invalid-node-id"));
        // Pay for the dummy password hash now, not during the first login with an unknown name.
        web::warm_up();
        let metrics: Arc<metrics::Metrics> = Arc::default();
        metrics.add_source(Arc::new(metrics::ActiveSessions::new(sessions.clone())));
        AppState {
            web: Arc::new(auth::WebAuth::new(&config, sessions)),
            inner: Arc::new(Inner {
                cluster_enabled: config.cluster.enabled,
                config,
                node,
                node_header,
                fleet_index: Arc::new(crate::fleet::index::FleetIndex::new(fleet.clone())),
                fleet,
                metrics,
            }),
        }
    }

    pub fn fleet(&self) -> &Arc<dyn FleetStore> {
        &self.inner.fleet
    }

    pub fn fleet_index(&self) -> &crate::fleet::index::FleetIndex {
        &self.inner.fleet_index
    }

    pub fn fleet_thresholds(&self) -> Thresholds {
        Thresholds::from_config(&self.inner.config.storage)
    }

    pub fn metrics(&self) -> &Arc<metrics::Metrics> {
        &self.inner.metrics
    }

    pub fn web(&self) -> &auth::WebAuth {
        &self.web
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn node(&self) -> &Arc<ClusterManager> {
        &self.inner.node
    }

    pub fn health(&self) -> Health {
        self.inner.node.health()
    }

    /// The registry as this node sees it, marked with this node's id.
    pub async fn cluster_status(&self) -> Result<ClusterStatus, ApiError> {
        let node = &self.inner.node;
        let mut status = ClusterStatus::read(
            node.backend().as_ref(),
            Some(node.node_id().to_string()),
            node.timings().node_timeout,
        )
        .await?;
        status.enabled = self.inner.cluster_enabled;
        Ok(status)
    }
}

/// The whole router.
pub fn app(state: AppState) -> Router {
    let limits = hardening::Limits::from_config(&state.config().server);
    Router::new()
        .route("/api/fleet/cluster/health", get(health::health))
        .merge(routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // One layer for every route and the fallback (see `envelope`): ids, metrics, limits,
        // timeouts, panics, error shapes and headers.
        .layer(envelope::Envelope::new(state.clone(), limits))
        .with_state(state)
}

/// Every route but the health check.
fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/fleet/cluster/status", get(cluster_api::status))
        .route("/api/fleet/cluster/nodes", get(cluster_api::nodes))
        .route("/api/fleet/cluster/nodes/{id}", delete(cluster_api::remove))
        .route(
            "/api/fleet/cluster/nodes/{id}/drain",
            post(cluster_api::drain),
        )
        .route(
            "/api/fleet/cluster/nodes/{id}/undrain",
            post(cluster_api::undrain),
        )
        .route("/api/fleet/report", post(agent::report))
        .route("/api/fleet/machines", get(fleet_api::machines))
        .route("/api/fleet/machines/{id}", get(fleet_api::machine))
        .route("/api/fleet/summary", get(fleet_api::summary))
        .route("/api/fleet/keys", get(fleet_api::keys))
        .route("/metrics", get(metrics::metrics))
        .merge(web::routes())
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}

/// Keep the node's memory in 4 KiB pages: no transparent huge pages for this process.
///
/// mimalloc asks for huge pages (`madvise(MADV_HUGEPAGE)`) on the arenas it reserves, and with
/// THP on (`always` or `madvise`, the usual defaults) the kernel backs them in 2 MiB units:
/// each idle keep-alive connection (hyper's 8 KiB read and 8 KiB write buffers, the task) then
/// costs ~23 KiB of RSS instead of ~15, and 10,000 agents with a connection each 268 MiB
/// instead of 185 (docs/performance.md, "A fleet of 10,000 agents"). A node's heap is tens to a
/// few hundred MiB, where huge pages buy little. Failing is harmless (old kernel, seccomp):
/// say so at debug level.
pub fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::debug!(error = %e, "cannot disable transparent huge pages");
    }
}

/// Serve `state` on `listener` (over TLS when `tls` is given) until `shutdown` completes,
/// then stop accepting and let in-flight requests finish. See `listener.rs`.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    tls: Option<Arc<tls::ServerTls>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let opts = listener::ListenOptions {
        header_read_timeout: state.config().server.header_read_timeout.as_duration(),
        ..listener::ListenOptions::default()
    };
    listener::serve(app(state), listener, tls, opts, shutdown).await
}
