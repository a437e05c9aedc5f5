//! Load-balancer configs for the cluster: HAProxy (`haproxy.rs`) and nginx OSS (`nginx.rs`).
//!
//! This module owns the validated inputs both renderers share — [`Target`] (one backend node),
//! [`Endpoint`] (a `host:port` the user typed or the registry advertised), [`Options`] — and the
//! two places where generated text touches the system: writing it atomically and running the
//! real validator (`install.rs`). The renderers themselves are pure: same targets and options,
//! same text, byte for byte, so snapshot tests and config management can diff them.
//!
//! Everything that ends up inside a config file is checked here first: a host or name that could
//! smuggle a `;`, `{`, `#`, a quote or a newline into the file is rejected, never escaped.

pub mod haproxy;
pub mod install;
pub mod nginx;

use std::fmt;
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::time::Duration;

use crate::cluster::{ClusterStatus, NodeState};

/// An input the renderers refuse. Always the user's (or the registry's) data: exit code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LbError {
    #[error("`{value}` is not HOST:PORT: {reason}")]
    BadEndpoint { value: String, reason: String },
    #[error("node `{node_id}` advertises `{url}`: {reason}")]
    BadAdvertisedUrl {
        node_id: String,
        url: String,
        reason: String,
    },
    #[error("{0}")]
    BadOption(String),
}

/// A `host:port` pair safe to write into an HAProxy or nginx config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// A DNS name, an IPv4 address, an IPv6 address (kept without brackets), or `*` (bind only).
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// `host:port` as both HAProxy 2.6 and nginx read it (`[v6]:port` for IPv6).
    pub fn to_addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_addr())
    }
}

/// Parse a backend node given as `host:port` or `[ipv6]:port`.
pub fn parse_node(value: &str) -> Result<Endpoint, LbError> {
    parse_endpoint(value, false)
}

/// Parse a listen address for `--bind`: like a node, but `*:80` (every address) is allowed.
pub fn parse_bind(value: &str) -> Result<Endpoint, LbError> {
    parse_endpoint(value, true)
}

fn parse_endpoint(value: &str, wildcard_ok: bool) -> Result<Endpoint, LbError> {
    let bad = |reason: &str| LbError::BadEndpoint {
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| bad("an IPv6 address opened with `[` needs a closing `]`"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| bad("missing the port after `]`, as in [::1]:8768"))?;
        if host.parse::<Ipv6Addr>().is_err() {
            return Err(bad(&format!("`{host}` is not an IPv6 address")));
        }
        (host, port)
    } else {
        let (host, port) = value
            .rsplit_once(':')
            .ok_or_else(|| bad("missing the port, as in 10.0.0.5:8768"))?;
        if host.contains(':') {
            return Err(bad("write an IPv6 address in brackets, as in [::1]:8768"));
        }
        (host, port)
    };
    if host.is_empty() {
        return Err(bad("the host is empty"));
    }
    let port = parse_port(port).map_err(|r| bad(&r))?;
    if host == "*" {
        if wildcard_ok {
            return Ok(Endpoint {
                host: host.into(),
                port,
            });
        }
        return Err(bad("`*` is only allowed for --bind; name the node's host"));
    }
    if !host.contains(':') {
        check_hostname(host).map_err(|r| bad(&r))?;
    }
    Ok(Endpoint {
        host: host.to_string(),
        port,
    })
}

fn parse_port(text: &str) -> Result<u16, String> {
    if text.is_empty() {
        return Err("the port is empty".into());
    }
    match text.parse::<u32>() {
        Ok(0) => Err("port 0 is not a port a load balancer can reach; use 1-65535".into()),
        Ok(p) if p <= u16::MAX as u32 => Ok(p as u16),
        Ok(p) => Err(format!("port {p} is out of range 1-65535")),
        Err(_) => Err(format!("port `{text}` is not a number in 1-65535")),
    }
}

/// A DNS name or IPv4 address: letters, digits, `-`, `.`, `_`. Anything else (spaces, `;`,
/// `{`, `#`, quotes, `/`) would change the meaning of the config file it lands in.
fn check_hostname(host: &str) -> Result<(), String> {
    if host.len() > 253 {
        return Err("the host name is longer than 253 characters".into());
    }
    if let Some(c) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(format!(
            "the host contains `{}`; a host is a DNS name or an IP address",
            c.escape_default()
        ));
    }
    if host.starts_with(['-', '.']) || host.ends_with('-') {
        return Err(format!("`{host}` is not a valid host name"));
    }
    Ok(())
}

/// One backend node as the load balancer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Server name in HAProxy (stats page, logs) and a comment in nginx. Only
    /// `[A-Za-z0-9._-]`, so it can never break the line it is written on.
    pub name: String,
    pub host: String,
    pub port: u16,
    /// The node is leaving: keep it in the file (so its in-flight work finishes and the file
    /// shows why it is there), but send it no new requests.
    pub draining: bool,
}

