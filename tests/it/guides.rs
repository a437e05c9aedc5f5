//! The operator guides cannot rot: every ```` ```sh test ```` block of
//! docs/CLUSTER_QUICK_START.md and docs/CLUSTER_SETUP_GUIDE.md runs, in order, in one bash
//! script per guide, against real processes (redis-server, `fleetctl serve` nodes, haproxy,
//! nginx, promtool) that the blocks themselves start. A ```` ```text output ```` block right
//! after a tested block is what the reader should see: each of its lines must appear in that
//! block's output, `…` standing for any text.
//!
//! What the test substitutes, and nothing else: the ports and the working directory (the
//! guides read `REDIS_PORT`, `NODE1_PORT`…, `LB_PORT`, `FLEET_DIR` with defaults for a
//! reader's machine; the test exports free ports and a temp dir), `FLEET_DOCS` (the docs
//! folder of this checkout instead of /usr/share/doc/fleetctl) and `PATH` (this build's
//! `fleetctl` first, so the guides' "install fleetctl unless present" step finds it). The
//! scripts run in their own process group, which the test kills when it ends.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{fleetctl_bin, free_port, require_binary};

/// A fenced block the guide asks to be run, and the output it promises.
#[derive(Debug)]
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    script: String,
    expected: Option<String>,
}

/// The tested blocks of a Markdown text, each with the `text output` block that follows it.
fn tested_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut lines = markdown.lines().enumerate().peekable();
    // Whether the last fenced block was a tested one (an output block may follow it, with
    // only prose or blank lines in between).
    let mut last_tested = false;
    while let Some((i, line)) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let info = info.trim();
        let mut body = String::new();
        for (_, l) in lines.by_ref() {
            if l.trim_end() == "```" {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        let words: Vec<&str> = info.split_whitespace().collect();
        if words == ["sh", "test"] {
            blocks.push(Block {
                line: i + 1,
                script: body,
                expected: None,
            });
            last_tested = true;
        } else if words == ["text", "output"] {
            let block = blocks
                .last_mut()
                .filter(|_| last_tested)
                .unwrap_or_else(|| {
                    panic!(
                        "line {}: an output block must follow a `sh test` block",
                        i + 1
                    )
                });
            assert!(
                block.expected.is_none(),
                "line {}: two output blocks",
                i + 1
            );
            block.expected = Some(body);
            last_tested = false;
        } else {
            last_tested = false;
        }
    }
    blocks
}

