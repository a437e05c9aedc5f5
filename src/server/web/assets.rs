//! The stylesheet, script and icon the pages load, compiled into the binary
//! (`include_str!`/`include_bytes!`): a node needs no files beside it and loads nothing from
//! the internet.
//!
//! Pages link them as `/assets/NAME?v=VERSION`, where VERSION is a digest of every embedded
//! asset. A request with the current VERSION is cached for a year (`immutable`): the URL
//! changes whenever an asset does. Any other request (no or an old VERSION, e.g. from a page
//! an older node rendered during a rolling upgrade) must revalidate, so a browser never keeps
//! one node's asset under another build's URL for long. Every answer carries an ETag.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::{Path, Query};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::super::AppState;
use super::super::error::ApiError;

/// One embedded file.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

pub const ASSETS: [Asset; 3] = [
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_str!("static/app.css").as_bytes(),
    },
    Asset {
        name: "dashboard.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_str!("static/dashboard.js").as_bytes(),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("static/favicon.svg"),
    },
];

/// A digest of every asset: changes whenever one of them does.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut all = Vec::new();
    for a in &ASSETS {
        all.extend_from_slice(a.name.as_bytes());
        all.push(0);
        all.extend_from_slice(a.bytes);
    }
    crate::credentials::sha256_hex(&String::from_utf8_lossy(&all))[..12].to_string()
});

pub fn version() -> &'static str {
    &VERSION
}

/// The URL pages use for an asset.
pub fn url(name: &str) -> String {
    format!("/assets/{name}?v={}", version())
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/assets/{name}", get(asset))
        // Browsers ask for it on their own, whatever the page's `<link rel=icon>` says; a 404
        // would show up as a console error.
        .route(
            "/favicon.ico",
            get(|headers: HeaderMap| async move { serve("favicon.svg", None, &headers) }),
        )
}

#[derive(Deserialize)]
struct AssetQuery {
    v: Option<String>,
}

async fn asset(
    Path(name): Path<String>,
    query: Result<Query<AssetQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let v = query.ok().and_then(|Query(q)| q.v);
    serve(&name, v.as_deref(), &headers)
}

fn serve(name: &str, v: Option<&str>, headers: &HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return ApiError::not_found(format!("no asset `{name}`")).into_response();
    };
    let etag = format!("\"{}\"", version());
    let cache = if v == Some(version()) {
        "public, max-age=31536000, immutable"
    } else {
        "public, no-cache"
    };
    let fresh = headers
        .get(IF_NONE_MATCH)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(CONTENT_TYPE, HeaderValue::from_static(asset.content_type))],
            asset.bytes,
        )
            .into_response()
    };
    let h = res.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(ETAG, v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_self_contained() {
        for a in &ASSETS {
            let text = String::from_utf8_lossy(a.bytes);
            // The SVG namespace is a name, not a download.
            let text = text.replace("http://www.w3.org/2000/svg", "");
            assert!(
                !text.contains("http://") && !text.contains("https://") && !text.contains("//cdn"),
                "{} refers to another origin",
                a.name
            );
        }
        assert_eq!(version().len(), 12);
        assert!(url("app.css").starts_with("/assets/app.css?v="));
    }
}
