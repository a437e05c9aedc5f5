//! The bare reference server of `scripts/bench`: what axum and the same Redis client do with
//! no auth, no hardening layers, no metrics and no validation, so fleetctl's numbers can be
//! read as a fraction of what the stack allows on the same machine in the same run.
//!
//! - `GET /api/session`: one Redis `GET` of the key named by the `fleet_session` cookie, 401
//!   when absent, the value as JSON otherwise (what a session read must at least do).
//! - `POST /api/fleet/report`: reads the body, takes `machine_id` from the JSON, and writes
//!   the same body with one pipelined `HSET` + `EXPIRE` (what recording a report must at least
//!   do).
//! - `GET /api/fleet/summary`: one `HGETALL` of a counters hash (what a summary kept up to
//!   date by the store costs per request).
//!
//!   cargo run --release --example bench-reference -- 127.0.0.1:PORT redis://127.0.0.1:RPORT/3
//!
//! Keys live under `{ref}:` in the database named by the URL, apart from fleetctl's.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use redis::aio::ConnectionManager;

#[derive(serde::Deserialize)]
struct MachineId<'a> {
    #[serde(borrow)]
    machine_id: &'a str,
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

async fn session(State(mut redis): State<ConnectionManager>, headers: HeaderMap) -> Response {
    let Some(id) = cookie(&headers, "fleet_session") else {
        return json(StatusCode::UNAUTHORIZED, r#"{"error":"no session"}"#.into());
    };
    let value: Option<String> = match redis::cmd("GET")
        .arg(format!("{{ref}}:s:{id}"))
        .query_async(&mut redis)
        .await
    {
        Ok(v) => v,
        Err(e) => {
            return json(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{{\"error\":{:?}}}", e.to_string()),
            );
        }
    };
    match value {
        Some(v) => json(StatusCode::OK, v),
        None => json(StatusCode::UNAUTHORIZED, r#"{"error":"no session"}"#.into()),
    }
}

async fn report(State(mut redis): State<ConnectionManager>, body: Bytes) -> Response {
    let Ok(m) = serde_json::from_slice::<MachineId>(&body) else {
        return json(StatusCode::BAD_REQUEST, r#"{"error":"bad report"}"#.into());
    };
    let key = format!("{{ref}}:m:{}", m.machine_id);
    let result: redis::RedisResult<()> = redis::pipe()
        .cmd("HSET")
        .arg(&key)
        .arg("report")
        .arg(&body[..])
        .ignore()
        .cmd("EXPIRE")
        .arg(&key)
        .arg(86_400)
        .ignore()
        .query_async(&mut redis)
        .await;
    match result {
        Ok(()) => json(
            StatusCode::OK,
            format!("{{\"status\":\"ok\",\"machine_id\":{:?}}}", m.machine_id),
        ),
        Err(e) => json(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{{\"error\":{:?}}}", e.to_string()),
        ),
    }
}

async fn summary(State(mut redis): State<ConnectionManager>) -> Response {
    let counters: redis::RedisResult<Vec<(String, String)>> = redis::cmd("HGETALL")
        .arg("{ref}:summary")
        .query_async(&mut redis)
        .await;
    match counters {
        Ok(c) => {
            let fields: Vec<String> = c.iter().map(|(k, v)| format!("{k:?}:{v:?}")).collect();
            json(StatusCode::OK, format!("{{{}}}", fields.join(",")))
        }
        Err(e) => json(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{{\"error\":{:?}}}", e.to_string()),
        ),
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(url)) = (args.next(), args.next()) else {
        eprintln!("usage: bench-reference LISTEN_ADDR REDIS_URL");
        std::process::exit(2);
    };
    let client = redis::Client::open(url.as_str()).expect("a redis:// URL");
    let redis = ConnectionManager::new(client)
        .await
        .expect("Redis is reachable");
    let app = Router::new()
        .route("/api/session", get(session))
        .route("/api/fleet/report", post(report))
        .route("/api/fleet/summary", get(summary))
        .route("/health", get(|| async { "ok" }))
        .with_state(redis);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .expect("listen address free");
    axum::serve(listener, app).await.expect("serve");
}
