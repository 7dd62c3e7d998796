//! Caches for processors: `memory` (this worker's, bounded, with a time to live) and `redis` (shared by every
//! worker, kept across restarts).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use airtruct_engine::HostError;
use airtruct_engine::capabilities::{CacheAnswer, CacheOp};
use airtruct_model::Duration as ConfigDuration;
use airtruct_runtime::kind::Check;
use airtruct_runtime::{BuildContext, Error};
use redis::AsyncCommands;

use super::lazy_redis::{LazyRedis, failed};
use schemars::JsonSchema;
use serde::Deserialize;

/// A cache.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum CacheConfig {
    /// In this worker's memory: each replica has its own; gone when the stream stops.
    Memory(MemoryCacheConfig),
    /// In Redis: shared by every worker, kept across restarts.
    Redis(RedisCacheConfig),
}

/// A cache in memory.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct MemoryCacheConfig {
    /// Most keys kept (default 10000); the oldest written go first.
    #[serde(default = "default_capacity")]
    #[schemars(range(min = 1))]
    pub capacity: usize,
    /// How long a key is kept when the call gives no time to live (default: until evicted).
    #[serde(default)]
    pub ttl: Option<ConfigDuration>,
}

fn default_capacity() -> usize {
    10_000
}

/// A cache in Redis.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RedisCacheConfig {
    /// `redis://host:6379/0`; a credential field.
    pub url: String,
    /// Put in front of every key (default: none).
    #[serde(default)]
    pub prefix: String,
    /// How long a key is kept when the call gives no time to live (default: no expiry).
    #[serde(default)]
    pub ttl: Option<ConfigDuration>,
}

impl CacheConfig {
    pub(super) fn check(&self, check: &mut Check<'_>) {
        match self {
            CacheConfig::Memory(m) => {
                if m.capacity == 0 {
                    check.problem("memory.capacity", "must be at least 1");
                }
                if let Some(t) = &m.ttl {
                    super::positive(check, "memory.ttl", t);
                }
            }
            CacheConfig::Redis(r) => {
                crate::net::check_url(&mut check.sub("redis"), "url", &r.url, &["redis"]);
                if let Some(t) = &r.ttl {
                    super::positive(check, "redis.ttl", t);
                }
            }
        }
    }
}

pub(super) enum Cache {
    Memory(Memory),
    Redis(Box<Redis>),
}

impl Cache {
    pub(super) fn open(c: &CacheConfig, cx: &BuildContext, name: &str) -> Result<Self, Error> {
        Ok(match c {
            CacheConfig::Memory(m) => Cache::Memory(Memory {
                capacity: m.capacity.max(1),
                ttl: m.ttl.map(|t| t.0),
                entries: Mutex::default(),
            }),
            CacheConfig::Redis(r) => Cache::Redis(Box::new(Redis {
                conn: LazyRedis::open(cx, &format!("resources: cache {name}"), &r.url)?,
                prefix: r.prefix.clone(),
                ttl: r.ttl.map(|t| t.0),
            })),
        })
    }

    pub(super) async fn apply(&self, op: CacheOp) -> Result<CacheAnswer, HostError> {
        match self {
            Cache::Memory(m) => Ok(m.apply(op)),
            Cache::Redis(r) => r.apply(op).await,
        }
    }
}

#[derive(Default)]
struct Entries {
    /// Key to value, its expiry and its write number.
    map: HashMap<String, (Vec<u8>, Option<Instant>, u64)>,
    /// Write number to key: the oldest first, for eviction.
    order: BTreeMap<u64, String>,
    next: u64,
}

pub(super) struct Memory {
    capacity: usize,
    ttl: Option<Duration>,
    entries: Mutex<Entries>,
}

