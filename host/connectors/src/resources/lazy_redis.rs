//! A Redis connection for a resource (a cache, a rate limit): made when first used, under the operator's policy
//! (every address the host resolves to, checked before connecting), and made again after a failure.

use std::sync::Arc;
use std::time::Duration;

use airtruct_engine::HostError;
use airtruct_runtime::policy::Policy;
use airtruct_runtime::{BuildContext, Error};
use redis::aio::MultiplexedConnection;

pub(super) struct LazyRedis {
    client: redis::Client,
    url: String,
    policy: Option<Arc<Policy>>,
    conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
}

/// A Redis error as a host error.
pub(super) fn failed(e: redis::RedisError) -> HostError {
    if e.is_timeout() {
        HostError::Timeout
    } else {
        HostError::Failed(format!("redis: {e}"))
    }
}

impl LazyRedis {
    /// Checks the URL against the policy now; connects later. `what` names the resource in errors.
    pub(super) fn open(cx: &BuildContext, what: &str, url: &str) -> Result<Self, Error> {
        cx.check_url(what, url)?;
        let client =
            redis::Client::open(url).map_err(|e| Error::User(format!("{what}: url: {e}")))?;
        Ok(Self {
            client,
            url: url.to_string(),
            policy: cx.policy.clone(),
            conn: tokio::sync::Mutex::new(None),
        })
    }

    /// The connection, made now if there is none.
    pub(super) async fn get(&self) -> Result<MultiplexedConnection, HostError> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        if let Some(policy) = &self.policy {
            let (host, addrs) = crate::net::resolve(&self.url)
                .await
                .map_err(|e| HostError::Failed(format!("redis: {e}")))?;
            crate::net::addresses_allowed(policy, &host, &addrs)
                .map_err(|e| HostError::Denied(format!("redis: {e}")))?;
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)));
        let c = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(failed)?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Forgets a connection that failed: the next call connects again.
    pub(super) async fn reset(&self) {
        *self.conn.lock().await = None;
    }
}
