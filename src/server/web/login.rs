//! Logging in and out: `GET /login` (the form), `POST /login`, `POST /logout`, and
//! `GET /api/session` (who am I, and my CSRF token).
//!
//! Both POSTs take an HTML form (`application/x-www-form-urlencoded`, the browser and
//! `curl -d` case: answered with 303 redirects) or JSON (scripts: answered with JSON).
//!
//! Login is protected against cross-site requests by the `Origin`/`Referer` check, not by a
//! token: a client that sends neither (curl, scripts) may log in without first fetching the
//! form. Every login gets a freshly generated session id, whatever cookie came with it, so a
//! planted cookie is useless (no session fixation). Unknown users and wrong passwords cost the
//! same argon2 verification and get the same answer. Failures are counted per user and client
//! address in the session backend, so every node sees the same count; past
//! `sessions.max_login_failures` within `sessions.login_failure_window` the answer is 429.
//!
//! This module never touches a store's layout; it speaks only the `SessionStore` trait.

use std::net::IpAddr;
use std::sync::LazyLock;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_TYPE, HOST, LOCATION, ORIGIN, REFERER, RETRY_AFTER, SET_COOKIE,
};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use maud::html;

use crate::credentials;
use crate::server::AppState;
use crate::server::auth::{self, LoggedIn};
use crate::server::cookie::{self, Presented};
use crate::server::error::ApiError;
use crate::server::hardening::{self, FORM_BODY_LIMIT};

/// Where a successful form login lands.
pub const AFTER_LOGIN: &str = "/dashboard";
/// How long a login waits for a free password-check slot before 503 + Retry-After.
const VERIFY_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// The one answer to a bad username or a bad password.
const BAD_CREDENTIALS: &str = "invalid username or password";

/// A hash no password matches in practice, verified when the username is unknown so that
/// answering "no such user" costs the same argon2 work as "wrong password". Same parameters as
/// `fleetctl users hash-password`; computed once, when the server gets its session store
/// (see [`warm_up`]).
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let mut secret = [0u8; 32];
    // Without OS randomness the fixed text below still makes a valid, unguessable-enough
    // placeholder: nobody can log in through it, because it is never tied to a user.
    let _ = getrandom::fill(&mut secret);
    credentials::hash_password(&hex::encode(secret))
        .unwrap_or_else(|_| "$argon2id$v=19$m=19456,t=2,p=1$invalid".into())
});

/// Compute the dummy hash now rather than during the first login with an unknown name.
pub fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", axum::routing::post(logout))
        .route("/api/session", get(whoami))
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

/// How the client talks: a browser form (answer with pages and redirects) or JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Form,
    Json,
}

fn dialect(parts: &Parts) -> Dialect {
    let ct = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("application/x-www-form-urlencoded") {
        Dialect::Form
    } else {
        Dialect::Json
    }
}

/// Decode a form or JSON body into `T`, with a 400 naming the problem.
fn decode<T: serde::de::DeserializeOwned>(
    parts: &Parts,
    body: &Bytes,
    what: &str,
) -> Result<T, ApiError> {
    let ct = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("application/x-www-form-urlencoded") {
        serde_urlencoded::from_bytes(body)
            .map_err(|e| ApiError::bad_request(format!("bad {what} form: {e}")))
    } else if ct.starts_with("application/json") {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("bad {what} JSON: {e}")))
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "send the {what} as application/x-www-form-urlencoded or application/json \
                 (got `{ct}`)"
            ),
        ))
    }
}

async fn read_body(parts: &Parts, body: axum::body::Body) -> Result<Bytes, ApiError> {
    Ok(hardening::read_body(&parts.headers, body, FORM_BODY_LIMIT).await?)
}

/// `GET /login`
async fn login_page() -> Response {
    page(StatusCode::OK, None, "")
}

/// `POST /login`
async fn login(State(state): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let dialect = dialect(&parts);
    match try_login(&state, &parts, body).await {
        Ok(done) => done,
        Err(LoginError::BadCredentials { username }) => match dialect {
            Dialect::Form => page(
                StatusCode::UNAUTHORIZED,
                Some(Notice::Failed(BAD_CREDENTIALS)),
                &username,
            ),
            Dialect::Json => ApiError::unauthorized(BAD_CREDENTIALS).into_response(),
        },
        Err(LoginError::Throttled { retry_after }) => {
            let message = format!(
                "too many failed logins for this user from your address; try again in {} minutes",
                retry_after.div_ceil(60)
            );
            let mut res = match dialect {
                Dialect::Form => page(
                    StatusCode::TOO_MANY_REQUESTS,
                    Some(Notice::Throttled {
                        message: &message,
                        retry_at: retry_time(retry_after),
                    }),
                    "",
                ),
                Dialect::Json => {
                    ApiError::new(StatusCode::TOO_MANY_REQUESTS, message).into_response()
                }
            };
            res.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(retry_after));
            res
        }
        Err(LoginError::Busy) => {
            let mut res = ApiError::unavailable(
                "too many logins in progress on this node; retry in a moment",
            )
            .into_response();
            res.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("2"));
            res
        }
        Err(LoginError::Api(e)) => e.into_response(),
    }
}

