//! `fleetctl man`: one man page per command and subcommand (fleetctl.1,
//! fleetctl-cluster-status.1, …), as committed under `man/`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, CommandFactory};

use super::{Cli, Globals};
use crate::exit::ExitCode;

#[derive(Debug, Args)]
pub struct Man {
    /// Directory to write the pages into
    #[arg(long, value_name = "DIR", default_value = "man")]
    pub dir: PathBuf,
}

/// Every page as (file name, roff text), parents before their subcommands.
pub fn render_all() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    fn walk(cmd: &clap::Command, out: &mut Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
        let man = clap_mangen::Man::new(cmd.clone());
        let mut page = Vec::new();
        man.render(&mut page)?;
        out.push((man.get_filename(), page));
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, out)?;
        }
        Ok(())
    }
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    walk(&cmd, &mut out)?;
    Ok(out)
}

impl Man {
    pub fn run(self, g: &Globals) -> anyhow::Result<ExitCode> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let pages = render_all()?;
        for (name, page) in &pages {
            let path = self.dir.join(name);
            std::fs::write(&path, page)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        if !g.quiet {
            eprintln!("wrote {} man pages to {}", pages.len(), self.dir.display());
        }
        Ok(ExitCode::OK)
    }
}
