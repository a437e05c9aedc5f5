//! `fleetctl lb gen-haproxy|gen-nginx`: load-balancer configs from the node registry.

use clap::{Args, Subcommand};

use super::Globals;
use crate::exit::{ExitCode, not_implemented};

#[derive(Debug, Subcommand)]
pub enum LbCommand {
    /// Generate an HAProxy config that health-checks /api/fleet/cluster/health
    GenHaproxy(Generate),
    /// Generate an nginx (OSS) config with passive health checks
    GenNginx(Generate),
}

#[derive(Debug, Args)]
pub struct Generate {
    /// A backend node as host:port; repeat for each node (default: the live registry)
    #[arg(long = "node", value_name = "HOST:PORT")]
    pub nodes: Vec<String>,
    /// Address the load balancer listens on
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:80")]
    pub bind: String,
    /// Write to this file (atomically) instead of stdout
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
    /// Only the backend/upstream section, for inclusion in an existing config
    #[arg(long)]
    pub fragment: bool,
    /// Run the real validator (haproxy -c / nginx -t) on the result
    #[arg(long)]
    pub check: bool,
}

impl LbCommand {
    pub async fn run(self, _g: &Globals) -> anyhow::Result<ExitCode> {
        let name = match self {
            LbCommand::GenHaproxy(_) => "lb gen-haproxy",
            LbCommand::GenNginx(_) => "lb gen-nginx",
        };
        Err(not_implemented(name))
    }
}
