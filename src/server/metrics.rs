//! `GET /metrics`: this node's own Prometheus metrics, and the middleware that feeds them and
//! writes one log line per request.
//!
//! Request metrics are labelled by *route template* (`/api/fleet/machines/{id}`), never by
//! raw path, and by a fixed set of methods, so a scanner cannot blow up the label space.
//! Gauges about the cluster and the stores are read when scraped (with their round-trip
//! times), so they are never stale. Other parts of the server add their own gauges through
//! `MetricsSource` (the sessions store's active-session count is meant to arrive that way).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
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
    /// Every reason, in the order the scrape lists them.
    const ALL: [Rejection; 6] = [
        Rejection::Unauthorized,
        Rejection::UnsupportedMediaType,
        Rejection::TooLarge,
        Rejection::Malformed,
        Rejection::Invalid,
        Rejection::StoreUnavailable,
    ];

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

/// The methods a request is counted under; anything else is `other`.
const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "other",
];

/// Distinct (method, status) pairs counted per route without a lock. A route rarely sees more
/// than a handful; past this many, the rest go to [`RouteStats::overflow`].
const CODE_SLOTS: usize = 16;

pub(super) fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::POST => 1,
        Method::PUT => 2,
        Method::DELETE => 3,
        Method::HEAD => 4,
        Method::PATCH => 5,
        Method::OPTIONS => 6,
        _ => 7,
    }
}

/// One route's counters, found once per request by its template and then only added to with
/// atomics, so requests on every core update them without taking a lock.
pub struct RouteStats {
    route: String,
    /// Slot keys: `(method index + 1) << 16 | status`, 0 while unclaimed. A slot is claimed
    /// once (compare-and-swap from 0) and keeps its key for the life of the process.
    code_keys: [AtomicU32; CODE_SLOTS],
    code_counts: [AtomicU64; CODE_SLOTS],
    /// (method, status) pairs beyond [`CODE_SLOTS`].
    overflow: Mutex<BTreeMap<(usize, u16), u64>>,
    /// Requests per latency bucket, *not* cumulative (each request adds to one at most); the
    /// scrape adds them up. One increment per request instead of one per bucket it is under.
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// The sum of latencies in seconds, as `f64` bits.
    sum_bits: AtomicU64,
}

impl RouteStats {
    fn new(route: &str) -> RouteStats {
        RouteStats {
            route: route.to_owned(),
            code_keys: std::array::from_fn(|_| AtomicU32::new(0)),
            code_counts: std::array::from_fn(|_| AtomicU64::new(0)),
            overflow: Mutex::new(BTreeMap::new()),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_bits: AtomicU64::new(0f64.to_bits()),
        }
    }

