//! `fleetctl config validate|init|show`, `users hash-password` and `keys new`, run as a user
//! would run them: the real binary, real files, exit codes and output checked.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

use crate::support::fleetctl_bin;

fn fleetctl() -> Command {
    let mut cmd = Command::new(fleetctl_bin());
    for var in [
        "FLEETCTL_CONFIG",
        "FLEETCTL_OUTPUT",
        "FLEET_REDIS_PASSWORD",
        "FLEET_SESSIONS_REDIS_PASSWORD",
        "FLEET_STORAGE_REDIS_PASSWORD",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config_cluster_example.yaml")
}

/// Write `text` to a config file in a fresh directory; the directory lives as long as the guard.
fn config_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.yaml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn validate(text: &str) -> assert_cmd::assert::Assert {
    let (_dir, path) = config_file(text);
    fleetctl().args(["config", "validate"]).arg(&path).assert()
}

fn validate_json(text: &str) -> Vec<Value> {
    let (_dir, path) = config_file(text);
    let out = fleetctl()
        .args(["--output", "json", "config", "validate"])
        .arg(&path)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).expect("stdout is a JSON array")
}

#[test]
fn example_config_validates() {
    fleetctl()
        .args(["config", "validate"])
        .arg(example())
        .assert()
        .code(0)
        .stdout(predicate::str::contains("valid (0 errors, 0 warnings)"));
}

#[test]
fn misspelled_key_exits_2_with_line_column_and_suggestion() {
    validate("cluster:\n  enabled: true\n  heartbeat_intervall: 10\n")
        .code(2)
        .stdout(predicate::str::contains(
            "fleet.yaml:3:3: error: cluster.heartbeat_intervall: unknown key",
        ))
        .stdout(predicate::str::contains(
            "did you mean `heartbeat_interval`?",
        ));
}

#[test]
fn string_where_a_number_belongs() {
    validate("cluster:\n  heartbeat_interval: ten\n")
        .code(2)
        .stdout(predicate::str::contains(":2:23: error: cluster.heartbeat_interval: expected a number of seconds, found string \"ten\""));
}

#[test]
fn node_timeout_below_twice_heartbeat() {
    validate("cluster:\n  heartbeat_interval: 10\n  node_timeout: 15\n")
        .code(2)
        .stdout(predicate::str::contains(":3:17: error: cluster.node_timeout: node_timeout (15s) must be more than twice heartbeat_interval (10s)"));
}

#[test]
fn not_yaml_at_all() {
    validate("server: {port: 8768\ncluster: [\n\t@@@ ]]\n")
        .code(2)
        .stdout(predicate::str::contains("error: not valid YAML"));
    validate("just some words, not a config\n")
        .code(2)
        .stdout(predicate::str::contains(
            "top level of a config must be a mapping",
        ));
}

#[test]
fn unknown_enum_value_lists_the_options() {
    validate("sessions:\n  backend: memcached\n")
        .code(2)
        .stdout(predicate::str::contains(":2:12: error: sessions.backend: unknown value \"memcached\": expected one of `redis`, `sqlite`, `file`"));
}

#[test]
fn bad_duration_unit() {
    validate("sessions:\n  ttl: 10 minutes\n")
        .code(2)
        .stdout(predicate::str::contains(
            "sessions.ttl: unknown duration unit `minutes`",
        ));
}

#[test]
fn duplicate_key() {
    validate("server:\n  port: 1\n  port: 2\n")
        .code(2)
        .stdout(predicate::str::contains(
            ":3:3: error: server.port: duplicate key",
        ));
}

#[test]
fn secret_inline_and_file_together() {
    validate("cluster:\n  redis_password: pw\n  redis_password_file: /run/secrets/pw\n")
        .code(2)
        .stdout(predicate::str::contains(":3:24: error: cluster.redis_password_file: both `cluster.redis_password` and `cluster.redis_password_file` are set"));
}

#[test]
fn missing_secret_file() {
    validate("storage:\n  redis:\n    password_file: /nonexistent/fleet-redis-pw\n")
        .code(2)
        .stdout(predicate::str::contains(":3:20: error: storage.redis.password_file: cannot read secret file /nonexistent/fleet-redis-pw"));
}

