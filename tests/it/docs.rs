//! Generated documentation stays in step with the code: `--help` snapshots of every command,
//! and the committed shell completions and man pages. Refresh all of them with
//! `scripts/regen-docs`.

use std::path::Path;

use clap::CommandFactory;
use fleetctl::cli::{Cli, completions, man};

const REGEN: &str = "run `scripts/regen-docs` and commit the result";

/// (dashed command path, command) for the root and every subcommand, depth first.
fn every_command() -> Vec<(String, clap::Command)> {
    fn walk(name: String, cmd: &clap::Command, out: &mut Vec<(String, clap::Command)>) {
        out.push((name.clone(), cmd.clone()));
        // clap's generated `help` subcommands only repeat the other pages.
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            walk(format!("{name}-{}", sub.get_name()), sub, out);
        }
    }
    let mut root = Cli::command();
    root.build();
    let mut out = Vec::new();
    walk("fleetctl".into(), &root, &mut out);
    out
}

#[test]
fn help_of_every_command_matches_its_snapshot() {
    let commands = every_command();
    assert!(commands.len() > 20, "the command tree looks truncated");
    for (name, cmd) in commands {
        // A fixed width and no env values, so the snapshot depends neither on the terminal nor
        // on FLEETCTL_* variables set where the test runs.
        let help = cmd
            .term_width(100)
            .mut_args(|a| a.hide_env_values(true))
            .render_long_help()
            .to_string();
        insta::with_settings!({ prepend_module_to_snapshot => false, description => REGEN }, {
            insta::assert_snapshot!(format!("help-{name}"), help);
        });
    }
}

fn assert_fresh(path: &Path, generated: &[u8]) {
    let committed = std::fs::read(path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale or missing: {REGEN}",
        path.display()
    );
}

#[test]
fn committed_completions_are_fresh() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
    for shell in completions::SHELLS {
        let (name, script) = completions::render(shell);
        assert_fresh(&dir.join(name), &script);
    }
}

#[test]
fn committed_man_pages_are_fresh() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let pages = man::render_all().unwrap();
    for (name, page) in &pages {
        assert_fresh(&dir.join(name), page);
    }
    let mut committed: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    committed.sort();
    let mut expected: Vec<String> = pages.iter().map(|(n, _)| n.clone()).collect();
    expected.sort();
    assert_eq!(
        committed, expected,
        "man/ holds pages for commands that no longer exist: {REGEN}"
    );
    let root = String::from_utf8_lossy(&pages[0].1).into_owned();
    assert_eq!(pages[0].0, "fleetctl.1");
    for line in fleetctl::exit::EXIT_CODES_HELP.lines().skip(1) {
        let code = line.split_whitespace().next().unwrap();
        assert!(
            root.contains(&format!("{code}  ")),
            "fleetctl.1 lacks exit code {code}"
        );
    }
    assert!(
        root.contains("no active node"),
        "fleetctl.1 lacks the exit-code table"
    );
}
