//! The Redis fleet store: shared by every node of a cluster, so a machine reported to one
//! node is visible on all of them at once.
//!
//! Key layout (owned here; nothing else spells a key). Everything lives under `{fleet}:m:` in
//! the storage database (`storage.redis.db`, default 2); `@` cannot occur in a machine id,
//! so machine keys and the bookkeeping keys never collide:
//! - `{fleet}:m:@index`         ZSET machine id → last_seen (ms, Redis clock)
//! - `{fleet}:m:@keys`          HASH API key name (sealed, see `Sealing`) → last use (ms)
//! - `{fleet}:m:@unfolded`      ZSET machine id → the minute of its oldest sample in `@log`
//!   (see FOLD_DUE)
//! - `{fleet}:m:<id>`           HASH first_seen, last_seen, key (the API key name, sealed like
//!   the `@keys` fields), offline_since; from earlier versions maybe `report` and `ts` (the
//!   latest report before `@state`; the newer of the two counts), `rawt`, `logt`, `logn`,
//!   `open1`, `open2` (folded in and deleted by FOLD_DUE)
//! - `{fleet}:m:<id>@state`     ZSET: the newest report (JSON, maybe sealed), scored by its
//!   timestamp (see `Writer::record_batch`)
//! - `{fleet}:m:<id>@<tier>`    ZSET of points (JSON), scored by time, one per tier (for `1m`
//!   and `10m`: the buckets folded so far; the newer ones are in `@log` and `@open`)
//! - `{fleet}:m:<id>@log`       HASH timestamp → the reports' bucket at that time (8 doubles):
//!   recorded, not yet folded into the rollup tiers (see FOLD_DUE)
//! - `{fleet}:m:<id>@open`      STRING: the open bucket of each rollup tier, packed as doubles
//!   (see BUCKETS); expires with the history
//!
//! Reports are written with plain pipelined commands (`Writer::record_batch`: a Lua call costs
//! Redis more than all of a report's commands), stamped with this node's estimate of Redis's
//! clock. Everything else that writes is one Lua script, atomic and on Redis's own clock
//! (`TIME`): the fold into the rollup tiers (FOLD_DUE), `mark_offline`, `forget`, import and
//! re-sealing. Scripts build machine keys from the ids they are given; the shared `{fleet}`
//! hash tag keeps those keys in the declared keys' slot, as Redis Cluster requires.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// KEYS: machine, its `@state`. ARGV: the hash's report as read, re-sealed; the key name as
/// read, re-sealed; the newest report in `@state` as read, re-sealed ('' where there is
/// none). Each is written only when it is still what was read (in `@state`: still the
/// newest), so a report recorded meanwhile wins.
/// Returns 1 when it wrote anything.
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
if ARGV[5] ~= ARGV[6] then
  local top = redis.call('ZRANGE', KEYS[2], '-1', '-1', 'WITHSCORES')
  if top[1] == ARGV[5] then
    redis.call('ZREM', KEYS[2], ARGV[5])
    redis.call('ZADD', KEYS[2], top[2], ARGV[6])
    n = 1
  end
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
const UNFOLDED: &str = "{fleet}:m:@unfolded";

/// The names after `<id>@` of a machine's other keys (besides its history tiers, named by
/// `Tier::name`), spelled once for the key functions, the report pipeline and `forget`.
const OPEN: &str = "open";
const STATE: &str = "state";
const LOG: &str = "log";
const SAMPLES: &str = "samples";

fn machine_key(id: &str) -> String {
    format!("{PREFIX}{id}")
}

/// The machine's key `<prefix><id>@<name>`.
fn sub_key(id: &str, name: &str) -> String {
    format!("{PREFIX}{id}@{name}")
}

/// The machine-hash field where versions before the `@open` string kept a rollup tier's
/// open (newest) bucket as JSON; folded in by FOLD_DUE and by every reader.
fn legacy_open_field(tier: &Tier) -> String {
    format!("open{}", tier.index())
}

/// The string holding the open bucket of each rollup tier, packed (see BUCKETS).
fn open_key(id: &str) -> String {
    sub_key(id, OPEN)
}

/// The newest report of a machine (see `Writer::record_batch`).
fn state_key(id: &str) -> String {
    sub_key(id, STATE)
}

/// The hash of samples recorded but not yet folded into the history tiers by the previous
/// version (entries without a raw point, see `Unfolded`); read and folded until it is gone.
fn log_key(id: &str) -> String {
    sub_key(id, LOG)
}

/// The hash of samples recorded but not yet folded into the history tiers, raw tier
/// included (see `Unfolded` and FOLD_DUE).
fn samples_key(id: &str) -> String {
    sub_key(id, SAMPLES)
}

/// The machine-hash fields that make its record (`decode_machine`); the others are history
/// bookkeeping that record reads need not carry. `report` and `ts` are there only when written by a version before `@state`
/// (or a node of it during a rolling upgrade): the newer of the two reports counts.
const RECORD_FIELDS: [&str; 6] = [
    "report",
    "ts",
    "first_seen",
    "last_seen",
    "key",
    "offline_since",
];

/// The newest report in a machine's `@state`, from a `ZRANGE … -1 -1 WITHSCORES`.
fn newest_state(top: Vec<(String, f64)>) -> Option<(String, Millis)> {
    top.into_iter().next().map(|(r, t)| (r, t as Millis))
}

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
    sub_key(id, tier.name)
}

