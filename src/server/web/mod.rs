//! The web UI a person uses: the login form and logout ([`login`]), the fleet dashboard
//! ([`dashboard`]), one machine's charts ([`machine`]), and the embedded CSS, script and icon
//! they load ([`assets`]). Charts and sparklines are inline SVG drawn by the server
//! ([`chart`]); a small plain script refreshes the dashboard from the JSON API.
//!
//! Templates are maud, not askama: maud templates are Rust expressions checked by the
//! compiler (a typo in a field or a missing import fails the build, like askama), escape every
//! interpolated value by default, and need no template files or build-time file lookups, so a
//! page and the handler that fills it live in one file. Nothing is loaded from another origin:
//! every page sends a Content-Security-Policy that allows only this server's own assets.
//!
//! Private pages (everything but the login form and the assets) take [`LoggedIn`]: without a
//! session a browser is redirected to `/login`. They are sent with `Cache-Control: no-store`,
//! so after logout neither the back button nor a shared proxy shows anything private.
//!
//! This module reads fleet and cluster data only through `AppState` (the same store calls and
//! pure views as the JSON API); it never spells a store key.

pub mod assets;
pub mod chart;
pub mod dashboard;
pub mod login;
pub mod machine;

use axum::Router;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{DOCTYPE, Markup, html};

use super::AppState;
use super::auth::LoggedIn;

pub use login::{AFTER_LOGIN, warm_up};

/// What pages may load: only this server's own styles, scripts, icon and API; no framing
/// (clickjacking), forms post only to ourselves.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(login::routes())
        .route("/", get(root))
        .route("/dashboard", get(dashboard::page))
        .route("/machines/{id}", get(machine::page))
        .merge(assets::routes())
}

/// `GET /`: the dashboard (which sends a browser without a session on to the login form).
async fn root() -> Response {
    (
        StatusCode::SEE_OTHER,
        [(
            axum::http::header::LOCATION,
            HeaderValue::from_static("/dashboard"),
        )],
    )
        .into_response()
}

/// Which navigation entry a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Login,
    Dashboard,
    Machine,
}

/// The frame around every page: head with the embedded stylesheet, header with the user and
/// the logout form (carrying the session's CSRF token), footer naming the serving node.
pub fn layout(
    title: &str,
    nav: Nav,
    user: Option<&LoggedIn>,
    node_id: &str,
    scripts: &[&str],
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · fleetctl" }
                link rel="icon" type="image/svg+xml" href=(assets::url("favicon.svg"));
                link rel="stylesheet" href=(assets::url("app.css"));
                @for s in scripts {
                    script src=(assets::url(s)) defer {}
                }
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.topbar {
                    a.brand href="/dashboard" {
                        img src=(assets::url("favicon.svg")) alt="" width="22" height="22";
                        span { "fleetctl" }
                    }
                    @if let Some(u) = user {
                        nav aria-label="Main" {
                            a href="/dashboard"
                                aria-current=[(nav == Nav::Dashboard).then_some("page")] { "Dashboard" }
                        }
                        div.who {
                            span.user title="Logged in as" { (u.user) }
                            form method="post" action="/logout" {
                                input type="hidden" name=(super::auth::CSRF_FIELD)
                                    value=(u.session.csrf_token);
                                button.linkish type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main id="main" { (body) }
                @if !node_id.is_empty() {
                    footer.foot {
                        "Served by node " code #served-by { (node_id) }
                    }
                }
            }
        }
    }
}

/// An HTML response with the headers every page carries. `private` pages (anything shown
/// to a logged-in user) must not be stored by the browser or a proxy.
pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut res = (status, markup).into_response();
    let h = res.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // Every page is either private or the login form: neither may be cached.
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    res
}

/// A page saying something went wrong (404 for an unknown machine, 503 when a store is down),
/// inside the usual frame so the user can navigate on.
pub fn error_page(
    status: StatusCode,
    title: &str,
    message: &str,
    user: &LoggedIn,
    node_id: &str,
) -> Response {
    let body = html! {
        section.panel.error-page {
            h1 { (title) }
            p role="alert" { (message) }
            p { a href="/dashboard" { "Back to the dashboard" } }
        }
    };
    html_response(
        status,
        layout(title, Nav::Machine, Some(user), node_id, &[], body),
    )
}

/// "4 s ago", "3 min ago", "2 h ago", "5 d ago".
pub fn age(secs: f64) -> String {
    let s = secs.max(0.0);
    if s < 60.0 {
        format!("{} s ago", s.round() as u64)
    } else if s < 3600.0 {
        format!("{} min ago", (s / 60.0).floor() as u64)
    } else if s < 86_400.0 {
        format!("{} h ago", (s / 3600.0).floor() as u64)
    } else {
        format!("{} d ago", (s / 86_400.0).floor() as u64)
    }
}

/// A byte count for people: 1.5 GiB.
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n.max(0.0);
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 || v >= 100.0 {
        format!("{v:.0} {}", UNITS[i])
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_sizes_read_naturally() {
        assert_eq!(age(0.4), "0 s ago");
        assert_eq!(age(59.4), "59 s ago");
        assert_eq!(age(61.0), "1 min ago");
        assert_eq!(age(7300.0), "2 h ago");
        assert_eq!(age(3.0 * 86_400.0), "3 d ago");
        assert_eq!(age(-5.0), "0 s ago");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(bytes(16.0 * 1024.0 * 1024.0 * 1024.0), "16.0 GiB");
        assert_eq!(bytes(200.0 * 1024.0 * 1024.0), "200 MiB");
    }
}
