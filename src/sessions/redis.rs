//! The Redis session store: the one to use when several nodes share sessions.
//!
//! Key layout (this file is the only place that spells it; everything lives under
//! `{fleet}:sess:` so the store can share a Redis with other data):
//! - `{fleet}:sess:<sha256 hex of id>`: a hash with `user`, `created_at`, `last_seen`,
//!   `expires_at`, `csrf_token`, `data` (JSON). Its native TTL is
//!   `min(idle ttl, remaining absolute lifetime)`, so Redis itself removes expired sessions.
//! - `{fleet}:sess:user:<user>`: a set of the user's id hashes, so `revoke_user` ends them all in
//!   one atomic script, on every node at once. Members whose session expired are removed
//!   lazily when the set is read; the set itself expires `max_lifetime` after the user's last
//!   login, since no session outlives that.
//! - `{fleet}:sess:throttle:<key>`: login-failure counter, INCR + PEXPIRE in one script.
//!
//! Time: every timestamp comes from Redis `TIME` inside the scripts, so nodes whose clocks
//! disagree still agree on when a session expires. Read-modify-write operations are Lua scripts
//! and therefore atomic with respect to every other node.
//!
//! Failures: the shared handle (`store::redis`) bounds every call and fails fast while Redis
//! is unreachable, so a login gets [`SessionError::Unavailable`] (503, cookie kept) at once
//! and works again as soon as the handle has reconnected or found the new master. Error
//! messages name host, port and db, never the password.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, RedisError, Script};

use super::{
    AtRest, ExportPage, GcProgress, Lifetimes, ProgressFn, ResealCount, Session, SessionData,
    SessionError, SessionId, SessionInfo, SessionResult, SessionStore, fields_current,
    new_csrf_token, open_fields, seal_fields,
};
use crate::config::{BackendKind, SessionsConfig};
use crate::store::redis::{Redis, RedisEndpoint, Unavailable, script};

const PREFIX: &str = "{fleet}:sess:";
const USER_INDEX_PREFIX: &str = "{fleet}:sess:user:";
const THROTTLE_PREFIX: &str = "{fleet}:sess:throttle:";

/// Keys per SCAN step and per DEL batch.
const SCAN_BATCH: usize = 1_000;

/// KEYS: session, user index. ARGV: user, csrf, data, idle ms, absolute ms, id hash.
/// Returns {created_at, expires_at}, or false when a record already holds the key.
const CREATE: &str = "
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local now = now_ms()
local idle, abs = tonumber(ARGV[4]), tonumber(ARGV[5])
local exp = math.min(now + idle, now + abs)
redis.call('HSET', KEYS[1], 'user', ARGV[1], 'created_at', ms(now), 'last_seen', ms(now),
  'expires_at', ms(exp), 'csrf_token', ARGV[2], 'data', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ms(exp - now))
redis.call('SADD', KEYS[2], ARGV[6])
if redis.call('PTTL', KEYS[2]) < abs then redis.call('PEXPIRE', KEYS[2], ms(abs)) end
return {ms(now), ms(exp)}
";

/// KEYS: session. ARGV: idle ms, absolute ms, user-index prefix, id hash, mode ('touch' |
/// 'save'), data, csrf. Renews the TTL (and for 'save' writes data and csrf); returns the
/// record as HGETALL, or false when the session is not live (deleting it if the absolute
/// lifetime is over). Never creates a record.
const RENEW: &str = "
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return false end
local now = now_ms()
local created = tonumber(redis.call('HGET', KEYS[1], 'created_at'))
if not created then return false end
local idle, abs = tonumber(ARGV[1]), tonumber(ARGV[2])
local exp = math.min(now + idle, created + abs)
if exp <= now then
  local user = redis.call('HGET', KEYS[1], 'user')
  if user then redis.call('SREM', ARGV[3] .. user, ARGV[4]) end
  redis.call('DEL', KEYS[1])
  return false
