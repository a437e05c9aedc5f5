//! What the fleet API shows: machine states, the machine listing (filter, sort, page) and the
//! fleet summary. Pure functions, no I/O, so every node computes the same answer from the same
//! data. They work on [`Entry`], the few numbers per machine that filtering, sorting and the
//! summary need, so the node's `FleetIndex` can keep them for a whole fleet in little memory
//! and full records are read only for the machines on the page.

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

/// What the listing and the summary need of one machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub machine_id: String,
    pub hostname: String,
    /// Lowercased, for the case-insensitive hostname filter.
    pub hostname_lower: String,
    pub last_seen: Millis,
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub load1: f64,
    pub disk_percent: f64,
}

impl Entry {
    pub fn of(rec: &MachineRecord) -> Entry {
        let r = &rec.report;
        Entry {
            machine_id: r.machine_id.clone(),
            hostname: r.hostname.clone(),
            hostname_lower: r.hostname.to_lowercase(),
            last_seen: rec.last_seen,
            cpu_percent: r.cpu_percent,
            memory_percent: round2(r.memory.used_percent()),
            load1: r.load[0],
            disk_percent: round2(r.fullest_disk_percent()),
        }
    }

    fn key(&self, k: SortKey) -> SortValue<'_> {
        match k {
            SortKey::Hostname => SortValue::Text(&self.hostname),
            SortKey::MachineId => SortValue::None,
            SortKey::LastSeen => SortValue::Number(self.last_seen as f64),
            SortKey::Cpu => SortValue::Number(self.cpu_percent),
            SortKey::Memory => SortValue::Number(self.memory_percent),
            SortKey::Disk => SortValue::Number(self.disk_percent),
            SortKey::Load => SortValue::Number(self.load1),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum OwnedSortValue {
    Number(f64),
    Text(String),
    None,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum SortValue<'a> {
    Number(f64),
    Text(&'a str),
    None,
}

impl SortValue<'_> {
    fn cmp(&self, other: &SortValue<'_>) -> Ordering {
        match (self, other) {
            (SortValue::Number(a), SortValue::Number(b)) => a.total_cmp(b),
            (SortValue::Text(a), SortValue::Text(b)) => a.cmp(b),
            _ => Ordering::Equal,
        }
    }

    fn owned(self) -> OwnedSortValue {
        match self {
            SortValue::Number(n) => OwnedSortValue::Number(n),
            SortValue::Text(t) => OwnedSortValue::Text(t.to_owned()),
            SortValue::None => OwnedSortValue::None,
        }
    }
}

/// Where the next page starts: after the machine with this sort value and id, in the order
/// of `sort` (`-cpu`). Opaque to clients (base64url JSON); a cursor from another sort is a 400.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    #[serde(rename = "s")]
    sort: String,
    #[serde(rename = "v")]
    value: OwnedSortValue,
    #[serde(rename = "id")]
    machine_id: String,
}

impl Cursor {
    fn encode(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(self).expect("a cursor serializes"))
    }

    fn decode(text: &str) -> Option<Cursor> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn value(&self) -> SortValue<'_> {
        match &self.value {
            OwnedSortValue::Number(n) => SortValue::Number(*n),
            OwnedSortValue::Text(t) => SortValue::Text(t),
            OwnedSortValue::None => SortValue::None,
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

impl SortKey {
    fn name(self) -> &'static str {
        match self {
            SortKey::Hostname => "hostname",
            SortKey::MachineId => "machine_id",
            SortKey::LastSeen => "last_seen",
            SortKey::Cpu => "cpu",
            SortKey::Memory => "memory",
            SortKey::Disk => "disk",
            SortKey::Load => "load",
        }
    }
}

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
    /// `hostname`, lowercased once.
    hostname_lower: Option<String>,
    pub sort: SortKey,
    pub descending: bool,
    pub limit: usize,
    pub offset: usize,
    /// Start after this machine (from the previous page's `next_cursor`); with `offset`,
    /// the offset counts from there.
    pub cursor: Option<Cursor>,
}

impl ListQuery {
    /// The sort as the API spells it (`-cpu`).
    pub fn sort_param(&self) -> String {
        format!(
            "{}{}",
            if self.descending { "-" } else { "" },
            self.sort.name()
        )
    }

    /// The cursor as the API spells it (`next_cursor` of the previous page), if any.
    pub fn cursor_param(&self) -> Option<String> {
        self.cursor.as_ref().map(Cursor::encode)
    }

    fn order(&self, a: &Entry, b: &Entry) -> Ordering {
        let o = a
            .key(self.sort)
            .cmp(&b.key(self.sort))
            // Ties by machine id, so paging is stable.
            .then_with(|| a.machine_id.cmp(&b.machine_id));
        if self.descending { o.reverse() } else { o }
    }

