//! One conformance suite for every session store (DESIGN §5): the same test functions run
//! against Redis, SQLite and file, so the three behave the same. Redis runs in three private
//! topologies per test (tests/it/support/redis_target.rs): `redis` (plain), `redis_tls_acl`
//! (TLS with a private CA and the least-privilege ACL user of docs/cluster.md) and
//! `redis_sentinel` (master + replica + three sentinels). Test names read
//! `session_conformance::<backend>::<behaviour>`.
//!
//! Timeouts are a few hundred milliseconds so expiry is observed for real, with margins wide
//! enough for a loaded two-core CI machine.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use fleetctl::config::{BackendKind, RedisConfig, Secs, SessionsConfig};
use fleetctl::sessions::{
    self, AtRest, GcProgress, SessionData, SessionError, SessionId, SessionStore,
};
use fleetctl::store::crypto::Keyring;
use serde_json::json;

use crate::support::RedisServer;
use crate::support::postgres::PgServer;
use crate::support::redis_target::{TestRedis, Topology};

/// A backend under test: its private storage and, for Redis, its private server.
pub struct Harness {
    kind: BackendKind,
    dir: tempfile::TempDir,
    redis: Option<TestRedis>,
    pg: Option<PgServer>,
}

impl Harness {
    /// A private PostgreSQL server (tests/it/support/postgres.rs).
    pub fn postgres() -> Harness {
        let mut h = Self::with(BackendKind::Postgres, None);
        h.pg = Some(PgServer::start());
        h
    }

    fn pg(&self) -> &PgServer {
        self.pg.as_ref().expect("postgres harness")
    }

    /// A plain Redis for `BackendKind::Redis`.
    pub fn new(kind: BackendKind) -> Harness {
        let topology = (kind == BackendKind::Redis).then_some(Topology::Plain);
        Self::with(kind, topology)
    }

    pub fn redis(topology: Topology) -> Harness {
        Self::with(BackendKind::Redis, Some(topology))
    }

    fn with(kind: BackendKind, topology: Option<Topology>) -> Harness {
        capture_logs();
        Harness {
            kind,
            dir: tempfile::tempdir().expect("tempdir"),
            redis: topology.map(TestRedis::start),
            pg: None,
        }
    }

    fn server_mut(&mut self) -> &mut RedisServer {
        self.redis.as_mut().expect("redis harness").server_mut()
    }

    fn config(&self, ttl: Duration, max_lifetime: Duration) -> SessionsConfig {
        SessionsConfig {
            backend: self.kind,
            ttl: Secs(ttl),
            max_lifetime: Secs(max_lifetime),
            redis: match &self.redis {
                Some(r) => r.redis_config(Some(1)),
                None => RedisConfig {
                    host: "127.0.0.1".into(),
                    port: 1,
                    db: Some(1),
                    ..RedisConfig::default()
                },
            },
            postgres: match &self.pg {
                Some(pg) => pg.config(),
                None => Default::default(),
            },
            db_path: self.dir.path().join("sessions.db"),
            session_dir: self.dir.path().join("sessions"),
            ..SessionsConfig::default()
        }
    }

    async fn store(&self, ttl: Duration, max_lifetime: Duration) -> Arc<dyn SessionStore> {
        sessions::open(&self.config(ttl, max_lifetime))
            .await
            .expect("open store")
    }

    /// A long-lived store sealing with the keys of `key_file` (key-file text).
    async fn sealed_store(&self, key_file: &str) -> Arc<dyn SessionStore> {
        let keyring = Keyring::parse(key_file, Path::new("test.keys")).expect("key file");
        sessions::open_with(
            &self.config(Duration::from_secs(3600), Duration::from_secs(7200)),
            AtRest::new(Arc::new(keyring)),
        )
        .await
        .expect("open sealed store")
    }

    /// A store whose sessions outlive the test.
    async fn long_store(&self) -> Arc<dyn SessionStore> {
        self.store(Duration::from_secs(3600), Duration::from_secs(7200))
            .await
    }

    /// Full rights on the sessions database (1), as something outside fleetctl.
    fn redis_conn(&self) -> ::redis::Connection {
        self.redis.as_ref().expect("redis harness").admin(1)
    }

