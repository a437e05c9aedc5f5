//! The cluster endpoints for admins and scripts: status, node list, drain/undrain/remove.
//! All authenticated (an admin token, or a logged-in user's session cookie plus its CSRF token
//! for the state-changing ones); JSON shapes as DESIGN §4 (field names from the original
//! description, verbatim).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::Authenticated;
use super::error::ApiError;
use crate::cluster::{ClusterStatus, NodeState};

/// `GET /api/fleet/cluster/status`
pub async fn status(
    State(state): State<AppState>,
    _caller: Authenticated,
) -> Result<Json<ClusterStatus>, ApiError> {
    Ok(Json(state.cluster_status().await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodesQuery {
    /// Only nodes in this state (`active`, `draining`, `inactive`, `left`).
    status: Option<NodeState>,
}

/// `GET /api/fleet/cluster/nodes[?status=active]`
pub async fn nodes(
    State(state): State<AppState>,
    _caller: Authenticated,
    query: Result<Query<NodesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| {
        ApiError::bad_request(format!(
            "bad query string: {}; use ?status=active|draining|inactive|left",
            e.body_text()
        ))
    })?;
    let status = state.cluster_status().await?;
    let nodes: Vec<_> = status
        .nodes
        .into_iter()
        .filter(|n| q.status.is_none_or(|s| n.status == s))
        .collect();
    Ok(Json(json!({ "total": nodes.len(), "nodes": nodes })))
}

/// `POST /api/fleet/cluster/nodes/{id}/drain`
pub async fn drain(
    state: State<AppState>,
    caller: Authenticated,
    id: Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_draining(state, caller, id, true).await
}

/// `POST /api/fleet/cluster/nodes/{id}/undrain`
pub async fn undrain(
    state: State<AppState>,
    caller: Authenticated,
    id: Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_draining(state, caller, id, false).await
}

async fn set_draining(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
    draining: bool,
) -> Result<Json<Value>, ApiError> {
    if !state.node().backend().set_draining(&id, draining).await? {
        return Err(ApiError::not_found(format!(
            "no node `{id}` in the registry"
        )));
    }
    tracing::info!(node_id = %id, by = %caller.name(), draining, "drain flag changed");
    Ok(Json(json!({ "node_id": id, "draining": draining })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveQuery {
    #[serde(default)]
    force: bool,
}

/// `DELETE /api/fleet/cluster/nodes/{id}[?force=true]`: refuses an active node without force.
pub async fn remove(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(id): Path<String>,
    query: Result<Query<RemoveQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Query(q) =
        query.map_err(|e| ApiError::bad_request(format!("bad query string: {}", e.body_text())))?;
    let status = state.cluster_status().await?;
    let Some(node) = status.nodes.iter().find(|n| n.node_id == id) else {
        return Err(ApiError::not_found(format!(
            "no node `{id}` in the registry"
        )));
    };
    if matches!(node.status, NodeState::Active | NodeState::Draining) && !q.force {
        return Err(ApiError::conflict(format!(
            "node `{id}` is {}: it would register again at its next heartbeat; stop it first or pass force=true",
            node.status
        )));
    }
    state.node().backend().remove(&id).await?;
    tracing::info!(node_id = %id, by = %caller.name(), "node removed from the registry");
    Ok((
        StatusCode::OK,
        Json(json!({ "node_id": id, "removed": true })),
    ))
}
