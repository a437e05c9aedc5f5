//! `ClusterManager`: this node's life in the cluster.
//!
//! It registers the node, heartbeats every `heartbeat_interval`, follows the drain flag an
//! admin sets in the backend, holds the leader lease and — as leader — runs the singleton
//! jobs (pruning dead nodes, plus whatever `LeaderJob`s the server adds). It never panics or
//! exits on a backend failure: it logs once, reports `unhealthy`, retries with backoff and
//! registers again when the backend returns.
//!
//! It owns no HTTP: the server reads `health()` for the load balancer's check.
//!
//! Leader jobs run as their own tasks, never inside the heartbeat: a session GC over a
//! million records cannot delay a heartbeat and make the leader look dead. Each job run is
//! *fenced* by the lease it started under: it is bounded by [`LeaderJob::timeout`], and it
//! stops at its next step once that lease is gone — lost at a renewal, or simply past its
//! local expiry (`0.9 × node_timeout` after the acquiring call began, on this host's
//! monotonic clock), which is before the backend could hand the lease to anyone else. So a
//! node frozen by SIGSTOP or a VM pause wakes up with its jobs already void. Jobs are
//! idempotent, so a run cut short is simply repeated by the next leader.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::NodeState;
use super::backend::{BackendError, ClusterBackend, NodeInfo, NodeRecord};
use crate::config::ClusterConfig;

/// The intervals that drive membership, from `cluster.*` in the config.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    pub heartbeat_interval: Duration,
    /// No heartbeat for this long = inactive. Also the leader lease length, so a dead
    /// leader's lease runs out exactly when it would be declared inactive.
    pub node_timeout: Duration,
    pub prune_after: Duration,
}

impl Timings {
    pub fn from_config(c: &ClusterConfig) -> Timings {
        Timings {
            heartbeat_interval: c.heartbeat_interval.as_duration(),
            node_timeout: c.node_timeout.as_duration(),
            prune_after: c.prune_after.as_duration(),
        }
    }
}

/// What the health check tells the load balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Healthy,
    /// Still serving, but asking the load balancer to send new work elsewhere.
    Draining {
        reason: String,
    },
    /// The cluster backend cannot be reached, or the node has not registered yet.
    Unhealthy {
        reason: String,
    },
}

/// A job only one node in the cluster should run at a time (expired-session GC, marking
/// machines offline). The leader runs each job every `every()` (zero: every heartbeat).
///
/// A job must be idempotent: a run can be cut short at any await point when the lease ends,
/// and the next leader runs it again.
#[async_trait]
pub trait LeaderJob: Send + Sync {
    fn name(&self) -> &str;
    fn every(&self) -> Duration;
    /// The longest one run may take before it is abandoned (and retried at the next
    /// `every`). By default the job's own period, and at least 10 s.
    fn timeout(&self) -> Duration {
        self.every().max(Duration::from_secs(10))
    }
    /// Returns a short summary for the log ("deleted 12 expired sessions").
    async fn run(&self) -> anyhow::Result<String>;

    /// `run`, for jobs that need the cluster manager itself (pruning the registry).
    async fn run_with(&self, _manager: &ClusterManager) -> anyhow::Result<String> {
        self.run().await
    }
}

/// The log target of job runs: `RUST_LOG=fleetctl::leader_jobs=debug` shows every start and
/// end with the node id and lease epoch (the failover tests read it).
pub const JOB_LOG: &str = "fleetctl::leader_jobs";

/// The lease this node holds, as it believes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Identifies one continuous tenure: the backend's clock (ms) when this node took the
    /// lease. Another node's tenure always starts later, so epochs never repeat.
    pub epoch: i64,
    /// This node's own deadline for acting as leader (see the module doc).
    pub until: Instant,
}

/// Mutable knowledge about this node, behind one lock so health is always consistent.
#[derive(Debug, Default)]
struct Local {
    registered: bool,
    /// SIGTERM/SIGINT drain: final, never undone by the backend flag.
    shutting_down: bool,
    /// Drain flag read from the backend at the last heartbeat (`fleetctl nodes drain`).
    admin_drained: bool,
    /// Since when and why the backend is unreachable; `None` when it is fine.
    outage: Option<(Instant, String)>,
    /// Consecutive failed ticks, for the backoff.
    failures: u32,
}

