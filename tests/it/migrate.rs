//! `fleetctl migrate` with real components: SQLite in a temp dir as the old backend, a private
//! redis-server as the new one, the real binary doing the copy, and real `fleetctl serve`
//! nodes to show a user logged in before the move is still logged in after it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleetctl::config::{BackendKind, Secs, SessionsConfig, StorageConfig};
use fleetctl::fleet::{self, AtRest};
use fleetctl::sessions::{self, Session, SessionData, SessionInfo};
use fleetctl::store::crypto::Keyring;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::fleet_store::report;
use crate::support::node::{ADMIN_TOKEN, Node, sha256_hex};
use crate::support::{RedisServer, fleetctl_bin};

pub(crate) const PASSWORD: &str = "fleet-test-password";
/// Key-file lines (fixed test keys): the old config seals with A, the new one with B.
pub(crate) const KEY_A: &str = "ka:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
pub(crate) const KEY_B: &str = "kb:HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4=";

/// An old config on SQLite (sealed with key A) and a new one on a private Redis (key B).
struct Env {
    dir: tempfile::TempDir,
    redis: RedisServer,
    old: PathBuf,
    new: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let redis = RedisServer::start();
        let d = dir.path();
        for (name, key) in [("old.keys", KEY_A), ("new.keys", KEY_B)] {
            let path = d.join(name);
            std::fs::write(&path, format!("{key}\n")).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
        }
        let hash = fleetctl::credentials::hash_password(PASSWORD).unwrap();
        let auth = format!(
            "auth:\n  users:\n    - {{ username: admin, password_hash: \"{hash}\" }}\n  \
             admin_tokens:\n    - {{ name: tests, sha256: \"{}\" }}\n",
            sha256_hex(ADMIN_TOKEN)
        );
        let old = d.join("old.yaml");
        std::fs::write(
            &old,
            format!(
                "server:\n  drain_timeout: 1\n\
                 cluster:\n  backend: sqlite\n  state_path: {d}/old-cluster\n\
                 sessions:\n  backend: sqlite\n  db_path: {d}/old/sessions.db\n\
                 storage:\n  backend: sqlite\n  db_path: {d}/old/fleet.db\n\
                 security:\n  encryption_key_file: {d}/old.keys\n{auth}",
                d = d.display()
            ),
        )
        .unwrap();
        let new = d.join("new.yaml");
        std::fs::write(
            &new,
            format!(
                "server:\n  drain_timeout: 1\n\
                 cluster:\n  backend: sqlite\n  state_path: {d}/new-cluster\n\
                 sessions:\n  backend: redis\n  redis: {{ host: 127.0.0.1, port: {p}, db: 1 }}\n\
                 storage:\n  backend: redis\n  redis: {{ host: 127.0.0.1, port: {p}, db: 2 }}\n  \
                 encrypt_reports: true\n\
                 security:\n  encryption_key_file: {d}/new.keys\n{auth}",
                d = d.display(),
                p = redis.port
            ),
        )
        .unwrap();
        std::fs::create_dir_all(d.join("old")).unwrap();
        Env {
            dir,
            redis,
            old,
            new,
        }
    }

    fn keyring(&self, key: &str) -> AtRest {
        AtRest::new(Arc::new(
            Keyring::parse(key, Path::new("test.keys")).unwrap(),
        ))
    }

    fn old_sessions_config(&self) -> SessionsConfig {
        SessionsConfig {
            backend: BackendKind::Sqlite,
            db_path: self.dir.path().join("old/sessions.db"),
            ttl: Secs::from_secs(3600),
            ..SessionsConfig::default()
        }
    }

    fn old_storage_config(&self) -> StorageConfig {
        StorageConfig {
            backend: BackendKind::Sqlite,
            db_path: self.dir.path().join("old/fleet.db"),
            ..StorageConfig::default()
        }
    }

    /// `machines` machines with `reports` reports each (spread over the last 40 minutes, so
    /// every tier has points) and `users` sessions with data, on the old stores.
    async fn seed(&self, machines: usize, reports: usize, users: usize) {
        let fleet = fleet::open_with(&self.old_storage_config(), self.keyring(KEY_A))
            .await
            .unwrap();
        let now = fleet.now().await.unwrap();
        for r in 0..reports {
            let t = now - 40 * 60_000 + (r as i64) * (40 * 60_000 / reports as i64);
            for m in 0..machines {
                let key = if m % 2 == 0 { "web-tier" } else { "db-tier" };
                let cpu = (m * 7 + r * 3) as f64 / 3.0;
                fleet
                    .record(&report(&format!("m-{m:04}"), t, cpu), key)
                    .await
                    .unwrap();
            }
        }
        let store = sessions::open_with(&self.old_sessions_config(), self.keyring(KEY_A))
            .await
            .unwrap();
        let mut data = SessionData::new();
        data.insert("theme".into(), serde_json::json!("dark"));
        for i in 0..users {
            store
                .start(&format!("user{i}"), data.clone())
                .await
                .unwrap();
        }
        // And some written as a migration writes them: times as they are.
        let now_ms = fleetctl::store::time::now_millis();
        let records = (0..users)
            .map(|i| SessionInfo {
                id_hash: hex::encode(Sha256::digest(format!("imported-{i}"))),
                session: Session {
                    user: format!("old{i}"),
                    created_at: now_ms - 600_000,
                    last_seen: now_ms - 60_000,
                    expires_at: now_ms + 1_800_000,
                    csrf_token: format!("csrf-{i}"),
                    data: data.clone(),
                },
            })
            .collect();
        store.import(records).await.unwrap();
    }

    fn migrate(&self, extra: &[&str]) -> (i32, Value, String) {
        let mut args = vec![
            "--output".to_string(),
            "json".into(),
            "migrate".into(),
            "--from".into(),
            self.old.display().to_string(),
            "--to".into(),
            self.new.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let out = Command::new(fleetctl_bin())
            .args(&args)
            .env_remove("FLEETCTL_CONFIG")
            .env_remove("FLEETCTL_OUTPUT")
            .output()
            .expect("run fleetctl migrate");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        (out.status.code().unwrap_or(-1), json, stderr)
    }

    fn state_file(&self) -> PathBuf {
        self.dir.path().join("new.yaml.migrate-state.json")
    }

    fn redis_keys(&self, db: u8) -> usize {
        let client =
            ::redis::Client::open(format!("redis://127.0.0.1:{}/{db}", self.redis.port)).unwrap();
        let mut c = client.get_connection().unwrap();
        ::redis::cmd("DBSIZE").query::<usize>(&mut c).unwrap()
    }
}

