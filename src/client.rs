//! `AdminClient`: the HTTP side of admin commands (`--server URL --token T`), talking to a
//! node's JSON API instead of the backend.

use std::time::Duration;

use anyhow::{Context, anyhow};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::cluster::ClusterStatus;

pub struct AdminClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl AdminClient {
    pub fn new(base: &str, token: Option<String>) -> anyhow::Result<AdminClient> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(anyhow!(crate::exit::UsageError(format!(
                "--server `{base}` is not an http:// or https:// URL"
            ))));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(AdminClient { base, token, http })
    }

    async fn call<T: DeserializeOwned>(&self, method: Method, path: &str) -> anyhow::Result<T> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let res = req
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = res.status();
        let body = res
            .text()
            .await
            .with_context(|| format!("reading the answer from {url}"))?;
        if !status.is_success() {
            let detail = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                .unwrap_or_else(|| body.chars().take(200).collect());
            let hint = match status {
                StatusCode::UNAUTHORIZED => {
                    " (pass a valid admin token with --token or FLEETCTL_TOKEN)"
                }
                _ => "",
            };
            return Err(anyhow!("{method} {url} answered {status}: {detail}{hint}"));
        }
        serde_json::from_str(&body)
            .with_context(|| format!("{url} did not answer with the expected JSON"))
    }

    pub async fn status(&self) -> anyhow::Result<ClusterStatus> {
        self.call(Method::GET, "/api/fleet/cluster/status").await
    }

    pub async fn set_draining(&self, node_id: &str, draining: bool) -> anyhow::Result<()> {
        let action = if draining { "drain" } else { "undrain" };
        let _: serde_json::Value = self
            .call(
                Method::POST,
                &format!("/api/fleet/cluster/nodes/{}/{action}", encode(node_id)),
            )
            .await?;
        Ok(())
    }

    pub async fn remove(&self, node_id: &str, force: bool) -> anyhow::Result<()> {
        let _: serde_json::Value = self
            .call(
                Method::DELETE,
                &format!("/api/fleet/cluster/nodes/{}?force={force}", encode(node_id)),
            )
            .await?;
        Ok(())
    }
}

/// Percent-encode a path segment (node ids are validated, but be safe with user input).
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