    /// Damage the stored record of `id` in one of two ways a real store gets damaged.
    fn corrupt(&self, id: &SessionId, variant: u8) {
        let hash = id.storage_key();
        match self.kind {
            BackendKind::Redis => {
                let mut c = self.redis_conn();
                let key = format!("{{fleet}}:sess:{hash}");
                if variant == 0 {
                    ::redis::cmd("SET")
                        .arg(&key)
                        .arg(&b"\xff\xfe\x00garbage"[..])
                        .query::<()>(&mut c)
                        .unwrap();
                } else {
                    ::redis::cmd("HSET")
                        .arg(&key)
                        .arg("created_at")
                        .arg("zz")
                        .arg("data")
                        .arg("{not json")
                        .query::<()>(&mut c)
                        .unwrap();
                }
            }
            BackendKind::Sqlite => {
                let c = rusqlite::Connection::open(self.dir.path().join("sessions.db")).unwrap();
                let sql = if variant == 0 {
                    "UPDATE sessions SET data = x'fffe00' WHERE id_hash = ?1"
                } else {
                    "UPDATE sessions SET created_at = 'garbage', data = '{not json' WHERE id_hash = ?1"
                };
                assert_eq!(c.execute(sql, [&hash]).unwrap(), 1);
            }
            BackendKind::Postgres => {
                let set = if variant == 0 {
                    "data = '{not json'"
                } else {
                    "data = '[1, 2]'"
                };
                let n = self.pg().psql(&format!(
                    "WITH u AS (UPDATE sessions SET {set} WHERE id_hash = '{hash}' RETURNING 1) SELECT count(*) FROM u"
                ));
                assert_eq!(n, "1");
            }
            BackendKind::File => {
                let path = self
                    .dir
                    .path()
                    .join("sessions")
                    .join(format!("{hash}.json"));
                let bytes = std::fs::read(&path).unwrap();
                let damaged = if variant == 0 {
                    bytes[..bytes.len() / 2].to_vec()
                } else {
                    b"\xff\xfe\x00garbage".to_vec()
                };
                std::fs::write(&path, damaged).unwrap();
            }
        }
    }

    /// Copy the stored `data` field of `from` over that of `to`, as an attacker with write
    /// access to the store would. False where the layout makes that a whole-record copy.
    fn copy_sealed_data(&self, from: &SessionId, to: &SessionId) -> bool {
        let (from, to) = (from.storage_key(), to.storage_key());
        match self.kind {
            BackendKind::Redis => {
                let mut c = self.redis_conn();
                let data: String = ::redis::cmd("HGET")
                    .arg(format!("{{fleet}}:sess:{from}"))
                    .arg("data")
                    .query(&mut c)
                    .unwrap();
                let _: () = ::redis::cmd("HSET")
                    .arg(format!("{{fleet}}:sess:{to}"))
                    .arg("data")
                    .arg(data)
                    .query(&mut c)
                    .unwrap();
                true
            }
            BackendKind::Sqlite => {
                let db = rusqlite::Connection::open(self.dir.path().join("sessions.db")).unwrap();
                db.execute(
                    "UPDATE sessions SET data = (SELECT data FROM sessions WHERE id_hash = ?1)
                     WHERE id_hash = ?2",
                    [&from, &to],
                )
                .unwrap();
                true
            }
            BackendKind::Postgres => {
                self.pg().psql(&format!(
                    "UPDATE sessions SET data = (SELECT data FROM sessions WHERE id_hash = '{from}') WHERE id_hash = '{to}'"
                ));
                true
            }
            BackendKind::File => {
                let dir = self.dir.path().join("sessions");
                let read = |h: &str| -> serde_json::Value {
                    serde_json::from_slice(&std::fs::read(dir.join(format!("{h}.json"))).unwrap())
                        .unwrap()
                };
                let mut target = read(&to);
                target["data"] = read(&from)["data"].clone();
                std::fs::write(
                    dir.join(format!("{to}.json")),
                    serde_json::to_vec(&target).unwrap(),
                )
                .unwrap();
                true
            }
        }
    }

    /// SQLite: move the WAL into the database file, as SQLite does by itself every 1000 pages,
    /// so the dump shows the state a checkpoint leaves (WAL frames keep old page images until
    /// then).
    fn checkpoint(&self) {
        if self.kind == BackendKind::Sqlite {
            let db = rusqlite::Connection::open(self.dir.path().join("sessions.db")).unwrap();
            db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .unwrap();
        }
    }

    /// Everything the store has persisted, as text: what an attacker with a dump would see.
    fn dump(&self) -> String {
        match self.kind {
            BackendKind::Redis => {
                let mut c = self.redis_conn();
                let keys: Vec<String> = ::redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
                let mut out = String::new();
                for k in keys {
                    let dumped: Vec<u8> = ::redis::cmd("DUMP").arg(&k).query(&mut c).unwrap();
                    out.push_str(&k);
                    out.push('\n');
                    out.push_str(&String::from_utf8_lossy(&dumped));
                    out.push('\n');
                    // DUMP compresses long values (LZF): read hashes field by field as well,
                    // so a plaintext value cannot hide in the compressed form.
                    let kind: String = ::redis::cmd("TYPE").arg(&k).query(&mut c).unwrap();
                    if kind == "hash" {
                        let fields: Vec<Vec<u8>> =
                            ::redis::cmd("HGETALL").arg(&k).query(&mut c).unwrap();
                        for f in fields {
                            out.push_str(&String::from_utf8_lossy(&f));
                            out.push('\n');
                        }
                    }
                }
                out
            }
            BackendKind::Postgres => {
                let pg = self.pg();
                format!(
                    "{}\n{}",
                    pg.psql("COPY (SELECT * FROM sessions) TO STDOUT"),
                    pg.psql("COPY (SELECT * FROM login_failures) TO STDOUT")
                )
            }
            BackendKind::Sqlite | BackendKind::File => {
                let mut out = String::new();
                dump_dir(self.dir.path(), &mut out);
                out
            }
        }
    }
}

