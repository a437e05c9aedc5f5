//! nginx (OSS) config for the cluster: a pure function from targets and options to text.
//!
//! Active health checks (`health_check`) are an NGINX Plus feature. nginx OSS only learns that
//! a node is bad from real requests failing (passive checks: `max_fails`/`fail_timeout`), and
//! hides the failure from the client by passing the request to the next node
//! (`proxy_next_upstream`). Once a request has been sent, nginx passes on only idempotent
//! ones; a POST that reached a dying node fails. The file never needs root-owned paths when `runtime_dir` is set,
//! so `nginx -t` and a test instance run unprivileged.

use std::fmt::Write;

use super::{Balance, GENERATED_BY, LbError, Options, Target};

/// Upstream name in the full config and in fragments; `proxy_pass http://fleet_nodes` uses it.
pub const UPSTREAM: &str = "fleet_nodes";

/// The config text: a complete file, or with `opts.fragment` only the `upstream` block (for
/// inclusion inside an existing `http {}`).
/// nginx checks one name for every node of an upstream: `--node-tls-name`, else the host the
/// nodes share; nodes on different hosts without a common name are refused.
pub fn check_options(targets: &[Target], opts: &Options) -> Result<(), LbError> {
    if let Some(n) = &opts.node_tls
        && n.name.is_none()
        && targets.iter().any(|t| t.host != targets[0].host)
    {
        return Err(LbError::BadOption(
            "nginx verifies one certificate name for every node (proxy_ssl_name): pass \
             --node-tls-name NAME with a name every node's certificate carries"
                .into(),
        ));
    }
    Ok(())
}

fn node_tls_directives(targets: &[Target], opts: &Options) -> String {
    let Some(n) = &opts.node_tls else {
        return String::new();
    };
    let name = n
        .name
        .clone()
        .or_else(|| targets.first().map(|t| t.host.clone()))
        .unwrap_or_else(|| "localhost".into());
    let mut d = String::new();
    d.push_str(
        "\n            # TLS to the nodes: verify each node's certificate against the CA and the name.",
    );
    let _ = write!(
        d,
        "\n            proxy_ssl_verify on;\n            proxy_ssl_trusted_certificate {};\n            proxy_ssl_verify_depth 3;\n            proxy_ssl_server_name on;\n            proxy_ssl_name {name};\n            proxy_ssl_protocols TLSv1.2 TLSv1.3;\n            # Reuse TLS sessions to the nodes, so keep-alive misses cost less.\n            proxy_ssl_session_reuse on;",
        n.ca_file.display()
    );
    if let Some(cert) = &n.client_cert {
        let key = n.client_key.as_ref().unwrap_or(cert);
        let _ = write!(
            d,
            "\n            proxy_ssl_certificate {};\n            proxy_ssl_certificate_key {};",
            cert.display(),
            key.display()
        );
    }
    d
}

pub fn render(targets: &[Target], opts: &Options) -> String {
    let mut out = String::new();
    let draining = targets.iter().filter(|t| t.draining).count();
    let _ = writeln!(out, "# {GENERATED_BY}");
    let _ = writeln!(
        out,
        "# nginx (OSS) config for the fleetctl cluster: {} node(s), {draining} draining.",
        targets.len()
    );
    out.push_str(
        "\
# nginx OSS has no active health checks (`health_check` needs NGINX Plus): a node is taken
# out after `max_fails` failed real requests within `fail_timeout`, and the failed request is
# passed to the next node (proxy_next_upstream). A POST is passed on only if it never reached
# the node (connection refused); once sent it is not retried (that would need
# `non_idempotent`, which could store an agent report twice).
",
    );
    if opts.fragment {
        let _ = writeln!(
            out,
            "# Upstream block only: include it inside `http {{}}` and `proxy_pass http://{UPSTREAM};`\n\
             # with `proxy_http_version 1.1; proxy_set_header Connection \"\";` for keep-alive."
        );
        out.push('\n');
        upstream(&mut out, targets, opts, "");
        return out;
    }
    out.push('\n');
    main_context(&mut out, opts);
    out.push_str("\nevents {\n    worker_connections 4096;\n}\n\nhttp {\n");
    http_context(&mut out, opts);
    out.push('\n');
    upstream(&mut out, targets, opts, "    ");
    out.push('\n');
    server(&mut out, targets, opts);
    out.push_str("}\n");
    out
}

