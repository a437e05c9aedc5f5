//! `fleetctl man`.

use std::path::PathBuf;

use clap::Args;

use super::Globals;
use crate::exit::{ExitCode, not_implemented};

#[derive(Debug, Args)]
pub struct Man {
    /// Directory to write the pages into
    #[arg(long, value_name = "DIR", default_value = "man")]
    pub dir: PathBuf,
}

impl Man {
    pub fn run(self, _g: &Globals) -> anyhow::Result<ExitCode> {
        Err(not_implemented("man"))
    }
}
