//! `fleetctl completions <shell>`.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{Cli, Globals};
use crate::exit::ExitCode;

#[derive(Debug, Args)]
pub struct Completions {
    /// The shell to generate for
    pub shell: Shell,
}

/// Every shell we ship completions for, as committed under `completions/`.
pub const SHELLS: [Shell; 5] = [
    Shell::Bash,
    Shell::Zsh,
    Shell::Fish,
    Shell::PowerShell,
    Shell::Elvish,
];

/// The completion script for `shell` and the file name it is committed under.
pub fn render(shell: Shell) -> (String, Vec<u8>) {
    use clap_complete::Generator;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "fleetctl", &mut out);
    (shell.file_name("fleetctl"), out)
}

impl Completions {
    pub fn run(self, _g: &Globals) -> anyhow::Result<ExitCode> {
        use std::io::Write;
        let (_, script) = render(self.shell);
        std::io::stdout().write_all(&script)?;
        Ok(ExitCode::OK)
    }
}
