//! `POST /api/fleet/report`: where agents send their metrics.
//!
//! Order of checks: the API key first (a caller without one learns nothing about the body
//! format), then the body (content type, size, JSON, types, values — see `fleet::report`),
//! then the store. A refused report stores nothing; every refusal is a 4xx with
//! `{"error": …}` naming the field or the problem, and is counted in `/metrics` by reason.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::AppState;
use super::error::ApiError;
use super::hardening::{BodyError, read_body};
use super::metrics::Rejection;
use crate::credentials::API_KEY_PREFIX;
use crate::fleet::report::{REPORT_BODY_LIMIT, body_too_large, rfc3339};
use crate::fleet::{Report, ReportError, StoreError};

/// The name of the configured API key the request carries.
pub fn agent_key(state: &AppState, parts: &Parts) -> Result<String, ApiError> {
    let token = super::auth::bearer_token(parts)?.ok_or_else(|| {
        ApiError::unauthorized(
            "authentication required: send `Authorization: Bearer <agent API key>` \
             (mint one with `fleetctl keys new --name NAME`)",
        )
    })?;
    match crate::credentials::find_key(&state.config().auth.api_keys, token) {
        Some(entry) => Ok(entry.name.clone()),
        None if !token.starts_with(API_KEY_PREFIX) => Err(ApiError::unauthorized(format!(
            "invalid API key: agent keys start with `{API_KEY_PREFIX}`"
        ))),
        None => Err(ApiError::unauthorized(
            "invalid API key: unknown or revoked (the server's config lists the SHA-256 of every valid key)",
        )),
    }
}

pub async fn report(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let headers = &parts.headers;
    let metrics = state.metrics();
    let key = agent_key(&state, &parts).inspect_err(|_| {
        metrics.report_rejected(Rejection::Unauthorized);
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("(not visible ASCII)"));
    let refuse = |e: ReportError| {
        let (status, why) = match e {
            ReportError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Rejection::UnsupportedMediaType,
            ),
            ReportError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, Rejection::TooLarge),
            ReportError::Malformed(_) => (StatusCode::BAD_REQUEST, Rejection::Malformed),
            ReportError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, Rejection::Invalid),
        };
        metrics.report_rejected(why);
        ApiError::new(status, e.to_string())
    };
    // A declared oversize body is refused before a byte of it is read; "too large" is told
    // from other read errors by the error's type (`hardening::read_body`).
    let bytes = read_body(headers, body, REPORT_BODY_LIMIT)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge { .. } => refuse(body_too_large()),
            BodyError::Read(why) => {
                metrics.report_rejected(Rejection::Malformed);
                ApiError::bad_request(format!("could not read the request body: {why}"))
            }
        })?;
    let store = state.fleet();
    let report = Report::parse_body(content_type, &bytes).map_err(refuse)?;
    // The timestamp's range is judged by the store's clock, the one every node shares, in
    // the same round trip that records the report.
    let recorded = match store.record(&report, &key).await {
        Ok(at) => at,
        Err(StoreError::OutOfRange { now }) => {
            return Err(refuse(report.check_time(now).err().unwrap_or_else(|| {
                ReportError::Invalid("`timestamp`: out of range at the store's clock".into())
            })));
        }
        Err(e) => {
            metrics.report_rejected(Rejection::StoreUnavailable);
            return Err(ApiError::from(e));
        }
    };
    metrics.report_accepted();
    Ok((
        StatusCode::OK,
        Json(Recorded {
            status: "ok",
            machine_id: &report.machine_id,
            recorded_at: rfc3339(recorded),
        }),
    )
        .into_response())
}

/// The answer to an accepted report (serialized from borrowed fields, no `Value` tree).
#[derive(Serialize)]
struct Recorded<'a> {
    status: &'static str,
    machine_id: &'a str,
    recorded_at: String,
}
