//! `fleetctl config validate|init|show`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use super::{Globals, OutputFormat};
use crate::config::init::{self, InitAnswers, Mode};
use crate::config::{BackendKind, Config, process_env};
use crate::exit::{ExitCode, UsageError};

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a config file and report every problem with file:line:column
    ///
    /// Reports unknown keys (with a "did you mean" hint), wrong types, bad durations and enum
    /// values, unreadable secret files, and semantic problems such as a node_timeout not above
    /// twice the heartbeat_interval. Exit 0 when valid (warnings are printed), 2 when there are
    /// errors. With --output json, stdout is a JSON array of
    /// {severity, file, line, column, key, message, hint}.
    Validate(Validate),
    /// Write a new config file by answering a few questions
    ///
    /// Asks for standalone or cluster mode, the backend, the Redis address and the first admin
    /// user (password prompted twice, stored only as an argon2id hash). Refuses to overwrite an
    /// existing file unless --force is given.
    Init(Init),
    /// Print the effective config (file, defaults and environment), secrets redacted
    Show,
}

#[derive(Debug, Args)]
pub struct Validate {
    /// The file to check [default: the file named by --config, else ./fleet.yaml]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct Init {
    /// Where to write the config
    #[arg(default_value = "fleet.yaml")]
    pub file: PathBuf,
    /// Overwrite the file if it exists
    #[arg(long)]
    pub force: bool,
}

impl ConfigCommand {
    pub async fn run(self, g: &Globals) -> anyhow::Result<ExitCode> {
        match self {
            ConfigCommand::Validate(v) => v.run(g),
            ConfigCommand::Init(i) => i.run(),
            ConfigCommand::Show => show(g),
        }
    }
}

impl Validate {
    fn run(self, g: &Globals) -> anyhow::Result<ExitCode> {
        let path = match self.file.or_else(|| g.config.clone()) {
            Some(p) => p,
            None if Path::new("fleet.yaml").exists() => PathBuf::from("fleet.yaml"),
            None => {
                return Err(UsageError(
                    "no config file to validate: pass FILE or --config, or create ./fleet.yaml with `fleetctl config init`".into(),
                )
                .into());
            }
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| UsageError(format!("cannot read config file {}: {e}", path.display())))?;
        let (mut problems, config) = Config::check_str(&text, &path, &process_env);
        if let Some(config) = &config {
            problems.extend(tls_problems(config, &text, &path));
        }
        let errors = problems.iter().filter(|p| p.is_error()).count();
        let warnings = problems.len() - errors;
        match g.output {
            OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&problems)?),
            OutputFormat::Table => {
                for p in &problems {
                    println!("{p}");
                }
                let verdict = if errors > 0 { "invalid" } else { "valid" };
                println!(
                    "{}: {verdict} ({errors} error{}, {warnings} warning{})",
                    path.display(),
                    plural(errors),
                    plural(warnings)
                );
            }
        }
        Ok(if errors > 0 {
            ExitCode::USAGE
        } else {
            ExitCode::OK
        })
    }
}

