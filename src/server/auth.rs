//! Who is calling: an admin API token (`Authorization: Bearer …`, scripts and the CLI) or a
//! logged-in user's session cookie (browsers), and the session plumbing behind the cookie.
//!
//! Extractors, from narrowest to widest:
//! - [`Admin`]: a valid admin token, nothing else.
//! - [`LoggedIn`]: a live session from the cookie. Pages take it: a request for HTML without
//!   one is redirected to `/login`; an API request gets 401 JSON.
//! - [`Authenticated`]: either of the two; the JSON API takes it. A cookie-authenticated
//!   request that changes state must also carry the session's CSRF token in `X-CSRF-Token`
//!   (a token cannot be sent by another site's form, a cookie can).
//!
//! Tokens are compared by SHA-256 digest in constant time against every configured entry, so
//! neither the config nor timing reveals a usable token.
//!
//! Why our own extractor and not `tower_sessions_core::SessionStore`: tower-sessions (0.15;
//! axum-login 0.18 still pins 0.14) identifies sessions by an `i128` it generates and keeps a
//! `Record { id, data, expiry_date }`. Our stores already key on a SHA-256 of a 256-bit id,
//! keep the user outside the data for the per-user index (`sessions revoke --user`), carry a
//! CSRF token and two timeouts (idle, absolute), and must report an outage so we answer 503
//! and keep the cookie — its middleware turns any store error into a 500 and would have us
//! smuggle the user and CSRF token through an untyped map. What we need from a middleware is
//! one cookie read, one `load` and an occasional `touch` per request: the extractors below.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header::{ACCEPT, AUTHORIZATION, LOCATION};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::AppState;
use super::cookie::{self, Presented};
use super::error::ApiError;
use super::proxy::{ClientInfo, TrustedProxies};
use crate::config::Config;
use crate::sessions::{Session, SessionError, SessionId, SessionStore};

/// Header carrying the session's CSRF token on API calls made with a cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The form field carrying it on HTML form posts.
pub const CSRF_FIELD: &str = "csrf_token";
/// Renew a session's idle timeout at most this often (capped at a tenth of `sessions.ttl`), so
/// a page firing many requests does not write to the store on each of them.
const TOUCH_EVERY: Duration = Duration::from_secs(5);

/// What the login and session machinery needs, built once from the config.
pub struct WebAuth {
    store: Arc<dyn SessionStore>,
    proxies: TrustedProxies,
    /// This node terminates TLS itself (`server.tls`).
    tls: bool,
    /// `sessions.max_login_failures`, `max_login_failures_per_ip` and
    /// `login_failure_window`.
    pub max_login_failures: u32,
    pub max_login_failures_per_ip: u32,
    pub login_failure_window: Duration,
    /// Absolute lifetime, the cookie's `Max-Age`.
    pub max_lifetime: Duration,
    touch_every: Duration,
    /// argon2 verifications, one per core at most (see `verify_pool.rs`): a flood of logins
    /// waits here instead of exhausting the node's CPU and memory.
    pub verifier: super::verify_pool::VerifyPool,
}

impl WebAuth {
    pub fn new(config: &Config, store: Arc<dyn SessionStore>) -> WebAuth {
        let s = &config.sessions;
        WebAuth {
            store,
            proxies: TrustedProxies::from_config(&config.server.trusted_proxies),
            tls: config.server.tls.is_some(),
            max_login_failures: s.max_login_failures.max(1),
            max_login_failures_per_ip: s.max_login_failures_per_ip.max(1),
            login_failure_window: s.login_failure_window.as_duration(),
            max_lifetime: s.max_lifetime.as_duration(),
            touch_every: TOUCH_EVERY.min(s.ttl.as_duration() / 10),
            verifier: super::verify_pool::VerifyPool::per_core(),
        }
    }

    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    /// The client's address and whether it came over TLS, judged per `server.trusted_proxies`.
    pub fn client(&self, parts: &Parts) -> ClientInfo {
        ClientInfo::of(parts, &self.proxies, self.tls)
    }

    /// The live session the request's cookie names, renewing its idle timeout now and then.
    pub async fn session(&self, parts: &Parts) -> Result<(SessionId, Session), AuthRejection> {
        let presented = cookie::presented(&parts.headers);
        let html = wants_html(parts);
        let reject = |reason: &str| AuthRejection::LoggedOut {
            reason: reason.to_string(),
            html,
            clear: presented.clone(),
        };
        let id = match &presented {
            Presented::Absent => return Err(reject("authentication required")),
            Presented::Forged { .. } => return Err(reject("invalid session cookie; log in again")),
            Presented::Id { id, .. } => id.clone(),
        };
        let store = self.store();
        let session = match store.load(&id).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(reject("session expired or logged out; log in again")),
            Err(e) => return Err(AuthRejection::unavailable(&e)),
        };
        // `last_seen` may come from another clock (Redis TIME), so compare the distance.
        let since = crate::sessions::now_millis().abs_diff(session.last_seen);
        if u128::from(since) < self.touch_every.as_millis() {
            return Ok((id, session));
        }
        match store.touch(&id).await {
            Ok(Some(renewed)) => Ok((id, renewed)),
            // Logged out or revoked between our load and touch.
            Ok(None) => Err(reject("session expired or logged out; log in again")),
            // The load just worked; serve this request and renew on the next one.
            Err(e) => {
                tracing::warn!(error = %e, "could not renew a session's idle timeout");
                Ok((id, session))
            }
        }
    }
}

/// Why a request was refused authentication.
#[derive(Debug)]
pub enum AuthRejection {
    /// No usable session: 401 JSON, or a redirect to `/login` for a browser page. A cookie that
    /// names no live session is cleared.
    LoggedOut {
        reason: String,
        html: bool,
        clear: Presented,
    },
    /// Anything else, including 503 when the store is down (the cookie is left alone).
    Api(ApiError),
}

