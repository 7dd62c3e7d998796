//! A stream's `resources:`: caches (`memory`, `redis`), SQL connections, HTTP grants and rate limits (`local`,
//! `redis`), each declared once by name and granted to the processors that call through it. Checked at
//! validation against the operator's policy like any connector's options; opened when the stream starts, with
//! connections made when first used (a service that is down fails the calls that need it, not the stream).
//!
//! Processor threads call in synchronously from inside a wasm call ([`Resources`]): each call runs on the
//! stream's async runtime and blocks the processor thread until its answer, within the call's deadline.

mod cache;
mod http;
mod lazy_redis;
mod rate_limit;
mod sql;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use airtruct_engine::capabilities::{CacheAnswer, CacheOp};
use airtruct_engine::capabilities::{HttpRequest, HttpResponse, SqlRows, SqlValue};
use airtruct_engine::{Capability, HostError, Resources};
use airtruct_runtime::kind::Check;
use airtruct_runtime::resources::{Declared, ResourceSupport, ResourcesPlan};
use airtruct_runtime::{BuildContext, Error};
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

pub use cache::{CacheConfig, MemoryCacheConfig, RedisCacheConfig};
pub use http::HttpGrantConfig;
pub use rate_limit::{LocalRateLimitConfig, RateLimitConfig, RedisRateLimitConfig};
pub use sql::SqlResourceConfig;

/// How the registry checks and opens `resources:`.
pub const SUPPORT: ResourceSupport = ResourceSupport {
    check,
    schema,
    credentials: &[
        "caches.*.redis.url",
        "rate_limits.*.redis.url",
        "sql.*.dsn",
        "http.*.headers.*",
    ],
};

/// Resources declared once and granted by name to the processors that call through them.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ResourcesConfig {
    /// Caches, by name: `memory` (one worker's) or `redis` (shared by every worker, kept across restarts).
    #[serde(default)]
    pub caches: BTreeMap<String, CacheConfig>,
    /// SQL connections, by name: read-only unless `writes` is set.
    #[serde(default)]
    pub sql: BTreeMap<String, SqlResourceConfig>,
    /// HTTP grants, by name: the hosts a processor may call, and how.
    #[serde(default)]
    pub http: BTreeMap<String, HttpGrantConfig>,
    /// Rate limits, by name: `local` (one worker's) or `redis` (shared by every replica).
    #[serde(default)]
    pub rate_limits: BTreeMap<String, RateLimitConfig>,
}

fn schema() -> Value {
    serde_json::to_value(schemars::schema_for!(ResourcesConfig)).unwrap_or(Value::Null)
}

/// A resource name: letters, digits, `_` and `-`.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Reads one section (`caches`) entry by entry, so every entry's problems are reported.
fn entries<T: serde::de::DeserializeOwned>(
    section: &Value,
    name: &str,
    check: &mut Check<'_>,
) -> BTreeMap<String, Option<T>> {
    let mut out = BTreeMap::new();
    match section.get(name) {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (key, v) in map {
                let parsed = airtruct_model::from_value(&check.at(&format!("{name}.{key}")), v)
                    .map_err(|e| check.extend([e]))
                    .ok();
                out.insert(key.clone(), parsed);
            }
        }
        Some(_) => check.problem(name, "expected an object of resources by name"),
    }
    out
}

fn check(section: &Value, check: &mut Check<'_>) -> Option<Arc<dyn ResourcesPlan>> {
    let Some(map) = section.as_object() else {
        check.problem(
            "",
            "expected an object with caches, sql, http and rate_limits",
        );
        return None;
    };
    for key in map.keys() {
        if !["caches", "sql", "http", "rate_limits"].contains(&key.as_str()) {
            check.problem(
                key,
                format!("unknown field \"{key}\", expected one of caches, sql, http, rate_limits"),
            );
        }
    }
    let before = check.problems_len();
    let caches = entries::<CacheConfig>(section, "caches", check);
    let sql = entries::<SqlResourceConfig>(section, "sql", check);
    let http = entries::<HttpGrantConfig>(section, "http", check);
    let rate_limits = entries::<RateLimitConfig>(section, "rate_limits", check);
    let mut declared: Vec<Declared> = Vec::new();
    let mut names: HashMap<String, String> = HashMap::new();
    let mut declare = |check: &mut Check<'_>, capability: Capability, section: &str, name: &str| {
        let at = format!("{section}.{name}");
        if !is_name(name) {
            check.problem(
                &at,
                "a resource name is letters, digits, _ and - (64 at most)",
            );
        }
        if let Some(first) = names.insert(name.to_string(), at.clone()) {
            check.problem(
                &at,
                format!("\"{name}\" is declared twice (also at resources.{first}): processors are granted resources by name"),
            );
        }
        if let Some(Err(e)) = check
            .policy()
            .map(|p| p.check_capability(capability.name()))
        {
            check.problem(&at, e);
        }
        declared.push(Declared {
            capability,
            name: name.to_string(),
            at: check.at(&at),
        });
    };
    for (name, c) in &caches {
        declare(check, Capability::Cache, "caches", name);
        if let Some(c) = c {
            c.check(&mut check.sub(&format!("caches.{name}")));
        }
    }
    for (name, c) in &sql {
        declare(check, Capability::Sql, "sql", name);
        if let Some(c) = c {
            c.check(&mut check.sub(&format!("sql.{name}")));
        }
    }
    for (name, c) in &http {
        declare(check, Capability::Http, "http", name);
        if let Some(c) = c {
            c.check(&mut check.sub(&format!("http.{name}")));
        }
    }
    for (name, c) in &rate_limits {
        declare(check, Capability::RateLimit, "rate_limits", name);
        if let Some(c) = c {
            c.check(&mut check.sub(&format!("rate_limits.{name}")));
        }
    }
    if check.problems_len() != before {
        return None;
    }
    fn all<T>(m: BTreeMap<String, Option<T>>) -> BTreeMap<String, T> {
        m.into_iter().filter_map(|(k, v)| Some((k, v?))).collect()
    }
    let config = ResourcesConfig {
        caches: all(caches),
        sql: all(sql),
        http: all(http),
        rate_limits: all(rate_limits),
    };
    Some(Arc::new(Plan { config, declared }) as Arc<dyn ResourcesPlan>)
}

