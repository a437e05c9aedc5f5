//! HAProxy 2.6+ config for the cluster: a pure function from targets and options to text.
//!
//! HAProxy checks every node actively (`GET /api/fleet/cluster/health`, 200 = healthy) and
//! retries failed idempotent requests on another node, so a node that dies or drains costs no
//! GET. It never touches the system: no `chroot`, `user` or `daemon` (the service manager or the
//! command line decides those), so the same file runs under systemd and in a test.

use std::fmt::Write;

use super::{Balance, GENERATED_BY, LbError, Options, Target, duration};

/// Backend name in the full config and in fragments; `use_backend fleet_nodes` points at it.
pub const BACKEND: &str = "fleet_nodes";

/// HAProxy 2.6 has no separate key setting on `bind`: `crt` is a PEM with the key in it, or the
/// key sits next to it as `<crt>.key` (loaded by the default `ssl-load-extra-files`).
pub fn check_options(opts: &Options) -> Result<(), LbError> {
    if let Some(n) = &opts.node_tls
        && let Some(key) = &n.client_key
        && Some(key) != n.client_cert.as_ref()
    {
        return Err(LbError::BadOption(format!(
            "HAProxy reads the client key from the --node-client-cert PEM itself, not from `{}`; \
             concatenate certificate and key into one PEM, or drop --node-client-key",
            key.display()
        )));
    }
    if let Some(tls) = &opts.tls
        && let Some(key) = &tls.key
    {
        let beside = format!("{}.key", tls.cert.display());
        if key != &tls.cert && key.as_os_str() != beside.as_str() {
            return Err(LbError::BadOption(format!(
                "HAProxy reads the key from the --tls-cert PEM itself or from `{beside}`, not from \
                 `{}`; concatenate certificate and key into one PEM, or drop --tls-key",
                key.display()
            )));
        }
    }
    Ok(())
}

/// The config text: a complete file, or with `opts.fragment` only the `backend` section.
pub fn render(targets: &[Target], opts: &Options) -> String {
    let mut out = String::new();
    let draining = targets.iter().filter(|t| t.draining).count();
    let _ = writeln!(out, "# {GENERATED_BY}");
    let _ = writeln!(
        out,
        "# HAProxy 2.6+ config for the fleetctl cluster: {} node(s), {draining} draining.",
        targets.len()
    );
    if opts.fragment {
        let _ = writeln!(
            out,
            "# Backend section only: route to it with `use_backend {BACKEND}` or `default_backend {BACKEND}`."
        );
        out.push('\n');
        backend(&mut out, targets, opts);
        return out;
    }
    out.push('\n');
    global(&mut out, opts);
    out.push('\n');
    defaults(&mut out);
    out.push('\n');
    frontend(&mut out, opts);
    out.push('\n');
    backend(&mut out, targets, opts);
    out
}

fn global(out: &mut String, opts: &Options) {
    out.push_str("global\n");
    out.push_str(
        "    # Concurrent connections. HAProxy needs about 2 file descriptors per connection and\n    \
         # refuses to start if the hard limit is lower: raise LimitNOFILE before raising this.\n",
    );
    out.push_str("    maxconn 4096\n");
    match &opts.runtime_dir {
        Some(dir) => {
            out.push_str("    # Logs to stdout: the journal under systemd, the terminal or log file otherwise.\n");
            out.push_str("    log stdout format raw local0 info\n");
            out.push_str("    # Runtime API: `set server fleet_nodes/<node> state drain` without a reload.\n");
            let _ = writeln!(
                out,
                "    stats socket {}/haproxy.sock mode 600 level admin",
                dir.display()
            );
        }
        None => {
            out.push_str("    # Debian's rsyslog rule writes this to /var/log/haproxy.log.\n");
            out.push_str("    log /dev/log local0 info\n");
            out.push_str("    # Runtime API: `set server fleet_nodes/<node> state drain` without a reload.\n");
            out.push_str("    stats socket /run/haproxy/admin.sock mode 660 level admin\n");
        }
    }
}

fn defaults(out: &mut String) {
    out.push_str(
        "\
defaults
    mode http
    log global
    option httplog
    option dontlognull
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    # A client gets this long to send its request headers (slowloris protection).
    timeout http-request 10s
    # Idle time allowed between two requests on a client keep-alive connection.
    timeout http-keep-alive 10s
    timeout queue 30s
",
    );
}

