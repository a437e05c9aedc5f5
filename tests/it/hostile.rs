//! Hostile input against a real `fleetctl serve` node, over raw TCP so nothing between the
//! test and the node tidies the bytes up:
//!
//! - `reliability_hostile_requests`: ≥ 10,000 generated requests across every route (bad
//!   JSON and UTF-8, 10 MB bodies, 70 kB headers, forged cookies and keys, path tricks, wrong
//!   methods and content types, malformed node ids): no 5xx, no panic, every refusal the
//!   right 4xx with a JSON (or, for pages, HTML) body that names no internal path.
//! - `reliability_slowloris`: 500 connections trickling a request head are closed within
//!   10 s while normal requests keep their p99 within 2× of the unloaded p99.
//! - `reliability_login_flood`: 1,000 logins with random usernames in 10 s keep the node's
//!   RSS under 512 MB and its health check at 200.
//!
//! Each records its row in `docs/reliability.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::support::node::{ADMIN_TOKEN, Node, eventually, get_json, sha256_hex};
use crate::support::reliability;

const AGENT_KEY: &str = "fleet_00000000000000000000000000000000000000000000000000000000000000b7";
const PASSWORD: &str = "hostile suite password";

fn config(dir: &Path, extra_sessions: &str) -> PathBuf {
    let hash = fleetctl::credentials::hash_password(PASSWORD).unwrap();
    let text = format!(
        "sessions:\n  max_login_failures: 5\n{extra_sessions}\
         auth:\n  users:\n    - {{ username: admin, password_hash: \"{hash}\" }}\n  \
         admin_tokens:\n    - {{ name: ops, sha256: {} }}\n  \
         api_keys:\n    - {{ name: agents, sha256: {} }}\n",
        sha256_hex(ADMIN_TOKEN),
        sha256_hex(AGENT_KEY)
    );
    let path = dir.join("fleet.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// What came back for one raw request.
#[derive(Debug, Default, Clone)]
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
    /// The node closed the connection without an HTTP answer.
    closed: bool,
}

/// Send `head` then `body` (written while the answer is read, so a node that refuses early is
/// not blocked by a client still writing) and read the answer.
async fn exchange(port: u16, head: Vec<u8>, body: Body) -> Answer {
    let stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        if wr.write_all(&head).await.is_err() {
            return;
        }
        match body {
            Body::None => {}
            Body::Bytes(b) => {
                let _ = wr.write_all(&b).await;
            }
            Body::Zeros(n) => {
                let chunk = vec![b'0'; 64 * 1024];
                let mut left = n;
                while left > 0 {
                    let k = left.min(chunk.len());
                    if wr.write_all(&chunk[..k]).await.is_err() {
                        return;
                    }
                    left -= k;
                }
            }
            Body::ChunkedZeros(n) => {
                let chunk = vec![b'0'; 64 * 1024];
                let mut left = n;
                while left > 0 {
                    let k = left.min(chunk.len());
                    let mut frame = format!("{k:x}\r\n").into_bytes();
                    frame.extend_from_slice(&chunk[..k]);
                    frame.extend_from_slice(b"\r\n");
                    if wr.write_all(&frame).await.is_err() {
                        return;
                    }
                    left -= k;
                }
                let _ = wr.write_all(b"0\r\n\r\n").await;
            }
        }
        let _ = wr.flush().await;
        // Keep the write half open until the answer is read (dropping it would half-close).
        tokio::time::sleep(Duration::from_secs(15)).await;
    });
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let answer = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let n = match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            buf.extend_from_slice(&chunk[..n]);
            if let Some(a) = parse(&buf) {
                return a;
            }
        }
        parse(&buf).unwrap_or(Answer {
            closed: true,
            ..Answer::default()
        })
    })
    .await
    .unwrap_or(Answer {
        closed: true,
        ..Answer::default()
    });
    writer.abort();
    answer
}

/// A complete answer in `buf`, if there is one yet.
fn parse(buf: &[u8]) -> Option<Answer> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let status = head.get(9..12)?.parse().ok()?;
    let mut len = 0usize;
    let mut content_type = String::new();
    for line in head.lines().skip(1) {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => len = v.trim().parse().unwrap_or(0),
            "content-type" => content_type = v.trim().to_string(),
            _ => {}
        }
    }
    let body = buf.get(end + 4..end + 4 + len)?.to_vec();
    Some(Answer {
        status,
        content_type,
        body,
        closed: false,
    })
}

