//! Fleet data: the machines agents report about, their latest state and a bounded history.
//!
//! This module owns the `FleetStore` trait and everything that does not depend on where the
//! data lives: the report format and its validation (`report`), the history tiers and their
//! bounds, machine states and the listing/summary computations (`view`), and the leader job
//! that marks machines offline and forgets them (`janitor`). Two stores implement the trait,
//! one file each: `sqlite.rs` (the embedded default) and `redis.rs` (shared by a cluster).
//! Each owns its schema or key layout; nothing else spells a SQL statement or a Redis key.
//!
//! Time: `last_seen` and every age comes from the *store's* clock (SQLite `unixepoch`, Redis
//! `TIME`), so nodes with skewed clocks agree on which machines are online. History points
//! are stamped with the report's own `timestamp` (when the agent measured), bucketed per tier.

pub mod index;
pub mod janitor;
pub mod postgres;
pub mod redis;
pub mod report;
pub mod sqlite;
pub mod view;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::config::{BackendKind, StorageConfig};
pub use crate::store::crypto::{AtRest, ResealCount};

/// Called by [`FleetStore::reseal`] with (records done, records in all).
pub type ResealProgress<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

/// Machines per re-sealing batch.
const RESEAL_BATCH: usize = 500;
pub use report::{Report, ReportError};

/// Milliseconds since the Unix epoch; here on the store's clock unless said otherwise.
pub use crate::store::time::Millis;

pub use crate::store::ExportPage;

/// One resolution of the history. Every tier is bounded twice: by age (`retention`) and by
/// count (`max_points`), so neither a long-lived machine nor an agent reporting every
/// millisecond can grow the store without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tier {
    /// Stable name in the API (`resolution`) and in store keys.
    pub name: &'static str,
    /// Width of one rollup bucket; 0 keeps every report as its own point.
    pub bucket_ms: i64,
    /// Points older than this (on the store's clock) are deleted.
    pub retention_ms: i64,
    /// At most this many points per machine; the oldest go first.
    pub max_points: usize,
}

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// Raw reports for 1 hour (≤ 720, i.e. one per 5 s), 1-minute rollups for 24 hours
/// (≤ 1440), 10-minute rollups for 7 days (≤ 1008): at most 3168 points per machine.
pub const TIERS: [Tier; 3] = [
    Tier {
        name: "raw",
        bucket_ms: 0,
        retention_ms: HOUR,
        max_points: 720,
    },
    Tier {
        name: "1m",
        bucket_ms: MINUTE,
        retention_ms: DAY,
        max_points: 1440,
    },
    Tier {
        name: "10m",
        bucket_ms: 10 * MINUTE,
        retention_ms: 7 * DAY,
        max_points: 1008,
    },
];

/// The longest history any tier keeps; reports measured earlier than this are refused.
pub const HISTORY_SPAN_MS: i64 = 7 * DAY;

impl Tier {
    /// The finest tier whose retention still covers `from` at store time `now`.
    pub fn for_range(from: Millis, now: Millis) -> Tier {
        TIERS
            .iter()
            .copied()
            .find(|t| from >= now - t.retention_ms)
            .unwrap_or(TIERS[TIERS.len() - 1])
    }

    /// Start of the bucket that holds a point measured at `t`.
    pub fn bucket_start(&self, t: Millis) -> Millis {
        if self.bucket_ms == 0 {
            t
        } else {
            t - t.rem_euclid(self.bucket_ms)
        }
    }

    /// Index of this tier in `TIERS` (stores keep it as a small integer).
    pub fn index(&self) -> usize {
        TIERS.iter().position(|t| t == self).unwrap_or(0)
    }
}

/// What one report contributes to the history: the few numbers a chart needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// When the agent measured (report timestamp), agent clock.
    pub t: Millis,
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub load1: f64,
    /// The fullest disk's used percentage.
    pub disk_percent: f64,
    pub rx_bytes: f64,
    pub tx_bytes: f64,
}

