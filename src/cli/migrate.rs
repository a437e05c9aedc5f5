//! `fleetctl migrate --from OLD.yaml --to NEW.yaml`: copy sessions, API key usage and fleet
//! data from the backends one config names to those another names, resumably, and verify.
//!
//! This file reads the flags, draws the progress bars and prints the result; the copy, the
//! checkpoint and the checksums are `crate::migrate`'s.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::{Globals, OutputFormat};
use crate::exit::ExitCode;
use crate::migrate::{self, KEYSPACES, Keyspace, Progress, Side, State, Verification};

/// `fleetctl migrate --help`: the subcommand's variant in `cli::Command` shows it (a
/// variant's doc comment would otherwise replace the struct's).
pub const LONG_ABOUT: &str = "\
Copy sessions, API key usage and fleet data to the backends of another config.

Copies, in batches, from the stores the --from config names to those the --to config names: \
login sessions (with their times and remaining lifetime, so nobody is logged out), the last use \
of every API key, and every machine with its latest report and its whole history. Records are \
opened with the --from config's key file and sealed with the --to config's \
(security.encryption_key_file).

Every write is an idempotent merge (the newer machine record and session win; per history \
bucket the rollup with more samples wins), so running migrate again, for example after the \
nodes switched to the new config, picks up what landed on the old stores meanwhile and never \
double-counts. After every batch a checkpoint goes to --state; a run that was interrupted \
(even by kill -9) resumes from it. A completed state makes the next run a fresh pass.

The node registry is deliberately NOT copied: its timestamps are on the old backend's clock, \
and live nodes register again on the new backend within one heartbeat.

At the end (or alone with --verify-only) both sides are compared per keyspace by count and \
SHA-256 over the records sorted by id. See docs/migration.md for moving a live cluster.";

/// Copy sessions, API key usage and fleet data to the backends of another config (see
/// [`LONG_ABOUT`]).
#[derive(Debug, Args)]
#[command(after_help = MIGRATE_EXIT_CODES)]
pub struct Migrate {
    /// Config whose backends hold the data now (the one the old nodes run with)
    #[arg(long, value_name = "OLD.yaml")]
    pub from: PathBuf,

    /// Config whose backends receive the data
    #[arg(long, value_name = "NEW.yaml")]
    pub to: PathBuf,

    /// Records per batch (and per checkpoint)
    #[arg(long, value_name = "N", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub batch_size: u64,

    /// Checkpoint file [default: <NEW.yaml>.migrate-state.json next to the --to config]
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// Ignore an unfinished checkpoint and copy from the start
    #[arg(long)]
    pub restart: bool,

    /// Print how many records each keyspace would copy; write nothing
    #[arg(long, conflicts_with_all = ["verify_only", "restart"])]
    pub dry_run: bool,

    /// Only compare both sides (counts and checksums); copy nothing
    #[arg(long)]
    pub verify_only: bool,

    /// The --to stores already serve: newer records there are expected, so verification
    /// fails only for --from records missing or older on the --to side
    #[arg(long)]
    pub live: bool,
}

const MIGRATE_EXIT_CODES: &str = "\
Exit codes:
  0  copied (or verified) and both sides match
  1  runtime failure (backend unreachable, I/O error), verification found a difference, or
     records of the --from stores could not be read (they are named)
  2  usage error: missing or invalid config, both configs naming the same store, or a state
     file of another migration";