/// A leader job and when this node last ran it.
type ScheduledJob = (Arc<dyn LeaderJob>, tokio::sync::Mutex<Option<Instant>>);

pub struct ClusterManager {
    backend: Arc<dyn ClusterBackend>,
    info: NodeInfo,
    timings: Timings,
    local: Mutex<Local>,
    /// The lease this node believes it holds. `until` is on its own monotonic clock: the
    /// lease length (minus a margin) counted from *before* the acquiring call, so the local
    /// belief always ends before the backend's lease does. A node frozen past that point
    /// (SIGSTOP, a VM pause) stops calling itself leader without having to talk to anyone.
    /// A watch, so running jobs see a lost lease at once.
    lease: watch::Sender<Option<Lease>>,
    /// The node never prunes within its first `node_timeout`: after a whole-cluster restart
    /// every peer looks dead until it heartbeats again.
    started: Instant,
    jobs: Vec<ScheduledJob>,
    /// Called after every tick of the heartbeat loop, whatever its outcome (systemd's
    /// watchdog in `serve`: a loop that stops ticking is wedged). See [`ClusterManager::on_tick`].
    tick_hook: Mutex<Option<TickHook>>,
}

/// See [`ClusterManager::on_tick`].
pub type TickHook = Box<dyn Fn(&ClusterManager) + Send + Sync>;

impl ClusterManager {
    pub fn new(
        backend: Arc<dyn ClusterBackend>,
        info: NodeInfo,
        timings: Timings,
        jobs: Vec<Arc<dyn LeaderJob>>,
    ) -> Arc<ClusterManager> {
        Arc::new(ClusterManager {
            backend,
            info,
            timings,
            local: Mutex::new(Local::default()),
            lease: watch::Sender::new(None),
            started: Instant::now(),
            jobs: std::iter::once(Arc::new(PruneJob) as Arc<dyn LeaderJob>)
                .chain(jobs)
                .map(|j| (j, tokio::sync::Mutex::new(None)))
                .collect(),
            tick_hook: Mutex::new(None),
        })
    }

