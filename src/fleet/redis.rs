//! The Redis fleet store: shared by every node of a cluster, so a machine reported to one
//! node is visible on all of them at once.
//!
//! Key layout (owned here; nothing else spells a key). Everything lives under `{fleet}:m:` in
//! the storage database (`storage.redis.db`, default 2); `@` cannot occur in a machine id,
//! so machine keys and the bookkeeping keys never collide:
//! - `{fleet}:m:@index`         ZSET machine id → last_seen (ms, Redis clock)
//! - `{fleet}:m:@keys`          HASH API key name (sealed, see `Sealing`) → last use (ms)
//! - `{fleet}:m:<id>`           HASH report (JSON, maybe sealed), ts, first_seen, last_seen,
//!   key (the API key name, sealed like the `@keys` fields), offline_since, and `open1`,
//!   `open2`: the newest bucket of the `1m` and `10m` tiers while reports merge into it
//! - `{fleet}:m:<id>@<tier>`    ZSET of rollups (JSON), scored by bucket start, one per tier
//!   (for `1m` and `10m`: the closed buckets; the open one is in the machine hash)
//!
//! Every write is one Lua script, so a report is recorded (latest state, history merge and
//! trim, key use) atomically and with Redis's own clock (`TIME`). `mark_offline` and `forget`
//! build machine keys from the index they declare; the shared `{fleet}` hash tag keeps those
//! keys in the declared key's slot, as Redis Cluster requires.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};

use super::report::MAX_CLOCK_SKEW_MS;
use super::{
    Changes, ExportPage, FleetStore, HISTORY_SPAN_MS, HistoryPoint, KeyUsage, MachineDump,
    MachineRecord, Millis, RESEAL_BATCH, Report, ResealCount, ResealProgress, Rollup, Sealing,
    Snapshot, StoreError, StoreResult, TIERS, Tier, UnreadableReport, merge_key_usage,
    open_key_usage, sample_of, trim_history,
};
use crate::config::{BackendKind, StorageConfig};
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

/// The machine-hash field holding a rollup tier's open (newest) bucket.
fn open_field(tier: &Tier) -> String {
    format!("open{}", tier.index())
}

fn tier_key(id: &str, tier: &Tier) -> String {
    format!("{PREFIX}{id}@{}", tier.name)
}

/// KEYS: index, machine, key usage, then one history key per tier. ARGV: machine id, report
/// (JSON, maybe sealed), its timestamp, key name (maybe sealed), the six sample numbers,
/// (bucket, retention, cap) per tier, the allowed clock skew and the history span.
///
/// The newest bucket of each rollup tier stays in the machine hash (`open<i>`) while reports
/// merge into it, and moves to the tier's sorted set when a later bucket starts: most reports
/// then cost no sorted-set work for the rollup tiers at all (10 commands instead of 22). A
/// late report for an older bucket merges into the sorted set directly.
const RECORD: &str = r#"
local now = now_ms()
local ts = tonumber(ARGV[3])
if ts > now + tonumber(ARGV[20]) or ts < now - tonumber(ARGV[21]) then
  return {0, now}
end
local cur = redis.call('HMGET', KEYS[2], 'ts', 'offline_since', 'open1', 'open2')
local fields = {'last_seen', now, 'key', ARGV[4]}
if not cur[1] then
  table.insert(fields, 'first_seen'); table.insert(fields, now)
end
if (not cur[1]) or tonumber(cur[1]) <= ts then
  table.insert(fields, 'report'); table.insert(fields, ARGV[2])
  table.insert(fields, 'ts'); table.insert(fields, ARGV[3])
end
if cur[2] then redis.call('HDEL', KEYS[2], 'offline_since') end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[3], ARGV[4], now)
local cpu, mem, load = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local disk, rx, tx = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local function merged(p)
  p.n = p.n + 1
  p.cpu_sum = p.cpu_sum + cpu
  p.cpu_max = math.max(p.cpu_max, cpu)
  p.mem_sum = p.mem_sum + mem
  p.load_sum = p.load_sum + load
  p.disk_max = math.max(p.disk_max, disk)
  p.rx = math.max(p.rx, rx)
  p.tx = math.max(p.tx, tx)
  return p
