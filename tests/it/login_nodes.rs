//! Issue 4's Must show: three real `fleetctl serve` nodes sharing one session backend (Redis,
//! SQLite, file). A user logs in on one node and is known on the others; logout on one node
//! ends the session on all; a node killed with -9 takes no session with it; a persistent Redis
//! restarted keeps its sessions. And the seed's literal curl scenario.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};

use crate::support::node::{ADMIN_TOKEN, Node, eventually, sha256_hex};
use crate::support::{RedisServer, require_binary};

const PASSWORD: &str = "fleet-test-password";
const PROTECTED: &str = "/api/fleet/cluster/status";

/// One backend (cluster registry and sessions alike) and the config every node reads.
struct Env {
    dir: tempfile::TempDir,
    redis: Option<RedisServer>,
    config: PathBuf,
}

impl Env {
    fn new(backend: &str, redis: Option<RedisServer>) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let redis_port = redis.as_ref().map_or(6379, |r| r.port);
        let hash = fleetctl::credentials::hash_password(PASSWORD).unwrap();
        let config = dir.path().join("fleet.yaml");
        std::fs::write(
            &config,
            format!(
                "server:\n  drain_timeout: 1\n\
                 cluster:\n  enabled: true\n  backend: {backend}\n  heartbeat_interval: 1\n  node_timeout: 3\n  \
                 redis_host: 127.0.0.1\n  redis_port: {redis_port}\n  state_path: {state}\n\
                 sessions:\n  backend: {backend}\n  redis: {{ host: 127.0.0.1, port: {redis_port} }}\n  \
                 db_path: {sessions_db}\n  session_dir: {session_dir}\n\
                 auth:\n  users:\n    - {{ username: admin, password_hash: \"{hash}\" }}\n  \
                 admin_tokens:\n    - {{ name: tests, sha256: \"{sha}\" }}\n",
                state = dir.path().join("state").display(),
                sessions_db = dir.path().join("sessions.db").display(),
                session_dir = dir.path().join("sessions").display(),
                sha = sha256_hex(ADMIN_TOKEN),
            ),
        )
        .expect("write config");
        Env { dir, redis, config }
    }

    fn start_nodes(&self) -> Vec<Node> {
        ["a", "b", "c"]
            .iter()
            .map(|n| Node::start(&self.config, &format!("node-{n}")))
            .collect()
    }
}

