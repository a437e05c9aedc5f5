//! `fleetctl keys new` (agent API keys, admin tokens, encryption key lines) and
//! `fleetctl keys rotate-encryption`.

use std::io::IsTerminal;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Globals, OutputFormat};
use crate::credentials;
use crate::exit::{ExitCode, UsageError};
use crate::store::crypto::{AtRest, ResealCount};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Mint an agent API key or admin token (printed once, with the config entry holding only
    /// its SHA-256), or an encryption key line
    ///
    /// The key is shown only now: store it where the agent (or admin script) reads it, and add
    /// the printed entry to `auth.api_keys` (`auth.admin_tokens` with --kind admin,
    /// `auth.metrics_tokens` with --kind metrics). Several
    /// keys may be valid at once, so keys can be rotated without downtime. With --kind
    /// encryption the printed `NAME:<base64>` line goes first in security.encryption_key_file
    /// (docs/security.md).
    New(New),
    /// Re-seal every session record and stored report with the first key of
    /// security.encryption_key_file
    ///
    /// After putting a new key first in the key file: rewrites, in batches and in place, every
    /// record sealed with another key (or written before encryption was on), so the old key
    /// can be removed from the file. Safe to rerun and to run while nodes serve. Records that
    /// no listed key opens are counted and left alone.
    RotateEncryption(RotateEncryption),
}

#[derive(Debug, Args)]
pub struct RotateEncryption {}

/// What the key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyKind {
    /// An agent API key (`fleet_…`) for `auth.api_keys`
    Agent,
    /// An admin API token (`fleetadm_…`) for `auth.admin_tokens`
    Admin,
    /// A Prometheus scrape token (`fleetmet_…`) for `auth.metrics_tokens`
    Metrics,
    /// An encryption key line (`NAME:<base64 of 32 bytes>`) for security.encryption_key_file
    Encryption,
}

#[derive(Debug, Args)]
pub struct New {
    /// A name for the key, e.g. the group of machines that will use it (letters, digits, `.`,
    /// `_`, `-`)
    #[arg(long, value_name = "NAME")]
    pub name: String,

    /// Mint an agent API key, an admin token, a /metrics scrape token or an encryption key line
    #[arg(long, value_enum, default_value_t = KeyKind::Agent)]
    pub kind: KeyKind,
}

impl KeysCommand {
    pub async fn run(self, g: &Globals) -> anyhow::Result<ExitCode> {
        match self {
            KeysCommand::New(n) => n.run(g),
            KeysCommand::RotateEncryption(r) => r.run(g).await,
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
            KeyKind::Metrics => (credentials::mint_metrics_token()?, "auth.metrics_tokens"),
            KeyKind::Encryption => unreachable!("handled above"),
        };
        let sha256 = credentials::sha256_hex(&key);
        let entry = format!("- {{ name: {}, sha256: {sha256} }}", self.name);
        match g.output {
            OutputFormat::Json => println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "name": self.name,
                    "kind": match self.kind { KeyKind::Agent => "agent", KeyKind::Admin => "admin", KeyKind::Metrics => "metrics", KeyKind::Encryption => "encryption" },
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
                    "# keep the older lines below it until `fleetctl keys rotate-encryption` has run."
                );
                println!("{line}");
            }
        }
        Ok(ExitCode::OK)
    }
}

impl RotateEncryption {
    async fn run(self, g: &Globals) -> anyhow::Result<ExitCode> {
        let loaded = g.load_config()?;
        let config = &loaded.config;
        let Some(key_file) = config.security.encryption_key_file.as_deref() else {
            return Err(UsageError(
                "security.encryption_key_file is not set: there is no key to re-seal with".into(),
            )
            .into());
        };
        let at_rest =
            AtRest::from_key_file(Some(key_file)).map_err(|e| UsageError(e.to_string()))?;
        let primary = at_rest
            .keyring()
            .map(|k| k.primary_id().to_owned())
            .unwrap_or_default();

        let bar = progress_bar(g);
        let sessions = crate::sessions::open_with(&config.sessions, at_rest.clone())
            .await
            .with_context(|| {
                format!("cannot open the {} session store", config.sessions.backend)
            })?;
        bar.set_message("re-sealing sessions");
        let b = bar.clone();
        let session_count = sessions
            .reseal(&move |p| {
                b.set_length(p.total);
                b.set_position(p.done);
            })
            .await
            .context("re-sealing the session store failed")?;

        // API key names are sealed whenever there is a key file; reports only with
        // `storage.encrypt_reports` (and written back in the clear when it was turned off).
        let fleet = crate::fleet::open_with(&config.storage, at_rest)
            .await
            .with_context(|| format!("cannot open the {} fleet store", config.storage.backend))?;
        bar.set_message("re-sealing the fleet store");
        bar.set_position(0);
        let b = bar.clone();
        let fleet_count = fleet
            .reseal(&move |done, total| {
                b.set_length(total);
                b.set_position(done);
            })
            .await
            .context("re-sealing the fleet store failed")?;
        bar.finish_and_clear();

        match g.output {
            OutputFormat::Json => println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "key_id": primary,
                    "sessions": session_count,
                    "fleet": fleet_count,
                }))?
            ),
            OutputFormat::Table => {
                let line = |what: &str, c: &ResealCount| {
                    println!(
                        "{what}: {} examined, {} re-sealed with key {primary}, {} unreadable",
                        c.examined, c.resealed, c.unreadable
                    )
                };
                line("sessions", &session_count);
                line("fleet records (API key names, reports)", &fleet_count);
            }
        }
        let unreadable = session_count.unreadable + fleet_count.unreadable;
        if unreadable > 0 {
            eprintln!(
                "fleetctl: warning: {unreadable} records open with no key in {}; they stay as they are (the server logs name their key ids)",
                key_file.display()
            );
        }
        Ok(ExitCode::OK)
    }
}

fn progress_bar(g: &Globals) -> ProgressBar {
    if g.quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} ({eta})")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar
}
