//! `AdminClient`: the HTTP side of admin commands (`--server URL --token T`), talking to a
//! node's JSON API instead of the backend; and [`ClientTls`], the `--ca-file` every HTTP
//! client of fleetctl (admin commands, `lb gen-*`, the agent) takes for nodes that serve TLS
//! with a private CA.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::cluster::ClusterStatus;

/// Which CAs an HTTPS client trusts: the system's roots, or with `--ca-file` only the
/// certificates in that PEM file (like `curl --cacert`).
#[derive(Clone, Default)]
pub struct ClientTls {
    roots: Vec<reqwest::Certificate>,
    source: Option<PathBuf>,
}

impl ClientTls {
    /// Read `--ca-file`; `None` keeps the system roots. A file without a PEM certificate is
    /// a usage error naming it.
    pub fn from_ca_file(path: Option<&Path>) -> anyhow::Result<ClientTls> {
        let Some(path) = path else {
            return Ok(ClientTls::default());
        };
        let pem = std::fs::read(path).map_err(|e| {
            anyhow!(crate::exit::UsageError(format!(
                "--ca-file {}: cannot read it: {e}",
                path.display()
            )))
        })?;
        let roots = reqwest::Certificate::from_pem_bundle(&pem)
            .ok()
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                anyhow!(crate::exit::UsageError(format!(
                    "--ca-file {}: no PEM certificate in it (expected `-----BEGIN CERTIFICATE-----`)",
                    path.display()
                )))
            })?;
        Ok(ClientTls {
            roots,
            source: Some(path.to_path_buf()),
        })
    }

    /// The CA file in use, for messages.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// `builder`, trusting only the CA file's certificates when one was given.
    pub fn apply(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        if self.roots.is_empty() {
            builder
        } else {
            builder.tls_certs_only(self.roots.clone())
        }
    }
}

pub struct AdminClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl AdminClient {
    pub fn new(base: &str, token: Option<String>, tls: &ClientTls) -> anyhow::Result<AdminClient> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(anyhow!(crate::exit::UsageError(format!(
                "--server `{base}` is not an http:// or https:// URL"
            ))));
        }
        let http = tls
            .apply(reqwest::Client::builder())
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
        let res = req.send().await.map_err(|e| {
            let hint = if url.starts_with("https://") {
                " (a node with a private CA needs --ca-file FILE)"
            } else {
                ""
            };
            anyhow::Error::new(e).context(format!("cannot reach {url}{hint}"))
        })?;
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