fn frontend(out: &mut String, opts: &Options) {
    out.push_str("frontend fleet\n");
    match &opts.tls {
        Some(tls) => {
            let _ = writeln!(
                out,
                "    bind {} ssl crt {} alpn h2,http/1.1",
                opts.bind.to_addr(),
                tls.cert.display()
            );
        }
        None => {
            let _ = writeln!(out, "    bind {}", opts.bind.to_addr());
        }
    }
    out.push_str("    # Nodes honour X-Forwarded-* only from their `server.trusted_proxies`.\n");
    let scheme = if opts.tls.is_some() { "https" } else { "http" };
    let _ = writeln!(
        out,
        "    http-request set-header X-Forwarded-Proto {scheme}"
    );
    let _ = writeln!(out, "    default_backend {BACKEND}");
}

fn backend(out: &mut String, targets: &[Target], opts: &Options) {
    let _ = writeln!(out, "backend {BACKEND}");
    let balance = match opts.balance {
        Balance::Roundrobin => "roundrobin",
        Balance::Leastconn => "leastconn",
        Balance::Source => "source",
    };
    let _ = writeln!(out, "    balance {balance}");
    out.push_str(
        "    # Active health check: a node answers 503 from the moment it starts draining, so HAProxy
    # stops sending it new requests after `fall` checks, well within its drain_timeout.
    option httpchk GET /api/fleet/cluster/health
    http-check expect status 200
",
    );
    let _ = writeln!(
        out,
        "    # A check slower than the interval counts as failed.\n    timeout check {}",
        duration(opts.check_interval)
    );
    out.push_str(
        "    # Adds X-Forwarded-For with the client address.
    option forwardfor
    # A failed attempt is retried up to 3 times, each time on another node (redispatch 1):
    # a dead node costs one connection attempt, not the request.
    retries 3
    option redispatch 1
    # conn-failure is always safe (nothing reached the node). empty-response and
    # response-timeout replay a request the node may have started, so they are switched off
    # below for every method that is not idempotent: a POST is retried only if it never left.
    retry-on conn-failure empty-response response-timeout
    http-request disable-l7-retry unless METH_GET || METH_OPTIONS || METH_PUT || METH_DELETE || METH_TRACE
    # Server-side keep-alive (HAProxy's default) rather than http-server-close, which would
    # open a TCP connection to a node per request. `safe` reuse: the first request of each
    # client connection gets its own server connection; only later ones share idle ones, and
    # HAProxy drops idle connections a dead node closed.
    http-reuse safe
",
    );
    let _ = writeln!(
        out,
        "    default-server inter {} fall {} rise {}",
        duration(opts.check_interval),
        opts.fall,
        opts.rise
    );
    if targets.iter().any(|t| t.draining) {
        out.push_str(
            "    # weight 0: a draining node gets no new requests but finishes the ones it has\n    # (HAProxy's `drain` state); its failing health check takes it out completely.\n",
        );
    }
    if let Some(n) = &opts.node_tls {
        out.push_str(
            "    # TLS to the nodes: each node's certificate must chain to ca-file (the health check\n    # uses the same TLS settings).",
        );
        if n.name.is_none() {
            out.push_str(
                " The name is checked for nodes given by DNS name; for an IP\n    # address only the chain is (use --node-tls-name for a name every certificate carries).",
            );
        }
        out.push('\n');
    }
    for t in targets {
        let _ = write!(
            out,
            "    server {} {} check",
            t.name,
            t.endpoint().to_addr()
        );
        if let Some(n) = &opts.node_tls {
            let _ = write!(out, " ssl verify required ca-file {}", n.ca_file.display());
            let name = n
                .name
                .clone()
                .or_else(|| (t.host.parse::<std::net::IpAddr>().is_err()).then(|| t.host.clone()));
            if let Some(name) = name {
                let _ = write!(out, " sni str({name}) verifyhost {name}");
            }
            if let Some(cert) = &n.client_cert {
                let _ = write!(out, " crt {}", cert.display());
            }
            out.push_str(" alpn http/1.1");
        }
        if t.draining {
            out.push_str(" weight 0");
        }
        out.push('\n');
    }
}
