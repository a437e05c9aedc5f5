//! What the fleet API shows: machine states, the machine listing (filter, sort, page) and the
//! fleet summary, computed from a store `Snapshot`. Pure functions, no I/O, so every node
//! computes the same answer from the same snapshot.

use std::cmp::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::report::{Disk, Network, Usage, rfc3339};
use super::{MachineRecord, Millis, Snapshot};

/// A machine's state from the age of its last report, on the store's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MachineState {
    /// Reported within `stale_after`.
    Online,
    /// Silent for longer than `stale_after`: a report or two missed.
    Stale,
    /// Silent for longer than `offline_after`.
    Offline,
}

impl MachineState {
    pub fn as_str(self) -> &'static str {
        match self {
            MachineState::Online => "online",
            MachineState::Stale => "stale",
            MachineState::Offline => "offline",
        }
    }

    pub fn parse(s: &str) -> Option<MachineState> {
        match s {
            "online" => Some(MachineState::Online),
            "stale" => Some(MachineState::Stale),
            "offline" => Some(MachineState::Offline),
            _ => None,
        }
    }
}

/// The ages that separate online, stale and offline (`storage.stale_after`,
/// `storage.offline_after`).
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub stale_after: Duration,
    pub offline_after: Duration,
}

impl Thresholds {
    pub fn from_config(c: &crate::config::StorageConfig) -> Thresholds {
        Thresholds {
            stale_after: c.stale_after.as_duration(),
            offline_after: c.offline_after.as_duration(),
        }
    }

    pub fn state(&self, last_seen: Millis, now: Millis) -> MachineState {
        let age = now.saturating_sub(last_seen);
        if age > self.offline_after.as_millis() as i64 {
            MachineState::Offline
        } else if age > self.stale_after.as_millis() as i64 {
            MachineState::Stale
        } else {
            MachineState::Online
        }
    }
}

/// One machine as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineView {
    pub machine_id: String,
    pub hostname: String,
    pub status: MachineState,
    pub os: String,
    pub kernel: String,
    pub agent_version: String,
    /// Store clock, RFC 3339 UTC.
    pub last_seen: String,
    pub last_seen_age_secs: f64,
    pub first_seen: String,
    /// The latest report's own timestamp (agent clock).
    pub reported_at: String,
    pub uptime_secs: u64,
    pub cpu_percent: f64,
    pub cpu_cores: u32,
    pub load: [f64; 3],
    pub memory: Usage,
    pub memory_percent: f64,
    pub swap: Usage,
    pub disks: Vec<Disk>,
    /// The fullest disk's used percentage.
    pub disk_percent: f64,
    pub network: Network,
    /// Name of the API key that sent the last report.
    pub api_key: String,
    /// Set once the leader noticed the machine went silent.
    pub offline_since: Option<String>,
}

impl MachineView {
    pub fn new(rec: &MachineRecord, now: Millis, t: &Thresholds) -> MachineView {
        let r = &rec.report;
        MachineView {
            machine_id: r.machine_id.clone(),
            hostname: r.hostname.clone(),
            status: t.state(rec.last_seen, now),
            os: r.os.clone(),
            kernel: r.kernel.clone(),
            agent_version: r.agent_version.clone(),
            last_seen: rfc3339(rec.last_seen),
            last_seen_age_secs: now.saturating_sub(rec.last_seen).max(0) as f64 / 1000.0,
            first_seen: rfc3339(rec.first_seen),
            reported_at: r.timestamp.clone(),
            uptime_secs: r.uptime_secs,
            cpu_percent: r.cpu_percent,
            cpu_cores: r.cpu_cores,
            load: r.load,
            memory: r.memory,
            memory_percent: round2(r.memory.used_percent()),
            swap: r.swap,
            disks: r.disks.clone(),
            disk_percent: round2(r.fullest_disk_percent()),
            network: r.network,
            api_key: rec.api_key.clone(),
            offline_since: rec.offline_since.map(rfc3339),
        }
    }
}

/// Sort keys of the machine listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Hostname,
    MachineId,
    LastSeen,
    Cpu,
    Memory,
    Disk,
    Load,
}

const SORT_KEYS: &str = "hostname, machine_id, last_seen, cpu, memory, disk, load";

/// Largest page of `GET /api/fleet/machines`.
pub const MAX_LIMIT: usize = 1000;
pub const DEFAULT_LIMIT: usize = 100;