end
if ARGV[5] == 'save' then
  redis.call('HSET', KEYS[1], 'data', ARGV[6], 'csrf_token', ARGV[7])
end
redis.call('HSET', KEYS[1], 'last_seen', ms(now), 'expires_at', ms(exp))
redis.call('PEXPIRE', KEYS[1], ms(exp - now))
return redis.call('HGETALL', KEYS[1])
";

/// KEYS: session. ARGV: user-index prefix, id hash. Returns 1 if a record was deleted.
const DELETE: &str = "
if redis.call('TYPE', KEYS[1]).ok == 'hash' then
  local user = redis.call('HGET', KEYS[1], 'user')
  if user then redis.call('SREM', ARGV[1] .. user, ARGV[2]) end
end
return redis.call('DEL', KEYS[1])
";

/// KEYS: user index. ARGV: session key prefix. Deletes every session in the index, then the
/// index; returns how many sessions existed.
const REVOKE_USER: &str = "
local n = 0
for _, h in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  n = n + redis.call('DEL', ARGV[1] .. h)
end
redis.call('DEL', KEYS[1])
return n
";

/// KEYS: counter. ARGV: window ms. A counter holding garbage is restarted, not an error.
const RECORD_FAILURE: &str = "
local n = redis.pcall('INCR', KEYS[1])
if type(n) == 'table' and n.err then
  redis.call('DEL', KEYS[1])
  n = redis.call('INCR', KEYS[1])
end
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
";

/// KEYS: session. ARGV: csrf and data as read, csrf and data re-sealed. Writes only when the
/// record is still what was read (a save meanwhile wins); HSET keeps the key's TTL.
const RESEAL: &str = r"
if redis.call('HGET', KEYS[1], 'csrf_token') == ARGV[1]
  and redis.call('HGET', KEYS[1], 'data') == ARGV[2] then
  redis.call('HSET', KEYS[1], 'csrf_token', ARGV[3], 'data', ARGV[4])
  return 1
end
return 0
";

/// KEYS: (session, user index) per record. ARGV: (id hash, user, created_at, last_seen,
/// expires_at, csrf, data) per record, stored fields as given. Writes a record unless the
/// stored one under the key has a later `last_seen`; keeps its remaining lifetime (expiry at
/// `expires_at`, via PEXPIRE so the least-privilege ACL suffices). Returns records written.
const IMPORT: &str = "
local now = now_ms()
local n = 0
for i = 1, #KEYS / 2 do
  local key, index = KEYS[2 * i - 1], KEYS[2 * i]
  local a = (i - 1) * 7
  local seen, exp = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  local write = exp > now
  if write and redis.call('TYPE', key).ok == 'hash' then
    local cur = tonumber(redis.call('HGET', key, 'last_seen'))
    if cur and cur > seen then write = false end
  end
  if write then
    redis.call('DEL', key)
    redis.call('HSET', key, 'user', ARGV[a + 2], 'created_at', ARGV[a + 3],
      'last_seen', ARGV[a + 4], 'expires_at', ARGV[a + 5], 'csrf_token', ARGV[a + 6],
      'data', ARGV[a + 7])
    redis.call('PEXPIRE', key, ms(exp - now))
    redis.call('SADD', index, ARGV[a + 1])
    if redis.call('PTTL', index) < exp - now then redis.call('PEXPIRE', index, ms(exp - now)) end
    n = n + 1
  end
end
return n
";

pub struct RedisStore {
    /// The shared connection handle (deadlines, reconnects, Sentinel failover).
    redis: Redis,
    lifetimes: Lifetimes,
    /// Seals the `data` and `csrf_token` fields.
    at_rest: AtRest,
    create: Script,
    renew: Script,
    delete: Script,
    revoke_user: Script,
    record_failure: Script,
    reseal: Script,
    import: Script,
}

impl From<Unavailable> for SessionError {
    fn from(e: Unavailable) -> Self {
        SessionError::Unavailable {
            backend: BackendKind::Redis,
            location: e.location,
            message: e.message,
        }
    }
}

