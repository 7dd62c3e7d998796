//! What the Redis input and output share: the connection (a `redis://` URL, a credential field) and how a client
//! connects under the operator's policy.

use std::time::Duration;

use ::redis::AsyncConnectionConfig;
use ::redis::aio::MultiplexedConnection;

use airtruct_runtime::kind::Check;
use airtruct_runtime::{BuildContext, Error};

/// The fields of a Redis connection that carry credentials.
pub const CREDENTIALS: &[&str] = &["url"];

/// The URL schemes taken.
const SCHEMES: &[&str] = &["redis"];

pub fn check_url(check: &mut Check<'_>, url: &str) {
    crate::net::check_url(check, "url", url, SCHEMES);
}

/// Reports a problem unless exactly one of the ways (`stream`, `list`, ...) is set.
pub fn check_one_way(check: &mut Check<'_>, ways: &[(&str, bool)]) {
    if ways.iter().filter(|(_, set)| *set).count() != 1 {
        let names: Vec<&str> = ways.iter().map(|(name, _)| *name).collect();
        check.problem("", format!("exactly one of {}", names.join(", ")));
    }
}

/// A Redis error as a stream error: retried, with what was being done.
pub fn external(what: &str) -> impl Fn(::redis::RedisError) -> Error + '_ {
    move |e| Error::External(format!("redis: {what}: {e}"))
}

/// A client for `url`, once the policy allows it.
pub async fn client(cx: &BuildContext, url: &str) -> Result<::redis::Client, Error> {
    crate::net::allow_url(cx, "redis", url).await?;
    ::redis::Client::open(url).map_err(|e| Error::User(format!("redis: url: {e}")))
}

/// A connection whose commands may block (`BLOCK`, `BLMOVE`): no response timeout.
pub async fn connect(client: &::redis::Client) -> Result<MultiplexedConnection, Error> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(None);
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(external("connecting"))
}