impl AuthRejection {
    fn unavailable(e: &SessionError) -> AuthRejection {
        AuthRejection::Api(session_error(e))
    }
}

/// A store failure as an HTTP error: 503 with the reason for an outage.
pub fn session_error(e: &SessionError) -> ApiError {
    match e {
        SessionError::Unavailable { backend, .. } => {
            tracing::warn!(error = %e, "session store unavailable");
            ApiError::unavailable(format!(
                "the {backend} session store is unavailable; your session is kept, retry in a moment"
            ))
        }
        other => {
            tracing::error!(error = %other, "session store error");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the session store failed; the node's log says why",
            )
        }
    }
}

impl From<ApiError> for AuthRejection {
    fn from(e: ApiError) -> AuthRejection {
        AuthRejection::Api(e)
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self {
            AuthRejection::Api(e) => e.into_response(),
            AuthRejection::LoggedOut {
                reason,
                html,
                clear,
            } => {
                let mut res = if html {
                    (
                        StatusCode::SEE_OTHER,
                        [(LOCATION, HeaderValue::from_static("/login"))],
                    )
                        .into_response()
                } else {
                    ApiError::unauthorized(format!(
                        "{reason}: POST /login, or send `Authorization: Bearer <admin token>`"
                    ))
                    .into_response()
                };
                if !matches!(clear, Presented::Absent) {
                    cookie::append_clear(res.headers_mut(), &clear);
                }
                res
            }
        }
    }
}

/// A browser asking for a page (not the JSON API): redirect it to the login form rather than
/// showing it a 401 body.
pub fn wants_html(parts: &Parts) -> bool {
    !parts.uri.path().starts_with("/api/")
        && parts
            .headers
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
}

/// A logged-in user (session cookie). Handlers of pages and forms take it; a form that changes
/// state must also call [`LoggedIn::check_csrf`].
#[derive(Debug, Clone)]
pub struct LoggedIn {
    pub user: String,
    pub session: Session,
    /// The session's id, for logout. Never logged or shown (its `Debug` shows a hash prefix).
    pub id: SessionId,
}

impl LoggedIn {
    /// Refuse with 403 unless `presented` (from `X-CSRF-Token` or the `csrf_token` form field)
    /// is this session's CSRF token.
    pub fn check_csrf(&self, presented: Option<&str>) -> Result<(), ApiError> {
        check_csrf(&self.session, presented)
    }
}

/// Constant-time comparison of a presented CSRF token with the session's.
pub fn check_csrf(session: &Session, presented: Option<&str>) -> Result<(), ApiError> {
    let ok = presented.is_some_and(|p| {
        !session.csrf_token.is_empty()
            && bool::from(p.as_bytes().ct_eq(session.csrf_token.as_bytes()))
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "missing or wrong CSRF token: requests made with the session cookie that change \
                 state must send the session's token (`{CSRF_HEADER}` header or `{CSRF_FIELD}` \
                 form field; GET /api/session shows it)"
            ),
        ))
    }
}

/// The `X-CSRF-Token` header, if any.
pub fn csrf_header(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

impl FromRequestParts<AppState> for LoggedIn {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<LoggedIn, AuthRejection> {
        let (id, session) = state.web().session(parts).await?;
        Ok(LoggedIn {
            user: session.user.clone(),
            session,
            id,
        })
    }
}

/// An admin token or a logged-in user: who may use the JSON API.
#[derive(Debug, Clone)]
pub enum Authenticated {
    Token(Admin),
    User(LoggedIn),
}

impl Authenticated {
    /// Who did it, for audit logs: `token:<name>` or `user:<name>`.
    pub fn name(&self) -> String {
        match self {
            Authenticated::Token(a) => format!("token:{}", a.name),
            Authenticated::User(u) => format!("user:{}", u.user),
        }
    }
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Authenticated, AuthRejection> {
        // A request that names a token is judged by it alone: a bad token is not rescued by a
        // cookie that happens to ride along.
        if parts.headers.contains_key(AUTHORIZATION) {
            return Ok(Authenticated::Token(
                Admin::from_request_parts(parts, state).await?,
            ));
        }
        let user = LoggedIn::from_request_parts(parts, state).await?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            user.check_csrf(csrf_header(&parts.headers))?;
        }
        Ok(Authenticated::User(user))
    }
}

/// Proof that the request carries a valid admin token. Handlers that take it are admin-only.
#[derive(Debug, Clone)]
pub struct Admin {
    /// The token entry's name, for audit logs.
    pub name: String,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, ApiError> {
        let token = bearer_token(parts)?.ok_or_else(|| {
            ApiError::unauthorized(
                "authentication required: send `Authorization: Bearer <admin token>` \
                 (create one with `fleetctl keys new --kind admin`) or log in (POST /login)",
            )
        })?;
        match crate::credentials::find_key(&state.config().auth.admin_tokens, token) {
            Some(entry) => Ok(Admin {
                name: entry.name.clone(),
            }),
            None => Err(ApiError::unauthorized("invalid admin token")),
        }
    }
}

/// The token from `Authorization: Bearer <token>`: `Ok(None)` when the header is absent, an
/// error naming the problem when it is present but malformed.
pub fn bearer_token(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let Some(value) = parts.headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header: not visible ASCII"))?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(|| {
        ApiError::unauthorized("malformed Authorization header: expected `Bearer <token>`")
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::unauthorized(format!(
            "unsupported Authorization scheme `{scheme}`: expected `Bearer <token>`"
        )));
    }
    let token = token.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(ApiError::unauthorized(
            "malformed Authorization header: the bearer token is empty or contains spaces",
        ));
    }
    Ok(Some(token))
}
