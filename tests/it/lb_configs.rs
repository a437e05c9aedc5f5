//! `fleetctl lb gen-haproxy|gen-nginx`: snapshots of the generated configs, every variant
//! checked by the real `haproxy -c` and `nginx -t`, the CLI's errors, `-o` and `--check`, and
//! one smoke test carrying real traffic through real HAProxy and nginx to two backends, one of
//! which dies mid-way.
//!
//! The backends in the smoke test are small in-process HTTP servers speaking the node's health
//! contract (`/api/fleet/cluster/health` → 200, `X-Fleet-Node` on every response); the failover
//! tests with real `fleetctl serve` nodes build on these generators.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use fleetctl::lb::{self, Balance, Endpoint, Kind, NodeTls, Options, Target, Tls};

use crate::support::lb::{LbProcess, wait_port};
use crate::support::{fleetctl_bin, free_port, require_binary};

// ---------------------------------------------------------------------------------------------
// Inputs

fn target(name: &str, host: &str, port: u16, draining: bool) -> Target {
    Target {
        name: name.into(),
        host: host.into(),
        port,
        draining,
    }
}

/// Three nodes, the last one draining: what a rolling restart looks like from the registry.
fn cluster() -> Vec<Target> {
    vec![
        target("node-a", "10.0.0.1", 8768, false),
        target("node-b", "10.0.0.2", 8768, false),
        target("node-c", "10.0.0.3", 8768, true),
    ]
}

fn opts() -> Options {
    Options::default()
}

// ---------------------------------------------------------------------------------------------
// Snapshots: what an operator gets, reviewed line by line.

#[test]
fn lb_snapshot_haproxy_full() {
    insta::assert_snapshot!("haproxy_full", lb::haproxy::render(&cluster(), &opts()));
}

#[test]
fn lb_snapshot_haproxy_fragment() {
    let o = Options {
        fragment: true,
        balance: Balance::Leastconn,
        ..opts()
    };
    insta::assert_snapshot!("haproxy_fragment", lb::haproxy::render(&cluster(), &o));
}

#[test]
fn lb_snapshot_haproxy_tls() {
    let o = Options {
        bind: lb::parse_bind("*:443").unwrap(),
        tls: Some(Tls {
            cert: "/etc/fleet/tls/lb.pem".into(),
            key: None,
        }),
        balance: Balance::Source,
        check_interval: Duration::from_millis(500),
        fall: 2,
        rise: 1,
        runtime_dir: Some("/run/fleet-lb".into()),
        ..opts()
    };
    insta::assert_snapshot!("haproxy_tls", lb::haproxy::render(&cluster(), &o));
}

#[test]
fn lb_snapshot_nginx_full() {
    insta::assert_snapshot!("nginx_full", lb::nginx::render(&cluster(), &opts()));
}

#[test]
fn lb_snapshot_nginx_fragment() {
    let o = Options {
        fragment: true,
        balance: Balance::Source,
        ..opts()
    };
    insta::assert_snapshot!("nginx_fragment", lb::nginx::render(&cluster(), &o));
}

#[test]
fn lb_snapshot_nginx_tls() {
    let o = Options {
        bind: lb::parse_bind("[::]:443").unwrap(),
        tls: Some(Tls {
            cert: "/etc/fleet/tls/lb.crt".into(),
            key: Some("/etc/fleet/tls/lb.key".into()),
        }),
        balance: Balance::Leastconn,
        runtime_dir: Some("/run/fleet-lb".into()),
        ..opts()
    };
    insta::assert_snapshot!("nginx_tls", lb::nginx::render(&cluster(), &o));
}

/// TLS to the nodes with a client certificate (nodes with `server.tls.client_ca`).
fn node_tls(ca: &Path, cert: &Path, key: Option<&Path>) -> NodeTls {
    NodeTls {
        ca_file: ca.to_path_buf(),
        name: Some("fleet-node".into()),
        client_cert: Some(cert.to_path_buf()),
        client_key: key.map(Path::to_path_buf),
    }
}

