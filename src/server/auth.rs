//! Who is calling: admin API tokens (`Authorization: Bearer …`) for the JSON API.
//!
//! Tokens are compared by SHA-256 digest in constant time against every configured entry, so
//! neither the config nor timing reveals a usable token.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;

/// Proof that the request carries a valid admin token. Handlers that take it are admin-only.
#[derive(Debug, Clone)]
pub struct Admin {
    /// The token entry's name, for audit logs.
    pub name: String,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, ApiError> {
        let token = bearer_token(parts)?.ok_or_else(|| {
            ApiError::unauthorized(
                "authentication required: send `Authorization: Bearer <admin token>` \
                 (create one with `fleetctl keys new --kind admin`)",
            )
        })?;
        match crate::credentials::find_key(&state.config().auth.admin_tokens, token) {
            Some(entry) => Ok(Admin {
                name: entry.name.clone(),
            }),
            None => Err(ApiError::unauthorized("invalid admin token")),
        }
    }
}

/// The token from `Authorization: Bearer <token>`: `Ok(None)` when the header is absent, an
/// error naming the problem when it is present but malformed.
pub fn bearer_token(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let Some(value) = parts.headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header: not visible ASCII"))?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(|| {
        ApiError::unauthorized("malformed Authorization header: expected `Bearer <token>`")
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::unauthorized(format!(
            "unsupported Authorization scheme `{scheme}`: expected `Bearer <token>`"
        )));
    }
    let token = token.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(ApiError::unauthorized(
            "malformed Authorization header: the bearer token is empty or contains spaces",
        ));
    }
    Ok(Some(token))
}