enum LoginError {
    BadCredentials {
        username: String,
    },
    Throttled {
        retry_after: u64,
    },
    /// Every password-check slot stayed taken for `VERIFY_QUEUE_WAIT`.
    Busy,
    Api(ApiError),
}

impl From<ApiError> for LoginError {
    fn from(e: ApiError) -> LoginError {
        LoginError::Api(e)
    }
}

async fn try_login(
    state: &AppState,
    parts: &Parts,
    body: axum::body::Body,
) -> Result<Response, LoginError> {
    check_same_origin(parts)?;
    let body = read_body(parts, body).await?;
    let creds: Credentials = decode(parts, &body, "login")?;
    let web = state.web();
    let store = web.store();
    let client = web.client(parts);

    // Count the attempt before checking the password: parallel guesses cannot slip past the
    // limit, and while locked out even the right password is refused. Success clears the
    // (address, user) count; the per-address count runs out with its window, so one valid
    // account cannot reset it for a flood of made-up names from the same address.
    let key = throttle_key(client.ip, &creds.username);
    let ip_key = ip_throttle_key(client.ip);
    let ip_attempts = store
        .record_failure(&ip_key, web.login_failure_window)
        .await
        .map_err(|e| auth::session_error(&e))?;
    let attempts = store
        .record_failure(&key, web.login_failure_window)
        .await
        .map_err(|e| auth::session_error(&e))?;
    if attempts > web.max_login_failures || ip_attempts > web.max_login_failures_per_ip {
        tracing::warn!(user = %creds.username, ip = ?client.ip, attempts, ip_attempts, "login throttled");
        return Err(LoginError::Throttled {
            // The window runs from the first failure; its full length is an upper bound.
            retry_after: web.login_failure_window.as_secs().max(1),
        });
    }

    let hash = state
        .config()
        .auth
        .users
        .iter()
        .find(|u| u.username == creds.username)
        .map(|u| u.password_hash.clone());
    let known = hash.is_some();
    let hash = hash.unwrap_or_else(|| DUMMY_HASH.clone());
    let password = creds.password;
    // argon2 takes tens of milliseconds of CPU and 19 MiB: it runs on the verifier threads,
    // one per core; a login that cannot get one soon is told to retry.
    let matches = web
        .verifier
        .verify(hash, password, VERIFY_QUEUE_WAIT)
        .await
        .map_err(|_| LoginError::Busy)?;
    if !(known && matches) {
        tracing::info!(user = %creds.username, ip = ?client.ip, attempts, "login failed");
        return Err(LoginError::BadCredentials {
            username: creds.username,
        });
    }

    if let Err(e) = store.clear_failures(&key).await {
        tracing::warn!(error = %e, "could not reset the failed-login count");
    }
    // The old session, if the browser had one, ends here: one login, one live id.
    let presented = cookie::presented(&parts.headers);
    if let Presented::Id { id, .. } = &presented
        && let Err(e) = store.delete(id).await
    {
        tracing::warn!(error = %e, "could not delete the session replaced by a new login");
    }
    let (id, session) = store
        .start(&creds.username, Default::default())
        .await
        .map_err(|e| auth::session_error(&e))?;
    tracing::info!(user = %session.user, session = ?id, ip = ?client.ip, "logged in");

    let mut res = match dialect(parts) {
        Dialect::Form => see_other(AFTER_LOGIN),
        Dialect::Json => Json(json!({
            "user": session.user,
            "csrf_token": session.csrf_token,
            "expires_at": crate::cluster::rfc3339(session.expires_at),
        }))
        .into_response(),
    };
    // A `fleet_session` left from plain HTTP would shadow nothing but confuse; drop it when
    // the new cookie goes under the `__Host-` name (and the other way round).
    if presented.secure_name().is_some_and(|s| s != client.secure) {
        cookie::append_clear(res.headers_mut(), &presented);
    }
    res.headers_mut().append(
        SET_COOKIE,
        cookie::set(&id, client.secure, web.max_lifetime.as_secs()),
    );
    no_store(&mut res);
    Ok(res)
}

