//! TLS on the node (`server.tls`), proven with real clients: curl with `--cacert`, plain HTTP
//! on the TLS port, an old protocol, mutual TLS, `--ca-file` on the CLI, a certificate swapped
//! by SIGHUP under an open keep-alive connection, HAProxy and nginx speaking TLS to TLS
//! nodes with real traffic, and a login in headless Chromium keeping its `__Host-` cookie.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::Locator;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::browser::Browser;
use crate::support::certs::{self, Leaf, Pki};
use crate::support::lb::{LbProcess, wait_port};
use crate::support::node::{ADMIN_TOKEN, Node, eventually, sha256_hex};
use crate::support::{fleetctl_bin, free_port, require_binary};

const PASSWORD: &str = "correct horse battery staple";
const AGENT_KEY: &str = "fleet_00000000000000000000000000000000000000000000000000000000000000a1";

/// A standalone node config serving TLS with `leaf`, optionally asking for client
/// certificates signed by `client_ca`.
fn tls_config(dir: &Path, leaf: &Leaf, client_ca: Option<&Path>) -> PathBuf {
    let hash = fleetctl::credentials::hash_password(PASSWORD).unwrap();
    let client_ca = client_ca
        .map(|p| format!("\n    client_ca: {}", p.display()))
        .unwrap_or_default();
    let text = format!(
        "server:\n  tls:\n    cert: {}\n    key: {}{client_ca}\n\
         auth:\n  users:\n    - {{ username: admin, password_hash: \"{hash}\" }}\n  \
         admin_tokens:\n    - {{ name: ops, sha256: {} }}\n  \
         api_keys:\n    - {{ name: agents, sha256: {} }}\n",
        leaf.cert.display(),
        leaf.key.display(),
        sha256_hex(ADMIN_TOKEN),
        sha256_hex(AGENT_KEY)
    );
    let path = dir.join("fleet.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `curl` → (exit code, HTTP status or 0, headers and body).
fn curl(args: &[&str]) -> (i32, u16, String) {
    let out = Command::new(require_binary("curl", "curl"))
        .args(["-sS", "-i", "-o", "-", "--max-time", "10"])
        .args(args)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (
        out.status.code().unwrap_or(-1),
        status,
        format!("{text}{}", String::from_utf8_lossy(&out.stderr)),
    )
}

async fn wait_healthy_https(node: &Node, ca: &Path) {
    let url = format!("{}/api/fleet/cluster/health", node.https_url());
    let ca = ca.to_str().unwrap().to_string();
    eventually(Duration::from_secs(15), "TLS node healthy", || {
        let (url, ca) = (url.clone(), ca.clone());
        async move { (curl(&["--cacert", &ca, &url]).1 == 200).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_node_serves_https_and_refuses_plain_http_and_old_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "fleet");
    let leaf = pki.issue("node-v1");
    let node = Node::start(&tls_config(dir.path(), &leaf, None), "tls-a");
    wait_healthy_https(&node, &pki.ca).await;
    let health = format!("{}/api/fleet/cluster/health", node.https_url());
    let ca = pki.ca.to_str().unwrap();

    let (code, status, text) = curl(&["--cacert", ca, &health]);
    assert_eq!((code, status), (0, 200), "{text}");
    assert!(
        text.contains("strict-transport-security: max-age=31536000"),
        "{text}"
    );
    // By name as well as by address (the certificate carries both).
    let by_name = format!("https://localhost:{}/api/fleet/cluster/health", node.port);
    assert_eq!(curl(&["--cacert", ca, &by_name]).1, 200);

    // Plain HTTP on the TLS port: a 400 that says what to do, never a 200.
    let plain = format!("http://127.0.0.1:{}/api/fleet/cluster/health", node.port);
    let (_, status, text) = curl(&[&plain]);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("use https://"), "{text}");
    let (_, status, _) = curl(&[&format!("http://127.0.0.1:{}/login", node.port)]);
    assert_ne!(status, 200);

    // TLS 1.1 and older are refused; an unknown CA is refused by the client.
    let (code, status, text) = curl(&["--cacert", ca, "--tls-max", "1.1", &health]);
    assert!(code != 0 && status == 0, "TLS 1.1 accepted: {text}");
    let (code, _, text) = curl(&[&health]);
    assert_eq!(code, 60, "unknown CA must fail verification: {text}");
    let (code, status, _) = curl(&["--cacert", ca, "--tlsv1.2", "--tls-max", "1.2", &health]);
    assert_eq!((code, status), (0, 200), "TLS 1.2 is accepted");

    // Admin commands over HTTPS: --ca-file trusts the private CA.
    let status = Command::new(fleetctl_bin())
        .args(["cluster", "status", "--server", &node.https_url()])
        .args(["--token", ADMIN_TOKEN, "--ca-file", ca, "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(
        status.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let without = Command::new(fleetctl_bin())
        .args(["cluster", "status", "--server", &node.https_url()])
        .args(["--token", ADMIN_TOKEN])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&without.stderr);
    assert_eq!(without.status.code(), Some(1), "{err}");
    assert!(err.contains("--ca-file"), "{err}");

    // The agent reports over HTTPS with --ca-file: two simulated machines for 2 s.
    let key_file = dir.path().join("agent.key");
    std::fs::write(&key_file, AGENT_KEY).unwrap();
    let agent = Command::new(fleetctl_bin())
        .args(["agent", "--server", &node.https_url(), "--ca-file", ca])
        .arg("--api-key-file")
        .arg(&key_file)
        .args(["--simulate", "2", "--interval", "1s", "--duration", "2s"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&agent.stderr);
    assert_eq!(agent.status.code(), Some(0), "{err}");
    assert!(err.contains(" 0 failed"), "{err}");
}

/// An HTTP/1.1 keep-alive client over rustls: the certificate the server showed, and GETs.
struct TlsClient {
    stream: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
}

impl TlsClient {
    async fn connect(port: u16, ca: &Path) -> TlsClient {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(ca).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .expect("TLS handshake");
        TlsClient { stream }
    }

    fn peer_cert(&self) -> Vec<u8> {
        self.stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    }

    async fn get(&mut self, path: &str) -> u16 {
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        self.stream.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = self.stream.read(&mut chunk).await.expect("read response");
            assert!(n > 0, "the server closed the keep-alive connection");
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let len: usize = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    return text[9..12].parse().unwrap();
                }
            }
        }
    }
}

fn der(cert: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(cert).unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_sighup_gives_new_handshakes_the_new_cert_and_keeps_open_connections() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "fleet");
    let v1 = pki.issue("node-v1");
    let v2 = pki.issue("node-v2");
    // The node reads these two paths; the test swaps what they hold.
    let live = Leaf {
        cert: dir.path().join("live.pem"),
        key: dir.path().join("live.key"),
        combined: v1.combined.clone(),
    };
    std::fs::copy(&v1.cert, &live.cert).unwrap();
    std::fs::copy(&v1.key, &live.key).unwrap();
    let node = Node::start(&tls_config(dir.path(), &live, None), "tls-reload");
    wait_healthy_https(&node, &pki.ca).await;

    let mut open = TlsClient::connect(node.port, &pki.ca).await;
    assert_eq!(open.peer_cert(), der(&v1.cert));
    assert_eq!(open.get("/api/fleet/cluster/health").await, 200);

    // A new certificate, installed the way an operator does (write, rename), then SIGHUP.
    let started = Instant::now();
    for (from, to) in [(&v2.cert, &live.cert), (&v2.key, &live.key)] {
        let tmp = to.with_extension("new");
        std::fs::copy(from, &tmp).unwrap();
        std::fs::rename(&tmp, to).unwrap();
    }
    node.signal("HUP");
    let v2_der = der(&v2.cert);
    eventually(Duration::from_secs(10), "new handshakes get v2", || {
        let (ca, v2_der) = (pki.ca.clone(), v2_der.clone());
        async move {
            let c = TlsClient::connect(node.port, &ca).await;
            (c.peer_cert() == v2_der).then_some(())
        }
    })
    .await;
    let reload_ms = started.elapsed().as_millis();

    // The connection opened before the reload is still there, still on v1.
    assert_eq!(open.get("/api/fleet/cluster/health").await, 200);
    assert_eq!(open.peer_cert(), der(&v1.cert));

    // A broken file on the next SIGHUP: the node keeps serving v2 and says why.
    std::fs::write(&live.key, "not a key").unwrap();
    node.signal("HUP");
    eventually(Duration::from_secs(10), "reload failure logged", || async {
        node.log_text().contains("TLS reload failed").then_some(())
    })
    .await;
    let fresh = TlsClient::connect(node.port, &pki.ca).await;
    assert_eq!(fresh.peer_cert(), v2_der);
    assert_eq!(open.get("/api/fleet/cluster/health").await, 200);

    crate::support::reliability::record(
        "tls_sighup_reload",
        "HTTPS node; keep-alive connection opened; cert+key replaced by rename; SIGHUP; then a broken key and SIGHUP again",
        "new handshakes got the new certificate; the open connection answered 200 before, after both reloads, still on the old certificate; the broken reload kept the previous certificate",
        &format!("new certificate served {reload_ms} ms after the swap"),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_client_ca_requires_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "fleet");
    let leaf = pki.issue("node-m");
    let client = pki.issue("lb-client");
    let other = Pki::new(
        &{
            let d = dir.path().join("other");
            std::fs::create_dir(&d).unwrap();
            d
        },
        "rogue",
    );
    let rogue = other.issue("rogue-client");
    let node = Node::start(&tls_config(dir.path(), &leaf, Some(&pki.ca)), "tls-m");
    let ca = pki.ca.to_str().unwrap();
    let health = format!("{}/api/fleet/cluster/health", node.https_url());
    let with = |c: &Leaf| {
        curl(&[
            "--cacert",
            ca,
            "--cert",
            c.cert.to_str().unwrap(),
            "--key",
            c.key.to_str().unwrap(),
            &health,
        ])
    };
    eventually(Duration::from_secs(15), "mTLS node healthy", || async {
        (with(&client).1 == 200).then_some(())
    })
    .await;
    let (code, status, text) = curl(&["--cacert", ca, &health]);
    assert!(code != 0 && status == 0, "no client cert accepted: {text}");
    let (code, status, text) = with(&rogue);
    assert!(
        code != 0 && status == 0,
        "a cert from another CA accepted: {text}"
    );
}

/// Two TLS nodes with mutual TLS behind HAProxy and nginx, configs from `fleetctl lb`
/// (checked by the real validators), carrying real requests.
#[tokio::test(flavor = "multi_thread")]
async fn tls_lb_haproxy_and_nginx_speak_tls_to_tls_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "fleet");
    let lb_client = pki.issue("lb-client");
    let mut nodes = Vec::new();
    for name in ["tls-n1", "tls-n2"] {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).unwrap();
        let leaf = pki.issue(name);
        nodes.push(Node::start(&tls_config(&d, &leaf, Some(&pki.ca)), name));
    }
    for n in &nodes {
        let health = format!("{}/api/fleet/cluster/health", n.https_url());
        let (ca, cert, key) = (
            path_str(&pki.ca),
            path_str(&lb_client.cert),
            path_str(&lb_client.key),
        );
        eventually(Duration::from_secs(20), "TLS node healthy", || {
            let args = ["--cacert", &ca, "--cert", &cert, "--key", &key, &health].map(String::from);
            async move {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                (curl(&args).1 == 200).then_some(())
            }
        })
        .await;
    }
    let node_args: Vec<String> = nodes
        .iter()
        .flat_map(|n| ["--node".to_string(), format!("127.0.0.1:{}", n.port)])
        .collect();
    let ca = pki.ca.to_str().unwrap().to_string();
    for kind in ["haproxy", "nginx"] {
        let lb_dir = dir.path().join(kind);
        std::fs::create_dir(&lb_dir).unwrap();
        let port = free_port();
        let cfg = lb_dir.join(format!("{kind}.cfg"));
        let mut args: Vec<String> = vec![format!("gen-{kind}")];
        args.extend(node_args.iter().cloned());
        args.extend(
            [
                "--node-ca-file",
                &ca,
                "--node-tls-name",
                "fleet-node",
                "--check-interval",
                "500ms",
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--runtime-dir",
                lb_dir.to_str().unwrap(),
                "--check",
                "-o",
                cfg.to_str().unwrap(),
            ]
            .map(String::from),
        );
        if kind == "haproxy" {
            args.extend(["--node-client-cert".into(), path_str(&lb_client.combined)]);
        } else {
            args.extend([
                "--node-client-cert".into(),
                path_str(&lb_client.cert),
                "--node-client-key".into(),
                path_str(&lb_client.key),
            ]);
        }
        let out = Command::new(fleetctl_bin())
            .arg("lb")
            .args(&args)
            .current_dir(&lb_dir)
            .output()
            .unwrap();
        let text = std::fs::read_to_string(&cfg).unwrap_or_default();
        assert!(
            out.status.success(),
            "fleetctl lb gen-{kind} --check: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        if kind == "haproxy" {
            assert!(
                text.contains(&format!("ssl verify required ca-file {ca}")),
                "{text}"
            );
        } else {
            assert!(text.contains("proxy_pass https://fleet_nodes;"), "{text}");
            assert!(text.contains("proxy_ssl_verify on;"), "{text}");
        }
        let mut cmd = Command::new(require_binary(kind, kind));
        if kind == "haproxy" {
            cmd.arg("-db").arg("-f").arg(&cfg);
        } else {
            cmd.args(["-e", "stderr", "-g", "daemon off;", "-c"])
                .arg(&cfg)
                .arg("-p")
                .arg(&lb_dir);
        }
        let lb = LbProcess::spawn(
            if kind == "haproxy" {
                "haproxy"
            } else {
                "nginx"
            },
            cmd,
            lb_dir.join("lb.log"),
        );
        wait_port(port, kind, || lb.log_text());
        let client = reqwest::Client::new();
        let mut seen = std::collections::BTreeSet::new();
        // A node counts once the LB's TLS health check has seen it rise: keep going until
        // both served (a loaded machine can take a few seconds).
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut ok = 0;
        while ok < 20 || seen.len() < 2 {
            assert!(
                Instant::now() < deadline,
                "{kind}: {ok} requests got 200 through TLS, from nodes {seen:?}\n{}",
                lb.log_text()
            );
            let res = client
                .get(format!("http://127.0.0.1:{port}/api/fleet/cluster/health"))
                .send()
                .await;
            if let Ok(res) = res
                && res.status() == 200
            {
                ok += 1;
                if let Some(n) = res.headers().get("x-fleet-node") {
                    seen.insert(n.to_str().unwrap().to_string());
                }
            } else {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        assert_eq!(seen.len(), 2, "{kind}: both nodes served: {seen:?}");
    }
}

fn path_str(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_browser_login_over_https_keeps_the_host_cookie() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "fleet");
    let leaf = pki.issue("node-b");
    let node = Node::start(&tls_config(dir.path(), &leaf, None), "tls-browser");
    wait_healthy_https(&node, &pki.ca).await;
    let spki = certs::spki_sha256_base64(&leaf.cert);
    let browser =
        Browser::start_with_args(&[format!("--ignore-certificate-errors-spki-list={spki}")]).await;
    let c = &browser.client;
    let base = format!("https://localhost:{}", node.port);
    c.goto(&format!("{base}/dashboard"))
        .await
        .expect("open dashboard");
    eventually(
        Duration::from_secs(10),
        "redirected to the login form",
        || async {
            let url = c.current_url().await.ok()?;
            (url.path() == "/login").then_some(())
        },
    )
    .await;
    c.find(Locator::Css("#username"))
        .await
        .unwrap()
        .send_keys("admin")
        .await
        .unwrap();
    c.find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    c.find(Locator::Css("form[action='/login'] button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "on the dashboard after login",
        || async {
            let url = c.current_url().await.ok()?;
            (url.path() == "/dashboard").then_some(())
        },
    )
    .await;
    let cookies = c.get_all_cookies().await.expect("cookies");
    let session = cookies
        .iter()
        .find(|k| k.name() == "__Host-fleet_session")
        .unwrap_or_else(|| panic!("no __Host- cookie kept: {cookies:?}"));
    assert_eq!(session.secure(), Some(true));
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(session.path(), Some("/"));
    // The dashboard works under the CSP: the script loaded and filled the tiles, and the
    // browser reported no error (a CSP violation would be one).
    browser
        .wait_text(
            "#served-by",
            Duration::from_secs(10),
            "the serving node",
            |t| t == "tls-browser",
        )
        .await;
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "console errors over HTTPS: {errors:#?}");
    // A reload keeps the user logged in: the cookie is sent back.
    c.refresh().await.unwrap();
    let url = c.current_url().await.unwrap();
    assert_eq!(url.path(), "/dashboard");
    browser.close().await;
}

