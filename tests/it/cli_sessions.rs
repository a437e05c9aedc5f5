//! `fleetctl sessions gc|list|revoke` as an operator runs them: the real binary against a real
//! SQLite store, plus the error an unreachable Redis gives.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use fleetctl::config::{BackendKind, Secs, SessionsConfig};
use fleetctl::sessions::sqlite::SqliteStore;
use fleetctl::sessions::{Session, SessionData, SessionInfo, SessionStore};

use crate::support::{fleetctl_bin, free_port};

fn fleetctl(config: &Path, args: &[&str]) -> Output {
    Command::new(fleetctl_bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("FLEETCTL_OUTPUT")
        .timeout(Duration::from_secs(120))
        .output()
        .expect("run fleetctl")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn record(i: usize, user: &str, expires_at: i64) -> SessionInfo {
    SessionInfo {
        id_hash: format!("{i:064x}"),
        session: Session {
            user: user.into(),
            created_at: expires_at - 10_000,
            last_seen: expires_at - 5_000,
            expires_at,
            csrf_token: "0".repeat(64),
            data: SessionData::new(),
        },
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_list_revoke_on_sqlite_with_100k_expired() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.db");
    let config_path = dir.path().join("fleet.yaml");
    std::fs::write(
        &config_path,
        format!(
            "sessions:\n  backend: sqlite\n  db_path: {}\n  ttl: 3600\n",
            db.display()
        ),
    )
    .unwrap();

    let config = SessionsConfig {
        backend: BackendKind::Sqlite,
        ttl: Secs::from_secs(3600),
        db_path: db.clone(),
        ..SessionsConfig::default()
    };
    let store = SqliteStore::open(&config, fleetctl::sessions::AtRest::none())
        .await
        .unwrap();
    let now = now_ms();
    let mut records: Vec<SessionInfo> = (0..100_000)
        .map(|i| {
            record(
                i,
                if i % 2 == 0 { "alice" } else { "bob" },
                now - 1_000 - i as i64,
            )
        })
        .collect();
    records.extend(
        (100_000..101_000)
            .map(|i| record(i, if i % 5 < 2 { "alice" } else { "bob" }, now + 3_600_000)),
    );
    assert_eq!(store.import(records).await.unwrap(), 101_000);
    // A session created the normal way, so an id an operator could hold is among the live.
    let (real_id, _) = store.start("carol", SessionData::new()).await.unwrap();

    let started = Instant::now();
    let gc = fleetctl(&config_path, &["sessions", "gc"]);
    assert!(gc.status.success(), "{gc:?}");
    assert_eq!(
        stdout(&gc).trim(),
        "deleted 100000 expired sessions; 1001 live sessions remain"
    );
    assert!(
        !String::from_utf8_lossy(&gc.stderr).contains('\u{1b}'),
        "no progress bar drawn when stderr is not a terminal"
    );
    eprintln!(
        "gc of 100,000 expired sessions took {:?}",
        started.elapsed()
    );
    assert_eq!(store.count().await.unwrap(), 1001);
    assert_eq!(store.list(None).await.unwrap().len(), 1001);
    assert!(store.load(&real_id).await.unwrap().is_some());

    let again = fleetctl(&config_path, &["--output", "json", "sessions", "gc"]);
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).expect("json on stdout");
    assert_eq!(
        v,
        serde_json::json!({"backend": "sqlite", "deleted": 0, "remaining": 1001})
    );

    let list = fleetctl(
        &config_path,
        &["--output", "json", "sessions", "list", "--user", "carol"],
    );
    assert!(list.status.success(), "{list:?}");
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["user"], "carol");
    assert_eq!(rows[0]["id_hash"], real_id.storage_key());
    assert!(rows[0]["expires_at"].as_str().unwrap().ends_with('Z'));
    assert!(
        rows[0].get("csrf_token").is_none(),
        "secrets stay server-side"
    );
    assert!(!stdout(&list).contains(real_id.cookie_value()));

    let table = fleetctl(&config_path, &["sessions", "list", "--user", "carol"]);
    let text = stdout(&table);
    assert!(text.contains("carol") && text.contains(&real_id.storage_key()[..12]));
    assert!(!text.contains(real_id.cookie_value()));

    let revoke = fleetctl(&config_path, &["sessions", "revoke", "--user", "alice"]);
    assert!(revoke.status.success(), "{revoke:?}");
    assert_eq!(stdout(&revoke).trim(), "ended 400 sessions of user alice");
    let all = fleetctl(&config_path, &["--output", "json", "sessions", "list"]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&all.stdout).unwrap();
    assert_eq!(rows.len(), 601);
    assert!(rows.iter().all(|r| r["user"] != "alice"));

    let revoke_all = fleetctl(&config_path, &["sessions", "revoke", "--all"]);
    assert_eq!(
        stdout(&revoke_all).trim(),
        "ended 601 sessions of all users"
    );
    assert_eq!(store.count().await.unwrap(), 0);

    let usage = fleetctl(&config_path, &["sessions", "revoke"]);
    assert_eq!(usage.status.code(), Some(2), "--user or --all is required");
}

#[test]
fn unreachable_redis_is_a_runtime_failure_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("fleet.yaml");
    std::fs::write(
        &config_path,
        format!(
            "sessions:\n  backend: redis\n  redis:\n    host: 127.0.0.1\n    port: {}\n    password: s3cret-pw\n",
            free_port()
        ),
    )
    .unwrap();
    let out = fleetctl(&config_path, &["sessions", "list"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("fleetctl: error:"), "{err}");
    assert!(
        err.contains("unavailable") && err.contains("127.0.0.1"),
        "{err}"
    );
    assert!(!err.contains("s3cret-pw"), "password leaked: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_encryption_reseals_sessions_and_reports_and_is_rerunnable() {
    use std::os::unix::fs::PermissionsExt;
    const KEY_A: &str = "ka:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const KEY_B: &str = "kb:HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4=";
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("enc.keys");
    let write_keys = |text: &str| {
        std::fs::write(&keys, text).unwrap();
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    write_keys(KEY_A);
    let db = dir.path().join("sessions.db");
    let config_path = dir.path().join("fleet.yaml");
    std::fs::write(
        &config_path,
        format!(
            "sessions:\n  backend: sqlite\n  db_path: {}\nstorage:\n  backend: sqlite\n  db_path: {}\n  encrypt_reports: true\nsecurity:\n  encryption_key_file: {}\n",
            db.display(),
            dir.path().join("fleet.db").display(),
            keys.display()
        ),
    )
    .unwrap();
    let at = |text: &str| {
        fleetctl::sessions::AtRest::new(std::sync::Arc::new(
            fleetctl::store::crypto::Keyring::parse(text, Path::new("k")).unwrap(),
        ))
    };
    let config = SessionsConfig {
        backend: BackendKind::Sqlite,
        db_path: db.clone(),
        ..SessionsConfig::default()
    };
    let store = SqliteStore::open(&config, at(KEY_A)).await.unwrap();
    let now = now_ms();
    let records: Vec<SessionInfo> = (0..1_500)
        .map(|i| record(i, "alice", now + 3_600_000))
        .collect();
    store.import(records).await.unwrap();

    write_keys(&format!("{KEY_B}\n{KEY_A}\n"));
    let out = fleetctl(
        &config_path,
        &["keys", "rotate-encryption", "--output", "json"],
    );
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["key_id"], "kb");
    assert_eq!(v["sessions"]["examined"], 1_500);
    assert_eq!(v["sessions"]["resealed"], 1_500);
    assert_eq!(v["fleet"]["examined"], 0);

    let again = fleetctl(&config_path, &["keys", "rotate-encryption"]);
    assert!(again.status.success(), "{again:?}");
    assert!(
        stdout(&again).contains("sessions: 1500 examined, 0 re-sealed with key kb, 0 unreadable"),
        "{}",
        stdout(&again)
    );

    // Only kb is needed now.
    let only_b = SqliteStore::open(&config, at(KEY_B)).await.unwrap();
    assert_eq!(only_b.list(None).await.unwrap().len(), 1_500);
}