fn dump_dir(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        out.push_str(&path.display().to_string());
        out.push('\n');
        if path.is_dir() {
            dump_dir(&path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
}

/// Every `tracing` event of this test process, so a test can check what was reported. Global
/// (not per-thread) because stores log from the blocking pool.
fn capture_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .try_init();
        buf
    })
    .clone()
}

fn logs() -> String {
    String::from_utf8_lossy(&capture_logs().lock().unwrap()).into_owned()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn data(n: i64) -> SessionData {
    json!({ "n": n }).as_object().unwrap().clone()
}

// ---- the suite ---------------------------------------------------------------------------

pub async fn create_and_load(h: Harness) {
    let store = h.long_store().await;
    let (id, created) = store.start("alice", data(7)).await.unwrap();
    let loaded = store.load(&id).await.unwrap().expect("session is live");
    assert_eq!(loaded, created);
    assert_eq!(loaded.user, "alice");
    assert_eq!(loaded.data, data(7));
    assert_eq!(loaded.csrf_token.len(), 64);
    assert!(loaded.expires_at > loaded.created_at);
    let other = SessionId::generate().unwrap();
    assert_eq!(store.load(&other).await.unwrap(), None);
    assert!(store.delete(&id).await.unwrap());
    assert_eq!(
        store.load(&id).await.unwrap(),
        None,
        "logout ends the session"
    );
    assert!(!store.delete(&id).await.unwrap());
}

pub async fn idle_ttl_expiry(h: Harness) {
    let store = h.store(ms(300), Duration::from_secs(60)).await;
    let (id, _) = store.start("alice", SessionData::new()).await.unwrap();
    assert!(store.load(&id).await.unwrap().is_some());
    tokio::time::sleep(ms(500)).await;
    assert_eq!(store.load(&id).await.unwrap(), None, "idle session expired");
    assert_eq!(store.touch(&id).await.unwrap(), None);
    assert_eq!(store.count().await.unwrap(), 0);
    assert!(store.list(None).await.unwrap().is_empty());
}

pub async fn sliding_renewal(h: Harness) {
    let store = h.store(ms(1000), Duration::from_secs(60)).await;
    let (id, first) = store.start("alice", SessionData::new()).await.unwrap();
    let start = Instant::now();
    // Used every 300 ms for 1.5 s: well past one idle TTL, still logged in.
    let mut last = first.clone();
    for i in 0..5 {
        tokio::time::sleep(ms(300)).await;
        let s = if i % 2 == 0 {
            store.touch(&id).await.unwrap().expect("touch renews")
        } else {
            let mut s = last.clone();
            s.data = data(i);
            store.save(&id, &s).await.expect("save renews")
        };
        assert!(s.expires_at > last.expires_at, "expiry slides forward");
        assert_eq!(s.created_at, first.created_at, "creation time is fixed");
        last = s;
    }
    assert!(start.elapsed() > ms(1000));
    let loaded = store.load(&id).await.unwrap().expect("still live");
    assert_eq!(loaded.data, data(3), "save kept its data through touches");
    tokio::time::sleep(ms(1400)).await;
    assert_eq!(
        store.load(&id).await.unwrap(),
        None,
        "expires once use stops"
    );
}

pub async fn absolute_lifetime_caps_sliding(h: Harness) {
    let store = h.store(ms(1000), ms(1500)).await;
    let (id, first) = store.start("alice", SessionData::new()).await.unwrap();
    let mut ended_at = None;
    for _ in 0..10 {
        tokio::time::sleep(ms(250)).await;
        match store.touch(&id).await.unwrap() {
            Some(s) => assert!(
                s.expires_at <= first.created_at + 1500,
                "never past the cap"
            ),
            None => {
                ended_at = Some(Instant::now());
                break;
            }
        }
    }
    assert!(
        ended_at.is_some(),
        "the absolute lifetime ended an active session"
    );
    assert_eq!(store.load(&id).await.unwrap(), None);
    let mut s = first.clone();
    s.data = data(1);
    assert!(matches!(
        store.save(&id, &s).await,
        Err(SessionError::NotFound)
    ));
}

pub async fn save_never_resurrects(h: Harness) {
    let store = h.long_store().await;
    let (id, s) = store.start("alice", SessionData::new()).await.unwrap();
    store.delete(&id).await.unwrap();
    assert!(matches!(
        store.save(&id, &s).await,
        Err(SessionError::NotFound)
    ));
    assert_eq!(store.touch(&id).await.unwrap(), None);
    assert_eq!(store.load(&id).await.unwrap(), None);

    let (id, s) = store.start("bob", SessionData::new()).await.unwrap();
    store.revoke_user("bob").await.unwrap();
    assert!(matches!(
        store.save(&id, &s).await,
        Err(SessionError::NotFound)
    ));
    assert_eq!(store.load(&id).await.unwrap(), None);
}

pub async fn duplicate_create_refused(h: Harness) {
    let store = h.long_store().await;
    let id = SessionId::generate().unwrap();
    let first = store.create(&id, "alice", data(1)).await.unwrap();
    let again = store.create(&id, "mallory", data(2)).await;
    assert!(
        matches!(again, Err(SessionError::AlreadyExists)),
        "{again:?}"
    );
    assert_eq!(
        store.load(&id).await.unwrap(),
        Some(first),
        "original untouched"
    );
}

pub async fn revoke_user_and_all(h: Harness) {
    let store = h.long_store().await;
    let other_node = h.long_store().await;
    let mut alice = Vec::new();
    for _ in 0..3 {
        alice.push(store.start("alice", SessionData::new()).await.unwrap().0);
    }
    let mut bob = Vec::new();
    for _ in 0..2 {
        bob.push(store.start("bob", SessionData::new()).await.unwrap().0);
    }
    let listed = other_node.list(Some("alice")).await.unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|i| i.session.user == "alice"));
    assert_eq!(other_node.list(None).await.unwrap().len(), 5);
    assert_eq!(store.count().await.unwrap(), 5);

    // Revoked through one handle, gone through the other.
    assert_eq!(other_node.revoke_user("alice").await.unwrap(), 3);
    for id in &alice {
        assert_eq!(store.load(id).await.unwrap(), None);
    }
    for id in &bob {
        assert!(store.load(id).await.unwrap().is_some());
    }
    assert_eq!(store.revoke_user("alice").await.unwrap(), 0);
    assert_eq!(store.revoke_user("nobody").await.unwrap(), 0);
    assert_eq!(store.count().await.unwrap(), 2);
    assert_eq!(store.revoke_all().await.unwrap(), 2);
    assert_eq!(store.count().await.unwrap(), 0);
    assert!(other_node.list(None).await.unwrap().is_empty());
    // The store still works after a revoke-all.
    let (id, _) = store.start("carol", SessionData::new()).await.unwrap();
    assert!(other_node.load(&id).await.unwrap().is_some());
}