enum Body {
    None,
    Bytes(Vec<u8>),
    /// This many bytes, with a declared Content-Length.
    Zeros(usize),
    /// This many bytes, chunked (no length declared up front).
    ChunkedZeros(usize),
}

/// One generated request and the answers that are right for it.
struct Case {
    kind: &'static str,
    head: Vec<u8>,
    body: Body,
    want: &'static [u16],
    /// The HTTP parser itself may refuse with a bare 400 or close (malformed framing).
    framing: bool,
}

/// A small deterministic generator, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn hex(&mut self, n: usize) -> String {
        hex::encode(self.bytes(n.div_ceil(2)))[..n].to_string()
    }
}

fn request(
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body_len: Option<usize>,
) -> Vec<u8> {
    let mut h = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(n) = body_len {
        h.push_str(&format!("Content-Length: {n}\r\n"));
    }
    h.push_str("\r\n");
    h.into_bytes()
}

const GET_ROUTES: &[&str] = &[
    "/api/fleet/cluster/status",
    "/api/fleet/cluster/nodes",
    "/api/fleet/machines",
    "/api/fleet/machines/web-01",
    "/api/fleet/summary",
    "/api/fleet/keys",
    "/api/session",
    "/metrics",
];

fn generate(rng: &mut Rng, n: usize) -> Vec<Case> {
    let auth = |t: &str| ("Authorization", format!("Bearer {t}"));
    let mut out = Vec::new();
    while out.len() < n {
        let i = out.len();
        let case = match i % 14 {
            // Bad JSON: random bytes, truncated objects, invalid UTF-8, deep nesting.
            0 => {
                let body = match rng.below(4) {
                    0 => {
                        let n = 1 + rng.below(300);
                        rng.bytes(n)
                    }
                    1 => br#"{"machine_id": "x", "cpu_percent": "#.to_vec(),
                    2 => {
                        let mut b = br#"{"machine_id": ""#.to_vec();
                        b.extend_from_slice(&[0xff, 0xfe, 0xc0, 0x80]);
                        b.extend_from_slice(br#""}"#);
                        b
                    }
                    _ => "[".repeat(2000 + rng.below(5000)).into_bytes(),
                };
                Case {
                    kind: "bad JSON / UTF-8 report",
                    head: request(
                        "POST",
                        "/api/fleet/report",
                        &[auth(AGENT_KEY), ("Content-Type", "application/json".into())],
                        Some(body.len()),
                    ),
                    body: Body::Bytes(body),
                    want: &[400, 422],
                    framing: false,
                }
            }
            1 => {
                let body = if rng.below(2) == 0 {
                    {
                        let n = 1 + rng.below(200);
                        rng.bytes(n)
                    }
                } else {
                    br#"{"username": 5, "password": []}"#.to_vec()
                };
                Case {
                    kind: "bad JSON login",
                    head: request(
                        "POST",
                        "/login",
                        &[("Content-Type", "application/json".into())],
                        Some(body.len()),
                    ),
                    body: Body::Bytes(body),
                    want: &[400],
                    framing: false,
                }
            }
            // Forged session cookies on the API and on pages.
            2 => {
                let cookie = match rng.below(4) {
                    0 => format!("fleet_session={}", rng.hex(64)),
                    1 => format!("__Host-fleet_session={}", rng.hex(64)),
                    2 => "fleet_session=../../etc/passwd".into(),
                    _ => format!("fleet_session={}", "A".repeat(1 + rng.below(3000))),
                };
                let path = GET_ROUTES[rng.below(GET_ROUTES.len())];
                let path = if path == "/metrics" {
                    "/api/session"
                } else {
                    path
                };
                Case {
                    kind: "forged session cookie (API)",
                    head: request("GET", path, &[("Cookie", cookie)], None),
                    body: Body::None,
                    want: &[401],
                    framing: false,
                }
            }
            3 => Case {
                kind: "forged session cookie (page)",
                head: request(
                    "GET",
                    ["/dashboard", "/machines/web-01"][rng.below(2)],
                    &[
                        ("Cookie", format!("fleet_session={}", rng.hex(64))),
                        ("Accept", "text/html".into()),
                    ],
                    None,
                ),
                body: Body::None,
                // Pages send a browser to the login form.
                want: &[303],
                framing: false,
            },
            // Forged keys and tokens.
            4 => {
                let token = match rng.below(3) {
                    0 => format!("fleet_{}", rng.hex(64)),
                    1 => {
                        let n = 10 + rng.below(100);
                        rng.hex(n)
                    }
                    _ => format!("fleetadm_{}", rng.hex(40)),
                };
                if rng.below(2) == 0 {
                    let body = br#"{"machine_id":"x"}"#.to_vec();
                    Case {
                        kind: "forged API key / admin token",
                        head: request(
                            "POST",
                            "/api/fleet/report",
                            &[auth(&token), ("Content-Type", "application/json".into())],
                            Some(body.len()),
                        ),
                        body: Body::Bytes(body),
                        want: &[401],
                        framing: false,
                    }
                } else {
                    Case {
                        kind: "forged API key / admin token",
                        head: request(
                            "POST",
                            "/api/fleet/cluster/nodes/tls-x/drain",
                            &[auth(&token)],
                            Some(0),
                        ),
                        body: Body::None,
                        want: &[401],
                        framing: false,
                    }
                }
            }
            // Path tricks.
            5 => {
                let paths = [
                    "/../../etc/passwd",
                    "/api/fleet/../../../etc/passwd",
                    "/static/..%2f..%2fCargo.toml",
                    "/static/%2e%2e/%2e%2e/etc/passwd",
                    "//api//fleet//machines",
                    "/api/fleet/machines/%00",
                    "/api/fleet/machines/%ff%fe",
                    "/api/fleet/machines?limit=-1&sort=%ff",
                    "/api/fleet/machines?status=nonsense",
                    "/api/fleet/cluster/nodes?status=%00",
                    "/%2e%2e/%2e%2e/",
                    "/api/fleet/machines/web-01?range=99999d",
                ];
                Case {
                    kind: "path tricks",
                    head: request(
                        "GET",
                        paths[rng.below(paths.len())],
                        &[auth(ADMIN_TOKEN)],
                        None,
                    ),
                    body: Body::None,
                    want: &[400, 404],
                    framing: false,
                }
            }
            // Malformed node ids with a valid admin token: 400, not 503.
            6 => {
                let ids = [
                    "..".to_string(),
                    "%2e%2e".into(),
                    "a%2fb".into(),
                    "a%00b".into(),
                    "x".repeat(300),
                    "%20".into(),
                    "a%0ab".into(),
                ];
                let id = &ids[rng.below(ids.len())];
                let (method, path) = match rng.below(3) {
                    0 => ("POST", format!("/api/fleet/cluster/nodes/{id}/drain")),
                    1 => ("POST", format!("/api/fleet/cluster/nodes/{id}/undrain")),
                    _ => ("DELETE", format!("/api/fleet/cluster/nodes/{id}")),
                };
                Case {
                    kind: "malformed node id",
                    head: request(method, &path, &[auth(ADMIN_TOKEN)], Some(0)),
                    body: Body::None,
                    // DELETE reads the registry and finds no such node: 404 is right there.
                    want: if method == "DELETE" {
                        &[400, 404]
                    } else {
                        &[400]
                    },
                    framing: false,
                }
            }
            // Wrong methods.
            7 => {
                let (m, p) = match rng.below(4) {
                    0 => ("PUT", GET_ROUTES[rng.below(GET_ROUTES.len())]),
                    1 => ("PATCH", "/api/fleet/summary"),
                    2 => ("GET", "/api/fleet/report"),
                    _ => ("DELETE", "/login"),
                };
                Case {
                    kind: "wrong method",
                    head: request(m, p, &[auth(ADMIN_TOKEN)], Some(0)),
                    body: Body::None,
                    want: &[405],
                    framing: false,
                }
            }
            // Wrong content types.
            8 => {
                let ct = [
                    "text/plain",
                    "application/xml",
                    "multipart/form-data; boundary=x",
                    "image/png",
                    "",
                ][rng.below(5)];
                let body = br#"{"machine_id":"x"}"#.to_vec();
                let (path, hdrs) = if rng.below(2) == 0 {
                    (
                        "/api/fleet/report",
                        vec![auth(AGENT_KEY), ("Content-Type", ct.to_string())],
                    )
                } else {
                    ("/login", vec![("Content-Type", ct.to_string())])
                };
                let hdrs: Vec<(&str, String)> =
                    hdrs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
                Case {
                    kind: "wrong content type",
                    head: request("POST", path, &hdrs, Some(body.len())),
                    body: Body::Bytes(body),
                    want: &[415],
                    framing: false,
                }
            }
            // Header floods: one 70 kB header, or many headers adding up.
            9 => {
                let big = if rng.below(2) == 0 {
                    vec![("X-Padding", "a".repeat(70 * 1024))]
                } else {
                    (0..90).map(|_| ("X-Many", "b".repeat(800))).collect()
                };
                let path = GET_ROUTES[rng.below(GET_ROUTES.len())];
                Case {
                    kind: "70 kB headers",
                    head: request("GET", path, &big, None),
                    body: Body::None,
                    want: &[431],
                    framing: false,
                }
            }
            // Bad UTF-8 and control bytes in header values and form bodies.
            10 => {
                let mut head = b"GET /api/fleet/machines HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer \xff\xfe\x80\r\n\r\n".to_vec();
                if rng.below(2) == 0 {
                    head = b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 12\r\n\r\n".to_vec();
                    return_case(
                        &mut out,
                        Case {
                            kind: "bad UTF-8",
                            head,
                            body: Body::Bytes(b"username=%ff".to_vec()),
                            want: &[400],
                            framing: false,
                        },
                    );
                    continue;
                }
                Case {
                    kind: "bad UTF-8",
                    head,
                    body: Body::None,
                    want: &[401],
                    framing: false,
                }
            }
            // Malformed HTTP framing: refused by the parser before any route.
            11 => {
                let heads: [&[u8]; 5] = [
                    b"GARBAGE\r\n\r\n",
                    b"GET / HTTP/9.9\r\n\r\n",
                    b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
                    b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
                ];
                Case {
                    kind: "malformed HTTP framing",
                    head: heads[rng.below(heads.len())].to_vec(),
                    body: Body::None,
                    want: &[400],
                    framing: true,
                }
            }
            // A valid-looking login with a random user: refused or throttled, never served.
            12 => {
                let body = format!("username=u{}&password={}", rng.hex(12), rng.hex(8));
                Case {
                    kind: "random-user login",
                    head: request(
                        "POST",
                        "/login",
                        &[("Content-Type", "application/x-www-form-urlencoded".into())],
                        Some(body.len()),
                    ),
                    body: Body::Bytes(body.into_bytes()),
                    want: &[401, 429],
                    framing: false,
                }
            }
            // Unknown routes, with and without credentials.
            _ => Case {
                kind: "unknown route",
                head: request(
                    ["GET", "POST", "OPTIONS"][rng.below(3)],
                    &format!("/{}", {
                        let n = 1 + rng.below(40);
                        rng.hex(n)
                    }),
                    &[],
                    Some(0),
                ),
                body: Body::None,
                want: &[404],
                framing: false,
            },
        };
        out.push(case);
    }
    // The 10 MB bodies, declared and chunked, on every route that reads a body and a few that
    // do not.
    for path in [
        "/api/fleet/report",
        "/login",
        "/logout",
        "/api/fleet/summary",
    ] {
        for chunked in [false, true] {
            for _ in 0..3 {
                let n = 10 * 1024 * 1024;
                let mut hdrs = vec![("Content-Type", "application/json".to_string())];
                if path == "/api/fleet/report" {
                    hdrs.push(auth(AGENT_KEY));
                }
                let (head, body) = if chunked {
                    hdrs.push(("Transfer-Encoding", "chunked".into()));
                    (request("POST", path, &hdrs, None), Body::ChunkedZeros(n))
                } else {
                    (request("POST", path, &hdrs, Some(n)), Body::Zeros(n))
                };
                out.push(Case {
                    kind: "10 MB body",
                    head,
                    body,
                    // /api/fleet/summary is GET-only: 405 before any body is read is right.
                    want: if path == "/api/fleet/summary" {
                        &[405, 413]
                    } else {
                        &[413]
                    },
                    framing: false,
                });
            }
        }
    }
    out
}

fn return_case(out: &mut Vec<Case>, c: Case) {
    out.push(c);
}

/// Strings no answer may contain: stack traces, source or internal paths.
fn leaks(body: &str, dir: &Path) -> Option<&'static str> {
    let d = dir.to_string_lossy();
    if body.contains("panicked") {
        return Some("panic message");
    }
    if body.contains("src/") || body.contains(".rs:") {
        return Some("source path");
    }
    if body.contains("/rustc/") || body.contains("stack backtrace") {
        return Some("backtrace");
    }
    if body.contains(d.as_ref()) || body.contains("/root/") || body.contains("/tmp/") {
        return Some("filesystem path");
    }
    None
}

