//! What every route gets before a handler runs, and what every answer gets after: the
//! request-level limits and headers that keep a hostile or broken client from hurting the
//! node or learning anything about it. [`super::envelope`] applies them to every request, in
//! one service; this module holds the checks, the answers they give, and the body reader.
//!
//! - panics: a handler that panics answers a generic 500 JSON ([`panicked`]); the panic
//!   message goes to the log only, never into the response.
//! - security headers: nosniff, no framing, a referrer policy, a CSP for API answers (pages
//!   bring their own, stricter for what they load), HSTS when the node serves TLS itself.
//! - [`json_errors`]: a 4xx/5xx that is neither JSON nor an HTML page (a 413 or 408 of the
//!   envelope, an axum rejection in text/plain) is rewritten as `{"error": …}`, so a client
//!   always gets one shape.
//! - [`head_too_large`]: a request head over [`MAX_HEADER_BYTES`] gets 431 JSON (hyper
//!   refuses far larger ones by itself, see `listener.rs`).
//! - a global concurrency limit with load shedding: past `server.max_concurrent_requests`
//!   requests in progress, the answer is 503 + `Retry-After` at once ([`overloaded`]) instead
//!   of a queue. The health check is outside it, so a busy node is not reported dead.
//! - a whole request, body included, gets `server.request_timeout` (408).
//! - [`declared_body_too_large`], [`limit_body`]: no route takes more than
//!   [`MAX_BODY_BYTES`] (413); routes that read a body apply their own, smaller limit with
//!   [`read_body`], which tells "too large" (413) from other read errors by the error's
//!   type, not by its text.

use std::any::Any;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// The largest request head (request line and headers) a handler sees; larger gets 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// No route accepts a larger body, whatever it does with it. Routes that read one apply their
/// own limit below this (agent reports 64 KiB, forms [`FORM_BODY_LIMIT`]), so they can
/// count and word the refusal themselves.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Login and logout forms: a username, a password and a token.
pub const FORM_BODY_LIMIT: usize = 16 * 1024;
/// The CSP of every answer that is not a page: nothing may be loaded or framed.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";
/// A year, the usual HSTS lifetime; no `includeSubDomains`, since other hosts under the
/// domain are not ours to promise for.
pub const HSTS: &str = "max-age=31536000";

/// The settings the layers take, from `server.*`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub request_timeout: Duration,
    pub max_concurrent_requests: usize,
    /// The node terminates TLS itself: send HSTS.
    pub tls: bool,
}

impl Limits {
    pub fn from_config(server: &crate::config::ServerConfig) -> Limits {
        Limits {
            request_timeout: server.request_timeout.as_duration(),
            max_concurrent_requests: server.max_concurrent_requests.max(1),
            tls: server.tls.is_some(),
        }
    }
}

/// 503 + `Retry-After` when every permit of the concurrency limit is taken.
pub fn overloaded() -> Response {
    let mut res = ApiError::unavailable(
        "this node is at its limit of concurrent requests (server.max_concurrent_requests); retry in a moment",
    )
    .into_response();
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

/// 413 when a request declares a body longer than [`MAX_BODY_BYTES`].
pub fn declared_body_too_large(req: &Request) -> Option<Response> {
    declared_length(req.headers())
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
        .then(|| {
            ApiError::from(BodyError::TooLarge {
                limit: MAX_BODY_BYTES,
            })
            .into_response()
        })
}

/// The request with its body cut off at [`MAX_BODY_BYTES`], whatever it declares.
pub fn limit_body(req: Request) -> Request {
    req.map(|body| Body::new(http_body_util::Limited::new(body, MAX_BODY_BYTES)))
}

/// The 500 of a handler that panicked; the panic's message goes to the log only.
pub fn panicked(err: Box<dyn Any + Send + 'static>) -> Response {
    let detail = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = %detail, "a request handler panicked; answered 500");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error: the request could not be completed; the node's log has the details",
    )
    .into_response()
}

/// 431 JSON for a request head over [`MAX_HEADER_BYTES`].
pub fn head_too_large(req: &Request) -> Option<Response> {
    // The request target as sent (origin form, or absolute form through a proxy), measured
    // without printing it.
    let uri = req.uri();
    let target = uri.path_and_query().map_or(1, |p| p.as_str().len())
        + uri.scheme_str().map_or(0, |s| s.len() + 3)
        + uri.authority().map_or(0, |a| a.as_str().len());
    let size = target
        + req
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>();
    (size > MAX_HEADER_BYTES).then(|| {
        ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("request line and headers take {size} bytes; the limit is {MAX_HEADER_BYTES}"),
        )
        .into_response()
    })
}

/// Rewrite a 4xx/5xx that is neither JSON nor an HTML page as `{"error": …}`, keeping its
/// status and headers (`Retry-After`, `Allow`, `WWW-Authenticate`).
pub async fn json_errors(res: Response) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let ct = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("application/json") || ct.starts_with("text/html") {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    // Rejection texts are short; anything long is not worth echoing.
    let text = axum::body::to_bytes(body, 2048)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_lowercase());
    let body = serde_json::to_vec(&serde_json::json!({ "error": text })).unwrap_or_default();
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(body))
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("cannot read the request body: {0}")]
    Read(String),
}

impl BodyError {
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Read(_) => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> ApiError {
        ApiError::new(e.status(), e.to_string())
    }
}

/// Read a whole body of at most `limit` bytes. A declared `Content-Length` over the limit is
/// refused before a byte is read; a longer stream is cut off at the limit.
pub async fn read_body(
    headers: &axum::http::HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, BodyError> {
    if declared_length(headers).is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if is_length_limit(&e) {
            BodyError::TooLarge { limit }
        } else {
            BodyError::Read(e.to_string())
        }
    })
}

/// The body length a request declares (`Content-Length`), when it is a number.
fn declared_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
}

/// Whether a body error is a length limit (ours from `to_bytes`, or [`limit_body`]'s),
/// anywhere in its chain of sources.
fn is_length_limit(e: &axum::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn read_body_tells_too_large_by_type() {
        let h = axum::http::HeaderMap::new();
        let ok = read_body(&h, Body::from("abc"), 3).await.unwrap();
        assert_eq!(&ok[..], b"abc");
        let e = read_body(&h, Body::from("abcd"), 3).await.unwrap_err();
        assert!(matches!(e, BodyError::TooLarge { limit: 3 }), "{e:?}");
        let mut declared = axum::http::HeaderMap::new();
        declared.insert(CONTENT_LENGTH, HeaderValue::from_static("999999"));
        let e = read_body(&declared, Body::empty(), 10).await.unwrap_err();
        assert_eq!(e.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
