//! The Redis cluster backend: the registry every node on every host can reach.
//!
//! Key layout (owned by this file; nothing else spells these keys):
//!
//! | key                 | type   | content                                                  |
//! |---------------------|--------|----------------------------------------------------------|
//! | `{fleet}:nodes`     | set    | the ids of every registered node                         |
//! | `{fleet}:node:<id>` | string | the node's [`NodeRecord`] as JSON                        |
//! | `{fleet}:leader`    | string | the id of the leader; its `PX` expiry is the lease        |
//!
//! Every read-modify-write of a node runs as one Lua script, so a heartbeat can never undo a
//! drain flag an admin set in between, and every timestamp is taken inside that script from
//! `redis.call('TIME')`: the server's clock, never the calling host's.
//!
//! It must never: hang when Redis is down (the shared handle, `store::redis`, bounds every
//! call and reconnects in the background), put the password into a message, or
//! rewrite a record it could not read (scripts leave a damaged record untouched).

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::backend::{
    BackendError, BackendResult, ClusterBackend, Listing, Millis, NodeInfo, NodeRecord,
    duration_millis, validate_node_id,
};
use crate::config::{BackendKind, ClusterConfig};
use crate::store::redis::{KEY_PREFIX, Redis, RedisEndpoint, script};

/// The key names (see the table above); `{fleet}:` is [`KEY_PREFIX`].
const NODES_KEY: &str = "{fleet}:nodes";
const NODE_KEY_PREFIX: &str = "{fleet}:node:";
const LEADER_KEY: &str = "{fleet}:leader";
const _: () = assert!(NODES_KEY.len() > KEY_PREFIX.len());

/// Loads a node record, telling a missing record from a damaged one without ever raising (a
/// raised error would abort the script and look like an outage).
const LOAD_NODE: &str = r#"
local function load(key, id)
  local kind = redis.call('TYPE', key).ok
  if kind == 'none' then return nil, 'missing' end
  if kind ~= 'string' then return nil, 'holds a Redis ' .. kind .. ', not a JSON string' end
  local ok, rec = pcall(cjson.decode, redis.call('GET', key))
  if not ok or type(rec) ~= 'table' then return nil, 'is not a JSON object' end
  if rec.node_id ~= id then return nil, 'does not hold node_id ' .. id end
  for _, f in ipairs({'hostname', 'url', 'version'}) do
    if type(rec[f]) ~= 'string' then return nil, 'has no string field ' .. f end
  end
  for _, f in ipairs({'port', 'started_at', 'last_heartbeat'}) do
    if type(rec[f]) ~= 'number' then return nil, 'has no number field ' .. f end
  end
  for _, f in ipairs({'draining', 'left'}) do
    if type(rec[f]) ~= 'boolean' then return nil, 'has no boolean field ' .. f end
  end
  return rec, nil
end
"#;

/// KEYS: nodes set, node key. ARGV: id, NodeInfo JSON. Returns the stored record JSON.
/// (cjson prints numbers with 14 significant digits: 13-digit millisecond timestamps survive
/// the round trip until the year 2286.)
const REGISTER: &str = r#"
local rec = cjson.decode(ARGV[2])
local now = now_ms()
rec.started_at = now
rec.last_heartbeat = now
rec.draining = false
rec.left = false
local json = cjson.encode(rec)
redis.call('SET', KEYS[2], json)
redis.call('SADD', KEYS[1], ARGV[1])
return json
"#;

/// KEYS: node key. ARGV: id. Returns {'ok', json} | {'missing'} | {'corrupt', why}.
const HEARTBEAT: &str = r#"
local rec, why = load(KEYS[1], ARGV[1])
if not rec then
  if why == 'missing' then return {'missing'} end
  return {'corrupt', why}
end
rec.last_heartbeat = now_ms()
local json = cjson.encode(rec)
redis.call('SET', KEYS[1], json)
return {'ok', json}
"#;

/// KEYS: node key. ARGV: id, field ('draining' | 'left'), '1' | '0'.
/// Returns {'ok'} | {'missing'} | {'corrupt', why}.
const SET_FLAG: &str = r#"
local rec, why = load(KEYS[1], ARGV[1])
if not rec then
  if why == 'missing' then return {'missing'} end
  return {'corrupt', why}
end
rec[ARGV[2]] = (ARGV[3] == '1')
redis.call('SET', KEYS[1], cjson.encode(rec))
return {'ok'}
"#;