#[test]
fn lb_snapshot_haproxy_tls_to_nodes() {
    let o = Options {
        node_tls: Some(node_tls(
            Path::new("/etc/fleet/tls/ca.pem"),
            Path::new("/etc/fleet/tls/lb-client.pem"),
            None,
        )),
        ..opts()
    };
    insta::assert_snapshot!("haproxy_tls_to_nodes", lb::haproxy::render(&cluster(), &o));
    // Without a common name, HAProxy checks names only for DNS hosts.
    let o = Options {
        node_tls: Some(NodeTls {
            ca_file: "/etc/fleet/tls/ca.pem".into(),
            name: None,
            client_cert: None,
            client_key: None,
        }),
        ..opts()
    };
    let text = lb::haproxy::render(
        &[
            target("n1", "node-1.example", 8768, false),
            target("n2", "10.0.0.2", 8768, false),
        ],
        &o,
    );
    assert!(text.contains("server n1 node-1.example:8768 check ssl verify required ca-file /etc/fleet/tls/ca.pem sni str(node-1.example) verifyhost node-1.example alpn http/1.1"), "{text}");
    assert!(text.contains("server n2 10.0.0.2:8768 check ssl verify required ca-file /etc/fleet/tls/ca.pem alpn http/1.1"), "{text}");
}