impl Memory {
    fn apply(&self, op: CacheOp) -> CacheAnswer {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let live = |entry: &(Vec<u8>, Option<Instant>, u64)| entry.1.is_none_or(|t| t > now);
        match op {
            CacheOp::Get(key) => CacheAnswer::Value(
                e.map
                    .get(&key)
                    .filter(|entry| live(entry))
                    .map(|entry| entry.0.clone()),
            ),
            CacheOp::Set { key, value, ttl } => {
                self.put(&mut e, key, value, ttl, now);
                CacheAnswer::Done
            }
            CacheOp::Add { key, value, ttl } => {
                if e.map.get(&key).is_some_and(live) {
                    return CacheAnswer::Added(false);
                }
                self.put(&mut e, key, value, ttl, now);
                CacheAnswer::Added(true)
            }
            CacheOp::Delete(key) => {
                if let Some((_, _, n)) = e.map.remove(&key) {
                    e.order.remove(&n);
                }
                CacheAnswer::Done
            }
        }
    }

    fn put(
        &self,
        e: &mut Entries,
        key: String,
        value: Vec<u8>,
        ttl: Option<Duration>,
        now: Instant,
    ) {
        let expires = ttl.or(self.ttl).map(|t| now + t);
        let n = e.next;
        e.next += 1;
        if let Some((_, _, old)) = e.map.insert(key.clone(), (value, expires, n)) {
            e.order.remove(&old);
        }
        e.order.insert(n, key);
        while e.map.len() > self.capacity {
            let Some((_, oldest)) = e.order.pop_first() else {
                break;
            };
            e.map.remove(&oldest);
        }
    }
}

pub(super) struct Redis {
    conn: LazyRedis,
    prefix: String,
    ttl: Option<Duration>,
}

impl Redis {
    async fn apply(&self, op: CacheOp) -> Result<CacheAnswer, HostError> {
        let mut c = self.conn.get().await?;
        let answer = self.run(&mut c, op).await;
        if answer.is_err() {
            self.conn.reset().await;
        }
        answer
    }

    async fn run(
        &self,
        c: &mut redis::aio::MultiplexedConnection,
        op: CacheOp,
    ) -> Result<CacheAnswer, HostError> {
        let key = |k: &str| format!("{}{k}", self.prefix);
        let ms = |ttl: Option<Duration>| ttl.or(self.ttl).map(|t| t.as_millis().max(1) as u64);
        Ok(match op {
            CacheOp::Get(k) => {
                CacheAnswer::Value(c.get::<_, Option<Vec<u8>>>(key(&k)).await.map_err(failed)?)
            }
            CacheOp::Set { key: k, value, ttl } => {
                let mut cmd = redis::cmd("SET");
                cmd.arg(key(&k)).arg(value);
                if let Some(ms) = ms(ttl) {
                    cmd.arg("PX").arg(ms);
                }
                cmd.query_async::<()>(c).await.map_err(failed)?;
                CacheAnswer::Done
            }
            CacheOp::Add { key: k, value, ttl } => {
                let mut cmd = redis::cmd("SET");
                cmd.arg(key(&k)).arg(value).arg("NX");
                if let Some(ms) = ms(ttl) {
                    cmd.arg("PX").arg(ms);
                }
                let set: Option<String> = cmd.query_async(c).await.map_err(failed)?;
                CacheAnswer::Added(set.is_some())
            }
            CacheOp::Delete(k) => {
                c.del::<_, ()>(key(&k)).await.map_err(failed)?;
                CacheAnswer::Done
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memory_cache_adds_once_expires_and_evicts_the_oldest() {
        let m = Memory {
            capacity: 2,
            ttl: None,
            entries: Mutex::default(),
        };
        let add = |k: &str, ttl| {
            m.apply(CacheOp::Add {
                key: k.into(),
                value: b"1".to_vec(),
                ttl,
            })
        };
        assert_eq!(add("a", None), CacheAnswer::Added(true));
        assert_eq!(add("a", None), CacheAnswer::Added(false));
        assert_eq!(
            add("b", Some(Duration::from_millis(1))),
            CacheAnswer::Added(true)
        );
        std::thread::sleep(Duration::from_millis(5));
        // Expired: added again.
        assert_eq!(add("b", None), CacheAnswer::Added(true));
        assert_eq!(add("c", None), CacheAnswer::Added(true));
        // Over capacity: "a", the oldest written, is gone.
        assert_eq!(m.apply(CacheOp::Get("a".into())), CacheAnswer::Value(None));
        assert_eq!(
            m.apply(CacheOp::Get("c".into())),
            CacheAnswer::Value(Some(b"1".to_vec()))
        );
    }
}