fn main_context(out: &mut String, opts: &Options) {
    out.push_str("worker_processes auto;\n");
    match &opts.runtime_dir {
        Some(dir) => {
            let _ = writeln!(out, "pid {}/nginx.pid;", dir.display());
            let _ = writeln!(out, "error_log {}/error.log warn;", dir.display());
        }
        None => {
            // Debian's nginx.service reads this pid file; keep the packaged paths.
            out.push_str("pid /run/nginx.pid;\nerror_log /var/log/nginx/error.log warn;\n");
        }
    }
}

fn http_context(out: &mut String, opts: &Options) {
    match &opts.runtime_dir {
        Some(dir) => {
            let d = dir.display();
            let _ = writeln!(out, "    access_log {d}/access.log;");
            // nginx creates these at start-up (and in `nginx -t`); the compiled-in defaults
            // are under /var/lib/nginx, which only root can write.
            for temp in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
                let _ = writeln!(out, "    {temp}_temp_path {d}/{temp}_temp;");
            }
        }
        None => out.push_str("    access_log /var/log/nginx/access.log;\n"),
    }
    out.push_str("    server_tokens off;\n");
}

fn upstream(out: &mut String, targets: &[Target], opts: &Options, indent: &str) {
    let _ = writeln!(out, "{indent}upstream {UPSTREAM} {{");
    // The balancing method must come before `keepalive`, or keepalive wraps round-robin.
    match opts.balance {
        Balance::Roundrobin => {}
        Balance::Leastconn => {
            let _ = writeln!(out, "{indent}    least_conn;");
        }
        Balance::Source => {
            let _ = writeln!(out, "{indent}    ip_hash;");
        }
    }
    // fail_timeout is both the window in which `max_fails` failures take a node out and how
    // long it then stays out before one real request probes it: the same `inter × fall` that
    // HAProxy needs to notice a dead node.
    // nginx reads fail_timeout in whole seconds only ("250ms" is an error): round up.
    let fail_timeout = (opts.check_interval * opts.fall)
        .as_millis()
        .div_ceil(1000)
        .max(1);
    if targets.iter().any(|t| t.draining) {
        let _ = writeln!(
            out,
            "{indent}    # `down` on a draining node: no new requests at all. `backup` would keep it as a\n\
             {indent}    # last resort, but it is about to exit, `backup` is refused with ip_hash, and `down`\n\
             {indent}    # keeps ip_hash's client-to-node mapping for the other nodes."
        );
    }
    for t in targets {
        let addr = t.endpoint().to_addr();
        if t.draining {
            let _ = writeln!(
                out,
                "{indent}    server {addr} down;  # {} (draining)",
                t.name
            );
        } else {
            let _ = writeln!(
                out,
                "{indent}    server {addr} max_fails={} fail_timeout={fail_timeout}s;  # {}",
                opts.fall, t.name
            );
        }
    }
    let _ = writeln!(
        out,
        "{indent}    # Idle connections each worker keeps open to the nodes.\n{indent}    keepalive 32;"
    );
    let _ = writeln!(out, "{indent}}}");
}

fn server(out: &mut String, targets: &[Target], opts: &Options) {
    out.push_str("    server {\n");
    match &opts.tls {
        Some(tls) => {
            let key = tls.key.as_ref().unwrap_or(&tls.cert);
            let _ = writeln!(out, "        listen {} ssl;", opts.bind.to_addr());
            let _ = writeln!(out, "        ssl_certificate {};", tls.cert.display());
            let _ = writeln!(out, "        ssl_certificate_key {};", key.display());
            out.push_str("        ssl_protocols TLSv1.2 TLSv1.3;\n");
        }
        None => {
            let _ = writeln!(out, "        listen {};", opts.bind.to_addr());
        }
    }
    // Each node tried at most once per request.
    let tries = targets.len().max(1);
    let scheme = if opts.node_tls.is_some() {
        "https"
    } else {
        "http"
    };
    let node_tls = node_tls_directives(targets, opts);
    let _ = writeln!(
        out,
        "        location / {{
            proxy_pass {scheme}://{UPSTREAM};{node_tls}
            # Keep-alive to the nodes needs HTTP/1.1 and no `Connection: close`.
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            # Nodes honour these only from their `server.trusted_proxies`.
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_connect_timeout 5s;
            proxy_send_timeout 30s;
            proxy_read_timeout 30s;
            # A node that refuses, times out or answers 502/503/504 (503: draining or
            # unhealthy) gets the request passed to the next node: any method if the request
            # was never sent, only idempotent ones once it was.
            proxy_next_upstream error timeout http_502 http_503 http_504;
            proxy_next_upstream_tries {tries};
            proxy_next_upstream_timeout 10s;
        }}
    }}"
    );
}
