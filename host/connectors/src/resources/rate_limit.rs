//! Rate limits for processors: `local` (one worker's, a token bucket) and `redis` (shared by every replica of
//! the stream: a counter per interval in Redis).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use airtruct_engine::HostError;
use airtruct_model::Duration as ConfigDuration;
use airtruct_runtime::kind::Check;
use airtruct_runtime::{BuildContext, Error};
use schemars::JsonSchema;
use serde::Deserialize;

use super::lazy_redis::{LazyRedis, failed};

/// A rate limit.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum RateLimitConfig {
    /// Counted on this worker: each replica has its own.
    Local(LocalRateLimitConfig),
    /// Counted in Redis: shared by every replica of the stream (and any stream naming the same key).
    Redis(RedisRateLimitConfig),
}

/// `count` per `interval`, on this worker.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct LocalRateLimitConfig {
    /// How many are let through per interval.
    #[schemars(range(min = 1))]
    pub count: u32,
    /// The interval (default 1s).
    #[serde(default = "one_second")]
    pub interval: ConfigDuration,
    /// Longest a message waits for the limit (default 30s); longer, it fails.
    #[serde(default = "default_max_wait")]
    pub max_wait: ConfigDuration,
}

/// `count` per `interval`, shared through Redis.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RedisRateLimitConfig {
    /// `redis://host:6379/0`; a credential field.
    pub url: String,
    /// The Redis key the count is kept under (default: `airtruct:rate_limit:<stream>:<name>`).
    #[serde(default)]
    pub key: Option<String>,
    /// How many are let through per interval, by every replica together.
    #[schemars(range(min = 1))]
    pub count: u32,
    /// The interval (default 1s).
    #[serde(default = "one_second")]
    pub interval: ConfigDuration,
    /// Longest a message waits for the limit (default 30s); longer, it fails.
    #[serde(default = "default_max_wait")]
    pub max_wait: ConfigDuration,
}

fn one_second() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(1))
}

fn default_max_wait() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(30))
}

impl RateLimitConfig {
    pub(super) fn check(&self, check: &mut Check<'_>) {
        let (at, count, interval, max_wait) = match self {
            RateLimitConfig::Local(l) => ("local", l.count, &l.interval, &l.max_wait),
            RateLimitConfig::Redis(r) => {
                crate::net::check_url(&mut check.sub("redis"), "url", &r.url, &["redis"]);
                ("redis", r.count, &r.interval, &r.max_wait)
            }
        };
        if count == 0 {
            check.problem(&format!("{at}.count"), "must be at least 1");
        }
        super::positive(check, &format!("{at}.interval"), interval);
        if max_wait.0 > Duration::from_secs(300) {
            check.problem(&format!("{at}.max_wait"), "at most 5m");
        }
    }
}

pub(super) struct Limiter {
    count: u32,
    interval: Duration,
    max_wait: Duration,
    how: How,
}

enum How {
    /// Tokens left and when they were last topped up.
    Local(Mutex<(f64, Instant)>),
    Redis(Box<RedisCounter>),
}

/// A counter per interval in Redis.
struct RedisCounter {
    conn: LazyRedis,
    key: String,
}

impl Limiter {
    pub(super) fn open(c: &RateLimitConfig, cx: &BuildContext, name: &str) -> Result<Self, Error> {
        Ok(match c {
            RateLimitConfig::Local(l) => Limiter {
                count: l.count.max(1),
                interval: l.interval.0,
                max_wait: l.max_wait.0,
                how: How::Local(Mutex::new((l.count as f64, Instant::now()))),
            },
            RateLimitConfig::Redis(r) => {
                let conn = LazyRedis::open(cx, &format!("resources: rate limit {name}"), &r.url)?;
                let key = r.key.clone().unwrap_or_else(|| {
                    format!(
                        "airtruct:rate_limit:{}:{name}",
                        cx.stream_id().unwrap_or("local")
                    )
                });
                Limiter {
                    count: r.count.max(1),
                    interval: r.interval.0,
                    max_wait: r.max_wait.0,
                    how: How::Redis(Box::new(RedisCounter { conn, key })),
                }
            }
        })
    }

    /// Takes `n`, waiting as needed up to `max_wait`.
    pub(super) async fn take(&self, n: u32) -> Result<(), HostError> {
        if n > self.count {
            return Err(HostError::Denied(format!(
                "{n} at once is more than the limit of {} per {:?}",
                self.count, self.interval
            )));
        }
        let give_up = Instant::now() + self.max_wait;
        loop {
            let wait = match &self.how {
                How::Local(state) => self.take_local(state, n),
                How::Redis(_) => self.take_redis(n).await?,
            };
            let Some(wait) = wait else {
                return Ok(());
            };
            if Instant::now() + wait > give_up {
                return Err(HostError::Timeout);
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes `n` tokens, or says how long until there are enough.
    fn take_local(&self, state: &Mutex<(f64, Instant)>, n: u32) -> Option<Duration> {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let rate = self.count as f64 / self.interval.as_secs_f64();
        s.0 = (s.0 + now.duration_since(s.1).as_secs_f64() * rate).min(self.count as f64);
        s.1 = now;
        if s.0 >= n as f64 {
            s.0 -= n as f64;
            None
        } else {
            Some(Duration::from_secs_f64((n as f64 - s.0) / rate))
        }
    }

    /// Counts `n` in this interval's key; over the limit, says how long until the next interval.
    async fn take_redis(&self, n: u32) -> Result<Option<Duration>, HostError> {
        let How::Redis(counter) = &self.how else {
            return Ok(None);
        };
        let RedisCounter { conn, key } = &**counter;
        let mut c = conn.get().await?;
        let interval_ms = self.interval.as_millis().max(1) as u64;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let window = now_ms / interval_ms;
        let window_key = format!("{key}:{window}");
        let used: Result<(u64,), HostError> = redis::pipe()
            .atomic()
            .cmd("INCRBY")
            .arg(&window_key)
            .arg(n)
            .cmd("PEXPIRE")
            .arg(&window_key)
            .arg(interval_ms * 2)
            .ignore()
            .query_async(&mut c)
            .await
            .map_err(failed);
        let used = match used {
            Ok((used,)) => used,
            Err(e) => {
                // A broken connection is made again for the next take.
                conn.reset().await;
                return Err(e);
            }
        };
        if used <= self.count as u64 {
            return Ok(None);
        }
        Ok(Some(Duration::from_millis(
            (window + 1) * interval_ms - now_ms,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_local_limit_lets_the_count_through_then_waits_for_the_rate() {
        let l = Limiter {
            count: 5,
            interval: Duration::from_millis(100),
            max_wait: Duration::from_secs(5),
            how: How::Local(Mutex::new((5.0, Instant::now()))),
        };
        let started = Instant::now();
        for _ in 0..15 {
            l.take(1).await.unwrap();
        }
        // 5 at once, then 10 more at 50 a second: about 200ms.
        assert!(
            started.elapsed() >= Duration::from_millis(150),
            "{:?}",
            started.elapsed()
        );
        let strict = Limiter {
            max_wait: Duration::from_millis(1),
            ..l
        };
        // The tokens are spent: five more would take longer than the longest wait.
        assert_eq!(strict.take(5).await, Err(HostError::Timeout));
        assert!(matches!(strict.take(6).await, Err(HostError::Denied(_))));
    }
}