/// The listing's query: `?status=online,stale&hostname=web&sort=-cpu&limit=50&offset=100`.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// Empty = every state.
    pub status: Vec<MachineState>,
    /// Case-insensitive substring of the hostname.
    pub hostname: Option<String>,
    pub sort: SortKey,
    pub descending: bool,
    pub limit: usize,
    pub offset: usize,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            status: Vec::new(),
            hostname: None,
            sort: SortKey::Hostname,
            descending: false,
            limit: DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

/// Raw query parameters, before validation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    pub status: Option<String>,
    pub hostname: Option<String>,
    pub sort: Option<String>,
    pub limit: Option<String>,
    pub offset: Option<String>,
}

impl ListQuery {
    /// Validate parameters; the error names the parameter and the allowed values.
    pub fn from_params(p: ListParams) -> Result<ListQuery, String> {
        let mut q = ListQuery::default();
        if let Some(s) = p.status.filter(|s| !s.is_empty()) {
            for part in s.split(',') {
                let state = MachineState::parse(part.trim()).ok_or_else(|| {
                    format!("`status`: unknown state `{part}`; use online, stale or offline (comma-separated)")
                })?;
                q.status.push(state);
            }
        }
        q.hostname = p.hostname.filter(|h| !h.is_empty());
        if let Some(s) = p.sort.filter(|s| !s.is_empty()) {
            let (desc, name) = match s.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, s.as_str()),
            };
            q.descending = desc;
            q.sort = match name {
                "hostname" => SortKey::Hostname,
                "machine_id" => SortKey::MachineId,
                "last_seen" => SortKey::LastSeen,
                "cpu" => SortKey::Cpu,
                "memory" => SortKey::Memory,
                "disk" => SortKey::Disk,
                "load" => SortKey::Load,
                other => {
                    return Err(format!(
                        "`sort`: unknown key `{other}`; use one of {SORT_KEYS}, with `-` in front for descending"
                    ));
                }
            };
        }
        if let Some(l) = p.limit {
            let n: usize = l
                .parse()
                .map_err(|_| format!("`limit`: `{l}` is not a number"))?;
            if n == 0 || n > MAX_LIMIT {
                return Err(format!("`limit`: {n} is not 1 to {MAX_LIMIT}"));
            }
            q.limit = n;
        }
        if let Some(o) = p.offset {
            q.offset = o
                .parse()
                .map_err(|_| format!("`offset`: `{o}` is not a non-negative number"))?;
        }
        Ok(q)
    }
}

/// A page of the machine listing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MachinePage {
    /// Machines matching the filters (before paging).
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    pub machines: Vec<MachineView>,
    /// Records the store could not read (skipped, not counted in `total`), each naming the
    /// machine and why; absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

pub fn list(snapshot: &Snapshot, q: &ListQuery, t: &Thresholds) -> MachinePage {
    let needle = q.hostname.as_ref().map(|h| h.to_lowercase());
    let mut views: Vec<MachineView> = snapshot
        .machines
        .iter()
        .map(|m| MachineView::new(m, snapshot.now, t))
        .filter(|v| q.status.is_empty() || q.status.contains(&v.status))
        .filter(|v| {
            needle
                .as_ref()
                .is_none_or(|n| v.hostname.to_lowercase().contains(n))
        })
        .collect();
    let key = q.sort;
    views.sort_by(|a, b| {
        let o = match key {
            SortKey::Hostname => a.hostname.cmp(&b.hostname),
            SortKey::MachineId => Ordering::Equal,
            // Ascending last_seen = oldest first = largest age first.
            SortKey::LastSeen => b.last_seen_age_secs.total_cmp(&a.last_seen_age_secs),
            SortKey::Cpu => a.cpu_percent.total_cmp(&b.cpu_percent),
            SortKey::Memory => a.memory_percent.total_cmp(&b.memory_percent),
            SortKey::Disk => a.disk_percent.total_cmp(&b.disk_percent),
            SortKey::Load => a.load[0].total_cmp(&b.load[0]),
        };
        // Ties by machine id, so paging is stable.
        let o = o.then_with(|| a.machine_id.cmp(&b.machine_id));
        if q.descending { o.reverse() } else { o }
    });
    let total = views.len();
    let machines = views.into_iter().skip(q.offset).take(q.limit).collect();
    MachinePage {
        total,
        offset: q.offset,
        limit: q.limit,
        machines,
        problems: snapshot.problems.clone(),
    }
}

