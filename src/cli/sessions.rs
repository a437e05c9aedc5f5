//! `fleetctl sessions gc|list|revoke`: maintain the shared login-session store.
//!
//! Reads the backend named in `sessions:` of the config directly; all storage logic lives in
//! `crate::sessions`. Raw session ids never appear in output (stores do not even have them):
//! sessions are named by a prefix of the SHA-256 of their id.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use comfy_table::Table;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::{Globals, OutputFormat};
use crate::config::BackendKind;
use crate::exit::{ExitCode, UsageError};
use crate::sessions::{self, GcProgress, SessionError, SessionInfo, SessionStore};
use crate::store::crypto::AtRest;
use crate::store::time::rfc3339;

/// Characters of the id hash shown in tables: enough to tell sessions apart.
const HASH_PREFIX: usize = 12;

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
    pub async fn run(self, g: &Globals) -> anyhow::Result<ExitCode> {
        let loaded = g.load_config()?;
        let config = &loaded.config.sessions;
        let at_rest = AtRest::from_key_file(loaded.config.security.encryption_key_file.as_deref())
            .map_err(|e| crate::exit::UsageError(e.to_string()))?;
        let store = sessions::open_with(config, at_rest)
            .await
            .map_err(user_error)
            .with_context(|| format!("cannot open the {} session store", config.backend))?;
        match self {
            SessionsCommand::Gc => gc(g, store).await,
            SessionsCommand::List(l) => list(g, store, l.user.as_deref()).await,
            SessionsCommand::Revoke(r) => revoke(g, store, r).await,
        }
    }
}

/// A config problem is the user's to fix (exit 2); everything else is a runtime failure.
fn user_error(e: SessionError) -> anyhow::Error {
    match e {
        SessionError::Config(m) => UsageError(m).into(),
        other => other.into(),
    }
}

async fn gc(g: &Globals, store: Arc<dyn SessionStore>) -> anyhow::Result<ExitCode> {
    let bar = if g.quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} ({eta})")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_message("deleting expired sessions");
        bar
    };
    let progress_bar = bar.clone();
    let progress = move |p: GcProgress| {
        progress_bar.set_length(p.total);
        progress_bar.set_position(p.done);
    };
    let deleted = store
        .delete_expired(&progress)
        .await
        .context("session garbage collection failed")?;
    bar.finish_and_clear();
    let remaining = store
        .count()
        .await
        .context("cannot count the remaining sessions")?;
    let backend = store.backend();
    match g.output {
        OutputFormat::Json => println!(
            "{}",
            json!({ "backend": backend.as_str(), "deleted": deleted, "remaining": remaining })
        ),
        OutputFormat::Table => {
            if backend == BackendKind::Redis {
                println!(
                    "Redis expires sessions itself (native TTL); nothing to delete. \
                     {remaining} live sessions remain."
                );
            } else {
                println!("deleted {deleted} expired sessions; {remaining} live sessions remain");
            }
        }
    }
    Ok(ExitCode::OK)
}

async fn list(
    g: &Globals,
    store: Arc<dyn SessionStore>,
    user: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let sessions = store.list(user).await.context("cannot list sessions")?;
    match g.output {
        OutputFormat::Json => {
            // The CSRF token and session data stay server-side: listing is for auditing.
            let rows: Vec<_> = sessions
                .iter()
                .map(|i| {
                    json!({
                        "id_hash": i.id_hash,
                        "user": i.session.user,
                        "created_at": rfc3339(i.session.created_at),
                        "last_seen": rfc3339(i.session.last_seen),
                        "expires_at": rfc3339(i.session.expires_at),
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(rows));
        }
        OutputFormat::Table => {
            if sessions.is_empty() {
                eprintln!("no live sessions");
            } else {
                println!("{}", table(&sessions));
            }
        }
    }
    Ok(ExitCode::OK)
}

fn table(sessions: &[SessionInfo]) -> Table {
    let mut t = Table::new();
    t.set_header(vec![
        "USER",
        "CREATED",
        "LAST SEEN",
        "EXPIRES",
        "ID (SHA-256)",
    ]);
    for i in sessions {
        t.add_row(vec![
            i.session.user.clone(),
            rfc3339(i.session.created_at),
            rfc3339(i.session.last_seen),
            rfc3339(i.session.expires_at),
            format!("{}…", &i.id_hash[..HASH_PREFIX.min(i.id_hash.len())]),
        ]);
    }
    t
}

async fn revoke(g: &Globals, store: Arc<dyn SessionStore>, r: Revoke) -> anyhow::Result<ExitCode> {
    let (ended, whom) = match (&r.user, r.all) {
        (Some(user), _) => (
            store
                .revoke_user(user)
                .await
                .with_context(|| format!("cannot revoke the sessions of {user}"))?,
            format!("of user {user}"),
        ),
        (None, _) => (
            store
                .revoke_all()
                .await
                .context("cannot revoke all sessions")?,
            "of all users".to_owned(),
        ),
    };
    match g.output {
        OutputFormat::Json => println!(
            "{}",
            json!({ "revoked": ended, "user": r.user, "all": r.all })
        ),
        OutputFormat::Table => println!("ended {ended} sessions {whom}"),
    }
    Ok(ExitCode::OK)
}
