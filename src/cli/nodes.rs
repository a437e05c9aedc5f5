//! `fleetctl nodes list|drain|undrain|remove`: manage individual cluster nodes.

use clap::{Args, Subcommand};

use super::Globals;
use super::cluster::Remote;
use crate::exit::{ExitCode, not_implemented};

#[derive(Debug, Subcommand)]
pub enum NodesCommand {
    /// List the registered nodes with their state and last heartbeat
    List(List),
    /// Put a node into draining: its health check fails so load balancers stop sending work
    Drain(NodeArg),
    /// Take a node out of draining
    Undrain(NodeArg),
    /// Forget a node in the registry (refuses an active node without --force)
    Remove(Remove),
}

#[derive(Debug, Args)]
pub struct List {
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, Args)]
pub struct NodeArg {
    /// The node's id, as shown by `fleetctl nodes list`
    pub node_id: String,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, Args)]
pub struct Remove {
    /// The node's id, as shown by `fleetctl nodes list`
    pub node_id: String,
    /// Remove the node even if it is still active
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub remote: Remote,
}

impl NodesCommand {
    pub async fn run(self, _g: &Globals) -> anyhow::Result<ExitCode> {
        let name = match self {
            NodesCommand::List(_) => "nodes list",
            NodesCommand::Drain(_) => "nodes drain",
            NodesCommand::Undrain(_) => "nodes undrain",
            NodesCommand::Remove(_) => "nodes remove",
        };
        Err(not_implemented(name))
    }
}
