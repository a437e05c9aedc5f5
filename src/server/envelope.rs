//! The one middleware around every route: what each request gets before its handler runs
//! and what each answer gets after, in one service and one boxed future per request.
//!
//! In order: the request id (the client's `X-Request-Id`, or one made here), the route's
//! metrics, the head-size check (431), the concurrency limit with load shedding (503 +
//! `Retry-After`; the health check is spared, so a busy node is not reported dead), the body
//! limit (413), the request timeout (408), panic catching (500); then every answer is made
//! JSON when it is an error in another shape, gets the security headers, `X-Fleet-Node`,
//! `Connection: close` while the node drains, and the request id, and is counted and logged.
//! The checks and the answers they give live in [`super::hardening`].
//!
//! Why one service instead of the tower / tower-http layers it replaces (issue 12): axum
//! boxes every layer of a `Router::layer` stack into each route, and the seventeen layers of
//! the stack (four of them `from_fn` middlewares, each with its own boxed `Next` service and
//! future) cost about a quarter of the node's CPU per report, more than the handler (perf
//! profile in docs/performance.md). What it must never do: skip a check for some route it
//! was not told about (every route and the fallback go through it), or let a panic or a
//! timeout leave a request without an answer.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::header::{
    CONNECTION, CONTENT_SECURITY_POLICY, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use tokio::sync::Semaphore;
use tower::{Layer, Service};

use super::hardening::{self, API_CSP, HSTS, Limits};
use super::{AppState, metrics, request_id};
use crate::cluster::Health;

/// The header carrying a request's id, both ways.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Every answer names the node that served it (see [`super::NODE_HEADER`]).
const X_FLEET_NODE: HeaderName = HeaderName::from_static(super::NODE_HEADER);
/// The route outside the concurrency limit: load balancers must see a busy node as alive.
const HEALTH_ROUTE: &str = "/api/fleet/cluster/health";

/// The layer: one per router, cloned into every route.
#[derive(Clone)]
pub struct Envelope {
    shared: Arc<Shared>,
}

struct Shared {
    /// Metrics, the node header and the node's health (draining).
    state: AppState,
    limits: Limits,
    /// Requests in progress on every route but the health check, node-wide.
    permits: Arc<Semaphore>,
}

impl Envelope {
    pub fn new(state: AppState, limits: Limits) -> Envelope {
        Envelope {
            shared: Arc::new(Shared {
                permits: Arc::new(Semaphore::new(limits.max_concurrent_requests)),
                state,
                limits,
            }),
        }
    }
}

impl<S> Layer<S> for Envelope {
    type Service = EnvelopeService<S>;

    fn layer(&self, inner: S) -> EnvelopeService<S> {
        EnvelopeService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// [`Envelope`] around one route.
#[derive(Clone)]
pub struct EnvelopeService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Service<Request> for EnvelopeService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The service polled ready is the one to call; a clone takes its place (tower's rule).
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        Box::pin(async move { Ok(shared.handle(inner, req).await) })
    }
}

impl Shared {
    async fn handle<S>(&self, inner: S, mut req: Request) -> Response
    where
        S: Service<Request, Response = Response, Error = Infallible>,
    {
        let start = Instant::now();
        let route = req.extensions().get::<MatchedPath>();
        // The fallback (404, 405) has no route and is not limited: it does no work.
        let limited = route.is_some_and(|r| r.as_str() != HEALTH_ROUTE);
        let stats = self
            .state
            .metrics()
            .route(route.map_or("unmatched", MatchedPath::as_str));
        let method = metrics::method_index(req.method());
        // Kept for the log line; shares the request's buffers rather than copying them.
        let uri = req.uri().clone();
        let request_id = match req.headers().get(&X_REQUEST_ID) {
            Some(id) => id.clone(),
            None => {
                let id = request_id::next();
                req.headers_mut().insert(X_REQUEST_ID, id.clone());
                id
            }
        };

        let res = self.respond(inner, req, limited).await;
        let mut res = hardening::json_errors(res).await;
        self.decorate(res.headers_mut(), request_id.clone());

        let elapsed = start.elapsed();
        stats.observe(method, res.status().as_u16(), elapsed);
        metrics::log_request(&stats, method, &uri, &request_id, res.status(), elapsed);
        res
    }

    /// The handler's answer, or the refusal of a check before it.
    async fn respond<S>(&self, mut inner: S, req: Request, limited: bool) -> Response
    where
        S: Service<Request, Response = Response, Error = Infallible>,
    {
        if let Some(refused) =
            hardening::head_too_large(&req).or_else(|| hardening::declared_body_too_large(&req))
        {
            return refused;
        }
        // Held until the handler's answer is ready.
        let _permit = if limited {
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => return hardening::overloaded(),
            }
        } else {
            None
        };
        let handler = AssertUnwindSafe(inner.call(hardening::limit_body(req))).catch_unwind();
        match tokio::time::timeout(self.limits.request_timeout, handler).await {
            Ok(Ok(Ok(res))) => res,
            Ok(Ok(Err(never))) => match never {},
            Ok(Err(panic)) => hardening::panicked(panic),
            // Empty: `json_errors` words it.
            Err(_) => StatusCode::REQUEST_TIMEOUT.into_response(),
        }
    }

    /// The headers every answer carries.
    fn decorate(&self, headers: &mut HeaderMap, request_id: HeaderValue) {
        // Pages bring their own, stricter CSP; the others apply where a handler set none.
        for (name, value) in [
            (CONTENT_SECURITY_POLICY, API_CSP),
            (REFERRER_POLICY, "same-origin"),
            (X_FRAME_OPTIONS, "DENY"),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ] {
            if !headers.contains_key(&name) {
                headers.insert(name, HeaderValue::from_static(value));
            }
        }
        if self.limits.tls {
            headers.insert(STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
        }
        headers.insert(X_FLEET_NODE, self.state.inner.node_header.clone());
        // Draining: keep-alive clients (the load balancer) open their next connection to a
        // healthy node.
        if matches!(self.state.health(), Health::Draining { .. }) {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        if !headers.contains_key(&X_REQUEST_ID) {
            headers.insert(X_REQUEST_ID, request_id);
        }
    }
}
