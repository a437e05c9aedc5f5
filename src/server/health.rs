//! `GET /api/fleet/cluster/health`: the load balancer's check. No auth, no backend call on the
//! request path — it answers from the state the heartbeat loop keeps, so a slow Redis cannot
//! make health checks time out.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::cluster::Health;

/// The health check answers anyone: keep what went wrong ("cluster backend unavailable for
/// 12s"), drop the backend's own error after the first `: `, which names where it lives (a
/// database path, a Redis address). The heartbeat loop logs it in full.
fn public(reason: &str) -> String {
    match reason.split_once(": ") {
        Some((what, _)) => format!("{what}; the node's log has the details"),
        None => reason.to_string(),
    }
}

pub async fn health(State(state): State<AppState>) -> Response {
    let node_id = state.node().node_id().to_string();
    match state.health() {
        Health::Healthy => (
            StatusCode::OK,
            Json(json!({ "status": "healthy", "node_id": node_id })),
        )
            .into_response(),
        Health::Draining { reason } => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining", "node_id": node_id, "reason": reason })),
        )
            .into_response(),
        Health::Unhealthy { reason } => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unhealthy", "node_id": node_id, "reason": public(&reason) })),
        )
            .into_response(),
    }
}
