//! `fleetctl users hash-password`.

use clap::{Args, Subcommand};

use super::Globals;
use crate::exit::{ExitCode, not_implemented};

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Prompt for a password (twice, no echo) and print its argon2id hash for `auth.users`
    HashPassword(HashPassword),
}

#[derive(Debug, Args)]
pub struct HashPassword {
    /// Read the password from one line of standard input instead of prompting
    #[arg(long)]
    pub stdin: bool,
}

impl UsersCommand {
    pub async fn run(self, _g: &Globals) -> anyhow::Result<ExitCode> {
        Err(not_implemented("users hash-password"))
    }
}