/// `GET /api/fleet/summary`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub total: usize,
    pub online: usize,
    pub stale: usize,
    pub offline: usize,
    /// Averages over machines that are not offline (their numbers are current).
    pub averages: Averages,
    /// The five heaviest machines per resource, among those not offline.
    pub top: TopConsumers,
    /// Store clock, RFC 3339 UTC.
    pub generated_at: String,
    pub stale_after_secs: u64,
    pub offline_after_secs: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Averages {
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub load1: f64,
    pub disk_percent: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TopConsumers {
    pub cpu: Vec<Consumer>,
    pub memory: Vec<Consumer>,
    pub disk: Vec<Consumer>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Consumer {
    pub machine_id: String,
    pub hostname: String,
    pub value: f64,
}

const TOP_N: usize = 5;

pub fn summary(snapshot: &Snapshot, t: &Thresholds) -> Summary {
    let views: Vec<MachineView> = snapshot
        .machines
        .iter()
        .map(|m| MachineView::new(m, snapshot.now, t))
        .collect();
    let count = |s| views.iter().filter(|v| v.status == s).count();
    let live: Vec<&MachineView> = views
        .iter()
        .filter(|v| v.status != MachineState::Offline)
        .collect();
    let avg = |f: fn(&MachineView) -> f64| {
        if live.is_empty() {
            0.0
        } else {
            round2(live.iter().map(|v| f(v)).sum::<f64>() / live.len() as f64)
        }
    };
    let top = |f: fn(&MachineView) -> f64| {
        let mut v: Vec<Consumer> = live
            .iter()
            .map(|m| Consumer {
                machine_id: m.machine_id.clone(),
                hostname: m.hostname.clone(),
                value: round2(f(m)),
            })
            .collect();
        v.sort_by(|a, b| {
            b.value
                .total_cmp(&a.value)
                .then_with(|| a.machine_id.cmp(&b.machine_id))
        });
        v.truncate(TOP_N);
        v
    };
    Summary {
        total: views.len(),
        online: count(MachineState::Online),
        stale: count(MachineState::Stale),
        offline: count(MachineState::Offline),
        averages: Averages {
            cpu_percent: avg(|v| v.cpu_percent),
            memory_percent: avg(|v| v.memory_percent),
            load1: avg(|v| v.load[0]),
            disk_percent: avg(|v| v.disk_percent),
        },
        top: TopConsumers {
            cpu: top(|v| v.cpu_percent),
            memory: top(|v| v.memory_percent),
            disk: top(|v| v.disk_percent),
        },
        generated_at: rfc3339(snapshot.now),
        stale_after_secs: t.stale_after.as_secs(),
        offline_after_secs: t.offline_after.as_secs(),
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Thresholds {
        Thresholds {
            stale_after: Duration::from_secs(60),
            offline_after: Duration::from_secs(300),
        }
    }

    #[test]
    fn states_follow_last_seen_age() {
        let now = 1_000_000;
        assert_eq!(t().state(now - 60_000, now), MachineState::Online);
        assert_eq!(t().state(now - 60_001, now), MachineState::Stale);
        assert_eq!(t().state(now - 300_001, now), MachineState::Offline);
        // A last_seen ahead of now (another node's store clock rounding) is online.
        assert_eq!(t().state(now + 5, now), MachineState::Online);
    }

    #[test]
    fn list_params_are_validated_with_named_errors() {
        let p = |f: fn(&mut ListParams)| {
            let mut p = ListParams::default();
            f(&mut p);
            ListQuery::from_params(p)
        };
        assert!(
            p(|p| p.status = Some("up".into()))
                .unwrap_err()
                .contains("`status`")
        );
        assert!(
            p(|p| p.sort = Some("-speed".into()))
                .unwrap_err()
                .contains("`sort`")
        );
        assert!(
            p(|p| p.limit = Some("0".into()))
                .unwrap_err()
                .contains("`limit`")
        );
        assert!(
            p(|p| p.limit = Some("5000".into()))
                .unwrap_err()
                .contains("`limit`")
        );
        assert!(
            p(|p| p.offset = Some("-1".into()))
                .unwrap_err()
                .contains("`offset`")
        );
        let q = p(|p| {
            p.status = Some("online,stale".into());
            p.sort = Some("-cpu".into());
        })
        .unwrap();
        assert_eq!(q.status, vec![MachineState::Online, MachineState::Stale]);
        assert!(q.descending);
        assert_eq!(q.sort, SortKey::Cpu);
    }
}