/// Lua for rollup buckets and the log, shared by FOLD_DUE and IMPORT; it needs the tier
/// constants (`fold_constants`) before it. A bucket is the array {t, n, cpu_sum, cpu_max,
/// mem_sum, load_sum, disk_max, rx, tx}: in a tier's sorted set a JSON object with those names
/// (`Rollup`), in the `@open` string 9 little-endian doubles per rollup tier (n = 0: none),
/// which `open_buckets` in Rust reads back. A log entry (`@samples`, and `@log` of the previous
/// version) is a bucket of the reports with one timestamp (normally one): field the
/// timestamp, value the bucket without `t` as eight little-endian doubles (`ENTRY`); in
/// `@samples` followed by the raw point's JSON (`sample_entry`).
///
/// Every byte that enters Lua (an argument, a reply) is hashed when Redis makes it a Lua
/// string, and every number printed with `%.17g` costs as much as a small Redis command: what
/// keeps a fold cheap is touching few values, not fewer lines of Lua.
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
-- A log entry as a bucket at time t.
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
-- Fold a machine's logs into its history tiers, with the open buckets in `@open` and those a
-- version before it left (`legacy`: the `open1`, `open2` fields' values), and trim the raw
-- tier. keys: machine, one history key per tier, `@open`, `@log`, `@samples`. Raw points of
-- `@samples` go into the raw set (`@log` is the previous version's: its raw points are
-- there already). Per rollup tier the newest bucket stays open in `@open` and older ones go
-- into the set, as the previous version keeps them (it still merges into them during an
-- upgrade). Each sample is in exactly one of the logs, `@open`, `open1`/`open2` and the
-- sets, so nothing is counted twice.
local function fold(keys, legacy, now, trim)
  local groups = {{}, {}}
  local w1, w2 = TIERS[2][1], TIERS[3][1]
  local h0, h1, h2 = now - TIERS[1][2], now - TIERS[2][2], now - TIERS[3][2]
  local raw = {}
  for k = 6, 7 do
    local log = redis.call('HGETALL', keys[k])
    if #log > 0 then redis.call('DEL', keys[k]) end
    for j = 1, #log, 2 do
      local t, e = tonumber(log[j]), log[j + 1]
      local ok, n, cpu, cpu_max, mem, load, disk, rx, tx = pcall(struct.unpack, ENTRY, e)
      -- An entry that is not one is dropped (readers report it while it is there).
      if t and ok and type(tx) == 'number' then
        if t >= h1 then absorb(groups[1], t - t % w1, n, cpu, cpu_max, mem, load, disk, rx, tx) end
        if t >= h2 then absorb(groups[2], t - t % w2, n, cpu, cpu_max, mem, load, disk, rx, tx) end
        if k == 7 and t >= h0 and #e > 64 then
          raw[#raw + 1] = log[j]
          raw[#raw + 1] = string.sub(e, 65)
        end
      end
    end
  end
  -- In slices: `unpack` has a limit on how many values it spreads.
  for j = 1, #raw, 512 do
    redis.call('ZADD', keys[2], unpack(raw, j, math.min(j + 511, #raw)))
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

/// The most reports in one pipeline. Redis answers a pipeline's commands in one go, so this
/// bounds how long a batch holds up other clients (~10 µs of Redis time a report).
const RECORD_BATCH: usize = 32;

/// Pipelines in flight at once: while one runs in Redis the next is sent, and the reports
/// that arrive meanwhile form the one after. Two, not four: `ROUTES=report scripts/bench`,
/// 2026-12-07 night, measured 0.68 / 0.67 / 0.70 of the reference (one machine, 10,000,
/// HAProxy → 3) with two and 0.68 / 0.55 / 0.70 with four, whose batches are half as big.
const RECORD_IN_FLIGHT: usize = 2;

/// KEYS: `@unfolded`. ARGV: the most machines to fold, then maybe machine ids. Without ids,
/// folds the log of every machine whose oldest unfolded sample is in a minute that is over
/// (its `@unfolded` score, the minute's start, before the current minute on Redis's clock;
/// or 0: a busy log), at most ARGV[1] of them; with ids, folds those. Either way takes them
/// off `@unfolded`, and returns how many it folded: the caller calls again while that is the
/// limit. Nodes call it on a timer (`FOLD_EVERY`) and after a batch with a busy machine, and
/// with ids after a batch with a late report; two nodes calling at once fold different
/// machines, since each call takes its machines off the set atomically.
///
/// A report writes its log entry before its `@unfolded` mark, in one pipeline on one
/// connection: a fold that runs between the two folds the entry, and the mark that follows
/// only costs one empty fold later. Fields the previous version kept in the machine hash
/// (`open1`, `open2`: folded in; `logt`, `logn`, `rawt`) are deleted on the way.
const FOLD_DUE: &str = r#"
local now = now_ms()
local minute = now - now % TIERS[2][1]
local due = {unpack(ARGV, 2)}
if #due == 0 then
  due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ms(minute), 'LIMIT', '0', ARGV[1])
end
if #due == 0 then return 0 end
local trim = trims(now)
for _, id in ipairs(due) do
  local machine = PREFIX .. id
  local old = redis.call('HMGET', machine, 'open1', 'open2', 'logt', 'logn', 'rawt')
  local keys = {machine}
  for i, suffix in ipairs(FOLD_KEYS) do keys[i + 1] = machine .. suffix end
  fold(keys, {old[1], old[2]}, now, trim)
  if old[1] or old[2] or old[3] or old[4] or old[5] then
    redis.call('HDEL', machine, 'open1', 'open2', 'logt', 'logn', 'rawt')
  end
end
redis.call('ZREM', KEYS[1], unpack(due))
return #due
"#;

/// The most machines one `FOLD_DUE` call folds. Redis runs one script at a time: a fold of an
/// agent's minute is ~50 µs (of `LOG_MAX` reports a few hundred), so a call holds up other
/// clients for a millisecond or a few.
const FOLD_BATCH: usize = 16;

/// How often each node looks for minutes that are over. The readers merge what is not folded
/// yet, so this only bounds how long a minute's samples wait in the log (and the raw tier
/// past its count bound, which readers cut).
const FOLD_EVERY: Duration = Duration::from_secs(10);

/// How far back `changed_since` tells the next reader to look again: a report's `last_seen`
/// is this node's estimate of Redis's clock when its batch was formed (`StoreClock`), and its
/// pipeline reaches Redis moments later (behind at most one other batch or fold: about a
/// millisecond). Every machine changed within the overlap is read again on every refresh, so
/// it is kept short: a pipeline that reaches Redis later still (Redis stalled for a second)
/// can leave a known machine's previous report in a node's index until its next report; a
/// new machine is not lost, since the index reads everything again when the count differs.
const SINCE_OVERLAP_MS: Millis = 1_000;

/// The tier table and the key names as Lua constants, for the scripts that fold (`fold` in
/// BUCKETS): `TIERS[i]` is {bucket, retention, cap} of `TIERS[i - 1]`; `FOLD_KEYS` the
/// suffixes of the keys `fold` takes after the machine's own (its tiers, `@open`, `@log`,
/// `@samples`).
fn fold_constants() -> String {
    let tiers: Vec<String> = TIERS
        .iter()
        .map(|t| format!("{{{}, {}, {}}}", t.bucket_ms, t.retention_ms, t.max_points))
        .collect();
    let fold_keys: Vec<String> = TIERS
        .iter()
        .map(|t| t.name)
        .chain([OPEN, LOG, SAMPLES])
        .map(|name| format!("'@{name}'"))
        .collect();
    format!(
        "local TIERS = {{{}}}\nlocal PREFIX = '{PREFIX}'\nlocal FOLD_KEYS = {{{}}}\n",
        tiers.join(", "),
        fold_keys.join(", ")
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

/// KEYS: index. ARGV: silence (ms), the key prefix. Marks every machine silent that long
/// `offline_since` now, once per silence; returns the ids it marked. Reports do not delete
/// the mark (one command less per report): a mark older than `last_seen` is from a silence
/// that ended, and counts as none (`offline_mark`). Versions before deleted it on report.
const MARK_OFFLINE: &str = r#"
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[1])))
local marked = {}
for _, id in ipairs(ids) do
  local key = ARGV[2] .. id
  local cur = redis.call('HMGET', key, 'last_seen', 'offline_since')
  if cur[1] and ((not cur[2]) or tonumber(cur[2]) <= tonumber(cur[1])) then
    redis.call('HSET', key, 'offline_since', now)
    table.insert(marked, id)
  end
end
return marked
"#;

/// A machine's `offline_since` as its hash holds it: a mark at or before `last_seen` is from
/// a silence that ended (see MARK_OFFLINE).
fn offline_mark(offline_since: Option<&String>, last_seen: Millis) -> Option<Millis> {
    offline_since
        .and_then(|v| v.parse().ok())
        .filter(|&t| t > last_seen)
}

/// KEYS: index, `@unfolded`. ARGV: silence (ms), the key prefix, then the suffixes of a
/// machine's other keys. Deletes every machine silent that long; returns their ids.
const FORGET: &str = r#"
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[1])))
for _, id in ipairs(ids) do
  local key = ARGV[2] .. id
  redis.call('DEL', key)
  for i = 3, #ARGV do redis.call('DEL', key .. '@' .. ARGV[i]) end
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
return ids
"#;

/// KEYS: index, machine, one history key per tier, `@open`, `@log`, `@state`, `@samples`. ARGV: machine id, report
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
fold({KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[9]}, {cur[2], cur[3]}, now,
  trims(now))
-- The open buckets too: below, each bucket is one point, the fuller one winning; the newest
-- of each rollup tier goes back to `@open` at the end, where the fold (and the previous
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
  redis.call('DEL', KEYS[8])
  redis.call('ZADD', KEYS[8], ARGV[3], ARGV[2])
  redis.call('HDEL', KEYS[2], 'report', 'ts')
  redis.call('HSET', KEYS[2], 'key', ARGV[4], 'first_seen', ARGV[5], 'last_seen', ARGV[6])
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

/// One report queued for the batch writer, encoded and sealed by the caller's task (so the
/// batch only assembles commands).
struct PendingReport {
    id: String,
    /// The report as stored: JSON, sealed when `storage.encrypt_reports`.
    report: String,
    /// The report's timestamp (ms, agent clock).
    measured: Millis,
    /// The API key's name as stored (sealed when a keyring is configured).
    key_name: String,
    /// The sample as an entry of the machine's `@samples` (`sample_entry`).
    entry: Vec<u8>,
}

/// A log entry's bucket: eight little-endian doubles, a bucket without its time.
const ENTRY_BYTES: usize = 64;

/// A sample as an entry of its machine's `@samples`: its bucket packed as the fold unpacks
/// it (`ENTRY`, `struct.unpack('<dddddddd')`, so Lua reads it without parsing text and merges
/// a resent report into it like any bucket), followed by its raw-tier point as JSON, which
/// the fold adds to the raw tier as it is (the same bytes a resend or the previous version
/// writes, so `ZADD` keeps one).
fn sample_entry(s: &Sample) -> Result<Vec<u8>, serde_json::Error> {
    let r = Rollup::of_sample(s);
    let mut out = Vec::with_capacity(ENTRY_BYTES + 192);
    let numbers = [
        r.n as f64, r.cpu_sum, r.cpu_max, r.mem_sum, r.load_sum, r.disk_max, r.rx, r.tx,
    ];
    for n in numbers {
        out.extend_from_slice(&n.to_le_bytes());
    }
    serde_json::to_writer(&mut out, &r)?;
    Ok(out)
}

/// A machine's samples that are not folded into its history sets yet, each a hash field
/// timestamp → entry: `@samples` (this version: the packed bucket, then the raw point as
/// JSON, `sample_entry`; the raw point is in no set until the fold) and `@log` (the previous
/// version: the packed bucket only, its raw point already in the raw set).
#[derive(Default)]
struct Unfolded {
    log: HashMap<String, Vec<u8>>,
    samples: HashMap<String, Vec<u8>>,
}

impl Unfolded {
    /// The buckets of the entries, each with whether its raw point is pending too.
    fn buckets(&self) -> Result<Vec<(Rollup, bool)>, String> {
        let parse = |(t, entry): (&String, &Vec<u8>), pending_raw: bool| {
            let t: Millis = t
                .parse()
                .map_err(|_| format!("history log entry {t:?} is not a timestamp"))?;
            let exact = !pending_raw;
            if entry.len() < ENTRY_BYTES || (exact && entry.len() != ENTRY_BYTES) {
                return Err(format!(
                    "history log entry {t} is {} bytes, not {}{ENTRY_BYTES}",
                    entry.len(),
                    if exact { "" } else { "at least " }
                ));
            }
            let bucket = packed_bucket(t, &le_doubles(&entry[..ENTRY_BYTES]));
            Ok((bucket, pending_raw && entry.len() > ENTRY_BYTES))
        };
        let log = self.log.iter().map(|e| parse(e, false));
        let samples = self.samples.iter().map(|e| parse(e, true));
        log.chain(samples).collect()
    }
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

/// A tier's points that are not in its sorted set yet, merged per bucket: for the raw tier,
/// the samples of `@samples`; for a rollup tier, every unfolded sample (`unfolded`, from
/// `Unfolded::buckets`, read once for all tiers) and the open buckets kept in the `@open`
/// string (`packed`) and, by a version before it, in the hash field `open1`/`open2`
/// (`legacy`).
fn pending_points(
    tier: &Tier,
    unfolded: &[(Rollup, bool)],
    packed: Option<&[u8]>,
    legacy: Option<&str>,
) -> Result<Vec<Rollup>, String> {
    if tier.bucket_ms == 0 {
        let raw = unfolded.iter().filter(|(_, raw)| *raw).map(|&(r, _)| r);
        return Ok(merged(raw.collect()));
    }
    let mut out = open_buckets(tier, packed, legacy)?;
    for &(mut r, _) in unfolded {
        r.t = tier.bucket_start(r.t);
        out.push(r);
    }
    Ok(merged(out))
}

/// The most bytes a number takes as a Redis argument (`i64::MIN`).
const NUMBER: usize = 20;

/// A command with room for `args` more arguments of `bytes` bytes in all, so its buffers are
/// allocated once: `redis::cmd` grows them argument by argument, several reallocations for
/// a report (a few per cent of the node's time per report in a perf profile).
fn sized_cmd(name: &str, args: usize, bytes: usize) -> redis::Cmd {
    let mut c = redis::Cmd::with_capacity(1 + args, name.len() + bytes);
    c.arg(name);
    c
}

/// Redis's clock as this node estimates it between round trips: the local clock plus the
/// offset the last `TIME` reply showed. Reports are written with plain commands, which cannot
/// read Redis's clock themselves; every batch's pipeline ends with `TIME`, so the estimate is
/// at most one round trip (and a local clock step) off.
#[derive(Default)]
struct StoreClock {
    /// Redis's clock minus the local one (ms); `i64::MIN` until the first `TIME`.
    offset: AtomicI64,
}

impl StoreClock {
    fn local_ms() -> Millis {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as Millis)
    }

    fn new() -> StoreClock {
        StoreClock {
            offset: AtomicI64::new(i64::MIN),
        }
    }

    fn now(&self) -> Option<Millis> {
        let offset = self.offset.load(Ordering::Relaxed);
        (offset != i64::MIN).then(|| Self::local_ms() + offset)
    }

    fn observe(&self, redis_ms: Millis) {
        self.offset
            .store(redis_ms - Self::local_ms(), Ordering::Relaxed);
    }
}

/// A machine whose log holds this many reports is folded at once, in the background, not
/// when its minute is over (an agent reporting more than once a second, or a flood of
/// resends): it bounds the log, the raw tier's run past its count bound (readers cut it), and
/// what one fold costs.
pub const LOG_MAX: u16 = 64;

/// What this node wrote in the current minute (of Redis's clock as it estimates it),
/// forgotten when the next one starts. Several nodes each keep their own.
///
/// - Reports per machine, counted in slots by a hash of the machine id (a machine sharing
///   its slot is folded early now and then; harmless), so a busy machine is folded every
///   `LOG_MAX` reports without asking Redis how long its log is: a log grows to at most
///   `LOG_MAX` per node.
/// - The machines whose `first_seen` this node has set (`HSETNX`, a no-op but for a
///   machine's first report) in a pipeline that succeeded, by a 64-bit hash of the id: their
///   later reports this minute skip it. A machine whose hash was deleted meanwhile (`forget`
///   with a `forget_after` under a minute) or whose id shares a hash with one in the set
///   (about one chance in 10⁹ with 100,000 machines) then has a record without
///   `first_seen` until its first report of the next minute, read as first seen at its
///   `last_seen` (`decode_machine`).
struct ThisMinute {
    minute: Millis,
    counts: Vec<u16>,
    first_seen: HashSet<u64>,
    hasher: std::hash::RandomState,
}

impl ThisMinute {
    const SLOTS: usize = 1 << 16;

    fn new() -> ThisMinute {
        ThisMinute {
            minute: 0,
            counts: vec![0; Self::SLOTS],
            first_seen: HashSet::new(),
            hasher: std::hash::RandomState::new(),
        }
    }

    /// Counts one report of `id` in `minute`. Returns whether the machine's log is due now,
    /// and the id's hash when the report must set `first_seen` (see `set_first_seen`).
    fn count(&mut self, id: &str, minute: Millis) -> (bool, Option<u64>) {
        use std::hash::BuildHasher;
        if minute != self.minute {
            self.minute = minute;
            self.counts.fill(0);
            self.first_seen.clear();
        }
        let hash = self.hasher.hash_one(id);
        let needs_first_seen = (!self.first_seen.contains(&hash)).then_some(hash);
        let slot = &mut self.counts[hash as usize % Self::SLOTS];
        *slot += 1;
        if *slot >= LOG_MAX {
            *slot = 0;
            return (true, needs_first_seen);
        }
        (false, needs_first_seen)
    }

    /// `first_seen` of these machines (hashes from `count` in `minute`) is set.
    fn set_first_seen(&mut self, minute: Millis, hashes: impl Iterator<Item = u64>) {
        if minute == self.minute {
            self.first_seen.extend(hashes);
        }
    }
}

/// What the report path needs, shared by the batch writer and the fold timer.
struct Writer {
    redis: Redis,
    clock: StoreClock,
    fold_due: Script,
    this_minute: std::sync::Mutex<ThisMinute>,
    /// A background fold (`fold_due_soon`) is running.
    folding: AtomicBool,
}

impl Writer {
    /// Redis's clock: the estimate, or one `TIME` round trip before the first batch.
    async fn now(&self) -> Result<Millis, Unavailable> {
        match self.clock.now() {
            Some(now) => Ok(now),
            None => {
                let now = self.redis.now_ms().await?;
                self.clock.observe(now);
                Ok(now)
            }
        }
    }

    /// One `FOLD_DUE` call: the due machines (no `ids`), or `ids`; returns how many it folded.
    async fn fold_call(&self, what: &str, ids: &[&str]) -> Result<usize, Unavailable> {
        let mut inv = self.fold_due.prepare_invoke();
        inv.key(UNFOLDED).arg(FOLD_BATCH).arg(ids);
        self.redis
            .call(what, |mut c| async move { inv.invoke_async(&mut c).await })
            .await
    }

    /// Folds every machine whose log is due (`FOLD_DUE`); returns how many. A burst (every
    /// machine's minute ends at once) is folded in calls of `FOLD_BATCH` machines with a pause
    /// as long as each call between them, so reports keep at least half of Redis meanwhile.
    async fn fold_due(&self) -> Result<usize, Unavailable> {
        let mut total = 0;
        loop {
            let started = std::time::Instant::now();
            let n = self.fold_call("fold reports into the history", &[]).await?;
            total += n;
            if n < FOLD_BATCH {
                return Ok(total);
            }
            tokio::time::sleep(started.elapsed()).await;
        }
    }

    /// Folds the logs of `ids` now (a late report's minute is over).
    async fn fold_ids(&self, ids: &[&str]) -> Result<(), Unavailable> {
        for chunk in ids.chunks(FOLD_BATCH) {
            self.fold_call("fold late reports into the history", chunk)
                .await?;
        }
        Ok(())
    }

    /// Folds what is due in the background, unless this node is folding already (that fold
    /// takes what is due when it asks next).
    fn fold_due_soon(self: &Arc<Self>) {
        if self.folding.swap(true, Ordering::AcqRel) {
            return;
        }
        let writer = self.clone();
        tokio::spawn(async move {
            if let Err(e) = writer.fold_due().await {
                tracing::warn!("{e}; the timer folds these reports later");
            }
            writer.folding.store(false, Ordering::Release);
        });
    }

    /// Records `batch` in one pipeline; one result per report, in order.
    ///
    /// Per report, plain commands (no script: a Lua call costs Redis more than all of these
    /// together, see docs/performance.md):
    /// - `ZADD @state ts report` and `ZREMRANGEBYRANK @state 0 -2`: the newest report by
    ///   timestamp stays, whatever order reports arrive in and whichever node writes them;
    /// - `HSET` of `last_seen` and `key`, and `HSETNX first_seen` unless this node set it
    ///   this minute (`ThisMinute`; an `offline_since` older than `last_seen` is from a
    ///   silence that ended, see MARK_OFFLINE);
    /// - `HSET @samples ts entry`: the sample (its bucket and its raw point, `sample_entry`)
    ///   waits there until its minute is folded into every history tier (`FOLD_DUE`);
    ///   readers merge it meanwhile. A resend of the same report writes the same entry. (The
    ///   raw point used to be a `ZADD` of its own: folding it costs Redis less than the
    ///   command, see docs/performance.md.)
    ///
    /// Per batch: the index (`last_seen` of every machine), the API keys' last use, the
    /// `@unfolded` marks (`ZADD LT`: a machine's mark is the minute of its oldest unfolded
    /// sample) and `TIME` for the clock. Reports out of the accepted time range are refused
    /// before anything is written. Commands of one pipeline run in order but not as one
    /// step: a report cut off half-way by a failure is answered with the error, and the
    /// agent's resend writes the same values again.
    async fn record_batch(self: &Arc<Self>, batch: Vec<PendingReport>) -> Vec<StoreResult<Millis>> {
        let now = match self.now().await {
            Ok(now) => now,
            Err(e) => {
                let e = StoreError::from(e);
                return batch.iter().map(|_| Err(e.clone())).collect();
            }
        };
        let this_minute = TIERS[1].bucket_start(now);
        let mut answers = Vec::with_capacity(batch.len());
        let mut pipe = redis::Pipeline::with_capacity(batch.len() * 5 + 4);
        let ids: usize = batch.iter().map(|p| p.id.len()).sum();
        let key_names: usize = batch.iter().map(|p| p.key_name.len()).sum();
        let n = batch.len();
        let mut index = sized_cmd("ZADD", 1 + 2 * n, INDEX.len() + n * NUMBER + ids);
        index.arg(INDEX);
        let mut used = sized_cmd("HSET", 1 + 2 * n, KEYS.len() + n * NUMBER + key_names);
        used.arg(KEYS);
        let mut unfolded = sized_cmd("ZADD", 2 + 2 * n, UNFOLDED.len() + 2 + n * NUMBER + ids);
        unfolded.arg(UNFOLDED).arg("LT");
        // After this pipeline: fold a report's minute that is over before answering, and a
        // busy log in the background.
        let (mut late, mut busy_log) = (Vec::new(), false);
        let mut key = String::with_capacity(PREFIX.len() + 80);
        let counted: Vec<(bool, Option<u64>)> = {
            let mut counts = self.this_minute.lock().unwrap_or_else(|e| e.into_inner());
            batch
                .iter()
                .map(|p| counts.count(&p.id, this_minute))
                .collect()
        };
        let mut first_seen_set = Vec::new();
        let mut key_names_used: Vec<&str> = Vec::new();
        for (p, &(busy, first_seen)) in batch.iter().zip(&counted) {
            let ts = p.measured;
            if ts > now + MAX_CLOCK_SKEW_MS || ts < now - HISTORY_SPAN_MS {
                answers.push(Err(StoreError::OutOfRange { now }));
                continue;
            }
            answers.push(Ok(now));
            // The machine's key names (`machine_key`, `sub_key`) in one buffer, not one
            // allocation each: `<prefix><id>`, then `@<name>` pushed and cut off again.
            key.clear();
            key.push_str(PREFIX);
            key.push_str(&p.id);
            let machine = key.len();
            let sub = |key: &mut String, name: &str| {
                key.truncate(machine);
                key.push('@');
                key.push_str(name);
            };
            sub(&mut key, STATE);
            let mut c = sized_cmd("ZADD", 3, key.len() + NUMBER + p.report.len());
            c.arg(&key).arg(ts).arg(&p.report);
            pipe.add_command(c).ignore();
            let mut c = sized_cmd("ZREMRANGEBYRANK", 3, key.len() + 3);
            c.arg(&key).arg(0).arg(-2);
            pipe.add_command(c).ignore();
            key.truncate(machine);
            let mut c = sized_cmd("HSET", 5, key.len() + 12 + NUMBER + p.key_name.len());
            c.arg(&key)
                .arg("last_seen")
                .arg(now)
                .arg("key")
                .arg(&p.key_name);
            pipe.add_command(c).ignore();
            if let Some(hash) = first_seen {
                let mut c = sized_cmd("HSETNX", 3, key.len() + 10 + NUMBER);
                c.arg(&key).arg("first_seen").arg(now);
                pipe.add_command(c).ignore();
                first_seen_set.push(hash);
            }
            sub(&mut key, SAMPLES);
            let mut c = sized_cmd("HSET", 3, key.len() + NUMBER + p.entry.len());
            c.arg(&key).arg(ts).arg(&p.entry);
            pipe.add_command(c).ignore();
            index.arg(now).arg(&p.id);
            // Each key once: a fleet's reports mostly share a few keys.
            if !key_names_used.contains(&p.key_name.as_str()) {
                key_names_used.push(&p.key_name);
                used.arg(&p.key_name).arg(now);
            }
            let minute = TIERS[1].bucket_start(ts);
            if busy {
                unfolded.arg(0).arg(&p.id); // due now
                busy_log = true;
            } else {
                unfolded.arg(minute).arg(&p.id);
                if minute < this_minute {
                    late.push(p.id.as_str());
                }
            }
        }
        if answers.iter().all(Result::is_err) {
            return answers;
        }
        // After every log entry of the batch (see FOLD_DUE).
        pipe.add_command(index).ignore();
        pipe.add_command(used).ignore();
        pipe.add_command(unfolded).ignore();
        pipe.cmd("TIME");
        let reply: Result<((Millis, Millis),), Unavailable> = self
            .redis
            .call("record reports", |mut c| async move {
                pipe.query_async(&mut c).await
            })
            .await;
        match reply {
            Ok(((secs, micros),)) => {
                self.clock.observe(secs * 1000 + micros / 1000);
                self.this_minute
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .set_first_seen(this_minute, first_seen_set.into_iter());
            }
            Err(e) => {
                let e = StoreError::from(e);
                for a in answers.iter_mut().filter(|a| a.is_ok()) {
                    *a = Err(e.clone());
                }
                return answers;
            }
        }
        // A report for a minute that is over (a resend after an outage, a clock behind) is
        // folded now rather than at the next tick, so its minute is final when it is answered.
        // A busy log is folded without holding up the answers.
        // Only the late machines: at a minute's end every machine is due, and those are the
        // timer's (a report stamped in the minute's last moment is late by then).
        if !late.is_empty() {
            late.sort_unstable();
            late.dedup();
            if let Err(e) = self.fold_ids(&late).await {
                tracing::warn!("{e}; the timer folds these reports later");
            }
        }
        if busy_log {
            self.fold_due_soon();
        }
        answers
    }
}

/// Every `FOLD_EVERY`, fold the minutes that are over (each node does; see FOLD_DUE).
async fn fold_timer(writer: Arc<Writer>) {
    let mut tick = tokio::time::interval(FOLD_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = writer.fold_due().await {
            tracing::debug!("{e}; folding again in {FOLD_EVERY:?}");
        }
    }
}

pub struct RedisFleetStore {
    /// The shared connection handle (deadlines, reconnects, Sentinel failover): a node that
    /// starts while Redis is down still serves, and reports get 503 until Redis is back.
    redis: Redis,
    /// Seals key names, and reports when `storage.encrypt_reports`.
    sealing: Sealing,
    /// Group commit of reports: one pipeline for the reports that arrive together.
    recorder: Batcher<PendingReport, StoreResult<Millis>>,
    /// Folds finished minutes into the rollup tiers; stopped with the store.
    fold_timer: tokio::task::JoinHandle<()>,
    changed: Script,
    mark_offline: Script,
    forget: Script,
    import: Script,
    import_keys: Script,
}

impl Drop for RedisFleetStore {
    fn drop(&mut self) {
        self.fold_timer.abort();
    }
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
        let writer = Arc::new(Writer {
            redis: redis.clone(),
            clock: StoreClock::new(),
            fold_due: script(&format!("{}{BUCKETS}{FOLD_DUE}", fold_constants())),
            this_minute: std::sync::Mutex::new(ThisMinute::new()),
            folding: AtomicBool::new(false),
        });
        let fold_timer = tokio::spawn(fold_timer(writer.clone()));
        let recorder = Batcher::spawn(RECORD_BATCH, RECORD_IN_FLIGHT, move |batch| {
            let writer = writer.clone();
            async move { writer.record_batch(batch).await }
        });
        Ok(RedisFleetStore {
            redis,
            sealing,
            recorder,
            fold_timer,
            changed: script(CHANGED),
            mark_offline: script(MARK_OFFLINE),
            forget: script(FORGET),
            import: script(&format!("{}{BUCKETS}{IMPORT}", fold_constants())),
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
                pipe.zrange_withscores(state_key(id), -1, -1);
            }
            #[allow(clippy::type_complexity)]
            let rows: Vec<(Vec<Option<String>>, Vec<(String, f64)>)> = self
                .call("read machines", |mut c| async move {
                    pipe.query_async(&mut c).await
                })
                .await?;
            for (id, (fields, state)) in chunk.iter().zip(rows) {
                let fields = record_fields(fields);
                if fields.is_empty() {
                    continue; // forgotten between the two reads, or never there
                }
                match self.decode_machine(id, &fields, newest_state(state)) {
                    Ok(r) => machines.push(r),
                    Err(p) => problems.push((id.clone(), p.message())),
                }
            }
        }
        Ok((machines, problems))
    }

    /// A machine's record from its hash `fields` and the newest report in its `@state`.
    fn decode_machine(
        &self,
        id: &str,
        fields: &HashMap<String, String>,
        state: Option<(String, Millis)>,
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
        // A report in the hash is from an earlier version; it counts only when newer.
        let legacy = fields.get("report").map(|r| {
            let ts = fields.get("ts").and_then(|t| t.parse::<Millis>().ok());
            (r, ts.unwrap_or(Millis::MIN))
        });
        let stored = match (&state, legacy) {
            (Some((_, t)), Some((r, legacy_t))) if legacy_t > *t => r,
            (Some((r, _)), _) => r,
            (None, Some((r, _))) => r,
            (None, None) => {
                return Err(UnreadableReport::Corrupt(format!(
                    "machine {id}: no report (`@state` empty, field `report` missing)"
                )));
            }
        };
        let report = self.sealing.open_report(id, stored)?;
        let api_key = match fields.get("key") {
            Some(k) => self
                .sealing
                .open_key_name(k, &format!("machine {id}"))
                .map_err(UnreadableReport::Sealed)?,
            None => String::new(),
        };
        let last_seen = num("last_seen")?;
        // A report skips `first_seen` when its node set it this minute; a record without it
        // (forgotten and back within the minute, see `ThisMinute`) was first seen now.
        let first_seen = match fields.contains_key("first_seen") {
            true => num("first_seen")?,
            false => last_seen,
        };
        Ok(MachineRecord {
            report,
            first_seen,
            last_seen,
            api_key,
            offline_since: offline_mark(fields.get("offline_since"), last_seen),
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
        let entry = sample_entry(&s)
            .map_err(|e| StoreError::Config(format!("cannot encode a history point: {e}")))?;
        let pending = PendingReport {
            report: self.sealing.seal_report(&report.machine_id, report)?,
            id: report.machine_id.clone(),
            measured,
            key_name: self.sealing.key_name(api_key),
            entry,
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
            // A report's `last_seen` is its node's estimate of this clock, taken moments
            // before its pipeline reaches Redis (see SINCE_OVERLAP_MS).
            next_since: now - SINCE_OVERLAP_MS,
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
        let mut pipe = redis::pipe();
        pipe.hmget(machine_key(machine_id), &RECORD_FIELDS)
            .zrange_withscores(state_key(machine_id), -1, -1);
        let (values, state): (Vec<Option<String>>, Vec<(String, f64)>) = self
            .call("read machine", |mut c| async move {
                pipe.query_async(&mut c).await
            })
            .await?;
        let fields = record_fields(values);
        if fields.is_empty() {
            return Ok(None);
        }
        super::machine_or_absent(
            BackendKind::Redis,
            machine_id,
            self.decode_machine(machine_id, &fields, newest_state(state)),
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
        pipe.hgetall(samples_key(machine_id));
        pipe.cmd("TIME");
        #[allow(clippy::type_complexity)]
        let (members, packed, legacy, log, samples, (secs, micros)): (
            Vec<String>,
            Option<Vec<u8>>,
            Option<String>,
            HashMap<String, Vec<u8>>,
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
        let pending = Unfolded { log, samples }
            .buckets()
            .and_then(|unfolded| {
                pending_points(&tier, &unfolded, packed.as_deref(), legacy.as_deref())
            })
            .map_err(|e| self.corrupt(format!("machine {machine_id}: {e}")))?;
        points.extend(
            pending
                .into_iter()
                .filter(|r| r.t >= from && r.t <= to && r.t >= now - tier.retention_ms),
        );
        let mut points = merged(points);
        // Until a fold the raw tier can run past its count bound (see FOLD_DUE).
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
        pipe.hgetall(samples_key(machine_id));
        for tier in &TIERS[1..] {
            pipe.hget(machine_key(machine_id), legacy_open_field(tier));
        }
        pipe.cmd("TIME");
        #[allow(clippy::type_complexity)]
        let (a, a_top, b, b_top, d, d_top, packed, log, samples, o1, o2, (secs, micros)): (
            usize,
            Vec<(String, f64)>,
            usize,
            Vec<(String, f64)>,
            usize,
            Vec<(String, f64)>,
            Option<Vec<u8>>,
            HashMap<String, Vec<u8>>,
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
        let unfolded = Unfolded { log, samples }
            .buckets()
            .map_err(|e| self.corrupt(format!("machine {machine_id}: {e}")))?;
        // Per tier: the set's size, and the pending points' times that may be in the set
        // already (at or before its newest point; newer ones are new).
        let mut counts = [0usize; 3];
        let mut maybe: Vec<(usize, Millis)> = Vec::new();
        for (i, tier) in TIERS.iter().enumerate() {
            let pending = pending_points(tier, &unfolded, packed.as_deref(), legacy[i].as_deref())
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
            .key(UNFOLDED)
            .arg(silent_for.as_millis() as i64)
            .arg(PREFIX);
        // Every key of a machine besides its hash: the history tiers, both logs, the open
        // buckets and the newest report.
        for tier in &TIERS {
            inv.arg(tier.name);
        }
        inv.arg(LOG).arg(SAMPLES).arg(OPEN).arg(STATE);
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
                    .hget(machine_key(id), "key")
                    .zrange(state_key(id), -1, -1);
            }
            #[allow(clippy::type_complexity)]
            let stored: Vec<(Option<String>, Option<String>, Vec<String>)> = self
                .call("read reports", |mut c| async move {
                    pipe.query_async(&mut c).await
                })
                .await?;
            for (id, (legacy, key, state)) in chunk.iter().zip(stored) {
                let state = state.into_iter().next();
                if legacy.is_none() && state.is_none() {
                    continue;
                }
                let key = key.unwrap_or_default();
                count.examined += 1;
                // Each stored report (the newest, and one an earlier version left in the
                // hash) with the key name: the key name is re-sealed along with either.
                let mut new = [(String::new(), String::new()), Default::default()];
                let mut unreadable = false;
                let mut changed = false;
                for (i, report) in [&legacy, &state].into_iter().enumerate() {
                    let Some(report) = report else { continue };
                    match self.sealing.reseal_machine(id, report, &key) {
                        Ok(None) => new[i] = (report.clone(), key.clone()),
                        Ok(Some(resealed)) => {
                            new[i] = resealed;
                            changed = true;
                        }
                        Err(()) => unreadable = true,
                    }
                }
                if unreadable {
                    count.unreadable += 1;
                    continue;
                }
                if !changed {
                    continue;
                }
                let new_key = if state.is_some() {
                    &new[1].1
                } else {
                    &new[0].1
                };
                let written: i64 = self
                    .call("re-seal report", |mut c| {
                        let mut inv = reseal.prepare_invoke();
                        inv.key(machine_key(id))
                            .key(state_key(id))
                            .arg(legacy.as_deref().unwrap_or(""))
                            .arg(&new[0].0)
                            .arg(&key)
                            .arg(new_key)
                            .arg(state.as_deref().unwrap_or(""))
                            .arg(&new[1].0);
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
            pipe.get(open_key(id))
                .hgetall(log_key(id))
                .hgetall(samples_key(id));
        }
        for id in &ids {
            pipe.zrange_withscores(state_key(id), -1, -1);
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
        let (pending, rest) = rest.split_at(ids.len() * 3);
        let (states, time) = rest.split_at(ids.len());
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
            let state: Vec<(String, f64)> =
                redis::from_redis_value_ref(&states[i]).map_err(bad_reply)?;
            let record = match self.decode_machine(id, &fields, newest_state(state)) {
                Ok(r) => r,
                Err(p) => {
                    page.unreadable.push(p.message());
                    continue;
                }
            };
            let packed: Option<Vec<u8>> =
                redis::from_redis_value_ref(&pending[i * 3]).map_err(bad_reply)?;
            let unfolded = Unfolded {
                log: redis::from_redis_value_ref(&pending[i * 3 + 1]).map_err(bad_reply)?,
                samples: redis::from_redis_value_ref(&pending[i * 3 + 2]).map_err(bad_reply)?,
            }
            .buckets();
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
                let legacy = legacy.map(String::as_str);
                let pending = unfolded
                    .as_ref()
                    .map_err(String::clone)
                    .and_then(|u| pending_points(tier, u, packed.as_deref(), legacy));
                match pending {
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
            inv.key(open_key(&m.machine_id))
                .key(log_key(&m.machine_id))
                .key(state_key(&m.machine_id))
                .key(samples_key(&m.machine_id));
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

    /// Entries as `@samples` holds them.
    fn samples_of(points: &[(Millis, f64)]) -> Unfolded {
        let samples = points
            .iter()
            .map(|&(t, cpu)| (t.to_string(), sample_entry(&sample(t, cpu)).unwrap()))
            .collect();
        Unfolded {
            samples,
            ..Unfolded::default()
        }
    }

    #[test]
    fn an_entry_reads_back_as_the_bucket_of_its_sample_and_its_raw_point() {
        let s = sample(120_500, 12.5);
        let unfolded = samples_of(&[(120_500, 12.5)]);
        assert_eq!(unfolded.buckets().unwrap(), [(Rollup::of_sample(&s), true)]);
        let entry = &unfolded.samples["120500"];
        // After the packed bucket: the raw point exactly as the raw set holds it.
        let raw = serde_json::to_string(&Rollup::of_sample(&s)).unwrap();
        assert_eq!(&entry[ENTRY_BYTES..], raw.as_bytes());
        // The previous version's log: the packed bucket alone, its raw point already set.
        let log = Unfolded {
            log: HashMap::from([("120500".to_string(), entry[..ENTRY_BYTES].to_vec())]),
            ..Unfolded::default()
        };
        assert_eq!(log.buckets().unwrap(), [(Rollup::of_sample(&s), false)]);
    }

    #[test]
    fn a_damaged_log_entry_is_an_error_naming_it() {
        let unfolded = |log: Vec<(&str, Vec<u8>)>, samples: Vec<(&str, Vec<u8>)>| {
            let map = |v: Vec<(&str, Vec<u8>)>| v.into_iter().map(|(t, e)| (t.into(), e)).collect();
            Unfolded {
                log: map(log),
                samples: map(samples),
            }
        };
        let e = unfolded(vec![("5", vec![0; 10])], vec![])
            .buckets()
            .unwrap_err();
        assert!(e.contains("history log entry 5 is 10 bytes, not 64"), "{e}");
        let e = unfolded(vec![("5", vec![0; 70])], vec![])
            .buckets()
            .unwrap_err();
        assert!(e.contains("history log entry 5 is 70 bytes, not 64"), "{e}");
        let e = unfolded(vec![], vec![("5", vec![0; 10])])
            .buckets()
            .unwrap_err();
        assert!(e.contains("entry 5 is 10 bytes, not at least 64"), "{e}");
        let e = unfolded(vec![], vec![("soon", vec![0; ENTRY_BYTES])])
            .buckets()
            .unwrap_err();
        assert!(e.contains("\"soon\" is not a timestamp"), "{e}");
    }

    #[test]
    fn pending_points_merge_the_logs_and_the_open_bucket_per_bucket() {
        let mut unfolded = samples_of(&[(60_000, 10.0), (125_000, 50.0)]);
        let previous = samples_of(&[(61_000, 30.0)]).samples;
        unfolded.log = previous
            .into_iter()
            .map(|(t, e)| (t, e[..ENTRY_BYTES].to_vec()))
            .collect();
        let unfolded = unfolded.buckets().unwrap();
        let one_minute = pending_points(&TIERS[1], &unfolded, None, None).unwrap();
        let shape: Vec<(Millis, u64)> = one_minute.iter().map(|r| (r.t, r.n)).collect();
        assert_eq!(shape, [(60_000, 2), (120_000, 1)]);
        assert_eq!(one_minute[0].cpu_sum, 40.0);
        assert_eq!(one_minute[0].cpu_max, 30.0);
        // The raw tier: the raw points of `@samples`, not of the previous version's log
        // (it added them to the raw set at once).
        let raw = pending_points(&TIERS[0], &unfolded, None, None).unwrap();
        let shape: Vec<(Millis, u64)> = raw.iter().map(|r| (r.t, r.n)).collect();
        assert_eq!(shape, [(60_000, 1), (125_000, 1)]);
        // The previous version's open 10-minute bucket merges with the logs' samples.
        let mut packed = vec![0u8; 72];
        for v in [0.0, 3.0, 60.0, 20.0, 75.0, 1.5, 40.0, 1e6, 5e5] {
            packed.extend_from_slice(&f64::to_le_bytes(v));
        }
        let ten = pending_points(&TIERS[2], &unfolded, Some(&packed), None).unwrap();
        assert_eq!(ten.len(), 1);
        assert_eq!((ten[0].t, ten[0].n), (0, 6));
        assert_eq!(ten[0].cpu_max, 50.0);
    }
}
