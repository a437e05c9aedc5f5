//! Sending reports: to any of the configured servers (usually one load-balancer URL), with
//! jittered exponential backoff while they are unreachable and a bounded buffer of reports
//! collected meanwhile, replayed oldest first when a server answers again.
//!
//! What a failure means decides what happens to the report: a network error, a timeout, 5xx
//! or 429 keeps it for later (the server or LB is down or draining); a 401 keeps it too (an
//! operator is expected to fix the key) but is logged as an error; any other 4xx drops it,
//! since sending the same bytes again can only be refused again.

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::{Context, anyhow};
use reqwest::StatusCode;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::collector::Collector;
use super::{jitter, now_ms};
use crate::fleet::Report;

/// What `run` needs.
pub struct AgentOptions {
    /// Server or load-balancer base URLs; the agent moves to the next one on failure.
    pub servers: Vec<String>,
    pub api_key: String,
    pub interval: Duration,
    /// Reports kept while no server answers; the oldest are dropped beyond this.
    pub buffer: usize,
    /// Stop after this long (tests, demos); `None` runs until stopped.
    pub duration: Option<Duration>,
    /// `--ca-file`: the CAs an https:// server's certificate must chain to.
    pub tls: crate::client::ClientTls,
}

/// How one attempt to deliver a report ended.
#[derive(Debug)]
pub enum Delivery {
    Accepted,
    /// Keep the report and retry later.
    Retry(String),
    /// The key was refused: keep the report and retry later (an operator is expected to
    /// fix the key), but say so loudly.
    Unauthorized(String),
    /// The server refused this report for good.
    Refused(String),
}

/// An HTTP client for the report endpoint that rotates through `servers` on failure.
pub struct Sender {
    http: reqwest::Client,
    servers: Vec<String>,
    current: usize,
    api_key: String,
}

/// `--server` URLs checked (http:// or https://, at least one) and without a trailing `/`.
pub fn server_urls(servers: Vec<String>) -> anyhow::Result<Vec<String>> {
    if servers.is_empty() {
        return Err(anyhow!(crate::exit::UsageError(
            "no server: pass --server URL (or set agent.server in the config)".into()
        )));
    }
    let servers: Vec<String> = servers
        .into_iter()
        .map(|s| s.trim_end_matches('/').to_string())
        .collect();
    if let Some(bad) = servers
        .iter()
        .find(|s| !(s.starts_with("http://") || s.starts_with("https://")))
    {
        return Err(anyhow!(crate::exit::UsageError(format!(
            "--server `{bad}` is not an http:// or https:// URL"
        ))));
    }
    Ok(servers)
}

/// The agent's HTTP client: its timeouts, user agent and `--ca-file`. One client is one
/// connection pool (a keep-alive connection per server, more while requests overlap).
pub fn http_client(tls: &crate::client::ClientTls) -> anyhow::Result<reqwest::Client> {
    tls.apply(reqwest::Client::builder())
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(3))
        .user_agent(concat!("fleetctl-agent/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client")
}

impl Sender {
    pub fn new(
        servers: Vec<String>,
        api_key: String,
        tls: &crate::client::ClientTls,
    ) -> anyhow::Result<Sender> {
        Ok(Sender {
            servers: server_urls(servers)?,
            http: http_client(tls)?,
            current: 0,
            api_key,
        })
    }

    pub fn server(&self) -> &str {
        &self.servers[self.current]
    }

    /// POST one report to the current server; on a retryable failure, move to the next.
    pub async fn send(&mut self, report: &Report) -> Delivery {
        let outcome = deliver(&self.http, self.server(), &self.api_key, report).await;
        if outcome.moves_on() && self.servers.len() > 1 {
            self.current = (self.current + 1) % self.servers.len();
        }
        outcome
    }
}

impl Delivery {
    /// Whether the next attempt should go to the next server of the list.
    pub fn moves_on(&self) -> bool {
        matches!(self, Delivery::Retry(_) | Delivery::Unauthorized(_))
    }
}

/// POST one report to `server` and say what the answer means.
pub async fn deliver(
    http: &reqwest::Client,
    server: &str,
    api_key: &str,
    report: &Report,
) -> Delivery {
    let url = format!("{server}/api/fleet/report");
    match http
        .post(&url)
        .bearer_auth(api_key)
        .json(report)
        .send()
        .await
    {
        Err(e) => Delivery::Retry(format!("cannot reach {url}: {e}")),
        Ok(res) => {
            let status = res.status();
            if status.is_success() {
                return Delivery::Accepted;
            }
            let body = res.text().await.unwrap_or_default();
            let detail = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| body.chars().take(200).collect());
            let msg = format!("{url} answered {status}: {detail}");
            if status == StatusCode::UNAUTHORIZED {
                Delivery::Unauthorized(msg)
            } else if status.is_server_error()
                || status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::REQUEST_TIMEOUT
            {
                Delivery::Retry(msg)
            } else {
                Delivery::Refused(msg)
            }
        }
    }
}

