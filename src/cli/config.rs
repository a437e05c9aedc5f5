//! `fleetctl config validate|init|show`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Globals;
use crate::exit::{ExitCode, not_implemented};

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a config file and report every problem with file:line:column
    ///
    /// Exit 0 when valid (warnings are printed), 2 when there are errors.
    Validate(Validate),
    /// Write a new config file by answering a few questions
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
    pub async fn run(self, _g: &Globals) -> anyhow::Result<ExitCode> {
        let name = match self {
            ConfigCommand::Validate(_) => "config validate",
            ConfigCommand::Init(_) => "config init",
            ConfigCommand::Show => "config show",
        };
        Err(not_implemented(name))
    }
}
