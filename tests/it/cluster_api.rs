//! The cluster endpoints in-process (no socket): auth, bad headers, JSON shapes, errors.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;

use fleetctl::config::{BackendKind, Config, KeyEntry};
use fleetctl::server::{self, AppState};

use crate::support::node::{ADMIN_TOKEN, sha256_hex};

async fn state() -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.cluster.backend = BackendKind::Sqlite;
    config.cluster.state_path = dir.path().to_path_buf();
    config.auth.admin_tokens = vec![KeyEntry {
        name: "tests".into(),
        sha256: sha256_hex(ADMIN_TOKEN),
    }];
    (
        crate::support::app::node_state(config, "api-node").await,
        dir,
    )
}

async fn call(state: &AppState, req: Request<Body>) -> (StatusCode, Value, axum::http::HeaderMap) {
    let res = server::app(state.clone()).oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, json, headers)
}

fn get(path: &str, auth: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(a) = auth {
        b = b.header(header::AUTHORIZATION, a);
    }
    b.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn health_needs_no_auth_and_names_the_node() {
    let (state, _dir) = state().await;
    let (status, body, headers) = call(&state, get("/api/fleet/cluster/health", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        serde_json::json!({"status": "healthy", "node_id": "api-node"})
    );
    assert_eq!(headers["x-fleet-node"], "api-node");
}

#[tokio::test]
async fn status_has_the_original_shape() {
    let (state, _dir) = state().await;
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let (status, body, _) = call(&state, get("/api/fleet/cluster/status", Some(&bearer))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for k in [
        "enabled",
        "node_id",
        "backend",
        "total_nodes",
        "active_nodes",
        "inactive_nodes",
        "nodes",
        "leader",
    ] {
        assert!(body.get(k).is_some(), "missing {k}: {body}");
    }
    assert_eq!(body["enabled"], false, "default config is standalone");
    assert_eq!(body["backend"], "sqlite");
    assert_eq!(body["leader"], "api-node");
    let node = &body["nodes"][0];
    assert_eq!(node["status"], "active");
    assert!(
        node["last_heartbeat"].as_str().unwrap().ends_with('Z'),
        "RFC 3339 UTC: {node}"
    );

    let (status, body, _) = call(
        &state,
        get("/api/fleet/cluster/nodes?status=inactive", Some(&bearer)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["total"], 0);
}

#[tokio::test]
async fn bad_authorization_headers_get_401_json() {
    let (state, _dir) = state().await;
    let cases: &[(Option<&str>, &str)] = &[
        (None, "authentication required"),
        (Some("Bearer"), "expected `Bearer <token>`"),
        (Some("Bearer "), "expected `Bearer <token>`"),
        (
            Some("Basic YWRtaW46cGFzcw=="),
            "unsupported Authorization scheme",
        ),
        (Some("Bearer wrong-token"), "invalid admin token"),
        (Some("Bearer a b"), "contains spaces"),
        (Some("Token abc"), "unsupported Authorization scheme"),
    ];
    for (auth, expect) in cases {
        let (status, body, headers) = call(&state, get("/api/fleet/cluster/status", *auth)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        let msg = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("JSON error for {auth:?}: {body}"));
        assert!(msg.contains(expect), "{auth:?}: {msg}");
        assert!(headers.contains_key(header::WWW_AUTHENTICATE));
    }
    // Non-ASCII bytes in the header.
    let req = Request::get("/api/fleet/cluster/status")
        .header(
            header::AUTHORIZATION,
            axum::http::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        )
        .body(Body::empty())
        .unwrap();
    let (status, body, _) = call(&state, req).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("malformed"));
}

#[tokio::test]
async fn unknown_routes_methods_and_queries_are_json_4xx() {
    let (state, _dir) = state().await;
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let (status, body, _) = call(&state, get("/api/fleet/nope", None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("/api/fleet/nope"));

    let req = Request::post("/api/fleet/cluster/health")
        .body(Body::empty())
        .unwrap();
    let (status, body, _) = call(&state, req).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body["error"].is_string());

    let (status, body, _) = call(
        &state,
        get("/api/fleet/cluster/nodes?status=dead", Some(&bearer)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("status"), "{body}");

    let req = Request::post("/api/fleet/cluster/nodes/ghost/drain")
        .header(header::AUTHORIZATION, &bearer)
        .body(Body::empty())
        .unwrap();
    let (status, body, _) = call(&state, req).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("ghost"));

    let req = Request::delete("/api/fleet/cluster/nodes/api-node")
        .header(header::AUTHORIZATION, &bearer)
        .body(Body::empty())
        .unwrap();
    let (status, body, _) = call(&state, req).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "removing an active node needs force: {body}"
    );
}
