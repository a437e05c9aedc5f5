//! `fleetctl lb gen-haproxy|gen-nginx`: load-balancer configs from the node registry.
//!
//! Reads the nodes (from `--node` flags or the live registry), turns flags into
//! `lb::Options`, and hands them to the renderers in `crate::lb`; `--check` and `-o` use
//! `lb::install`. No config syntax is spelled here.

use std::path::PathBuf;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};

use super::Globals;
use super::cluster::Remote;
use crate::config::Secs;
use crate::exit::{ExitCode, UsageError};
use crate::lb::install::{self, Staged};
use crate::lb::{self, Balance, Kind, NodeTls, Options, Target, Tls};

#[derive(Debug, Subcommand)]
pub enum LbCommand {
    /// Generate an HAProxy (2.6+) config that health-checks /api/fleet/cluster/health
    GenHaproxy(Generate),
    /// Generate an nginx (OSS) config with passive health checks
    GenNginx(Generate),
}

#[derive(Debug, Args)]
#[command(after_help = "\
Without --node, the nodes come from the live registry: the cluster backend named in the \
config, or the node given with --server. Active nodes take traffic; draining nodes are kept \
in the file but get no new requests; inactive and departed nodes are left out.

Exit codes: 0 ok; 1 registry unreachable, validator missing, or config rejected by --check; \
2 bad flags or no nodes.")]
pub struct Generate {
    /// A backend node as HOST:PORT or [IPV6]:PORT; repeat for each node (default: the live registry)
    #[arg(long = "node", value_name = "HOST:PORT")]
    pub nodes: Vec<String>,

    #[command(flatten)]
    pub remote: Remote,

    /// Address the load balancer listens on [default: 0.0.0.0:80, or 0.0.0.0:443 with --tls-cert]
    #[arg(long, value_name = "ADDR:PORT")]
    pub bind: Option<String>,

    /// Terminate TLS with this certificate (HAProxy: one PEM holding certificate and key)
    #[arg(long, value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,

    /// nginx: the private key for --tls-cert [default: the --tls-cert file]
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Speak TLS to the nodes (they serve `server.tls`) and verify their certificates against
    /// this PEM CA file; nodes from the registry must then advertise https:// URLs
    #[arg(long, value_name = "FILE")]
    pub node_ca_file: Option<PathBuf>,

    /// The name every node's certificate carries, sent as SNI and checked [default: HAProxy
    /// checks each node's DNS name (IP addresses: chain only); nginx needs one common name]
    #[arg(long, value_name = "NAME", requires = "node_ca_file")]
    pub node_tls_name: Option<String>,

    /// Client certificate the LB presents to nodes with `server.tls.client_ca` (HAProxy: one
    /// PEM holding certificate and key)
    #[arg(long, value_name = "PATH", requires = "node_ca_file")]
    pub node_client_cert: Option<PathBuf>,

    /// nginx: the private key for --node-client-cert [default: the --node-client-cert file]
    #[arg(long, value_name = "PATH", requires = "node_client_cert")]
    pub node_client_key: Option<PathBuf>,

    /// How requests are spread over the nodes
    #[arg(long, value_enum, default_value_t = Balance::Roundrobin)]
    pub balance: Balance,

    /// Time between health checks (HAProxy); nginx's fail_timeout is this × --fall
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = Secs::parse)]
    pub check_interval: Secs,

    /// Failed checks (nginx: failed requests) before a node is taken out
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub fall: u32,

    /// Passed checks before a node is put back (HAProxy)
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub rise: u32,

    /// Only the backend/upstream section, for inclusion in an existing config
    #[arg(long)]
    pub fragment: bool,

    /// Put pid file, logs, admin socket and temp files here instead of the distribution's
    /// paths (/run, /var/log, /var/lib/nginx), to run the load balancer unprivileged
    #[arg(long, value_name = "DIR")]
    pub runtime_dir: Option<PathBuf>,

    /// Write to this file (atomically: a temp file in the same directory, then a rename)
    /// instead of stdout; with --check, a rejected config never replaces the file
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Run the real validator (haproxy -c / nginx -t) on the result and report its verdict
    #[arg(long)]
    pub check: bool,
}

impl LbCommand {
    pub async fn run(self, g: &Globals) -> anyhow::Result<ExitCode> {
        match self {
            LbCommand::GenHaproxy(args) => args.run(g, Kind::Haproxy).await,
            LbCommand::GenNginx(args) => args.run(g, Kind::Nginx).await,
        }
    }
}

