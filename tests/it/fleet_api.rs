//! The agent and fleet endpoints in-process (no socket), on a real SQLite fleet store:
//! reports in, machines/summary out, bad input refused with nothing stored, API keys.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use fleetctl::cluster::manager::LeaderJob;
use fleetctl::config::{BackendKind, Config, KeyEntry, Secs};
use fleetctl::fleet::janitor::MachineJanitor;
use fleetctl::fleet::{self, FleetStore};
use fleetctl::server::{self, AppState};

use crate::fleet_store::report;
use crate::support::node::{ADMIN_TOKEN, sha256_hex};

const KEY_OLD: &str = "fleet_0000000000000000000000000000000000000000000000000000000000000001";
const KEY_NEW: &str = "fleet_0000000000000000000000000000000000000000000000000000000000000002";

struct Env {
    state: AppState,
    store: Arc<dyn FleetStore>,
    _dir: Arc<tempfile::TempDir>,
}

/// A node whose config accepts the API keys `keys` (name, key), on the fleet database in
/// `dir` (a new one when `None`), as a restarted node with a changed config would be.
async fn env_with(
    keys: &[(&str, &str)],
    dir: Option<Arc<tempfile::TempDir>>,
    tune: impl FnOnce(&mut Config),
) -> Env {
    let dir = dir.unwrap_or_else(|| Arc::new(tempfile::tempdir().unwrap()));
    let mut config = Config::default();
    config.cluster.backend = BackendKind::Sqlite;
    config.cluster.state_path = dir.path().join("cluster");
    config.storage.backend = BackendKind::Sqlite;
    config.storage.db_path = dir.path().join("fleet.db");
    config.sessions.backend = BackendKind::Sqlite;
    config.sessions.db_path = dir.path().join("sessions.db");
    config.auth.admin_tokens = vec![KeyEntry {
        name: "tests".into(),
        sha256: sha256_hex(ADMIN_TOKEN),
    }];
    config.auth.api_keys = keys
        .iter()
        .map(|(name, key)| KeyEntry {
            name: name.to_string(),
            sha256: sha256_hex(key),
        })
        .collect();
    tune(&mut config);
    let node_state = crate::support::app::node_state(config.clone(), "fleet-node").await;
    let store = fleet::open(&config.storage).await.expect("fleet store");
    let state = node_state;
    Env {
        state,
        store,
        _dir: dir,
    }
}

async fn env() -> Env {
    env_with(&[("old", KEY_OLD), ("new", KEY_NEW)], None, |_| {}).await
}

async fn call(state: &AppState, req: Request<Body>) -> (StatusCode, Value, axum::http::HeaderMap) {
    let res = server::app(state.clone()).oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 8 << 20)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, json, headers)
}

fn post(key: Option<&str>, content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut b = Request::post("/api/fleet/report");
    if let Some(k) = key {
        b = b.header(header::AUTHORIZATION, format!("Bearer {k}"));
    }
    if let Some(ct) = content_type {
        b = b.header(header::CONTENT_TYPE, ct);
    }
    b.body(body.into()).unwrap()
}

fn get(path: &str) -> Request<Body> {
    Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
        .body(Body::empty())
        .unwrap()
}

async fn good_report(store: &Arc<dyn FleetStore>, id: &str, cpu: f64) -> Value {
    let now = store.now().await.unwrap();
    serde_json::to_value(report(id, now, cpu)).unwrap()
}