#[test]
fn json_output_is_an_array_of_problems() {
    let problems = validate_json("clustr: {}\nserver:\n  port: 70000\n");
    assert_eq!(problems.len(), 2, "{problems:#?}");
    let p = &problems[1];
    let keys: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "severity", "file", "line", "column", "key", "message", "hint"
        ]
    );
    assert_eq!(p["severity"], "error");
    assert_eq!(
        (p["line"].as_u64(), p["column"].as_u64()),
        (Some(3), Some(9))
    );
    assert_eq!(p["key"], "server.port");
    assert!(
        p["hint"]
            .as_str()
            .unwrap()
            .contains("0 to let the OS pick any free port")
    );
    assert_eq!(problems[0]["hint"], "did you mean `cluster`?");
    assert!(validate_json(&std::fs::read_to_string(example()).unwrap()).is_empty());
}

#[test]
fn warnings_only_exit_0() {
    validate("cluster:\n  enabled: true\n  backend: file\n")
        .code(0)
        .stdout(predicate::str::contains(":3:12: warning: cluster.backend: cluster mode with the `file` backend works on one host only"))
        .stdout(predicate::str::contains("sessions.backend: sessions in `sqlite` cannot be shared across hosts"))
        .stdout(predicate::str::contains("valid (0 errors,"));
}

#[test]
fn every_command_gets_the_same_config_errors() {
    let (_dir, path) = config_file("cluster:\n  heartbeat_intervall: 10\n");
    fleetctl()
        .arg("--config")
        .arg(&path)
        .args(["config", "show"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with(
            "fleetctl: error: invalid config (1 error):",
        ))
        .stderr(predicate::str::contains(
            "fleet.yaml:2:3: error: cluster.heartbeat_intervall: unknown key",
        ));
}

#[test]
fn show_prints_the_effective_config_with_secrets_redacted() {
    let (dir, path) = config_file(
        "cluster:\n  redis_password_file: pw.txt\nsessions:\n  redis: {password: inline-secret}\n",
    );
    std::fs::write(dir.path().join("pw.txt"), "file-secret\n").unwrap();
    let out = fleetctl()
        .current_dir(dir.path())
        .env("FLEET_STORAGE_REDIS_PASSWORD", "env-secret")
        .arg("--config")
        .arg(&path)
        .args(["--output", "json", "config", "show"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    for secret in ["file-secret", "inline-secret", "env-secret"] {
        assert!(!stdout.contains(secret), "{secret} leaked: {stdout}");
    }
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["cluster"]["redis_password"], "***");
    assert_eq!(v["sessions"]["redis"]["password"], "***");
    assert_eq!(v["storage"]["redis"]["password"], "***");
    assert_eq!(v["server"]["port"], 8768, "defaults are filled in");
    // The plain-text password is warned about on stderr, never on stdout.
    assert!(String::from_utf8_lossy(&out.stderr).contains("plain text"));

    fleetctl()
        .arg("--config")
        .arg(example())
        .args(["config", "show"])
        .assert()
        .success()
        .stdout(predicate::str::contains("heartbeat_interval: 10s"))
        .stdout(
            predicate::str::contains("password_hash: '***'")
                .or(predicate::str::contains("password_hash: \"***\"")),
        );
}

#[test]
fn init_refuses_to_overwrite_without_force() {
    let (_dir, path) = config_file("server: {port: 1}\n");
    fleetctl()
        .args(["config", "init"])
        .arg(&path)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "already exists; use --force to overwrite it",
        ));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "server: {port: 1}\n"
    );
}

