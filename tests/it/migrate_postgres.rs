//! `fleetctl migrate` from Redis to PostgreSQL with real components: a private redis-server as
//! the old backend, a private PostgreSQL as the new one, the real binary doing the copy, and
//! real `fleetctl serve` nodes for the cookie made before the move. (SQLite to Redis, the
//! bad-input cases and the unreadable-record cases are in `migrate.rs`; the engine is the same.)

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleetctl::config::{BackendKind, RedisConfig, Secs, SessionsConfig, StorageConfig};
use fleetctl::fleet::{self, AtRest};
use fleetctl::sessions::{self, SessionData};
use fleetctl::store::crypto::Keyring;
use serde_json::Value;

use crate::fleet_store::report;
use crate::migrate::{
    KEY_A, KEY_B, PASSWORD, assert_all_equal, assert_cookie_survives_the_move, checksums,
};
use crate::support::node::{ADMIN_TOKEN, sha256_hex};
use crate::support::postgres::PgServer;
use crate::support::{RedisServer, fleetctl_bin};

/// An old config on a private Redis (sealed with key A), a new one on a private PostgreSQL
/// (key B).
struct Env {
    dir: tempfile::TempDir,
    redis: RedisServer,
    pg: PgServer,
    old: PathBuf,
    new: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let redis = RedisServer::start();
        let pg = PgServer::start();
        let d = dir.path();
        for (name, key) in [("old.keys", KEY_A), ("new.keys", KEY_B)] {
            let path = d.join(name);
            std::fs::write(&path, format!("{key}\n")).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
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
                 sessions:\n  backend: redis\n  redis: {{ host: 127.0.0.1, port: {p}, db: 1 }}\n\
                 storage:\n  backend: redis\n  redis: {{ host: 127.0.0.1, port: {p}, db: 2 }}\n\
                 security:\n  encryption_key_file: {d}/old.keys\n{auth}",
                d = d.display(),
                p = redis.port
            ),
        )
        .unwrap();
        let new = d.join("new.yaml");
        std::fs::write(
            &new,
            format!(
                "server:\n  drain_timeout: 1\n\
                 cluster:\n  backend: sqlite\n  state_path: {d}/new-cluster\n\
                 sessions:\n  backend: postgres\n{pg}\
                 storage:\n  backend: postgres\n{pg}  encrypt_reports: true\n\
                 security:\n  encryption_key_file: {d}/new.keys\n{auth}",
                d = d.display(),
                pg = pg.yaml(2)
            ),
        )
        .unwrap();
        Env {
            dir,
            redis,
            pg,
            old,
            new,
        }
    }

    fn keyring(&self, key: &str) -> AtRest {
        AtRest::new(Arc::new(
            Keyring::parse(key, Path::new("test.keys")).unwrap(),
        ))
    }

    fn redis_config(&self, db: i64) -> RedisConfig {
        RedisConfig {
            host: "127.0.0.1".into(),
            port: self.redis.port,
            db: Some(db),
            ..RedisConfig::default()
        }
    }

    /// `machines` machines with `reports` reports each over the last 40 minutes (every tier
    /// gets points) and `users` sessions, in the old Redis.
    async fn seed(&self, machines: usize, reports: usize, users: usize) {
        let storage = StorageConfig {
            backend: BackendKind::Redis,
            redis: self.redis_config(2),
            ..StorageConfig::default()
        };
        let fleet = fleet::open_with(&storage, self.keyring(KEY_A))
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
        let sessions_config = SessionsConfig {
            backend: BackendKind::Redis,
            redis: self.redis_config(1),
            ttl: Secs::from_secs(3600),
            ..SessionsConfig::default()
        };
        let store = sessions::open_with(&sessions_config, self.keyring(KEY_A))
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
    }

    fn command(&self, extra: &[&str]) -> Command {
        let mut cmd = Command::new(fleetctl_bin());
        cmd.args(["--output", "json", "migrate", "--from"])
            .arg(&self.old)
            .arg("--to")
            .arg(&self.new)
            .args(extra)
            .env_remove("FLEETCTL_CONFIG")
            .env_remove("FLEETCTL_OUTPUT");
        cmd
    }

    fn migrate(&self, extra: &[&str]) -> (i32, Value, String) {
        let out = self.command(extra).output().expect("run fleetctl migrate");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        (
            out.status.code().unwrap_or(-1),
            json,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn state_file(&self) -> PathBuf {
        self.dir.path().join("new.yaml.migrate-state.json")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_to_postgres_copies_everything_and_a_rerun_changes_nothing() {
    let env = Env::new();
    env.seed(200, 8, 30).await;
    let (code, first, stderr) = env.migrate(&[]);
    assert_eq!(code, 0, "{stderr}\n{first}");
    assert_all_equal(&first, 200, 30);
    eprintln!(
        "[measure] redis->postgres: 200 machines x 8 reports, 30 sessions in {} ms, peak RSS {} KiB",
        first["elapsed_ms"], first["peak_rss_kib"]
    );
    // What PostgreSQL holds is what Redis held: every tier of every machine.
    let points: u64 = env
        .pg
        .psql("SELECT count(*) FROM fleet_history")
        .parse()
        .unwrap();
    assert!(points >= 200 * 8, "{points} history points");
    let (code, second, stderr) = env.migrate(&[]);
    assert_eq!(code, 0, "{stderr}\n{second}");
    assert_eq!(checksums(&first), checksums(&second), "twice = once");
    let again: u64 = env
        .pg
        .psql("SELECT count(*) FROM fleet_history")
        .parse()
        .unwrap();
    assert_eq!(points, again);
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_to_postgres_killed_halfway_resumes_to_the_same_result() {
    let env = Env::new();
    env.seed(300, 4, 10).await;
    let mut child = env
        .command(&["--batch-size", "3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
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
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let state: Value = serde_json::from_slice(&std::fs::read(env.state_file()).unwrap()).unwrap();
    assert_eq!(state["done"], false, "{state}");
    let (code, resumed, stderr) = env.migrate(&["--batch-size", "50"]);
    assert_eq!(code, 0, "{stderr}\n{resumed}");
    assert_eq!(resumed["resumed"], true, "{resumed}");
    assert_all_equal(&resumed, 300, 10);
    let (code, fresh, stderr) = env.migrate(&["--restart"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(checksums(&resumed), checksums(&fresh));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cookie_from_the_redis_cluster_works_on_a_postgres_node() {
    let env = Env::new();
    env.seed(3, 2, 2).await;
    assert_cookie_survives_the_move(&env.old, &env.new, || env.migrate(&[])).await;
}
