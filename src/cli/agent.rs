//! `fleetctl agent`: collect this host's metrics and report them to the fleet, or simulate
//! many machines. Argument handling only; the work is in `crate::agent`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::Args;

use super::{Globals, OutputFormat};
use crate::agent::collector::Collector;
use crate::agent::reporter::{self, AgentOptions};
use crate::agent::simulator::{self, SimOptions};
use crate::config::Secs;
use crate::exit::{ExitCode, UsageError};

/// Report this host's metrics every interval (or simulate a fleet).
///
/// The agent sends to the first --server (usually the load balancer) and moves to the next
/// one when it fails. While no server answers it retries with jittered backoff (1 s to 60 s)
/// and keeps up to --buffer reports, sent oldest first once a server answers again.
#[derive(Debug, Args)]
pub struct Agent {
    /// Fleet server or load balancer URL; repeat or comma-separate for several
    /// [default: agent.server from the config]
    #[arg(long, value_name = "URL", env = "FLEET_SERVER", value_delimiter = ',')]
    pub server: Vec<String>,
    /// Trust only the CA certificates in this PEM file for https:// servers
    /// [default: agent.ca_file; else the system's CAs]
    #[arg(long, value_name = "FILE", env = "FLEET_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// File holding the agent API key (`fleet_…`) [default: agent.api_key_file]
    #[arg(long, value_name = "FILE", env = "FLEET_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,
    /// Time between reports, e.g. 10s, 1m [default: agent.interval, 10s]
    #[arg(long, value_name = "DURATION")]
    pub interval: Option<String>,
    /// Collect one report, print it and exit without sending
    #[arg(long, conflicts_with = "simulate")]
    pub once: bool,
    /// Machine id to report as [default: /etc/machine-id, else the hostname]
    #[arg(long, value_name = "ID")]
    pub machine_id: Option<String>,
    /// Reports kept while no server answers (oldest dropped first)
    #[arg(long, value_name = "N", default_value_t = 360)]
    pub buffer: usize,
    /// Simulate N virtual machines with realistic, varying metrics instead of this host
    ///
    /// Their reports are spread evenly over --interval. All N share one HTTP connection pool
    /// (about as many keep-alive connections as reports in flight, at most ~256), not one
    /// connection each as N real agents would: a load test of the report path, not of the
    /// node's per-connection memory.
    #[arg(long, value_name = "N")]
    pub simulate: Option<usize>,
    /// Stop after this long (e.g. 60s) instead of running until stopped
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,
}

fn duration(flag: &str, v: &str) -> anyhow::Result<Duration> {
    let d = Secs::parse(v)
        .map_err(|e| anyhow!(UsageError(format!("{flag}: {e}"))))?
        .as_duration();
    if d.is_zero() {
        return Err(anyhow!(UsageError(format!("{flag} must be more than 0"))));
    }
    Ok(d)
}

impl Agent {
    pub async fn run(self, g: &Globals) -> anyhow::Result<ExitCode> {
        if self.once {
            let mut c = Collector::new(self.machine_id)?;
            tokio::time::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL).await;
            let report = c.collect(crate::agent::now_ms());
            match g.output {
                OutputFormat::Json => crate::output::print_json(&report)?,
                OutputFormat::Table => println!("{}", crate::output::report_table(&report)),
            }
            return Ok(ExitCode::OK);
        }
        let config = g.load_config()?.config.agent;
        let servers = if self.server.is_empty() {
            config.server.into_iter().collect()
        } else {
            self.server
        };
        let key_file = self.api_key_file.or(config.api_key_file).ok_or_else(|| {
            anyhow!(UsageError(
                "no API key: pass --api-key-file FILE (or set agent.api_key_file); \
                 mint a key with `fleetctl keys new --name NAME`"
                    .into()
            ))
        })?;
        let api_key = std::fs::read_to_string(&key_file)
            .with_context(|| format!("cannot read the API key file {}", key_file.display()))?
            .trim()
            .to_string();
        if api_key.is_empty() {
            return Err(anyhow!(UsageError(format!(
                "the API key file {} is empty",
                key_file.display()
            ))));
        }
        let tls = crate::client::ClientTls::from_ca_file(
            self.ca_file.as_deref().or(config.ca_file.as_deref()),
        )?;
        let interval = match &self.interval {
            Some(v) => duration("--interval", v)?,
            None => config.interval.as_duration().max(Duration::from_secs(1)),
        };
        let run_for = self
            .duration
            .as_deref()
            .map(|v| duration("--duration", v))
            .transpose()?;

        if let Some(n) = self.simulate {
            if n == 0 {
                return Err(anyhow!(UsageError(
                    "--simulate needs at least 1 machine".into()
                )));
            }
            let stats = simulator::run(SimOptions {
                machines: n,
                servers,
                api_key,
                interval,
                duration: run_for,
                tls,
            })
            .await?;
            match g.output {
                OutputFormat::Json => crate::output::print_json(&stats)?,
                OutputFormat::Table => eprintln!(
                    "simulated {} machines for {:.0}s: {} reports sent, {} accepted, {} failed, {:.1}/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms{}",
                    stats.machines,
                    stats.seconds,
                    stats.sent,
                    stats.accepted,
                    stats.failed,
                    stats.reports_per_sec,
                    stats.latency_ms_p50,
                    stats.latency_ms_p99,
                    stats.latency_ms_max,
                    if stats.errors.is_empty() {
                        String::new()
                    } else {
                        format!("\nerrors: {}", stats.errors.join("\n        "))
                    }
                ),
            }
            return Ok(if stats.failed == 0 {
                ExitCode::OK
            } else {
                ExitCode::FAILURE
            });
        }

        let collector = Collector::new(self.machine_id)?;
        reporter::run(
            collector,
            AgentOptions {
                servers,
                api_key,
                interval,
                buffer: self.buffer,
                duration: run_for,
                tls,
            },
        )
        .await?;
        Ok(ExitCode::OK)
    }
}
