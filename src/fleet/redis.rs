//! The Redis fleet store: shared by every node of a cluster, so a machine reported to one
//! node is visible on all of them at once.
//!
//! Key layout (owned here; nothing else spells a key). Everything lives under `fleet:m:` in
//! the storage database (`storage.redis.db`, default 2); `@` cannot occur in a machine id,
//! so machine keys and the bookkeeping keys never collide:
//! - `fleet:m:@index`         ZSET machine id → last_seen (ms, Redis clock)
//! - `fleet:m:@keys`          HASH API key name → last use (ms)
//! - `fleet:m:<id>`           HASH report (JSON), ts, first_seen, last_seen, key, offline_since
//! - `fleet:m:<id>@<tier>`    ZSET of rollups (JSON), scored by bucket start, one per tier
//!
//! Every write is one Lua script, so a report is recorded (latest state, history merge and
//! trim, key use) atomically and with Redis's own clock (`TIME`). The scripts build machine
//! keys from a prefix passed in, so this standalone-Redis layout is not Redis Cluster safe.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, IntoConnectionInfo, Script};
use tokio::sync::Mutex;
use tracing::warn;

use super::{
    FleetStore, HistoryPoint, KeyUsage, MachineRecord, Millis, Report, Rollup, Snapshot,
    StoreError, StoreResult, TIERS, Tier, sample_of,
};
use crate::config::{BackendKind, StorageConfig};

const PREFIX: &str = "fleet:m:";
const INDEX: &str = "fleet:m:@index";
const KEYS: &str = "fleet:m:@keys";

fn machine_key(id: &str) -> String {
    format!("{PREFIX}{id}")
}

fn tier_key(id: &str, tier: &Tier) -> String {
    format!("{PREFIX}{id}@{}", tier.name)
}

const RECORD: &str = r#"
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local ts = tonumber(ARGV[3])
local prev = redis.call('HGET', KEYS[2], 'ts')
if (not prev) or tonumber(prev) <= ts then
  redis.call('HSET', KEYS[2], 'report', ARGV[2], 'ts', ARGV[3])
end
redis.call('HSETNX', KEYS[2], 'first_seen', now)
redis.call('HSET', KEYS[2], 'last_seen', now, 'key', ARGV[4])
redis.call('HDEL', KEYS[2], 'offline_since')
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[3], ARGV[4], now)
local cpu, mem, load = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local disk, rx, tx = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
for i = 0, 2 do
  local key = KEYS[4 + i]
  local bucket = tonumber(ARGV[11 + 3 * i])
  local horizon = now - tonumber(ARGV[12 + 3 * i])
  local cap = tonumber(ARGV[13 + 3 * i])
  if ts >= horizon then
    local bt = ts
    if bucket > 0 then bt = ts - (ts % bucket) end
    local old = redis.call('ZRANGEBYSCORE', key, bt, bt)
    local p
    if #old > 0 then
      p = cjson.decode(old[1])
      redis.call('ZREMRANGEBYSCORE', key, bt, bt)
      p.n = p.n + 1
      p.cpu_sum = p.cpu_sum + cpu
      p.cpu_max = math.max(p.cpu_max, cpu)
      p.mem_sum = p.mem_sum + mem
      p.load_sum = p.load_sum + load
      p.disk_max = math.max(p.disk_max, disk)
      p.rx = math.max(p.rx, rx)
      p.tx = math.max(p.tx, tx)
    else
      p = {t = bt, n = 1, cpu_sum = cpu, cpu_max = cpu, mem_sum = mem, load_sum = load,
           disk_max = disk, rx = rx, tx = tx}
    end
    redis.call('ZADD', key, bt, cjson.encode(p))
  end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. horizon)
  redis.call('ZREMRANGEBYRANK', key, 0, -(cap + 1))
end
return now
"#;

const MARK_OFFLINE: &str = r#"
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
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
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[1])))
for _, id in ipairs(ids) do
  local key = ARGV[2] .. id
  redis.call('DEL', key)
  for i = 3, #ARGV do redis.call('DEL', key .. '@' .. ARGV[i]) end
  redis.call('ZREM', KEYS[1], id)
end
return ids
"#;

pub struct RedisFleetStore {
    info: redis::ConnectionInfo,
    location: String,
    /// Connected lazily and kept: a node that starts while Redis is down still serves, and
    /// the connection manager reconnects on its own once it has connected once.
    conn: Mutex<Option<ConnectionManager>>,
    record: Script,
    mark_offline: Script,
    forget: Script,
}

impl RedisFleetStore {
    pub async fn open(config: &StorageConfig) -> StoreResult<RedisFleetStore> {
        let r = &config.redis;
        // The config loader has already resolved the password from the environment or
        // `password_file` (config::secrets).
        let password = r.password.clone();
        let db = config.redis_db();
        let info = (r.host.as_str(), r.port)
            .into_connection_info()
            .map_err(|e| StoreError::Config(format!("storage.redis: {e}")))?;
        let mut settings = info.redis_settings().clone().set_db(db);
        if let Some(p) = password {
            settings = settings.set_password(p);
        }
        let info = info.set_redis_settings(settings);
        let store = RedisFleetStore {
            info,
            location: format!("redis://{}:{}/{db}", r.host, r.port),
            conn: Mutex::new(None),
            record: Script::new(RECORD),
            mark_offline: Script::new(MARK_OFFLINE),
            forget: Script::new(FORGET),
        };
        if let Err(e) = store.con().await {
            warn!(error = %e, "fleet store not reachable yet; reports fail with 503 until it is");
        }
        Ok(store)
    }

    fn unavailable(&self, message: impl std::fmt::Display) -> StoreError {
        StoreError::Unavailable {
            backend: BackendKind::Redis,
            location: self.location.clone(),
            message: message.to_string(),
        }
    }

