//! `fleetctl cluster status`: the cluster overview, with exit codes for scripts.

use clap::{Args, Subcommand};

use std::io::Write;
use std::time::Duration;

use super::{Globals, OutputFormat};
use crate::cluster::ClusterStatus;
use crate::cluster::admin::Registry;
use crate::cluster::nagios::{self, PluginState, Range};
use crate::exit::ExitCode;
use crate::output;

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Show every node, its state, the leader and the backend's health
    ///
    /// Exit code 0 when healthy, 3 when degraded (fewer active nodes than --min-active, or no
    /// leader), 4 when no node is active, 1 when the backend or server cannot be reached.
    ///
    /// With --format nagios it is a monitoring plugin (Nagios, Icinga, Sensu): one line
    /// `FLEET OK - 3/3 nodes active, leader node-1 | active=3;2:;1:;0;3 …`, node details below
    /// it, and exit 0 OK, 1 WARNING, 2 CRITICAL (also when the registry cannot be read),
    /// 3 UNKNOWN (bad threshold or config).
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

    /// Trust only the CA certificates in this PEM file for an https:// --server
    #[arg(
        long,
        value_name = "FILE",
        env = "FLEETCTL_CA_FILE",
        requires = "server"
    )]
    pub ca_file: Option<std::path::PathBuf>,
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

    /// Print a monitoring-plugin status line and exit 0/1/2/3 (OK/WARNING/CRITICAL/UNKNOWN)
    #[arg(long, value_enum, conflicts_with = "watch")]
    pub format: Option<StatusFormat>,

    /// With --format nagios: WARNING when the active nodes fall outside this range; N means
    /// "at least N" (N:) [default: every node that has not left]
    #[arg(
        long,
        value_name = "RANGE",
        requires = "format",
        allow_hyphen_values = true
    )]
    pub warning: Option<String>,

    /// With --format nagios: CRITICAL when the active nodes fall outside this range [default: 1]
    #[arg(
        long,
        value_name = "RANGE",
        requires = "format",
        allow_hyphen_values = true
    )]
    pub critical: Option<String>,
}

/// Alternative renderings of `cluster status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFormat {
    /// Nagios/Icinga/Sensu plugin output and exit codes
    Nagios,
}

impl Remote {
    /// The registry these flags name: a node over HTTP, or the backend from the config.
    pub async fn registry(&self, g: &Globals) -> anyhow::Result<Registry> {
        let config = match &self.server {
            // Talking to a node needs no local config; don't fail on a missing one.
            Some(_) => crate::config::Config::default(),
            None => g.load_config()?.config,
        };
        let tls = crate::client::ClientTls::from_ca_file(self.ca_file.as_deref())?;
        Registry::connect(&config, self.server.as_deref(), self.token.clone(), &tls).await
    }
}

impl ClusterCommand {
    pub async fn run(self, g: &Globals) -> anyhow::Result<ExitCode> {
        match self {
            ClusterCommand::Status(s) => s.run(g).await,
        }
    }
}

impl Status {
    async fn run(self, g: &Globals) -> anyhow::Result<ExitCode> {
        if self.format == Some(StatusFormat::Nagios) {
            return Ok(self.nagios(g).await);
        }
        let registry = self.remote.registry(g).await?;
        if !self.watch {
            let status = registry.status().await?;
            return self.print(g, &status, false);
        }
        loop {
            // In watch mode a failed read is shown and retried, not fatal: the point of
            // watching is to see the cluster through trouble.
            match registry.status().await {
                Ok(status) => {
                    self.print(g, &status, true)?;
                }
                Err(e) => {
                    if g.output == OutputFormat::Table {
                        print!("\x1b[2J\x1b[H");
                    }
                    eprintln!("fleetctl: error: {e:#} (retrying)");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(self.interval.max(1))) => {}
                _ = tokio::signal::ctrl_c() => return Ok(ExitCode::OK),
            }
        }
    }

    /// The plugin: every outcome, errors included, is one status line and a plugin exit code.
    async fn nagios(&self, g: &Globals) -> ExitCode {
        let threshold = |flag: &str, v: &Option<String>| {
            v.as_deref()
                .map(Range::parse)
                .transpose()
                .map_err(|e| format!("--{flag}: {e}"))
        };
        let result = match (
            threshold("warning", &self.warning),
            threshold("critical", &self.critical),
        ) {
            (Err(e), _) | (_, Err(e)) => nagios::failure(PluginState::Unknown, &e),
            (Ok(warning), Ok(critical)) => match self.remote.registry(g).await {
                Err(e) if crate::exit::code_for(&e) == ExitCode::USAGE => {
                    nagios::failure(PluginState::Unknown, &format!("{e:#}"))
                }
                Err(e) => nagios::failure(
                    PluginState::Critical,
                    &format!("cannot read the cluster registry: {e:#}"),
                ),
                Ok(registry) => match registry.status().await {
                    Ok(status) => nagios::check(&status, warning, critical),
                    Err(e) => nagios::failure(
                        PluginState::Critical,
                        &format!("cannot read the cluster registry: {e:#}"),
                    ),
                },
            },
        };
        print!("{}", result.text);
        let _ = std::io::stdout().flush();
        ExitCode(result.state.exit_code())
    }

    fn print(&self, g: &Globals, status: &ClusterStatus, redraw: bool) -> anyhow::Result<ExitCode> {
        let code = exit_code(status, self.min_active);
        match g.output {
            OutputFormat::Json if redraw => println!("{}", serde_json::to_string(status)?),
            OutputFormat::Json => output::print_json(status)?,
            OutputFormat::Table => {
                if redraw {
                    // Clear the screen and home the cursor: refresh in place.
                    print!("\x1b[2J\x1b[H");
                }
                println!("{}", output::cluster_status(status));
            }
        }
        std::io::stdout().flush()?;
        if !g.quiet {
            match code {
                ExitCode::DOWN => eprintln!("cluster down: no active node"),
                ExitCode::DEGRADED if status.leader.is_none() => {
                    eprintln!("cluster degraded: no leader")
                }
                ExitCode::DEGRADED => eprintln!(
                    "cluster degraded: {} active node{}, --min-active is {}",
                    status.active_nodes,
                    if status.active_nodes == 1 { "" } else { "s" },
                    self.min_active
                ),
                _ => {}
            }
        }
        Ok(code)
    }
}

/// 4 when nothing is active, 3 when fewer than `min_active` are or nobody leads, else 0.
pub fn exit_code(status: &ClusterStatus, min_active: usize) -> ExitCode {
    if status.active_nodes == 0 {
        ExitCode::DOWN
    } else if status.active_nodes < min_active || status.leader.is_none() {
        ExitCode::DEGRADED
    } else {
        ExitCode::OK
    }
}
