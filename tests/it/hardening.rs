//! The hardening every route gets (`src/server/hardening.rs`) and the status codes decided per
//! route: malformed node ids are 400, a corrupt node record on drain is a 500 JSON naming no
//! path, security headers on API and pages (HSTS only over TLS), the per-address login
//! throttle shared through the session store, the concurrency limit's 503 + Retry-After.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;

use fleetctl::config::{BackendKind, Config, KeyEntry, UserEntry};
use fleetctl::server::{self, AppState};

use crate::support::node::{ADMIN_TOKEN, sha256_hex};

const PASSWORD: &str = "hardening password";

async fn state(tweak: impl FnOnce(&mut Config)) -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.cluster.backend = BackendKind::File;
    config.cluster.state_path = dir.path().join("cluster");
    config.sessions.backend = BackendKind::Sqlite;
    config.sessions.db_path = dir.path().join("sessions.db");
    config.auth.users = vec![UserEntry {
        username: "admin".into(),
        password_hash: fleetctl::credentials::hash_password(PASSWORD).unwrap(),
    }];
    config.auth.admin_tokens = vec![KeyEntry {
        name: "tests".into(),
        sha256: sha256_hex(ADMIN_TOKEN),
    }];
    config.storage.db_path = dir.path().join("fleet.db");
    tweak(&mut config);
    let s = crate::support::app::node_state(config, "hard-node").await;
    (s, dir)
}

async fn call(state: &AppState, req: Request<Body>) -> (StatusCode, Value, axum::http::HeaderMap) {
    let res = server::app(state.clone()).oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        headers,
    )
}

