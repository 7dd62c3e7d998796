//! What the NATS input and output share: the connection from a `nats://` URL (a credential field: a user and
//! password in the URL), opened under the operator's policy, and the headers that travel as
//! `nats_header_<name>` metadata.

use async_nats::HeaderMap;

use airtruct_runtime::kind::Check;
use airtruct_runtime::{BuildContext, Error, Metadata};

/// The fields of a NATS connection that carry credentials.
pub const CREDENTIALS: &[&str] = &["url"];

/// The metadata prefix of a header.
pub const HEADER_PREFIX: &str = "nats_header_";

pub fn check_url(check: &mut Check<'_>, url: &str) {
    crate::net::check_url(check, "url", url, &["nats"]);
}

/// A NATS error as a stream error (retried).
pub fn external<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> Error + '_ {
    move |e| Error::External(format!("nats: {what}: {e}"))
}

/// A client, once the policy allows the URL.
pub async fn connect(cx: &BuildContext, url: &str) -> Result<async_nats::Client, Error> {
    crate::net::allow_url(cx, "nats", url).await?;
    async_nats::ConnectOptions::new()
        .name("airtruct")
        .connection_timeout(std::time::Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(external("connecting"))
}

/// The `nats_header_<name>` metadata of a message as headers.
pub fn headers_of(metadata: &[u8]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in Metadata::iter_bytes(metadata) {
        if let Some(name) = k.strip_prefix(HEADER_PREFIX)
            && !name.is_empty()
        {
            h.insert(name, v);
        }
    }
    h
}

/// A message's headers as `nats_header_<name>` metadata.
pub fn headers_into(headers: Option<&HeaderMap>, meta: &mut Metadata) {
    for (name, values) in headers.into_iter().flat_map(HeaderMap::iter) {
        if let Some(v) = values.first() {
            meta.insert(&format!("{HEADER_PREFIX}{name}"), v.as_str());
        }
    }
}