/// KEYS: nodes set, node key. ARGV: id. Returns 1 when a record was deleted.
const REMOVE: &str = r#"
local n = redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[1], ARGV[1])
return n
"#;

/// KEYS: nodes set. ARGV: node key prefix. Returns {now, {{id, type, value}, ...}}: one
/// atomic snapshot, so a listing never mixes states from before and after a write.
const LIST: &str = r#"
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[1] .. id
  local kind = redis.call('TYPE', key).ok
  local value = ''
  if kind == 'string' then value = redis.call('GET', key) end
  table.insert(out, {id, kind, value})
end
return {now_ms(), out}
"#;

/// KEYS: leader key. ARGV: id, lease ms. Extends the lease only if we hold it.
const RENEW_LEADER: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"#;

/// KEYS: leader key. ARGV: id. Compare-and-delete: never deletes another node's lease.
const RELEASE_LEADER: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// The scripts, hashed once per handle; `invoke_async` loads them after a Redis restart.
struct Scripts {
    register: Script,
    heartbeat: Script,
    set_flag: Script,
    remove: Script,
    list: Script,
    renew_leader: Script,
    release_leader: Script,
}

impl Scripts {
    fn new() -> Scripts {
        let with_prelude = |body: &str| script(&format!("{LOAD_NODE}\n{body}"));
        Scripts {
            register: with_prelude(REGISTER),
            heartbeat: with_prelude(HEARTBEAT),
            set_flag: with_prelude(SET_FLAG),
            remove: Script::new(REMOVE),
            list: script(LIST),
            renew_leader: Script::new(RENEW_LEADER),
            release_leader: Script::new(RELEASE_LEADER),
        }
    }
}

pub struct RedisBackend {
    /// The shared connection handle (deadlines, reconnects, Sentinel failover).
    redis: Redis,
    scripts: Scripts,
}

/// What a flag-changing script found.
enum FlagOutcome {
    Done,
    Missing,
    Corrupt(String),
}

impl RedisBackend {
    /// Connect to the Redis the config names, failing with `Unavailable` when it cannot be
    /// reached now (the caller waits and retries at start-up).
    pub async fn open(config: &ClusterConfig) -> BackendResult<RedisBackend> {
        let redis = Redis::connect(RedisEndpoint::cluster(config)).await?;
        Ok(RedisBackend {
            redis,
            scripts: Scripts::new(),
        })
    }

    async fn call<T, F, Fut>(&self, what: &str, f: F) -> BackendResult<T>
    where
        F: FnOnce(redis::aio::ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        Ok(self.redis.call(what, f).await?)
    }

    fn corrupt(&self, key: String, message: String) -> BackendError {
        BackendError::Corrupt {
            backend: BackendKind::Redis,
            key,
            message,
        }
    }

    fn parse_record(&self, node_id: &str, json: &[u8]) -> Result<NodeRecord, String> {
        let rec: NodeRecord = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        if rec.info.node_id != node_id {
            return Err(format!("holds node_id {:?}", rec.info.node_id));
        }
        Ok(rec)
    }

    async fn set_flag(&self, node_id: &str, flag: &str, value: bool) -> BackendResult<FlagOutcome> {
        validate_node_id(node_id)?;
        let key = node_key(node_id);
        let reply: Vec<String> = self
            .call("set node flag", |mut c| async move {
                self.scripts
                    .set_flag
                    .key(&key)
                    .arg(node_id)
                    .arg(flag)
                    .arg(if value { "1" } else { "0" })
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(match reply.first().map(String::as_str) {
            Some("ok") => FlagOutcome::Done,
            Some("missing") => FlagOutcome::Missing,
            _ => FlagOutcome::Corrupt(reply.get(1).cloned().unwrap_or_default()),
        })
    }
}

fn node_key(node_id: &str) -> String {
    format!("{NODE_KEY_PREFIX}{node_id}")
}

#[async_trait]
impl ClusterBackend for RedisBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Redis
    }

    fn location(&self) -> String {
        self.redis.location().to_owned()
    }

    async fn now(&self) -> BackendResult<Millis> {
        Ok(self.redis.now_ms().await?)
    }