    /// Run `hook` after every tick of the loop started by [`ClusterManager::spawn`]. One hook;
    /// a second call replaces the first. It must be quick: it runs on the heartbeat task.
    pub fn on_tick(&self, hook: impl Fn(&ClusterManager) + Send + Sync + 'static) {
        *self.tick_hook.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(hook));
    }

    pub fn node_id(&self) -> &str {
        &self.info.node_id
    }

    pub fn info(&self) -> &NodeInfo {
        &self.info
    }

    pub fn backend(&self) -> &Arc<dyn ClusterBackend> {
        &self.backend
    }

    pub fn timings(&self) -> Timings {
        self.timings
    }

    pub fn is_leader(&self) -> bool {
        self.current_lease().is_some()
    }

    /// The lease this node holds now, if its local deadline has not passed.
    pub fn current_lease(&self) -> Option<Lease> {
        (*self.lease.borrow()).filter(|l| Instant::now() < l.until)
    }

    /// Record the outcome of an acquire/renew that started at `asked_at`; returns whether
    /// this node believed it was leader just before. A new tenure gets `epoch`; a renewal
    /// keeps the old one.
    fn set_leader(&self, won: bool, asked_at: Instant, epoch: impl FnOnce() -> i64) -> bool {
        let was = self.current_lease();
        // 10 % margin for clock-rate differences between this host and the backend.
        let until = asked_at + self.timings.node_timeout.mul_f64(0.9);
        let next = won.then(|| Lease {
            epoch: was.map_or_else(epoch, |l| l.epoch),
            until,
        });
        self.lease.send_replace(next);
        was.is_some()
    }

    /// Forget leadership locally; true when this node believed it led.
    fn drop_leadership(&self) -> bool {
        self.lease
            .send_replace(None)
            .is_some_and(|l| Instant::now() < l.until)
    }

    fn local(&self) -> std::sync::MutexGuard<'_, Local> {
        // A panic while holding this lock cannot leave `Local` half-updated in a way that
        // matters (every field is independently meaningful), so recover from poisoning.
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the load balancer's health check should answer right now.
    pub fn health(&self) -> Health {
        let l = self.local();
        if l.shutting_down {
            Health::Draining {
                reason: "node is shutting down; finishing in-flight requests".into(),
            }
        } else if let Some((since, reason)) = &l.outage {
            Health::Unhealthy {
                reason: format!(
                    "cluster backend unavailable for {:.0}s: {reason}",
                    since.elapsed().as_secs_f64()
                ),
            }
        } else if l.admin_drained {
            Health::Draining {
                reason: format!(
                    "drained by an administrator; `fleetctl nodes undrain {}` returns it to service",
                    self.info.node_id
                ),
            }
        } else if !l.registered {
            Health::Unhealthy {
                reason: "not registered in the cluster backend yet".into(),
            }
        } else {
            Health::Healthy
        }
    }

    /// Run the heartbeat loop, and one task per leader job, until `stop` turns true.
    pub fn spawn(self: &Arc<Self>, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        for index in 0..self.jobs.len() {
            let me = Arc::clone(self);
            let stop = stop.clone();
            tokio::spawn(async move { me.job_loop(index, stop).await });
        }
        let me = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                me.tick().await;
                if let Some(hook) = &*me.tick_hook.lock().unwrap_or_else(|p| p.into_inner()) {
                    hook(&me);
                }
                let delay = me.next_delay();
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => {}
                }
                if *stop.borrow() {
                    break;
                }
            }
        })
    }

    /// The pause before the next tick: the heartbeat interval, or a short, growing backoff
    /// while the backend is down so the node is back within one interval of its return.
    fn next_delay(&self) -> Duration {
        let failures = self.local().failures;
        if failures == 0 {
            return self.timings.heartbeat_interval;
        }
        let backoff = Duration::from_millis(250u64.saturating_mul(1 << failures.min(10)));
        backoff.min(self.timings.heartbeat_interval)
    }

    /// One heartbeat: register or refresh, follow the drain flag, keep or take the lease,
    /// and run leader jobs. Failures are recorded, never propagated.
    pub async fn tick(&self) {
        // A hung backend must not freeze the loop: bound each tick.
        let limit = self.timings.heartbeat_interval.max(Duration::from_secs(5));
        let result = match tokio::time::timeout(limit, self.heartbeat_or_register()).await {
            Ok(r) => r,
            Err(_) => Err(BackendError::Unavailable {
                backend: self.backend.kind(),
                location: self.backend.location(),
                message: format!("no answer within {}s", limit.as_secs()),
            }),
        };
        let record = match result {
            Ok(r) => r,
            Err(e) => {
                self.note_failure(&e);
                return;
            }
        };
        self.note_success();
        {
            let mut l = self.local();
            if !l.shutting_down && l.admin_drained != record.draining {
                if record.draining {
                    info!(node_id = %self.info.node_id, "drained by an administrator: health check now fails");
                } else {
                    info!(node_id = %self.info.node_id, "undrained: back in service");
                }
                l.admin_drained = record.draining;
            }
        }
        if let Err(e) = self.lead().await {
            self.note_failure(&e);
        }
    }

    async fn heartbeat_or_register(&self) -> Result<NodeRecord, BackendError> {
        let registered = self.local().registered;
        if registered {
            if let Some(rec) = self.backend.heartbeat(&self.info.node_id).await? {
                return Ok(rec);
            }
            warn!(node_id = %self.info.node_id, "this node's record vanished from the {} backend; registering again", self.backend.kind());
            self.local().registered = false;
        }
        let mut rec = self.backend.register(&self.info).await?;
        let (shutting_down, admin_drained) = {
            let mut l = self.local();
            l.registered = true;
            (l.shutting_down, l.admin_drained)
        };
        // A fresh record has no drain flag; keep the intent the node already knew about.
        if shutting_down || admin_drained {
            self.backend.set_draining(&self.info.node_id, true).await?;
            rec.draining = true;
        }
        info!(node_id = %self.info.node_id, backend = %self.backend.kind(), location = %self.backend.location(), "registered in the cluster");
        Ok(rec)
    }

    fn note_failure(&self, e: &BackendError) {
        let mut l = self.local();
        l.failures = l.failures.saturating_add(1);
        if l.outage.is_none() {
            // Logged once per outage, not once per retry.
            warn!(node_id = %self.info.node_id, error = %e, "cluster backend unavailable: health check reports unhealthy; retrying with backoff");
            l.outage = Some((Instant::now(), e.to_string()));
        } else {
            debug!(error = %e, "cluster backend still unavailable");
        }
        drop(l);
        // We cannot renew the lease, so we must assume we lost it.
        if self.drop_leadership() {
            warn!(node_id = %self.info.node_id, "gave up leadership: cannot renew the lease");
        }
    }

    fn note_success(&self) {
        let mut l = self.local();
        l.failures = 0;
        if let Some((since, _)) = l.outage.take() {
            info!(node_id = %self.info.node_id, "cluster backend reachable again after {:.1}s", since.elapsed().as_secs_f64());
        }
    }

    /// Hold or take the leader lease and, as leader, run the singleton jobs. Draining nodes
    /// hand leadership over so the jobs keep running elsewhere.
    async fn lead(&self) -> Result<(), BackendError> {
        let draining = {
            let l = self.local();
            l.shutting_down || l.admin_drained
        };
        if draining {
            if self.drop_leadership() {
                self.backend.release_leader(&self.info.node_id).await?;
                info!(node_id = %self.info.node_id, "released leadership while draining");
            }
            return Ok(());
        }
        let asked_at = Instant::now();
        let won = self
            .backend
            .try_acquire_leader(&self.info.node_id, self.timings.node_timeout)
            .await?;
        // A new tenure's epoch: the backend's clock now, which no earlier tenure can share.
        // Asked only when the lease is newly won; if that read fails, the monotonic
        // fallback still differs from every earlier epoch of this node.
        let newly_won = won && self.current_lease().is_none();
        let epoch = if newly_won {
            match self.backend.now().await {
                Ok(now) => now,
                Err(_) => self.started.elapsed().as_millis() as i64,
            }
        } else {
            0
        };
        let was = self.set_leader(won, asked_at, || epoch);
        if won && !was {
            info!(node_id = %self.info.node_id, epoch, "became cluster leader");
        } else if was && !won {
            warn!(node_id = %self.info.node_id, "lost cluster leadership");
        }
        Ok(())
    }

    /// One leader job's life: every check interval, run it when this node leads, the
    /// warm-up is over and the job is due.
    async fn job_loop(self: Arc<Self>, index: usize, mut stop: watch::Receiver<bool>) {
        let job = Arc::clone(&self.jobs[index].0);
        let check = self.timings.heartbeat_interval.min(self.period(&*job));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(check) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return;
            }
            self.run_job_if_due(index).await;
        }
    }

    /// How often `job` runs: its own period, or every heartbeat when that is zero.
    fn period(&self, job: &dyn LeaderJob) -> Duration {
        match job.every() {
            Duration::ZERO => self.timings.heartbeat_interval,
            every => every,
        }
    }

    /// Run every due leader job once, now, each fenced by the current lease (the job tasks
    /// do this on their own; tests call it after `tick` to stay deterministic).
    pub async fn run_due_jobs(&self) {
        for index in 0..self.jobs.len() {
            self.run_job_if_due(index).await;
        }
    }

    async fn run_job_if_due(&self, index: usize) {
        let (job, last) = &self.jobs[index];
        // One run of a job at a time on this node; a run still going is not doubled.
        let Ok(mut last) = last.try_lock() else {
            return;
        };
        // The node never prunes or collects within its first `node_timeout`: after a
        // whole-cluster restart every peer looks dead until it heartbeats again.
        if self.started.elapsed() < self.timings.node_timeout {
            return;
        }
        if last.is_some_and(|t| t.elapsed() < self.period(&**job)) {
            return;
        }
        let Some(lease) = self.current_lease() else {
            return;
        };
        let name = job.name();
        let node_id = &self.info.node_id;
        debug!(target: JOB_LOG, job = name, node_id = %node_id, epoch = lease.epoch, "leader job started");
        let started = Instant::now();
        let limit = job.timeout();
        let run = tokio::time::timeout(limit, job.run_with(self));
        match self.fenced(lease.epoch, run).await {
            None => {
                warn!(target: JOB_LOG, job = name, node_id = %node_id, epoch = lease.epoch, "leader job stopped: the lease ended before it finished")
            }
            Some(Err(_)) => {
                warn!(target: JOB_LOG, job = name, node_id = %node_id, epoch = lease.epoch, "leader job stopped after {limit:?}; it runs again next time")
            }
            Some(Ok(Err(e))) => {
                warn!(target: JOB_LOG, job = name, node_id = %node_id, epoch = lease.epoch, error = %format!("{e:#}"), "leader job failed")
            }
            Some(Ok(Ok(summary))) => {
                debug!(target: JOB_LOG, job = name, node_id = %node_id, epoch = lease.epoch, elapsed_ms = started.elapsed().as_millis() as u64, "leader job finished: {summary}")
            }
        }
        *last = Some(Instant::now());
    }

    /// Drive `work` only while this node still holds the lease of `epoch`: before every
    /// step it checks the lease (lost at a renewal, or past its local deadline) and drops
    /// the work instead of letting it take one more step. The check reads the clock on each
    /// poll, so a node resumed after a freeze cannot take a step on a lapsed lease even if
    /// the runtime has not fired its timers yet.
    async fn fenced<F: Future>(&self, epoch: i64, work: F) -> Option<F::Output> {
        let mut work = pin!(work);
        let mut lease_rx = self.lease.subscribe();
        loop {
            let until = match *lease_rx.borrow_and_update() {
                Some(l) if l.epoch == epoch => l.until,
                _ => return None,
            };
            let step = std::future::poll_fn(|cx| {
                if Instant::now() >= until {
                    return Poll::Ready(None);
                }
                work.as_mut().poll(cx).map(Some)
            });
            tokio::select! {
                biased;
                // The deadline passed (or the lease changed): look again, it may have been
                // renewed under the same epoch.
                _ = tokio::time::sleep_until(until.into()) => {}
                _ = lease_rx.changed() => {}
                out = step => match out {
                    Some(v) => return Some(v),
                    None => continue,
                },
            }
        }
    }

    /// SIGTERM/SIGINT: fail the health check at once and tell the registry, so peers and
    /// `cluster status` show `draining` before the node goes. Best effort: the node drains
    /// locally even when the backend is down.
    pub async fn begin_shutdown(&self) {
        self.local().shutting_down = true;
        let id = &self.info.node_id;
        let limit = Duration::from_secs(3);
        if let Ok(Err(e)) = tokio::time::timeout(limit, self.backend.set_draining(id, true)).await {
            warn!(node_id = %id, error = %e, "could not record draining in the backend");
        }
        // Release even if the local belief has lapsed: compare-and-delete makes it harmless
        // when someone else holds the lease.
        self.drop_leadership();
        let _ = tokio::time::timeout(limit, self.backend.release_leader(id)).await;
    }

    /// Clean exit: give up the lease and mark the node `left`.
    pub async fn deregister(&self) -> Result<(), BackendError> {
        let id = &self.info.node_id;
        let limit = Duration::from_secs(5);
        let unavailable = |what: &str| BackendError::Unavailable {
            backend: self.backend.kind(),
            location: self.backend.location(),
            message: format!("{what} timed out after {}s", limit.as_secs()),
        };
        self.drop_leadership();
        tokio::time::timeout(limit, self.backend.release_leader(id))
            .await
            .map_err(|_| unavailable("releasing the leader lease"))??;
        tokio::time::timeout(limit, self.backend.deregister(id))
            .await
            .map_err(|_| unavailable("deregistering"))??;
        info!(node_id = %id, "deregistered: left the cluster");
        Ok(())
    }
}

