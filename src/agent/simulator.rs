//! `fleetctl agent --simulate N`: N virtual machines reporting like real ones, for load
//! tests and demos.
//!
//! Each machine has a role (web, db, cache, batch) that shapes its load: a daily-looking
//! sine wave, noise, occasional spikes, slowly filling disks, growing network counters.
//! Machine ids are `sim-<run>-<n>`: stable for the whole run (so history accumulates), new
//! for every run (so runs do not mix). Reports are spread evenly over the interval, and
//! every delivery's latency is recorded so the run ends with p50/p99 numbers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;
use tracing::info;

use super::reporter::{Delivery, Sender};
use super::{Rng, now_ms};
use crate::fleet::report::{Disk, Network, Usage, rfc3339_ms};
use crate::fleet::{Millis, Report};

/// What kind of machine a virtual machine imitates.
#[derive(Debug, Clone, Copy)]
enum Role {
    Web,
    Db,
    Cache,
    Batch,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Web => "web",
            Role::Db => "db",
            Role::Cache => "cache",
            Role::Batch => "batch",
        }
    }

    /// (base CPU %, CPU swing %, memory fill, cores)
    fn profile(self) -> (f64, f64, f64, u32) {
        match self {
            Role::Web => (25.0, 20.0, 0.45, 4),
            Role::Db => (40.0, 15.0, 0.80, 16),
            Role::Cache => (10.0, 5.0, 0.90, 8),
            Role::Batch => (60.0, 35.0, 0.60, 32),
        }
    }
}

/// One virtual machine and its evolving state.
pub struct VirtualMachine {
    id: String,
    hostname: String,
    role: Role,
    rng: Rng,
    /// Where in its "day" the machine starts, so the fleet is not in lockstep.
    phase: f64,
    memory_total: u64,
    disk_total: u64,
    disk_used: f64,
    rx: u64,
    tx: u64,
    boot_ms: Millis,
    load: f64,
}