fn admin(method: &str, path: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn malformed_node_ids_are_400_not_503() {
    let (state, _dir) = state(|_| {}).await;
    for id in ["..", "a%2Fb", "a%00b", &"x".repeat(300)] {
        for action in ["drain", "undrain"] {
            let path = format!("/api/fleet/cluster/nodes/{id}/{action}");
            let (status, body, _) = call(&state, admin("POST", &path)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
            assert!(
                body["error"].as_str().unwrap().contains("invalid node id"),
                "{body}"
            );
        }
    }
    // A well-formed id that names no node is still 404.
    let (status, _, _) = call(
        &state,
        admin("POST", "/api/fleet/cluster/nodes/nobody/drain"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_corrupt_node_record_is_skipped_in_listings_and_a_500_json_on_drain() {
    let (state, dir) = state(|_| {}).await;
    // Register a second node, then break its record on disk (the file backend's layout is
    // the file backend's business: find the file by its content).
    let backend = state.node().backend().clone();
    let info = fleetctl::cluster::NodeInfo {
        node_id: "broken-node".into(),
        hostname: "h".into(),
        port: 1,
        url: "http://h:1".into(),
        version: "t".into(),
    };
    backend.register(&info).await.unwrap();
    let mut broken = 0;
    for entry in walk(&dir.path().join("cluster")) {
        if std::fs::read_to_string(&entry).is_ok_and(|t| t.contains("broken-node")) {
            std::fs::write(&entry, "{ not json").unwrap();
            broken += 1;
        }
    }
    assert!(broken > 0, "found the record to corrupt");

    // Listings skip it and say so.
    let (status, body, _) = call(&state, admin("GET", "/api/fleet/cluster/status")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["node_id"] != "broken-node"),
        "{body}"
    );
    // Acting on it: a 500 with a JSON error that names no internal path.
    let (status, body, _) = call(
        &state,
        admin("POST", "/api/fleet/cluster/nodes/broken-node/drain"),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    let msg = body["error"].as_str().unwrap();
    assert!(msg.contains("corrupt"), "{msg}");
    assert!(!msg.contains(&*dir.path().to_string_lossy()), "{msg}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn security_headers_on_api_and_pages_and_no_hsts_over_plain_http() {
    let (state, _dir) = state(|_| {}).await;
    let (_, _, api) = call(&state, admin("GET", "/api/fleet/cluster/nodes")).await;
    assert_eq!(api[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(api[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(api[header::REFERRER_POLICY], "same-origin");
    assert!(
        api[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert!(!api.contains_key(header::STRICT_TRANSPORT_SECURITY));
    let page = Request::get("/login").body(Body::empty()).unwrap();
    let (_, _, page) = call(&state, page).await;
    let csp = page[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    // The page's own CSP, not the API one: own scripts only, never inline.
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    // Errors from outside our handlers are JSON too (an axum path rejection, a 405).
    let (status, body, headers) = call(&state, admin("PUT", "/api/fleet/summary")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body["error"].is_string(), "{body}");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
}

#[tokio::test]
async fn hsts_over_tls_config() {
    let (state, _dir) = state(|c| {
        c.server.tls = Some(fleetctl::config::TlsConfig {
            cert: Some("/unused.pem".into()),
            key: Some("/unused.key".into()),
            client_ca: None,
        })
    })
    .await;
    let (_, _, h) = call(&state, admin("GET", "/api/fleet/cluster/health")).await;
    assert_eq!(h[header::STRICT_TRANSPORT_SECURITY], "max-age=31536000");
}

fn login(user: &str, peer: &str) -> Request<Body> {
    let mut req = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            serde_json::json!({"username": user, "password": "wrong"}).to_string(),
        ))
        .unwrap();
    req.extensions_mut().insert(axum::extract::ConnectInfo(
        peer.parse::<std::net::SocketAddr>().unwrap(),
    ));
    req
}

#[tokio::test]
async fn login_attempts_are_throttled_per_address_across_usernames_and_nodes() {
    // Two nodes sharing one session store: the count is the store's, not a node's.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared-sessions.db");
    let tweak = |c: &mut Config| {
        c.sessions.max_login_failures_per_ip = 8;
        c.sessions.db_path = db.clone();
    };
    let (a, _da) = state(tweak).await;
    let (b, _db) = state(tweak).await;
    let peer = "203.0.113.9:4000";
    for i in 0..8 {
        let node = if i % 2 == 0 { &a } else { &b };
        let (status, _, _) = call(node, login(&format!("user-{i}"), peer)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    for node in [&a, &b] {
        let (status, body, headers) = call(node, login("yet-another-name", peer)).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert!(headers.contains_key(header::RETRY_AFTER));
    }
    // Another address is not affected.
    let (status, _, _) = call(&a, login("user-0", "203.0.113.10:4000")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_concurrency_limit_answers_503_with_retry_after_and_spares_health() {
    let (state, _dir) = state(|c| c.server.max_concurrent_requests = 1).await;
    let app = server::app(state.clone());
    // Hold the only slot with a login stuck behind a body that never finishes.
    let (tx, body) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(1);
    let stuck = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(tokio_stream(body)))
        .unwrap();
    let held = tokio::spawn(app.clone().oneshot(stuck));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let res = app
        .clone()
        .oneshot(admin("GET", "/api/fleet/cluster/nodes"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()[header::RETRY_AFTER], "1");
    let res = app
        .clone()
        .oneshot(admin("GET", "/api/fleet/cluster/health"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "health is outside the limit");
    drop(tx);
    let _ = held.await;
    let res = app
        .oneshot(admin("GET", "/api/fleet/cluster/nodes"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "the slot is free again");
}

fn tokio_stream(
    mut rx: tokio::sync::mpsc::Receiver<Result<axum::body::Bytes, std::io::Error>>,
) -> impl futures::Stream<Item = Result<axum::body::Bytes, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test]
async fn a_panicking_handler_answers_a_generic_500_json() {
    let (state, _dir) = state(|_| {}).await;
    let limits = fleetctl::server::hardening::Limits::from_config(&state.config().server);
    let router: axum::Router = axum::Router::new()
        .route(
            "/boom",
            axum::routing::get(|| async {
                if true {
                    panic!("secret detail at /srv/fleet/src/lib.rs:1");
                }
                "unreachable"
            }),
        )
        .layer(fleetctl::server::envelope::Envelope::new(state, limits));
    let res = router
        .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 16)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    let msg = body["error"].as_str().unwrap();
    assert!(msg.starts_with("internal error"), "{msg}");
    assert!(!msg.contains("secret") && !msg.contains("/srv"), "{msg}");
    assert_eq!(
        headers[header::X_CONTENT_TYPE_OPTIONS],
        "nosniff",
        "a panic's answer gets the security headers too"
    );
}
