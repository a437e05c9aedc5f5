//! `fleetctl cluster status`: the cluster overview, with exit codes for scripts.

use clap::{Args, Subcommand};

use super::Globals;
use crate::exit::{ExitCode, not_implemented};

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Show every node, its state, the leader and the backend's health
    ///
    /// Exit code 0 when healthy, 3 when degraded (fewer active nodes than --min-active, or no
    /// leader), 4 when no node is active, 1 when the backend or server cannot be reached.
    Status(Status),
}

/// Where admin commands read cluster state: the backend from the config, or a node over HTTP.
#[derive(Debug, Clone, Args)]
pub struct Remote {
    /// Ask this node over HTTP instead of reading the backend named in the config
    #[arg(long, value_name = "URL", env = "FLEETCTL_SERVER")]
    pub server: Option<String>,

    /// Admin API token for --server
    #[arg(
        long,
        value_name = "TOKEN",
        env = "FLEETCTL_TOKEN",
        requires = "server",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

#[derive(Debug, Args)]
pub struct Status {
    #[command(flatten)]
    pub remote: Remote,

    /// Exit 3 when fewer than N nodes are active
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub min_active: usize,

    /// Redraw the status every few seconds until interrupted
    #[arg(long)]
    pub watch: bool,

    /// Seconds between redraws with --watch
    #[arg(long, value_name = "SECS", default_value_t = 2, requires = "watch")]
    pub interval: u64,
}

impl ClusterCommand {
    pub async fn run(self, _g: &Globals) -> anyhow::Result<ExitCode> {
        match self {
            ClusterCommand::Status(_) => Err(not_implemented("cluster status")),
        }
    }
}