end
local function fresh(bt)
  return {t = bt, n = 1, cpu_sum = cpu, cpu_max = cpu, mem_sum = mem, load_sum = load,
          disk_max = disk, rx = rx, tx = tx}
end
local function trim(key, horizon, cap, keep)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. horizon)
  redis.call('ZREMRANGEBYRANK', key, 0, -(cap - keep + 1))
end
-- Merge into the sorted set's point at bt, or add it (then trim).
local function into_set(key, bt, horizon, cap, keep)
  local old = redis.call('ZRANGEBYSCORE', key, bt, bt)
  if #old > 0 then
    redis.call('ZREM', key, old[1])
    redis.call('ZADD', key, bt, cjson.encode(merged(cjson.decode(old[1]))))
  else
    redis.call('ZADD', key, bt, cjson.encode(fresh(bt)))
    trim(key, horizon, cap, keep)
  end
end
for i = 0, 2 do
  local key = KEYS[4 + i]
  local bucket = tonumber(ARGV[11 + 3 * i])
  local horizon = now - tonumber(ARGV[12 + 3 * i])
  local cap = tonumber(ARGV[13 + 3 * i])
  if ts >= horizon then
    if bucket == 0 then
      into_set(key, ts, horizon, cap, 0)
    else
      local bt = ts - (ts % bucket)
      local open = cur[2 + i]
      local p = open and cjson.decode(open)
      if p and p.t == bt then
        table.insert(fields, 'open' .. i); table.insert(fields, cjson.encode(merged(p)))
      elseif (not p) or bt > p.t then
        if p then
          redis.call('ZADD', key, p.t, open)
          trim(key, horizon, cap, 1)
        end
        table.insert(fields, 'open' .. i); table.insert(fields, cjson.encode(fresh(bt)))
      else
        into_set(key, bt, horizon, cap, 1)
      end
    end
  end
end
redis.call('HSET', KEYS[2], unpack(fields))
return {1, now}
"#;

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

/// KEYS: index, machine, then one history key per tier. ARGV: machine id, report (maybe
/// sealed), its timestamp, key name (maybe sealed), first_seen, last_seen, offline_since (''
/// for none), then per tier: retention, cap, the number of points and that many (t, n, JSON)
/// triples. The record is written when its `last_seen` is at least the stored one; per
/// bucket the point with more samples wins (ties: incoming). Point JSON is stored as given
/// (never re-encoded by cjson, which would round the sums), and the newest bucket of each
/// rollup tier goes to its `open<i>` field, as RECORD keeps it.
const IMPORT: &str = r#"
local now = now_ms()
local seen = tonumber(ARGV[6])
local cur = redis.call('HGET', KEYS[2], 'last_seen')
if (not cur) or tonumber(cur) <= seen then
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
  local points = {}
  local function offer(t, n, s)
    local e = points[t]
    if (not e) or n >= e.n then points[t] = {n = n, s = s} end
  end
  for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    local ok, p = pcall(cjson.decode, m)
    if ok and type(p) == 'table' and p.t and p.n then offer(p.t, p.n, m) end
  end
  if i > 0 then
    local open = redis.call('HGET', KEYS[2], 'open' .. i)
    if open then
      local ok, p = pcall(cjson.decode, open)
      if ok and type(p) == 'table' and p.t and p.n then offer(p.t, p.n, open) end
    end
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
    if last >= first then
      redis.call('HSET', KEYS[2], 'open' .. i, points[ts[last]].s)
      last = last - 1
    else
      redis.call('HDEL', KEYS[2], 'open' .. i)
    end
  end
  for j = first, last do
    redis.call('ZADD', key, ts[j], points[ts[j]].s)
  end
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