#[tokio::test(flavor = "multi_thread")]
async fn reliability_hostile_requests() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&config(dir.path(), ""), "hostile");
    eventually(Duration::from_secs(15), "node healthy", || async {
        let (code, _) = get_json(&format!("{}/api/fleet/cluster/health", node.url()), None).await;
        (code == 200).then_some(())
    })
    .await;

    let mut rng = Rng(0x5eed_f1ee_7c71_0011);
    let cases = generate(&mut rng, 10_200);
    let total = cases.len();
    assert!(total >= 10_000);
    let started = Instant::now();
    let slots = Arc::new(Semaphore::new(16));
    let port = node.port;
    let mut tasks = Vec::new();
    for c in cases {
        let permit = slots.clone().acquire_owned().await.unwrap();
        tasks.push(tokio::spawn(async move {
            let a = exchange(port, c.head, c.body).await;
            drop(permit);
            (c.kind, c.want, c.framing, a)
        }));
    }
    let mut by_kind: BTreeMap<&str, BTreeMap<u16, usize>> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut five_xx = 0;
    for t in tasks {
        let (kind, want, framing, a) = t.await.unwrap();
        *by_kind
            .entry(kind)
            .or_default()
            .entry(a.status)
            .or_default() += 1;
        let body = String::from_utf8_lossy(&a.body).to_string();
        if a.status >= 500 {
            five_xx += 1;
        }
        let problem = if a.closed && !framing {
            Some("closed without an answer".to_string())
        } else if a.closed {
            None
        } else if !want.contains(&a.status) {
            Some(format!("status {} (want {want:?})", a.status))
        } else if a.status >= 400
            && !framing
            && !(a.content_type.starts_with("application/json")
                && serde_json::from_slice::<serde_json::Value>(&a.body)
                    .is_ok_and(|v| v["error"].is_string())
                || a.content_type.starts_with("text/html"))
        {
            Some(format!(
                "error body is neither JSON {{error}} nor HTML: {:?}",
                a.content_type
            ))
        } else {
            leaks(&body, dir.path()).map(|l| format!("answer leaks a {l}"))
        };
        if let Some(p) = problem
            && failures.len() < 30
        {
            failures.push(format!("{kind}: {p}: {}", &body[..body.len().min(200)]));
        }
    }
    let elapsed = started.elapsed();
    let log = node.log_text();
    let panics = log.matches("panicked").count();
    let (code, _) = get_json(&format!("{}/api/fleet/cluster/health", node.url()), None).await;
    let summary: Vec<String> = by_kind
        .iter()
        .map(|(k, s)| {
            let n: usize = s.values().sum();
            let codes: Vec<String> = s.iter().map(|(c, n)| format!("{c}×{n}")).collect();
            format!("{k}: {n} ({})", codes.join(", "))
        })
        .collect();
    println!("{}", summary.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(five_xx, 0);
    assert_eq!(panics, 0, "the node logged a panic:\n{log}");
    assert_eq!(code, 200, "the node is still healthy");
    reliability::record(
        "hostile_requests",
        &format!(
            "{total} generated requests over raw TCP, 16 at a time, across every route: {}",
            summary.join("; ")
        ),
        "0 panics, 0 5xx; every answer the expected 4xx (303 to /login for pages with a forged cookie), every error body JSON {\"error\"} or an HTML page, none naming a source or filesystem path; health 200 afterwards (malformed HTTP framing is refused by the parser with a bare 400 or a close)",
        &format!(
            "{total} requests in {:.1} s ({:.0}/s)",
            elapsed.as_secs_f64(),
            total as f64 / elapsed.as_secs_f64()
        ),
    );
}

