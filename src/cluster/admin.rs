//! `Registry`: what admin commands (`cluster status`, `nodes …`) act on — the backend named
//! in the config, read directly, or a node's JSON API with `--server URL --token T`. Both
//! give the same answers, so the CLI renders them the same way.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};

use super::backend::{self, ClusterBackend};
use super::{ClusterStatus, NodeState};
use crate::client::AdminClient;
use crate::config::Config;
use crate::exit::UsageError;

pub enum Registry {
    Direct {
        backend: Arc<dyn ClusterBackend>,
        node_timeout: Duration,
        cluster_enabled: bool,
    },
    Remote(AdminClient),
}

impl Registry {
    /// `server` given: talk HTTP to it. Otherwise open the backend named in `config`.
    pub async fn connect(
        config: &Config,
        server: Option<&str>,
        token: Option<String>,
        tls: &crate::client::ClientTls,
    ) -> anyhow::Result<Registry> {
        if let Some(url) = server {
            return Ok(Registry::Remote(AdminClient::new(url, token, tls)?));
        }
        let backend = backend::open(&config.cluster).await.with_context(|| {
            format!(
                "cannot open the {} cluster backend named in the config (or ask a node with --server URL)",
                config.cluster.backend
            )
        })?;
        Ok(Registry::Direct {
            backend,
            node_timeout: config.cluster.node_timeout.as_duration(),
            cluster_enabled: config.cluster.enabled,
        })
    }

    pub async fn status(&self) -> anyhow::Result<ClusterStatus> {
        match self {
            Registry::Direct {
                backend,
                node_timeout,
                cluster_enabled,
            } => {
                let mut s = ClusterStatus::read(backend.as_ref(), None, *node_timeout).await?;
                s.enabled = *cluster_enabled;
                Ok(s)
            }
            Registry::Remote(client) => client.status().await,
        }
    }

    pub async fn set_draining(&self, node_id: &str, draining: bool) -> anyhow::Result<()> {
        match self {
            Registry::Direct { backend, .. } => {
                if !backend.set_draining(node_id, draining).await? {
                    return Err(anyhow!(UsageError(unknown_node(node_id))));
                }
                Ok(())
            }
            Registry::Remote(client) => client.set_draining(node_id, draining).await,
        }
    }

    /// Forget a node. An active or draining node would re-register at its next heartbeat, so
    /// that needs `force`.
    pub async fn remove(&self, node_id: &str, force: bool) -> anyhow::Result<()> {
        match self {
            Registry::Direct { backend, .. } => {
                let status = self.status().await?;
                let Some(node) = status.nodes.iter().find(|n| n.node_id == node_id) else {
                    return Err(anyhow!(UsageError(unknown_node(node_id))));
                };
                if matches!(node.status, NodeState::Active | NodeState::Draining) && !force {
                    return Err(anyhow!(UsageError(format!(
                        "node `{node_id}` is {}: removing it would only last until its next heartbeat; \
                         stop the node first, or pass --force",
                        node.status
                    ))));
                }
                backend.remove(node_id).await?;
                Ok(())
            }
            Registry::Remote(client) => client.remove(node_id, force).await,
        }
    }
}

fn unknown_node(node_id: &str) -> String {
    format!("no node `{node_id}` in the registry; `fleetctl nodes list` shows the ids")
}