    fn after_cursor(&self, e: &Entry, c: &Cursor) -> bool {
        let o = e
            .key(self.sort)
            .cmp(&c.value())
            .then_with(|| e.machine_id.as_str().cmp(&c.machine_id));
        let o = if self.descending { o.reverse() } else { o };
        o == Ordering::Greater
    }

    fn matches(&self, e: &Entry, now: Millis, t: &Thresholds) -> bool {
        (self.status.is_empty() || self.status.contains(&t.state(e.last_seen, now)))
            && self
                .hostname_lower
                .as_ref()
                .is_none_or(|n| e.hostname_lower.contains(n.as_str()))
            && self.cursor.as_ref().is_none_or(|c| self.after_cursor(e, c))
    }
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
            cursor: None,
            hostname_lower: None,
        }
    }
}

/// Raw query parameters, before validation.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    pub status: Option<String>,
    pub hostname: Option<String>,
    pub sort: Option<String>,
    pub limit: Option<String>,
    pub offset: Option<String>,
    pub cursor: Option<String>,
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
        q.hostname_lower = q.hostname.as_ref().map(|h| h.to_lowercase());
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
        if let Some(c) = p.cursor.filter(|c| !c.is_empty()) {
            let cursor = Cursor::decode(&c).ok_or_else(|| {
                "`cursor`: not a cursor of this listing; pass `next_cursor` from the previous page as it is".to_string()
            })?;
            if cursor.sort != q.sort_param() {
                return Err(format!(
                    "`cursor`: made for sort={}, not sort={}; keep the sort while paging",
                    cursor.sort,
                    q.sort_param()
                ));
            }
            q.cursor = Some(cursor);
        }
        Ok(q)
    }
}

/// A page of the machine listing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MachinePage {
    /// Machines matching the filters (before paging; after the cursor when one is given).
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    pub machines: Vec<MachineView>,
    /// Pass as `cursor` (with the same sort and filters) for the next page; `null` on the
    /// last one.
    pub next_cursor: Option<String>,
    /// Records the store could not read (skipped, not counted in `total`), each naming the
    /// machine and why; absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// Which machines are on a page, in order: the listing without the records.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub total: usize,
    pub machine_ids: Vec<String>,
    pub next_cursor: Option<String>,
}

/// Filter, order and page `entries` at store time `now`: one pass to filter, a partial
/// selection of the first `offset + limit`, and a sort of those only, so a page of a large
/// fleet costs about one scan of its entries.
pub fn select<'a>(
    entries: impl Iterator<Item = &'a Entry>,
    q: &ListQuery,
    now: Millis,
    t: &Thresholds,
) -> Selection {
    let mut hits: Vec<&Entry> = entries.filter(|e| q.matches(e, now, t)).collect();
    let total = hits.len();
    let end = (q.offset + q.limit).min(total);
    if end < total && end > 0 {
        hits.select_nth_unstable_by(end - 1, |a, b| q.order(a, b));
        hits.truncate(end);
    }
    hits.sort_by(|a, b| q.order(a, b));
    let page: Vec<&Entry> = hits.into_iter().skip(q.offset).take(q.limit).collect();
    let next_cursor = (end < total).then(|| page.last()).flatten().map(|last| {
        Cursor {
            sort: q.sort_param(),
            value: last.key(q.sort).owned(),
            machine_id: last.machine_id.clone(),
        }
        .encode()
    });
    Selection {
        total,
        machine_ids: page.iter().map(|e| e.machine_id.clone()).collect(),
        next_cursor,
    }
}

/// The page of `selection`, its machines read from `records` (machines missing there, i.e.
/// forgotten since, are left out).
pub fn page(
    selection: Selection,
    records: &[MachineRecord],
    q: &ListQuery,
    now: Millis,
    t: &Thresholds,
    problems: Vec<String>,
) -> MachinePage {
    let by_id: std::collections::HashMap<&str, &MachineRecord> = records
        .iter()
        .map(|r| (r.report.machine_id.as_str(), r))
        .collect();
    // The page's machines were chosen on the index's snapshot; their records, read after it,
    // may hold newer values (a report arrived in between). The rows are shown in the order of
    // the values they show, so a page sorted by CPU reads sorted; which machines are on the
    // page, and the cursor, stay those of the snapshot, so paging skips and repeats nothing.
    let mut rows: Vec<(Entry, &MachineRecord)> = selection
        .machine_ids
        .iter()
        .filter_map(|id| by_id.get(id.as_str()))
        .map(|r| (Entry::of(r), *r))
        .collect();
    rows.sort_by(|a, b| q.order(&a.0, &b.0));
    MachinePage {
        total: selection.total,
        offset: q.offset,
        limit: q.limit,
        machines: rows
            .into_iter()
            .map(|(_, r)| MachineView::new(r, now, t))
            .collect(),
        next_cursor: selection.next_cursor,
        problems,
    }
}

