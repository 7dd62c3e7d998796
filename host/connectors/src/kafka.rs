//! What the Kafka input and output share: the connection settings (brokers, TLS, SASL, pass-through
//! librdkafka properties) and how they become a client configuration.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;
use schemars::JsonSchema;
use serde::Deserialize;

use airtruct_runtime::kind::Check;
use airtruct_runtime::policy::Policy;

/// SASL credentials.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct KafkaSasl {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: String,
    pub username: String,
    /// Write it as `${secret:NAME}`.
    pub password: String,
}

/// Connection settings shared by the Kafka input and output.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct KafkaConnection {
    /// Bootstrap brokers (`host:9092`).
    pub brokers: Vec<String>,
    /// Connect with TLS (librdkafka's `ssl.*` options go in `options`).
    #[serde(default)]
    pub tls: bool,
    /// SASL authentication.
    #[serde(default)]
    pub sasl: Option<KafkaSasl>,
    /// Any other librdkafka property, passed through (`ssl.ca.location`, `fetch.max.bytes`).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

impl KafkaConnection {
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.brokers.join(","));
        let protocol = match (self.tls, self.sasl.is_some()) {
            (false, false) => "plaintext",
            (true, false) => "ssl",
            (false, true) => "sasl_plaintext",
            (true, true) => "sasl_ssl",
        };
        c.set("security.protocol", protocol);
        if let Some(s) = &self.sasl {
            c.set("sasl.mechanism", &s.mechanism)
                .set("sasl.username", &s.username)
                .set("sasl.password", &s.password);
        }
        c.set_log_level(rdkafka::config::RDKafkaLogLevel::Warning);
        c
    }

    pub(crate) fn apply_options(&self, c: &mut ClientConfig) {
        for (k, v) in &self.options {
            c.set(k, v);
        }
    }

    pub(crate) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.brokers.is_empty() {
            out.push(("brokers", "at least one broker is needed".to_string()));
        }
        if let Some(s) = &self.sasl
            && !matches!(
                s.mechanism.to_ascii_uppercase().as_str(),
                "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512"
            )
        {
            out.push((
                "sasl",
                format!(
                    "mechanism \"{}\" is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
                    s.mechanism
                ),
            ));
        }
        out
    }
}

/// The fields of a Kafka connection that carry credentials.
pub const CREDENTIALS: &[&str] = &[
    "sasl.password",
    "options.ssl.key.password",
    "options.ssl.keystore.password",
];

impl KafkaConnection {
    /// Reports the connection's problems at their fields, the operator's policy included.
    pub fn check(&self, check: &mut Check<'_>) {
        for (field, message) in self.problems() {
            check.problem(field, message);
        }
        if let Some(policy) = check.policy() {
            for (field, message) in self.policy_problems(policy) {
                check.problem(&field, message);
            }
        }
    }

    /// The same policy checks, again before the client is created (nothing is loaded before they pass).
    pub fn allow(
        &self,
        cx: &airtruct_runtime::BuildContext,
    ) -> Result<(), airtruct_runtime::Error> {
        let Some(policy) = cx.policy.as_deref() else {
            return Ok(());
        };
        match self.policy_problems(policy).into_iter().next() {
            Some((field, message)) => Err(airtruct_runtime::Error::User(format!(
                "kafka: {field}: {message}"
            ))),
            None => Ok(()),
        }
    }

    /// Under the policy: every broker an allowed destination, every pass-through property allowed (a file it
    /// names under the path roots); each problem as (field, message).
    fn policy_problems(&self, policy: &Policy) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (i, b) in self.brokers.iter().enumerate() {
            let field = format!("brokers[{i}]");
            match broker_address(b) {
                Some((host, port)) => {
                    if let Err(e) = policy.check_destination(&host, port) {
                        out.push((field, e));
                    }
                }
                None => out.push((field, "expected host:port".to_string())),
            }
        }
        for (key, value) in &self.options {
            let refused = match policy.check_kafka_option(key, value) {
                Ok(Some(path)) => policy.check_path(path).err(),
                Ok(None) => None,
                Err(e) => Some(e),
            };
            if let Some(e) = refused {
                out.push((format!("options.{key}"), e));
            }
        }
        out
    }
}

/// `host:port` of a broker (9092 when the port is missing).
fn broker_address(b: &str) -> Option<(String, u16)> {
    airtruct_runtime::policy::url_destination(&format!("kafka://{b}"))
        .map(|(h, p)| (h, if p == 0 { 9092 } else { p }))
}