#[test]
fn lb_snapshot_nginx_tls_to_nodes() {
    let o = Options {
        node_tls: Some(node_tls(
            Path::new("/etc/fleet/tls/ca.pem"),
            Path::new("/etc/fleet/tls/lb-client.crt"),
            Some(Path::new("/etc/fleet/tls/lb-client.key")),
        )),
        ..opts()
    };
    Kind::Nginx.check_targets(&cluster(), &o).unwrap();
    insta::assert_snapshot!("nginx_tls_to_nodes", lb::nginx::render(&cluster(), &o));
    // Nodes on different hosts and no common name: nginx cannot check them all.
    let o = Options {
        node_tls: Some(NodeTls {
            name: None,
            ..node_tls(Path::new("/ca.pem"), Path::new("/c.pem"), None)
        }),
        ..opts()
    };
    let e = Kind::Nginx
        .check_targets(&cluster(), &o)
        .unwrap_err()
        .to_string();
    assert!(e.contains("--node-tls-name"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Every variant passes the real validator.

/// A certificate and key made by openssl: `(cert.pem, key.pem, combined.pem)`.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = require_binary("openssl", "openssl");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let out = Command::new(openssl)
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-days", "1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let combined = dir.join("combined.pem");
    let mut pem = std::fs::read(&cert).unwrap();
    pem.extend(std::fs::read(&key).unwrap());
    std::fs::write(&combined, pem).unwrap();
    (cert, key, combined)
}

fn haproxy_check(text: &str, dir: &Path, label: &str) {
    let haproxy = require_binary("haproxy", "haproxy");
    let file = dir.join(format!("{label}.cfg"));
    std::fs::write(&file, text).unwrap();
    let out = Command::new(haproxy)
        .arg("-c")
        .arg("-f")
        .arg(&file)
        .output()
        .expect("run haproxy -c");
    assert!(
        out.status.success(),
        "haproxy -c rejected variant {label}:\n{}\n--- config ---\n{text}",
        both(&out)
    );
}

fn nginx_check(text: &str, dir: &Path, label: &str) {
    let nginx = require_binary("nginx", "nginx");
    let file = dir.join(format!("{label}.conf"));
    std::fs::write(&file, text).unwrap();
    let out = Command::new(nginx)
        .args(["-t", "-e", "stderr", "-c"])
        .arg(&file)
        .arg("-p")
        .arg(dir)
        .output()
        .expect("run nginx -t");
    assert!(
        out.status.success(),
        "nginx -t rejected variant {label}:\n{}\n--- config ---\n{text}",
        both(&out)
    );
}

fn both(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The option combinations worth validating, each with a label for failure messages.
fn variants(dir: &Path, tls: Tls) -> Vec<(String, Vec<Target>, Options)> {
    let base = Options {
        runtime_dir: Some(dir.to_path_buf()),
        bind: lb::parse_bind("127.0.0.1:18080").unwrap(),
        ..opts()
    };
    let mut out = Vec::new();
    for balance in [Balance::Roundrobin, Balance::Leastconn, Balance::Source] {
        for fragment in [false, true] {
            out.push((
                format!("{balance:?}-fragment_{fragment}"),
                cluster(),
                Options {
                    balance,
                    fragment,
                    ..base.clone()
                },
            ));
        }
        out.push((
            format!("{balance:?}-all_draining"),
            cluster()
                .into_iter()
                .map(|t| Target {
                    draining: true,
                    ..t
                })
                .collect(),
            Options {
                balance,
                ..base.clone()
            },
        ));
    }
    out.push((
        "tls".into(),
        cluster(),
        Options {
            tls: Some(tls),
            bind: lb::parse_bind("127.0.0.1:18443").unwrap(),
            ..base.clone()
        },
    ));
    out.push((
        "ipv6_single_node_subsecond".into(),
        vec![target("v6", "::1", 8768, false)],
        Options {
            bind: lb::parse_bind("[::1]:18080").unwrap(),
            check_interval: Duration::from_millis(250),
            fall: 1,
            rise: 1,
            ..base.clone()
        },
    ));
    out.push(("default_paths".into(), cluster(), opts()));
    out
}

/// The TLS-to-nodes variants, with real files (the validators open them).
fn node_tls_variants(
    dir: &Path,
    client_cert: &Path,
    client_key: Option<&Path>,
    ca: &Path,
) -> Vec<(String, Vec<Target>, Options)> {
    let base = Options {
        runtime_dir: Some(dir.to_path_buf()),
        bind: lb::parse_bind("127.0.0.1:18080").unwrap(),
        ..opts()
    };
    vec![
        (
            "tls_to_nodes_mtls".into(),
            cluster(),
            Options {
                node_tls: Some(node_tls(ca, client_cert, client_key)),
                ..base.clone()
            },
        ),
        (
            "tls_to_nodes_verify_only".into(),
            vec![target("one", "127.0.0.1", 8768, false)],
            Options {
                node_tls: Some(NodeTls {
                    ca_file: ca.to_path_buf(),
                    name: None,
                    client_cert: None,
                    client_key: None,
                }),
                ..base.clone()
            },
        ),
    ]
}

#[test]
fn lb_every_haproxy_variant_passes_haproxy_c() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _, combined) = self_signed(dir.path());
    let tls = Tls {
        cert: combined.clone(),
        key: None,
    };
    let mut all = variants(dir.path(), tls);
    all.extend(node_tls_variants(dir.path(), &combined, None, &cert));
    for (label, targets, o) in all {
        Kind::Haproxy.check_options(&o).unwrap();
        let text = lb::haproxy::render(&targets, &o);
        let text = if o.fragment {
            // A fragment inside a minimal config of the operator's own.
            format!(
                "defaults\n    mode http\n    timeout connect 5s\n    timeout client 30s\n    \
                 timeout server 30s\n\nfrontend site\n    bind 127.0.0.1:18081\n    \
                 default_backend {}\n\n{text}",
                lb::haproxy::BACKEND
            )
        } else {
            text
        };
        haproxy_check(&text, dir.path(), &label);
    }
}

#[test]
fn lb_every_nginx_variant_passes_nginx_t() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = self_signed(dir.path());
    let tls = Tls {
        cert: cert.clone(),
        key: Some(key.clone()),
    };
    let mut all = variants(dir.path(), tls);
    all.extend(node_tls_variants(dir.path(), &cert, Some(&key), &cert));
    for (label, targets, o) in all {
        if label == "default_paths" {
            // /run/nginx.pid and /var/log/nginx need root; the snapshot covers this variant.
            continue;
        }
        Kind::Nginx.check_options(&o).unwrap();
        let text = lb::nginx::render(&targets, &o);
        let text = if o.fragment {
            let d = dir.path().display();
            format!(
                "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n    \
                 access_log off;\n    client_body_temp_path {d}/cb;\n    proxy_temp_path {d}/px;\n    \
                 fastcgi_temp_path {d}/fc;\n    uwsgi_temp_path {d}/uw;\n    scgi_temp_path {d}/sc;\n\
                 {text}\n    server {{\n        listen 127.0.0.1:18081;\n        location / {{\n            \
                 proxy_pass http://{};\n        }}\n    }}\n}}\n",
                lb::nginx::UPSTREAM
            )
        } else {
            text
        };
        nginx_check(&text, dir.path(), &label);
    }
}

// ---------------------------------------------------------------------------------------------
// The command line.

