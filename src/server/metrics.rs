//! `GET /metrics`: this node's own Prometheus metrics, and the middleware that feeds them and
//! writes one log line per request.
//!
//! Request metrics are labelled by *route template* (`/api/fleet/machines/{id}`), never by
//! raw path, and by a fixed set of methods, so a scanner cannot blow up the label space.
//! Gauges about the cluster and the stores are read when scraped (with their round-trip
//! times), so they are never stale. Other parts of the server add their own gauges through
//! `MetricsSource` (the sessions store's active-session count is meant to arrive that way).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::extract::{MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::{debug, info};

use super::AppState;
use crate::cluster::{Health, NodeState};

/// Latency buckets in seconds: 1 ms to 10 s.
const BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Extra metrics from another part of the server, rendered at scrape time.
#[async_trait]
pub trait MetricsSource: Send + Sync {
    /// Complete Prometheus text lines (`# HELP`, `# TYPE` and samples).
    async fn render(&self) -> String;
}

/// Why a report was refused, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rejection {
    Unauthorized,
    UnsupportedMediaType,
    TooLarge,
    Malformed,
    Invalid,
    StoreUnavailable,
}

impl Rejection {
    fn as_str(self) -> &'static str {
        match self {
            Rejection::Unauthorized => "unauthorized",
            Rejection::UnsupportedMediaType => "unsupported_media_type",
            Rejection::TooLarge => "too_large",
            Rejection::Malformed => "malformed",
            Rejection::Invalid => "invalid",
            Rejection::StoreUnavailable => "store_unavailable",
        }
    }
}

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Counters {
    /// (route, method, status) → requests.
    requests: BTreeMap<(String, &'static str, u16), u64>,
    /// route → latency histogram.
    latency: BTreeMap<String, Histogram>,
    reports_accepted: u64,
    reports_rejected: BTreeMap<Rejection, u64>,
}

/// The node's metrics registry. Cheap to update from every request.
pub struct Metrics {
    started: Instant,
    counters: Mutex<Counters>,
    sources: RwLock<Vec<Arc<dyn MetricsSource>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Instant::now(),
            counters: Mutex::new(Counters::default()),
            sources: RwLock::new(Vec::new()),
        }
    }
}

