//! The Redis fleet store: shared by every node of a cluster, so a machine reported to one
//! node is visible on all of them at once.
//!
//! Key layout (owned here; nothing else spells a key). Everything lives under `{fleet}:m:` in
//! the storage database (`storage.redis.db`, default 2); `@` cannot occur in a machine id,
//! so machine keys and the bookkeeping keys never collide:
//! - `{fleet}:m:@index`         ZSET machine id → last_seen (ms, Redis clock)
//! - `{fleet}:m:@keys`          HASH API key name (sealed, see `Sealing`) → last use (ms)
//! - `{fleet}:m:<id>`           HASH report (JSON, maybe sealed), ts, first_seen, last_seen,
//!   key (the API key name, sealed like the `@keys` fields), offline_since, `rawt` (the
//!   newest raw point's time), `logt` and `logn` (the newest minute and the number of
//!   reports in `@log`), and from versions before `@open` maybe `open1`, `open2` (see RECORD)
//! - `{fleet}:m:<id>@<tier>`    ZSET of points (JSON), scored by time, one per tier (for `1m`
//!   and `10m`: the buckets folded so far; the newer ones are in `@log` and `@open`)
//! - `{fleet}:m:<id>@log`       HASH timestamp → the reports' bucket at that time (8 doubles):
//!   recorded, not yet folded into the rollup tiers (see RECORD); expires with the history
//! - `{fleet}:m:<id>@open`      STRING: the open 10-minute bucket, packed as doubles (see
//!   BUCKETS; the previous version also keeps the open 1-minute bucket there); expires with
//!   the history
//!
//! Every write is one Lua script, so a report is recorded (latest state, history merge and
//! trim, key use) atomically and with Redis's own clock (`TIME`). RECORD, `mark_offline` and
//! `forget` build machine keys from the ids they are given; the shared `{fleet}` hash tag keeps
//! those keys in the declared keys' slot, as Redis Cluster requires.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};

use super::report::MAX_CLOCK_SKEW_MS;
use super::{
    Changes, ExportPage, FleetStore, HISTORY_SPAN_MS, HistoryPoint, KeyUsage, MachineDump,
    MachineRecord, Millis, RESEAL_BATCH, Report, ResealCount, ResealProgress, Rollup, Sample,
    Sealing, Snapshot, StoreError, StoreResult, TIERS, Tier, UnreadableReport, merge_key_usage,
    open_key_usage, sample_of, trim_history,
};
use crate::config::{BackendKind, StorageConfig};
use crate::store::batch::Batcher;
use crate::store::redis::{Redis, RedisEndpoint, Unavailable, script};

/// KEYS: machine. ARGV: report as read, report re-sealed, key name as read, key name
/// re-sealed. Each field is written only when it is still what was read, so a report
/// recorded meanwhile wins. Returns 1 when it wrote anything.
const RESEAL: &str = r"
local n = 0
if ARGV[1] ~= ARGV[2] and redis.call('HGET', KEYS[1], 'report') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'report', ARGV[2])
  n = 1
end
if ARGV[3] ~= ARGV[4] and redis.call('HGET', KEYS[1], 'key') == ARGV[3] then
  redis.call('HSET', KEYS[1], 'key', ARGV[4])
  n = 1
end
return n
";

/// KEYS: `@keys`. ARGV: field as read, field re-sealed. Moves the last use to the new field,
/// keeping the later one when the new field was written meanwhile by a node that already
/// seals with the new key.
const RESEAL_KEY: &str = r"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local cur = redis.call('HGET', KEYS[1], ARGV[2])
if (not cur) or tonumber(cur) < tonumber(v) then
  redis.call('HSET', KEYS[1], ARGV[2], v)
end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
";

const PREFIX: &str = "{fleet}:m:";
const INDEX: &str = "{fleet}:m:@index";
const KEYS: &str = "{fleet}:m:@keys";

fn machine_key(id: &str) -> String {
    format!("{PREFIX}{id}")
}

/// The machine-hash field where versions before the `@open` string kept a rollup tier's
/// open (newest) bucket as JSON; folded in by RECORD and by every reader (see RECORD).
fn legacy_open_field(tier: &Tier) -> String {
    format!("open{}", tier.index())
}

/// The string holding the open bucket of each rollup tier, packed (see BUCKETS).
fn open_key(id: &str) -> String {
    format!("{PREFIX}{id}@open")
}

/// The hash of samples recorded but not yet folded into the history tiers (see RECORD).
fn log_key(id: &str) -> String {
    format!("{PREFIX}{id}@log")
}

/// The machine-hash fields that make its record (`decode_machine`); the others are history
/// bookkeeping that record reads need not carry.
const RECORD_FIELDS: [&str; 5] = ["report", "first_seen", "last_seen", "key", "offline_since"];

/// A machine's record fields by name, from an `HMGET` of `RECORD_FIELDS` (empty: no machine).
fn record_fields(values: Vec<Option<String>>) -> HashMap<String, String> {
    RECORD_FIELDS
        .iter()
        .zip(values)
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
        .collect()
}

/// A rollup tier's open bucket: from the `@open` string (`packed`) and from the legacy JSON
/// field, merged when both hold the same bucket, oldest first.
fn open_buckets(
    tier: &Tier,
    packed: Option<&[u8]>,
    legacy: Option<&str>,
) -> Result<Vec<Rollup>, String> {
    let mut out = Vec::with_capacity(2);
    if let Some(p) = packed {
        let at = tier.index().saturating_sub(1) * 72;
        let Some(bytes) = p.get(at..at + 72).filter(|_| p.len() == 144) else {
            return Err(format!("the open buckets are {} bytes, not 144", p.len()));
        };
        let v = le_doubles(bytes);
        if v[1] > 0.0 {
            out.push(packed_bucket(v[0] as Millis, &v[1..]));
        }
    }
    if let Some(j) = legacy {
        let r: Rollup = serde_json::from_str(j).map_err(|e| {
            format!(
                "open bucket {j:?} of tier {} is not readable: {e}",
                tier.name
            )
        })?;
        match out.first_mut() {
            Some(o) if o.t == r.t => o.absorb(&r),
            _ => out.push(r),
        }
    }
    out.sort_by_key(|r| r.t);
    Ok(out)
}

/// Little-endian doubles, as Lua's `struct.pack('<d…')` writes them (a trailing partial
/// double is ignored; callers check the length).
fn le_doubles(bytes: &[u8]) -> Vec<f64> {
    bytes
        .chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            f64::from_le_bytes(b)
        })
        .collect()
}

/// A bucket at `t` from its eight packed numbers in `Rollup` order (n, cpu_sum, cpu_max,
/// mem_sum, load_sum, disk_max, rx, tx): a log entry, or half of `@open` after its time.
fn packed_bucket(t: Millis, v: &[f64]) -> Rollup {
    Rollup {
        t,
        n: v[0] as u64,
        cpu_sum: v[1],
        cpu_max: v[2],
        mem_sum: v[3],
        load_sum: v[4],
        disk_max: v[5],
        rx: v[6],
        tx: v[7],
    }
}

fn tier_key(id: &str, tier: &Tier) -> String {
    format!("{PREFIX}{id}@{}", tier.name)
}