/// Whether one line of `actual` contains the pieces of `pattern` between its `…` wildcards,
/// in order.
fn line_matches(pattern: &str, actual: &str) -> bool {
    let parts: Vec<&str> = pattern
        .trim()
        .split('…')
        .filter(|p| !p.is_empty())
        .collect();
    actual.lines().any(|l| {
        let mut rest = l;
        for part in &parts {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        true
    })
}

/// Run every tested block of `guide`; returns the time it took.
fn run_guide(guide: &str, extra_env: &[(&str, String)], budget: Duration) -> Duration {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(repo.join("docs").join(guide)).unwrap();
    let blocks = tested_blocks(&text);
    assert!(
        blocks.len() >= 5,
        "{guide}: only {} tested blocks",
        blocks.len()
    );

    let work = tempfile::tempdir().unwrap();
    {
        // nginx workers run as `nobody` when tests run as root: let them in.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out_dir = work.path().join(".block-output");
    std::fs::create_dir(&out_dir).unwrap();
    let mut script = String::from("set -euo pipefail\n");
    for (n, b) in blocks.iter().enumerate() {
        script.push_str(&format!(
            "echo '>>> {guide}:{line}' >&2\n{{\n{body}\n}} > '{out}/{n}.txt' 2>&1 < /dev/null\n",
            line = b.line,
            body = b.script,
            out = out_dir.display(),
        ));
    }
    let script_path = work.path().join("guide.sh");
    std::fs::write(&script_path, &script).unwrap();

    let bin_dir = fleetctl_bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}:/usr/sbin:/sbin",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let fleet_dir = work.path().join("fleet");
    let mut cmd = Command::new(require_binary("bash", "bash"));
    cmd.arg(&script_path)
        .current_dir(&repo)
        .env("PATH", path)
        .env("FLEET_DIR", &fleet_dir)
        .env("FLEET_DOCS", repo.join("docs"))
        .env("REDIS_PORT", free_port().to_string())
        .env("NODE1_PORT", free_port().to_string())
        .env("NODE2_PORT", free_port().to_string())
        .env("NODE3_PORT", free_port().to_string())
        .env("LB_PORT", free_port().to_string())
        .env_remove("FLEETCTL_CONFIG")
        .env_remove("FLEETCTL_OUTPUT")
        .env_remove("FLEETCTL_SERVER")
        .env_remove("FLEETCTL_TOKEN")
        .env_remove("RUST_LOG")
        .envs(extra_env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let t0 = Instant::now();
    let child = cmd.spawn().expect("spawn bash");
    let pgid = child.id();
    // Whatever happens, the processes the guide started go with the test.
    let _group = KillGroup(pgid);
    let out = wait_with_timeout(child, budget);
    let elapsed = t0.elapsed();

    let block_output = |n: usize| std::fs::read_to_string(out_dir.join(format!("{n}.txt"))).ok();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        // The failing block is the last one announced on stderr.
        let failed = stderr.matches(">>> ").count().saturating_sub(1);
        let logs = logs_of(&fleet_dir);
        panic!(
            "{guide}: the block at line {} failed ({}); its output:\n{}\n--- stderr:\n{stderr}\n--- logs:\n{logs}",
            blocks.get(failed).map_or(0, |b| b.line),
            out.status,
            block_output(failed).unwrap_or_default(),
        );
    }
    // Every broken promise at once, so one run shows all that needs fixing.
    let mut broken = Vec::new();
    for (n, b) in blocks.iter().enumerate() {
        let Some(expected) = &b.expected else {
            continue;
        };
        let actual = block_output(n).unwrap_or_default();
        for want in expected.lines().filter(|l| !l.trim().is_empty()) {
            if !line_matches(want, &actual) {
                broken.push(format!(
                    "{guide}:{}: the output block promises {want:?}, but the commands printed:\n{actual}",
                    b.line
                ));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
    elapsed
}

/// Kills a process group on drop (SIGTERM, then SIGKILL).
struct KillGroup(u32);

impl Drop for KillGroup {
    fn drop(&mut self) {
        let group = format!("-{}", self.0);
        let quiet = |sig: &str| {
            // The group is usually gone already: the guides clean up after themselves.
            let _ = Command::new("kill")
                .args([sig, "--", &group])
                .stderr(Stdio::null())
                .status();
        };
        quiet("-TERM");
        std::thread::sleep(Duration::from_millis(300));
        quiet("-KILL");
    }
}

fn wait_with_timeout(mut child: std::process::Child, budget: Duration) -> std::process::Output {
    let deadline = Instant::now() + budget;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let out = child.wait_with_output().unwrap();
            panic!(
                "guide script still running after {budget:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The tails of the logs the guide wrote, for a failure message.
fn logs_of(dir: &Path) -> String {
    let mut out = String::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
    {
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        out.push_str(&format!("== {}\n", p.display()));
        for l in tail.into_iter().rev() {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

#[test]
fn quick_start_runs_as_written() {
    let took = run_guide("CLUSTER_QUICK_START.md", &[], Duration::from_secs(150));
    println!(
        "[measure] CLUSTER_QUICK_START.md ran in {:.1}s",
        took.as_secs_f64()
    );
}

#[test]
fn setup_guide_runs_as_written() {
    require_binary("promtool", "prometheus");
    let took = run_guide("CLUSTER_SETUP_GUIDE.md", &[], Duration::from_secs(150));
    println!(
        "[measure] CLUSTER_SETUP_GUIDE.md ran in {:.1}s",
        took.as_secs_f64()
    );
}

#[test]
fn the_extractor_finds_blocks_and_their_output() {
    let md = "intro\n```sh test\necho hi\n```\nprose\n\n```text output\nhi\n```\n```sh\nnot run\n```\n```text output\n";
    let blocks = tested_blocks(&md[..md.len() - "```text output\n".len()]);
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].line, 2);
    assert_eq!(blocks[0].script, "echo hi\n");
    assert_eq!(blocks[0].expected.as_deref(), Some("hi\n"));
    assert!(line_matches(
        "FLEET OK - 3/3 … leader node-…",
        "FLEET OK - 3/3 nodes active, leader node-2 | x"
    ));
    assert!(!line_matches("FLEET OK - 3/3", "FLEET WARNING - 2/3"));
    assert!(line_matches("200 served by node-…", "200 served by node-3"));
    assert!(!line_matches("exit code 3", "exit code 0"));
}
