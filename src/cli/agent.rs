//! `fleetctl agent`: collect this host's metrics and report them to the fleet.

use clap::Args;

use super::Globals;
use crate::exit::{ExitCode, not_implemented};

#[derive(Debug, Args)]
pub struct Agent {
    /// Fleet server or load balancer URL
    #[arg(
        long,
        value_name = "URL",
        env = "FLEET_SERVER",
        required_unless_present = "once"
    )]
    pub server: Option<String>,
    /// File holding the agent API key
    #[arg(long, value_name = "FILE", env = "FLEET_API_KEY_FILE")]
    pub api_key_file: Option<std::path::PathBuf>,
    /// Seconds between reports (or a duration such as 30s, 1m)
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub interval: String,
    /// Collect one report, print it and exit without sending
    #[arg(long)]
    pub once: bool,
}

impl Agent {
    pub async fn run(self, _g: &Globals) -> anyhow::Result<ExitCode> {
        Err(not_implemented("agent"))
    }
}
