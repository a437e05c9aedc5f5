//! The command tree. One file per subcommand; each holds its `clap::Args` struct and a `run`
//! that reads arguments and calls library code. No storage or HTTP logic lives here.

pub mod agent;
pub mod cluster;
pub mod completions;
pub mod config;
pub mod keys;
pub mod lb;
pub mod man;
pub mod migrate;
pub mod nodes;
pub mod serve;
pub mod sessions;
pub mod users;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::exit::{EXIT_CODES_HELP, ExitCode};

/// Monitor a fleet of machines from a cluster of servers that survives the loss of a host.
#[derive(Debug, Parser)]
#[command(
    name = "fleetctl",
    version,
    about = "Fleet monitoring that stays up when a host dies",
    long_about = "Fleet monitoring that stays up when a host dies.\n\n\
        Agents on your machines report metrics to `fleetctl serve` nodes; several nodes run \
        active-active behind HAProxy or nginx and share their state through Redis, SQLite or \
        files. Without a config file, `fleetctl serve` starts a standalone server on port 8768 \
        with its data under ./fleet-data.",
    after_help = EXIT_CODES_HELP,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Config file [default: ./fleet.yaml if present, else the embedded standalone default]
    #[arg(long, global = true, env = "FLEETCTL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Output format; with json, stdout carries only JSON and messages go to stderr
    #[arg(
        long,
        global = true,
        env = "FLEETCTL_OUTPUT",
        value_enum,
        default_value_t = OutputFormat::Table
    )]
    pub output: OutputFormat,

    /// More log output (-v info, -vv debug, -vvv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors on stderr; no progress bars
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable tables
    Table,
    /// Machine-readable JSON on stdout
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a server node: agent API, fleet API, dashboard and cluster endpoints
    Serve(serve::Serve),
    /// Inspect the cluster as a whole
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// List, drain, undrain or remove cluster nodes
    #[command(subcommand)]
    Nodes(nodes::NodesCommand),
    /// Garbage-collect, list and revoke login sessions
    #[command(subcommand)]
    Sessions(sessions::SessionsCommand),
    /// Validate, create or print the config file
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Generate load-balancer configs for the cluster
    #[command(subcommand)]
    Lb(lb::LbCommand),
    /// Manage dashboard users
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// Manage agent API keys
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Copy sessions, API key usage and fleet data to the backends of another config
    #[command(long_about = migrate::LONG_ABOUT)]
    Migrate(migrate::Migrate),
    /// Collect this host's metrics and report them to the fleet server
    Agent(agent::Agent),
    /// Print a shell completion script
    Completions(completions::Completions),
    /// Write man pages, one per subcommand
    Man(man::Man),
}

/// What every command gets besides its own arguments.
#[derive(Debug, Clone)]
pub struct Globals {
    /// `--config` / `FLEETCTL_CONFIG`, if given.
    pub config: Option<PathBuf>,
    pub output: OutputFormat,
    pub verbose: u8,
    pub quiet: bool,
}

impl Globals {
    /// Load the effective config the way DESIGN §3 says: `--config`, else `./fleet.yaml` when
    /// present, else the embedded standalone default.
    pub fn load_config(&self) -> anyhow::Result<crate::config::Loaded> {
        crate::config::Loaded::discover(self.config.as_deref())
    }
}

impl Cli {
    /// Run the chosen command on a fresh tokio runtime and return the exit code.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let globals = Globals {
            config: self.config,
            output: self.output,
            verbose: self.verbose,
            quiet: self.quiet,
        };
        init_tracing(&globals, matches!(self.command, Command::Serve(_)));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.block_on(self.command.run(&globals))
    }
}

impl Command {
    async fn run(self, g: &Globals) -> anyhow::Result<ExitCode> {
        match self {
            Command::Serve(c) => c.run(g).await,
            Command::Cluster(c) => c.run(g).await,
            Command::Nodes(c) => c.run(g).await,
            Command::Sessions(c) => c.run(g).await,
            Command::Config(c) => c.run(g).await,
            Command::Lb(c) => c.run(g).await,
            Command::Users(c) => c.run(g).await,
            Command::Keys(c) => c.run(g).await,
            Command::Migrate(c) => c.run(g).await,
            Command::Agent(c) => c.run(g).await,
            Command::Completions(c) => c.run(g),
            Command::Man(c) => c.run(g),
        }
    }
}

/// Logs go to stderr so stdout stays clean for `--output json`. A server logs at info by
/// default; one-shot commands only warn unless asked with `-v`. `RUST_LOG` overrides both.
fn init_tracing(g: &Globals, is_server: bool) {
    use tracing_subscriber::EnvFilter;
    let level = match (g.quiet, g.verbose, is_server) {
        (true, _, _) => "error",
        (false, 0, true) => "info",
        (false, 0, false) => "warn",
        (false, 1, _) => "info",
        (false, 2, _) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}