/// One timed GET of a cheap authenticated route on a fresh connection.
async fn timed_get(port: u16) -> Duration {
    let t = Instant::now();
    let a = exchange(
        port,
        request(
            "GET",
            "/api/fleet/cluster/nodes",
            &[("Authorization", format!("Bearer {ADMIN_TOKEN}"))],
            None,
        ),
        Body::None,
    )
    .await;
    assert_eq!(a.status, 200, "normal request failed: {a:?}");
    t.elapsed()
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

#[tokio::test(flavor = "multi_thread")]
async fn reliability_slowloris() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&config(dir.path(), ""), "slowloris");
    eventually(Duration::from_secs(15), "node healthy", || async {
        let (code, _) = get_json(&format!("{}/api/fleet/cluster/health", node.url()), None).await;
        (code == 200).then_some(())
    })
    .await;
    let port = node.port;
    for _ in 0..20 {
        timed_get(port).await;
    }
    let mut unloaded = Vec::new();
    for _ in 0..300 {
        unloaded.push(timed_get(port).await);
    }
    let base = p99(unloaded);

    // 500 clients each sending one byte of a request head every 500 ms, for ever. They run
    // on their own thread and runtime, so their 1,000 wake-ups a second load the node, not
    // the scheduler of the client that measures the normal requests.
    let started = Instant::now();
    let attack = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut attackers = Vec::new();
            for _ in 0..500 {
                attackers.push(tokio::spawn(async move {
                    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                    let head = b"GET /api/fleet/summary HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
                    let t = Instant::now();
                    let mut i = 0;
                    loop {
                        let byte = head.get(i).copied().unwrap_or(b'a');
                        if s.write_all(&[byte]).await.is_err() {
                            return t.elapsed();
                        }
                        i += 1;
                        let mut b = [0u8; 512];
                        match tokio::time::timeout(Duration::from_millis(500), s.read(&mut b)).await
                        {
                            Ok(Ok(0)) | Ok(Err(_)) => return t.elapsed(),
                            // The node answered (408 or similar): it is closing.
                            Ok(Ok(_)) => return t.elapsed(),
                            Err(_) => {}
                        }
                        if t.elapsed() > Duration::from_secs(30) {
                            return t.elapsed();
                        }
                    }
                }));
            }
            let mut closed_after = Vec::new();
            for a in attackers {
                closed_after.push(a.await.unwrap());
            }
            closed_after
        })
    });
    // Normal traffic while they hang on.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut loaded = Vec::new();
    for _ in 0..300 {
        loaded.push(timed_get(port).await);
    }
    let under_load = p99(loaded);
    let closed_after = tokio::task::spawn_blocking(move || attack.join().unwrap())
        .await
        .unwrap();
    let slowest = closed_after.iter().max().copied().unwrap();
    let all_closed = started.elapsed();
    println!(
        "[measure] slowloris: unloaded p99 {base:?}, loaded p99 {under_load:?}, slowest attacker closed after {slowest:?}"
    );
    assert!(
        slowest <= Duration::from_secs(10),
        "a slowloris connection lived {slowest:?}"
    );
    // Within 2× of the unloaded p99, plus 5 ms: the 500 slow connections wake their tasks
    // ~2,000 times a second on two shared cores, which moves the third-slowest of 300
    // requests by a few milliseconds without starving anything (a 1 ms floor failed one
    // run in three on an idle machine, at 1.7 → 4.6 ms). Starvation, what this guards
    // against, shows as requests waiting for the header timeout: seconds.
    assert!(
        under_load <= base * 2 + Duration::from_millis(5),
        "p99 {under_load:?} under slowloris vs {base:?} unloaded"
    );
    reliability::record(
        "slowloris",
        "500 connections each trickling a request head (1 byte / 500 ms); meanwhile 300 normal authenticated GETs, each on a new connection",
        "every slow connection was closed by the node within 10 s (server.header_read_timeout 5 s); normal requests kept their p99 within 2× of the unloaded p99 (+5 ms)",
        &format!(
            "slowest slow connection closed after {:.2} s (all within {:.2} s); p99 unloaded {:.2} ms, under slowloris {:.2} ms",
            slowest.as_secs_f64(),
            all_closed.as_secs_f64(),
            base.as_secs_f64() * 1e3,
            under_load.as_secs_f64() * 1e3
        ),
    );
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn reliability_login_flood() {
    let dir = tempfile::tempdir().unwrap();
    // The per-address limit is raised so every login reaches the password check: this test is
    // about the bound on argon2, not about the throttle (tested in login_api).
    let node = Node::start(
        &config(dir.path(), "  max_login_failures_per_ip: 1000000\n"),
        "flood",
    );
    eventually(Duration::from_secs(15), "node healthy", || async {
        let (code, _) = get_json(&format!("{}/api/fleet/cluster/health", node.url()), None).await;
        (code == 200).then_some(())
    })
    .await;
    let port = node.port;
    let pid = node.pid();
    let before = rss_kib(pid, "VmRSS:");
    let started = Instant::now();
    let mut rng = Rng(0xf100_d000_0000_0001);
    let mut logins = Vec::new();
    // 1,000 logins spread evenly over 10 s.
    for i in 0..1000u32 {
        let at = started + Duration::from_millis(u64::from(i) * 10);
        let body = format!("username=flood-{}&password={}", rng.hex(16), rng.hex(12));
        logins.push(tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let a = exchange(
                port,
                request(
                    "POST",
                    "/login",
                    &[("Content-Type", "application/x-www-form-urlencoded".into())],
                    Some(body.len()),
                ),
                Body::Bytes(body.into_bytes()),
            )
            .await;
            a.status
        }));
    }
    // Health checks and RSS samples throughout.
    let mut health_codes = BTreeMap::new();
    let mut health_slowest = Duration::ZERO;
    let mut peak = 0;
    while started.elapsed() < Duration::from_secs(12) {
        let t = Instant::now();
        let (code, _) = get_json(
            &format!("http://127.0.0.1:{port}/api/fleet/cluster/health"),
            None,
        )
        .await;
        health_slowest = health_slowest.max(t.elapsed());
        *health_codes.entry(code).or_insert(0) += 1;
        peak = peak.max(rss_kib(pid, "VmRSS:"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for l in logins {
        *statuses.entry(l.await.unwrap()).or_default() += 1;
    }
    let hwm = rss_kib(pid, "VmHWM:");
    let elapsed = started.elapsed();
    let codes: Vec<String> = statuses.iter().map(|(c, n)| format!("{c}×{n}")).collect();
    println!(
        "[measure] login flood: {} in {elapsed:?}; RSS before {before} KiB, peak {peak} KiB, HWM {hwm} KiB; health {health_codes:?} (slowest {health_slowest:?})",
        codes.join(", ")
    );
    assert!(hwm < 512 * 1024, "RSS high-water mark {hwm} KiB");
    assert_eq!(
        health_codes.keys().copied().collect::<Vec<_>>(),
        vec![200],
        "health during the flood: {health_codes:?}"
    );
    assert!(
        statuses.keys().all(|c| [401, 503].contains(c)),
        "logins answered {statuses:?}"
    );
    reliability::record(
        "login_flood",
        "1,000 form logins with random usernames, one every 10 ms (100/s for 10 s), each on its own connection; health checked every 200 ms",
        "node RSS stayed under 512 MB; every health check 200; argon2 verifications ran one per core at most (a login that waited over 5 s for a thread, or found 32 per thread already waiting, got 503 + Retry-After instead of queueing without bound)",
        &format!(
            "answers {}; RSS {} MiB before, high-water {} MiB; {} health checks, slowest {:.0} ms",
            codes.join(", "),
            before / 1024,
            hwm / 1024,
            health_codes.values().sum::<usize>(),
            health_slowest.as_secs_f64() * 1e3
        ),
    );
}