/// What `serve` would say about `server.tls`, at the key's line and column. Files that are
/// absent are not reported (a config is often checked on a host without them, such as CI;
/// `serve` names them at start-up); files that are there but unreadable are warnings; files
/// that are read but unusable (no PEM, a key that does not match) are errors.
fn tls_problems(config: &Config, text: &str, path: &Path) -> Vec<crate::config::Problem> {
    use crate::config::{Problem, Severity};
    use crate::server::tls::{ServerTls, TlsError, TlsSettings};
    let Some(settings) = TlsSettings::from_config(config.server.tls.as_ref()) else {
        return Vec::new();
    };
    let files = [
        Some(&settings.cert),
        Some(&settings.key),
        settings.client_ca.as_ref(),
    ];
    if files.iter().flatten().any(|f| !f.exists()) {
        return Vec::new();
    }
    let Err(e) = ServerTls::load(settings.clone()) else {
        return Vec::new();
    };
    let key_of = |p: &Path| {
        if p == settings.cert {
            "server.tls.cert"
        } else if Some(p) == settings.client_ca.as_deref() {
            "server.tls.client_ca"
        } else {
            "server.tls.key"
        }
    };
    let (key, severity, hint) = match &e {
        TlsError::Read { path: p, .. } => (
            key_of(p),
            Severity::Warning,
            "`fleetctl serve` refuses to start until the file is readable on its host",
        ),
        TlsError::Empty { path: p, .. } => (
            key_of(p),
            Severity::Error,
            "give a PEM file (`-----BEGIN …-----` blocks)",
        ),
        TlsError::Mismatch { .. } => (
            "server.tls.key",
            Severity::Error,
            "the key must be the one the certificate was issued for",
        ),
        TlsError::ClientCa { .. } => (
            "server.tls.client_ca",
            Severity::Error,
            "give the PEM certificate(s) of the CA that signs the load balancer's client certificate",
        ),
    };
    let pos = crate::config::validate::check(text, path).index.locate(key);
    vec![Problem {
        severity,
        file: path.display().to_string(),
        line: pos.line,
        column: pos.column,
        key: key.to_string(),
        message: e.to_string(),
        hint: Some(hint.to_string()),
    }]
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn show(g: &Globals) -> anyhow::Result<ExitCode> {
    let loaded = g.load_config()?;
    let redacted = loaded.config.redacted();
    for w in &loaded.warnings {
        eprintln!("{w}");
    }
    match g.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&redacted)?),
        OutputFormat::Table => {
            let origin = loaded.path.as_ref().map_or_else(
                || "the embedded standalone default (no config file)".to_string(),
                |p| p.display().to_string(),
            );
            println!("# Effective config from {origin}; secrets shown as ***");
            print!("{}", serde_saphyr::to_string(&redacted)?);
        }
    }
    Ok(ExitCode::OK)
}

impl Init {
    fn run(self) -> anyhow::Result<ExitCode> {
        // Checked before any question, so nobody answers a wizard only to be refused.
        if self.file.exists() && !self.force {
            return Err(UsageError(format!(
                "{} already exists; use --force to overwrite it",
                self.file.display()
            ))
            .into());
        }
        if !std::io::stdin().is_terminal() {
            return Err(UsageError(
                "`config init` asks questions and needs an interactive terminal; write the file by hand from config_cluster_example.yaml instead".into(),
            )
            .into());
        }
        let answers = ask().context("the config wizard was interrupted")?;
        let text = init::render(&answers);
        // The wizard's output must pass the same validation as every other config.
        Config::load_str(&text, &self.file, &|_| None)?;
        std::fs::write(&self.file, &text)
            .with_context(|| format!("cannot write {}", self.file.display()))?;
        eprintln!(
            "wrote {}; check it with `fleetctl config validate {}`",
            self.file.display(),
            self.file.display()
        );
        Ok(ExitCode::OK)
    }
}

fn ask() -> anyhow::Result<InitAnswers> {
    use dialoguer::{Input, Password, Select};
    let mode = match Select::new()
        .with_prompt("Mode")
        .items([
            "standalone (one server)",
            "cluster (several servers behind a load balancer)",
        ])
        .default(0)
        .interact()?
    {
        0 => Mode::Standalone,
        _ => Mode::Cluster,
    };
    let backends = [BackendKind::Redis, BackendKind::Sqlite, BackendKind::File];
    let backend = backends[Select::new()
        .with_prompt("Backend for cluster state and sessions")
        .items([
            "redis (needed for nodes on several hosts)",
            "sqlite (one host)",
            "file (one host, development)",
        ])
        .default(if mode == Mode::Cluster { 0 } else { 1 })
        .interact()?];
    let (redis_host, redis_port) = if backend == BackendKind::Redis {
        let host: String = Input::new()
            .with_prompt("Redis host")
            .default("localhost".into())
            .interact_text()?;
        let port: u16 = Input::new()
            .with_prompt("Redis port")
            .default(6379)
            .validate_with(|p: &u16| if *p == 0 { Err("use 1-65535") } else { Ok(()) })
            .interact_text()?;
        (host, port)
    } else {
        ("localhost".to_string(), 6379)
    };
    let admin_username: String = Input::new()
        .with_prompt("First admin username")
        .default("admin".into())
        .interact_text()?;
    let password = Password::new()
        .with_prompt(format!("Password for {admin_username}"))
        .with_confirmation("Repeat the password", "the passwords do not match")
        .interact()?;
    let admin_password_hash = crate::credentials::hash_password(&password)?;
    Ok(InitAnswers {
        mode,
        backend,
        redis_host,
        redis_port,
        admin_username,
        admin_password_hash,
    })
}