pub async fn concurrent_saves_without_loss(h: Harness) {
    const N: i64 = 1000;
    let store = h.long_store().await;
    let created = futures::future::join_all((0..N).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let user = format!("user{}", i % 10);
            store.start(&user, SessionData::new()).await.unwrap()
        })
    }))
    .await;
    let sessions: Vec<_> = created.into_iter().map(|r| r.unwrap()).collect();
    let saves = futures::future::join_all(sessions.iter().enumerate().map(|(i, (id, s))| {
        let store = store.clone();
        let (id, mut s) = (id.clone(), s.clone());
        tokio::spawn(async move {
            s.data = data(i as i64);
            store.save(&id, &s).await.unwrap();
        })
    }))
    .await;
    saves.into_iter().for_each(|r| r.unwrap());
    for (i, (id, _)) in sessions.iter().enumerate() {
        let s = store.load(id).await.unwrap().expect("no session lost");
        assert_eq!(s.data, data(i as i64), "no save lost");
    }
    assert_eq!(store.count().await.unwrap(), N as u64);
    assert_eq!(store.list(Some("user3")).await.unwrap().len(), 100);

    // Concurrent touches of one session, with a save among them: nothing lost, nothing broken.
    let (id, s) = sessions[0].clone();
    let mut with_data = s.clone();
    with_data.data = data(-1);
    let touches = futures::future::join_all((0..200).map(|i| {
        let (store, id, with_data) = (store.clone(), id.clone(), with_data.clone());
        tokio::spawn(async move {
            if i == 100 {
                store.save(&id, &with_data).await.map(Some)
            } else {
                store.touch(&id).await
            }
        })
    }))
    .await;
    for t in touches {
        assert!(t.unwrap().unwrap().is_some());
    }
    assert_eq!(store.load(&id).await.unwrap().unwrap().data, data(-1));
}