/// A checked `resources:` section.
struct Plan {
    config: ResourcesConfig,
    declared: Vec<Declared>,
}

#[async_trait]
impl ResourcesPlan for Plan {
    fn declared(&self) -> Vec<Declared> {
        self.declared.clone()
    }

    async fn open(
        &self,
        cx: &BuildContext,
        side_effects: bool,
    ) -> Result<Arc<dyn Resources>, Error> {
        let mut opened = Opened {
            runtime: tokio::runtime::Handle::current(),
            side_effects,
            http: HashMap::new(),
            sql: HashMap::new(),
            caches: HashMap::new(),
            rate_limits: HashMap::new(),
        };
        for (name, c) in &self.config.http {
            opened
                .http
                .insert(name.clone(), http::HttpGrant::open(c, cx)?);
        }
        for (name, c) in &self.config.sql {
            opened
                .sql
                .insert(name.clone(), sql::SqlResource::open(c, cx)?);
        }
        for (name, c) in &self.config.caches {
            opened
                .caches
                .insert(name.clone(), cache::Cache::open(c, cx, name)?);
        }
        for (name, c) in &self.config.rate_limits {
            opened
                .rate_limits
                .insert(name.clone(), rate_limit::Limiter::open(c, cx, name)?);
        }
        Ok(Arc::new(opened))
    }
}

/// Opened resources, serving a stream's processors.
struct Opened {
    runtime: tokio::runtime::Handle,
    /// Whether writes and calls with side effects are allowed (not in a test, unless asked).
    side_effects: bool,
    http: HashMap<String, http::HttpGrant>,
    sql: HashMap<String, sql::SqlResource>,
    caches: HashMap<String, cache::Cache>,
    rate_limits: HashMap<String, rate_limit::Limiter>,
}

/// The refusal of a side effect in a test run.
fn no_side_effects(what: &str) -> HostError {
    HostError::Denied(format!(
        "{what} could change something, and this test run does not allow side effects (ask for them with \
         allow_side_effects)"
    ))
}

impl Opened {
    /// Runs a call on the stream's runtime, blocking this (processor) thread, and gives up at `deadline`.
    fn within<T>(
        &self,
        deadline: Instant,
        call: impl std::future::Future<Output = Result<T, HostError>>,
    ) -> Result<T, HostError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HostError::Timeout);
        }
        self.runtime.block_on(async {
            tokio::time::timeout(left, call)
                .await
                .unwrap_or(Err(HostError::Timeout))
        })
    }
}

fn missing(kind: &str, name: &str) -> HostError {
    HostError::NotGranted(format!(
        "the stream declares no {kind} resource named \"{name}\""
    ))
}

impl Resources for Opened {
    fn http(
        &self,
        name: &str,
        requests: Vec<HttpRequest>,
        deadline: Instant,
    ) -> Vec<Result<HttpResponse, HostError>> {
        let Some(grant) = self.http.get(name) else {
            return requests
                .iter()
                .map(|_| Err(missing("http", name)))
                .collect();
        };
        self.runtime
            .block_on(grant.send_all(requests, deadline, self.side_effects))
    }

    fn sql(
        &self,
        name: &str,
        statement: String,
        params: Vec<SqlValue>,
        deadline: Instant,
    ) -> Result<SqlRows, HostError> {
        let db = self.sql.get(name).ok_or_else(|| missing("sql", name))?;
        self.within(deadline, db.query(&statement, params, self.side_effects))
    }

    fn cache(&self, name: &str, op: CacheOp, deadline: Instant) -> Result<CacheAnswer, HostError> {
        let cache = self
            .caches
            .get(name)
            .ok_or_else(|| missing("cache", name))?;
        if !self.side_effects && !matches!(op, CacheOp::Get(_)) {
            return Err(no_side_effects("writing to a cache"));
        }
        self.within(deadline, cache.apply(op))
    }

    fn rate_limit(&self, name: &str, count: u32) -> Result<(), HostError> {
        let limiter = self
            .rate_limits
            .get(name)
            .ok_or_else(|| missing("rate limit", name))?;
        self.runtime.block_on(limiter.take(count))
    }
}

/// Checks a duration option is above zero.
fn positive(check: &mut Check<'_>, field: &str, d: &airtruct_model::Duration) {
    if d.0.is_zero() {
        check.problem(field, "must be above zero");
    }
}
