//! What the AMQP 0-9-1 (RabbitMQ) input and output share: the connection from an `amqp://` URL (a credential
//! field), opened under the operator's policy, and the headers that travel as `amqp_header_<name>` metadata.

use amqprs::channel::Channel;
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::{FieldTable, FieldValue};
use percent_encoding::percent_decode_str;

use airtruct_runtime::kind::Check;
use airtruct_runtime::{BuildContext, Error, Metadata};

/// The fields of an AMQP connection that carry credentials.
pub const CREDENTIALS: &[&str] = &["url"];

/// The metadata prefix of a header.
pub const HEADER_PREFIX: &str = "amqp_header_";

pub fn check_url(check: &mut Check<'_>, url: &str) {
    crate::net::check_url(check, "url", url, &["amqp"]);
    if let Err(e) = arguments(url) {
        check.problem("url", e);
    }
}

/// An AMQP error as a stream error (retried).
pub fn external(what: &str) -> impl Fn(amqprs::error::Error) -> Error + '_ {
    move |e| Error::External(format!("amqp: {what}: {e}"))
}

/// `amqp://user:password@host:5672/vhost` as connection arguments (guest/guest and vhost `/` by default).
fn arguments(url: &str) -> Result<OpenConnectionArguments, String> {
    let u = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    let host = u.host_str().ok_or("the URL names no host")?;
    let user = if u.username().is_empty() {
        "guest".to_string()
    } else {
        decode(u.username())
    };
    let password = u.password().map_or_else(|| "guest".to_string(), decode);
    let vhost = match u.path() {
        "" | "/" => "/".to_string(),
        p => decode(&p[1..]),
    };
    let mut args = OpenConnectionArguments::new(host, u.port().unwrap_or(5672), &user, &password);
    args.virtual_host(&vhost);
    Ok(args)
}

/// A connection and a channel, once the policy allows the URL.
pub async fn open(
    cx: &BuildContext,
    url: &str,
    name: &str,
) -> Result<(Connection, Channel), Error> {
    crate::net::allow_url(cx, "amqp", url).await?;
    let mut args = arguments(url).map_err(|e| Error::User(format!("amqp: url: {e}")))?;
    args.connection_name(name);
    let conn = Connection::open(&args)
        .await
        .map_err(external("connecting"))?;
    let channel = conn
        .open_channel(None)
        .await
        .map_err(external("opening a channel"))?;
    Ok((conn, channel))
}

/// A header's value as text.
pub fn header_text(v: &FieldValue) -> String {
    match v {
        FieldValue::x(b) => String::from_utf8_lossy(&Vec::<u8>::from(b.clone())).into_owned(),
        other => other.to_string(),
    }
}

/// The `amqp_header_<name>` metadata of a message as headers.
pub fn headers_of(metadata: &[u8]) -> FieldTable {
    let mut t = FieldTable::new();
    for (k, v) in Metadata::iter_bytes(metadata) {
        if let Some(name) = k.strip_prefix(HEADER_PREFIX)
            && let (Ok(name), Ok(value)) = (name.try_into(), v.try_into())
        {
            t.insert(name, FieldValue::S(value));
        }
    }
    t
}