pub async fn corrupt_record_is_absent_and_reported(h: Harness) {
    let store = h.long_store().await;
    let (good, _) = store.start("alice", SessionData::new()).await.unwrap();
    let mut damaged = Vec::new();
    for variant in 0..2 {
        let (id, _) = store.start("alice", SessionData::new()).await.unwrap();
        h.corrupt(&id, variant);
        damaged.push(id);
    }
    for id in &damaged {
        assert_eq!(store.load(id).await.unwrap(), None, "corrupt = absent");
        let reported = logs();
        assert!(
            reported.contains(&id.storage_key()) && reported.contains("WARN"),
            "corruption of {} not reported; logs:\n{reported}",
            id.storage_key()
        );
    }
    let listed = store.list(Some("alice")).await.unwrap();
    assert_eq!(listed.len(), 1, "list skips corrupt records");
    assert_eq!(store.list(None).await.unwrap().len(), 1);
    assert!(store.load(&good).await.unwrap().is_some());
    // Logout of a damaged session still works, and its id can be used again.
    for id in &damaged {
        store.delete(id).await.unwrap();
        assert_eq!(store.load(id).await.unwrap(), None);
    }
    store
        .delete_expired(&|_| {})
        .await
        .expect("gc copes with corrupt records");
}

pub async fn store_never_holds_raw_id(h: Harness) {
    let store = h.long_store().await;
    let mut ids = Vec::new();
    for user in ["alice", "bob", "alice"] {
        let (id, _) = store.start(user, data(1)).await.unwrap();
        ids.push(id);
    }
    store
        .record_failure("alice|127.0.0.1", ms(60_000))
        .await
        .unwrap();
    let dump = h.dump();
    for id in &ids {
        assert!(
            !dump.contains(id.cookie_value()),
            "raw session id found in the store"
        );
        assert!(dump.contains(&id.storage_key()), "stored under its hash");
        assert!(!format!("{id:?}").contains(id.cookie_value()));
    }
}

/// Key-file lines for the encryption tests (fixed test keys, never used elsewhere).
const KEY_A: &str = "ka:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_B: &str = "kb:HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4=";
const MARKER: &str = "MARKER-plaintext-7731";

fn marked() -> SessionData {
    let mut d = SessionData::new();
    d.insert("note".into(), json!(MARKER));
    d
}

pub async fn sealed_records_hide_data_and_csrf_token(h: Harness) {
    let store = h.sealed_store(KEY_A).await;
    let (id, created) = store.start("alice", marked()).await.unwrap();
    let mut changed = created.clone();
    changed.data.insert("again".into(), json!(MARKER));
    store.save(&id, &changed).await.unwrap();
    let dump = h.dump();
    assert!(
        !dump.contains(MARKER),
        "session data stored in the clear:\n{dump}"
    );
    assert!(
        !dump.contains(&created.csrf_token),
        "CSRF token stored in the clear"
    );
    assert!(dump.contains("fenc1:ka:"), "sealed with key ka");
    let loaded = store.load(&id).await.unwrap().expect("round trip");
    assert_eq!(loaded.data, changed.data);
    assert_eq!(loaded.csrf_token, created.csrf_token);
    assert_eq!(store.list(Some("alice")).await.unwrap().len(), 1);
}

pub async fn plaintext_records_are_read_and_sealed_on_next_write(h: Harness) {
    let (id, s) = h.long_store().await.start("alice", marked()).await.unwrap();
    assert!(
        h.dump().contains(MARKER),
        "written before encryption was on"
    );
    let sealed = h.sealed_store(KEY_A).await;
    let loaded = sealed
        .load(&id)
        .await
        .unwrap()
        .expect("plaintext still readable");
    assert_eq!(loaded.data, s.data);
    sealed.save(&id, &loaded).await.unwrap();
    h.checkpoint();
    assert!(!h.dump().contains(MARKER), "sealed on its next write");
    assert_eq!(sealed.load(&id).await.unwrap().unwrap().data, s.data);
}

pub async fn rotation_from_key_a_to_key_b(h: Harness) {
    let under_a = h.sealed_store(KEY_A).await;
    let (kept, _) = under_a.start("alice", marked()).await.unwrap();
    let (idle, _) = under_a.start("bob", marked()).await.unwrap();
    // Rotation: B first, A still listed. Old records open; a write re-seals with B.
    let rotating = h.sealed_store(&format!("{KEY_B}\n{KEY_A}\n")).await;
    let s = rotating.load(&kept).await.unwrap().expect("A still opens");
    rotating.save(&kept, &s).await.unwrap();
    // A dropped: the re-sealed session lives on, the one never rewritten is absent, reported
    // with the key id that is missing, and never an error.
    let only_b = h.sealed_store(KEY_B).await;
    assert_eq!(only_b.load(&kept).await.unwrap().unwrap().data, marked());
    assert_eq!(only_b.load(&idle).await.unwrap(), None);
    let reported = logs();
    assert!(
        reported.contains(&idle.storage_key())
            && reported.contains(
                "encrypted with key id ka, which security.encryption_key_file does not list"
            ),
        "missing key not reported; logs:\n{reported}"
    );
    assert_eq!(only_b.list(None).await.unwrap().len(), 1);
    // Without any key file, a sealed record is absent too (and says which key it needs).
    assert_eq!(h.long_store().await.load(&kept).await.unwrap(), None);
    assert!(
        logs().contains("encrypted with key id kb, but security.encryption_key_file is not set")
    );
}

