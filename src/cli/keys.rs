//! `fleetctl keys new`: agent API keys, admin tokens and encryption key lines.

use clap::{Args, Subcommand, ValueEnum};

use super::{Globals, OutputFormat};
use crate::credentials;
use crate::exit::{ExitCode, UsageError};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Mint an agent API key or admin token (printed once, with the config entry holding only
    /// its SHA-256), or an encryption key line
    ///
    /// The key is shown only now: store it where the agent (or admin script) reads it, and add
    /// the printed entry to `auth.api_keys` (or `auth.admin_tokens` with --kind admin). Several
    /// keys may be valid at once, so keys can be rotated without downtime. With --kind
    /// encryption the printed `NAME:<base64>` line goes first in security.encryption_key_file
    /// (docs/security.md).
    New(New),
}

/// What the key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyKind {
    /// An agent API key (`fleet_…`) for `auth.api_keys`
    Agent,
    /// An admin API token (`fleetadm_…`) for `auth.admin_tokens`
    Admin,
    /// An encryption key line (`NAME:<base64 of 32 bytes>`) for security.encryption_key_file
    Encryption,
}

#[derive(Debug, Args)]
pub struct New {
    /// A name for the key, e.g. the group of machines that will use it (letters, digits, `.`,
    /// `_`, `-`)
    #[arg(long, value_name = "NAME")]
    pub name: String,

    /// Mint an agent API key, an admin token or an encryption key line
    #[arg(long, value_enum, default_value_t = KeyKind::Agent)]
    pub kind: KeyKind,
}

impl KeysCommand {
    pub async fn run(self, g: &Globals) -> anyhow::Result<ExitCode> {
        match self {
            KeysCommand::New(n) => n.run(g),
        }
    }
}

impl New {
    fn run(self, g: &Globals) -> anyhow::Result<ExitCode> {
        let name_ok = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !name_ok {
            return Err(UsageError(format!(
                "invalid key name {:?}: use letters, digits, `.`, `_` and `-`",
                self.name
            ))
            .into());
        }
        if self.kind == KeyKind::Encryption {
            return self.run_encryption(g);
        }
        let (key, section) = match self.kind {
            KeyKind::Agent => (credentials::mint_api_key()?, "auth.api_keys"),
            KeyKind::Admin => (credentials::mint_admin_token()?, "auth.admin_tokens"),
            KeyKind::Encryption => unreachable!("handled above"),
        };
        let sha256 = credentials::sha256_hex(&key);
        let entry = format!("- {{ name: {}, sha256: {sha256} }}", self.name);
        match g.output {
            OutputFormat::Json => println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "name": self.name,
                    "kind": match self.kind { KeyKind::Agent => "agent", _ => "admin" },
                    "key": key,
                    "sha256": sha256,
                    "config_section": section,
                    "entry": entry,
                }))?
            ),
            OutputFormat::Table => {
                println!("# The key, shown only this once:");
                println!("{key}");
                println!("# Add this entry to {section} in the config:");
                println!("{entry}");
            }
        }
        Ok(ExitCode::OK)
    }

    /// A key-file line: the key itself goes into the file, so it is printed as the line.
    fn run_encryption(self, g: &Globals) -> anyhow::Result<ExitCode> {
        let line = crate::store::crypto::new_key_line(&self.name)
            .map_err(|e| UsageError(format!("invalid key name: {e}")))?;
        match g.output {
            OutputFormat::Json => println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "name": self.name,
                    "kind": "encryption",
                    "line": line,
                    "config_key": "security.encryption_key_file",
                }))?
            ),
            OutputFormat::Table => {
                println!(
                    "# Put this line first in the file security.encryption_key_file names (mode 0600);"
                );
                println!(
                    "# keep the older lines below it until no record sealed with them is left (docs/security.md)."
                );
                println!("{line}");
            }
        }
        Ok(ExitCode::OK)
    }
}