    pub(super) fn observe(&self, method: usize, status: u16, elapsed: Duration) {
        self.count_code(method, status);
        let secs = elapsed.as_secs_f64();
        // `count` before the bucket, with Release, and the scrape reads buckets (Acquire)
        // before `count`: it never sees more requests in the buckets than in `+Inf`.
        self.count.fetch_add(1, Ordering::Release);
        if let Some(i) = BUCKETS.iter().position(|le| secs <= *le) {
            self.buckets[i].fetch_add(1, Ordering::Release);
        }
        let _ = self
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + secs).to_bits())
            });
    }

    fn count_code(&self, method: usize, status: u16) {
        let key = ((method as u32 + 1) << 16) | u32::from(status);
        for (slot, count) in self.code_keys.iter().zip(&self.code_counts) {
            let current = match slot.load(Ordering::Acquire) {
                0 => match slot.compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => key,
                    Err(other) => other,
                },
                k => k,
            };
            if current == key {
                count.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        *lock(&self.overflow).entry((method, status)).or_default() += 1;
    }

    /// ((method, status), requests) for every pair counted at least once.
    fn codes(&self) -> Vec<((&'static str, u16), u64)> {
        let mut out: Vec<((&'static str, u16), u64)> = Vec::new();
        for (slot, count) in self.code_keys.iter().zip(&self.code_counts) {
            let key = slot.load(Ordering::Acquire);
            let n = count.load(Ordering::Relaxed);
            // A slot just claimed may not have its first count yet.
            if key != 0 && n > 0 {
                out.push(((METHODS[(key >> 16) as usize - 1], key as u16), n));
            }
        }
        for (&(method, status), &n) in lock(&self.overflow).iter() {
            out.push(((METHODS[method], status), n));
        }
        out
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Counters are plain numbers: a panic elsewhere cannot leave them inconsistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The node's metrics registry. Cheap to update from every request: a read lock to find the
/// route's [`RouteStats`] (written once per route template, at its first request) and atomics.
pub struct Metrics {
    started: Instant,
    /// Route template → its counters. Templates are the router's, plus `unmatched`: a bounded
    /// set, whatever paths clients send.
    routes: RwLock<HashMap<String, Arc<RouteStats>>>,
    reports_accepted: AtomicU64,
    /// Indexed by `Rejection as usize`.
    reports_rejected: [AtomicU64; Rejection::ALL.len()],
    sources: RwLock<Vec<Arc<dyn MetricsSource>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Instant::now(),
            routes: RwLock::new(HashMap::new()),
            reports_accepted: AtomicU64::new(0),
            reports_rejected: std::array::from_fn(|_| AtomicU64::new(0)),
            sources: RwLock::new(Vec::new()),
        }
    }
}

impl Metrics {
    /// Add gauges from elsewhere (e.g. the sessions store's active sessions).
    pub fn add_source(&self, source: Arc<dyn MetricsSource>) {
        self.sources
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(source);
    }

    /// The counters of `route` (a template, or `unmatched`), created at its first request.
    pub fn route(&self, route: &str) -> Arc<RouteStats> {
        if let Some(stats) = self
            .routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(route)
        {
            return stats.clone();
        }
        self.routes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(route.to_owned())
            .or_insert_with(|| Arc::new(RouteStats::new(route)))
            .clone()
    }

    pub fn report_accepted(&self) {
        self.reports_accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn report_rejected(&self, why: Rejection) {
        self.reports_rejected[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The request counters and histograms as Prometheus text.
    fn render_requests(&self, out: &mut String) {
        let mut routes: Vec<Arc<RouteStats>> = self
            .routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        routes.sort_by(|a, b| a.route.cmp(&b.route));
        out.push_str("# HELP fleetctl_http_requests_total HTTP requests served by this node.\n");
        out.push_str("# TYPE fleetctl_http_requests_total counter\n");
        for stats in &routes {
            let mut codes = stats.codes();
            codes.sort_unstable();
            let route = escape(&stats.route);
            for ((method, status), n) in codes {
                let _ = writeln!(
                    out,
                    "fleetctl_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}",
                );
            }
        }
        out.push_str(
            "# HELP fleetctl_http_request_duration_seconds Time to answer a request, by route.\n",
        );
        out.push_str("# TYPE fleetctl_http_request_duration_seconds histogram\n");
        for stats in &routes {
            // Buckets before the count (see `RouteStats::observe`).
            let mut cumulative = 0;
            let buckets: Vec<u64> = stats
                .buckets
                .iter()
                .map(|b| {
                    cumulative += b.load(Ordering::Acquire);
                    cumulative
                })
                .collect();
            let count = stats.count.load(Ordering::Acquire);
            if count == 0 {
                continue;
            }
            let sum = f64::from_bits(stats.sum_bits.load(Ordering::Relaxed));
            let route = escape(&stats.route);
            for (le, n) in BUCKETS.iter().zip(buckets) {
                let _ = writeln!(
                    out,
                    "fleetctl_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "fleetctl_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "fleetctl_http_request_duration_seconds_sum{{route=\"{route}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "fleetctl_http_request_duration_seconds_count{{route=\"{route}\"}} {count}"
            );
        }
        out.push_str("# HELP fleetctl_fleet_reports_total Agent reports received by this node.\n");
        out.push_str("# TYPE fleetctl_fleet_reports_total counter\n");
        let _ = writeln!(
            out,
            "fleetctl_fleet_reports_total{{result=\"accepted\",reason=\"\"}} {}",
            self.reports_accepted.load(Ordering::Relaxed)
        );
        for why in Rejection::ALL {
            let n = self.reports_rejected[why as usize].load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "fleetctl_fleet_reports_total{{result=\"rejected\",reason=\"{}\"}} {n}",
                    why.as_str()
                );
            }
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

/// One log line for a finished request (the envelope counts it with `RouteStats::observe`).
pub(super) fn log_request(
    stats: &RouteStats,
    method: usize,
    uri: &Uri,
    request_id: &HeaderValue,
    status: StatusCode,
    elapsed: Duration,
) {
    let ms = elapsed.as_secs_f64() * 1000.0;
    let method = METHODS[method];
    let path = uri.path();
    let status = status.as_u16();
    let request_id = request_id.to_str().unwrap_or("");
    if QUIET_ROUTES.contains(&stats.route.as_str()) {
        debug!(%method, %path, status, ms, request_id = %request_id, "request");
    } else {
        info!(%method, %path, status, ms, request_id = %request_id, "request");
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(m: &Metrics) -> Vec<String> {
        let mut out = String::new();
        m.render_requests(&mut out);
        out.lines().map(str::to_owned).collect()
    }

    #[test]
    fn requests_sorted_by_route_method_status_and_histograms_cumulative() {
        let m = Metrics::default();
        let ms = Duration::from_millis;
        m.route("/b")
            .observe(method_index(&Method::GET), 200, ms(2));
        m.route("/a")
            .observe(method_index(&Method::POST), 404, ms(30));
        m.route("/a")
            .observe(method_index(&Method::GET), 200, ms(20));
        m.route("/a")
            .observe(method_index(&Method::GET), 200, ms(20_000));
        m.route("/c");
        m.report_accepted();
        m.report_rejected(Rejection::Malformed);
        m.report_rejected(Rejection::Unauthorized);
        let lines = rendered(&m);
        let requests: Vec<&str> = lines
            .iter()
            .filter(|l| l.starts_with("fleetctl_http_requests_total{"))
            .map(String::as_str)
            .collect();
        assert_eq!(
            requests,
            [
                r#"fleetctl_http_requests_total{route="/a",method="GET",status="200"} 2"#,
                r#"fleetctl_http_requests_total{route="/a",method="POST",status="404"} 1"#,
                r#"fleetctl_http_requests_total{route="/b",method="GET",status="200"} 1"#,
            ]
        );
        for line in [
            r#"fleetctl_http_request_duration_seconds_bucket{route="/a",le="0.01"} 0"#,
            r#"fleetctl_http_request_duration_seconds_bucket{route="/a",le="0.025"} 1"#,
            r#"fleetctl_http_request_duration_seconds_bucket{route="/a",le="0.05"} 2"#,
            r#"fleetctl_http_request_duration_seconds_bucket{route="/a",le="10"} 2"#,
            r#"fleetctl_http_request_duration_seconds_bucket{route="/a",le="+Inf"} 3"#,
            r#"fleetctl_http_request_duration_seconds_count{route="/a"} 3"#,
            r#"fleetctl_http_request_duration_seconds_bucket{route="/b",le="0.001"} 0"#,
            r#"fleetctl_http_request_duration_seconds_bucket{route="/b",le="0.0025"} 1"#,
            r#"fleetctl_http_request_duration_seconds_sum{route="/b"} 0.002"#,
        ] {
            assert!(
                lines.iter().any(|l| l == line),
                "{line} missing:\n{lines:#?}"
            );
        }
        // A route looked up but never answered has no samples.
        assert!(!lines.iter().any(|l| l.contains(r#"route="/c""#)));
        let reports: Vec<&str> = lines
            .iter()
            .filter(|l| l.starts_with("fleetctl_fleet_reports_total{"))
            .map(String::as_str)
            .collect();
        assert_eq!(
            reports,
            [
                r#"fleetctl_fleet_reports_total{result="accepted",reason=""} 1"#,
                r#"fleetctl_fleet_reports_total{result="rejected",reason="unauthorized"} 1"#,
                r#"fleetctl_fleet_reports_total{result="rejected",reason="malformed"} 1"#,
            ]
        );
    }

    #[test]
    fn pairs_past_the_lock_free_slots_are_still_counted() {
        let m = Metrics::default();
        let stats = m.route("/x");
        for status in 200..200 + CODE_SLOTS as u16 + 5 {
            stats.observe(method_index(&Method::GET), status, Duration::ZERO);
            stats.observe(method_index(&Method::GET), status, Duration::ZERO);
        }
        let codes = stats.codes();
        assert_eq!(codes.len(), CODE_SLOTS + 5);
        assert!(codes.iter().all(|(_, n)| *n == 2), "{codes:?}");
    }
}