/// The head deadline is not an idle timeout: a keep-alive connection waiting between requests
/// (what a load balancer's pool holds) outlives `header_read_timeout`, while a connection
/// that says nothing, or stops half-way through a head, is dropped after it.
#[tokio::test(flavor = "multi_thread")]
async fn idle_keepalive_connection_outlives_the_header_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fleet.yaml");
    std::fs::write(&config, "server:\n  header_read_timeout: 1s\n").unwrap();
    let node = Node::start(&config, "keepalive");
    let port = node.port;
    async fn get(s: &mut tokio::net::TcpStream) -> String {
        s.write_all(b"GET /api/fleet/cluster/health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("answer in time")
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).to_string()
    }
    let mut pooled = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    assert!(get(&mut pooled).await.starts_with("HTTP/1.1 200"));
    let mut silent = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut half = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    half.write_all(b"GET /api/fleet/cluster/health HTTP/1.1\r\nHo")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Idle for 2.5 × the head deadline, and still served.
    assert!(get(&mut pooled).await.starts_with("HTTP/1.1 200"));
    for (what, s) in [("silent", &mut silent), ("half a head", &mut half)] {
        let mut b = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut b))
            .await
            .unwrap_or(Ok(1))
            .unwrap_or(0);
        assert_eq!(n, 0, "{what}: the connection must be closed");
    }
}

#[test]
fn config_validate_checks_present_tls_files_at_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "fleet");
    let a = pki.issue("node-a");
    let b = pki.issue("node-b");
    let cfg = dir.path().join("fleet.yaml");
    // node-a's certificate with node-b's key.
    std::fs::write(
        &cfg,
        format!(
            "server:\n  tls:\n    cert: {}\n    key: {}\n",
            a.cert.display(),
            b.key.display()
        ),
    )
    .unwrap();
    let out = Command::new(fleetctl_bin())
        .args(["config", "validate"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!("{}:4:10: error: server.tls.key:", cfg.display())),
        "{text}"
    );
    // A matching pair validates.
    std::fs::write(
        &cfg,
        format!(
            "server:\n  tls:\n    cert: {}\n    key: {}\n",
            a.cert.display(),
            a.key.display()
        ),
    )
    .unwrap();
    let out = Command::new(fleetctl_bin())
        .args(["config", "validate"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
