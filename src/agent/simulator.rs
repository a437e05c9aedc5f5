//! `fleetctl agent --simulate N`: N virtual machines reporting like real ones, for load
//! tests and demos.
//!
//! Each machine has a role (web, db, cache, batch) that shapes its load: a daily-looking
//! sine wave, noise, occasional spikes, slowly filling disks, growing network counters.
//! Machine ids are `sim-<run>-<n>`: stable for the whole run (so history accumulates), new
//! for every run (so runs do not mix). Reports are spread evenly over the interval, and
//! every delivery's latency is recorded so the run ends with p50/p99 numbers.
//!
//! A virtual machine costs a few hundred bytes, not a task, a timer and an HTTP client: a few
//! scheduler tasks (one per core) each own every S-th machine, wake when their next machine
//! is due (no more often than every `BATCH`) and send for all machines due by then. All
//! machines share one HTTP client, so the node sees about as many keep-alive connections as
//! reports in flight (at most `MAX_IN_FLIGHT`), not one per machine as a real fleet would: the
//! simulator measures the node's report path, not what the node's connections cost (see
//! docs/performance.md for that). Each machine keeps its own place in the server list and
//! moves to the next server on a failure, like a real agent.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Serialize;
use tokio::time::Instant;
use tracing::info;

use super::reporter::{self, Delivery};
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

/// A scheduler never wakes more often than this: when machines are due closer together, it
/// sends for all of them at once (at 3,000 reports/s, ~30 per wake-up instead of one wake-up
/// each).
const BATCH: Duration = Duration::from_millis(10);

/// When machine `index` of `machines` reports within each interval: evenly spaced from 0.
fn offset(index: usize, machines: usize, interval: Duration) -> Duration {
    interval.mul_f64(index as f64 / machines.max(1) as f64)
}

/// The machines one scheduler owns (every `schedulers`-th from `first`), in the order they
/// report within an interval, and which one is next.
struct Schedule {
    /// Each owned machine's offset into the interval, ascending.
    offsets: Vec<Duration>,
    interval: Duration,
    /// Intervals completed.
    round: u32,
    /// Index into `offsets` of the next machine to report.
    next: usize,
}

impl Schedule {
    fn new(first: usize, schedulers: usize, machines: usize, interval: Duration) -> Schedule {
        Schedule {
            offsets: (first..machines)
                .step_by(schedulers.max(1))
                .map(|i| offset(i, machines, interval))
                .collect(),
            interval,
            round: 0,
            next: 0,
        }
    }

    /// When the next machine is due, counted from the start of the run.
    fn next_due(&self) -> Duration {
        self.interval * self.round + self.offsets[self.next]
    }

    /// The next machine (an index into the scheduler's own machines) and move past it, if it
    /// is due at `elapsed` and before `stop` (both counted from the start of the run).
    fn pop_due(&mut self, elapsed: Duration, stop: Option<Duration>) -> Option<usize> {
        let due = self.next_due();
        if due > elapsed || stop.is_some_and(|s| due >= s) {
            return None;
        }
        let machine = self.next;
        self.next += 1;
        if self.next == self.offsets.len() {
            self.next = 0;
            self.round += 1;
        }
        Some(machine)
    }
}

/// Reports in flight at once, over all schedulers, and so the most connections the shared
/// pool opens. Without a cap, a node that stalls for a second under 3,000 reports/s would see
/// 3,000 new connections (and the simulator run out of file descriptors); with it, machines
/// due meanwhile wait for a free connection, and that wait counts in their latency.
const MAX_IN_FLIGHT: usize = 256;

/// What every scheduler shares: one HTTP client (one connection pool) for all machines.
struct Shared {
    http: reqwest::Client,
    servers: Vec<String>,
    api_key: String,
    tally: Mutex<Tally>,
}

/// A virtual machine as its scheduler sees it.
struct Simulated {
    vm: VirtualMachine,
    /// Index into `Shared::servers`: the machine's own place in the rotation.
    server: usize,
    /// A report of this machine is queued or in flight: a real agent sends one at a time.
    busy: bool,
    /// The machine came due (at this instant) while busy: queue it once the report in flight
    /// is answered.
    owed: Option<Instant>,
}