    async fn register(&self, node: &NodeInfo) -> BackendResult<NodeRecord> {
        validate_node_id(&node.node_id)?;
        let key = node_key(&node.node_id);
        let info = serde_json::to_string(node).expect("NodeInfo serializes");
        let json: Vec<u8> = self
            .call("register", |mut c| async move {
                self.scripts
                    .register
                    .key(NODES_KEY)
                    .key(&key)
                    .arg(&node.node_id)
                    .arg(info)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        self.parse_record(&node.node_id, &json)
            .map_err(|e| self.corrupt(node_key(&node.node_id), e))
    }

    async fn heartbeat(&self, node_id: &str) -> BackendResult<Option<NodeRecord>> {
        validate_node_id(node_id)?;
        let key = node_key(node_id);
        let reply: Vec<Vec<u8>> = self
            .call("heartbeat", |mut c| async move {
                self.scripts
                    .heartbeat
                    .key(&key)
                    .arg(node_id)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        match (reply.first().map(Vec::as_slice), reply.get(1)) {
            (Some(b"ok"), Some(json)) => Ok(self.parse_record(node_id, json).ok()),
            // Missing or damaged: the node registers again, which replaces a damaged record.
            _ => Ok(None),
        }
    }

    async fn set_draining(&self, node_id: &str, draining: bool) -> BackendResult<bool> {
        match self.set_flag(node_id, "draining", draining).await? {
            FlagOutcome::Done => Ok(true),
            FlagOutcome::Missing => Ok(false),
            FlagOutcome::Corrupt(why) => Err(self.corrupt(node_key(node_id), why)),
        }
    }

    async fn deregister(&self, node_id: &str) -> BackendResult<()> {
        match self.set_flag(node_id, "left", true).await? {
            FlagOutcome::Done | FlagOutcome::Missing => Ok(()),
            FlagOutcome::Corrupt(why) => Err(self.corrupt(node_key(node_id), why)),
        }
    }

    async fn remove(&self, node_id: &str) -> BackendResult<bool> {
        validate_node_id(node_id)?;
        let key = node_key(node_id);
        let deleted: i64 = self
            .call("remove", |mut c| async move {
                self.scripts
                    .remove
                    .key(NODES_KEY)
                    .key(&key)
                    .arg(node_id)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(deleted > 0)
    }

    async fn list(&self) -> BackendResult<Listing> {
        let (now, entries): (Millis, Vec<(Vec<u8>, String, Vec<u8>)>) = self
            .call("list", |mut c| async move {
                self.scripts
                    .list
                    .key(NODES_KEY)
                    .arg(NODE_KEY_PREFIX)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        let mut listing = Listing {
            now,
            ..Listing::default()
        };
        for (id, kind, value) in entries {
            let id = String::from_utf8_lossy(&id).into_owned();
            let key = node_key(&id);
            let parsed = match kind.as_str() {
                "string" => self.parse_record(&id, &value),
                "none" => Err(format!("is missing although {NODES_KEY} lists {id:?}")),
                other => Err(format!("holds a Redis {other}, not a JSON string")),
            };
            match parsed {
                Ok(rec) => listing.nodes.push(rec),
                Err(why) => listing.problems.push(format!("{key}: {why}")),
            }
        }
        listing
            .nodes
            .sort_by(|a, b| a.info.node_id.cmp(&b.info.node_id));
        Ok(listing)
    }

    async fn try_acquire_leader(&self, node_id: &str, lease: Duration) -> BackendResult<bool> {
        validate_node_id(node_id)?;
        let ms = duration_millis(lease);
        let taken: Option<String> = self
            .call("take leader lease", |mut c| async move {
                redis::cmd("SET")
                    .arg(LEADER_KEY)
                    .arg(node_id)
                    .arg("NX")
                    .arg("PX")
                    .arg(ms)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        if taken.is_some() {
            return Ok(true);
        }
        let renewed: i64 = self
            .call("renew leader lease", |mut c| async move {
                self.scripts
                    .renew_leader
                    .key(LEADER_KEY)
                    .arg(node_id)
                    .arg(ms)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(renewed == 1)
    }

    async fn release_leader(&self, node_id: &str) -> BackendResult<()> {
        validate_node_id(node_id)?;
        let _: i64 = self
            .call("release leader lease", |mut c| async move {
                self.scripts
                    .release_leader
                    .key(LEADER_KEY)
                    .arg(node_id)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(())
    }

    async fn leader(&self) -> BackendResult<Option<String>> {
        self.call("read leader", |mut c| async move {
            redis::cmd("GET").arg(LEADER_KEY).query_async(&mut c).await
        })
        .await
    }
}
