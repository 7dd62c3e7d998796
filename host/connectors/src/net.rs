//! The operator's egress policy for connectors that open their own connections (brokers): the URL's host and
//! port, and every address the host resolves to, must be allowed before a client connects.

use std::net::SocketAddr;

use airtruct_runtime::kind::Check;
use airtruct_runtime::policy::{Policy, url_destination};
use airtruct_runtime::{BuildContext, Error};

/// Checks a broker URL at validation: it must name a host, which the policy must allow.
pub fn check_url(check: &mut Check<'_>, field: &str, url: &str, schemes: &[&str]) {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    if !scheme.as_deref().is_some_and(|s| schemes.contains(&s)) {
        check.problem(
            field,
            format!("expected a {} URL", schemes.join(":// or ") + "://"),
        );
        return;
    }
    if url_destination(url).is_none() {
        check.problem(field, "the URL names no host");
        return;
    }
    check.url(field, url);
}

/// Before connecting: the URL's host and port, then every address it resolves to, against the policy.
pub async fn allow_url(cx: &BuildContext, what: &str, url: &str) -> Result<(), Error> {
    let Some(policy) = cx.policy.clone() else {
        return Ok(());
    };
    cx.check_url(what, url)?;
    let (host, addrs) = resolve(url)
        .await
        .map_err(|e| Error::External(format!("{what}: {e}")))?;
    addresses_allowed(&policy, &host, &addrs).map_err(|e| Error::User(format!("{what}: {e}")))
}

/// The host a URL names and every address it resolves to now.
pub async fn resolve(url: &str) -> Result<(String, Vec<SocketAddr>), String> {
    let (host, port) = url_destination(url).ok_or("the URL names no host")?;
    let addrs = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| format!("resolving {host}: {e}"))?
        .collect();
    Ok((host, addrs))
}

/// Why a client may not connect to `host` at these addresses, if it may not: every one must be allowed.
pub fn addresses_allowed(policy: &Policy, host: &str, addrs: &[SocketAddr]) -> Result<(), String> {
    for a in addrs {
        policy
            .check_address(*a)
            .map_err(|e| format!("{host} resolves to {e}"))?;
    }
    Ok(())
}