/// Send one machine's report; its latency counts from `due`, when its scheduler found it due
/// (so a wait for a free connection is included).
async fn send(
    shared: Arc<Shared>,
    machine: usize,
    server: usize,
    report: Report,
    due: Instant,
) -> Sent {
    let outcome = reporter::deliver(
        &shared.http,
        &shared.servers[server],
        &shared.api_key,
        &report,
    )
    .await;
    Sent {
        machine,
        outcome,
        ms: due.elapsed().as_secs_f64() * 1000.0,
    }
}

struct Sent {
    machine: usize,
    outcome: Delivery,
    ms: f64,
}

/// One scheduler: send each of `machines` when `schedule` says, at most `max_in_flight` at
/// once, until `stop_at`; then wait for the reports queued and in flight.
async fn drive(
    mut machines: Vec<Simulated>,
    mut schedule: Schedule,
    shared: Arc<Shared>,
    started: Instant,
    stop_at: Option<Instant>,
    max_in_flight: usize,
) {
    let stop = stop_at.map(|s| s - started);
    let mut in_flight = FuturesUnordered::new();
    // Machines due (and marked busy) waiting for a free connection, oldest first.
    let mut queued: VecDeque<(usize, Instant)> = VecDeque::new();
    let wake = tokio::time::sleep_until(started + schedule.next_due());
    tokio::pin!(wake);
    loop {
        while in_flight.len() < max_in_flight
            && let Some((j, due)) = queued.pop_front()
        {
            let m: &mut Simulated = &mut machines[j];
            let report = m.vm.report(now_ms());
            in_flight.push(send(Arc::clone(&shared), j, m.server, report, due));
        }
        let done = stop.is_some_and(|s| schedule.next_due() >= s);
        if done && in_flight.is_empty() && queued.is_empty() {
            return;
        }
        tokio::select! {
            Some(sent) = in_flight.next(), if !in_flight.is_empty() => {
                let Sent { machine, outcome, ms } = sent;
                let m: &mut Simulated = &mut machines[machine];
                m.busy = false;
                if outcome.moves_on() {
                    m.server = (m.server + 1) % shared.servers.len();
                }
                shared.tally.lock().unwrap_or_else(|p| p.into_inner()).record(outcome, ms);
                if let Some(due) = m.owed.take() {
                    m.busy = true;
                    queued.push_back((machine, due));
                }
            }
            () = &mut wake, if !done => {
                let now = Instant::now();
                while let Some(j) = schedule.pop_due(now - started, stop) {
                    let m = &mut machines[j];
                    if m.busy {
                        m.owed.get_or_insert(now);
                    } else {
                        m.busy = true;
                        queued.push_back((j, now));
                    }
                }
                wake.as_mut().reset((started + schedule.next_due()).max(now + BATCH));
            }
        }
    }
}

impl Tally {
    fn record(&mut self, outcome: Delivery, ms: f64) {
        match outcome {
            Delivery::Accepted => {
                self.accepted += 1;
                self.latencies_ms.push(ms);
            }
            Delivery::Retry(e) | Delivery::Refused(e) | Delivery::Unauthorized(e) => {
                self.failed += 1;
                if self.errors.len() < 5 && !self.errors.contains(&e) {
                    self.errors.push(e);
                }
            }
        }
    }
}