/// Lua for rollup buckets and the log, shared by RECORD and IMPORT; it needs the tier
/// constants (`record_constants`) before it. A bucket is the array {t, n, cpu_sum, cpu_max,
/// mem_sum, load_sum, disk_max, rx, tx}: in a tier's sorted set a JSON object with those names
/// (`Rollup`), in the `@open` string 9 little-endian doubles per rollup tier (n = 0: none),
/// which `open_buckets` in Rust reads back. A log entry is a bucket of the reports with one
/// timestamp (normally one): field the timestamp, value the bucket without `t` as eight
/// little-endian doubles (`ENTRY`, `packed_entry`).
///
/// Every byte that enters Lua (an argument, a reply) is hashed when Redis makes it a Lua
/// string, and every number printed with `%.17g` costs as much as a small Redis command: what
/// keeps RECORD cheap is touching few values per report, not fewer lines of Lua.
const BUCKETS: &str = r#"
local function merge(a, b)
  a[2] = a[2] + b[2]
  a[3] = a[3] + b[3]
  a[4] = math.max(a[4], b[4])
  a[5] = a[5] + b[5]
  a[6] = a[6] + b[6]
  a[7] = math.max(a[7], b[7])
  a[8] = math.max(a[8], b[8])
  a[9] = math.max(a[9], b[9])
end
-- %.17g, not cjson.encode: cjson keeps 14 digits, which would round the sums. t and n are
-- whole numbers.
local function json_of_bucket(b)
  return string.format('{"t":%d,"n":%d,"cpu_sum":%.17g,"cpu_max":%.17g,' ..
    '"mem_sum":%.17g,"load_sum":%.17g,"disk_max":%.17g,"rx":%.17g,"tx":%.17g}', unpack(b))
end
-- The bucket of a JSON point, or nil when it is not one (readers report those).
local function bucket_of_json(s)
  local ok, p = pcall(cjson.decode, s)
  if not (ok and type(p) == 'table') then return nil end
  local b = {p.t, p.n, p.cpu_sum, p.cpu_max, p.mem_sum, p.load_sum, p.disk_max, p.rx, p.tx}
  for j = 1, 9 do
    if type(b[j]) ~= 'number' then return nil end
  end
  return b
end
local PACKED = '<' .. string.rep('d', 18)
local function open_buckets(s)
  local open = {}
  if s and #s == 144 then
    local v = {struct.unpack(PACKED, s)}
    if v[2] > 0 then open[1] = {unpack(v, 1, 9)} end
    if v[11] > 0 then open[2] = {unpack(v, 10, 18)} end
  end
  return open
end
local NONE = {0, 0, 0, 0, 0, 0, 0, 0, 0}
-- Spelled out: building an argument table first costs a tenth of a call.
local function packed_buckets(open)
  local a, b = open[1] or NONE, open[2] or NONE
  return struct.pack(PACKED, a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9],
    b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9])