/// One point of history: a raw report (`samples` = 1) or a rollup of every report whose
/// timestamp falls in the bucket starting at `t`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryPoint {
    /// Bucket start (or the report's own timestamp in the raw tier), ms since the epoch.
    pub t: Millis,
    pub samples: u64,
    pub cpu_percent: f64,
    pub cpu_percent_max: f64,
    pub memory_percent: f64,
    pub load1: f64,
    /// Highest fullest-disk percentage in the bucket.
    pub disk_percent_max: f64,
    /// Largest network counter values seen in the bucket (counters; rates are differences).
    pub rx_bytes: f64,
    pub tx_bytes: f64,
}

/// A rollup as stores keep it: sums, so a new sample merges in without reading the others.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rollup {
    pub t: Millis,
    pub n: u64,
    pub cpu_sum: f64,
    pub cpu_max: f64,
    pub mem_sum: f64,
    pub load_sum: f64,
    pub disk_max: f64,
    pub rx: f64,
    pub tx: f64,
}

impl Rollup {
    /// The bucket of one sample: a raw-tier point.
    pub fn of_sample(s: &Sample) -> Rollup {
        Rollup {
            t: s.t,
            n: 1,
            cpu_sum: s.cpu_percent,
            cpu_max: s.cpu_percent,
            mem_sum: s.memory_percent,
            load_sum: s.load1,
            disk_max: s.disk_percent,
            rx: s.rx_bytes,
            tx: s.tx_bytes,
        }
    }

    /// Merge `other`, a bucket with the same start, into this one.
    pub fn absorb(&mut self, other: &Rollup) {
        self.n += other.n;
        self.cpu_sum += other.cpu_sum;
        self.cpu_max = self.cpu_max.max(other.cpu_max);
        self.mem_sum += other.mem_sum;
        self.load_sum += other.load_sum;
        self.disk_max = self.disk_max.max(other.disk_max);
        self.rx = self.rx.max(other.rx);
        self.tx = self.tx.max(other.tx);
    }

    pub fn point(&self) -> HistoryPoint {
        let n = self.n.max(1) as f64;
        HistoryPoint {
            t: self.t,
            samples: self.n,
            cpu_percent: self.cpu_sum / n,
            cpu_percent_max: self.cpu_max,
            memory_percent: self.mem_sum / n,
            load1: self.load_sum / n,
            disk_percent_max: self.disk_max,
            rx_bytes: self.rx,
            tx_bytes: self.tx,
        }
    }
}

/// What a store keeps about one machine besides its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineRecord {
    /// The report with the newest `timestamp` (a replayed old report never replaces it).
    pub report: Report,
    /// Store clock at the first accepted report.
    pub first_seen: Millis,
    /// Store clock at the last accepted report: machine states are computed from its age.
    pub last_seen: Millis,
    /// Name of the API key that sent the last report.
    pub api_key: String,
    /// Set by the leader job when the machine went silent for `offline_after`; cleared by
    /// the next report.
    pub offline_since: Option<Millis>,
}

/// Every machine at one instant of the store's clock.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub now: Millis,
    pub machines: Vec<MachineRecord>,
    /// Records that could not be read (corrupt JSON); skipped and reported, never a crash.
    pub problems: Vec<String>,
}

/// What changed in a store since a point of its clock: see [`FleetStore::changed_since`].
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// The store's clock when the changes were read.
    pub now: Millis,
    /// Pass as `since` next time: every record written after this read is at or after it.
    /// A position in the store's order of writes, opaque to callers: the store's clock minus
    /// the overlap it needs (SQLite, Redis), or a transaction id (PostgreSQL).
    pub next_since: Millis,
    /// Machines in the store now, readable or not: a reader whose count differs after
    /// applying the changes has missed a deletion and reads everything again.
    pub total: usize,
    /// Machines whose `last_seen` is at or after `since` (every machine without `since`).
    pub machines: Vec<MachineRecord>,
    /// Among those, records that could not be read: (machine id, why).
    pub problems: Vec<(String, String)>,
}

/// When an agent API key was last used, store clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUsage {
    pub name: String,
    pub last_used: Millis,
}

/// A machine with its whole history, as `fleetctl migrate` copies it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineDump {
    pub machine_id: String,
    pub record: MachineRecord,
    /// Per tier in `TIERS` order, oldest first, within the tier's bounds at the exporting
    /// store's clock.
    pub history: [Vec<Rollup>; 3],
}