/// The listing of a whole snapshot.
pub fn list(snapshot: &Snapshot, q: &ListQuery, t: &Thresholds) -> MachinePage {
    let entries: Vec<Entry> = snapshot.machines.iter().map(Entry::of).collect();
    let selection = select(entries.iter(), q, snapshot.now, t);
    page(
        selection,
        &snapshot.machines,
        q,
        snapshot.now,
        t,
        snapshot.problems.clone(),
    )
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

/// The summary of a whole snapshot.
pub fn summary(snapshot: &Snapshot, t: &Thresholds) -> Summary {
    let entries: Vec<Entry> = snapshot.machines.iter().map(Entry::of).collect();
    summary_of(entries.iter(), snapshot.now, t)
}

/// The summary of `entries` at store time `now`, in one pass: counts, sums, and the five
/// heaviest per resource kept in small sorted lists.
pub fn summary_of<'a>(
    entries: impl Iterator<Item = &'a Entry>,
    now: Millis,
    t: &Thresholds,
) -> Summary {
    let (mut total, mut online, mut stale, mut offline) = (0, 0, 0, 0);
    let mut sums = [0.0f64; 4];
    let mut tops: [Vec<&Entry>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    let values = |e: &Entry| [e.cpu_percent, e.memory_percent, e.disk_percent];
    for e in entries {
        total += 1;
        match t.state(e.last_seen, now) {
            MachineState::Online => online += 1,
            MachineState::Stale => stale += 1,
            MachineState::Offline => {
                offline += 1;
                continue;
            }
        }
        for (sum, v) in
            sums.iter_mut()
                .zip([e.cpu_percent, e.memory_percent, e.load1, e.disk_percent])
        {
            *sum += v;
        }
        for (i, top) in tops.iter_mut().enumerate() {
            let heavier = |a: &Entry, b: &Entry| {
                values(b)[i]
                    .total_cmp(&values(a)[i])
                    .then_with(|| a.machine_id.cmp(&b.machine_id))
            };
            if top.len() < TOP_N || heavier(e, top[TOP_N - 1]) == Ordering::Less {
                let at = top.partition_point(|x| heavier(x, e) == Ordering::Less);
                top.insert(at, e);
                top.truncate(TOP_N);
            }
        }
    }
    let live = online + stale;
    let avg = |i: usize| {
        if live == 0 {
            0.0
        } else {
            round2(sums[i] / live as f64)
        }
    };
    let consumers = |i: usize| {
        tops[i]
            .iter()
            .map(|e| Consumer {
                machine_id: e.machine_id.clone(),
                hostname: e.hostname.clone(),
                value: round2(values(e)[i]),
            })
            .collect()
    };
    Summary {
        total,
        online,
        stale,
        offline,
        averages: Averages {
            cpu_percent: avg(0),
            memory_percent: avg(1),
            load1: avg(2),
            disk_percent: avg(3),
        },
        top: TopConsumers {
            cpu: consumers(0),
            memory: consumers(1),
            disk: consumers(2),
        },
        generated_at: rfc3339(now),
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

    /// A record read after the index chose the page may be newer than the index: the rows are
    /// shown in the order of the values they show, the page's machines and cursor unchanged.
    #[test]
    fn a_page_is_ordered_by_the_values_it_shows() {
        let record = |i: usize, cpu: f64| {
            let mut report = crate::agent::simulator::VirtualMachine::new("view", i, 7).report(0);
            report.cpu_percent = cpu;
            MachineRecord {
                report,
                first_seen: 0,
                last_seen: 0,
                api_key: "k".into(),
                offline_since: None,
            }
        };
        let (a, b, c) = (record(0, 90.0), record(1, 50.0), record(2, 10.0));
        let ids = |r: &[&MachineRecord]| -> Vec<String> {
            r.iter().map(|r| r.report.machine_id.clone()).collect()
        };
        // Chosen by CPU, descending, when a was at 90 and b at 50; a has since dropped to 5.
        let selection = Selection {
            total: 3,
            machine_ids: ids(&[&a, &b]),
            next_cursor: Some("after-b".into()),
        };
        let a_now = record(0, 5.0);
        let q = ListQuery::from_params(ListParams {
            sort: Some("-cpu".into()),
            ..ListParams::default()
        })
        .unwrap();
        let page = page(selection, &[a_now, b.clone(), c], &q, 0, &t(), Vec::new());
        let shown: Vec<&str> = page
            .machines
            .iter()
            .map(|m| m.machine_id.as_str())
            .collect();
        assert_eq!(
            shown,
            [b.report.machine_id.as_str(), a.report.machine_id.as_str()]
        );
        assert_eq!(page.next_cursor.as_deref(), Some("after-b"));
    }
}