pub async fn reseal_rewrites_every_record_with_the_first_key(h: Harness) {
    // One plaintext record, two under key A, one under a key nobody has any more.
    let (plain, _) = h.long_store().await.start("alice", marked()).await.unwrap();
    let under_a = h.sealed_store(KEY_A).await;
    let (a1, _) = under_a.start("alice", marked()).await.unwrap();
    let (a2, _) = under_a.start("bob", marked()).await.unwrap();
    let lost_key = "kz:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
    let (lost, _) = h
        .sealed_store(lost_key)
        .await
        .start("carol", marked())
        .await
        .unwrap();

    let rotating = h.sealed_store(&format!("{KEY_B}\n{KEY_A}\n")).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let count = rotating
        .reseal(&move |p: GcProgress| s2.lock().unwrap().push(p))
        .await
        .unwrap();
    assert_eq!(
        (count.examined, count.resealed, count.unreadable),
        (4, 3, 1)
    );
    let last = *seen.lock().unwrap().last().unwrap();
    assert_eq!(last.done, 4, "progress reaches the end");
    // Idempotent: a second run has nothing left to do.
    let again = rotating.reseal(&|_| {}).await.unwrap();
    assert_eq!(
        (again.examined, again.resealed, again.unreadable),
        (4, 0, 1)
    );

    // After rotation only B is needed.
    h.checkpoint();
    let dump = h.dump();
    assert!(!dump.contains(MARKER), "no plaintext left");
    assert!(!dump.contains("fenc1:ka:"), "nothing left under ka");
    let only_b = h.sealed_store(KEY_B).await;
    for id in [&plain, &a1, &a2] {
        assert_eq!(only_b.load(id).await.unwrap().unwrap().data, marked());
    }
    assert_eq!(only_b.load(&lost).await.unwrap(), None);
}

pub async fn sealed_field_moved_to_another_session_does_not_open(h: Harness) {
    let store = h.sealed_store(KEY_A).await;
    let (a, _) = store.start("alice", marked()).await.unwrap();
    let (b, _) = store.start("mallory", SessionData::new()).await.unwrap();
    if !h.copy_sealed_data(&a, &b) {
        return;
    }
    assert_eq!(
        store.load(&b).await.unwrap(),
        None,
        "swapped data is refused"
    );
    assert!(store.load(&a).await.unwrap().is_some());
}

pub async fn throttle_shared_and_expires(h: Harness) {
    let node_a = h.long_store().await;
    let node_b = h.long_store().await;
    let key = "alice|10.0.0.7";
    let window = ms(600);
    assert_eq!(node_a.record_failure(key, window).await.unwrap(), 1);
    assert_eq!(node_b.record_failure(key, window).await.unwrap(), 2);
    assert_eq!(node_a.record_failure(key, window).await.unwrap(), 3);
    assert_eq!(
        node_b.record_failure("bob|10.0.0.7", window).await.unwrap(),
        1,
        "keys are independent"
    );
    tokio::time::sleep(ms(900)).await;
    assert_eq!(
        node_b.record_failure(key, window).await.unwrap(),
        1,
        "window over"
    );
    assert_eq!(node_a.record_failure(key, window).await.unwrap(), 2);
    node_b.clear_failures(key).await.unwrap();
    assert_eq!(node_a.record_failure(key, window).await.unwrap(), 1);
}

pub async fn delete_expired_removes_only_expired(h: Harness) {
    let short = h.store(ms(200), Duration::from_secs(60)).await;
    let long = h.long_store().await;
    for _ in 0..5 {
        short.start("alice", SessionData::new()).await.unwrap();
    }
    let mut live = Vec::new();
    for _ in 0..3 {
        live.push(long.start("bob", SessionData::new()).await.unwrap().0);
    }
    tokio::time::sleep(ms(400)).await;
    let seen = Mutex::new(Vec::<GcProgress>::new());
    let deleted = long
        .delete_expired(&|p| seen.lock().unwrap().push(p))
        .await
        .unwrap();
    let expected = if h.kind == BackendKind::Redis { 0 } else { 5 };
    assert_eq!(deleted, expected, "Redis TTL already did the work");
    assert_eq!(long.count().await.unwrap(), 3);
    for id in &live {
        assert!(long.load(id).await.unwrap().is_some());
    }
    let seen = seen.into_inner().unwrap();
    if h.kind != BackendKind::Redis {
        let last = seen.last().expect("progress reported");
        assert_eq!(last.done, last.total);
    }
    assert_eq!(long.delete_expired(&|_| {}).await.unwrap(), 0);
    assert!(long.list(Some("alice")).await.unwrap().is_empty());
}