impl RedisStore {
    /// Prepare a connection to `sessions.redis`. Connecting is lazy: a node can start while
    /// Redis is down and its session calls fail with `Unavailable` until Redis is back.
    pub async fn open(config: &SessionsConfig, at_rest: AtRest) -> SessionResult<RedisStore> {
        // Passwords (inline, file or environment) were resolved when the config was loaded.
        let redis = Redis::open(RedisEndpoint::sessions(config)).await?;
        Ok(RedisStore {
            redis,
            lifetimes: Lifetimes::from_config(config),
            at_rest,
            create: script(CREATE),
            renew: script(RENEW),
            delete: Script::new(DELETE),
            revoke_user: Script::new(REVOKE_USER),
            record_failure: Script::new(RECORD_FAILURE),
            reseal: Script::new(RESEAL),
            import: script(IMPORT),
        })
    }

    /// Run one Redis interaction under the shared deadline.
    async fn call<T, F>(&self, f: impl FnOnce(ConnectionManager) -> F) -> SessionResult<T>
    where
        F: Future<Output = Result<T, RedisError>>,
    {
        Ok(self.redis.call("session store", f).await?)
    }

    /// Every key under `{fleet}:sess:` (sessions, indexes, counters), in SCAN batches.
    async fn scan_keys(&self) -> SessionResult<Vec<String>> {
        self.call(|mut conn| async move {
            let mut keys = Vec::new();
            let mut cursor: u64 = 0;
            loop {
                let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(format!("{PREFIX}*"))
                    .arg("COUNT")
                    .arg(SCAN_BATCH)
                    .query_async(&mut conn)
                    .await?;
                keys.extend(batch);
                if next == 0 {
                    // SCAN may return a key more than once.
                    keys.sort_unstable();
                    keys.dedup();
                    return Ok(keys);
                }
                cursor = next;
            }
        })
        .await
    }

    /// Read the records of `hashes`; missing ones are `None`, unreadable ones are reported and
    /// `None`.
    async fn read_many(&self, hashes: &[String]) -> SessionResult<Vec<Option<Session>>> {
        let mut out = Vec::with_capacity(hashes.len());
        for chunk in hashes.chunks(SCAN_BATCH) {
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            for h in chunk {
                pipe.hgetall(session_key(h));
            }
            let results: Vec<Result<HashMap<String, Vec<u8>>, RedisError>> = self
                .call(|mut conn| async move { pipe.query_async(&mut conn).await })
                .await?;
            for (h, r) in chunk.iter().zip(results) {
                out.push(
                    decode_reply(&self.at_rest, h, r)
                        .map_err(|e| self.redis.unavailable("read sessions", e))?,
                );
            }
        }
        Ok(out)
    }
}

fn session_key(id_hash: &str) -> String {
    format!("{PREFIX}{id_hash}")
}

fn user_index_key(user: &str) -> String {
    format!("{USER_INDEX_PREFIX}{user}")
}