end
local ENTRY = '<dddddddd'
-- A log entry (or RECORD's argument) as a bucket at time t.
local function entry_bucket(t, e)
  local b = {t, struct.unpack(ENTRY, e)}
  b[10] = nil
  return b
end
-- The trim of tier i: points older than its retention, and all but its newest `cap`. The
-- bounds are made once per script call (`trims(now)`), as the strings Redis takes, when the
-- first trim needs them (a call whose reports fold nothing trims nothing).
local function trims(now)
  local horizon, rank
  return function(key, i)
    if not horizon then
      horizon, rank = {}, {}
      for j = 1, 3 do
        horizon[j] = '(' .. ms(now - TIERS[j][2])
        rank[j] = ms(-TIERS[j][3] - 1)
      end
    end
    redis.call('ZREMRANGEBYSCORE', key, '-inf', horizon[i])
    redis.call('ZREMRANGEBYRANK', key, '0', rank[i])
  end
end
-- Merge bucket b into every point of the sorted set at its time `t` (a string; two versions
-- during an upgrade may each have added one), or add it. True when it added a time.
local function into_set(key, b, t)
  local old = redis.call('ZRANGEBYSCORE', key, t, t)
  if #old > 0 then
    for _, m in ipairs(old) do
      local p = bucket_of_json(m)
      if p then merge(b, p) end
    end
    redis.call('ZREM', key, unpack(old))
  end
  redis.call('ZADD', key, t, json_of_bucket(b))
  return #old == 0
end
-- The newest time in a sorted set (-1 when empty).
local function newest(key)
  local top = redis.call('ZRANGE', key, '-1', '-1', 'WITHSCORES')
  return tonumber(top[2] or -1)
end
-- Merge a log entry's numbers into the bucket at s (spelled out: no table per entry).
local function absorb(groups, s, n, cpu, cpu_max, mem, load, disk, rx, tx)
  local g = groups[s]
  if not g then
    groups[s] = {s, n, cpu, cpu_max, mem, load, disk, rx, tx}
    return
  end
  g[2] = g[2] + n
  g[3] = g[3] + cpu
  if cpu_max > g[4] then g[4] = cpu_max end
  g[5] = g[5] + mem
  g[6] = g[6] + load
  if disk > g[7] then g[7] = disk end
  if rx > g[8] then g[8] = rx end
  if tx > g[9] then g[9] = tx end
end
-- Fold a machine's log into its rollup tiers, with the open buckets in `@open` and those a
-- version before it left (`legacy`: the `open1`, `open2` fields' values), and trim the raw
-- tier. keys: machine, one history key per tier, `@open`, `@log`. Per rollup tier the newest
-- bucket stays open in `@open` and older ones go into the set, as the previous version keeps
-- them (it still merges into them during an upgrade). Each sample is in exactly one of the
-- log, `@open`, `open1`/`open2` and the sets, so nothing is counted twice.
local function fold(keys, legacy, now, trim)
  local log = redis.call('HGETALL', keys[6])
  if #log > 0 then redis.call('DEL', keys[6]) end
  local groups = {{}, {}}
  local w1, w2 = TIERS[2][1], TIERS[3][1]
  local h1, h2 = now - TIERS[2][2], now - TIERS[3][2]
  for j = 1, #log, 2 do
    local t = tonumber(log[j])
    local ok, n, cpu, cpu_max, mem, load, disk, rx, tx = pcall(struct.unpack, ENTRY, log[j + 1])
    -- An entry that is not one is dropped (readers report it while it is there).
    if t and ok and type(tx) == 'number' then
      if t >= h1 then absorb(groups[1], t - t % w1, n, cpu, cpu_max, mem, load, disk, rx, tx) end
      if t >= h2 then absorb(groups[2], t - t % w2, n, cpu, cpu_max, mem, load, disk, rx, tx) end
    end
  end
  local function offer(i, b)
    if b and b[1] >= now - TIERS[i + 1][2] then
      local g = groups[i][b[1]]
      if g then merge(g, b) else groups[i][b[1]] = b end
    end
  end
  local packed = redis.call('GET', keys[5])
  local open = open_buckets(packed)
  offer(1, legacy[1] and bucket_of_json(legacy[1]))
  offer(2, legacy[2] and bucket_of_json(legacy[2]))
  trim(keys[2], 1)
  -- Per rollup tier: the newest bucket stays open in `@open` (merged with the one there),
  -- older ones go into the set. A node of the previous version merges its reports into the
  -- same open buckets and moves a bucket to the set (with a plain ZADD) only when it finds it
  -- open there, so a bucket is open or in the set, never both.
  for i = 1, 2 do
    local current, closed = open[i], {}
    if current and current[1] < now - TIERS[i + 1][2] then current = nil end
    for s, b in pairs(groups[i]) do
      if current and current[1] == s then
        merge(current, b)
      elseif (not current) or s > current[1] then
        if current then closed[#closed + 1] = current end
        current = b
      else
        closed[#closed + 1] = b
      end
    end
    open[i] = current
    local key, top, grew = keys[2 + i], nil, false
    for _, b in ipairs(closed) do
      top = top or newest(key)
      -- Newer than every point of the set (the common case): added without a lookup. Two
      -- closed buckets can share a start (the open one and a late one): the second merges.
      if b[1] > top then
        redis.call('ZADD', key, ms(b[1]), json_of_bucket(b))
        top = b[1]
        grew = true
      elseif into_set(key, b, ms(b[1])) then
        grew = true
      end
    end
    if grew then trim(key, i + 1) end
  end
  if open[1] or open[2] then
    redis.call('SET', keys[5], packed_buckets(open), 'PX', ms(TIERS[3][2]))
  elseif packed then
    redis.call('DEL', keys[5])
  end
end
"#;

/// Records a batch of reports in one call (group commit: `record` queues each report on the
/// store's `Batcher`, and the reports that queue while a call is in flight go in the next).
/// KEYS: index, key usage (a machine's keys are named from its id, in the same `{fleet}`
/// slot: declaring six keys per report cost more than building them). ARGV per report:
/// machine id, report (JSON, maybe sealed), its timestamp, key name (maybe sealed), the sample
/// as a log entry (`packed_entry`), the sample as a raw-tier point (JSON). Returns the store clock,
/// then per report 1 (recorded) or 0 (timestamp out of range: nothing written for it).
/// Reports are applied in order, so two of one machine in a batch behave as two calls. The
/// tier table, the time bounds and the log's bound are Lua constants (`record_constants`).
///
/// Per report (Redis time per report is the ceiling of report ingestion, see
/// docs/performance.md): one `HMGET` and one `HSET` of the machine hash, the raw point's
/// `ZADD` (`rawt`, the newest raw point's time, tells that it is newer than every point, so
/// the common case merges nothing) and one `HSETNX` of the sample into the machine's log
/// (`@log`, field: the timestamp). The rollup tiers are written when the log is folded
/// (`fold`): when a report opens a later minute than the log's (`logt`), when the log holds
/// `LOG_MAX` reports (`logn`; an agent reporting faster than every three seconds), or when an
/// earlier version's open buckets are there. An agent reporting every 10 s folds once a
/// minute: the minute becomes the open 1-minute bucket in `@open` and the one before moves to
/// its set, the open 10-minute bucket takes the minute's samples, the trims run once.
/// Readers merge the log and the open bucket with the sets, so a report is in every tier as
/// soon as it is recorded. A call's fixed cost (`TIME`, the index and key-use writes) is paid
/// once per batch.
///
/// Earlier versions, still recording during a rolling upgrade: the previous one keeps both
/// rollup tiers' open buckets in `@open` too and merges every report into them, the one before
/// in the `open1`/`open2` fields (folded in and deleted). Nodes of the previous version see
/// the log's samples once folded (within a minute for a reporting agent).
const RECORD: &str = r#"
local now = now_ms()
local now_s = ms(now)
local index, used = {}, {}
local trim = trims(now)
local raw_horizon = now - TIERS[1][2]
local function put(fields, f, v) fields[#fields + 1] = f; fields[#fields + 1] = v end
-- A machine's keys as `fold` takes them, named only when the log is folded (once a minute).
local function machine_keys(machine, raw, log)
  return {machine, raw, machine .. '@1m', machine .. '@10m', machine .. '@open', log}
end
-- One report: its arguments from ARGV[a + 1].
local function record(a)
  local ts = tonumber(ARGV[a + 3])
  if ts > now + SKEW or ts < now - SPAN then
    return 0
  end
  local machine = PREFIX .. ARGV[a + 1]
  local cur = redis.call('HMGET', machine, 'ts', 'offline_since', 'rawt', 'logt', 'logn',
    'open1', 'open2')
  local fields = {'last_seen', now_s, 'key', ARGV[a + 4]}
  local gone = {}
  if not cur[1] then put(fields, 'first_seen', now_s) end
  if (not cur[1]) or tonumber(cur[1]) <= ts then
    put(fields, 'report', ARGV[a + 2]); put(fields, 'ts', ARGV[a + 3])
  end
  if cur[2] then gone[#gone + 1] = 'offline_since' end
  index[#index + 1] = now_s; index[#index + 1] = ARGV[a + 1]
  used[ARGV[a + 4]] = true
  local raw, log = machine .. '@raw', machine .. '@log'
  if ts >= raw_horizon then
    local last = tonumber(cur[3]) or newest(raw)
    if ts > last then
      redis.call('ZADD', raw, ARGV[a + 3], ARGV[a + 6])
      put(fields, 'rawt', ARGV[a + 3])
    else
      into_set(raw, entry_bucket(ts, ARGV[a + 5]), ARGV[a + 3])
      if not cur[3] then put(fields, 'rawt', ms(last)) end
    end
  end
  local minute = ts - ts % TIERS[2][1]
  local logt, logn = tonumber(cur[4]), tonumber(cur[5]) or 0
  if cur[6] or cur[7] or (logt and minute > logt) then
    fold(machine_keys(machine, raw, log), {cur[6], cur[7]}, now, trim)
    if cur[6] then gone[#gone + 1] = 'open1' end
    if cur[7] then gone[#gone + 1] = 'open2' end
    logn = 0
  end
  if redis.call('HSETNX', log, ARGV[a + 3], ARGV[a + 5]) == 0 then
    -- A second report with this timestamp (a resend): merged into the first one's entry.
    local b = entry_bucket(ts, ARGV[a + 5])
    local ok, old = pcall(entry_bucket, ts, redis.call('HGET', log, ARGV[a + 3]))
    if ok then merge(b, old) end
    redis.call('HSET', log, ARGV[a + 3], struct.pack(ENTRY, unpack(b, 2, 9)))
  else
    -- The log expires with the history if nothing folds it (a machine that fell silent).
    if logn == 0 then redis.call('PEXPIRE', log, SPAN) end
    logn = logn + 1
    if logn >= LOG_MAX then
      fold(machine_keys(machine, raw, log), {}, now, trim)
      logn = 0
    end
  end
  put(fields, 'logn', COUNT[logn])
  if (not logt) or minute > logt then put(fields, 'logt', ms(minute)) end
  redis.call('HSET', machine, unpack(fields))
  if #gone > 0 then redis.call('HDEL', machine, unpack(gone)) end
  return 1
end
local out = {now}
for r = 0, #ARGV / ARGS_PER_REPORT - 1 do
  out[r + 2] = record(r * ARGS_PER_REPORT)
end
-- Once per batch: every report of the batch was recorded at `now`.
if #index > 0 then redis.call('ZADD', KEYS[1], unpack(index)) end
local usage = {}
for name in pairs(used) do usage[#usage + 1] = name; usage[#usage + 1] = now_s end
if #usage > 0 then redis.call('HSET', KEYS[2], unpack(usage)) end
return out
"#;

/// RECORD's arguments per report.
const ARGS_PER_REPORT: usize = 6;

/// A machine's log is folded into its rollup tiers once it holds this many reports, even
/// within one minute: it bounds how far the raw tier can run past its count bound between
/// folds (readers cut it), and what one fold costs.
pub const LOG_MAX: usize = 20;

/// The most reports in one RECORD call. Redis runs one script at a time, so this bounds how
/// long a batch holds up every other client of the store (~30 µs of Redis time a report).
const RECORD_BATCH: usize = 32;

/// RECORD calls in flight at once: while one runs in Redis the next is sent, and the reports
/// that arrive meanwhile form the one after. Two, not more: a call's fixed cost (~90,000
/// Redis instructions, see RECORD) is shared by fewer reports when more calls are in flight
/// (`scripts/bench`, 2026-12-07: batches of ~9 reports with four in flight, ~17 with two, and
/// Redis's time per report 28.5 → 25.8 µs on one node, 44 → 32 µs with three nodes); one
/// leaves Redis idle while the node turns a reply into the next call.
const RECORD_IN_FLIGHT: usize = 2;

/// RECORD with what it needs, without the shared prelude (`benches/record-script.sh` runs
/// it through `examples/record_lua.rs`).
pub fn record_lua() -> String {
    format!("{}{BUCKETS}{RECORD}", record_constants())
}

/// The tier table and the bounds of RECORD and `fold` as Lua constants, so a report's call
/// carries and parses none of them: `TIERS[i]` is {bucket, retention, cap} of `TIERS[i - 1]`;
/// `COUNT[n]` is `n` as the string a hash field takes (no number printed per report).
fn record_constants() -> String {
    let tiers: Vec<String> = TIERS
        .iter()
        .map(|t| format!("{{{}, {}, {}}}", t.bucket_ms, t.retention_ms, t.max_points))
        .collect();
    let counts: Vec<String> = (1..=LOG_MAX).map(|n| format!("'{n}'")).collect();
    format!(
        "local TIERS = {{{}}}\nlocal SKEW, SPAN, LOG_MAX = {MAX_CLOCK_SKEW_MS}, {HISTORY_SPAN_MS}, {LOG_MAX}\n\
         local PREFIX, ARGS_PER_REPORT = '{PREFIX}', {ARGS_PER_REPORT}\n\
         local COUNT = {{[0] = '0', {}}}\n",
        tiers.join(", "),
        counts.join(", ")
    )
}

/// KEYS: index. ARGV: since (ms, or empty for all). Returns the clock, the number of
/// machines and the ids recorded at or after `since`, in one atomic step.
const CHANGED: &str = r#"
local now = now_ms()
local ids
if ARGV[1] == '' then
  ids = redis.call('ZRANGE', KEYS[1], 0, -1)
else
  ids = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')
end
return {now, redis.call('ZCARD', KEYS[1]), ids}
"#;

const MARK_OFFLINE: &str = r#"
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[1])))
local marked = {}
for _, id in ipairs(ids) do
  local key = ARGV[2] .. id
  if redis.call('EXISTS', key) == 1 and redis.call('HSETNX', key, 'offline_since', now) == 1 then
    table.insert(marked, id)
  end
end
return marked
"#;

const FORGET: &str = r#"
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[1])))
for _, id in ipairs(ids) do
  local key = ARGV[2] .. id
  redis.call('DEL', key)
  for i = 3, #ARGV do redis.call('DEL', key .. '@' .. ARGV[i]) end
  redis.call('ZREM', KEYS[1], id)
end
return ids
"#;

/// KEYS: index, machine, one history key per tier, `@open`, `@log`. ARGV: machine id, report
/// (maybe sealed), its timestamp, key name (maybe sealed), first_seen, last_seen,
/// offline_since ('' for none), then per tier: retention, cap, the number of points and that
/// many (t, n, JSON) triples. The machine's log and open buckets are folded into its sets
/// first (`fold`). The record is written when its `last_seen` is at least the stored one; per
/// bucket the point with more samples wins (ties: incoming). Point JSON is stored as given
/// (never re-encoded by cjson, which would round the sums).
const IMPORT: &str = r#"
local now = now_ms()
local seen = tonumber(ARGV[6])
local cur = redis.call('HMGET', KEYS[2], 'last_seen', 'open1', 'open2')
fold({KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]}, {cur[2], cur[3]}, now, trims(now))
-- The open buckets too: below, each bucket is one point, the fuller one winning; the newest
-- of each rollup tier goes back to `@open` at the end, where RECORD (and the previous
-- version) keeps it.
local open = open_buckets(redis.call('GET', KEYS[6]))
for i = 1, 2 do
  if open[i] then into_set(KEYS[3 + i], open[i], ms(open[i][1])) end
end
redis.call('DEL', KEYS[6])
open = {}
local longest = 0
redis.call('HDEL', KEYS[2], 'open1', 'open2', 'logt', 'logn', 'rawt')
if (not cur[1]) or tonumber(cur[1]) <= seen then
  redis.call('HSET', KEYS[2], 'report', ARGV[2], 'ts', ARGV[3], 'key', ARGV[4],
    'first_seen', ARGV[5], 'last_seen', ARGV[6])
  if ARGV[7] == '' then
    redis.call('HDEL', KEYS[2], 'offline_since')
  else
    redis.call('HSET', KEYS[2], 'offline_since', ARGV[7])
  end
  redis.call('ZADD', KEYS[1], seen, ARGV[1])
end
local a = 8
for i = 0, 2 do
  local key = KEYS[3 + i]
  local horizon = now - tonumber(ARGV[a])
  local cap = tonumber(ARGV[a + 1])
  local count = tonumber(ARGV[a + 2])
  a = a + 3
  -- Per bucket start: the samples and the point as JSON (s), or as a bucket (b) when two
  -- points of the set at one time (left by two versions during an upgrade) were merged.
  local points = {}
  for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    local b = bucket_of_json(m)
    if b then
      local e = points[b[1]]
      if e then
        merge(e.b, b)
        points[b[1]] = {n = e.b[2], b = e.b}
      else
        points[b[1]] = {n = b[2], s = m, b = b}
      end
    end
  end
  for _ = 1, count do
    local t, n = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
    local e = points[t]
    if (not e) or n >= e.n then points[t] = {n = n, s = ARGV[a + 2]} end
    a = a + 3
  end
  local ts = {}
  for t, _ in pairs(points) do
    if t >= horizon then table.insert(ts, t) end
  end
  table.sort(ts)
  longest = math.max(longest, now - horizon)
  local first, last = math.max(1, #ts - cap + 1), #ts
  if i > 0 and last >= first then
    local e = points[ts[last]]
    open[i] = e.b or bucket_of_json(e.s)
    if open[i] then last = last - 1 end
  end
  redis.call('DEL', key)
  for j = first, last do
    local e = points[ts[j]]
    redis.call('ZADD', key, ts[j], e.s or json_of_bucket(e.b))
  end
end
if open[1] or open[2] then
  redis.call('SET', KEYS[6], packed_buckets(open), 'PX', ms(longest))
end
return 1
"#;

/// KEYS: `@keys`. ARGV: (key name as stored, last use) pairs; the later use wins.
const IMPORT_KEYS: &str = r"
for i = 1, #ARGV, 2 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if (not cur) or tonumber(cur) < tonumber(ARGV[i + 1]) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 1
";

/// The machine id in a key under `PREFIX`, or `None` for history and bookkeeping keys
/// (`@` cannot occur in a machine id).
fn machine_id_of(key: &str) -> Option<&str> {
    key.strip_prefix(PREFIX).filter(|rest| !rest.contains('@'))
}

/// One report queued for RECORD, encoded and sealed by the caller's task (so the batch's
/// call only assembles arguments).
struct PendingReport {
    id: String,
    /// The report as stored: JSON, sealed when `storage.encrypt_reports`.
    report: String,
    /// The report's timestamp (ms, agent clock).
    measured: Millis,
    /// The API key's name as stored (sealed when a keyring is configured).
    key_name: String,
    /// The sample as a log entry (`packed_entry`).
    entry: [u8; ENTRY_BYTES],
    /// The sample as a raw-tier point (JSON).
    raw_point: String,
}

/// A log entry: a bucket without its time, eight little-endian doubles.
const ENTRY_BYTES: usize = 64;

/// A sample as an entry of its machine's log and as RECORD unpacks it (`ENTRY`,
/// `struct.unpack('<dddddddd')`): the bucket of one sample, so Lua reads it without parsing
/// text and merges a resent report into it like any bucket.
fn packed_entry(s: &Sample) -> [u8; ENTRY_BYTES] {
    let r = Rollup::of_sample(s);
    let mut out = [0u8; ENTRY_BYTES];
    let numbers = [
        r.n as f64, r.cpu_sum, r.cpu_max, r.mem_sum, r.load_sum, r.disk_max, r.rx, r.tx,
    ];
    for (chunk, n) in out.chunks_exact_mut(8).zip(numbers) {
        chunk.copy_from_slice(&n.to_le_bytes());
    }
    out
}

/// The buckets of a machine's log (its `@log` hash: timestamp → entry, see RECORD).
fn log_samples(log: &HashMap<String, Vec<u8>>) -> Result<Vec<Rollup>, String> {
    log.iter()
        .map(|(t, packed)| {
            let t: Millis = t
                .parse()
                .map_err(|_| format!("history log entry {t:?} is not a timestamp"))?;
            if packed.len() != ENTRY_BYTES {
                return Err(format!(
                    "history log entry {t} is {} bytes, not {ENTRY_BYTES}",
                    packed.len()
                ));
            }
            Ok(packed_bucket(t, &le_doubles(packed)))
        })
        .collect()
}

/// Points sorted by time, the points at one time merged into one.
fn merged(mut points: Vec<Rollup>) -> Vec<Rollup> {
    points.sort_by_key(|r| r.t);
    let mut out: Vec<Rollup> = Vec::with_capacity(points.len());
    for p in points {
        match out.last_mut() {
            Some(last) if last.t == p.t => last.absorb(&p),
            _ => out.push(p),
        }
    }
    out
}

/// A rollup tier's points that are not in its sorted set yet, merged per bucket: the
/// samples of the machine's log (`log`), and the open buckets kept in the `@open` string
/// (`packed`) and, by a version before it, in the hash field `open1`/`open2` (`legacy`). The
/// raw tier has none: RECORD adds each raw point at once.
fn pending_points(
    tier: &Tier,
    log: &HashMap<String, Vec<u8>>,
    packed: Option<&[u8]>,
    legacy: Option<&str>,
) -> Result<Vec<Rollup>, String> {
    if tier.bucket_ms == 0 {
        return Ok(Vec::new());
    }
    let mut out = open_buckets(tier, packed, legacy)?;
    for mut r in log_samples(log)? {
        r.t = tier.bucket_start(r.t);
        out.push(r);
    }
    Ok(merged(out))
}

/// One RECORD call for `batch`; one result per report, in order.
async fn record_batch(
    redis: &Redis,
    record: &Script,
    batch: Vec<PendingReport>,
) -> Vec<StoreResult<Millis>> {
    let mut inv = record.prepare_invoke();
    // Only the shared keys: RECORD names each machine's keys from its id (see RECORD).
    inv.key(INDEX).key(KEYS);
    for p in &batch {
        inv.arg(&p.id)
            .arg(&p.report)
            .arg(p.measured)
            .arg(&p.key_name)
            .arg(&p.entry[..])
            .arg(&p.raw_point);
    }
    let reply: Result<Vec<Millis>, Unavailable> = redis
        .call("record reports", |mut c| async move {
            inv.invoke_async(&mut c).await
        })
        .await;
    match reply {
        Ok(reply) if reply.len() == batch.len() + 1 => {
            let now = reply[0];
            reply[1..]
                .iter()
                .map(|&written| {
                    if written == 1 {
                        Ok(now)
                    } else {
                        Err(StoreError::OutOfRange { now })
                    }
                })
                .collect()
        }
        Ok(reply) => {
            let e = StoreError::Corrupt {
                backend: BackendKind::Redis,
                message: format!(
                    "RECORD answered {} values for {} reports (a different script under its name?)",
                    reply.len(),
                    batch.len()
                ),
            };
            batch.iter().map(|_| Err(e.clone())).collect()
        }
        Err(e) => {
            let e = StoreError::from(e);
            batch.iter().map(|_| Err(e.clone())).collect()
        }
    }
}

pub struct RedisFleetStore {
    /// The shared connection handle (deadlines, reconnects, Sentinel failover): a node that
    /// starts while Redis is down still serves, and reports get 503 until Redis is back.
    redis: Redis,
    /// Seals key names, and reports when `storage.encrypt_reports`.
    sealing: Sealing,
    /// Group commit of reports: one RECORD call for the reports that arrive together.
    recorder: Batcher<PendingReport, StoreResult<Millis>>,
    changed: Script,
    mark_offline: Script,
    forget: Script,
    import: Script,
    import_keys: Script,
}

impl From<Unavailable> for StoreError {
    fn from(e: Unavailable) -> Self {
        StoreError::Unavailable {
            backend: BackendKind::Redis,
            location: e.location,
            message: e.message,
        }
    }
}

impl RedisFleetStore {
    pub async fn open(config: &StorageConfig, sealing: Sealing) -> StoreResult<RedisFleetStore> {
        // Passwords (inline, file or environment) were resolved when the config was loaded.
        let redis = Redis::open(RedisEndpoint::storage(config)).await?;
        let writer = Arc::new((redis.clone(), script(&record_lua())));
        let recorder = Batcher::spawn(RECORD_BATCH, RECORD_IN_FLIGHT, move |batch| {
            let writer = writer.clone();
            async move { record_batch(&writer.0, &writer.1, batch).await }
        });
        Ok(RedisFleetStore {
            redis,
            sealing,
            recorder,
            changed: script(CHANGED),
            mark_offline: script(MARK_OFFLINE),
            forget: script(FORGET),
            import: script(&format!("{}{BUCKETS}{IMPORT}", record_constants())),
            import_keys: Script::new(IMPORT_KEYS),
        })
    }

    fn corrupt(&self, message: String) -> StoreError {
        StoreError::Corrupt {
            backend: BackendKind::Redis,
            message,
        }
    }

    async fn call<T, F>(&self, what: &str, f: impl FnOnce(ConnectionManager) -> F) -> StoreResult<T>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        Ok(self.redis.call(what, f).await?)
    }

    /// The records of `ids`, one pipelined round trip per 500; unreadable ones as (id, why).
    async fn read_machines(
        &self,
        ids: &[String],
    ) -> StoreResult<(Vec<MachineRecord>, Vec<(String, String)>)> {
        let mut machines = Vec::with_capacity(ids.len());
        let mut problems = Vec::new();
        for chunk in ids.chunks(500) {
            let mut pipe = redis::pipe();
            for id in chunk {
                pipe.hmget(machine_key(id), &RECORD_FIELDS);
            }
            let rows: Vec<Vec<Option<String>>> = self
                .call("read machines", |mut c| async move {
                    pipe.query_async(&mut c).await
                })
                .await?;
            for (id, fields) in chunk.iter().zip(rows.into_iter().map(record_fields)) {
                if fields.is_empty() {
                    continue; // forgotten between the two reads, or never there
                }
                match self.decode_machine(id, &fields) {
                    Ok(r) => machines.push(r),
                    Err(p) => problems.push((id.clone(), p.message())),
                }
            }
        }
        Ok((machines, problems))
    }

    fn decode_machine(
        &self,
        id: &str,
        fields: &HashMap<String, String>,
    ) -> Result<MachineRecord, UnreadableReport> {
        let num = |k: &str| -> Result<Millis, UnreadableReport> {
            fields
                .get(k)
                .ok_or_else(|| format!("machine {id}: field `{k}` missing"))
                .and_then(|v| {
                    v.parse()
                        .map_err(|e| format!("machine {id}: field `{k}` is not a number: {e}"))
                })
                .map_err(UnreadableReport::Corrupt)
        };
        let stored = fields.get("report").ok_or_else(|| {
            UnreadableReport::Corrupt(format!("machine {id}: field `report` missing"))
        })?;
        let report = self.sealing.open_report(id, stored)?;
        let api_key = match fields.get("key") {
            Some(k) => self
                .sealing
                .open_key_name(k, &format!("machine {id}"))
                .map_err(UnreadableReport::Sealed)?,
            None => String::new(),
        };
        Ok(MachineRecord {
            report,
            first_seen: num("first_seen")?,
            last_seen: num("last_seen")?,
            api_key,
            offline_since: fields.get("offline_since").and_then(|v| v.parse().ok()),
        })
    }
}

#[async_trait]
impl FleetStore for RedisFleetStore {
    fn kind(&self) -> BackendKind {
        BackendKind::Redis
    }

    fn location(&self) -> String {
        self.redis.location().to_owned()
    }

    async fn now(&self) -> StoreResult<Millis> {
        Ok(self.redis.now_ms().await?)
    }

    async fn record(&self, report: &Report, api_key: &str) -> StoreResult<Millis> {
        let measured = report.measured_at();
        let s = sample_of(report, measured);
        let raw_point = serde_json::to_string(&Rollup::of_sample(&s))
            .map_err(|e| StoreError::Config(format!("cannot encode a history point: {e}")))?;
        let pending = PendingReport {
            report: self.sealing.seal_report(&report.machine_id, report)?,
            id: report.machine_id.clone(),
            measured,
            key_name: self.sealing.key_name(api_key),
            entry: packed_entry(&s),
            raw_point,
        };
        self.recorder.submit(pending).await.unwrap_or_else(|e| {
            Err(StoreError::Unavailable {
                backend: BackendKind::Redis,
                location: self.redis.location().to_owned(),
                message: e.to_string(),
            })
        })
    }

    async fn machines(&self) -> StoreResult<Snapshot> {
        let now = self.now().await?;
        let ids: Vec<String> = self
            .call("list machines", |mut c| async move {
                c.zrange(INDEX, 0, -1).await
            })
            .await?;
        let (machines, problems) = self.read_machines(&ids).await?;
        Ok(Snapshot {
            now,
            machines,
            problems: problems.into_iter().map(|(_, m)| m).collect(),
        })
    }

    async fn changed_since(&self, since: Option<Millis>) -> StoreResult<Changes> {
        let mut inv = self.changed.prepare_invoke();
        inv.key(INDEX)
            .arg(since.map_or_else(String::new, |s| s.to_string()));
        let (now, total, ids): (Millis, usize, Vec<String>) = self
            .call("list changed machines", |mut c| async move {
                inv.invoke_async(&mut c).await
            })
            .await?;
        let (machines, problems) = self.read_machines(&ids).await?;
        Ok(Changes {
            now,
            // The script is atomic: every later record has `last_seen` >= `now`.
            next_since: now,
            total,
            machines,
            problems,
        })
    }

    async fn machines_by_id(&self, machine_ids: &[String]) -> StoreResult<Snapshot> {
        let now = self.now().await?;
        let (machines, problems) = self.read_machines(machine_ids).await?;
        Ok(Snapshot {
            now,
            machines,
            problems: problems.into_iter().map(|(_, m)| m).collect(),
        })
    }

    async fn machine(&self, machine_id: &str) -> StoreResult<Option<MachineRecord>> {
        let key = machine_key(machine_id);
        let values: Vec<Option<String>> = self
            .call("read machine", |mut c| async move {
                c.hmget(key, &RECORD_FIELDS).await
            })
            .await?;
        let fields = record_fields(values);
        if fields.is_empty() {
            return Ok(None);
        }
        super::machine_or_absent(
            BackendKind::Redis,
            machine_id,
            self.decode_machine(machine_id, &fields),
        )
    }

    async fn history(
        &self,
        machine_id: &str,
        tier: Tier,
        from: Millis,
        to: Millis,
    ) -> StoreResult<Vec<HistoryPoint>> {
        let mut pipe = redis::pipe();
        pipe.zrangebyscore(tier_key(machine_id, &tier), from, to);
        pipe.get(open_key(machine_id));
        pipe.hget(machine_key(machine_id), legacy_open_field(&tier));
        pipe.hgetall(log_key(machine_id));
        pipe.cmd("TIME");
        #[allow(clippy::type_complexity)]
        let (members, packed, legacy, log, (secs, micros)): (
            Vec<String>,
            Option<Vec<u8>>,
            Option<String>,
            HashMap<String, Vec<u8>>,
            (i64, i64),
        ) = self
            .call("read history", |mut c| async move {
                pipe.query_async(&mut c).await
            })
            .await?;
        let now = secs * 1000 + micros / 1000;
        let mut points = members
            .iter()
            .map(|m| {
                serde_json::from_str::<Rollup>(m).map_err(|e| {
                    self.corrupt(format!(
                        "machine {machine_id}: history point {m:?} is not readable: {e}"
                    ))
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let pending = pending_points(&tier, &log, packed.as_deref(), legacy.as_deref())
            .map_err(|e| self.corrupt(format!("machine {machine_id}: {e}")))?;
        points.extend(
            pending
                .into_iter()
                .filter(|r| r.t >= from && r.t <= to && r.t >= now - tier.retention_ms),
        );
        let mut points = merged(points);
        // Between folds the log can take a tier past its count bound (see RECORD).
        let excess = points.len().saturating_sub(tier.max_points);
        points.drain(..excess);
        Ok(points.iter().map(Rollup::point).collect())
    }

    async fn history_len(&self, machine_id: &str) -> StoreResult<[usize; 3]> {
        let mut pipe = redis::pipe();
        for tier in &TIERS {
            pipe.zcard(tier_key(machine_id, tier));
            pipe.zrange_withscores(tier_key(machine_id, tier), -1, -1);
        }
        pipe.get(open_key(machine_id));
        pipe.hgetall(log_key(machine_id));
        for tier in &TIERS[1..] {
            pipe.hget(machine_key(machine_id), legacy_open_field(tier));
        }
        pipe.cmd("TIME");
        #[allow(clippy::type_complexity)]
        let (a, a_top, b, b_top, d, d_top, packed, log, o1, o2, (secs, micros)): (
            usize,
            Vec<(String, f64)>,
            usize,
            Vec<(String, f64)>,
            usize,
            Vec<(String, f64)>,
            Option<Vec<u8>>,
            HashMap<String, Vec<u8>>,
            Option<String>,
            Option<String>,
            (i64, i64),
        ) = self
            .call("count history", |mut c| async move {
                pipe.query_async(&mut c).await
            })
            .await?;
        let now = secs * 1000 + micros / 1000;
        let in_sets = [(a, a_top), (b, b_top), (d, d_top)];
        let legacy = [None, o1, o2];
        // Per tier: the set's size, and the pending points' times that may be in the set
        // already (at or before its newest point; newer ones are new).
        let mut counts = [0usize; 3];
        let mut maybe: Vec<(usize, Millis)> = Vec::new();
        for (i, tier) in TIERS.iter().enumerate() {
            let pending = pending_points(tier, &log, packed.as_deref(), legacy[i].as_deref())
                .map_err(|e| self.corrupt(format!("machine {machine_id}: {e}")))?;
            let (card, top) = &in_sets[i];
            let newest = top
                .first()
                .map_or(Millis::MIN, |(_, score)| *score as Millis);
            counts[i] = *card;
            for r in pending.iter().filter(|r| r.t >= now - tier.retention_ms) {
                match r.t.cmp(&newest) {
                    std::cmp::Ordering::Greater => counts[i] += 1,
                    std::cmp::Ordering::Equal => {}
                    std::cmp::Ordering::Less => maybe.push((i, r.t)),
                }
            }
        }
        // Rare (a late report not folded yet): one more round trip to look them up.
        if !maybe.is_empty() {
            let mut pipe = redis::pipe();
            for (i, t) in &maybe {
                pipe.zrangebyscore(tier_key(machine_id, &TIERS[*i]), *t, *t);
            }
            let found: Vec<Vec<String>> = self
                .call("count history", |mut c| async move {
                    pipe.query_async(&mut c).await
                })
                .await?;
            for ((i, _), members) in maybe.iter().zip(found) {
                if members.is_empty() {
                    counts[*i] += 1;
                }
            }
        }
        for (n, tier) in counts.iter_mut().zip(&TIERS) {
            *n = (*n).min(tier.max_points);
        }
        Ok(counts)
    }

    async fn mark_offline(&self, silent_for: Duration) -> StoreResult<Vec<String>> {
        let mut inv = self.mark_offline.prepare_invoke();
        inv.key(INDEX)
            .arg(silent_for.as_millis() as i64)
            .arg(PREFIX);
        self.call("mark machines offline", |mut c| async move {
            inv.invoke_async(&mut c).await
        })
        .await
    }

    async fn forget(&self, silent_for: Duration) -> StoreResult<Vec<String>> {
        let mut inv = self.forget.prepare_invoke();
        inv.key(INDEX)
            .arg(silent_for.as_millis() as i64)
            .arg(PREFIX);
        // Every key of a machine besides its hash: the history tiers, the log and the open
        // buckets of the previous version.
        for tier in &TIERS {
            inv.arg(tier.name);
        }
        inv.arg("log").arg("open");
        self.call("forget machines", |mut c| async move {
            inv.invoke_async(&mut c).await
        })
        .await
    }

    async fn reseal(&self, progress: ResealProgress<'_>) -> StoreResult<ResealCount> {
        // HGETALL rather than HKEYS: the least-privilege ACL of docs/cluster.md allows it.
        let usage: HashMap<String, String> = self
            .call(
                "list key usage",
                |mut c| async move { c.hgetall(KEYS).await },
            )
            .await?;
        let fields: Vec<String> = usage.into_keys().collect();
        let ids: Vec<String> = self
            .call("list machines", |mut c| async move {
                c.zrange(INDEX, 0, -1).await
            })
            .await?;
        let total = (fields.len() + ids.len()) as u64;
        progress(0, total);
        let mut count = ResealCount::default();

        // Key usage entries: few (one per API key), one script each.
        let reseal_key = Script::new(RESEAL_KEY);
        for field in &fields {
            count.examined += 1;
            if self.sealing.key_name_is_current(field) {
                continue;
            }
            let Ok(name) = self.sealing.open_key_name(field, "API key usage") else {
                count.unreadable += 1;
                continue;
            };
            let moved: i64 = self
                .call("re-seal key usage", |mut c| {
                    let mut inv = reseal_key.prepare_invoke();
                    inv.key(KEYS).arg(field).arg(self.sealing.key_name(&name));
                    async move { inv.invoke_async(&mut c).await }
                })
                .await?;
            count.resealed += moved as u64;
        }
        progress(count.examined, total);

        // Machines: the report and the key name, read in pipelined batches.
        let reseal = Script::new(RESEAL);
        for chunk in ids.chunks(RESEAL_BATCH) {
            let mut pipe = redis::pipe();
            for id in chunk {
                pipe.hget(machine_key(id), "report")
                    .hget(machine_key(id), "key");
            }
            let stored: Vec<Option<String>> = self
                .call("read reports", |mut c| async move {
                    pipe.query_async(&mut c).await
                })
                .await?;
            let pairs = stored.chunks(2).map(|p| (p[0].clone(), p[1].clone()));
            for (id, (report, key)) in chunk.iter().zip(pairs) {
                let Some(report) = report else { continue };
                let key = key.unwrap_or_default();
                count.examined += 1;
                let (new_report, new_key) = match self.sealing.reseal_machine(id, &report, &key) {
                    Ok(None) => continue,
                    Ok(Some(new)) => new,
                    Err(()) => {
                        count.unreadable += 1;
                        continue;
                    }
                };
                let written: i64 = self
                    .call("re-seal report", |mut c| {
                        let mut inv = reseal.prepare_invoke();
                        inv.key(machine_key(id))
                            .arg(&report)
                            .arg(&new_report)
                            .arg(&key)
                            .arg(&new_key);
                        async move { inv.invoke_async(&mut c).await }
                    })
                    .await?;
                count.resealed += written as u64;
            }
            progress(count.examined, total.max(count.examined));
        }
        Ok(count)
    }

    async fn key_usage(&self) -> StoreResult<Vec<KeyUsage>> {
        let map: HashMap<String, Millis> = self
            .call(
                "read key usage",
                |mut c| async move { c.hgetall(KEYS).await },
            )
            .await?;
        Ok(merge_key_usage(&self.sealing, map))
    }

    async fn export_key_usage(&self) -> StoreResult<ExportPage<KeyUsage>> {
        let map: HashMap<String, Millis> = self
            .call(
                "read key usage",
                |mut c| async move { c.hgetall(KEYS).await },
            )
            .await?;
        let (records, unreadable) = open_key_usage(&self.sealing, map);
        Ok(ExportPage {
            records,
            unreadable,
            next: None,
        })
    }

    async fn export_machines(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> StoreResult<ExportPage<MachineDump>> {
        // The cursor is SCAN's over `{fleet}:m:*` (ZSCAN on the index is not in the
        // least-privilege ACL): every machine present for the whole export is returned at
        // least once; one returned twice merges idempotently.
        let start: u64 = match cursor.as_deref() {
            None => 0,
            Some(c) => c.parse().map_err(|_| {
                StoreError::Config(format!("not a Redis machine export cursor: {c:?}"))
            })?,
        };
        let count = limit.max(1);
        let (next, keys): (u64, Vec<String>) = self
            .call("scan machines", |mut c| async move {
                redis::cmd("SCAN")
                    .arg(start)
                    .arg("MATCH")
                    .arg(format!("{PREFIX}*"))
                    .arg("COUNT")
                    .arg(count)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let mut ids: Vec<String> = keys
            .iter()
            .filter_map(|k| machine_id_of(k).map(str::to_owned))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut page = ExportPage {
            records: Vec::with_capacity(ids.len()),
            unreadable: Vec::new(),
            next: (next != 0).then(|| next.to_string()),
        };
        if ids.is_empty() {
            return Ok(page);
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hgetall(machine_key(id));
        }
        for id in &ids {
            for tier in &TIERS {
                pipe.zrange(tier_key(id, tier), 0, -1);
            }
        }
        for id in &ids {
            pipe.get(open_key(id)).hgetall(log_key(id));
        }
        pipe.cmd("TIME");
        let replies: Vec<redis::Value> = self
            .call("export machines", |mut c| async move {
                pipe.query_async(&mut c).await
            })
            .await?;
        let bad_reply =
            |e: redis::ParsingError| StoreError::from(self.redis.unavailable("export machines", e));
        let (hashes, rest) = replies.split_at(ids.len());
        let (sets, rest) = rest.split_at(ids.len() * TIERS.len());
        let (pending, time) = rest.split_at(ids.len() * 2);
        let (secs, micros): (i64, i64) =
            redis::from_redis_value_ref(time.first().unwrap_or(&redis::Value::Nil))
                .map_err(bad_reply)?;
        let now = secs * 1000 + micros / 1000;
        for (i, id) in ids.iter().enumerate() {
            let fields: HashMap<String, String> =
                redis::from_redis_value_ref(&hashes[i]).map_err(bad_reply)?;
            if fields.is_empty() {
                continue; // forgotten since the scan
            }
            let record = match self.decode_machine(id, &fields) {
                Ok(r) => r,
                Err(p) => {
                    page.unreadable.push(p.message());
                    continue;
                }
            };
            let packed: Option<Vec<u8>> =
                redis::from_redis_value_ref(&pending[i * 2]).map_err(bad_reply)?;
            let log: HashMap<String, Vec<u8>> =
                redis::from_redis_value_ref(&pending[i * 2 + 1]).map_err(bad_reply)?;
            let mut history: [Vec<Rollup>; 3] = Default::default();
            let mut broken = None;
            for (t, tier) in TIERS.iter().enumerate() {
                let members: Vec<String> =
                    redis::from_redis_value_ref(&sets[i * TIERS.len() + t]).map_err(bad_reply)?;
                for m in &members {
                    match serde_json::from_str::<Rollup>(m) {
                        Ok(r) => history[t].push(r),
                        Err(e) => {
                            broken = Some(format!(
                                "machine {id}: history point {m:?} of tier {} is not readable: {e}",
                                tier.name
                            ))
                        }
                    }
                }
                let legacy = fields.get(&legacy_open_field(tier));
                match pending_points(tier, &log, packed.as_deref(), legacy.map(String::as_str)) {
                    Ok(pending) => history[t] = merged([&history[t][..], &pending].concat()),
                    Err(e) => broken = Some(format!("machine {id}: {e}")),
                }
            }
            if let Some(why) = broken {
                page.unreadable.push(why);
                continue;
            }
            trim_history(&mut history, now);
            page.records.push(MachineDump {
                machine_id: id.clone(),
                record,
                history,
            });
        }
        Ok(page)
    }

    async fn import_machines(&self, machines: Vec<MachineDump>) -> StoreResult<u64> {
        let mut merged = 0;
        for m in &machines {
            let r = &m.record;
            let json = self.sealing.seal_report(&m.machine_id, &r.report)?;
            let mut inv = self.import.prepare_invoke();
            inv.key(INDEX).key(machine_key(&m.machine_id));
            for tier in &TIERS {
                inv.key(tier_key(&m.machine_id, tier));
            }
            inv.key(open_key(&m.machine_id)).key(log_key(&m.machine_id));
            inv.arg(&m.machine_id)
                .arg(json)
                .arg(r.report.measured_at())
                .arg(self.sealing.key_name(&r.api_key))
                .arg(r.first_seen)
                .arg(r.last_seen)
                .arg(r.offline_since.map_or_else(String::new, |t| t.to_string()));
            for (tier, points) in TIERS.iter().zip(&m.history) {
                inv.arg(tier.retention_ms)
                    .arg(tier.max_points)
                    .arg(points.len());
                for p in points {
                    let point = serde_json::to_string(p).map_err(|e| {
                        StoreError::Config(format!("cannot encode a history point: {e}"))
                    })?;
                    inv.arg(p.t).arg(p.n).arg(point);
                }
            }
            let _: i64 = self
                .call("import machine", |mut c| async move {
                    inv.invoke_async(&mut c).await
                })
                .await?;
            merged += 1;
        }
        Ok(merged)
    }

    async fn import_key_usage(&self, usage: Vec<KeyUsage>) -> StoreResult<()> {
        if usage.is_empty() {
            return Ok(());
        }
        let mut inv = self.import_keys.prepare_invoke();
        inv.key(KEYS);
        for u in &usage {
            inv.arg(self.sealing.key_name(&u.name)).arg(u.last_used);
        }
        let _: i64 = self
            .call("import key usage", |mut c| async move {
                inv.invoke_async(&mut c).await
            })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: Millis, cpu: f64) -> Sample {
        Sample {
            t,
            cpu_percent: cpu,
            memory_percent: 25.0,
            load1: 0.5,
            disk_percent: 40.0,
            rx_bytes: 1e6,
            tx_bytes: 5e5,
        }
    }

    #[test]
    fn a_log_entry_reads_back_as_the_bucket_of_its_sample() {
        let s = sample(120_500, 12.5);
        let log = HashMap::from([("120500".to_string(), packed_entry(&s).to_vec())]);
        assert_eq!(log_samples(&log).unwrap(), [Rollup::of_sample(&s)]);
    }

    #[test]
    fn a_damaged_log_entry_is_an_error_naming_it() {
        let short = HashMap::from([("5".to_string(), vec![0u8; 10])]);
        let e = log_samples(&short).unwrap_err();
        assert!(e.contains("history log entry 5 is 10 bytes, not 64"), "{e}");
        let bad_time = HashMap::from([("soon".to_string(), vec![0u8; ENTRY_BYTES])]);
        let e = log_samples(&bad_time).unwrap_err();
        assert!(e.contains("\"soon\" is not a timestamp"), "{e}");
    }

    #[test]
    fn pending_points_merge_the_log_and_the_open_bucket_per_bucket() {
        let log: HashMap<String, Vec<u8>> = [(60_000, 10.0), (61_000, 30.0), (125_000, 50.0)]
            .into_iter()
            .map(|(t, cpu)| (t.to_string(), packed_entry(&sample(t, cpu)).to_vec()))
            .collect();
        let one_minute = pending_points(&TIERS[1], &log, None, None).unwrap();
        let shape: Vec<(Millis, u64)> = one_minute.iter().map(|r| (r.t, r.n)).collect();
        assert_eq!(shape, [(60_000, 2), (120_000, 1)]);
        assert_eq!(one_minute[0].cpu_sum, 40.0);
        assert_eq!(one_minute[0].cpu_max, 30.0);
        // The raw tier has nothing pending: RECORD adds raw points at once.
        assert!(
            pending_points(&TIERS[0], &log, None, None)
                .unwrap()
                .is_empty()
        );
        // The previous version's open 10-minute bucket merges with the log's samples.
        let mut packed = vec![0u8; 72];
        for v in [0.0, 3.0, 60.0, 20.0, 75.0, 1.5, 40.0, 1e6, 5e5] {
            packed.extend_from_slice(&f64::to_le_bytes(v));
        }
        let ten = pending_points(&TIERS[2], &log, Some(&packed), None).unwrap();
        assert_eq!(ten.len(), 1);
        assert_eq!((ten[0].t, ten[0].n), (0, 6));
        assert_eq!(ten[0].cpu_max, 50.0);
    }
}