impl Target {
    /// A target from `--node host:port`, named after its address.
    pub fn from_endpoint(endpoint: &Endpoint) -> Target {
        Target {
            name: sanitize_name(&format!("{}_{}", endpoint.host, endpoint.port)),
            host: endpoint.host.clone(),
            port: endpoint.port,
            draining: false,
        }
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            host: self.host.clone(),
            port: self.port,
        }
    }
}

/// Keep `[A-Za-z0-9._-]`, replace the rest with `_`: a node id from the registry is data, and
/// data never gets to write its own config syntax.
fn sanitize_name(raw: &str) -> String {
    let name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() { "node".into() } else { name }
}

/// The targets for a live cluster: active and draining nodes, in the registry's (sorted) order.
/// Inactive nodes (no heartbeat) and nodes that left are not in the file at all: the LB's own
/// health checks would only rediscover that they are gone.
///
/// The address is the node's advertised URL (`server.advertise_url`), which is what other nodes
/// use too; a node without one falls back to `hostname:port`.
///
/// `https_nodes`: the LB talks TLS to the nodes (`Options::node_tls`), so every node must
/// advertise `https://`; otherwise every node must advertise `http://`. A mix is refused, naming
/// the odd node: one backend section speaks one protocol.
pub fn from_status(status: &ClusterStatus, https_nodes: bool) -> Result<Vec<Target>, LbError> {
    let mut targets = Vec::new();
    for node in &status.nodes {
        let draining = match node.status {
            NodeState::Active => false,
            NodeState::Draining => true,
            NodeState::Inactive | NodeState::Left => continue,
        };
        let bad = |reason: String| LbError::BadAdvertisedUrl {
            node_id: node.node_id.clone(),
            url: node.url.clone(),
            reason,
        };
        let endpoint = if node.url.trim().is_empty() {
            parse_node(&format!("{}:{}", node.hostname, node.port))
                .map_err(|e| bad(e.to_string()))?
        } else {
            let url = reqwest::Url::parse(&node.url).map_err(|e| bad(e.to_string()))?;
            match (url.scheme(), https_nodes) {
                ("http", false) | ("https", true) => {}
                ("https", false) => {
                    return Err(bad(
                        "the node serves HTTPS: pass --node-ca-file FILE (the CA that signed the \
                         nodes' certificates) so the load balancer speaks TLS to the nodes and \
                         verifies them"
                            .into(),
                    ));
                }
                ("http", true) => {
                    return Err(bad(
                        "--node-ca-file makes the load balancer speak TLS to every node, but this \
                         node advertises plain http://; serve TLS on every node or on none"
                            .into(),
                    ));
                }
                (other, _) => {
                    return Err(bad(format!("`{other}://` is neither http:// nor https://")));
                }
            }
            // host_str keeps IPv6 in brackets, which is what parse_node expects.
            let host = url
                .host_str()
                .ok_or_else(|| bad("the URL has no host".into()))?;
            let port = url
                .port_or_known_default()
                .unwrap_or(if https_nodes { 443 } else { 80 });
            parse_node(&format!("{host}:{port}")).map_err(|e| bad(e.to_string()))?
        };
        targets.push(Target {
            name: sanitize_name(&node.node_id),
            host: endpoint.host,
            port: endpoint.port,
            draining,
        });
    }
    Ok(targets)
}

/// How the LB spreads requests over the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Balance {
    /// Each node in turn (nginx: its default round-robin)
    #[default]
    Roundrobin,
    /// The node with the fewest open connections (nginx: least_conn)
    Leastconn,
    /// The same client address always reaches the same node (nginx: ip_hash)
    Source,
}

/// TLS between the load balancer and the nodes (`server.tls` on the nodes): the LB verifies
/// each node's certificate against `ca_file` and, with `client_cert`, presents its own (for
/// nodes with `server.tls.client_ca`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTls {
    /// PEM CA certificate(s) the nodes' certificates chain to.
    pub ca_file: PathBuf,
    /// The name every node's certificate carries, sent as SNI and checked. `None`: HAProxy
    /// checks each node's host name when it is a DNS name (chain only for IP addresses);
    /// nginx, which checks one name for the whole upstream, uses the nodes' common host.
    pub name: Option<String>,
    /// HAProxy: one PEM with the LB's client certificate and key. nginx: the certificate.
    pub client_cert: Option<PathBuf>,
    /// nginx: the client key (defaults to `client_cert`, for a combined PEM).
    pub client_key: Option<PathBuf>,
}