/// The id hash in a session key, or `None` for index and counter keys.
fn id_hash_of(key: &str) -> Option<&str> {
    key.strip_prefix(PREFIX)
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn warn_corrupt(id_hash: &str, message: &str) {
    let key = session_key(id_hash);
    crate::store::unreadable::warn(
        &key,
        &format!(
            "unreadable session record {key} in the redis session store, treating it as absent: {message}"
        ),
    );
}

/// Turn one HGETALL reply into a session. WRONGTYPE (someone wrote a string or list there) and
/// undecodable fields are corruption: reported, absent. Other errors are failures.
fn decode_reply(
    at_rest: &AtRest,
    id_hash: &str,
    reply: Result<HashMap<String, Vec<u8>>, RedisError>,
) -> Result<Option<Session>, RedisError> {
    match reply {
        Ok(fields) if fields.is_empty() => Ok(None),
        Ok(fields) => match decode_fields(at_rest, id_hash, &fields) {
            Ok(s) => Ok(Some(s)),
            Err(message) => {
                warn_corrupt(id_hash, &message);
                Ok(None)
            }
        },
        Err(e) if e.code() == Some("WRONGTYPE") => {
            warn_corrupt(id_hash, "not a hash");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn decode_fields(
    at_rest: &AtRest,
    id_hash: &str,
    fields: &HashMap<String, Vec<u8>>,
) -> Result<Session, String> {
    // Fields are read in place: only what the session keeps is copied.
    fn text<'a>(fields: &'a HashMap<String, Vec<u8>>, name: &str) -> Result<&'a str, String> {
        let raw = fields
            .get(name)
            .ok_or_else(|| format!("missing field {name}"))?;
        std::str::from_utf8(raw).map_err(|_| format!("field {name} is not UTF-8"))
    }
    let text = |name: &str| text(fields, name);
    let number = |name: &str| -> Result<i64, String> {
        text(name)?
            .parse()
            .map_err(|_| format!("field {name} is not an integer"))
    };
    let (csrf_token, data) = open_fields(at_rest, id_hash, text("csrf_token")?, text("data")?)?;
    Ok(Session {
        user: text("user")?.to_owned(),
        created_at: number("created_at")?,
        last_seen: number("last_seen")?,
        expires_at: number("expires_at")?,
        csrf_token,
        data,
    })
}

/// A flat HGETALL array from a script, as a field map.
fn pairs_to_map(flat: Vec<Vec<u8>>) -> HashMap<String, Vec<u8>> {
    let mut map = HashMap::new();
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        map.insert(String::from_utf8_lossy(&k).into_owned(), v);
    }
    map
}

#[async_trait]
impl SessionStore for RedisStore {
    fn backend(&self) -> BackendKind {
        BackendKind::Redis
    }

    fn lifetimes(&self) -> Lifetimes {
        self.lifetimes
    }

    async fn create(
        &self,
        id: &SessionId,
        user: &str,
        data: SessionData,
    ) -> SessionResult<Session> {
        let id_hash = id.storage_key();
        let csrf_token = new_csrf_token()?;
        let sealed = seal_fields(&self.at_rest, &id_hash, &csrf_token, &data);
        let lifetimes = self.lifetimes;
        let times: Option<(i64, i64)> = self
            .call(|mut conn| {
                let mut inv = self.create.prepare_invoke();
                inv.key(session_key(&id_hash))
                    .key(user_index_key(user))
                    .arg(user)
                    .arg(&sealed.csrf_token)
                    .arg(&sealed.data)
                    .arg(lifetimes.idle_ms())
                    .arg(lifetimes.absolute_ms())
                    .arg(&id_hash);
                async move { inv.invoke_async(&mut conn).await }
            })
            .await?;
        let (created_at, expires_at) = times.ok_or(SessionError::AlreadyExists)?;
        Ok(Session {
            user: user.to_owned(),
            created_at,
            last_seen: created_at,
            expires_at,
            csrf_token,
            data,
        })
    }

    async fn load(&self, id: &SessionId) -> SessionResult<Option<Session>> {
        let id_hash = id.storage_key();
        let key = session_key(&id_hash);
        let reply = self
            .redis
            .call_raw("load session", |mut conn| async move {
                conn.hgetall::<_, HashMap<String, Vec<u8>>>(&key).await
            })
            .await?;
        Ok(decode_reply(&self.at_rest, &id_hash, reply)
            .map_err(|e| self.redis.unavailable("load session", e))?)
    }

    async fn save(&self, id: &SessionId, session: &Session) -> SessionResult<Session> {
        let sealed = seal_fields(
            &self.at_rest,
            &id.storage_key(),
            &session.csrf_token,
            &session.data,
        );
        self.renew(id, Some((&sealed.data, &sealed.csrf_token)))
            .await?
            .ok_or(SessionError::NotFound)
    }

    async fn touch(&self, id: &SessionId) -> SessionResult<Option<Session>> {
        self.renew(id, None).await
    }

    async fn delete(&self, id: &SessionId) -> SessionResult<bool> {
        let id_hash = id.storage_key();
        let n: i64 = self
            .call(|mut conn| {
                let mut inv = self.delete.prepare_invoke();
                inv.key(session_key(&id_hash))
                    .arg(USER_INDEX_PREFIX)
                    .arg(&id_hash);
                async move { inv.invoke_async(&mut conn).await }
            })
            .await?;
        Ok(n > 0)
    }

    /// Redis expires sessions itself; this only drops index members whose session is gone.
    async fn delete_expired(&self, progress: ProgressFn<'_>) -> SessionResult<u64> {
        let index_keys: Vec<String> = self
            .scan_keys()
            .await?
            .into_iter()
            .filter(|k| k.starts_with(USER_INDEX_PREFIX))
            .collect();
        let total = index_keys.len() as u64;
        for (i, key) in index_keys.iter().enumerate() {
            self.prune_index(key).await?;
            progress(super::GcProgress {
                done: i as u64 + 1,
                total,
            });
        }
        Ok(0)
    }

    async fn list(&self, user: Option<&str>) -> SessionResult<Vec<SessionInfo>> {
        let hashes: Vec<String> = match user {
            Some(u) => {
                let index = user_index_key(u);
                self.call(|mut conn| async move { conn.smembers(&index).await })
                    .await?
            }
            None => self
                .scan_keys()
                .await?
                .iter()
                .filter_map(|k| id_hash_of(k).map(str::to_owned))
                .collect(),
        };
        let records = self.read_many(&hashes).await?;
        let mut out = Vec::new();
        let mut stale = Vec::new();
        for (id_hash, record) in hashes.into_iter().zip(records) {
            match record {
                Some(session) => out.push(SessionInfo { id_hash, session }),
                None => stale.push(id_hash),
            }
        }
        if let (Some(u), false) = (user, stale.is_empty()) {
            let index = user_index_key(u);
            self.call(|mut conn| async move { conn.srem::<_, _, i64>(&index, &stale).await })
                .await?;
        }
        out.sort_by_key(|i| i.session.created_at);
        Ok(out)
    }

    async fn reseal(&self, progress: ProgressFn<'_>) -> SessionResult<ResealCount> {
        let hashes: Vec<String> = self
            .scan_keys()
            .await?
            .iter()
            .filter_map(|k| id_hash_of(k).map(str::to_owned))
            .collect();
        let total = hashes.len() as u64;
        progress(GcProgress { done: 0, total });
        let mut count = ResealCount::default();
        for chunk in hashes.chunks(SCAN_BATCH) {
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            // HGETALL, not HMGET: the documented least-privilege ACL user has the former.
            for h in chunk {
                pipe.hgetall(session_key(h));
            }
            let records: Vec<Result<HashMap<String, String>, RedisError>> = self
                .call(|mut conn| async move { pipe.query_async(&mut conn).await })
                .await?;
            for (h, r) in chunk.iter().zip(records) {
                let Some((csrf, data)) = r
                    .ok()
                    .and_then(|mut m| Some((m.remove("csrf_token")?, m.remove("data")?)))
                else {
                    continue; // expired since the scan, or not a session hash
                };
                count.examined += 1;
                if fields_current(&self.at_rest, &csrf, &data) {
                    continue;
                }
                let Ok((plain_csrf, plain_data)) = open_fields(&self.at_rest, h, &csrf, &data)
                else {
                    count.unreadable += 1;
                    continue;
                };
                let sealed = seal_fields(&self.at_rest, h, &plain_csrf, &plain_data);
                let written: i64 = self
                    .call(|mut conn| {
                        let mut inv = self.reseal.prepare_invoke();
                        inv.key(session_key(h))
                            .arg(&csrf)
                            .arg(&data)
                            .arg(&sealed.csrf_token)
                            .arg(&sealed.data);
                        async move { inv.invoke_async(&mut conn).await }
                    })
                    .await?;
                count.resealed += written as u64;
            }
            progress(GcProgress {
                done: count.examined,
                total: total.max(count.examined),
            });
        }
        Ok(count)
    }

    async fn export(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> SessionResult<ExportPage<SessionInfo>> {
        // The cursor is SCAN's: every session live for the whole export is returned at least
        // once (SCAN may repeat one; importing it twice is harmless).
        let start: u64 = match cursor.as_deref() {
            None => 0,
            Some(c) => c.parse().map_err(|_| {
                SessionError::Config(format!("not a Redis session export cursor: {c:?}"))
            })?,
        };
        let count = limit.max(1);
        let (next, keys): (u64, Vec<String>) = self
            .call(|mut conn| async move {
                redis::cmd("SCAN")
                    .arg(start)
                    .arg("MATCH")
                    .arg(format!("{PREFIX}*"))
                    .arg("COUNT")
                    .arg(count)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let hashes: Vec<String> = keys
            .iter()
            .filter_map(|k| id_hash_of(k).map(str::to_owned))
            .collect();
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for h in &hashes {
            pipe.hgetall(session_key(h));
        }
        let replies: Vec<Result<HashMap<String, Vec<u8>>, RedisError>> = if hashes.is_empty() {
            Vec::new()
        } else {
            self.call(|mut conn| async move { pipe.query_async(&mut conn).await })
                .await?
        };
        let mut page = ExportPage {
            records: Vec::with_capacity(hashes.len()),
            unreadable: Vec::new(),
            next: (next != 0).then(|| next.to_string()),
        };
        for (id_hash, reply) in hashes.into_iter().zip(replies) {
            match reply {
                Ok(fields) if fields.is_empty() => {} // expired since the scan
                Ok(fields) => match decode_fields(&self.at_rest, &id_hash, &fields) {
                    Ok(session) => page.records.push(SessionInfo { id_hash, session }),
                    Err(why) => page
                        .unreadable
                        .push(format!("redis session {}: {why}", session_key(&id_hash))),
                },
                Err(e) if e.code() == Some("WRONGTYPE") => page.unreadable.push(format!(
                    "redis session {}: not a hash",
                    session_key(&id_hash)
                )),
                Err(e) => return Err(self.redis.unavailable("export sessions", e).into()),
            }
        }
        Ok(page)
    }

    async fn import(&self, records: Vec<SessionInfo>) -> SessionResult<u64> {
        let mut written = 0u64;
        // Bounded script calls: a huge batch must not block Redis for long.
        for chunk in records.chunks(SCAN_BATCH) {
            let mut inv = self.import.prepare_invoke();
            for r in chunk {
                let s = &r.session;
                let sealed = seal_fields(&self.at_rest, &r.id_hash, &s.csrf_token, &s.data);
                inv.key(session_key(&r.id_hash))
                    .key(user_index_key(&s.user))
                    .arg(&r.id_hash)
                    .arg(&s.user)
                    .arg(s.created_at)
                    .arg(s.last_seen)
                    .arg(s.expires_at)
                    .arg(sealed.csrf_token)
                    .arg(sealed.data);
            }
            let n: i64 = self
                .call(|mut conn| async move { inv.invoke_async(&mut conn).await })
                .await?;
            written += n as u64;
        }
        Ok(written)
    }

    async fn revoke_user(&self, user: &str) -> SessionResult<u64> {
        let n: i64 = self
            .call(|mut conn| {
                let mut inv = self.revoke_user.prepare_invoke();
                inv.key(user_index_key(user)).arg(PREFIX);
                async move { inv.invoke_async(&mut conn).await }
            })
            .await?;
        Ok(n as u64)
    }

    async fn revoke_all(&self) -> SessionResult<u64> {
        let keys: Vec<String> = self
            .scan_keys()
            .await?
            .into_iter()
            .filter(|k| !k.starts_with(THROTTLE_PREFIX))
            .collect();
        let (sessions, indexes): (Vec<String>, Vec<String>) =
            keys.into_iter().partition(|k| id_hash_of(k).is_some());
        let mut ended = 0u64;
        for chunk in sessions.chunks(SCAN_BATCH) {
            let chunk = chunk.to_vec();
            let n: i64 = self
                .call(|mut conn| async move { conn.del(&chunk).await })
                .await?;
            ended += n as u64;
        }
        for chunk in indexes.chunks(SCAN_BATCH) {
            let chunk = chunk.to_vec();
            self.call(|mut conn| async move { conn.del::<_, i64>(&chunk).await })
                .await?;
        }
        Ok(ended)
    }

    async fn count(&self) -> SessionResult<u64> {
        Ok(self
            .scan_keys()
            .await?
            .iter()
            .filter(|k| id_hash_of(k).is_some())
            .count() as u64)
    }

    async fn record_failure(&self, key: &str, window: Duration) -> SessionResult<u32> {
        let window_ms = super::duration_ms(window).max(1);
        let n: i64 = self
            .call(|mut conn| {
                let mut inv = self.record_failure.prepare_invoke();
                inv.key(format!("{THROTTLE_PREFIX}{key}")).arg(window_ms);
                async move { inv.invoke_async(&mut conn).await }
            })
            .await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn clear_failures(&self, key: &str) -> SessionResult<()> {
        let key = format!("{THROTTLE_PREFIX}{key}");
        self.call(|mut conn| async move { conn.del::<_, i64>(&key).await })
            .await?;
        Ok(())
    }
}

impl RedisStore {
    /// `touch` (data `None`) or `save` (new data and csrf token) in one atomic script.
    async fn renew(
        &self,
        id: &SessionId,
        data: Option<(&str, &str)>,
    ) -> SessionResult<Option<Session>> {
        let id_hash = id.storage_key();
        let lifetimes = self.lifetimes;
        let reply: Option<Vec<Vec<u8>>> = self
            .call(|mut conn| {
                let mut inv = self.renew.prepare_invoke();
                inv.key(session_key(&id_hash))
                    .arg(lifetimes.idle_ms())
                    .arg(lifetimes.absolute_ms())
                    .arg(USER_INDEX_PREFIX)
                    .arg(&id_hash);
                match data {
                    Some((data, csrf)) => inv.arg("save").arg(data).arg(csrf),
                    None => inv.arg("touch").arg("").arg(""),
                };
                async move { inv.invoke_async(&mut conn).await }
            })
            .await?;
        match reply {
            None => Ok(None),
            Some(flat) => Ok(
                decode_reply(&self.at_rest, &id_hash, Ok(pairs_to_map(flat)))
                    .map_err(|e| self.redis.unavailable("renew session", e))?,
            ),
        }
    }

    /// Remove members of one user index whose session no longer exists.
    async fn prune_index(&self, index: &str) -> SessionResult<()> {
        let index = index.to_owned();
        let members: Vec<String> = self
            .call(|mut conn| {
                let index = index.clone();
                async move { conn.smembers(&index).await }
            })
            .await?;
        if members.is_empty() {
            return Ok(());
        }
        let exists: Vec<bool> = self
            .call(|mut conn| {
                let mut pipe = redis::pipe();
                for h in &members {
                    pipe.exists(session_key(h));
                }
                async move { pipe.query_async(&mut conn).await }
            })
            .await?;
        let stale: Vec<&String> = members
            .iter()
            .zip(exists)
            .filter(|(_, e)| !e)
            .map(|(m, _)| m)
            .collect();
        if !stale.is_empty() {
            self.call(|mut conn| async move { conn.srem::<_, _, i64>(&index, &stale).await })
                .await?;
        }
        Ok(())
    }
}
