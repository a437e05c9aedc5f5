//! `fleetctl serve`: run one server node.

use clap::Args;

use super::Globals;
use crate::exit::{ExitCode, not_implemented};

/// Run a server node.
///
/// Starts the HTTP server (agent API, fleet API, dashboard, cluster endpoints). In cluster mode
/// the node registers in the shared backend, heartbeats, and on SIGTERM or SIGINT drains: its
/// health check answers 503 at once, it keeps serving for `server.drain_timeout`, finishes
/// in-flight requests, deregisters and exits 0.
#[derive(Debug, Args)]
pub struct Serve {
    /// Address to listen on, overriding `server.host`
    #[arg(long, value_name = "ADDR")]
    pub host: Option<String>,

    /// Port to listen on, overriding `server.port` (0 picks a free port)
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
}

impl Serve {
    pub async fn run(self, _g: &Globals) -> anyhow::Result<ExitCode> {
        Err(not_implemented("serve"))
    }
}
