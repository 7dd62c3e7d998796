//! The host side of 0.2.0's capabilities: what an instance is granted ([`Grants`]), the stream's resources that
//! serve the calls ([`Resources`], implemented by the runtime), and the imports that check one against the other.
//!
//! Every call is checked against the instance's grants before it reaches a resource, and every failure is a
//! [`HostError`] value for the guest: nothing a guest asks of the host traps it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bindings::v2::airtruct::processor as wit;
pub use crate::bindings::v2::{
    Capability, HostError, HttpRequest, HttpResponse, SqlRows, SqlValue,
};
use crate::instance::State;

impl Capability {
    /// The name a stream config and the catalogue use (`http`, `rate_limit`).
    pub fn name(self) -> &'static str {
        match self {
            Capability::Http => "http",
            Capability::Sql => "sql",
            Capability::Cache => "cache",
            Capability::RateLimit => "rate_limit",
        }
    }

    /// Every capability, in the contract's order.
    pub const ALL: [Capability; 4] = [
        Capability::Http,
        Capability::Sql,
        Capability::Cache,
        Capability::RateLimit,
    ];
}

/// The resources one processor may use, by capability and name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants(BTreeSet<(&'static str, String)>);

impl Grants {
    /// Grants the resource `name` of this capability.
    pub fn grant(&mut self, capability: Capability, name: &str) {
        self.0.insert((capability.name(), name.to_string()));
    }

    pub fn allows(&self, capability: Capability, name: &str) -> bool {
        self.0.contains(&(capability.name(), name.to_string()))
    }

    /// Whether any resource of this capability is granted.
    pub fn has(&self, capability: Capability) -> bool {
        self.0.iter().any(|(c, _)| *c == capability.name())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A cache operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheOp {
    Get(String),
    Set {
        key: String,
        value: Vec<u8>,
        ttl: Option<Duration>,
    },
    /// Set only when absent.
    Add {
        key: String,
        value: Vec<u8>,
        ttl: Option<Duration>,
    },
    Delete(String),
}

/// What a cache operation gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheAnswer {
    /// A `Get`'s value.
    Value(Option<Vec<u8>>),
    /// Whether an `Add` set the key.
    Added(bool),
    /// A `Set` or `Delete` done.
    Done,
}

/// A stream's resources, serving capability calls. Called on the processor thread inside a wasm call: each
/// method blocks until its answer and gives up by `deadline` (the end of the processor's time limit).
pub trait Resources: Send + Sync + 'static {
    /// Sends requests through the `http` resource `name`, as many at once as it allows; answers in order.
    fn http(
        &self,
        name: &str,
        requests: Vec<HttpRequest>,
        deadline: Instant,
    ) -> Vec<Result<HttpResponse, HostError>>;
    /// Runs a statement on the `sql` resource `name`.
    fn sql(
        &self,
        name: &str,
        statement: String,
        params: Vec<SqlValue>,
        deadline: Instant,
    ) -> Result<SqlRows, HostError>;
    /// An operation on the cache `name`.
    fn cache(&self, name: &str, op: CacheOp, deadline: Instant) -> Result<CacheAnswer, HostError>;
    /// Takes `count` from the rate limit `name`, waiting as long as the limit's own longest wait at most (the
    /// wait does not count against the processor's time limit).
    fn rate_limit(&self, name: &str, count: u32) -> Result<(), HostError>;
}

/// What an instance reaches the host's resources through: the stream's resources and this processor's grants.
#[derive(Clone)]
pub struct HostAccess {
    pub resources: Arc<dyn Resources>,
    pub grants: Arc<Grants>,
}

impl std::fmt::Debug for HostAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostAccess")
            .field("grants", &self.grants)
            .finish()
    }
}

impl State {
    /// The resources, once the call is granted `name` of `capability`.
    fn granted(&self, capability: Capability, name: &str) -> Result<Arc<dyn Resources>, HostError> {
        match &self.access {
            Some(a) if a.grants.allows(capability, name) => Ok(a.resources.clone()),
            _ => Err(HostError::NotGranted(format!(
                "the stream grants this processor no {} resource named \"{name}\"",
                capability.name()
            ))),
        }
    }
}

impl wit::capabilities::Host for State {}

impl wit::log::Host for State {
    fn log(&mut self, level: wit::log::Level, message: String) {
        use crate::bindings::Level as L;
        let level = match level {
            wit::log::Level::Trace => L::Trace,
            wit::log::Level::Debug => L::Debug,
            wit::log::Level::Info => L::Info,
            wit::log::Level::Warn => L::Warn,
            wit::log::Level::Error => L::Error,
        };
        crate::bindings::airtruct::processor::log::Host::log(self, level, message)
    }
}

impl wit::http::Host for State {
    fn send(&mut self, name: String, request: HttpRequest) -> Result<HttpResponse, HostError> {
        let resources = self.granted(Capability::Http, &name)?;
        resources
            .http(&name, vec![request], self.deadline)
            .pop()
            .unwrap_or(Err(HostError::Failed("no answer".into())))
    }

    fn send_all(
        &mut self,
        name: String,
        requests: Vec<HttpRequest>,
    ) -> Vec<Result<HttpResponse, HostError>> {
        match self.granted(Capability::Http, &name) {
            Ok(resources) => resources.http(&name, requests, self.deadline),
            Err(e) => requests.iter().map(|_| Err(e.clone())).collect(),
        }
    }
}

impl wit::sql::Host for State {
    fn query(
        &mut self,
        name: String,
        statement: String,
        params: Vec<SqlValue>,
    ) -> Result<SqlRows, HostError> {
        let resources = self.granted(Capability::Sql, &name)?;
        resources.sql(&name, statement, params, self.deadline)
    }
}

fn ttl(ms: Option<u64>) -> Option<Duration> {
    ms.map(Duration::from_millis)
}

impl wit::cache::Host for State {
    fn get(&mut self, name: String, key: String) -> Result<Option<Vec<u8>>, HostError> {
        let resources = self.granted(Capability::Cache, &name)?;
        match resources.cache(&name, CacheOp::Get(key), self.deadline)? {
            CacheAnswer::Value(v) => Ok(v),
            other => Err(HostError::Failed(format!("unexpected answer {other:?}"))),
        }
    }

    fn set(
        &mut self,
        name: String,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<(), HostError> {
        let resources = self.granted(Capability::Cache, &name)?;
        let op = CacheOp::Set {
            key,
            value,
            ttl: ttl(ttl_ms),
        };
        resources.cache(&name, op, self.deadline).map(|_| ())
    }

    fn add(
        &mut self,
        name: String,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<bool, HostError> {
        let resources = self.granted(Capability::Cache, &name)?;
        let op = CacheOp::Add {
            key,
            value,
            ttl: ttl(ttl_ms),
        };
        match resources.cache(&name, op, self.deadline)? {
            CacheAnswer::Added(added) => Ok(added),
            other => Err(HostError::Failed(format!("unexpected answer {other:?}"))),
        }
    }

    fn delete(&mut self, name: String, key: String) -> Result<(), HostError> {
        let resources = self.granted(Capability::Cache, &name)?;
        resources
            .cache(&name, CacheOp::Delete(key), self.deadline)
            .map(|_| ())
    }
}

impl wit::rate_limit::Host for State {
    fn take(&mut self, name: String, count: u32) -> Result<(), HostError> {
        let resources = self.granted(Capability::RateLimit, &name)?;
        let started = Instant::now();
        let taken = resources.rate_limit(&name, count);
        // The wait is given back to the call's time limit.
        let waited = started.elapsed();
        self.excused += waited;
        self.deadline += waited;
        taken
    }
}