/// The throttling counter's key: client address and a digest of the name (any length, any
/// characters, the same key size).
fn throttle_key(ip: Option<IpAddr>, username: &str) -> String {
    let ip = ip.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    format!("login:{ip}:{}", credentials::sha256_hex(username))
}

/// The per-address counter's key: every username from one client address.
fn ip_throttle_key(ip: Option<IpAddr>) -> String {
    let ip = ip.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    format!("login-ip:{ip}")
}

/// Refuse a login posted from another site's page. Browsers send `Origin` on cross-origin
/// POSTs (and `Referer` unless told not to); its host must be the one the request was sent
/// to. Clients that send neither (curl, scripts) are not browsers a site could drive.
fn check_same_origin(parts: &Parts) -> Result<(), ApiError> {
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let source = header(ORIGIN).or_else(|| header(REFERER));
    let Some(source) = source else {
        return Ok(());
    };
    let forbidden = |why: String| ApiError::new(StatusCode::FORBIDDEN, why);
    let authority = source
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""))
        .ok_or_else(|| forbidden(format!("cross-origin login refused (Origin `{source}`)")))?;
    // Behind a proxy the browser's host arrives in X-Forwarded-Host, else in Host.
    let target = header(axum::http::HeaderName::from_static("x-forwarded-host"))
        .or_else(|| header(HOST))
        .unwrap_or("");
    if normalise_authority(authority) == normalise_authority(target) {
        Ok(())
    } else {
        Err(forbidden(format!(
            "cross-origin login refused: the form came from `{source}`, not from `{target}`"
        )))
    }
}

fn normalise_authority(a: &str) -> String {
    let a = a.trim().to_ascii_lowercase();
    a.strip_suffix(":80")
        .or_else(|| a.strip_suffix(":443"))
        .unwrap_or(&a)
        .to_string()
}

#[derive(Deserialize, Default)]
struct LogoutBody {
    csrf_token: Option<String>,
}

/// `POST /logout`: ends the session on every node (it is deleted from the shared store) and
/// clears the cookie. With a live session the CSRF token is required, so another site cannot
/// log the user out.
async fn logout(State(state): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let dialect = dialect(&parts);
    match try_logout(&state, &parts, body).await {
        Ok(was_logged_in) => {
            let mut res = match dialect {
                Dialect::Form => see_other("/login"),
                Dialect::Json => Json(json!({ "logged_out": was_logged_in })).into_response(),
            };
            cookie::append_clear(res.headers_mut(), &cookie::presented(&parts.headers));
            no_store(&mut res);
            res
        }
        // Includes 503 when the store is down: the cookie stays, the user can retry.
        Err(e) => e.into_response(),
    }
}

async fn try_logout(
    state: &AppState,
    parts: &Parts,
    body: axum::body::Body,
) -> Result<bool, ApiError> {
    // The body first: an oversize one is refused (413) whether or not there is a session.
    let body = read_body(parts, body).await?;
    let Presented::Id { id, .. } = cookie::presented(&parts.headers) else {
        return Ok(false);
    };
    let store = state.web().store();
    let Some(session) = store.load(&id).await.map_err(|e| auth::session_error(&e))? else {
        return Ok(false);
    };
    let presented = match auth::csrf_header(&parts.headers) {
        Some(t) => Some(t.to_string()),
        None if body.is_empty() => None,
        None => decode::<LogoutBody>(parts, &body, "logout")?.csrf_token,
    };
    auth::check_csrf(&session, presented.as_deref())?;
    store
        .delete(&id)
        .await
        .map_err(|e| auth::session_error(&e))?;
    tracing::info!(user = %session.user, session = ?id, "logged out");
    Ok(true)
}

/// `GET /api/session`: the caller's session, with the CSRF token pages and scripts must echo.
/// The body of `GET /api/session`, serialized straight from the session (no JSON tree).
#[derive(Serialize)]
struct WhoAmI<'a> {
    user: &'a str,
    csrf_token: &'a str,
    created_at: String,
    expires_at: String,
}

async fn whoami(user: LoggedIn) -> Response {
    let s = &user.session;
    let mut res = Json(WhoAmI {
        user: &s.user,
        csrf_token: &s.csrf_token,
        created_at: crate::cluster::rfc3339(s.created_at),
        expires_at: crate::cluster::rfc3339(s.expires_at),
    })
    .into_response();
    no_store(&mut res);
    res
}

fn see_other(location: &'static str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(LOCATION, HeaderValue::from_static(location))],
    )
        .into_response()
}

