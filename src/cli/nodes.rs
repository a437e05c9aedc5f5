//! `fleetctl nodes list|drain|undrain|remove`: manage individual cluster nodes.

use clap::{Args, Subcommand};

use super::cluster::Remote;
use super::{Globals, OutputFormat};
use crate::exit::ExitCode;
use crate::output;

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
    pub async fn run(self, g: &Globals) -> anyhow::Result<ExitCode> {
        match self {
            NodesCommand::List(a) => {
                let status = a.remote.registry(g).await?.status().await?;
                match g.output {
                    OutputFormat::Json => output::print_json(&status.nodes)?,
                    OutputFormat::Table => println!("{}", output::cluster_status(&status)),
                }
            }
            NodesCommand::Drain(a) => {
                a.remote
                    .registry(g)
                    .await?
                    .set_draining(&a.node_id, true)
                    .await?;
                report(
                    g,
                    &a.node_id,
                    "draining: its health check fails from its next heartbeat; `fleetctl nodes undrain` reverses it",
                );
            }
            NodesCommand::Undrain(a) => {
                a.remote
                    .registry(g)
                    .await?
                    .set_draining(&a.node_id, false)
                    .await?;
                report(g, &a.node_id, "back in service from its next heartbeat");
            }
            NodesCommand::Remove(a) => {
                a.remote
                    .registry(g)
                    .await?
                    .remove(&a.node_id, a.force)
                    .await?;
                report(g, &a.node_id, "removed from the registry");
            }
        }
        Ok(ExitCode::OK)
    }
}

fn report(g: &Globals, node_id: &str, what: &str) {
    match g.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::json!({ "node_id": node_id, "result": what })
        ),
        OutputFormat::Table if !g.quiet => eprintln!("node {node_id}: {what}"),
        OutputFormat::Table => {}
    }
}