/// Reports waiting to be delivered, oldest first, never more than `capacity`.
pub struct Buffer {
    reports: VecDeque<Report>,
    capacity: usize,
    /// Reports dropped because the buffer was full, since the agent started.
    pub dropped: u64,
}

impl Buffer {
    pub fn new(capacity: usize) -> Buffer {
        Buffer {
            reports: VecDeque::new(),
            capacity: capacity.max(1),
            dropped: 0,
        }
    }

    pub fn push(&mut self, r: Report) {
        if self.reports.len() >= self.capacity {
            self.reports.pop_front();
            self.dropped += 1;
        }
        self.reports.push_back(r);
    }

    pub fn len(&self) -> usize {
        self.reports.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reports.is_empty()
    }
}

/// The pause after `failures` consecutive failed deliveries: 1 s doubling to 60 s, with
/// full jitter over its upper half so a fleet that lost its server does not come back in
/// lockstep.
pub fn backoff(failures: u32) -> Duration {
    let base =
        Duration::from_secs(1u64 << failures.saturating_sub(1).min(6)).min(Duration::from_secs(60));
    base / 2 + base.mul_f64(jitter() / 2.0)
}

/// Collect every `interval` and deliver, until `duration` (if any) runs out.
pub async fn run(mut collector: Collector, opts: AgentOptions) -> anyhow::Result<()> {
    let mut sender = Sender::new(opts.servers, opts.api_key, &opts.tls)?;
    let mut buffer = Buffer::new(opts.buffer);
    let stop_at = opts.duration.map(|d| Instant::now() + d);
    info!(
        machine_id = collector.machine_id(),
        server = sender.server(),
        interval_secs = opts.interval.as_secs_f64(),
        "agent started"
    );
    // Let the first CPU reading age so the first report has a real figure.
    tokio::time::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL).await;
    let mut next_collect = Instant::now();
    let mut next_send = Instant::now();
    let mut failures = 0u32;
    loop {
        let now = Instant::now();
        if stop_at.is_some_and(|s| now >= s) {
            break;
        }
        if now >= next_collect {
            buffer.push(collector.collect(now_ms()));
            next_collect += opts.interval;
            if next_collect < now {
                next_collect = now + opts.interval; // the host slept; do not burst
            }
        }
        if now >= next_send {
            while let Some(report) = buffer.reports.front() {
                match sender.send(report).await {
                    Delivery::Accepted => {
                        if failures > 0 {
                            info!(
                                server = sender.server(),
                                "server answers again; {} buffered report(s) to send",
                                buffer.len() - 1
                            );
                        }
                        failures = 0;
                        buffer.reports.pop_front();
                    }
                    Delivery::Refused(why) => {
                        error!("report refused and dropped: {why}");
                        buffer.reports.pop_front();
                    }
                    Delivery::Unauthorized(why) => {
                        failures += 1;
                        error!(
                            "{why}; check --api-key-file; keeping {} report(s)",
                            buffer.len()
                        );
                        next_send = Instant::now() + backoff(failures);
                        break;
                    }
                    Delivery::Retry(why) => {
                        failures += 1;
                        let wait = backoff(failures);
                        if failures == 1 {
                            warn!(
                                "{why}; retrying with backoff, buffering up to {} reports",
                                buffer.capacity
                            );
                        } else {
                            debug!("{why}; retry in {:.1}s", wait.as_secs_f64());
                        }
                        next_send = Instant::now() + wait;
                        break;
                    }
                }
            }
            if buffer.is_empty() {
                next_send = next_collect;
            }
        }
        let mut wake = next_collect.min(next_send.max(Instant::now()));
        if let Some(s) = stop_at {
            wake = wake.min(s);
        }
        tokio::time::sleep_until(wake).await;
    }
    if buffer.dropped > 0 {
        warn!(
            "{} report(s) were dropped while no server answered",
            buffer.dropped
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_a_minute_with_jitter() {
        for f in 1..20 {
            let b = backoff(f);
            assert!(b <= Duration::from_secs(60), "{f}: {b:?}");
            assert!(b >= Duration::from_millis(500), "{f}: {b:?}");
        }
        assert!(backoff(10) >= Duration::from_secs(30));
    }

    #[test]
    fn the_buffer_drops_the_oldest_when_full() {
        let r = |cpu: f64| {
            let mut c = Collector::new(Some("m".into())).unwrap();
            let mut r = c.collect(0);
            r.cpu_percent = cpu;
            r
        };
        let mut b = Buffer::new(2);
        for i in 0..3 {
            b.push(r(i as f64));
        }
        assert_eq!(b.len(), 2);
        assert_eq!(b.dropped, 1);
        assert_eq!(b.reports[0].cpu_percent, 1.0);
    }
}