/// (keyspace, from count, to count, from sha, to sha, equal) per verification row.
pub(crate) fn checksums(json: &Value) -> Vec<(String, u64, u64, String, String, bool)> {
    json["verify"]
        .as_array()
        .unwrap_or_else(|| panic!("no verify in {json}"))
        .iter()
        .map(|v| {
            (
                v["keyspace"].as_str().unwrap().to_owned(),
                v["from"]["count"].as_u64().unwrap(),
                v["to"]["count"].as_u64().unwrap(),
                v["from"]["sha256"].as_str().unwrap().to_owned(),
                v["to"]["sha256"].as_str().unwrap().to_owned(),
                v["equal"].as_bool().unwrap(),
            )
        })
        .collect()
}

pub(crate) fn assert_all_equal(json: &Value, machines: u64, sessions: u64) {
    let rows = checksums(json);
    let want = [
        ("sessions", sessions),
        ("api_key_usage", 2),
        ("machines", machines),
    ];
    assert_eq!(rows.len(), 3, "{json}");
    for ((name, from, to, a, b, equal), (want_name, want_n)) in rows.iter().zip(want) {
        assert_eq!(name, want_name);
        assert_eq!((*from, *to), (want_n, want_n), "{name} counts: {json}");
        assert_eq!(a, b, "{name} checksums");
        assert!(equal, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_to_redis_copies_everything_and_a_rerun_changes_nothing() {
    let env = Env::new();
    env.seed(300, 8, 40).await;

    let (code, first, stderr) = env.migrate(&[]);
    assert_eq!(code, 0, "{stderr}\n{first}");
    assert_all_equal(&first, 300, 80);
    assert_eq!(first["copied"]["machines"], 300, "{first}");
    assert_eq!(first["copied"]["sessions"], 80, "{first}");
    assert_eq!(first["ok"], true);
    assert!(first["peak_rss_kib"].as_u64().unwrap() > 0);
    eprintln!(
        "migrated 300 machines x 8 reports and 80 sessions in {} ms, peak RSS {} KiB",
        first["elapsed_ms"], first["peak_rss_kib"]
    );
    let state: Value = serde_json::from_slice(&std::fs::read(env.state_file()).unwrap()).unwrap();
    assert_eq!(state["done"], true, "{state}");

    // The new store reads back what the old one holds, through the new keyring.
    let old = fleet::open_with(&env.old_storage_config(), env.keyring(KEY_A))
        .await
        .unwrap();
    let new_storage = StorageConfig {
        backend: BackendKind::Redis,
        redis: fleetctl::config::RedisConfig {
            host: "127.0.0.1".into(),
            port: env.redis.port,
            db: Some(2),
            ..Default::default()
        },
        encrypt_reports: true,
        ..StorageConfig::default()
    };
    let new = fleet::open_with(&new_storage, env.keyring(KEY_B))
        .await
        .unwrap();
    let (a, b) = (
        old.machine("m-0007").await.unwrap().unwrap(),
        new.machine("m-0007").await.unwrap().unwrap(),
    );
    assert_eq!(a, b);
    assert_eq!(
        old.history_len("m-0007").await.unwrap(),
        new.history_len("m-0007").await.unwrap()
    );
    let now = new.now().await.unwrap();
    for tier in fleet::TIERS {
        assert_eq!(
            old.history("m-0007", tier, now - 7_200_000, now)
                .await
                .unwrap(),
            new.history("m-0007", tier, now - 7_200_000, now)
                .await
                .unwrap(),
            "tier {}",
            tier.name
        );
    }

    // Twice = once: same checksums, nothing double-counted.
    let (code, second, stderr) = env.migrate(&[]);
    assert_eq!(code, 0, "{stderr}\n{second}");
    assert_eq!(checksums(&first), checksums(&second));
    assert_eq!(second["resumed"], false, "a done state starts a fresh pass");

    let (code, verified, stderr) = env.migrate(&["--verify-only"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(checksums(&first), checksums(&verified));
    assert_eq!(verified["copied"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_halfway_it_resumes_from_the_checkpoint() {
    let env = Env::new();
    env.seed(300, 4, 10).await;
    let mut child = Command::new(fleetctl_bin())
        .args(["--output", "json", "migrate", "--batch-size", "3", "--from"])
        .arg(&env.old)
        .arg("--to")
        .arg(&env.new)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill -9 once the checkpoint shows the machines keyspace under way.
    let deadline = Instant::now() + Duration::from_secs(60);
    let killed_at = loop {
        assert!(Instant::now() < deadline, "no progress in the state file");
        assert!(
            child.try_wait().unwrap().is_none(),
            "migrate finished before it could be killed"
        );
        let state: Option<Value> = std::fs::read(env.state_file())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(s) = state
            && s["keyspace"] == "machines"
            && s["copied"]["machines"].as_u64().unwrap_or(0) >= 30
        {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            break s["copied"]["machines"].as_u64().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let state: Value = serde_json::from_slice(&std::fs::read(env.state_file()).unwrap()).unwrap();
    assert_eq!(state["done"], false, "{state}");
    assert!(killed_at < 300, "killed halfway, not at the end: {state}");

    let (code, json, stderr) = env.migrate(&["--batch-size", "50"]);
    assert_eq!(code, 0, "{stderr}\n{json}");
    assert_eq!(json["resumed"], true, "{json}");
    assert!(stderr.contains("resuming from"), "{stderr}");
    assert_all_equal(&json, 300, 20);

    // A fresh full run over the same data gives the same checksums.
    let (code, again, stderr) = env.migrate(&["--restart"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(checksums(&json), checksums(&again));
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_counts_and_writes_nothing() {
    let env = Env::new();
    env.seed(25, 2, 5).await;
    let (code, json, stderr) = env.migrate(&["--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["dry_run"], true);
    assert_eq!(json["would_copy"]["machines"], 25, "{json}");
    assert_eq!(json["would_copy"]["sessions"], 10, "{json}");
    assert_eq!(json["would_copy"]["api_key_usage"], 2, "{json}");
    assert_eq!(env.redis_keys(1), 0, "no session written");
    assert_eq!(env.redis_keys(2), 0, "no fleet data written");
    assert!(!env.state_file().exists(), "no state file");
}

/// Log in through the form; returns the `name=value` cookie pair.
async fn form_login(node: &Node) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let res = client
        .post(format!("{}/login", node.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("username=admin&password={PASSWORD}"))
        .send()
        .await
        .expect("POST /login");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let set = res.headers()[SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

async fn session_status(node: &Node, cookie: &str) -> (StatusCode, Value) {
    let res = reqwest::Client::new()
        .get(format!("{}/api/session", node.url()))
        .header(COOKIE, cookie)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("GET /api/session");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_logged_in_on_the_old_backend_stays_logged_in_on_the_new() {
    let env = Env::new();
    env.seed(3, 2, 2).await;
    assert_cookie_survives_the_move(&env.old, &env.new, || env.migrate(&[])).await;
}

/// Log in on a node serving `old`, stop it, run `migrate`, start a node serving `new`: the
/// cookie from before the move still names the same session there.
pub(crate) async fn assert_cookie_survives_the_move(
    old: &Path,
    new: &Path,
    migrate: impl FnOnce() -> (i32, Value, String),
) {
    let mut old_node = Node::start(old, "old-node");
    let cookie = form_login(&old_node).await;
    let (status, before) = session_status(&old_node, &cookie).await;
    assert_eq!(status, StatusCode::OK, "{before}");
    old_node.kill9();

    let (code, json, stderr) = migrate();
    assert_eq!(code, 0, "{stderr}\n{json}");

    let new_node = Node::start(new, "new-node");
    let (status, after) = session_status(&new_node, &cookie).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the cookie from before the move: {after}"
    );
    assert_eq!(after["user"], before["user"], "{after}");
    assert_eq!(after["csrf_token"], before["csrf_token"], "{after}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_a_clear_error_with_exit_code_2() {
    let env = Env::new();
    env.seed(2, 1, 1).await;

    // A missing config file.
    let missing = env.dir.path().join("nope.yaml");
    let out = Command::new(fleetctl_bin())
        .args(["migrate", "--from"])
        .arg(&env.old)
        .arg("--to")
        .arg(&missing)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("nope.yaml") && stderr.contains("no such config file"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    // An invalid one: the loader's file:line:col error.
    let invalid = env.dir.path().join("invalid.yaml");
    std::fs::write(&invalid, "sessions:\n  backend: redis\n  tll: 5\n").unwrap();
    let (code, _, stderr) = {
        let out = Command::new(fleetctl_bin())
            .args(["migrate", "--from"])
            .arg(&env.old)
            .arg("--to")
            .arg(&invalid)
            .output()
            .unwrap();
        (
            out.status.code(),
            (),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("invalid.yaml:3:"), "{stderr}");

    // The same store on both sides, under two file names.
    let same = env.dir.path().join("same.yaml");
    std::fs::copy(&env.old, &same).unwrap();
    let out = Command::new(fleetctl_bin())
        .args(["migrate", "--from"])
        .arg(&env.old)
        .arg("--to")
        .arg(&same)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("same sessions store"), "{stderr}");

    // One file as both.
    let (code, _, stderr) = {
        let out = Command::new(fleetctl_bin())
            .args(["migrate", "--from"])
            .arg(&env.old)
            .arg("--to")
            .arg(env.dir.path().join(".").join("old.yaml"))
            .output()
            .unwrap();
        (
            out.status.code(),
            (),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("are the same config file"), "{stderr}");

    // A state file of another migration.
    let state = env.dir.path().join("other.state.json");
    let mut foreign = fleetctl::migrate::State::fresh(&same, &env.new);
    foreign.keyspace = fleetctl::migrate::Keyspace::Machines;
    foreign.save(&state).unwrap();
    let (code, _, stderr) = env.migrate(&["--state", state.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("belongs to the migration from"), "{stderr}");
    assert_eq!(env.redis_keys(2), 0, "nothing copied");
    // --restart overrides it.
    let (code, json, stderr) = env.migrate(&["--state", state.to_str().unwrap(), "--restart"]);
    assert_eq!(code, 0, "{stderr}\n{json}");

    // A zero batch size is a usage error, from clap.
    let (code, _, stderr) = env.migrate(&["--batch-size", "0"]);
    assert_eq!(code, 2, "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn records_the_old_keyring_cannot_open_are_named_and_fail_the_run() {
    let env = Env::new();
    env.seed(4, 1, 2).await;
    // Seal one more machine with a key the old config does not list.
    let stranger = fleet::open_with(
        &StorageConfig {
            encrypt_reports: true,
            ..env.old_storage_config()
        },
        env.keyring(KEY_B),
    )
    .await
    .unwrap();
    let now = stranger.now().await.unwrap();
    stranger
        .record(&report("m-sealed-elsewhere", now, 1.0), "web-tier")
        .await
        .unwrap();
    let (code, json, stderr) = env.migrate(&[]);
    assert_eq!(code, 1, "{stderr}\n{json}");
    assert!(stderr.contains("m-sealed-elsewhere"), "{stderr}");
    assert!(
        stderr.contains("API key usage: stored API key name encrypted with key id kb"),
        "the key usage entry written under key B is named too: {stderr}"
    );
    assert!(stderr.contains("could not be read"), "{stderr}");
    assert_eq!(
        json["copied"]["machines"], 4,
        "the readable ones are copied: {json}"
    );
}