#[test]
fn hash_password_from_stdin_verifies_with_argon2() {
    let out = fleetctl()
        .args(["users", "hash-password", "--stdin"])
        .write_stdin("s3cret pass\n")
        .output()
        .unwrap();
    assert!(out.status.success());
    let phc = String::from_utf8(out.stdout).unwrap();
    let phc = phc.trim_end();
    assert!(phc.starts_with("$argon2id$"), "{phc}");
    assert!(fleetctl::credentials::verify_password(phc, "s3cret pass"));
    assert!(!fleetctl::credentials::verify_password(
        phc,
        "s3cret pass\n"
    ));

    fleetctl()
        .args(["users", "hash-password", "--stdin"])
        .write_stdin("\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("empty password"));
}

#[test]
fn keys_new_prints_a_key_whose_sha256_is_the_entry() {
    for (kind, prefix, section) in [
        ("agent", "fleet_", "auth.api_keys"),
        ("admin", "fleetadm_", "auth.admin_tokens"),
    ] {
        let out = fleetctl()
            .args([
                "--output", "json", "keys", "new", "--name", "web-tier", "--kind", kind,
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let key = v["key"].as_str().unwrap();
        assert!(key.starts_with(prefix), "{key}");
        assert_eq!(v["sha256"], fleetctl::credentials::sha256_hex(key));
        assert_eq!(v["config_section"], section);
        assert_eq!(
            v["entry"].as_str().unwrap(),
            format!(
                "- {{ name: web-tier, sha256: {} }}",
                v["sha256"].as_str().unwrap()
            )
        );
    }
    let out = fleetctl()
        .args(["keys", "new", "--name", "db"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let key = text.lines().find(|l| l.starts_with("fleet_")).unwrap();
    assert!(text.contains(&format!(
        "- {{ name: db, sha256: {} }}",
        fleetctl::credentials::sha256_hex(key)
    )));
    fleetctl()
        .args(["keys", "new", "--name", "a b"])
        .assert()
        .code(2);
}

#[test]
fn completions_print_a_script_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        fleetctl()
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(predicate::str::contains("fleetctl"));
    }
}

/// The `config init` wizard, driven through a real pseudo-terminal as a person would: cluster
/// mode on Redis, a custom host and port, an admin with a hidden password typed twice.
#[test]
fn init_wizard_writes_a_valid_cluster_config() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wizard.yaml");
    let mut cmd = std::process::Command::new(crate::support::fleetctl_bin());
    cmd.args(["config", "init"]).arg(&file).env("TERM", "xterm");
    let mut p = rexpect::session::spawn_command(cmd, Some(20_000)).expect("spawn under a pty");
    let step = |p: &mut rexpect::session::PtySession, prompt: &str, keys: &str| {
        p.exp_string(prompt)
            .unwrap_or_else(|e| panic!("waiting for {prompt:?}: {e}"));
        p.send(keys).unwrap();
        p.flush().unwrap();
    };
    // Down arrow then Enter: the second item, cluster mode.
    step(&mut p, "Mode", "\x1b[B\r");
    step(&mut p, "Backend", "\r");
    step(&mut p, "Redis host", "redis.internal\r");
    step(&mut p, "Redis port", "6380\r");
    step(&mut p, "First admin username", "ops\r");
    step(&mut p, "Password for ops", "wizard-secret-1\r");
    step(&mut p, "Repeat the password", "wizard-secret-1\r");
    p.exp_eof().expect("the wizard finishes");

    let text = std::fs::read_to_string(&file).expect("the wizard wrote the file");
    assert!(
        !text.contains("wizard-secret-1"),
        "the password itself is never written"
    );
    let (config, warnings) = fleetctl::config::Config::load_str(&text, &file, &|_| None)
        .expect("the written config validates");
    assert!(config.cluster.enabled);
    assert_eq!(config.cluster.backend, fleetctl::config::BackendKind::Redis);
    assert_eq!(
        (
            config.cluster.redis_host.as_str(),
            config.cluster.redis_port
        ),
        ("redis.internal", 6380)
    );
    let user = &config.auth.users[0];
    assert_eq!(user.username, "ops");
    assert!(fleetctl::credentials::verify_password(
        &user.password_hash,
        "wizard-secret-1"
    ));
    assert!(
        warnings.iter().all(|w| !w.message.contains("plain text")),
        "{warnings:?}"
    );
}

/// `users hash-password` without `--stdin` prompts twice with echo off and prints the hash.
#[test]
fn hash_password_prompts_twice_without_echo() {
    let mut cmd = std::process::Command::new(crate::support::fleetctl_bin());
    cmd.args(["users", "hash-password"]).env("TERM", "xterm");
    let mut p = rexpect::session::spawn_command(cmd, Some(20_000)).expect("spawn under a pty");
    p.exp_string("assword").unwrap();
    p.send("typed-secret\r").unwrap();
    p.flush().unwrap();
    p.exp_string("epeat").unwrap();
    p.send("typed-secret\r").unwrap();
    p.flush().unwrap();
    let rest = p.exp_eof().unwrap();
    assert!(!rest.contains("typed-secret"), "no echo: {rest:?}");
    let phc = rest
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("$argon2id$"))
        .expect("a PHC line");
    assert!(fleetctl::credentials::verify_password(phc, "typed-secret"));
}