/// Keep what each tier's bounds allow at store time `now` (points at or after
/// `now - retention`, the newest `max_points`), sorted oldest first: what `record` leaves.
pub(crate) fn trim_history(history: &mut [Vec<Rollup>; 3], now: Millis) {
    for (points, tier) in history.iter_mut().zip(TIERS.iter()) {
        points.sort_by_key(|r| r.t);
        points.dedup_by_key(|r| r.t);
        points.retain(|r| r.t >= now - tier.retention_ms);
        let excess = points.len().saturating_sub(tier.max_points);
        points.drain(..excess);
    }
}

/// Why a store call failed. `Clone`, because one batched write fails every report in it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or answered with an I/O error; retry later.
    #[error("{backend} fleet store unavailable at {location}: {message}")]
    Unavailable {
        backend: BackendKind,
        location: String,
        message: String,
    },
    /// The config names something this store cannot be opened with.
    #[error("{0}")]
    Config(String),
    /// The report's timestamp is outside what the store records at its clock `now` (more
    /// than the allowed skew ahead, or older than the history: `Report::time_in_range`).
    /// Nothing was written; `Report::check_time(now)` says what is wrong.
    #[error("the report's timestamp is out of range at store time {now}")]
    OutOfRange { now: Millis },
    /// A stored record is not what this version writes (altered by hand, or by a bug): the
    /// request that needs it fails with 500 and the log names the record.
    #[error("{backend} fleet store holds a corrupt record: {message}")]
    Corrupt {
        backend: BackendKind,
        message: String,
    },
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Where the fleet's machines and metrics live. Safe to call from many tasks and many
/// processes (nodes) at once; every method is one atomic step in the store.
#[async_trait]
pub trait FleetStore: Send + Sync + 'static {
    fn kind(&self) -> BackendKind;

    /// Where it lives, for messages (`redis://127.0.0.1:6379/2`, a database file).
    fn location(&self) -> String;

    /// The store's clock.
    async fn now(&self) -> StoreResult<Millis>;

    /// Record a validated report sent with the key named `api_key`: refresh the machine's
    /// `last_seen` (and the key's last use) to store time, replace its latest report unless
    /// the stored one is newer, merge the report into every history tier and trim each tier
    /// to its bounds. Returns the store time it was recorded at. The timestamp's range is
    /// checked here, on the store's clock and in the same atomic step (one round trip per
    /// report): out of range is `StoreError::OutOfRange` and nothing is written.
    async fn record(&self, report: &Report, api_key: &str) -> StoreResult<Millis>;

    /// Every machine's record, with the store's clock.
    async fn machines(&self) -> StoreResult<Snapshot>;

    /// One machine's record.
    async fn machine(&self, machine_id: &str) -> StoreResult<Option<MachineRecord>>;

    /// Machines written at or after `since`, a `Changes::next_since` of an earlier call (all
    /// of them when `None`), so a reader can keep an index of the fleet up to date by
    /// reading only what changed.
    async fn changed_since(&self, since: Option<Millis>) -> StoreResult<Changes>;

    /// The records of these machines (those that exist and are readable), in one round trip.
    async fn machines_by_id(&self, machine_ids: &[String]) -> StoreResult<Snapshot>;

    /// History points of `tier` with `from <= t <= to`, oldest first.
    async fn history(
        &self,
        machine_id: &str,
        tier: Tier,
        from: Millis,
        to: Millis,
    ) -> StoreResult<Vec<HistoryPoint>>;

    /// How many points each tier (in `TIERS` order) holds for the machine.
    async fn history_len(&self, machine_id: &str) -> StoreResult<[usize; 3]>;

    /// Set `offline_since` on machines silent for longer than `silent_for` that do not have
    /// it yet. Returns their ids (each machine once per outage).
    async fn mark_offline(&self, silent_for: Duration) -> StoreResult<Vec<String>>;

    /// Delete machines (record and history) silent for longer than `silent_for`. Returns
    /// their ids.
    async fn forget(&self, silent_for: Duration) -> StoreResult<Vec<String>>;

    /// When each API key was last used.
    async fn key_usage(&self) -> StoreResult<Vec<KeyUsage>>;

    /// Rewrite every stored report not sealed with the first key of the store's keyring (key
    /// rotation, or reports from before `storage.encrypt_reports`), in batches, calling
    /// `progress(done, total)`. Safe to rerun and to run while agents report: a report
    /// recorded meanwhile is left as it was written. Reports that do not open are counted.
    async fn reseal(&self, progress: ResealProgress<'_>) -> StoreResult<ResealCount>;

    /// Machines with their history in store order after the opaque `cursor` (`None` =
    /// start), at most about `limit`, and the cursor of the next call (`None` when done).
    /// Reports and key names are opened with this store's keyring; a machine whose record
    /// or history does not open is named in `unreadable`, never dropped silently. History is
    /// what the tiers' bounds keep at this store's clock. For `fleetctl migrate`.
    async fn export_machines(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> StoreResult<ExportPage<MachineDump>>;

    /// Idempotent merge: the machine record with the later `last_seen` wins (ties:
    /// incoming); per history bucket (tier, t) the rollup with more samples `n` wins (ties:
    /// incoming), so running it twice, or again after this store received new reports,
    /// never double-counts. Tiers are trimmed to their bounds afterwards as `record` does.
    /// Sealed with this store's keyring. Returns the machines merged.
    async fn import_machines(&self, machines: Vec<MachineDump>) -> StoreResult<u64>;

    /// Every API key's last use as `fleetctl migrate` copies it: [`FleetStore::key_usage`],
    /// with the entries whose stored name does not open (a key missing from the keyring)
    /// named in `unreadable` rather than only logged. One page: there is one entry per key.
    async fn export_key_usage(&self) -> StoreResult<ExportPage<KeyUsage>>;

    /// Merge key usage: per name the later `last_used` wins.
    async fn import_key_usage(&self, usage: Vec<KeyUsage>) -> StoreResult<()>;
}

/// Open the store named by `config.backend`, with nothing sealed.
pub async fn open(config: &StorageConfig) -> StoreResult<Arc<dyn FleetStore>> {
    open_with(config, AtRest::none()).await
}

/// Open the store named by `config.backend` with the keyring of
/// `security.encryption_key_file` (or none): API key names are sealed whenever there is a
/// keyring, reports only with `storage.encrypt_reports` (see [`Sealing`]).
pub async fn open_with(
    config: &StorageConfig,
    at_rest: AtRest,
) -> StoreResult<Arc<dyn FleetStore>> {
    let sealing = Sealing::new(at_rest, config.encrypt_reports);
    match config.backend {
        BackendKind::Sqlite => Ok(Arc::new(
            sqlite::SqliteFleetStore::open(&config.db_path, sealing).await?,
        )),
        BackendKind::Redis => Ok(Arc::new(
            redis::RedisFleetStore::open(config, sealing).await?,
        )),
        BackendKind::Postgres => Ok(Arc::new(
            postgres::PostgresFleetStore::open(config, sealing).await?,
        )),
        BackendKind::File => Err(StoreError::Config(
            "storage.backend `file` cannot hold fleet data: use `sqlite` (one host), `redis` or \
             `postgres` (a cluster)"
                .into(),
        )),
    }
}

/// What a fleet store seals, decided once for every backend:
/// - API key names (the `@keys` usage entries and each machine's `api_key`) whenever a
///   keyring is configured. Stores look them up by equality, so they are sealed
///   deterministically: the same name under the same key is the same envelope.
/// - Each machine's latest report only with `storage.encrypt_reports` (it costs a seal per
///   report). Reports are opened with the keyring either way, so turning the setting off and
///   running `keys rotate-encryption` writes them back in the clear instead of losing them.
#[derive(Clone, Debug, Default)]
pub struct Sealing {
    keyring: AtRest,
    encrypt_reports: bool,
}

/// Associated data of a sealed API key name.
const KEY_NAME_AD: &str = "api-key";

impl Sealing {
    pub fn new(keyring: AtRest, encrypt_reports: bool) -> Sealing {
        Sealing {
            keyring,
            encrypt_reports,
        }
    }

    /// The report JSON a store writes for `machine_id`.
    pub(crate) fn seal_report(&self, machine_id: &str, report: &Report) -> StoreResult<String> {
        let json = serde_json::to_string(report)
            .map_err(|e| StoreError::Config(format!("cannot encode the report: {e}")))?;
        Ok(if self.encrypt_reports {
            self.keyring.seal(&json, &report_ad(machine_id))
        } else {
            json
        })
    }

    /// The report a store read for `machine_id` (sealed, or plaintext).
    pub(crate) fn open_report(
        &self,
        machine_id: &str,
        stored: &str,
    ) -> Result<Report, UnreadableReport> {
        let json = self
            .keyring
            .open(stored, &report_ad(machine_id))
            .map_err(|e| {
                UnreadableReport::Sealed(format!("machine {machine_id}: stored report {e}"))
            })?;
        serde_json::from_str(&json).map_err(|e| {
            UnreadableReport::Corrupt(format!(
                "machine {machine_id}: stored report is not readable: {e}"
            ))
        })
    }

    /// Whether a stored report is what [`Sealing::seal_report`] would write now.
    pub(crate) fn report_is_current(&self, stored: &str) -> bool {
        if self.encrypt_reports {
            self.keyring.is_current(stored)
        } else {
            !stored.starts_with(crate::store::crypto::ENVELOPE_PREFIX)
        }
    }

    /// The stored form of an API key name (a hash field, a primary key).
    pub(crate) fn key_name(&self, name: &str) -> String {
        self.keyring.seal_deterministic(name, KEY_NAME_AD)
    }

    /// The name behind a stored key name; `context` says where it was found.
    pub(crate) fn open_key_name(&self, stored: &str, context: &str) -> Result<String, String> {
        self.keyring
            .open(stored, KEY_NAME_AD)
            .map_err(|e| format!("{context}: stored API key name {e}"))
    }

    /// What re-sealing makes of a machine's stored report and key name (empty when the
    /// record has none): `Ok(None)` when both are already as this sealing writes them,
    /// `Ok(Some((report, key)))` to write, `Err(())` when either does not open.
    #[allow(clippy::result_unit_err)]
    pub(crate) fn reseal_machine(
        &self,
        machine_id: &str,
        report: &str,
        key: &str,
    ) -> Result<Option<(String, String)>, ()> {
        let report_ok = self.report_is_current(report);
        let key_ok = key.is_empty() || self.key_name_is_current(key);
        if report_ok && key_ok {
            return Ok(None);
        }
        let new_report = if report_ok {
            report.to_owned()
        } else {
            let opened = self.open_report(machine_id, report).map_err(|_| ())?;
            self.seal_report(machine_id, &opened).map_err(|_| ())?
        };
        let new_key = if key_ok {
            key.to_owned()
        } else {
            let name = self.open_key_name(key, machine_id).map_err(|_| ())?;
            self.key_name(&name)
        };
        Ok(Some((new_report, new_key)))
    }

    /// Whether a stored key name is what [`Sealing::key_name`] would write now.
    pub(crate) fn key_name_is_current(&self, stored: &str) -> bool {
        self.keyring.is_current(stored)
    }
}

/// Merge key usage read from a store: entries whose stored names open to the same name (the
/// same key sealed before and after a rotation) keep the latest use; entries that do not open
/// are logged once per read and left out.
pub(crate) fn merge_key_usage(
    sealing: &Sealing,
    stored: impl IntoIterator<Item = (String, Millis)>,
) -> Vec<KeyUsage> {
    let (usage, unreadable) = open_key_usage(sealing, stored);
    if let Some(first) = unreadable.first() {
        tracing::warn!(
            count = unreadable.len(),
            "{first}; {} such entries left out of the key usage",
            unreadable.len()
        );
    }
    usage
}

/// Like [`merge_key_usage`], returning the entries that do not open (why, for each) instead
/// of logging them: what `export_key_usage` gives `fleetctl migrate`.
pub(crate) fn open_key_usage(
    sealing: &Sealing,
    stored: impl IntoIterator<Item = (String, Millis)>,
) -> (Vec<KeyUsage>, Vec<String>) {
    let mut by_name = std::collections::BTreeMap::<String, Millis>::new();
    let mut unreadable = Vec::new();
    for (field, last_used) in stored {
        match sealing.open_key_name(&field, "API key usage") {
            Ok(name) => {
                let e = by_name.entry(name).or_insert(last_used);
                *e = (*e).max(last_used);
            }
            Err(m) => unreadable.push(m),
        }
    }
    let usage = by_name
        .into_iter()
        .map(|(name, last_used)| KeyUsage { name, last_used })
        .collect();
    (usage, unreadable)
}

/// A machine row's columns besides the id and the stored report (the SQL stores).
pub(crate) struct MachineMeta {
    pub first_seen: Millis,
    pub last_seen: Millis,
    pub api_key: String,
    pub offline_since: Option<Millis>,
}

/// A machine's record from its stored report and columns, opened with `sealing`.
pub(crate) fn machine_record(
    sealing: &Sealing,
    id: &str,
    stored: &str,
    m: MachineMeta,
) -> Result<MachineRecord, UnreadableReport> {
    let report = sealing.open_report(id, stored)?;
    let api_key = sealing
        .open_key_name(&m.api_key, &format!("machine {id}"))
        .map_err(UnreadableReport::Sealed)?;
    Ok(MachineRecord {
        report,
        first_seen: m.first_seen,
        last_seen: m.last_seen,
        api_key,
        offline_since: m.offline_since,
    })
}

/// What `FleetStore::machine` answers for a record `kind`'s store read: a report this node
/// cannot decrypt is absent (404, logged once), not an outage; one that decrypts but is not a
/// report is a corrupt record (500).
pub(crate) fn machine_or_absent(
    kind: BackendKind,
    machine_id: &str,
    opened: Result<MachineRecord, UnreadableReport>,
) -> StoreResult<Option<MachineRecord>> {
    match opened {
        Ok(r) => Ok(Some(r)),
        Err(UnreadableReport::Sealed(message)) => {
            crate::store::unreadable::warn(
                &format!("{kind} fleet machine {machine_id}"),
                &format!("{message}; treating the machine as absent"),
            );
            Ok(None)
        }
        Err(UnreadableReport::Corrupt(message)) => Err(StoreError::Corrupt {
            backend: kind,
            message,
        }),
    }
}

/// Associated data of a sealed report: it opens only as the report of this machine.
fn report_ad(machine_id: &str) -> String {
    format!("report:{machine_id}")
}

/// Why a stored report cannot be read.
#[derive(Debug)]
pub(crate) enum UnreadableReport {
    /// It does not decrypt (key missing from the key file, or altered): the machine is
    /// skipped, as if absent, until it reports again.
    Sealed(String),
    /// It decrypts (or is plaintext) but is not a report.
    Corrupt(String),
}

impl UnreadableReport {
    pub(crate) fn message(self) -> String {
        match self {
            UnreadableReport::Sealed(m) | UnreadableReport::Corrupt(m) => m,
        }
    }
}

/// The machine's history metrics from a report.
pub fn sample_of(report: &Report, t: Millis) -> Sample {
    Sample {
        t,
        cpu_percent: report.cpu_percent,
        memory_percent: report.memory.used_percent(),
        load1: report.load[0],
        disk_percent: report.fullest_disk_percent(),
        rx_bytes: report.network.rx_bytes as f64,
        tx_bytes: report.network.tx_bytes as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_cover_the_range_with_the_finest_resolution() {
        let now = 10 * DAY;
        assert_eq!(Tier::for_range(now - 30 * MINUTE, now).name, "raw");
        assert_eq!(Tier::for_range(now - 2 * HOUR, now).name, "1m");
        assert_eq!(Tier::for_range(now - 3 * DAY, now).name, "10m");
        assert_eq!(Tier::for_range(0, now).name, "10m");
    }

    #[test]
    fn buckets_start_on_their_boundary() {
        assert_eq!(TIERS[0].bucket_start(123_456), 123_456);
        assert_eq!(TIERS[1].bucket_start(123_456), 120_000);
        assert_eq!(TIERS[2].bucket_start(1_234_567), 1_200_000);
    }

    #[test]
    fn rollups_average_their_samples() {
        let r = Rollup {
            t: 0,
            n: 4,
            cpu_sum: 100.0,
            cpu_max: 70.0,
            mem_sum: 200.0,
            load_sum: 2.0,
            disk_max: 90.0,
            rx: 5.0,
            tx: 6.0,
        };
        let p = r.point();
        assert_eq!(p.cpu_percent, 25.0);
        assert_eq!(p.memory_percent, 50.0);
        assert_eq!(p.load1, 0.5);
        assert_eq!(p.samples, 4);
    }
}