/// Nothing about a session may be cached by a browser or a proxy.
fn no_store(res: &mut Response) {
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The login form, with the failure or throttling message when there is one. No script; the
/// shared stylesheet and icon only.
fn page(status: StatusCode, notice: Option<Notice<'_>>, username: &str) -> Response {
    let body = html! {
        section.panel.login {
            h1 { "Log in to fleetctl" }
            @match notice {
                Some(Notice::Failed(message)) => p.error role="alert" { (message) },
                Some(Notice::Throttled { message, retry_at }) => div.error role="alert" {
                    p { (message) }
                    p { "You can try again at " time datetime=(retry_at.0) { (retry_at.1) } "." }
                },
                None => {},
            }
            form method="post" action="/login" {
                label for="username" { "Username" }
                input id="username" name="username" autocomplete="username" value=(username)
                    required autofocus;
                label for="password" { "Password" }
                input id="password" name="password" type="password"
                    autocomplete="current-password" required;
                button.primary type="submit" { "Log in" }
            }
        }
    };
    super::html_response(
        status,
        super::layout("Log in", super::Nav::Login, None, "", &[], body),
    )
}

/// What the login form says above the fields.
enum Notice<'a> {
    Failed(&'a str),
    /// Too many failures: the message, and when to retry (RFC 3339, and for people).
    Throttled {
        message: &'a str,
        retry_at: (String, String),
    },
}

/// `retry_after` seconds from now as (RFC 3339, "14:32 UTC").
fn retry_time(retry_after: u64) -> (String, String) {
    let at = time::OffsetDateTime::now_utc() + std::time::Duration::from_secs(retry_after);
    let ms = (at.unix_timestamp_nanos() / 1_000_000) as i64;
    (
        crate::cluster::rfc3339(ms),
        format!("{:02}:{:02} UTC", at.hour(), at.minute()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut b = Request::post("/login");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn origin_check() {
        assert!(check_same_origin(&parts(&[("host", "fleet:8768")])).is_ok());
        assert!(
            check_same_origin(&parts(&[
                ("host", "fleet:8768"),
                ("origin", "http://fleet:8768")
            ]))
            .is_ok()
        );
        assert!(
            check_same_origin(&parts(&[
                ("host", "fleet.example.com"),
                ("origin", "https://fleet.example.com:443")
            ]))
            .is_ok()
        );
        assert!(
            check_same_origin(&parts(&[
                ("host", "fleet:8768"),
                ("referer", "http://fleet:8768/login?x=1")
            ]))
            .is_ok()
        );
        for bad in [
            ("origin", "https://evil.example"),
            ("origin", "null"),
            ("referer", "https://evil.example/fleet:8768"),
        ] {
            let err = check_same_origin(&parts(&[("host", "fleet:8768"), bad])).unwrap_err();
            assert_eq!(err.status, StatusCode::FORBIDDEN, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn login_page_is_labelled_escaped_and_self_contained() {
        let res = page(
            StatusCode::UNAUTHORIZED,
            Some(Notice::Failed("<b>bad</b>")),
            "\"><script>",
        );
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let csp = res.headers()[axum::http::header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
        assert_eq!(res.headers()[CACHE_CONTROL], "no-store");
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        let html = String::from_utf8(bytes.to_vec()).unwrap();
        assert!(html.contains(r#"<label for="username">"#) && html.contains(r#"id="username""#));
        assert!(html.contains(r#"<label for="password">"#) && html.contains(r#"type="password""#));
        assert!(
            html.contains(r#"role="alert">&lt;b&gt;bad&lt;/b&gt;"#),
            "{html}"
        );
        assert!(
            !html.contains("<script"),
            "no script, and user input is escaped"
        );
        assert!(
            html.contains(r#"value="&quot;&gt;&lt;script&gt;""#),
            "{html}"
        );
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no external assets"
        );
    }

    #[tokio::test]
    async fn throttled_form_says_when_to_retry() {
        let res = page(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Notice::Throttled {
                message: "too many failed logins",
                retry_at: retry_time(900),
            }),
            "",
        );
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        let html = String::from_utf8(bytes.to_vec()).unwrap();
        assert!(html.contains("too many failed logins"), "{html}");
        assert!(
            html.contains("You can try again at <time datetime=\""),
            "{html}"
        );
        assert!(html.contains(" UTC</time>"), "{html}");
    }

    #[test]
    fn throttle_key_hides_the_name_and_keeps_the_address() {
        let k = throttle_key(Some("192.0.2.1".parse().unwrap()), "admin");
        assert!(k.starts_with("login:192.0.2.1:"), "{k}");
        assert!(!k.contains("admin"));
        assert_eq!(k, throttle_key(Some("192.0.2.1".parse().unwrap()), "admin"));
        assert_ne!(k, throttle_key(Some("192.0.2.2".parse().unwrap()), "admin"));
        assert!(throttle_key(None, "admin").starts_with("login:unknown:"));
    }
}
