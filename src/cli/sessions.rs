//! `fleetctl sessions gc|list|revoke`: maintain the shared login-session store.

use clap::{Args, Subcommand};

use super::Globals;
use crate::exit::{ExitCode, not_implemented};

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Delete expired sessions (SQLite and file stores; Redis expires them itself)
    Gc,
    /// List live sessions
    List(List),
    /// End sessions on every node at once
    Revoke(Revoke),
}

#[derive(Debug, Args)]
pub struct List {
    /// Only this user's sessions
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Revoke {
    /// Revoke every session of this user
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Revoke every session of every user
    #[arg(long)]
    pub all: bool,
}

impl SessionsCommand {
    pub async fn run(self, _g: &Globals) -> anyhow::Result<ExitCode> {
        let name = match self {
            SessionsCommand::Gc => "sessions gc",
            SessionsCommand::List(_) => "sessions list",
            SessionsCommand::Revoke(_) => "sessions revoke",
        };
        Err(not_implemented(name))
    }
}