impl Metrics {
    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        // Counters are plain numbers: a panic elsewhere cannot leave them inconsistent.
        self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Add gauges from elsewhere (e.g. the sessions store's active sessions).
    pub fn add_source(&self, source: Arc<dyn MetricsSource>) {
        self.sources
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(source);
    }

    pub fn observe(&self, route: &str, method: &'static str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut c = self.counters();
        *c.requests
            .entry((route.to_string(), method, status))
            .or_default() += 1;
        let h = c.latency.entry(route.to_string()).or_default();
        h.count += 1;
        h.sum += secs;
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                h.buckets[i] += 1;
            }
        }
    }

    pub fn report_accepted(&self) {
        self.counters().reports_accepted += 1;
    }

    pub fn report_rejected(&self, why: Rejection) {
        *self.counters().reports_rejected.entry(why).or_default() += 1;
    }

    /// The request counters and histograms as Prometheus text.
    fn render_requests(&self, out: &mut String) {
        let c = self.counters();
        out.push_str("# HELP fleetctl_http_requests_total HTTP requests served by this node.\n");
        out.push_str("# TYPE fleetctl_http_requests_total counter\n");
        for ((route, method, status), n) in &c.requests {
            let _ = writeln!(
                out,
                "fleetctl_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        out.push_str(
            "# HELP fleetctl_http_request_duration_seconds Time to answer a request, by route.\n",
        );
        out.push_str("# TYPE fleetctl_http_request_duration_seconds histogram\n");
        for (route, h) in &c.latency {
            let route = escape(route);
            for (le, n) in BUCKETS.iter().zip(h.buckets) {
                let _ = writeln!(
                    out,
                    "fleetctl_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "fleetctl_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "fleetctl_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "fleetctl_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP fleetctl_fleet_reports_total Agent reports received by this node.\n");
        out.push_str("# TYPE fleetctl_fleet_reports_total counter\n");
        let _ = writeln!(
            out,
            "fleetctl_fleet_reports_total{{result=\"accepted\",reason=\"\"}} {}",
            c.reports_accepted
        );
        for (why, n) in &c.reports_rejected {
            let _ = writeln!(
                out,
                "fleetctl_fleet_reports_total{{result=\"rejected\",reason=\"{}\"}} {n}",
                why.as_str()
            );
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn gauge(out: &mut String, name: &str, help: &str, samples: &[(&str, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (labels, v) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

/// `GET /metrics`: open when `auth.metrics_tokens` is empty (it is the node's own health, no
/// fleet data; keep it on a trusted network), else it needs one of those tokens or an admin
/// token as `Authorization: Bearer`.
pub async fn metrics(State(state): State<AppState>, parts: Parts) -> Response {
    if let Err(e) = scrape_allowed(&state, &parts) {
        return e.into_response();
    }
    let m = state.metrics();
    let mut out = String::with_capacity(8 * 1024);
    m.render_requests(&mut out);

    // Cluster state as this node sees it, and how long the backend took to answer.
    let t0 = Instant::now();
    let status = state.cluster_status().await;
    let cluster_rtt = t0.elapsed().as_secs_f64();
    let health = match state.health() {
        Health::Healthy => "healthy",
        Health::Draining { .. } => "draining",
        Health::Unhealthy { .. } => "unhealthy",
    };
    let health_labels: Vec<String> = ["healthy", "draining", "unhealthy"]
        .iter()
        .map(|s| format!("state=\"{s}\""))
        .collect();
    gauge(
        &mut out,
        "fleetctl_node_health",
        "1 for this node's current health-check state.",
        &health_labels
            .iter()
            .zip(["healthy", "draining", "unhealthy"])
            .map(|(l, s)| (l.as_str(), f64::from(u8::from(s == health))))
            .collect::<Vec<_>>(),
    );
    gauge(
        &mut out,
        "fleetctl_cluster_is_leader",
        "1 when this node holds the leader lease.",
        &[("", f64::from(u8::from(state.node().is_leader())))],
    );
    match &status {
        Ok(s) => {
            let count = |st: NodeState| s.nodes.iter().filter(|n| n.status == st).count() as f64;
            gauge(
                &mut out,
                "fleetctl_cluster_nodes",
                "Nodes in the registry by state.",
                &[
                    ("state=\"active\"", count(NodeState::Active)),
                    ("state=\"draining\"", count(NodeState::Draining)),
                    ("state=\"inactive\"", count(NodeState::Inactive)),
                    ("state=\"left\"", count(NodeState::Left)),
                ],
            );
        }
        Err(_) => gauge(
            &mut out,
            "fleetctl_cluster_nodes",
            "Nodes in the registry by state.",
            &[],
        ),
    }
    gauge(
        &mut out,
        "fleetctl_cluster_backend_up",
        "1 when the cluster backend answered this scrape.",
        &[("", f64::from(u8::from(status.is_ok())))],
    );
    gauge(
        &mut out,
        "fleetctl_cluster_backend_rtt_seconds",
        "Time the cluster backend took to list the registry for this scrape.",
        &[("", cluster_rtt)],
    );

    // The fleet store: reachable, round trip, machines by state.
    {
        let store = state.fleet();
        let t0 = Instant::now();
        let now = store.now().await;
        let rtt = t0.elapsed().as_secs_f64();
        gauge(
            &mut out,
            "fleetctl_fleet_store_up",
            "1 when the fleet store answered this scrape.",
            &[("", f64::from(u8::from(now.is_ok())))],
        );
        gauge(
            &mut out,
            "fleetctl_fleet_store_rtt_seconds",
            "Round trip to the fleet store (its clock) for this scrape.",
            &[("", rtt)],
        );
        if let Ok((s, _)) = state.fleet_index().summary(&state.fleet_thresholds()).await {
            gauge(
                &mut out,
                "fleetctl_fleet_machines",
                "Machines by state (from the shared store: the same on every node).",
                &[
                    ("state=\"online\"", s.online as f64),
                    ("state=\"stale\"", s.stale as f64),
                    ("state=\"offline\"", s.offline as f64),
                ],
            );
        }
    }

    gauge(
        &mut out,
        "fleetctl_uptime_seconds",
        "Seconds since this node started.",
        &[("", m.started.elapsed().as_secs_f64())],
    );
    if let Some(rss) = resident_memory_bytes() {
        gauge(
            &mut out,
            "fleetctl_process_resident_memory_bytes",
            "Resident set size of this process.",
            &[("", rss as f64)],
        );
    }
    let sources: Vec<Arc<dyn MetricsSource>> =
        m.sources.read().unwrap_or_else(|p| p.into_inner()).clone();
    for s in sources {
        out.push_str(&s.render().await);
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        out,
    )
        .into_response()
}

/// Whether this scrape may read `/metrics` (see [`metrics`]).
fn scrape_allowed(state: &AppState, parts: &Parts) -> Result<(), super::error::ApiError> {
    let auth = &state.config().auth;
    if auth.metrics_tokens.is_empty() {
        return Ok(());
    }
    let token = super::auth::bearer_token(parts)?.ok_or_else(|| {
        super::error::ApiError::unauthorized(
            "/metrics needs `Authorization: Bearer <token>`: this node sets auth.metrics_tokens \
             (create one with `fleetctl keys new --kind metrics`)",
        )
    })?;
    let known = crate::credentials::find_key(&auth.metrics_tokens, token).is_some()
        | crate::credentials::find_key(&auth.admin_tokens, token).is_some();
    if known {
        Ok(())
    } else {
        Err(super::error::ApiError::unauthorized(
            "invalid /metrics token: not in auth.metrics_tokens or auth.admin_tokens",
        ))
    }
}

/// RSS from /proc (Linux); `None` elsewhere.
pub fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Routes whose requests are logged at debug, not info: polled by load balancers and
/// scrapers every few seconds.
const QUIET_ROUTES: [&str; 2] = ["/api/fleet/cluster/health", "/metrics"];

/// Middleware: count and time every request by route, and log one line for it.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method: &'static str = match *req.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let path = req.uri().path().to_string();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let start = Instant::now();
    let res = next.run(req).await;
    let elapsed = start.elapsed();
    let status = res.status().as_u16();
    state.metrics().observe(&route, method, status, elapsed);
    let ms = elapsed.as_secs_f64() * 1000.0;
    if QUIET_ROUTES.contains(&route.as_str()) {
        debug!(%method, %path, status, ms, request_id = %request_id, "request");
    } else {
        info!(%method, %path, status, ms, request_id = %request_id, "request");
    }
    res
}

/// `fleetctl_sessions_active`: live login sessions in the shared store. Counting can be a
/// scan (Redis), so the number is cached for [`ActiveSessions::CACHE_FOR`]: scrapes from
/// several Prometheus servers do not each walk the store.
pub struct ActiveSessions {
    store: Arc<dyn crate::sessions::SessionStore>,
    cache: tokio::sync::Mutex<Option<(Instant, Option<u64>)>>,
}

impl ActiveSessions {
    pub const CACHE_FOR: Duration = Duration::from_secs(15);

    pub fn new(store: Arc<dyn crate::sessions::SessionStore>) -> ActiveSessions {
        ActiveSessions {
            store,
            cache: tokio::sync::Mutex::new(None),
        }
    }
}

#[async_trait]
impl MetricsSource for ActiveSessions {
    async fn render(&self) -> String {
        let mut cache = self.cache.lock().await;
        let count = match *cache {
            Some((at, count)) if at.elapsed() < Self::CACHE_FOR => count,
            _ => {
                // An unreachable store is reported as `up 0`, not as a failed scrape.
                let count = self.store.count().await.ok();
                *cache = Some((Instant::now(), count));
                count
            }
        };
        let mut out = String::new();
        gauge(
            &mut out,
            "fleetctl_sessions_store_up",
            "1 when the session store answered the last count.",
            &[("", if count.is_some() { 1.0 } else { 0.0 })],
        );
        if let Some(n) = count {
            gauge(
                &mut out,
                "fleetctl_sessions_active",
                "Live login sessions in the shared store (the same on every node; cached 15 s).",
                &[("", n as f64)],
            );
        }
        out
    }
}