/// TLS on the LB's frontend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// HAProxy: one PEM with certificate chain and key (or the key in `<cert>.key`).
    /// nginx: the certificate chain.
    pub cert: PathBuf,
    /// nginx: the private key (defaults to `cert`, for a combined PEM). HAProxy 2.6 has no
    /// separate key setting on `bind`, so it must be absent or `<cert>.key`.
    pub key: Option<PathBuf>,
}

/// Everything besides the targets that shapes a generated config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Where the LB listens.
    pub bind: Endpoint,
    pub tls: Option<Tls>,
    /// TLS to the nodes; `None` reaches them over plain HTTP.
    pub node_tls: Option<NodeTls>,
    pub balance: Balance,
    /// HAProxy `inter`: time between active health checks. nginx OSS has no active checks; it
    /// derives `fail_timeout` from it (see `nginx.rs`).
    pub check_interval: Duration,
    /// Consecutive failed checks before a node is taken out (nginx: `max_fails`).
    pub fall: u32,
    /// Consecutive passed checks before a node is put back.
    pub rise: u32,
    /// Only the backend / upstream block, for inclusion in an existing config.
    pub fragment: bool,
    /// Directory for the pid file, logs, admin socket and nginx temp files. `None`: the Debian
    /// packages' standard paths, which the distribution's service units expect. Set it to run
    /// the LB unprivileged (tests, containers).
    pub runtime_dir: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            bind: Endpoint {
                host: "0.0.0.0".into(),
                port: 80,
            },
            tls: None,
            node_tls: None,
            balance: Balance::default(),
            check_interval: Duration::from_secs(2),
            fall: 3,
            rise: 2,
            fragment: false,
            runtime_dir: None,
        }
    }
}

impl Options {
    /// Reject option combinations that would render a config the LB refuses.
    pub fn validate(&self) -> Result<(), LbError> {
        if self.fall == 0 || self.rise == 0 {
            return Err(LbError::BadOption(
                "--fall and --rise must be at least 1".into(),
            ));
        }
        if self.check_interval < Duration::from_millis(100) {
            return Err(LbError::BadOption(format!(
                "--check-interval {} is below 100ms; that is a health-check flood, not a check",
                duration(self.check_interval)
            )));
        }
        for path in self
            .tls
            .iter()
            .flat_map(|t| std::iter::once(&t.cert).chain(t.key.as_ref()))
            .chain(self.node_tls.iter().flat_map(|n| {
                std::iter::once(&n.ca_file)
                    .chain(n.client_cert.as_ref())
                    .chain(n.client_key.as_ref())
            }))
            .chain(self.runtime_dir.as_ref())
        {
            check_path(path)?;
        }
        if let Some(name) = self.node_tls.as_ref().and_then(|n| n.name.as_deref()) {
            check_hostname(name)
                .map_err(|r| LbError::BadOption(format!("--node-tls-name: {r}")))?;
        }
        Ok(())
    }
}

/// Paths are written unquoted into both formats; refuse what would need quoting.
fn check_path(path: &std::path::Path) -> Result<(), LbError> {
    let text = path.to_string_lossy();
    if text.is_empty()
        || text.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(c, ';' | '#' | '{' | '}' | '"' | '\'' | '\\')
        })
    {
        return Err(LbError::BadOption(format!(
            "path `{}` contains a space, quote, `;`, `#` or brace; use a path without them",
            text.escape_default()
        )));
    }
    Ok(())
}

/// Which load balancer a config is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Haproxy,
    Nginx,
}

impl Kind {
    /// The config text for `targets`; call [`Kind::check_options`] first.
    pub fn render(self, targets: &[Target], opts: &Options) -> String {
        match self {
            Kind::Haproxy => haproxy::render(targets, opts),
            Kind::Nginx => nginx::render(targets, opts),
        }
    }

    /// Options this load balancer cannot express, as an error naming the flag.
    pub fn check_options(self, opts: &Options) -> Result<(), LbError> {
        opts.validate()?;
        match self {
            Kind::Haproxy => haproxy::check_options(opts),
            Kind::Nginx => Ok(()),
        }
    }

    /// Option and target combinations this load balancer cannot express (nginx: one TLS name
    /// for nodes on different hosts).
    pub fn check_targets(self, targets: &[Target], opts: &Options) -> Result<(), LbError> {
        match self {
            Kind::Haproxy => Ok(()),
            Kind::Nginx => nginx::check_options(targets, opts),
        }
    }

    /// The validator's program name, which is also the Debian package to install.
    pub fn program(self) -> &'static str {
        match self {
            Kind::Haproxy => "haproxy",
            Kind::Nginx => "nginx",
        }
    }
}

/// A duration as both HAProxy and nginx read it: `500ms`, `2s` (the config's own notation).
pub(crate) fn duration(d: Duration) -> String {
    crate::config::Secs(d).to_string()
}

/// The first line of every generated file: what made it, so nobody hand-edits it by accident.
pub(crate) const GENERATED_BY: &str = "Generated by `fleetctl lb`; regenerate rather than edit.";