impl Generate {
    async fn run(self, g: &Globals, kind: Kind) -> anyhow::Result<ExitCode> {
        let opts = self.options()?;
        kind.check_options(&opts).map_err(usage)?;
        let targets = self.targets(g, opts.node_tls.is_some()).await?;
        kind.check_targets(&targets, &opts).map_err(usage)?;
        if targets.iter().all(|t| t.draining) && !g.quiet {
            eprintln!(
                "fleetctl: warning: every node is draining; the load balancer will have no node to send new requests to"
            );
        }
        let text = kind.render(&targets, &opts);

        if self.check {
            // A fragment is not a file the LB can load alone: check it inside the complete
            // config it is a verbatim part of.
            let full;
            let checked = if opts.fragment {
                full = kind.render(
                    &targets,
                    &Options {
                        fragment: false,
                        ..opts.clone()
                    },
                );
                &full
            } else {
                &text
            };
            let scratch =
                std::env::temp_dir().join(format!("fleetctl-lb-check.{}.cfg", kind.program()));
            let staged = Staged::new(&scratch, checked.as_bytes())
                .with_context(|| format!("cannot write {}", scratch.display()))?;
            let verdict = install::validate(kind, staged.path(), opts.runtime_dir.as_deref())?;
            drop(staged);
            let output = verdict.output.trim_end();
            if !verdict.valid {
                eprintln!("{output}");
                let mut msg = format!(
                    "{} rejected the generated config ({})",
                    kind.program(),
                    verdict.command
                );
                if kind == Kind::Nginx && opts.runtime_dir.is_none() {
                    msg.push_str(
                        "; if it failed on /run or /var paths, pass --runtime-dir DIR to run nginx unprivileged",
                    );
                }
                if let Some(out) = &self.out {
                    msg.push_str(&format!("; {} was left unchanged", out.display()));
                }
                return Err(anyhow!(msg));
            }
            if !g.quiet {
                if !output.is_empty() && g.verbose > 0 {
                    eprintln!("{output}");
                }
                let scope = if opts.fragment {
                    " (fragment checked inside the complete config)"
                } else {
                    ""
                };
                eprintln!("{}: the generated config is valid{scope}", kind.program());
            }
        }

        match &self.out {
            Some(path) => {
                install::write_atomically(path, &text)?;
                if !g.quiet {
                    let draining = targets.iter().filter(|t| t.draining).count();
                    eprintln!(
                        "wrote {} ({} node(s), {draining} draining)",
                        path.display(),
                        targets.len()
                    );
                }
            }
            None => print!("{text}"),
        }
        Ok(ExitCode::OK)
    }

    fn options(&self) -> anyhow::Result<Options> {
        let tls = self.tls_cert.as_ref().map(|cert| Tls {
            cert: cert.clone(),
            key: self.tls_key.clone(),
        });
        let bind = match &self.bind {
            Some(b) => lb::parse_bind(b).map_err(|e| usage(format!("--bind: {e}")))?,
            None => lb::Endpoint {
                host: "0.0.0.0".into(),
                port: if tls.is_some() { 443 } else { 80 },
            },
        };
        let node_tls = self.node_ca_file.as_ref().map(|ca| NodeTls {
            ca_file: ca.clone(),
            name: self.node_tls_name.clone(),
            client_cert: self.node_client_cert.clone(),
            client_key: self.node_client_key.clone(),
        });
        Ok(Options {
            bind,
            tls,
            node_tls,
            balance: self.balance,
            check_interval: self.check_interval.as_duration(),
            fall: self.fall,
            rise: self.rise,
            fragment: self.fragment,
            runtime_dir: self.runtime_dir.clone(),
        })
    }

    /// `--node` flags if any, else the live registry.
    async fn targets(&self, g: &Globals, https_nodes: bool) -> anyhow::Result<Vec<Target>> {
        if !self.nodes.is_empty() {
            let mut targets = Vec::new();
            for value in &self.nodes {
                let endpoint = lb::parse_node(value).map_err(|e| usage(format!("--node: {e}")))?;
                let target = Target::from_endpoint(&endpoint);
                if targets.iter().any(|t: &Target| t.endpoint() == endpoint) {
                    return Err(usage(format!("--node {value} is given twice")));
                }
                targets.push(target);
            }
            return Ok(targets);
        }
        const HOW: &str = "give the nodes with --node HOST:PORT (once per node), or read a live \
                           cluster with --server URL --token TOKEN";
        if self.remote.server.is_none() {
            let loaded = g.load_config()?;
            if !loaded.config.cluster.enabled {
                let source = loaded
                    .path
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "the embedded standalone default config".into());
                return Err(usage(format!(
                    "no nodes to balance: cluster mode is off in {source}; {HOW}"
                )));
            }
        }
        let status = async { self.remote.registry(g).await?.status().await }
            .await
            .with_context(|| format!("cannot read the nodes from the registry (or {HOW})"))?;
        let targets = lb::from_status(&status, https_nodes).map_err(usage)?;
        if targets.is_empty() {
            return Err(usage(format!(
                "no nodes to balance: the registry lists no active or draining node ({} inactive, \
                 {} left); start a node, or {HOW}",
                status.inactive_nodes, status.left_nodes
            )));
        }
        Ok(targets)
    }
}

fn usage(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!(UsageError(e.to_string()))
}