impl Migrate {
    pub async fn run(self, g: &Globals) -> anyhow::Result<ExitCode> {
        let started = Instant::now();
        let batch = self.batch_size as usize;
        migrate::refuse_same_file(&self.from, &self.to)?;
        let from_config = migrate::load_config(&self.from, "--from")?;
        let to_config = migrate::load_config(&self.to, "--to")?;
        migrate::refuse_same_store(&from_config, &to_config)?;
        let state_path = self
            .state
            .clone()
            .unwrap_or_else(|| State::default_path(&self.to));
        let from = Side::open(&self.from, from_config, true).await?;

        if self.dry_run {
            return dry_run(g, &from).await;
        }

        let (mut state, resumed) = if self.verify_only {
            // Nothing is copied or written; the checkpoint (when it is this pair's) only says
            // since when sessions missing on the --to side have ended there (for --live).
            let mut fresh = State::fresh(&self.from, &self.to);
            fresh.previous_pass_started_at =
                State::resume_or_fresh(&state_path, &self.from, &self.to)
                    .ok()
                    .and_then(|(s, _)| s.previous_pass_started_at);
            (fresh, false)
        } else if self.restart {
            (State::fresh(&self.from, &self.to), false)
        } else {
            State::resume_or_fresh(&state_path, &self.from, &self.to)?
        };
        let to = Side::open(&self.to, to_config, false).await?;
        let bars = Bars::new(g);

        if !self.verify_only {
            // Written before anything is copied, so an unwritable --state fails first.
            state.save(&state_path)?;
            if resumed {
                bars.note(&format!(
                    "resuming from {} at keyspace {}",
                    state_path.display(),
                    state.keyspace
                ));
            }
            let progress = |p: Progress| bars.update(p);
            migrate::copy(&from, &to, batch, &mut state, &state_path, &progress).await?;
        }
        bars.note("verifying: counting and checksumming both sides");
        let verification =
            migrate::verify(&from, &to, batch, state.previous_pass_started_at).await?;
        bars.clear();

        let elapsed = started.elapsed();
        let peak_rss = migrate::peak_rss_kib();
        let ok_keyspace = |v: &Verification| {
            if self.live { v.behind == 0 } else { v.equal }
        };
        let all_ok = verification.iter().all(ok_keyspace);
        let unreadable: Vec<String> = state
            .unreadable
            .iter()
            .chain(verification.iter().flat_map(|v| v.from.unreadable.iter()))
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        match g.output {
            OutputFormat::Json => {
                let copied: serde_json::Map<String, serde_json::Value> = KEYSPACES
                    .iter()
                    .map(|k| {
                        (
                            k.as_str().to_owned(),
                            json!(state.copied.get(k).unwrap_or(&0)),
                        )
                    })
                    .collect();
                crate::output::print_json(&json!({
                    "from": self.from,
                    "to": self.to,
                    "state": state_path,
                    "resumed": resumed,
                    "copied": if self.verify_only { json!(null) } else { json!(copied) },
                    "sessions_ended_on_destination": state.ended_on_destination,
                    "verify": verification,
                    "live": self.live,
                    "ok": all_ok && unreadable.is_empty(),
                    "unreadable": unreadable,
                    "elapsed_ms": elapsed.as_millis() as u64,
                    "peak_rss_kib": peak_rss,
                }))?;
            }
            OutputFormat::Table => {
                if !self.verify_only {
                    let copied: Vec<String> = KEYSPACES
                        .iter()
                        .map(|k| format!("{k} {}", state.copied.get(k).unwrap_or(&0)))
                        .collect();
                    println!("copied: {}", copied.join(", "));
                    if state.ended_on_destination > 0 {
                        println!(
                            "not copied: {} sessions the --to store no longer has (ended \
                             there since the previous pass: logout, revoke or expiry)",
                            state.ended_on_destination
                        );
                    }
                }
                println!("{}", verify_table(&verification, self.live));
                println!(
                    "elapsed {:.2} s, peak RSS {}",
                    elapsed.as_secs_f64(),
                    peak_rss.map_or_else(
                        || "unknown".to_owned(),
                        |k| format!("{:.1} MiB", k as f64 / 1024.0)
                    )
                );
            }
        }
        if !unreadable.is_empty() {
            let shown: Vec<&str> = unreadable.iter().take(20).map(String::as_str).collect();
            anyhow::bail!(
                "{} record(s) of the --from stores could not be read and were not copied \
                 (is a key missing from the --from config's encryption_key_file?):\n  {}{}",
                unreadable.len(),
                shown.join("\n  "),
                if unreadable.len() > shown.len() {
                    format!("\n  … and {} more", unreadable.len() - shown.len())
                } else {
                    String::new()
                }
            );
        }
        if !all_ok {
            let differing: Vec<&str> = verification
                .iter()
                .filter(|v| !ok_keyspace(v))
                .map(|v| v.keyspace.as_str())
                .collect();
            anyhow::bail!(
                "verification failed for {}: {}",
                differing.join(", "),
                if self.live {
                    "records of the --from stores are missing or older on the --to side; run \
                     migrate again"
                } else {
                    "the two sides differ; if the --to stores already serve, that is expected \
                     (check with --live), else run migrate again"
                }
            );
        }
        Ok(ExitCode::OK)
    }
}