#[cfg(test)]
mod tests {
    use super::*;

    fn err(value: &str) -> String {
        parse_node(value).unwrap_err().to_string()
    }

    #[test]
    fn lb_parse_node_accepts_names_ipv4_ipv6() {
        assert_eq!(
            parse_node("10.0.0.5:8768").unwrap().to_addr(),
            "10.0.0.5:8768"
        );
        assert_eq!(
            parse_node("node-1.example.com:80").unwrap().host,
            "node-1.example.com"
        );
        let v6 = parse_node("[::1]:8768").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 8768));
        assert_eq!(v6.to_addr(), "[::1]:8768");
    }

    #[test]
    fn lb_parse_node_rejects_with_the_value_and_the_fix() {
        assert!(err("10.0.0.5").contains("missing the port"));
        assert!(err("10.0.0.5:0").contains("port 0"));
        assert!(err("10.0.0.5:99999").contains("out of range"));
        assert!(err("10.0.0.5:http").contains("not a number"));
        assert!(err(":8768").contains("host is empty"));
        assert!(err("::1:8768").contains("brackets"));
        assert!(err("[::1]8768").contains("missing the port after"));
        assert!(err("[zz]:80").contains("not an IPv6"));
        assert!(err("a;b:80").contains("contains `;`"));
        assert!(err("a b:80").contains("contains ` `"));
        assert!(err("*:80").contains("only allowed for --bind"));
        assert!(err("10.0.0.5:").starts_with("`10.0.0.5:` is not HOST:PORT"));
        assert_eq!(parse_bind("*:80").unwrap().to_addr(), "*:80");
    }

    fn node(id: &str, status: NodeState, url: &str) -> crate::cluster::NodeView {
        crate::cluster::NodeView {
            node_id: id.into(),
            hostname: "fallback-host".into(),
            port: 9000,
            status,
            last_heartbeat: String::new(),
            url: url.into(),
            version: String::new(),
            started_at: String::new(),
            heartbeat_age: 0.0,
            leader: false,
        }
    }

    fn status(nodes: Vec<crate::cluster::NodeView>) -> ClusterStatus {
        ClusterStatus {
            enabled: true,
            node_id: None,
            backend: "redis".into(),
            total_nodes: nodes.len(),
            active_nodes: 0,
            inactive_nodes: 0,
            draining_nodes: 0,
            left_nodes: 0,
            leader: None,
            nodes,
            problems: Vec::new(),
        }
    }

    #[test]
    fn lb_from_status_keeps_active_and_draining_nodes_only() {
        let s = status(vec![
            node("a", NodeState::Active, "http://10.0.0.1:8768"),
            node("b", NodeState::Draining, "http://[fd00::2]:8768/"),
            node("c", NodeState::Inactive, "http://10.0.0.3:8768"),
            node("d", NodeState::Left, "http://10.0.0.4:8768"),
            node("e;{x}", NodeState::Active, ""),
            node("f", NodeState::Active, "http://node-f.example"),
        ]);
        let got = from_status(&s, false).unwrap();
        let summary: Vec<_> = got
            .iter()
            .map(|t| (t.name.as_str(), t.endpoint().to_addr(), t.draining))
            .collect();
        assert_eq!(
            summary,
            [
                ("a", "10.0.0.1:8768".to_string(), false),
                ("b", "[fd00::2]:8768".to_string(), true),
                ("e__x_", "fallback-host:9000".to_string(), false),
                ("f", "node-f.example:80".to_string(), false),
            ]
        );
    }

    #[test]
    fn lb_from_status_matches_the_nodes_scheme_naming_the_odd_node() {
        let s = status(vec![node("a", NodeState::Active, "https://10.0.0.1:8768")]);
        let e = from_status(&s, false).unwrap_err().to_string();
        assert!(
            e.contains("node `a`") && e.contains("--node-ca-file"),
            "{e}"
        );
        let got = from_status(&s, true).unwrap();
        assert_eq!(got[0].endpoint().to_addr(), "10.0.0.1:8768");
        let mixed = status(vec![
            node("a", NodeState::Active, "https://10.0.0.1:8768"),
            node("b", NodeState::Active, "http://10.0.0.2:8768"),
        ]);
        let e = from_status(&mixed, true).unwrap_err().to_string();
        assert!(
            e.contains("node `b`") && e.contains("every node or on none"),
            "{e}"
        );
        let default_port = status(vec![node("c", NodeState::Active, "https://node-c.example")]);
        assert_eq!(from_status(&default_port, true).unwrap()[0].port, 443);
    }

    #[test]
    fn lb_names_from_data_cannot_write_syntax() {
        assert_eq!(sanitize_name("a;b {c}\n#"), "a_b__c___");
        assert_eq!(sanitize_name(""), "node");
    }
}
