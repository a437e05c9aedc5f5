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
//!   newest raw point's time, a cache), and from versions before `@open` maybe `open1`,
//!   `open2` (see RECORD)
//! - `{fleet}:m:<id>@<tier>`    ZSET of rollups (JSON), scored by bucket start, one per tier
//!   (for `1m` and `10m`: the closed buckets; the open one is in `@open`)
//! - `{fleet}:m:<id>@open`      STRING: the newest bucket of the `1m` and `10m` tiers while
//!   reports merge into it, packed as doubles (see BUCKETS); expires with the longest retention
//!   after its newest bucket opened
//!
//! Every write is one Lua script, so a report is recorded (latest state, history merge and
//! trim, key use) atomically and with Redis's own clock (`TIME`). `mark_offline` and `forget`
//! build machine keys from the index they declare; the shared `{fleet}` hash tag keeps those
//! keys in the declared key's slot, as Redis Cluster requires.

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
        let v: Vec<f64> = bytes
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                f64::from_le_bytes(b)
            })
            .collect();
        if v[1] > 0.0 {
            out.push(Rollup {
                t: v[0] as Millis,
                n: v[1] as u64,
                cpu_sum: v[2],
                cpu_max: v[3],
                mem_sum: v[4],
                load_sum: v[5],
                disk_max: v[6],
                rx: v[7],
                tx: v[8],
            });
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

fn tier_key(id: &str, tier: &Tier) -> String {
    format!("{PREFIX}{id}@{}", tier.name)
}

/// Lua for rollup buckets, shared by RECORD and IMPORT. A bucket is the array {t, n,
/// cpu_sum, cpu_max, mem_sum, load_sum, disk_max, rx, tx}; in a tier's sorted set it is a JSON
/// object with those names (`Rollup`), in the `@open` string 9 little-endian doubles per rollup
/// tier (n = 0: no open bucket), which `open_buckets` in Rust reads back.
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
-- %.17g, not cjson.encode: cjson keeps 14 digits, which would round the sums.
local function json_of_bucket(b)
  return string.format('{"t":%.17g,"n":%.17g,"cpu_sum":%.17g,"cpu_max":%.17g,' ..
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
-- Spelled out: building an argument table first costs a tenth of the whole script.
local function packed_buckets(open)
  local a, b = open[1] or NONE, open[2] or NONE
  return struct.pack(PACKED, a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9],
    b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9])
end
"#;

/// Records a batch of reports in one call (group commit: `record` queues each report on the
/// store's `Batcher`, and the reports that queue while a call is in flight go in the next).
/// KEYS: index, key usage, then per report: machine, one history key per tier, open buckets.
/// ARGV per report: machine id, report (JSON, maybe sealed), its timestamp, key name (maybe
/// sealed), the sample's six numbers packed as little-endian doubles (`packed_sample`) and
/// the sample as a raw-tier point (JSON). Returns the store clock, then per report 1
/// (recorded) or 0 (timestamp out of range: nothing written for it). Reports are applied in
/// order, so two of one machine in a batch behave as two calls. The tier table and the time
/// bounds are Lua constants (`record_constants`).
///
/// What keeps it cheap (Redis time per report is the ceiling of report ingestion, see
/// docs/performance.md): a call's fixed cost — the script's set-up, `TIME`, the index and
/// key-use writes, the reply — is paid once per batch (callgrind: ~74,000 of ~247,000
/// instructions per report when each report was its own call); the newest bucket of each
/// rollup tier stays in the `@open` string, packed as doubles, while reports merge into it
/// (no JSON per report), and moves to the tier's sorted set as JSON when a later bucket
/// starts; the sample arrives packed (no `strtod` per number) and the raw point encoded by
/// the node; `rawt` (the newest raw point's time) tells that a report is newer than every
/// raw point, so the common case needs no lookup for a point to merge with; and times go to
/// Redis as strings made with `ms`; the trims' bounds are strings made once per batch, the
/// helpers are made once per batch (not per report), and the `@open` string's expiry is set
/// only when a bucket opens. A late report for an older bucket merges into the sorted set
/// directly.
///
/// `open1` / `open2` are the open buckets as JSON fields, as versions before the `@open`
/// string kept them: a node of such a version may still write them during a rolling upgrade,
/// so they are folded in here (and by every reader) and deleted. Nodes of the version before
/// this one record one report per call with their own script, on the same keys.
const RECORD: &str = r#"
local now = now_ms()
local now_s = ms(now)
local index, used = {}, {}
-- Per tier, for this batch: the bounds of its trims, as the strings Redis takes.
local HORIZON, RANK = {}, {}
for i = 1, 3 do
  HORIZON[i] = '(' .. ms(now - TIERS[i][2])
  RANK[i] = {[0] = ms(-TIERS[i][3] - 1), [1] = ms(-TIERS[i][3])}