impl VirtualMachine {
    pub fn new(run: &str, index: usize, seed: u64) -> VirtualMachine {
        let mut rng = Rng::seeded(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let role = [Role::Web, Role::Web, Role::Db, Role::Cache, Role::Batch][index % 5];
        let (_, _, _, cores) = role.profile();
        let memory_total = u64::from(cores) * (4 << 30);
        let disk_total = (100u64 << 30) * (1 + (rng.next_u64() % 10));
        VirtualMachine {
            id: format!("sim-{run}-{index:05}"),
            hostname: format!("{}-{index:05}.sim.example", role.name()),
            role,
            phase: rng.range(0.0, std::f64::consts::TAU),
            memory_total,
            disk_total,
            disk_used: disk_total as f64 * rng.range(0.2, 0.7),
            rx: rng.next_u64() % (1 << 34),
            tx: rng.next_u64() % (1 << 33),
            boot_ms: now_ms() - (rng.range(3_600.0, 90.0 * 86_400.0) * 1000.0) as Millis,
            load: 0.0,
            rng,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The machine's report at wall time `t` (ms).
    pub fn report(&mut self, t: Millis) -> Report {
        let (base, swing, mem_fill, cores) = self.role.profile();
        // A compressed "day" of 10 minutes, so a one-minute demo shows movement.
        let day = (t as f64 / 600_000.0) * std::f64::consts::TAU + self.phase;
        let spike = if self.rng.unit() < 0.02 {
            self.rng.range(20.0, 50.0)
        } else {
            0.0
        };
        let cpu = (base + swing * day.sin() + self.rng.range(-5.0, 5.0) + spike).clamp(0.0, 100.0);
        // Load follows CPU with lag, in units of busy cores.
        self.load = 0.7 * self.load + 0.3 * (cpu / 100.0 * f64::from(cores));
        let mem = (mem_fill + 0.05 * day.cos() + self.rng.range(-0.02, 0.02)).clamp(0.05, 0.99);
        self.disk_used = (self.disk_used + self.rng.range(0.0, 5.0e6)).min(self.disk_total as f64);
        self.rx += (cpu * self.rng.range(1e4, 1e5)) as u64;
        self.tx += (cpu * self.rng.range(5e3, 5e4)) as u64;
        Report {
            machine_id: self.id.clone(),
            hostname: self.hostname.clone(),
            os: "Debian GNU/Linux 13 (trixie)".into(),
            kernel: "6.12.0-sim".into(),
            agent_version: concat!(env!("CARGO_PKG_VERSION"), "-sim").into(),
            timestamp: rfc3339_ms(t),
            uptime_secs: ((t - self.boot_ms).max(0) / 1000) as u64,
            cpu_percent: (cpu * 100.0).round() / 100.0,
            cpu_cores: cores,
            load: [self.load, self.load * 0.9, self.load * 0.8],
            memory: Usage {
                total_bytes: self.memory_total,
                used_bytes: (self.memory_total as f64 * mem) as u64,
            },
            swap: Usage {
                total_bytes: 2 << 30,
                used_bytes: if mem > 0.9 { 256 << 20 } else { 0 },
            },
            disks: vec![
                Disk {
                    mount: "/".into(),
                    total_bytes: self.disk_total,
                    used_bytes: self.disk_used as u64,
                },
                Disk {
                    mount: "/boot".into(),
                    total_bytes: 1 << 30,
                    used_bytes: 300 << 20,
                },
            ],
            network: Network {
                rx_bytes: self.rx,
                tx_bytes: self.tx,
            },
        }
    }
}

pub struct SimOptions {
    pub machines: usize,
    pub servers: Vec<String>,
    pub api_key: String,
    pub interval: Duration,
    /// Stop after this long; `None` runs until Ctrl-C.
    pub duration: Option<Duration>,
    /// `--ca-file`: the CAs an https:// server's certificate must chain to.
    pub tls: crate::client::ClientTls,
}

/// What a run did, printed at the end (`--output json` prints it as JSON).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SimStats {
    pub run: String,
    pub machines: usize,
    pub seconds: f64,
    pub sent: u64,
    pub accepted: u64,
    pub failed: u64,
    pub reports_per_sec: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_max: f64,
    /// Up to five distinct failure messages.
    pub errors: Vec<String>,
}

#[derive(Default)]
struct Tally {
    latencies_ms: Vec<f64>,
    accepted: u64,
    failed: u64,
    errors: Vec<String>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Run the simulation until `duration` passes or Ctrl-C.
pub async fn run(opts: SimOptions) -> anyhow::Result<SimStats> {
    let run = format!("{:04x}", Rng::from_os().next_u64() & 0xffff);
    let seed = Rng::from_os().next_u64();
    // Validate the server list once, up front, with the same rules as the real agent.
    Sender::new(opts.servers.clone(), opts.api_key.clone(), &opts.tls)?;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let stop_at = opts.duration.map(|d| started + d);
    info!(
        run = %run,
        machines = opts.machines,
        interval_secs = opts.interval.as_secs_f64(),
        "simulating machines sim-{run}-00000..{:05}",
        opts.machines.saturating_sub(1)
    );
    let mut tasks = Vec::with_capacity(opts.machines);
    for i in 0..opts.machines {
        let mut vm = VirtualMachine::new(&run, i, seed);
        // Each machine starts with a different server so load spreads without an LB.
        let mut servers = opts.servers.clone();
        let shift = i % servers.len().max(1);
        servers.rotate_left(shift);
        let mut sender = Sender::new(servers, opts.api_key.clone(), &opts.tls)?;
        let tally = Arc::clone(&tally);
        let offset = opts
            .interval
            .mul_f64(i as f64 / opts.machines.max(1) as f64);
        let interval = opts.interval;
        tasks.push(tokio::spawn(async move {
            let mut next = started + offset;
            loop {
                if stop_at.is_some_and(|s| next >= s) {
                    break;
                }
                tokio::time::sleep_until(next).await;
                let report = vm.report(now_ms());
                let t0 = Instant::now();
                let outcome = sender.send(&report).await;
                let ms = t0.elapsed().as_secs_f64() * 1000.0;
                let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
                match outcome {
                    Delivery::Accepted => {
                        t.accepted += 1;
                        t.latencies_ms.push(ms);
                    }
                    Delivery::Retry(e) | Delivery::Refused(e) | Delivery::Unauthorized(e) => {
                        t.failed += 1;
                        if t.errors.len() < 5 && !t.errors.contains(&e) {
                            t.errors.push(e);
                        }
                    }
                }
                drop(t);
                next += interval;
            }
        }));
    }
    let progress = {
        let tally = Arc::clone(&tally);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            tick.tick().await;
            loop {
                tick.tick().await;
                let t = tally.lock().unwrap_or_else(|p| p.into_inner());
                info!(
                    accepted = t.accepted,
                    failed = t.failed,
                    "simulation progress"
                );
            }
        })
    };
    let all = futures::future::join_all(tasks);
    tokio::select! {
        _ = all => {}
        _ = tokio::signal::ctrl_c() => info!("interrupted"),
    }
    progress.abort();
    let seconds = started.elapsed().as_secs_f64();
    let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
    t.latencies_ms.sort_by(f64::total_cmp);
    let sent = t.accepted + t.failed;
    Ok(SimStats {
        run,
        machines: opts.machines,
        seconds,
        sent,
        accepted: t.accepted,
        failed: t.failed,
        reports_per_sec: sent as f64 / seconds.max(0.001),
        latency_ms_p50: percentile(&t.latencies_ms, 0.50),
        latency_ms_p99: percentile(&t.latencies_ms, 0.99),
        latency_ms_max: t.latencies_ms.last().copied().unwrap_or(0.0),
        errors: std::mem::take(&mut t.errors),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_reports_vary_and_pass_validation() {
        let now = now_ms();
        let mut vm = VirtualMachine::new("test", 3, 42);
        let mut cpus = Vec::new();
        for i in 0..50 {
            let r = vm.report(now - 50_000 + i * 1000);
            r.check(now).unwrap();
            assert_eq!(r.machine_id, "sim-test-00003");
            cpus.push(r.cpu_percent);
        }
        assert!(
            cpus.windows(2).any(|w| w[0] != w[1]),
            "metrics vary: {cpus:?}"
        );
    }

    #[test]
    fn ids_are_stable_per_run_and_distinct_per_machine() {
        let a = VirtualMachine::new("ab12", 7, 1);
        let b = VirtualMachine::new("ab12", 7, 2);
        assert_eq!(a.id(), b.id());
        assert_ne!(a.id(), VirtualMachine::new("ab12", 8, 1).id());
    }
}