    async fn con(&self) -> StoreResult<ConnectionManager> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let client = redis::Client::open(self.info.clone()).map_err(|e| self.unavailable(e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let c = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|e| self.unavailable(e))?;
        *guard = Some(c.clone());
        Ok(c)
    }

    fn decode_machine(
        &self,
        id: &str,
        fields: &HashMap<String, String>,
    ) -> Result<MachineRecord, String> {
        let num = |k: &str| -> Result<Millis, String> {
            fields
                .get(k)
                .ok_or_else(|| format!("machine {id}: field `{k}` missing"))?
                .parse()
                .map_err(|e| format!("machine {id}: field `{k}` is not a number: {e}"))
        };
        let report: Report = serde_json::from_str(
            fields
                .get("report")
                .ok_or_else(|| format!("machine {id}: field `report` missing"))?,
        )
        .map_err(|e| format!("machine {id}: stored report is not readable: {e}"))?;
        Ok(MachineRecord {
            report,
            first_seen: num("first_seen")?,
            last_seen: num("last_seen")?,
            api_key: fields.get("key").cloned().unwrap_or_default(),
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
        self.location.clone()
    }

    async fn now(&self) -> StoreResult<Millis> {
        let mut c = self.con().await?;
        let (secs, micros): (i64, i64) = redis::cmd("TIME")
            .query_async(&mut c)
            .await
            .map_err(|e| self.unavailable(e))?;
        Ok(secs * 1000 + micros / 1000)
    }

    async fn record(&self, report: &Report, api_key: &str) -> StoreResult<Millis> {
        let json = serde_json::to_string(report)
            .map_err(|e| StoreError::Config(format!("cannot encode the report: {e}")))?;
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
            .arg(api_key)
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
        let mut c = self.con().await?;
        inv.invoke_async(&mut c)
            .await
            .map_err(|e| self.unavailable(e))
    }

    async fn machines(&self) -> StoreResult<Snapshot> {
        let mut c = self.con().await?;
        let now = self.now().await?;
        let ids: Vec<String> = c
            .zrange(INDEX, 0, -1)
            .await
            .map_err(|e| self.unavailable(e))?;
        let mut snap = Snapshot {
            now,
            ..Snapshot::default()
        };
        // One round trip per chunk, not per machine.
        for chunk in ids.chunks(500) {
            let mut pipe = redis::pipe();
            for id in chunk {
                pipe.hgetall(machine_key(id));
            }
            let rows: Vec<HashMap<String, String>> = pipe
                .query_async(&mut c)
                .await
                .map_err(|e| self.unavailable(e))?;
            for (id, fields) in chunk.iter().zip(rows) {
                if fields.is_empty() {
                    continue; // forgotten between the two reads
                }
                match self.decode_machine(id, &fields) {
                    Ok(r) => snap.machines.push(r),
                    Err(p) => snap.problems.push(p),
                }
            }
        }
        Ok(snap)
    }

    async fn machine(&self, machine_id: &str) -> StoreResult<Option<MachineRecord>> {
        let mut c = self.con().await?;
        let fields: HashMap<String, String> = c
            .hgetall(machine_key(machine_id))
            .await
            .map_err(|e| self.unavailable(e))?;
        if fields.is_empty() {
            return Ok(None);
        }
        self.decode_machine(machine_id, &fields)
            .map(Some)
            .map_err(|m| self.unavailable(m))
    }

    async fn history(
        &self,
        machine_id: &str,
        tier: Tier,
        from: Millis,
        to: Millis,
    ) -> StoreResult<Vec<HistoryPoint>> {
        let mut c = self.con().await?;
        let members: Vec<String> = c
            .zrangebyscore(tier_key(machine_id, &tier), from, to)
            .await
            .map_err(|e| self.unavailable(e))?;
        members
            .iter()
            .map(|m| {
                serde_json::from_str::<Rollup>(m)
                    .map(|r| r.point())
                    .map_err(|e| self.unavailable(format!("corrupt history point {m}: {e}")))
            })
            .collect()
    }

    async fn history_len(&self, machine_id: &str) -> StoreResult<[usize; 3]> {
        let mut c = self.con().await?;
        let mut pipe = redis::pipe();
        for tier in &TIERS {
            pipe.zcard(tier_key(machine_id, tier));
        }
        let (a, b, d): (usize, usize, usize) = pipe
            .query_async(&mut c)
            .await
            .map_err(|e| self.unavailable(e))?;
        Ok([a, b, d])
    }

    async fn mark_offline(&self, silent_for: Duration) -> StoreResult<Vec<String>> {
        let mut c = self.con().await?;
        self.mark_offline
            .key(INDEX)
            .arg(silent_for.as_millis() as i64)
            .arg(PREFIX)
            .invoke_async(&mut c)
            .await
            .map_err(|e| self.unavailable(e))
    }

    async fn forget(&self, silent_for: Duration) -> StoreResult<Vec<String>> {
        let mut c = self.con().await?;
        let mut inv = self.forget.prepare_invoke();
        inv.key(INDEX)
            .arg(silent_for.as_millis() as i64)
            .arg(PREFIX);
        for tier in &TIERS {
            inv.arg(tier.name);
        }
        inv.invoke_async(&mut c)
            .await
            .map_err(|e| self.unavailable(e))
    }

    async fn key_usage(&self) -> StoreResult<Vec<KeyUsage>> {
        let mut c = self.con().await?;
        let map: HashMap<String, Millis> =
            c.hgetall(KEYS).await.map_err(|e| self.unavailable(e))?;
        let mut v: Vec<KeyUsage> = map
            .into_iter()
            .map(|(name, last_used)| KeyUsage { name, last_used })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }
}