impl Harness {
    /// A second, empty store of the same backend (another database file, directory, Redis
    /// database or PostgreSQL database), for copying into.
    async fn second_store(&self) -> Arc<dyn SessionStore> {
        let mut config = self.config(Duration::from_secs(3600), Duration::from_secs(7200));
        config.db_path = self.dir.path().join("second.db");
        config.session_dir = self.dir.path().join("second");
        config.redis.db = Some(3);
        if let Some(pg) = &self.pg {
            pg.psql("CREATE DATABASE sessions_second");
            config.postgres.dbname = "sessions_second".into();
        }
        sessions::open(&config).await.expect("open second store")
    }
}

/// Everything `store` exports, in small pages, by id hash.
async fn export_all(store: &dyn SessionStore) -> Vec<sessions::SessionInfo> {
    let mut by_id = std::collections::BTreeMap::new();
    let mut cursor = None;
    for _ in 0..10_000 {
        let page = store.export(cursor, 7).await.expect("export");
        assert!(page.unreadable.is_empty(), "{:?}", page.unreadable);
        for r in page.records {
            // Redis's SCAN may return a record twice; it is the same record.
            by_id.insert(r.id_hash.clone(), r);
        }
        cursor = page.next;
        if cursor.is_none() {
            return by_id.into_values().collect();
        }
    }
    panic!("export never finished");
}

pub async fn export_then_import_copies_and_merges(h: Harness) {
    let source = h.long_store().await;
    let mut started = Vec::new();
    for i in 0..5 {
        started.push(source.start(&format!("user{i}"), data(i)).await.unwrap());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let seeded: Vec<sessions::SessionInfo> = (0..20)
        .map(|i| sessions::SessionInfo {
            id_hash: format!("{:064x}", 1000 + i),
            session: sessions::Session {
                user: format!("old{}", i % 3),
                created_at: now - 600_000 - i,
                last_seen: now - 60_000 - i,
                expires_at: now + 1_800_000 + i,
                csrf_token: format!("csrf-{i}"),
                data: data(i),
            },
        })
        .collect();
    assert_eq!(source.import(seeded.clone()).await.unwrap(), 20);
    let exported = export_all(&*source).await;
    assert_eq!(exported.len(), 25);
    assert!(
        seeded.iter().all(|s| exported.contains(s)),
        "times are kept as they are, not restamped"
    );

    let dest = h.second_store().await;
    assert_eq!(dest.import(exported.clone()).await.unwrap(), 25);
    assert_eq!(export_all(&*dest).await, exported, "identical export");
    dest.import(exported.clone()).await.unwrap();
    assert_eq!(export_all(&*dest).await, exported, "import twice = once");
    // The copied session answers to the cookie the user already holds.
    let (id, original) = &started[2];
    assert_eq!(dest.load(id).await.unwrap().as_ref(), Some(original));
    assert_eq!(dest.list(Some("old1")).await.unwrap().len(), 7);

    // Merge: an older version loses, a later (or equal) one wins.
    let mut older = seeded[0].clone();
    older.session.last_seen -= 1_000;
    older.session.data = data(-5);
    assert_eq!(dest.import(vec![older]).await.unwrap(), 0);
    let mut newer = seeded[0].clone();
    newer.session.last_seen += 1_000;
    newer.session.data = data(-6);
    assert_eq!(dest.import(vec![newer.clone()]).await.unwrap(), 1);
    let after = export_all(&*dest).await;
    assert!(after.contains(&newer), "the later last_seen wins");
    assert!(!after.contains(&seeded[0]));
    assert_eq!(after.len(), 25);
}

macro_rules! suite {
    ($harness:expr; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                super::$test($harness).await
            }
        )*
    };
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod redis {
            use super::{Harness, Topology};
            suite!(Harness::redis(Topology::Plain); $($test),*);
        }
        mod redis_tls_acl {
            use super::{Harness, Topology};
            suite!(Harness::redis(Topology::TlsAcl); $($test),*);
        }
        mod redis_sentinel {
            use super::{Harness, Topology};
            suite!(Harness::redis(Topology::Sentinel); $($test),*);
        }
        mod sqlite {
            use super::{BackendKind, Harness};
            suite!(Harness::new(BackendKind::Sqlite); $($test),*);
        }
        mod file {
            use super::{BackendKind, Harness};
            suite!(Harness::new(BackendKind::File); $($test),*);
        }
        mod postgres {
            use super::Harness;
            suite!(Harness::postgres(); $($test),*);
        }
    };
}

