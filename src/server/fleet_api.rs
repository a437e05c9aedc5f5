//! The fleet JSON API: `GET /api/fleet/machines`, `/api/fleet/machines/{id}` (with history),
//! `/api/fleet/summary` and `/api/fleet/keys`.
//!
//! Every answer is computed from the shared store at request time, so any node answers the
//! same. Who may read is decided in one place, `FleetReader`.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::{AuthRejection, Authenticated};
use super::error::ApiError;
use crate::config::Secs;
use crate::fleet::report::rfc3339;
use crate::fleet::view::{self, ListParams, ListQuery, MachineView};
use crate::fleet::{HISTORY_SPAN_MS, Millis, TIERS, Tier};

/// Proof that the caller may read fleet data: an admin API token or a logged-in dashboard
/// user (session cookie), as `auth::Authenticated` decides. Every fleet route takes this one
/// extractor, so who may read the fleet is changed here and nowhere else.
#[derive(Debug, Clone)]
pub struct FleetReader {
    /// Who is reading, for audit logs (`token:<name>` or `user:<name>`).
    pub who: String,
}

impl FromRequestParts<AppState> for FleetReader {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, AuthRejection> {
        let who = Authenticated::from_request_parts(parts, state).await?;
        Ok(FleetReader { who: who.name() })
    }
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::bad_request(format!("bad query string: {}", e.body_text())))
}

/// `GET /api/fleet/machines?status=online,stale&hostname=web&sort=-cpu&limit=50&cursor=…`:
/// filtered and ordered on the node's index of the fleet; only the page's records are read.
pub async fn machines(
    _who: FleetReader,
    State(state): State<AppState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<view::MachinePage>, ApiError> {
    let q = ListQuery::from_params(query(params)?).map_err(ApiError::bad_request)?;
    let page = state
        .fleet_index()
        .page(&q, &state.fleet_thresholds())
        .await
        .map_err(ApiError::from)?;
    Ok(Json(page))
}

/// `GET /api/fleet/summary`
pub async fn summary(
    _who: FleetReader,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let (summary, problems) = state
        .fleet_index()
        .summary(&state.fleet_thresholds())
        .await
        .map_err(ApiError::from)?;
    let mut v = serde_json::to_value(summary).map_err(|e| ApiError::unavailable(e.to_string()))?;
    if !problems.is_empty() {
        v["problems"] = json!(problems);
    }
    Ok(Json(v))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    /// RFC 3339 or ms since the epoch; default `to - range`.
    pub from: Option<String>,
    /// RFC 3339 or ms since the epoch; default now.
    pub to: Option<String>,
    /// How far back from `to` (`1h`, `30m`, `7d`); default 1h. Ignored when `from` is given.
    pub range: Option<String>,
}

fn instant(name: &str, v: &str) -> Result<Millis, ApiError> {
    if let Ok(ms) = v.parse::<Millis>() {
        return Ok(ms);
    }
    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as Millis)
        .map_err(|_| {
            ApiError::bad_request(format!(
                "`{name}`: `{v}` is neither RFC 3339 (2026-01-01T00:00:00Z) nor milliseconds since the epoch"
            ))
        })
}

/// `GET /api/fleet/machines/{id}?range=24h` or `?from=…&to=…`: the machine and its history
/// at the finest resolution that still covers `from`.
pub async fn machine(
    _who: FleetReader,
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let p = query(params)?;
    let store = state.fleet();
    let rec = store
        .machine(&id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::not_found(format!("no machine `{id}` in the fleet")))?;
    let now = store.now().await.map_err(ApiError::from)?;
    let to = match &p.to {
        Some(v) => instant("to", v)?,
        None => now,
    };
    let from = match (&p.from, &p.range) {
        (Some(v), _) => instant("from", v)?,
        (None, Some(r)) => {
            let d = Secs::parse(r).map_err(|e| ApiError::bad_request(format!("`range`: {e}")))?;
            let ms = d.as_duration().as_millis() as Millis;
            if ms > HISTORY_SPAN_MS {
                return Err(ApiError::bad_request(format!(
                    "`range`: {r} is longer than the {}-day history",
                    HISTORY_SPAN_MS / 86_400_000
                )));
            }
            to - ms
        }
        (None, None) => to - 3_600_000,
    };
    if from > to {
        return Err(ApiError::bad_request("`from` is after `to`"));
    }
    let tier = Tier::for_range(from, now);
    let points = store
        .history(&id, tier, from, to)
        .await
        .map_err(ApiError::from)?;
    let lens = store.history_len(&id).await.map_err(ApiError::from)?;
    let kept: serde_json::Map<String, Value> = TIERS
        .iter()
        .zip(lens)
        .map(|(t, n)| (t.name.to_string(), json!(n)))
        .collect();
    Ok(Json(json!({
        "machine": MachineView::new(&rec, now, &state.fleet_thresholds()),
        "history": {
            "resolution": tier.name,
            "from": rfc3339(from),
            "to": rfc3339(to),
            "points": points,
        },
        "history_kept": kept,
    })))
}

/// `GET /api/fleet/keys`: every configured API key with its last use, plus keys that were
/// used but are no longer configured (revoked).
pub async fn keys(
    _who: FleetReader,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let usage = state.fleet().key_usage().await.map_err(ApiError::from)?;
    let configured = &state.config().auth.api_keys;
    let mut out: Vec<Value> = configured
        .iter()
        .map(|k| {
            let used = usage.iter().find(|u| u.name == k.name);
            json!({
                "name": k.name,
                "configured": true,
                "last_used": used.map(|u| rfc3339(u.last_used)),
            })
        })
        .collect();
    for u in usage
        .iter()
        .filter(|u| !configured.iter().any(|k| k.name == u.name))
    {
        out.push(json!({"name": u.name, "configured": false, "last_used": rfc3339(u.last_used)}));
    }
    Ok(Json(json!({ "keys": out })))
}