/// Run `fleetctl` in `dir` (so no ./fleet.yaml is picked up) with a clean environment.
fn fleetctl_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(fleetctl_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("FLEETCTL_CONFIG")
        .env_remove("FLEETCTL_OUTPUT")
        .env_remove("FLEETCTL_SERVER")
        .env_remove("FLEETCTL_TOKEN")
        .output()
        .expect("run fleetctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn lb_bad_node_values_exit_2_naming_the_value() {
    let dir = tempfile::tempdir().unwrap();
    for gen_cmd in ["gen-haproxy", "gen-nginx"] {
        for (value, why) in [
            ("10.0.0.1", "missing the port"),
            ("10.0.0.1:0", "port 0"),
            ("10.0.0.1:99999", "out of range"),
            (":8768", "host is empty"),
            ("::1:8768", "brackets"),
            ("bad;host:80", "contains `;`"),
        ] {
            let (code, stdout, stderr) = fleetctl_in(
                dir.path(),
                &["lb", gen_cmd, "--node", "10.0.0.9:8768", "--node", value],
            );
            assert_eq!(code, 2, "{gen_cmd} --node {value}: {stderr}");
            assert!(
                stderr.contains(&format!("`{value}`")) && stderr.contains(why),
                "{gen_cmd} --node {value}: stderr should name the value and say {why:?}: {stderr}"
            );
            assert!(stdout.is_empty(), "no config on a usage error: {stdout}");
        }
    }
}

#[test]
fn lb_no_nodes_exits_2_saying_how_to_give_them() {
    let dir = tempfile::tempdir().unwrap();
    for gen_cmd in ["gen-haproxy", "gen-nginx"] {
        let (code, stdout, stderr) = fleetctl_in(dir.path(), &["lb", gen_cmd]);
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains("--node HOST:PORT") && stderr.contains("--server"),
            "{stderr}"
        );
        assert!(stdout.is_empty());
    }
}

#[test]
fn lb_haproxy_rejects_a_separate_tls_key_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = fleetctl_in(
        dir.path(),
        &[
            "lb",
            "gen-haproxy",
            "--node",
            "10.0.0.1:8768",
            "--tls-cert",
            "/x/c.pem",
            "--tls-key",
            "/x/k.pem",
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("one PEM"), "{stderr}");
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn lb_out_file_is_replaced_atomically_keeping_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("haproxy.cfg");
    std::fs::write(&out, "old config\n").unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o640)).unwrap();

    let (code, stdout, stderr) = fleetctl_in(
        dir.path(),
        &[
            "lb",
            "gen-haproxy",
            "--node",
            "10.0.0.1:8768",
            "--node",
            "10.0.0.2:8768",
            "-o",
            "haproxy.cfg",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.is_empty(),
        "with -o nothing goes to stdout: {stdout}"
    );
    assert!(
        stderr.contains("wrote haproxy.cfg (2 node(s), 0 draining)"),
        "{stderr}"
    );
    let written = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        written,
        lb::haproxy::render(
            &[
                Target::from_endpoint(&Endpoint {
                    host: "10.0.0.1".into(),
                    port: 8768
                }),
                Target::from_endpoint(&Endpoint {
                    host: "10.0.0.2".into(),
                    port: 8768
                }),
            ],
            &opts()
        )
    );
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "the replaced file keeps its permissions");
    assert_eq!(
        files_in(dir.path()),
        ["haproxy.cfg"],
        "no temp file left behind"
    );

    // A config the validator rejects (its certificate does not exist) never replaces the file.
    let (code, stdout, stderr) = fleetctl_in(
        dir.path(),
        &[
            "lb",
            "gen-haproxy",
            "--node",
            "10.0.0.1:8768",
            "--tls-cert",
            "/nonexistent/lb.pem",
            "--check",
            "-o",
            "haproxy.cfg",
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("haproxy rejected the generated config"),
        "{stderr}"
    );
    assert!(
        stderr.contains("haproxy.cfg was left unchanged"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), written);
    assert_eq!(
        files_in(dir.path()),
        ["haproxy.cfg"],
        "no temp file left behind"
    );
}