conformance!(
    create_and_load,
    idle_ttl_expiry,
    sliding_renewal,
    absolute_lifetime_caps_sliding,
    save_never_resurrects,
    duplicate_create_refused,
    revoke_user_and_all,
    concurrent_saves_without_loss,
    corrupt_record_is_absent_and_reported,
    store_never_holds_raw_id,
    throttle_shared_and_expires,
    delete_expired_removes_only_expired,
    sealed_records_hide_data_and_csrf_token,
    plaintext_records_are_read_and_sealed_on_next_write,
    rotation_from_key_a_to_key_b,
    sealed_field_moved_to_another_session_does_not_open,
    reseal_rewrites_every_record_with_the_first_key,
    export_then_import_copies_and_merges,
);

// ---- Redis only: outages and persistence ---------------------------------------------------

mod redis_outage {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unavailable_then_recovers() {
        let mut h = Harness::new(BackendKind::Redis);
        // A password, to check it never leaks into an error message.
        let mut c = h.redis_conn();
        ::redis::cmd("CONFIG")
            .arg("SET")
            .arg("requirepass")
            .arg("s3cret-pw")
            .query::<()>(&mut c)
            .unwrap();
        let mut config = h.config(Duration::from_secs(3600), Duration::from_secs(7200));
        config.redis.password = Some("s3cret-pw".into());
        let store = sessions::open(&config).await.unwrap();
        let (id, _) = store.start("alice", SessionData::new()).await.unwrap();

        h.server_mut().stop();
        let started = Instant::now();
        let err = store.load(&id).await.expect_err("redis is down");
        assert!(
            matches!(err, SessionError::Unavailable { .. }),
            "expected Unavailable, got {err:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(8), "bounded wait");
        let message = err.to_string();
        assert!(message.contains("127.0.0.1"), "{message}");
        assert!(!message.contains("s3cret-pw"), "password leaked: {message}");
        assert!(matches!(
            store.start("bob", SessionData::new()).await,
            Err(SessionError::Unavailable { .. })
        ));

        // Back up (empty, no password): the same store handle reconnects by itself.
        h.server_mut().restart();
        config.redis.password = None;
        let store = sessions::open(&config).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let id = loop {
            match store.start("alice", SessionData::new()).await {
                Ok((id, _)) => break id,
                Err(e) if Instant::now() < deadline => {
                    assert!(matches!(e, SessionError::Unavailable { .. }));
                    tokio::time::sleep(ms(200)).await;
                }
                Err(e) => panic!("no recovery after restart: {e}"),
            }
        };
        assert!(store.load(&id).await.unwrap().is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn same_handle_recovers_after_restart() {
        let mut h = Harness::new(BackendKind::Redis);
        let store = h.long_store().await;
        store.start("alice", SessionData::new()).await.unwrap();
        h.server_mut().stop();
        assert!(store.count().await.is_err());
        h.server_mut().restart();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match store.start("alice", SessionData::new()).await {
                Ok(_) => break,
                Err(e) if Instant::now() < deadline => {
                    assert!(matches!(e, SessionError::Unavailable { .. }), "{e:?}");
                    tokio::time::sleep(ms(200)).await;
                }
                Err(e) => panic!("no recovery after restart: {e}"),
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn store_opened_while_redis_down_connects_later() {
        let mut h = Harness::new(BackendKind::Redis);
        h.server_mut().stop();
        let store = h.long_store().await;
        assert!(matches!(
            store.count().await,
            Err(SessionError::Unavailable { .. })
        ));
        h.server_mut().restart();
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Err(e) = store.start("alice", SessionData::new()).await {
            assert!(Instant::now() < deadline, "never connected: {e}");
            tokio::time::sleep(ms(200)).await;
        }
        assert_eq!(store.count().await.unwrap(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sessions_survive_a_persistent_restart() {
        capture_logs();
        let dir = tempfile::tempdir().unwrap();
        let mut server = RedisServer::start_persistent();
        let h = Harness {
            kind: BackendKind::Redis,
            dir,
            redis: None,
            pg: None,
        };
        let mut config = h.config(Duration::from_secs(3600), Duration::from_secs(7200));
        config.redis.port = server.port;
        let store = sessions::open(&config).await.unwrap();
        let (id, _) = store.start("alice", data(5)).await.unwrap();
        server.restart();
        let store = sessions::open(&config).await.unwrap();
        let s = store.load(&id).await.unwrap().expect("persisted session");
        assert_eq!(s.data, data(5));
        assert_eq!(store.list(Some("alice")).await.unwrap().len(), 1);
    }
}
