//! `fleetctl completions <shell>`.

use clap::Args;

use super::Globals;
use crate::exit::{ExitCode, not_implemented};

#[derive(Debug, Args)]
pub struct Completions {
    /// The shell to generate for
    pub shell: clap_complete::Shell,
}

impl Completions {
    pub fn run(self, _g: &Globals) -> anyhow::Result<ExitCode> {
        Err(not_implemented("completions"))
    }
}
