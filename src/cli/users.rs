//! `fleetctl users hash-password`.

use std::io::BufRead;

use clap::{Args, Subcommand};

use super::Globals;
use crate::exit::{ExitCode, UsageError};

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Prompt for a password (twice, no echo) and print its argon2id hash for `auth.users`
    ///
    /// Put the printed PHC string ($argon2id$v=19$…) in `auth.users[].password_hash`; the
    /// password itself is never stored.
    HashPassword(HashPassword),
}

#[derive(Debug, Args)]
pub struct HashPassword {
    /// Read the password from one line of standard input instead of prompting (only the
    /// trailing newline is removed)
    #[arg(long)]
    pub stdin: bool,
}

impl UsersCommand {
    pub async fn run(self, _g: &Globals) -> anyhow::Result<ExitCode> {
        match self {
            UsersCommand::HashPassword(h) => h.run(),
        }
    }
}

impl HashPassword {
    fn run(self) -> anyhow::Result<ExitCode> {
        let password = if self.stdin {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            let line = line.strip_suffix('\n').unwrap_or(&line);
            line.strip_suffix('\r').unwrap_or(line).to_string()
        } else {
            dialoguer::Password::new()
                .with_prompt("Password")
                .with_confirmation("Repeat the password", "the passwords do not match")
                .interact()?
        };
        if password.is_empty() {
            return Err(UsageError("refusing to hash an empty password".into()).into());
        }
        println!("{}", crate::credentials::hash_password(&password)?);
        Ok(ExitCode::OK)
    }
}