/// Forgetting nodes that have been inactive or gone for `prune_after`: the built-in leader
/// job, run every heartbeat.
struct PruneJob;

#[async_trait]
impl LeaderJob for PruneJob {
    fn name(&self) -> &str {
        "prune-nodes"
    }

    /// Zero: every heartbeat.
    fn every(&self) -> Duration {
        Duration::ZERO
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(10)
    }

    async fn run(&self) -> anyhow::Result<String> {
        anyhow::bail!("prune-nodes needs its manager; it runs through run_with")
    }

    async fn run_with(&self, manager: &ClusterManager) -> anyhow::Result<String> {
        let backend = &manager.backend;
        let timings = manager.timings;
        let listing = backend.list().await?;
        let prune_ms = timings.prune_after.as_millis() as i64;
        let mut pruned = 0;
        for rec in listing.nodes {
            let state = NodeState::of(&rec, listing.now, timings.node_timeout);
            let silent_for = listing.now.saturating_sub(rec.last_heartbeat);
            if matches!(state, NodeState::Inactive | NodeState::Left)
                && silent_for > prune_ms
                && backend.remove(&rec.info.node_id).await?
            {
                pruned += 1;
                info!(pruned = %rec.info.node_id, state = %state, "pruned node silent for {}s", silent_for / 1000);
            }
        }
        Ok(format!("pruned {pruned} node(s)"))
    }
}
