//! The Debian package and the systemd unit: `cargo deb` builds a .deb from
//! `[package.metadata.deb]` whose contents (`dpkg-deb -c`) and control fields (`dpkg-deb -f`)
//! are what an operator expects; `systemd-analyze verify` accepts the unit without a single
//! warning; the config the package installs validates.
//!
//! To stay within the suite's time, the .deb is built with `--no-build` around the binary
//! this test run already compiled (copied to where cargo-deb looks for a release build);
//! `cargo deb` without flags builds the release binary the same way. cargo-deb is installed
//! with `cargo install cargo-deb --locked` when missing (scripts/test does it up front).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{fleetctl_bin, require_binary};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn ensure_cargo_deb() {
    let present = Command::new(cargo())
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return;
    }
    eprintln!("cargo-deb missing: cargo install cargo-deb --locked");
    let ok = Command::new(cargo())
        .args(["install", "cargo-deb", "--locked"])
        .status()
        .expect("run cargo install")
        .success();
    assert!(
        ok,
        "cargo install cargo-deb --locked failed; the packaging test needs it"
    );
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn cargo_deb_builds_a_package_with_binary_unit_docs_and_config() {
    ensure_cargo_deb();
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    std::fs::create_dir_all(target.join("release")).unwrap();
    std::fs::copy(fleetctl_bin(), target.join("release/fleetctl")).unwrap();
    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let printed = run(Command::new(cargo())
        .current_dir(repo())
        .env("CARGO_TARGET_DIR", &target)
        .args(["deb", "--no-build", "--fast", "-o"])
        .arg(&out_dir));
    let deb = Path::new(printed.trim().lines().last().unwrap()).to_path_buf();
    assert!(deb.is_file(), "cargo deb printed {printed:?}");
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        deb.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&format!("fleetctl_{version}-1_")),
        "{}",
        deb.display()
    );

    let dpkg_deb = require_binary("dpkg-deb", "dpkg");
    let listing = run(Command::new(&dpkg_deb).arg("-c").arg(&deb));
    let files: Vec<(String, String)> = listing
        .lines()
        .filter_map(|l| {
            let mode = l.split_whitespace().next()?.to_string();
            let path = l
                .split_whitespace()
                .last()?
                .trim_start_matches('.')
                .to_string();
            Some((mode, path))
        })
        .collect();
    let has = |path: &str, mode: &str| files.iter().any(|(m, p)| p == path && m == mode);
    for (path, mode) in [
        ("/usr/bin/fleetctl", "-rwxr-xr-x"),
        ("/usr/lib/systemd/system/fleetctl.service", "-rw-r--r--"),
        ("/etc/fleetctl/fleet.yaml", "-rw-r--r--"),
        ("/etc/fleetctl/fleet.yaml.example", "-rw-r--r--"),
        ("/usr/share/man/man1/fleetctl.1.gz", "-rw-r--r--"),
        ("/usr/share/man/man1/fleetctl-serve.1.gz", "-rw-r--r--"),
        (
            "/usr/share/man/man1/fleetctl-cluster-status.1.gz",
            "-rw-r--r--",
        ),
        (
            "/usr/share/bash-completion/completions/fleetctl",
            "-rw-r--r--",
        ),
        ("/usr/share/zsh/vendor-completions/_fleetctl", "-rw-r--r--"),
        (
            "/usr/share/fish/vendor_completions.d/fleetctl.fish",
            "-rw-r--r--",
        ),
        ("/usr/share/doc/fleetctl/README.md", "-rw-r--r--"),
        (
            "/usr/share/doc/fleetctl/CLUSTER_QUICK_START.md",
            "-rw-r--r--",
        ),
        (
            "/usr/share/doc/fleetctl/CLUSTER_SETUP_GUIDE.md",
            "-rw-r--r--",
        ),
        (
            "/usr/share/doc/fleetctl/prometheus/alerts.yml",
            "-rw-r--r--",
        ),
        ("/usr/share/doc/fleetctl/copyright", "-rw-r--r--"),
    ] {
        assert!(
            has(path, mode),
            "{path} ({mode}) missing from the .deb:\n{listing}"
        );
    }
    // Every committed man page is packaged.
    let pages = std::fs::read_dir(repo().join("man")).unwrap().count();
    let packaged = files
        .iter()
        .filter(|(_, p)| p.starts_with("/usr/share/man/man1/") && p.ends_with(".1.gz"))
        .count();
    assert_eq!(packaged, pages, "{listing}");

    let field = |name: &str| {
        run(Command::new(&dpkg_deb).arg("-f").arg(&deb).arg(name))
            .trim()
            .to_string()
    };
    assert_eq!(field("Package"), "fleetctl");
    assert_eq!(field("Version"), format!("{version}-1"));
    assert!(field("Depends").contains("libc6"), "{}", field("Depends"));
    assert!(field("Recommends").contains("redis-server"));
    // /etc files are conffiles: an upgrade never overwrites an operator's edits silently.
    let control = tmp.path().join("control");
    run(Command::new(&dpkg_deb).arg("-e").arg(&deb).arg(&control));
    let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap();
    assert!(
        conffiles.lines().any(|l| l == "/etc/fleetctl/fleet.yaml"),
        "{conffiles}"
    );

    // The packaged binary runs.
    let extracted = tmp.path().join("root");
    run(Command::new(&dpkg_deb).arg("-x").arg(&deb).arg(&extracted));
    let version_line = run(Command::new(extracted.join("usr/bin/fleetctl")).arg("--version"));
    assert_eq!(version_line.trim(), format!("fleetctl {version}"));
}

#[test]
fn systemd_unit_passes_systemd_analyze_without_warnings() {
    let analyze = require_binary("systemd-analyze", "systemd");
    let unit = std::fs::read_to_string(repo().join("packaging/fleetctl.service")).unwrap();
    for directive in [
        "Type=notify",
        "WatchdogSec=",
        "NotifyAccess=main",
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "StateDirectory=fleetctl",
        "ExecStart=/usr/bin/fleetctl serve --config /etc/fleetctl/fleet.yaml",
    ] {
        assert!(
            unit.lines().any(|l| l.starts_with(directive)),
            "unit lacks {directive}"
        );
    }
    // verify wants ExecStart's binary to exist: point it at the one this run built.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("fleetctl.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/fleetctl", fleetctl_bin().to_str().unwrap()),
    )
    .unwrap();
    // --man=no: the man page exists only once the package is installed.
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Unknown or misspelt directives are only warnings to systemd; here they fail.
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("fleetctl.service"))
        .collect();
    assert!(out.status.success() && complaints.is_empty(), "{stderr}");
}

#[test]
fn packaged_configs_validate() {
    let config = repo().join("packaging/fleet.yaml");
    let (code, out, err) =
        crate::support::node::fleetctl(&["config", "validate", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("valid (0 errors, 0 warnings)"), "{out}");
    let example = repo().join("config_cluster_example.yaml");
    let (code, out, err) =
        crate::support::node::fleetctl(&["config", "validate", example.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
}
