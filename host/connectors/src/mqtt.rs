//! What the MQTT input and output share: the connection options from an `mqtt://` URL (a credential field: a user
//! and password in the URL), checked against the operator's policy, and the event loop each client needs polled.

use std::time::Duration;

use percent_encoding::percent_decode_str;
use rumqttc::{AsyncClient, EventLoop, MqttOptions, QoS};

use airtruct_runtime::kind::Check;
use airtruct_runtime::{BuildContext, Error};

/// The fields of an MQTT connection that carry credentials.
pub const CREDENTIALS: &[&str] = &["url"];

/// An MQTT quality of service: 0 (at most once), 1 (at least once) or 2 (exactly once between client and
/// broker); anything else is refused by `check`.
pub fn qos(level: u8) -> QoS {
    match level {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

pub fn default_qos() -> u8 {
    1
}

pub fn check_url(check: &mut Check<'_>, url: &str) {
    crate::net::check_url(check, "url", url, &["mqtt", "tcp"]);
}

/// An MQTT error as a stream error (retried).
pub fn external<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> Error + '_ {
    move |e| Error::External(format!("mqtt: {what}: {e}"))
}

/// A client for `url` under `client_id`, once the policy allows the URL; `clean` starts a fresh session.
pub async fn client(
    cx: &BuildContext,
    url: &str,
    client_id: &str,
    clean: bool,
) -> Result<(AsyncClient, EventLoop), Error> {
    crate::net::allow_url(cx, "mqtt", url).await?;
    let u = reqwest::Url::parse(url).map_err(|e| Error::User(format!("mqtt: url: {e}")))?;
    let host = u
        .host_str()
        .ok_or_else(|| Error::User("mqtt: url: no host".into()))?;
    let mut options = MqttOptions::new(client_id, host, u.port().unwrap_or(1883));
    options
        .set_keep_alive(Duration::from_secs(10))
        .set_clean_session(clean)
        .set_manual_acks(true)
        .set_max_packet_size(16 << 20, 16 << 20);
    if !u.username().is_empty() {
        let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
        options.set_credentials(
            decode(u.username()),
            u.password().map(decode).unwrap_or_default(),
        );
    }
    Ok(AsyncClient::new(options, 1024))
}
