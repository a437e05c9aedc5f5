//! `ApiError`: every failure a handler returns becomes a status code plus `{"error": …}`.
//!
//! The client's mistakes are 4xx with a message naming what was wrong; our own failures
//! (backend down) are 503 with a reason, so a load balancer or script can act on them.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
}

/// Backend failures by kind: an outage is 503 (retry later), a node id that cannot name a
/// node is the caller's mistake (400), and a record the backend cannot read is our problem:
/// 500, with the details in the log rather than in the answer.
impl From<crate::cluster::BackendError> for ApiError {
    fn from(e: crate::cluster::BackendError) -> ApiError {
        use crate::cluster::BackendError;
        match &e {
            BackendError::Unavailable { backend, .. } => {
                tracing::warn!(error = %e, "cluster backend unavailable");
                ApiError::unavailable(format!(
                    "the {backend} cluster backend is unavailable; retry in a moment"
                ))
            }
            BackendError::InvalidNodeId { .. } => ApiError::bad_request(e.to_string()),
            BackendError::Corrupt { backend, .. } => {
                tracing::error!(error = %e, "corrupt record in the cluster backend");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!(
                        "the {backend} backend holds a corrupt record for this node; the node's log names it, and `fleetctl nodes remove --force` clears it"
                    ),
                )
            }
        }
    }
}

/// A fleet store outage: 503 naming the backend, not where it lives (that goes to the log).
/// A corrupt record is 500: retrying will not help, and the log names the record.
impl From<crate::fleet::StoreError> for ApiError {
    fn from(e: crate::fleet::StoreError) -> ApiError {
        use crate::fleet::StoreError;
        match &e {
            StoreError::Unavailable { backend, .. } => {
                tracing::warn!(error = %e, "fleet store unavailable");
                ApiError::unavailable(format!(
                    "the {backend} fleet store is unavailable; retry in a moment"
                ))
            }
            StoreError::Config(_) => {
                tracing::warn!(error = %e, "fleet store unusable");
                ApiError::unavailable("the fleet store cannot be used; the node's log says why")
            }
            StoreError::OutOfRange { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "`timestamp`: out of the range the server records; fix the machine's clock",
            ),
            StoreError::Corrupt { backend, .. } => {
                tracing::error!(error = %e, "corrupt record in the fleet store");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!(
                        "the {backend} fleet store holds a corrupt record for this request; the node's log names it"
                    ),
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"fleetctl\""),
            );
        }
        res
    }
}