macro_rules! login_process_tests {
    ($($backend:ident),*) => {$(
        mod $backend {
            #[tokio::test(flavor = "multi_thread")]
            async fn session_is_shared_by_three_nodes() {
                super::session_is_shared_by_three_nodes(stringify!($backend)).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn seed_curl_scenario() {
                super::seed_curl_scenario(stringify!($backend)).await;
            }
        }
    )*};
}

login_process_tests!(redis, sqlite, file);

fn env_for(backend: &str) -> Env {
    let redis = (backend == "redis").then(RedisServer::start);
    Env::new(backend, redis)
}

/// A browser-like client: a cookie jar, no redirect following (we check the 303 ourselves).
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A client with no jar: sends exactly the cookie it is given.
fn bare() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Log in through the form on `node` with the browser's jar; returns the `name=value` pair.
async fn form_login(client: &reqwest::Client, node: &Node) -> String {
    let res = client
        .post(format!("{}/login", node.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("username=admin&password={PASSWORD}"))
        .send()
        .await
        .expect("POST /login");
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "login on {}",
        node.node_id
    );
    assert_eq!(res.headers()["location"], "/dashboard");
    let set = res.headers()[SET_COOKIE].to_str().unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    set.split(';').next().unwrap().to_string()
}

async fn status_with(client: &reqwest::Client, node: &Node, cookie: Option<&str>) -> StatusCode {
    let mut req = client.get(format!("{}{PROTECTED}", node.url()));
    if let Some(c) = cookie {
        req = req.header(COOKIE, c);
    }
    req.send().await.expect("GET protected").status()
}

async fn session_is_shared_by_three_nodes(backend: &'static str) {
    let env = env_for(backend);
    let mut nodes = env.start_nodes();
    let client = browser();

    // Log in on A; B and C know the user from the shared store.
    let cookie = form_login(&client, &nodes[0]).await;
    for node in &nodes {
        let res = client
            .get(format!("{}{PROTECTED}", node.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "{backend}: jar cookie on {}",
            node.node_id
        );
        assert_eq!(res.headers()["x-fleet-node"], node.node_id.as_str());
    }

    // Logout on C ends it everywhere: A refuses the old cookie.
    let me: serde_json::Value = client
        .get(format!("{}/api/session", nodes[2].url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csrf = me["csrf_token"].as_str().expect("csrf token").to_string();
    let res = client
        .post(format!("{}/logout", nodes[2].url()))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{backend}: logout on C");
    for node in &nodes {
        assert_eq!(
            status_with(&bare(), node, Some(&cookie)).await,
            StatusCode::UNAUTHORIZED,
            "{backend}: logged-out cookie on {}",
            node.node_id
        );
    }

    // Log in on A again, kill A with -9: B still knows the user.
    let client = browser();
    let cookie = form_login(&client, &nodes[0]).await;
    nodes[0].kill9();
    for node in &nodes[1..] {
        assert_eq!(
            status_with(&bare(), node, Some(&cookie)).await,
            StatusCode::OK,
            "{backend}: after kill -9 of A, on {}",
            node.node_id
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_survive_a_persistent_redis_restart() {
    let mut env = Env::new("redis", Some(RedisServer::start_persistent()));
    let nodes = env.start_nodes();
    let cookie = form_login(&browser(), &nodes[0]).await;
    assert_eq!(
        status_with(&bare(), &nodes[1], Some(&cookie)).await,
        StatusCode::OK
    );
    // appendfsync everysec: give the append-only file a moment, then SIGKILL and restart.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    env.redis.as_mut().unwrap().restart();
    let status = eventually(
        Duration::from_secs(15),
        "a session-store answer after the Redis restart",
        || async {
            let s = status_with(&bare(), &nodes[2], Some(&cookie)).await;
            (s != StatusCode::SERVICE_UNAVAILABLE).then_some(s)
        },
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the session survived the Redis restart"
    );
    // Each node reconnects on its own schedule; every one of them gets the session back.
    for node in &nodes {
        let what = format!("the session on {} after the Redis restart", node.node_id);
        eventually(Duration::from_secs(15), &what, || async {
            (status_with(&bare(), node, Some(&cookie)).await == StatusCode::OK).then_some(())
        })
        .await;
    }
}

/// The seed's own scenario, literally: curl with a cookie file.
async fn seed_curl_scenario(backend: &'static str) {
    let curl = require_binary("curl", "curl");
    let env = env_for(backend);
    let nodes = env.start_nodes();
    let jar = env.dir.path().join("cookies.txt");
    let jar = jar.to_str().unwrap();
    let login = Command::new(&curl)
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-c",
            jar,
            "-X",
            "POST",
        ])
        .arg(format!("http://127.0.0.1:{}/login", nodes[0].port))
        .arg("-d")
        .arg(format!("username=admin&password={PASSWORD}"))
        .output()
        .expect("run curl");
    assert_eq!(
        String::from_utf8_lossy(&login.stdout),
        "303",
        "{backend}: curl login"
    );
    let saved = std::fs::read_to_string(jar).unwrap();
    assert!(
        saved.contains("fleet_session"),
        "{backend}: cookie jar: {saved}"
    );
    for node in &nodes[1..] {
        let out = Command::new(&curl)
            .args(["-s", "-w", "\n%{http_code}", "-b", jar])
            .arg(format!("http://127.0.0.1:{}{PROTECTED}", node.port))
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout);
        let (body, code) = text.rsplit_once('\n').unwrap();
        assert_eq!(
            code, "200",
            "{backend}: curl -b on {}: {body}",
            node.node_id
        );
        let json: serde_json::Value = serde_json::from_str(body).expect("JSON status");
        assert_eq!(json["node_id"], node.node_id.as_str());
        assert_eq!(json["active_nodes"].as_u64().map(|n| n >= 1), Some(true));
    }
}