#[test]
fn lb_check_reports_the_real_validators_verdict() {
    require_binary("haproxy", "haproxy");
    require_binary("nginx", "nginx");
    let dir = tempfile::tempdir().unwrap();
    let rt = dir.path().display().to_string();

    let (code, stdout, stderr) = fleetctl_in(
        dir.path(),
        &["lb", "gen-haproxy", "--node", "10.0.0.1:8768", "--check"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("haproxy: the generated config is valid"),
        "{stderr}"
    );
    assert!(
        stdout.contains("backend fleet_nodes"),
        "the config still goes to stdout"
    );

    let (code, stdout, stderr) = fleetctl_in(
        dir.path(),
        &[
            "lb",
            "gen-nginx",
            "--node",
            "10.0.0.1:8768",
            "--runtime-dir",
            &rt,
            "--check",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("nginx: the generated config is valid"),
        "{stderr}"
    );
    assert!(stdout.contains("upstream fleet_nodes"));

    let (code, stdout, stderr) = fleetctl_in(
        dir.path(),
        &[
            "lb",
            "gen-nginx",
            "--node",
            "10.0.0.1:8768",
            "--runtime-dir",
            &rt,
            "--fragment",
            "--check",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("fragment checked inside the complete config"),
        "{stderr}"
    );
    assert!(
        stdout.contains("upstream fleet_nodes") && !stdout.contains("events"),
        "{stdout}"
    );

    // nginx rejects: a certificate that does not exist.
    let (code, _, stderr) = fleetctl_in(
        dir.path(),
        &[
            "lb",
            "gen-nginx",
            "--node",
            "10.0.0.1:8768",
            "--runtime-dir",
            &rt,
            "--tls-cert",
            "/nonexistent/lb.crt",
            "--check",
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("/nonexistent/lb.crt"),
        "nginx's own message is shown: {stderr}"
    );
    assert!(
        stderr.contains("nginx rejected the generated config"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// Real traffic through real load balancers.

/// A tiny HTTP server speaking the node's health contract, on its own runtime so that
/// [`Backend::kill`] drops every socket at once, like a process dying.
struct Backend {
    name: String,
    port: u16,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Backend {
    fn start(name: &str) -> Backend {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let node = name.to_string();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                use axum::routing::get;
                let header = [("x-fleet-node", node.clone())];
                let h2 = header.clone();
                let app = axum::Router::new()
                    .route(
                        "/api/fleet/cluster/health",
                        get(move || async move { (h2, "{\"status\":\"healthy\"}") }),
                    )
                    .fallback(move || async move { (header, node) });
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let server = tokio::spawn(async move { axum::serve(listener, app).await });
                let _ = tokio::task::spawn_blocking(move || stop_rx.recv()).await;
                server.abort();
            });
            // Dropping the runtime here closes the listener and every open connection.
            drop(rt);
        });
        let backend = Backend {
            name: name.into(),
            port,
            stop: Some(stop_tx),
            thread: Some(thread),
        };
        wait_port(port, "backend", String::new);
        backend
    }

    fn kill(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn target(&self) -> Target {
        target(&self.name, "127.0.0.1", self.port, false)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One GET on a fresh connection: (status, X-Fleet-Node, body). Errors are returned, not
/// panicked, so the caller can count them.
fn get(port: u16, path: &str) -> Result<(u16, Option<String>, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // One write: a request split over several small segments meets Nagle and delayed ACKs.
    let request = format!("GET {path} HTTP/1.1\r\nHost: fleet.test\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).map_err(|e| e.to_string())?;
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or(format!("no header end: {raw:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or(format!("bad status line: {head:?}"))?;
    let node = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("x-fleet-node")
            .then(|| v.trim().to_string())
    });
    // Chunked or not, the tiny bodies here fit in one line; keep the name only.
    let body = body
        .lines()
        .find(|l| l.starts_with("node-"))
        .unwrap_or(body)
        .to_string();
    Ok((status, node, body))
}

#[test]
fn lb_real_traffic_survives_a_backend_death_through_haproxy_and_nginx() {
    let haproxy = require_binary("haproxy", "haproxy");
    let nginx = require_binary("nginx", "nginx");
    let dir = tempfile::tempdir().unwrap();
    {
        // nginx workers run as `nobody` when the test runs as root; let them reach their
        // temp directories.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut a = Backend::start("node-a");
    let b = Backend::start("node-b");
    let targets = [a.target(), b.target()];

    let ha_port = free_port();
    let ha_dir = dir.path().join("haproxy");
    std::fs::create_dir(&ha_dir).unwrap();
    let ha_opts = Options {
        bind: lb::parse_bind(&format!("127.0.0.1:{ha_port}")).unwrap(),
        check_interval: Duration::from_millis(500),
        fall: 2,
        rise: 1,
        runtime_dir: Some(ha_dir.clone()),
        ..opts()
    };
    let ha_cfg = ha_dir.join("haproxy.cfg");
    std::fs::write(&ha_cfg, lb::haproxy::render(&targets, &ha_opts)).unwrap();
    let mut cmd = Command::new(&haproxy);
    cmd.arg("-db").arg("-f").arg(&ha_cfg);
    let ha = LbProcess::spawn("haproxy", cmd, ha_dir.join("haproxy.log"));

    let ng_port = free_port();
    let ng_dir = dir.path().join("nginx");
    std::fs::create_dir(&ng_dir).unwrap();
    let ng_opts = Options {
        bind: lb::parse_bind(&format!("127.0.0.1:{ng_port}")).unwrap(),
        runtime_dir: Some(ng_dir.clone()),
        ..ha_opts.clone()
    };
    let ng_cfg = ng_dir.join("nginx.conf");
    std::fs::write(&ng_cfg, lb::nginx::render(&targets, &ng_opts)).unwrap();
    let mut cmd = Command::new(&nginx);
    cmd.args(["-e", "stderr", "-g", "daemon off;", "-c"])
        .arg(&ng_cfg)
        .arg("-p")
        .arg(&ng_dir);
    let ng = LbProcess::spawn("nginx", cmd, ng_dir.join("nginx.out"));

    for (proxy, port) in [(&ha, ha_port), (&ng, ng_port)] {
        wait_port(port, proxy.what, || proxy.log_text());
        // Both nodes take traffic, and their X-Fleet-Node header passes through.
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..20 {
            let (status, node, body) = get(port, "/").unwrap_or_else(|e| {
                panic!("{} request {i}: {e}\n{}", proxy.what, proxy.log_text())
            });
            assert_eq!(
                status,
                200,
                "{} request {i}: {body}\n{}",
                proxy.what,
                proxy.log_text()
            );
            assert_eq!(
                node.as_deref(),
                Some(body.as_str()),
                "{}: X-Fleet-Node",
                proxy.what
            );
            seen.insert(body);
        }
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            ["node-a", "node-b"],
            "{} spreads requests over both nodes",
            proxy.what
        );
    }

    // node-a dies. No GET through either load balancer may fail, from the first one on.
    a.kill();
    for (proxy, port) in [(&ha, ha_port), (&ng, ng_port)] {
        let mut failures = Vec::new();
        let started = Instant::now();
        let mut slowest = Duration::ZERO;
        for i in 0..40 {
            let t = Instant::now();
            let answer = get(port, "/");
            slowest = slowest.max(t.elapsed());
            match answer {
                Ok((200, _, body)) if body == "node-b" => {}
                other => failures.push(format!("request {i}: {other:?}")),
            }
        }
        assert!(
            failures.is_empty(),
            "{}: {} of 40 GETs failed after node-a died:\n{}\n--- {} log ---\n{}",
            proxy.what,
            failures.len(),
            failures.join("\n"),
            proxy.what,
            proxy.log_text()
        );
        eprintln!(
            "[measure] {}: 40 GETs right after a backend died: 0 failed, {:?} in all, slowest {slowest:?}",
            proxy.what,
            started.elapsed()
        );
    }
    // The GETs survived through retries on the other node, not by luck of timing: HAProxy
    // logs a redispatched request with `+1` retries, nginx logs the refused upstream connect.
    assert!(
        ha.log_text().contains("fleet_nodes/node-b") && ha.log_text().contains("/+1 "),
        "haproxy log shows no redispatched request:\n{}",
        ha.log_text()
    );
    let ng_errors = std::fs::read_to_string(ng_dir.join("error.log")).unwrap_or_default();
    assert!(
        ng_errors.contains("Connection refused") && ng_errors.contains("upstream"),
        "nginx error log shows no failed upstream attempt:\n{ng_errors}"
    );
}