end
-- Drop tier i's points older than its retention and all but its newest `cap - keep`.
local function trim(key, i, keep)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', HORIZON[i])
  redis.call('ZREMRANGEBYRANK', key, '0', RANK[i][keep])
end
local function put(fields, f, v) fields[#fields + 1] = f; fields[#fields + 1] = v end
local function sample(t, cpu, mem, load, disk, rx, tx)
  return {t, 1, cpu, cpu, mem, load, disk, rx, tx}
end
-- Merge a bucket into the sorted set's point at its time, or add it (then trim).
local function into_set(key, b, i, keep)
  local t = ms(b[1])
  local old = redis.call('ZRANGEBYSCORE', key, t, t)
  if #old > 0 then
    redis.call('ZREM', key, old[1])
    local p = bucket_of_json(old[1])
    if p then merge(b, p) end
    redis.call('ZADD', key, t, json_of_bucket(b))
  else
    redis.call('ZADD', key, t, json_of_bucket(b))
    trim(key, i, keep)
  end
end
-- One report: its keys from KEYS[k + 1], its arguments from ARGV[a + 1].
local function record(k, a)
  local ts = tonumber(ARGV[a + 3])
  if ts > now + SKEW or ts < now - SPAN then
    return 0
  end
  local machine, open_key = KEYS[k + 1], KEYS[k + 5]
  local cur = redis.call('HMGET', machine, 'ts', 'offline_since', 'rawt', 'open1', 'open2')
  local fields = {'last_seen', now_s, 'key', ARGV[a + 4]}
  local gone = {}
  if not cur[1] then put(fields, 'first_seen', now_s) end
  if (not cur[1]) or tonumber(cur[1]) <= ts then
    put(fields, 'report', ARGV[a + 2]); put(fields, 'ts', ARGV[a + 3])
  end
  if cur[2] then gone[#gone + 1] = 'offline_since' end
  index[#index + 1] = now_s; index[#index + 1] = ARGV[a + 1]
  used[ARGV[a + 4]] = true
  local cpu, mem, load, disk, rx, tx = struct.unpack('<dddddd', ARGV[a + 5])
  local raw_horizon = now - TIERS[1][2]
  if ts >= raw_horizon then
    local key = KEYS[k + 2]
    local last = tonumber(cur[3])
    if not last then
      local top = redis.call('ZRANGE', key, '-1', '-1', 'WITHSCORES')
      last = tonumber(top[2] or -1)
    end
    if ts > last then
      redis.call('ZADD', key, ARGV[a + 3], ARGV[a + 6])
      trim(key, 1, 0)
      put(fields, 'rawt', ARGV[a + 3])
    else
      into_set(key, sample(ts, cpu, mem, load, disk, rx, tx), 1, 0)
      if not cur[3] then put(fields, 'rawt', ms(last)) end
    end
  end
  local packed = redis.call('GET', open_key)
  local open = open_buckets(packed)
  -- The expiry moves on when a bucket opens (once a minute at most), not on every report:
  -- renewing it every time cost ~5 % of RECORD's instructions (callgrind).
  local renew = not packed
  for i = 1, 2 do
    local key = KEYS[k + 2 + i]
    local bucket, horizon = TIERS[1 + i][1], now - TIERS[1 + i][2]
    if cur[3 + i] then
      gone[#gone + 1] = 'open' .. i
      local legacy, b = bucket_of_json(cur[3 + i]), open[i]
      if legacy and not b then
        open[i] = legacy
      elseif legacy and legacy[1] == b[1] then
        merge(b, legacy)
      elseif legacy and legacy[1] < b[1] then
        into_set(key, legacy, 1 + i, 1)
      elseif legacy then
        into_set(key, b, 1 + i, 1)
        open[i] = legacy
      end
    end
    if ts >= horizon then
      local b, s = open[i], sample(ts - (ts % bucket), cpu, mem, load, disk, rx, tx)
      if b and b[1] == s[1] then
        merge(b, s)
      elseif (not b) or s[1] > b[1] then
        if b then
          redis.call('ZADD', key, ms(b[1]), json_of_bucket(b))
          trim(key, 1 + i, 1)
        end
        open[i] = s
        renew = true
      else
        into_set(key, s, 1 + i, 1)
      end
    end
  end
  if renew then
    redis.call('SET', open_key, packed_buckets(open), 'PX', LONGEST)
  else
    redis.call('SET', open_key, packed_buckets(open), 'KEEPTTL')
  end
  redis.call('HSET', machine, unpack(fields))
  if #gone > 0 then redis.call('HDEL', machine, unpack(gone)) end
  return 1
end
local out = {now}
for r = 0, (#KEYS - 2) / KEYS_PER_REPORT - 1 do
  out[r + 2] = record(2 + r * KEYS_PER_REPORT, r * ARGS_PER_REPORT)
end
-- Once per batch: every report of the batch was recorded at `now`.
if #index > 0 then redis.call('ZADD', KEYS[1], unpack(index)) end
local usage = {}
for name in pairs(used) do usage[#usage + 1] = name; usage[#usage + 1] = now_s end
if #usage > 0 then redis.call('HSET', KEYS[2], unpack(usage)) end
return out
"#;

/// RECORD's keys and arguments per report (after the batch's two shared keys).
const KEYS_PER_REPORT: usize = 5;
const ARGS_PER_REPORT: usize = 6;

/// The most reports in one RECORD call. Redis runs one script at a time, so this bounds how
/// long a batch holds up every other client of the store (~50 µs of Redis time a report).
const RECORD_BATCH: usize = 32;

/// RECORD calls in flight at once: while one runs in Redis, the next is being sent and the
/// one after is forming.
const RECORD_IN_FLIGHT: usize = 4;

/// RECORD with what it needs, without the shared prelude (`benches/record-script.sh` runs
/// it through `examples/record_lua.rs`).
pub fn record_lua() -> String {
    format!("{BUCKETS}{}{RECORD}", record_constants())
}

/// The tier table and the time bounds of RECORD as Lua constants, so a report's call carries
/// and parses none of them: `TIERS[i]` is {bucket, retention, cap} of `TIERS[i - 1]`.
fn record_constants() -> String {
    let tiers: Vec<String> = TIERS
        .iter()
        .map(|t| format!("{{{}, {}, {}}}", t.bucket_ms, t.retention_ms, t.max_points))
        .collect();
    let longest = TIERS.iter().map(|t| t.retention_ms).max().unwrap_or(0);
    format!(
        "local TIERS = {{{}}}\nlocal SKEW, SPAN, LONGEST = {MAX_CLOCK_SKEW_MS}, {HISTORY_SPAN_MS}, '{longest}'\n\
         local KEYS_PER_REPORT, ARGS_PER_REPORT = {KEYS_PER_REPORT}, {ARGS_PER_REPORT}\n",
        tiers.join(", ")
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

/// KEYS: index, machine, one history key per tier, open buckets. ARGV: machine id, report
/// (maybe sealed), its timestamp, key name (maybe sealed), first_seen, last_seen,
/// offline_since ('' for none), then per tier: retention, cap, the number of points and that
/// many (t, n, JSON) triples. The record is written when its `last_seen` is at least the
/// stored one; per bucket the point with more samples wins (ties: incoming). Point JSON is
/// stored as given (never re-encoded by cjson, which would round the sums), and the newest
/// bucket of each rollup tier goes to the `@open` string, as RECORD keeps it.
const IMPORT: &str = r#"
local now = now_ms()
local seen = tonumber(ARGV[6])
local cur = redis.call('HMGET', KEYS[2], 'last_seen', 'open1', 'open2')
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
local open = open_buckets(redis.call('GET', KEYS[6]))
local longest = 0
local a = 8
for i = 0, 2 do
  local key = KEYS[3 + i]
  local horizon = now - tonumber(ARGV[a])
  local cap = tonumber(ARGV[a + 1])
  local count = tonumber(ARGV[a + 2])
  longest = math.max(longest, tonumber(ARGV[a]))
  a = a + 3
  -- Per bucket start: the samples, and the point as JSON (s) or as a bucket (b, from `@open`).
  local points = {}
  local function offer(t, n, s, b)
    local e = points[t]
    if (not e) or n >= e.n then points[t] = {n = n, s = s, b = b} end
  end
  local function offer_json(s)
    local b = bucket_of_json(s)
    if b then offer(b[1], b[2], s) end
  end
  for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do offer_json(m) end
  if i > 0 then
    if open[i] then offer(open[i][1], open[i][2], nil, open[i]) end
    if cur[1 + i] then offer_json(cur[1 + i]) end
  end
  for _ = 1, count do
    offer(tonumber(ARGV[a]), tonumber(ARGV[a + 1]), ARGV[a + 2])
    a = a + 3
  end
  local ts = {}
  for t, _ in pairs(points) do
    if t >= horizon then table.insert(ts, t) end
  end
  table.sort(ts)
  local first, last = math.max(1, #ts - cap + 1), #ts
  redis.call('DEL', key)
  if i > 0 then
    open[i] = nil
    if last >= first then
      local e = points[ts[last]]
      open[i] = e.b or bucket_of_json(e.s)
      last = last - 1
    end
  end
  for j = first, last do
    local e = points[ts[j]]
    redis.call('ZADD', key, ts[j], e.s or json_of_bucket(e.b))
  end
end
if open[1] or open[2] then
  redis.call('SET', KEYS[6], packed_buckets(open), 'PX', longest)
else
  redis.call('DEL', KEYS[6])
end
-- The raw set was rewritten: RECORD finds its newest point again.
redis.call('HDEL', KEYS[2], 'open1', 'open2', 'rawt')
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
    sample: [u8; 48],
    /// The sample as a raw-tier point (JSON).
    raw_point: String,
}

/// A sample's six numbers as RECORD unpacks them (`struct.unpack('<dddddd')`): Lua reads
/// them without parsing text.
fn packed_sample(s: &Sample) -> [u8; 48] {
    let mut out = [0u8; 48];
    let numbers = [
        s.cpu_percent,
        s.memory_percent,
        s.load1,
        s.disk_percent,
        s.rx_bytes,
        s.tx_bytes,
    ];
    for (chunk, n) in out.chunks_exact_mut(8).zip(numbers) {
        chunk.copy_from_slice(&n.to_le_bytes());
    }
    out
}

/// One RECORD call for `batch`; one result per report, in order.
async fn record_batch(
    redis: &Redis,
    record: &Script,
    batch: Vec<PendingReport>,
) -> Vec<StoreResult<Millis>> {
    let mut inv = record.prepare_invoke();
    inv.key(INDEX).key(KEYS);
    for p in &batch {
        inv.key(machine_key(&p.id));
        for tier in &TIERS {
            inv.key(tier_key(&p.id, tier));
        }
        inv.key(open_key(&p.id));
    }
    for p in &batch {
        inv.arg(&p.id)
            .arg(&p.report)
            .arg(p.measured)
            .arg(&p.key_name)
            .arg(&p.sample[..])
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
            import: script(&format!("{BUCKETS}{IMPORT}")),
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
            sample: packed_sample(&s),
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
        pipe.cmd("TIME");
        #[allow(clippy::type_complexity)]
        let (members, packed, legacy, (secs, micros)): (
            Vec<String>,
            Option<Vec<u8>>,
            Option<String>,
            (i64, i64),
        ) = self
            .call("read history", |mut c| async move {
                pipe.query_async(&mut c).await
            })
            .await?;
        let now = secs * 1000 + micros / 1000;
        let parse = |m: &str| {
            serde_json::from_str::<Rollup>(m).map_err(|e| {
                self.corrupt(format!(
                    "machine {machine_id}: history point {m:?} is not readable: {e}"
                ))
            })
        };
        let mut points = members
            .iter()
            .map(|m| parse(m).map(|r| r.point()))
            .collect::<StoreResult<Vec<_>>>()?;
        // The open bucket is newer than every point of the set (see RECORD).
        if tier.bucket_ms > 0 {
            let open = open_buckets(&tier, packed.as_deref(), legacy.as_deref())
                .map_err(|e| self.corrupt(format!("machine {machine_id}: {e}")))?;
            for r in open {
                if r.t >= from && r.t <= to && r.t >= now - tier.retention_ms {
                    points.push(r.point());
                }
            }
            points.sort_by_key(|p| p.t);
        }
        Ok(points)
    }

    async fn history_len(&self, machine_id: &str) -> StoreResult<[usize; 3]> {
        let mut pipe = redis::pipe();
        for tier in &TIERS {
            pipe.zcard(tier_key(machine_id, tier));
        }
        pipe.get(open_key(machine_id));
        for tier in &TIERS[1..] {
            pipe.hget(machine_key(machine_id), legacy_open_field(tier));
        }
        pipe.cmd("TIME");
        #[allow(clippy::type_complexity)]
        let (a, b, d, packed, o1, o2, (secs, micros)): (
            usize,
            usize,
            usize,
            Option<Vec<u8>>,
            Option<String>,
            Option<String>,
            (i64, i64),
        ) = self
            .call("count history", |mut c| async move {
                pipe.query_async(&mut c).await
            })
            .await?;
        let now = secs * 1000 + micros / 1000;
        let open = |o: Option<String>, tier: &Tier| {
            open_buckets(tier, packed.as_deref(), o.as_deref())
                .unwrap_or_default()
                .iter()
                .filter(|r| r.t >= now - tier.retention_ms)
                .count()
        };
        Ok([a, b + open(o1, &TIERS[1]), d + open(o2, &TIERS[2])])
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
        // Every key of a machine besides its hash: the history tiers and the open buckets.
        for tier in &TIERS {
            inv.arg(tier.name);
        }
        inv.arg("open");
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
            pipe.get(open_key(id));
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
        let (opens, time) = rest.split_at(ids.len());
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
                redis::from_redis_value_ref(&opens[i]).map_err(bad_reply)?;
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
                if t > 0 {
                    let legacy = fields.get(&legacy_open_field(tier));
                    match open_buckets(tier, packed.as_deref(), legacy.map(String::as_str)) {
                        Ok(open) => history[t].extend(open),
                        Err(e) => broken = Some(format!("machine {id}: {e}")),
                    }
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
            inv.key(open_key(&m.machine_id));
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