pub struct RedisFleetStore {
    /// The shared connection handle (deadlines, reconnects, Sentinel failover): a node that
    /// starts while Redis is down still serves, and reports get 503 until Redis is back.
    redis: Redis,
    /// Seals key names, and reports when `storage.encrypt_reports`.
    sealing: Sealing,
    record: Script,
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
        Ok(RedisFleetStore {
            redis,
            sealing,
            record: script(RECORD),
            changed: script(CHANGED),
            mark_offline: script(MARK_OFFLINE),
            forget: script(FORGET),
            import: script(IMPORT),
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
                pipe.hgetall(machine_key(id));
            }
            let rows: Vec<HashMap<String, String>> = self
                .call("read machines", |mut c| async move {
                    pipe.query_async(&mut c).await
                })
                .await?;
            for (id, fields) in chunk.iter().zip(rows) {
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
        let json = self.sealing.seal_report(&report.machine_id, report)?;
        let measured = report.measured_at();
        let s = sample_of(report, measured);
        let id = &report.machine_id;
        let mut inv = self.record.prepare_invoke();
        inv.key(INDEX).key(machine_key(id)).key(KEYS);
        for tier in &TIERS {
            inv.key(tier_key(id, tier));
        }
        inv.arg(id)
            .arg(json)
            .arg(measured)
            .arg(self.sealing.key_name(api_key))
            .arg(s.cpu_percent)
            .arg(s.memory_percent)
            .arg(s.load1)
            .arg(s.disk_percent)
            .arg(s.rx_bytes)
            .arg(s.tx_bytes);
        for tier in &TIERS {
            inv.arg(tier.bucket_ms)
                .arg(tier.retention_ms)
                .arg(tier.max_points);
        }
        inv.arg(MAX_CLOCK_SKEW_MS).arg(HISTORY_SPAN_MS);
        let (written, now): (i64, Millis) = self
            .call("record report", |mut c| async move {
                inv.invoke_async(&mut c).await
            })
            .await?;
        if written == 1 {
            Ok(now)
        } else {
            Err(StoreError::OutOfRange { now })
        }
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
        let fields: HashMap<String, String> = self
            .call("read machine", |mut c| async move { c.hgetall(key).await })
            .await?;
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
        pipe.hget(machine_key(machine_id), open_field(&tier));
        pipe.cmd("TIME");
        let (members, open, (secs, micros)): (Vec<String>, Option<String>, (i64, i64)) = self
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
        if let Some(open) = open {
            let r = parse(&open)?;
            if r.t >= from && r.t <= to && r.t >= now - tier.retention_ms {
                points.push(r.point());
            }
        }
        Ok(points)
    }

    async fn history_len(&self, machine_id: &str) -> StoreResult<[usize; 3]> {
        let mut pipe = redis::pipe();
        for tier in &TIERS {
            pipe.zcard(tier_key(machine_id, tier));
        }
        for tier in &TIERS[1..] {
            pipe.hget(machine_key(machine_id), open_field(tier));
        }
        pipe.cmd("TIME");
        #[allow(clippy::type_complexity)]
        let (a, b, d, o1, o2, (secs, micros)): (
            usize,
            usize,
            usize,
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
            o.and_then(|o| serde_json::from_str::<Rollup>(&o).ok())
                .is_some_and(|r| r.t >= now - tier.retention_ms) as usize
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
        for tier in &TIERS {
            inv.arg(tier.name);
        }
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
        pipe.cmd("TIME");
        let replies: Vec<redis::Value> = self
            .call("export machines", |mut c| async move {
                pipe.query_async(&mut c).await
            })
            .await?;
        let bad_reply =
            |e: redis::ParsingError| StoreError::from(self.redis.unavailable("export machines", e));
        let (hashes, rest) = replies.split_at(ids.len());
        let (sets, time) = rest.split_at(ids.len() * TIERS.len());
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
            let mut history: [Vec<Rollup>; 3] = Default::default();
            let mut broken = None;
            for (t, tier) in TIERS.iter().enumerate() {
                let members: Vec<String> =
                    redis::from_redis_value_ref(&sets[i * TIERS.len() + t]).map_err(bad_reply)?;
                let open = fields.get(&open_field(tier)).filter(|_| t > 0);
                for m in members.iter().chain(open) {
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