async fn dry_run(g: &Globals, from: &Side) -> anyhow::Result<ExitCode> {
    let mut counts = Vec::new();
    for ks in KEYSPACES {
        counts.push((ks, migrate::count(from, ks).await?));
    }
    match g.output {
        OutputFormat::Json => {
            let map: serde_json::Map<String, serde_json::Value> = counts
                .iter()
                .map(|(k, n)| (k.as_str().to_owned(), json!(n)))
                .collect();
            crate::output::print_json(&json!({
                "dry_run": true,
                "from": from.path,
                "would_copy": map,
            }))?;
        }
        OutputFormat::Table => {
            let mut t = crate::output::table(&["KEYSPACE", "WOULD COPY"]);
            for (k, n) in &counts {
                t.add_row(vec![k.as_str().to_owned(), n.to_string()]);
            }
            println!("{t}");
            eprintln!("dry run: nothing was written");
        }
    }
    Ok(ExitCode::OK)
}

fn verify_table(verification: &[Verification], live: bool) -> comfy_table::Table {
    let mut t = crate::output::table(&[
        "KEYSPACE",
        "FROM",
        "TO",
        "FROM SHA-256",
        "TO SHA-256",
        "RESULT",
    ]);
    for v in verification {
        let result = match (v.equal, live, v.behind) {
            (true, _, _) => "match".to_owned(),
            (false, true, 0) => "to is ahead (ok with --live)".to_owned(),
            (false, _, behind) => format!("DIFFER ({behind} behind)"),
        };
        t.add_row(vec![
            v.keyspace.as_str().to_owned(),
            v.from.count.to_string(),
            v.to.count.to_string(),
            short(&v.from.sha256),
            short(&v.to.sha256),
            result,
        ]);
    }
    t
}

/// Enough of a checksum to compare by eye.
fn short(sha: &str) -> String {
    format!("{}…", &sha[..16.min(sha.len())])
}

/// One progress bar per keyspace on stderr; hidden with --output json, -q or when stderr is
/// not a terminal.
struct Bars {
    multi: MultiProgress,
    /// Bars are drawn; else notes go to stderr as plain lines (unless -q).
    visible: bool,
    quiet: bool,
    bars: Vec<(Keyspace, ProgressBar)>,
}

impl Bars {
    fn new(g: &Globals) -> Bars {
        let visible =
            g.output == OutputFormat::Table && !g.quiet && std::io::stderr().is_terminal();
        let multi = if visible {
            MultiProgress::with_draw_target(ProgressDrawTarget::stderr())
        } else {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        };
        let style = ProgressStyle::with_template("{msg:14} {bar:40} {pos}/{len} ({eta})")
            .expect("static template")
            .progress_chars("=> ");
        let bars = KEYSPACES
            .iter()
            .map(|k| {
                let bar = multi.add(ProgressBar::new(0));
                bar.set_style(style.clone());
                bar.set_message(k.as_str());
                (*k, bar)
            })
            .collect();
        Bars {
            multi,
            visible,
            quiet: g.quiet,
            bars,
        }
    }

    fn update(&self, p: Progress) {
        if let Some((_, bar)) = self.bars.iter().find(|(k, _)| *k == p.keyspace) {
            bar.set_length(p.total);
            bar.set_position(p.done);
            if p.finished {
                bar.finish();
            }
        }
    }

    fn note(&self, message: &str) {
        if self.visible {
            let _ = self.multi.println(message);
        } else if !self.quiet {
            eprintln!("{message}");
        }
    }

    fn clear(&self) {
        let _ = self.multi.clear();
    }
}