/// Run the simulation until `duration` passes or Ctrl-C.
pub async fn run(opts: SimOptions) -> anyhow::Result<SimStats> {
    let run = format!("{:04x}", Rng::from_os().next_u64() & 0xffff);
    let seed = Rng::from_os().next_u64();
    // The same checks and the same client settings as the real agent.
    let servers = reporter::server_urls(opts.servers.clone())?;
    let shared = Arc::new(Shared {
        http: reporter::http_client(&opts.tls)?,
        servers,
        api_key: opts.api_key.clone(),
        tally: Mutex::new(Tally::default()),
    });
    let started = Instant::now();
    let stop_at = opts.duration.map(|d| started + d);
    info!(
        run = %run,
        machines = opts.machines,
        interval_secs = opts.interval.as_secs_f64(),
        "simulating machines sim-{run}-00000..{:05}",
        opts.machines.saturating_sub(1)
    );
    let schedulers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, opts.machines.max(1));
    let mut tasks = Vec::with_capacity(schedulers);
    for first in 0..schedulers {
        let machines = (first..opts.machines)
            .step_by(schedulers)
            .map(|i| Simulated {
                vm: VirtualMachine::new(&run, i, seed),
                // Each machine starts with a different server so load spreads without an LB.
                server: i % shared.servers.len(),
                busy: false,
                owed: None,
            })
            .collect();
        let schedule = Schedule::new(first, schedulers, opts.machines, opts.interval);
        tasks.push(tokio::spawn(drive(
            machines,
            schedule,
            Arc::clone(&shared),
            started,
            stop_at,
            (MAX_IN_FLIGHT / schedulers).max(1),
        )));
    }
    let progress = {
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            tick.tick().await;
            loop {
                tick.tick().await;
                let t = shared.tally.lock().unwrap_or_else(|p| p.into_inner());
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
    let mut t = shared.tally.lock().unwrap_or_else(|p| p.into_inner());
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

    /// Every due machine from 0 to `until` in steps of `step`, as (global index, due time).
    fn drain(
        schedulers: usize,
        machines: usize,
        interval: Duration,
        step: Duration,
        until: Duration,
        stop: Option<Duration>,
    ) -> Vec<(usize, Duration)> {
        let mut all = Vec::new();
        for first in 0..schedulers {
            let mut s = Schedule::new(first, schedulers, machines, interval);
            let mut now = Duration::ZERO;
            while now <= until {
                loop {
                    let due = s.next_due();
                    let Some(j) = s.pop_due(now, stop) else { break };
                    all.push((first + j * schedulers, due));
                }
                now += step;
            }
        }
        all.sort_by_key(|&(i, due)| (due, i));
        all
    }

    #[test]
    fn the_schedule_spreads_machines_evenly_over_the_interval() {
        let interval = Duration::from_secs(10);
        // 10 machines on 3 schedulers: one report every second, machine i at i seconds, and
        // every machine once per interval.
        let sent = drain(
            3,
            10,
            interval,
            Duration::from_millis(10),
            interval * 2,
            None,
        );
        let first_round: Vec<_> = sent.iter().take(10).copied().collect();
        let expected: Vec<_> = (0..10)
            .map(|i| (i, Duration::from_secs(i as u64)))
            .collect();
        assert_eq!(first_round, expected);
        let second_round: Vec<_> = sent
            .iter()
            .skip(10)
            .take(10)
            .map(|&(i, d)| (i, d))
            .collect();
        let expected: Vec<_> = (0..10)
            .map(|i| (i, interval + Duration::from_secs(i as u64)))
            .collect();
        assert_eq!(second_round, expected);
        // 30,000 machines on 2 schedulers: each scheduler sends for half of them, and in any
        // 100 ms of the interval the fleet sends 300 reports.
        let sent = drain(
            2,
            30_000,
            interval,
            Duration::from_millis(10),
            interval,
            None,
        );
        let in_round: Vec<_> = sent.iter().filter(|&&(_, d)| d < interval).collect();
        assert_eq!(in_round.len(), 30_000);
        for w in 0..100u32 {
            let (lo, hi) = (interval * w / 100, interval * (w + 1) / 100);
            let n = in_round
                .iter()
                .filter(|&&&(_, d)| d >= lo && d < hi)
                .count();
            assert_eq!(n, 300, "window {w}");
        }
    }

    #[test]
    fn a_late_scheduler_catches_up_and_nothing_is_due_after_the_stop() {
        let interval = Duration::from_secs(10);
        let mut s = Schedule::new(0, 1, 4, interval);
        // Woken 25 s late: every report due by then, in order (two full rounds and two more).
        let mut late = Vec::new();
        while let Some(j) = s.pop_due(Duration::from_secs(25), None) {
            late.push(j);
        }
        assert_eq!(late, [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2]);
        assert_eq!(s.next_due(), Duration::from_millis(27_500));
        // With --duration 15s: machines due at 0, 2.5, …, 12.5 s, none at 15 s or later.
        let sent = drain(
            1,
            4,
            interval,
            Duration::from_secs(1),
            interval * 3,
            Some(interval * 3 / 2),
        );
        assert_eq!(sent.len(), 6);
        assert!(sent.iter().all(|&(_, d)| d < Duration::from_secs(15)));
    }

    #[test]
    fn ids_are_stable_per_run_and_distinct_per_machine() {
        let a = VirtualMachine::new("ab12", 7, 1);
        let b = VirtualMachine::new("ab12", 7, 2);
        assert_eq!(a.id(), b.id());
        assert_ne!(a.id(), VirtualMachine::new("ab12", 8, 1).id());
    }
}
