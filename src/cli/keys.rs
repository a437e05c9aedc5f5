//! `fleetctl keys new`.

use clap::{Args, Subcommand};

use super::Globals;
use crate::exit::{ExitCode, not_implemented};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Mint an agent API key; print it once, with the config entry holding only its SHA-256
    New(New),
}

#[derive(Debug, Args)]
pub struct New {
    /// A name for the key, e.g. the group of machines that will use it
    #[arg(long, value_name = "NAME")]
    pub name: String,
}

impl KeysCommand {
    pub async fn run(self, _g: &Globals) -> anyhow::Result<ExitCode> {
        Err(not_implemented("keys new"))
    }
}
