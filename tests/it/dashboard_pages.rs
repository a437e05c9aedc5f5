//! The web pages in-process (`app(state).oneshot`), on real SQLite session and fleet stores:
//! status codes, content types, cache and security headers, the logout form's CSRF token,
//! escaping of hostnames, 404 pages, the embedded assets.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode, header};
use tower::ServiceExt;

use fleetctl::agent::simulator::VirtualMachine;
use fleetctl::config::{BackendKind, Config, UserEntry};
use fleetctl::fleet::FleetStore;
use fleetctl::server::web::assets;
use fleetctl::server::{self, AppState};

const PASSWORD: &str = "pages-test-password";
const CLIENT: &str = "192.0.2.44:50000";
const EVIL: &str = "<script>alert('xss')</script>\"><img src=x onerror=alert(1)>";

struct Pages {
    state: AppState,
    fleet: Arc<dyn FleetStore>,
    _dir: tempfile::TempDir,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Reply {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(&name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

impl Pages {
    async fn new(tweak: impl FnOnce(&mut Config)) -> Pages {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.cluster.backend = BackendKind::Sqlite;
        config.cluster.state_path = dir.path().join("cluster");
        config.sessions.backend = BackendKind::Sqlite;
        config.sessions.db_path = dir.path().join("sessions.db");
        config.storage.backend = BackendKind::Sqlite;
        config.storage.db_path = dir.path().join("fleet.db");
        config.auth.users = vec![UserEntry {
            username: "admin".into(),
            password_hash: fleetctl::credentials::hash_password(PASSWORD).unwrap(),
        }];
        tweak(&mut config);
        let fleet = fleetctl::fleet::open(&config.storage).await.expect("fleet");
        let node_state = crate::support::app::node_state(config, "pages-node").await;
        Pages {
            state: node_state,
            fleet,
            _dir: dir,
        }
    }

    /// Record a few reports of a machine with this id and hostname.
    async fn machine(&self, id: &str, hostname: &str) {
        let mut vm = VirtualMachine::new("pages", 1, 1);
        let now = fleetctl::agent::now_ms();
        for ago in [90_000, 60_000, 30_000, 0] {
            let mut r = vm.report(now - ago);
            r.machine_id = id.into();
            r.hostname = hostname.into();
            self.fleet.record(&r, "agents").await.expect("record");
        }
    }

    async fn call(&self, req: Request<Body>) -> Reply {
        let mut req = req;
        let addr: SocketAddr = CLIENT.parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(addr));
        let res = server::app(self.state.clone()).oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), 4 << 20)
            .await
            .unwrap();
        Reply {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        let mut b = Request::get(path).header(header::ACCEPT, "text/html,application/xhtml+xml");
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        self.call(b.body(Body::empty()).unwrap()).await
    }

    /// Log in with the form, as a browser does; returns the `fleet_session=…` pair.
    async fn login(&self) -> String {
        let body = format!("username=admin&password={PASSWORD}");
        let r = self
            .call(
                Request::post("/login")
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(header::HOST, "fleet.test")
                    .header(header::ORIGIN, "http://fleet.test")
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
        assert_eq!(r.header(header::LOCATION), "/dashboard");
        r.header(header::SET_COOKIE)
            .split(';')
            .next()
            .unwrap()
            .to_string()
    }
}

fn assert_private_html(r: &Reply, what: &str) {
    assert!(
        r.header(header::CONTENT_TYPE).starts_with("text/html"),
        "{what}: {:?}",
        r.headers
    );
    assert_eq!(r.header(header::CACHE_CONTROL), "no-store", "{what}");
    let csp = r.header(header::CONTENT_SECURITY_POLICY);
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{what}: {csp}"
    );
    assert_eq!(
        r.header(header::X_CONTENT_TYPE_OPTIONS),
        "nosniff",
        "{what}"
    );
    // Node URLs appear as text in the cluster panel; nothing is loaded from them.
    for load in [r#"src="http"#, r#"href="http"#, "src=\"//", "href=\"//"] {
        assert!(!r.text.contains(load), "{what}: loads from another origin");
    }
}

#[tokio::test]
async fn pages_need_a_session_and_are_never_cached() {
    let p = Pages::new(|_| {}).await;
    p.machine("web-01", "web-01.example.com").await;
    for path in ["/dashboard", "/machines/web-01", "/machines/unknown"] {
        let r = p.get(path, None).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.header(header::LOCATION), "/login", "{path}");
    }
    let r = p.get("/", None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header(header::LOCATION), "/dashboard");
    let r = p.get("/login", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_private_html(&r, "login");

    let cookie = p.login().await;
    let r = p.get("/dashboard", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_private_html(&r, "dashboard");
    for part in [
        "web-01.example.com",
        r#"href="/machines/web-01""#,
        r#"id="t-online""#,
        r#"<svg class="spark s-cpu""#,
        r#"id="node-rows""#,
        r#"<code id="served-by">pages-node</code>"#,
        r#"<button class="sort" type="button" data-key="cpu""#,
        "dashboard.js?v=",
    ] {
        assert!(r.text.contains(part), "dashboard lacks {part}:\n{}", r.text);
    }
    for range in ["", "?range=1h", "?range=24h", "?range=7d", "?range=bogus"] {
        let r = p
            .get(&format!("/machines/web-01{range}"), Some(&cookie))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{range}: {}", r.text);
        assert_private_html(&r, "machine");
        assert_eq!(
            r.text.matches("<figure class=\"chart\"").count(),
            4,
            "{range}"
        );
        assert!(r.text.contains("aria-current=\"page\""), "{range}");
    }
    let r = p.get("/machines/web-01?range=1h", Some(&cookie)).await;
    assert!(r.text.contains(">100 %</text>"), "y axis with units");
    assert!(r.text.contains("<polyline"), "a line");

    // The filter and sort of the dashboard's URL are applied by the server too.
    p.machine("db-01", "db-01.example.com").await;
    let r = p
        .get(
            "/dashboard?hostname=db&status=online&sort=-cpu",
            Some(&cookie),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("db-01.example.com") && !r.text.contains("web-01.example.com"));
    assert!(r.text.contains(r#"aria-sort="descending""#));
    // A URL the API would refuse shows the default view, not an error.
    let r = p.get("/dashboard?sort=nonsense&x=1", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("web-01.example.com") && r.text.contains("db-01.example.com"));
}

/// Ids of the machine rows of a dashboard page, top to bottom.
fn row_ids(html: &str) -> Vec<String> {
    html.split(r#"<tr data-id=""#)
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_string())
        .collect()
}

/// The `href` of the element with this id, unescaped, if it is shown (not `hidden`).
fn shown_link(html: &str, id: &str) -> Option<String> {
    let tag = html
        .split(&format!(r#"id="{id}""#))
        .nth(1)?
        .split('>')
        .next()?;
    if tag.contains(" hidden") {
        return None;
    }
    let href = tag.split(r#"href=""#).nth(1)?.split('"').next()?;
    Some(href.replace("&amp;", "&"))
}

#[tokio::test]
async fn the_dashboard_pages_through_a_large_fleet() {
    let p = Pages::new(|_| {}).await;
    const MACHINES: usize = 130;
    let mut vm = VirtualMachine::new("pages", 3, 3);
    let now = fleetctl::agent::now_ms();
    for i in 0..MACHINES {
        let mut r = vm.report(now);
        r.machine_id = format!("m-{i:03}");
        r.hostname = format!("m-{i:03}.example.com");
        p.fleet.record(&r, "agents").await.expect("record");
    }
    let cookie = p.login().await;

    // The first page: 100 rows in hostname order, no "First page", a "Next page" link.
    let r = p.get("/dashboard", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let first = row_ids(&r.text);
    let expected: Vec<String> = (0..100).map(|i| format!("m-{i:03}")).collect();
    assert_eq!(first, expected);
    assert_eq!(
        r.text.matches(r#"<svg class="spark s-cpu""#).count(),
        100,
        "sparklines for the shown rows only"
    );
    assert!(
        r.text
            .contains("showing 100 of 130 matching, 130 in the fleet")
    );
    assert_eq!(shown_link(&r.text, "page-first"), None);
    let next = shown_link(&r.text, "page-next").expect("a Next page link");
    assert!(next.starts_with("/dashboard?cursor="), "{next}");

    // The second page: the other 30, none of the first page's, and no further page.
    let r = p.get(&next, Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let second = row_ids(&r.text);
    let rest: Vec<String> = (100..MACHINES).map(|i| format!("m-{i:03}")).collect();
    assert_eq!(second, rest, "the next machines, no duplicates");
    assert!(
        r.text
            .contains("showing 30 of 30 matching from here on, 130 in the fleet")
    );
    assert_eq!(shown_link(&r.text, "page-next"), None, "the last page");
    assert_eq!(
        shown_link(&r.text, "page-first").as_deref(),
        Some("/dashboard")
    );

    // Filters and sort stay in the links, and in the pages they lead to.
    let r = p
        .get("/dashboard?hostname=M-&sort=-hostname", Some(&cookie))
        .await;
    let first = row_ids(&r.text);
    assert_eq!(first.first().map(String::as_str), Some("m-129"));
    let next = shown_link(&r.text, "page-next").expect("a Next page link");
    assert!(
        next.starts_with("/dashboard?hostname=M-&sort=-hostname&cursor="),
        "{next}"
    );
    let r = p.get(&next, Some(&cookie)).await;
    let second = row_ids(&r.text);
    assert_eq!(second.len(), 30);
    assert_eq!(second.last().map(String::as_str), Some("m-000"));
    assert!(second.iter().all(|id| !first.contains(id)));
    assert!(r.text.contains(r#"aria-sort="descending""#));
    assert!(
        r.text.contains(r#"data-cursor="ey"#),
        "the script knows the page"
    );

    // A cursor that does not fit shows the first page of the same view, not an error.
    for bad in [
        "/dashboard?cursor=not-a-cursor",
        "/dashboard?cursor=%FF%FE",
        // Made for sort=-hostname, used with the default sort.
        next.replace("hostname=M-&sort=-hostname&", "").as_str(),
    ] {
        let r = p.get(bad, Some(&cookie)).await;
        assert_eq!(r.status, StatusCode::OK, "{bad}: {}", r.text);
        assert_eq!(row_ids(&r.text), expected, "{bad}");
    }
    let r = p
        .get("/dashboard?hostname=m-12&cursor=nonsense", Some(&cookie))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        row_ids(&r.text).len(),
        10,
        "the filter is kept: m-120 to m-129"
    );
}

#[tokio::test]
async fn unknown_machines_get_a_404_page_and_machines_without_history_an_empty_state() {
    let p = Pages::new(|_| {}).await;
    let cookie = p.login().await;
    let r = p.get("/machines/nope", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_private_html(&r, "404");
    assert!(r.text.contains("Machine not found") && r.text.contains("`nope`"));
    let r = p
        .get(
            "/machines/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            Some(&cookie),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        !r.text.contains("<script>alert"),
        "the id is escaped: {}",
        r.text
    );
    assert!(r.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));

    // A machine whose only report is older than an hour: no points in the 1 h range.
    let mut vm = VirtualMachine::new("pages", 2, 2);
    let mut report = vm.report(fleetctl::agent::now_ms() - 2 * 3_600_000);
    report.machine_id = "quiet".into();
    p.fleet.record(&report, "agents").await.unwrap();
    let r = p.get("/machines/quiet?range=1h", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.text.contains("No history in this range yet."),
        "{}",
        r.text
    );
    let r = p.get("/machines/quiet?range=24h", Some(&cookie)).await;
    assert!(!r.text.contains("No history in this range yet."));

    // No machines at all: the dashboard says how to get some.
    let q = Pages::new(|_| {}).await;
    let cookie = q.login().await;
    let r = q.get("/dashboard", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("No machine has reported yet."));
}

#[tokio::test]
async fn hostnames_are_escaped_everywhere() {
    let p = Pages::new(|_| {}).await;
    p.machine("evil-01", EVIL).await;
    let cookie = p.login().await;
    for path in ["/dashboard", "/machines/evil-01"] {
        let r = p.get(path, Some(&cookie)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(!r.text.contains("<script>alert"), "{path}: raw script tag");
        assert!(!r.text.contains("<img src=x"), "{path}: raw img tag");
        assert!(
            r.text
                .contains("&lt;script&gt;alert('xss')&lt;/script&gt;&quot;&gt;&lt;img src=x"),
            "{path}: escaped hostname missing:\n{}",
            r.text
        );
    }
}

#[tokio::test]
async fn the_logout_form_carries_the_csrf_token_and_needs_it() {
    let p = Pages::new(|_| {}).await;
    let cookie = p.login().await;
    let r = p.get("/dashboard", Some(&cookie)).await;
    let token = r
        .text
        .split(r#"<input type="hidden" name="csrf_token" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("hidden csrf_token field in the logout form")
        .to_string();
    assert!(token.len() >= 32, "{token}");
    assert!(r.text.contains(r#"<form method="post" action="/logout">"#));

    let logout = |body: String| {
        Request::post("/logout")
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    // Another site's form cannot know the token.
    for body in [String::new(), "csrf_token=wrong".into()] {
        let r = p.call(logout(body.clone())).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{body:?}: {}", r.text);
        assert_eq!(
            p.get("/dashboard", Some(&cookie)).await.status,
            StatusCode::OK
        );
    }
    let r = p.call(logout(format!("csrf_token={token}"))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(r.header(header::LOCATION), "/login");
    assert_eq!(r.header(header::CACHE_CONTROL), "no-store");
    assert!(r.header(header::SET_COOKIE).contains("Max-Age=0"));
    // The back button re-requests the page (no-store); it is gone.
    let r = p.get("/dashboard", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header(header::LOCATION), "/login");
}

#[tokio::test]
async fn throttled_login_form_says_when_to_retry() {
    let p = Pages::new(|c| c.sessions.max_login_failures = 1).await;
    let wrong = || {
        Request::post("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("username=admin&password=wrong"))
            .unwrap()
    };
    let r = p.call(wrong()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.text.contains("invalid username or password"));
    assert!(r.text.contains(r#"value="admin""#), "the name is kept");
    let r = p.call(wrong()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(!r.header(header::RETRY_AFTER).is_empty());
    assert_private_html(&r, "throttled login");
    assert!(
        r.text.contains("You can try again at <time datetime=\""),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn assets_are_embedded_typed_and_cached_by_version() {
    let p = Pages::new(|_| {}).await;
    let v = assets::version();
    for (name, ty) in [
        ("app.css", "text/css"),
        ("dashboard.js", "text/javascript"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let r = p.get(&format!("/assets/{name}?v={v}"), None).await;
        assert_eq!(r.status, StatusCode::OK, "{name}");
        assert!(r.header(header::CONTENT_TYPE).starts_with(ty), "{name}");
        assert_eq!(
            r.header(header::CACHE_CONTROL),
            "public, max-age=31536000, immutable",
            "{name}"
        );
        assert_eq!(r.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        let etag = r.header(header::ETAG).to_string();
        assert!(!etag.is_empty());
        // Without the current version (an old page, a typed URL): revalidate every time.
        let r = p.get(&format!("/assets/{name}?v=old"), None).await;
        assert_eq!(r.header(header::CACHE_CONTROL), "public, no-cache");
        let r = p
            .call(
                Request::get(format!("/assets/{name}"))
                    .header(header::IF_NONE_MATCH, &etag)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{name}");
    }
    let r = p.get("/favicon.ico", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header(header::CONTENT_TYPE).starts_with("image/svg+xml"));
    assert_eq!(
        p.get("/assets/nope.js", None).await.status,
        StatusCode::NOT_FOUND
    );
}