async fn send(env: &Env, key: &str, body: &Value) -> (StatusCode, Value) {
    let (s, v, _) = call(
        &env.state,
        post(Some(key), Some("application/json"), body.to_string()),
    )
    .await;
    (s, v)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_shows_up_in_machines_detail_summary_and_metrics() {
    let env = env().await;
    let body = good_report(&env.store, "web-01", 42.0).await;
    let (status, v, headers) = call(
        &env.state,
        post(
            Some(KEY_NEW),
            Some("application/json; charset=utf-8"),
            body.to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["machine_id"], "web-01");
    assert!(
        headers.contains_key("x-request-id"),
        "request id header: {headers:?}"
    );

    let (status, list, _) = call(&env.state, get("/api/fleet/machines")).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["total"], 1);
    let m = &list["machines"][0];
    assert_eq!(m["machine_id"], "web-01");
    assert_eq!(m["status"], "online");
    assert_eq!(m["cpu_percent"], 42.0);
    assert_eq!(m["memory_percent"], 25.0);
    assert_eq!(m["api_key"], "new");

    let (status, detail, _) = call(&env.state, get("/api/fleet/machines/web-01?range=1h")).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["history"]["resolution"], "raw");
    assert_eq!(detail["history"]["points"].as_array().unwrap().len(), 1);
    assert_eq!(detail["history"]["points"][0]["cpu_percent"], 42.0);
    assert_eq!(detail["history_kept"], json!({"raw": 1, "1m": 1, "10m": 1}));
    let (_, day, _) = call(&env.state, get("/api/fleet/machines/web-01?range=24h")).await;
    assert_eq!(day["history"]["resolution"], "1m");
    let (status, v, _) = call(&env.state, get("/api/fleet/machines/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(v["error"].as_str().unwrap().contains("nope"));

    let (status, s, _) = call(&env.state, get("/api/fleet/summary")).await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(
        (
            s["total"].clone(),
            s["online"].clone(),
            s["offline"].clone()
        ),
        (json!(1), json!(1), json!(0))
    );
    assert_eq!(s["averages"]["cpu_percent"], 42.0);
    assert_eq!(s["top"]["cpu"][0]["machine_id"], "web-01");

    let (_, keys, _) = call(&env.state, get("/api/fleet/keys")).await;
    let keys = keys["keys"].as_array().unwrap();
    let new = keys.iter().find(|k| k["name"] == "new").unwrap();
    assert!(new["last_used"].is_string(), "{new}");
    let old = keys.iter().find(|k| k["name"] == "old").unwrap();
    assert!(old["last_used"].is_null(), "{old}");

    let (status, text, headers) = call(
        &env.state,
        Request::get("/metrics").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = text.as_str().unwrap();
    for needle in [
        "fleetctl_http_requests_total{route=\"/api/fleet/report\",method=\"POST\",status=\"200\"} 1",
        "fleetctl_http_request_duration_seconds_bucket{route=\"/api/fleet/machines\",le=\"+Inf\"} 1",
        "fleetctl_fleet_reports_total{result=\"accepted\",reason=\"\"} 1",
        "fleetctl_fleet_machines{state=\"online\"} 1",
        "fleetctl_cluster_nodes{state=\"active\"} 1",
        "fleetctl_cluster_backend_rtt_seconds ",
        "fleetctl_fleet_store_rtt_seconds ",
        "fleetctl_process_resident_memory_bytes ",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

/// Each malformed report gets a 4xx naming the problem, and none of them stores anything.
#[tokio::test(flavor = "multi_thread")]
async fn malformed_reports_are_refused_and_nothing_is_stored() {
    let env = env().await;
    let good = good_report(&env.store, "bad-1", 10.0).await;
    let with = |path: &[&str], v: Value| {
        let mut r = good.clone();
        let mut at = &mut r;
        for p in &path[..path.len() - 1] {
            at = if let Ok(i) = p.parse::<usize>() {
                &mut at[i]
            } else {
                &mut at[*p]
            };
        }
        let last = path[path.len() - 1];
        if let Ok(i) = last.parse::<usize>() {
            at[i] = v;
        } else {
            at[last] = v;
        }
        r.to_string()
    };
    let without = |field: &str| {
        let mut r = good.clone();
        r.as_object_mut().unwrap().remove(field);
        r.to_string()
    };
    let mut deep = String::from("1");
    for _ in 0..10 {
        deep = format!("[{deep}]");
    }
    let nested = {
        let mut r = good.clone();
        r["extra"] = serde_json::from_str(&deep).unwrap();
        r.to_string()
    };
    let very_deep = format!("{{\"x\": {}{}}}", "[".repeat(5000), "]".repeat(5000));
    let huge = {
        let mut r = good.clone();
        r["padding"] = Value::String("x".repeat(100 * 1024));
        r.to_string()
    };
    let json = Some("application/json");
    let cases: Vec<(&str, Option<&str>, String, u16, &str)> = vec![
        (
            "text/plain",
            Some("text/plain"),
            good.to_string(),
            415,
            "application/json",
        ),
        (
            "no content type",
            None,
            good.to_string(),
            415,
            "Content-Type",
        ),
        (
            "form",
            Some("application/x-www-form-urlencoded"),
            "a=b".into(),
            415,
            "application/json",
        ),
        (
            "truncated JSON",
            json,
            "{\"machine_id\":".into(),
            400,
            "not valid JSON",
        ),
        ("empty body", json, String::new(), 400, "not valid JSON"),
        ("an array", json, "[]".into(), 400, "JSON object"),
        ("null", json, "null".into(), 400, "JSON object"),
        (
            "missing hostname",
            json,
            without("hostname"),
            400,
            "hostname",
        ),
        (
            "missing timestamp",
            json,
            without("timestamp"),
            400,
            "timestamp",
        ),
        (
            "cpu as a word",
            json,
            with(&["cpu_percent"], json!("high")),
            400,
            "cpu_percent",
        ),
        (
            "cpu NaN string",
            json,
            with(&["cpu_percent"], json!("NaN")),
            400,
            "cpu_percent",
        ),
        (
            "cpu Infinity string",
            json,
            with(&["cpu_percent"], json!("Infinity")),
            400,
            "cpu_percent",
        ),
        (
            "cpu 900 %",
            json,
            with(&["cpu_percent"], json!(900)),
            422,
            "cpu_percent",
        ),
        (
            "cpu negative",
            json,
            with(&["cpu_percent"], json!(-1.5)),
            422,
            "cpu_percent",
        ),
        (
            "cpu 1e999",
            json,
            good.to_string()
                .replace("\"cpu_percent\":10.0", "\"cpu_percent\":1e999"),
            400,
            "number out of range",
        ),
        (
            "negative memory",
            json,
            with(&["memory", "used_bytes"], json!(-5)),
            400,
            "memory.used_bytes",
        ),
        (
            "used > total memory",
            json,
            with(&["memory", "used_bytes"], json!(u64::MAX / 2)),
            422,
            "memory.used_bytes",
        ),
        (
            "no memory at all",
            json,
            with(&["memory"], json!({"total_bytes": 0, "used_bytes": 0})),
            422,
            "memory.total_bytes",
        ),
        (
            "negative load",
            json,
            with(&["load", "1"], json!(-0.5)),
            422,
            "load[1]",
        ),
        (
            "two load averages",
            json,
            with(&["load"], json!([1.0, 2.0])),
            400,
            "load",
        ),
        (
            "fractional uptime",
            json,
            with(&["uptime_secs"], json!(1.5)),
            400,
            "uptime_secs",
        ),
        (
            "counter beyond u64",
            json,
            good.to_string()
                .replace("\"rx_bytes\":1000000", "\"rx_bytes\":18446744073709551616"),
            400,
            "network.rx_bytes",
        ),
        (
            "disks as object",
            json,
            with(&["disks"], json!({"/": 1})),
            400,
            "disks",
        ),
        (
            "empty mount",
            json,
            with(&["disks", "0", "mount"], json!("")),
            422,
            "disks[0].mount",
        ),
        (
            "zero cores",
            json,
            with(&["cpu_cores"], json!(0)),
            422,
            "cpu_cores",
        ),
        (
            "timestamp tomorrow",
            json,
            with(&["timestamp"], json!("2099-01-01T00:00:00Z")),
            422,
            "timestamp",
        ),
        (
            "timestamp prose",
            json,
            with(&["timestamp"], json!("yesterday")),
            422,
            "timestamp",
        ),
        (
            "timestamp last month",
            json,
            with(&["timestamp"], json!("2000-01-01T00:00:00Z")),
            422,
            "timestamp",
        ),
        (
            "path in machine id",
            json,
            with(&["machine_id"], json!("../../etc/passwd")),
            422,
            "machine_id",
        ),
        (
            "empty machine id",
            json,
            with(&["machine_id"], json!("")),
            422,
            "machine_id",
        ),
        (
            "long machine id",
            json,
            with(&["machine_id"], json!("m".repeat(200))),
            422,
            "machine_id",
        ),
        (
            "newline in hostname",
            json,
            with(&["hostname"], json!("web\n01")),
            422,
            "hostname",
        ),
        (
            "machine id a number",
            json,
            with(&["machine_id"], json!(7)),
            400,
            "machine_id",
        ),
        (
            "nested 11 levels",
            json,
            nested,
            400,
            "nested 11 levels deep",
        ),
        (
            "nested 5000 levels",
            json,
            very_deep,
            400,
            "levels deep; a report is at most 5",
        ),
        ("100 KiB body", json, huge, 413, "limit"),
    ];
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for (name, ct, body, want, needle) in &cases {
        let (status, v, _) = call(&env.state, post(Some(KEY_NEW), *ct, body.clone())).await;
        let msg = v["error"].as_str().unwrap_or_default().to_string();
        if status.as_u16() != *want || !msg.contains(needle) {
            failures.push(format!(
                "{name}: got {status} {v}, want {want} containing {needle:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let snap = env.store.machines().await.unwrap();
    assert!(
        snap.machines.is_empty(),
        "nothing stored: {:?}",
        snap.machines
    );
    assert_eq!(env.store.history_len("bad-1").await.unwrap(), [0, 0, 0]);
    assert!(
        env.store.key_usage().await.unwrap().is_empty(),
        "a refused report does not count as key use"
    );

    // The same report, well-formed, is accepted: the refusals were about the defects.
    assert_eq!(send(&env, KEY_NEW, &good).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_revoked_and_rotated_api_keys() {
    let env = env().await;
    let body = good_report(&env.store, "rot-1", 5.0).await;
    // Rotation: old and new are both valid while agents move over.
    assert_eq!(send(&env, KEY_OLD, &body).await.0, StatusCode::OK);
    assert_eq!(send(&env, KEY_NEW, &body).await.0, StatusCode::OK);
    let used: Vec<String> = env
        .store
        .key_usage()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(used, vec!["new".to_string(), "old".to_string()]);

    let unauthorized: Vec<(Option<&str>, &str)> = vec![
        (None, "authentication required"),
        (Some("fleet_not-a-key"), "unknown or revoked"),
        (Some("not-even-the-prefix"), "start with `fleet_`"),
        (Some(ADMIN_TOKEN), "start with `fleet_`"),
    ];
    for (key, needle) in &unauthorized {
        let (status, v, headers) = call(
            &env.state,
            post(*key, Some("application/json"), body.to_string()),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{key:?}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains(needle),
            "{key:?}: {v}"
        );
        assert!(headers.contains_key(header::WWW_AUTHENTICATE));
    }
    let (status, _, _) = call(
        &env.state,
        Request::post("/api/fleet/report")
            .header(header::AUTHORIZATION, format!("Basic {KEY_NEW}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Revocation: the config no longer lists `old` (node restarted with the new config).
    let revoked = env_with(&[("new", KEY_NEW)], Some(Arc::clone(&env._dir)), |_| {}).await;
    let (status, v) = send(&revoked, KEY_OLD, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(send(&revoked, KEY_NEW, &body).await.0, StatusCode::OK);
    let (_, keys, _) = call(&revoked.state, get("/api/fleet/keys")).await;
    let old = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "old")
        .cloned();
    assert_eq!(old.unwrap()["configured"], false, "{keys}");

    // Agent keys cannot read the fleet; admin tokens cannot report.
    let (status, _, _) = call(
        &env.state,
        Request::get("/api/fleet/machines")
            .header(header::AUTHORIZATION, format!("Bearer {KEY_NEW}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for path in [
        "/api/fleet/machines",
        "/api/fleet/summary",
        "/api/fleet/machines/rot-1",
        "/api/fleet/keys",
    ] {
        let (status, _, _) =
            call(&env.state, Request::get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_filters_sorts_pages_and_validates_its_query() {
    let env = env_with(&[("k", KEY_NEW)], None, |c| {
        c.storage.stale_after = Secs::from_secs(1);
        c.storage.offline_after = Secs::from_secs(2);
    })
    .await;
    let now = env.store.now().await.unwrap();
    for i in 0..5 {
        env.store
            .record(&report(&format!("old-{i}"), now, 90.0 + i as f64), "k")
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let now = env.store.now().await.unwrap();
    for i in 0..20 {
        env.store
            .record(&report(&format!("web-{i:02}"), now, i as f64), "k")
            .await
            .unwrap();
    }

    let (_, v, _) = call(&env.state, get("/api/fleet/machines?status=offline")).await;
    assert_eq!(v["total"], 5, "{v}");
    let (_, v, _) = call(
        &env.state,
        get("/api/fleet/machines?status=online&sort=-cpu&limit=3"),
    )
    .await;
    assert_eq!(v["total"], 20);
    let ids: Vec<&str> = v["machines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["machine_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["web-19", "web-18", "web-17"]);
    let (_, v, _) = call(
        &env.state,
        get("/api/fleet/machines?hostname=WEB-0&sort=hostname&limit=4&offset=8"),
    )
    .await;
    assert_eq!(v["total"], 10, "web-00..web-09: {v}");
    assert_eq!(v["machines"].as_array().unwrap().len(), 2);
    assert_eq!(v["machines"][0]["machine_id"], "web-08");

    // Cursor paging: pages of 7 by descending CPU (ties by id) give every machine once, in
    // order, and the last page has no next cursor.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            None => "/api/fleet/machines?sort=-cpu&limit=7".to_string(),
            Some(c) => format!("/api/fleet/machines?sort=-cpu&limit=7&cursor={c}"),
        };
        let (status, v, _) = call(&env.state, get(&path)).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        seen.extend(
            v["machines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["machine_id"].as_str().unwrap().to_string()),
        );
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut want: Vec<String> = (0..5).rev().map(|i| format!("old-{i}")).collect();
    want.extend((0..20).rev().map(|i| format!("web-{i:02}")));
    assert_eq!(seen, want);
    let c = cursor.expect("more than one page");
    let (status, v, _) = call(
        &env.state,
        get(&format!("/api/fleet/machines?sort=hostname&cursor={c}")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("made for sort=-cpu"),
        "{v}"
    );

    let (_, s, _) = call(&env.state, get("/api/fleet/summary")).await;
    assert_eq!(
        (
            s["total"].clone(),
            s["online"].clone(),
            s["offline"].clone()
        ),
        (json!(25), json!(20), json!(5))
    );
    assert_eq!(
        s["top"]["cpu"][0]["machine_id"], "web-19",
        "offline machines are not top consumers"
    );
    assert_eq!(s["averages"]["cpu_percent"], 9.5);

    for (query, needle) in [
        ("status=up", "`status`"),
        ("sort=speed", "`sort`"),
        ("limit=0", "`limit`"),
        ("limit=100000", "`limit`"),
        ("offset=-3", "`offset`"),
        ("cursor=bm90LWEtY3Vyc29y", "`cursor`"),
        ("cursor=%%%", "`cursor`"),
        ("colour=blue", "colour"),
    ] {
        let (status, v, _) = call(&env.state, get(&format!("/api/fleet/machines?{query}"))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains(needle),
            "{query}: {v}"
        );
    }
    for (query, needle) in [
        ("range=8d", "`range`"),
        ("from=yesterday", "`from`"),
        ("from=2&to=1", "after"),
    ] {
        let (status, v, _) = call(
            &env.state,
            get(&format!("/api/fleet/machines/web-01?{query}")),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains(needle),
            "{query}: {v}"
        );
    }

    // The leader job: marks the silent machines offline once, forgets them after forget_after.
    let mut storage = env.state.config().storage.clone();
    storage.forget_after = Secs::from_secs(2);
    let job = MachineJanitor::new(Arc::clone(&env.store), &storage);
    let summary = job.run().await.unwrap();
    assert!(
        summary.contains("5 machine(s) newly offline, 5 forgotten"),
        "{summary}"
    );
    let (_, s, _) = call(&env.state, get("/api/fleet/summary")).await;
    assert_eq!(s["total"], 20);
}

/// The dashboard's way in: a logged-in user's session cookie reads the fleet API too.
#[tokio::test(flavor = "multi_thread")]
async fn a_logged_in_user_reads_the_fleet() {
    const PASSWORD: &str = "fleet-api test password";
    let env = env_with(&[("k", KEY_NEW)], None, |c| {
        c.auth.users = vec![fleetctl::config::UserEntry {
            username: "ops".into(),
            password_hash: fleetctl::credentials::hash_password(PASSWORD).unwrap(),
        }];
    })
    .await;
    let body = good_report(&env.store, "web-07", 3.0).await;
    assert_eq!(send(&env, KEY_NEW, &body).await.0, StatusCode::OK);
    let mut login = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"username": "ops", "password": PASSWORD}).to_string(),
        ))
        .unwrap();
    let peer: std::net::SocketAddr = "192.0.2.7:40000".parse().unwrap();
    login
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    let (status, v, headers) = call(&env.state, login).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let cookie = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| !c.ends_with('='))
        .expect("session cookie");
    for path in [
        "/api/fleet/summary",
        "/api/fleet/machines",
        "/api/fleet/machines/web-07",
    ] {
        let (status, v, _) = call(
            &env.state,
            Request::get(path)
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{path}: {v}");
    }
    let (_, s, _) = call(
        &env.state,
        Request::get("/api/fleet/summary")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s["total"], 1);
}

/// A key file `name` in `dir` holding `lines`, mode 0600.
fn key_file(dir: &tempfile::TempDir, name: &str, lines: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.path().join(name);
    std::fs::write(&path, lines).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_sealed_with_a_key_the_node_lacks_is_skipped_and_404_never_5xx() {
    const KEY_A: &str = "ka:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";
    const KEY_B: &str = "kb:HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4=\n";
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let only_a = key_file(&dir, "a.keys", KEY_A);
    let only_b = key_file(&dir, "b.keys", KEY_B);
    let sealing = |keys: std::path::PathBuf| {
        move |c: &mut Config| {
            c.security.encryption_key_file = Some(keys);
            c.storage.encrypt_reports = true;
        }
    };
    let keys = [("new", KEY_NEW)];
    let under_a = env_with(&keys, Some(dir.clone()), sealing(only_a)).await;
    let body = good_report(&under_a.store, "web-01", 10.0).await;
    assert_eq!(send(&under_a, KEY_NEW, &body).await.0, StatusCode::OK);
    let raw = std::fs::read(dir.path().join("fleet.db")).unwrap();
    let wal = std::fs::read(dir.path().join("fleet.db-wal")).unwrap_or_default();
    let stored = String::from_utf8_lossy(&[raw, wal].concat()).into_owned();
    assert!(
        !stored.contains("web-01.example.com"),
        "hostname stored in the clear"
    );

    // The node restarted with a key file that lost key ka.
    let under_b = env_with(&keys, Some(dir.clone()), sealing(only_b)).await;
    let (status, list, _) = call(&under_b.state, get("/api/fleet/machines")).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["total"], 0, "{list}");
    assert!(
        list["problems"]
            .to_string()
            .contains("encrypted with key id ka"),
        "the listing names what it skipped: {list}"
    );
    let (status, v, _) = call(&under_b.state, get("/api/fleet/machines/web-01")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    // So does the summary.
    let (status, summary, _) = call(&under_b.state, get("/api/fleet/summary")).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    let problems = summary["problems"].to_string();
    assert!(
        problems.contains("machine web-01") && problems.contains("encrypted with key id ka"),
        "{summary}"
    );

    // Its next report is sealed with kb and the machine is back.
    let body = good_report(&under_b.store, "web-01", 11.0).await;
    assert_eq!(send(&under_b, KEY_NEW, &body).await.0, StatusCode::OK);
    let (_, list, _) = call(&under_b.state, get("/api/fleet/machines")).await;
    assert_eq!(list["total"], 1, "{list}");
    assert!(list.get("problems").is_none(), "{list}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_machine_record_is_skipped_in_listings_and_500_json_by_id() {
    let env = env().await;
    for id in ["web-01", "web-02"] {
        let body = good_report(&env.store, id, 10.0).await;
        assert_eq!(send(&env, KEY_NEW, &body).await.0, StatusCode::OK);
    }
    // Someone edits the database by hand.
    let db = env._dir.path().join("fleet.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE fleet_machines SET report = '{\"not\": \"a report\"' WHERE machine_id = 'web-02'",
            [],
        )
        .unwrap();

    let (status, list, _) = call(&env.state, get("/api/fleet/machines")).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["total"], 1, "{list}");
    assert!(
        list["problems"].to_string().contains("machine web-02"),
        "{list}"
    );
    let (status, summary, _) = call(&env.state, get("/api/fleet/summary")).await;
    assert_eq!(
        (status, summary["total"].as_u64()),
        (StatusCode::OK, Some(1))
    );

    // By id there is nothing to skip to: 500 with a JSON error that leaks no SQL or path.
    let (status, v, headers) = call(&env.state, get("/api/fleet/machines/web-02")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let message = v["error"].as_str().unwrap();
    assert!(message.contains("corrupt record"), "{message}");
    assert!(
        !message.contains("fleet.db") && !message.contains("not a report"),
        "{message}"
    );
    let (status, _, _) = call(&env.state, get("/api/fleet/machines/web-01")).await;
    assert_eq!(status, StatusCode::OK);

    // The machine's next report replaces the record.
    let body = good_report(&env.store, "web-02", 12.0).await;
    assert_eq!(send(&env, KEY_NEW, &body).await.0, StatusCode::OK);
    let (status, _, _) = call(&env.state, get("/api/fleet/machines/web-02")).await;
    assert_eq!(status, StatusCode::OK);
}
