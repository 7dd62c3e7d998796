//! `nats` output: publishes each message on a subject, fixed or from metadata, with `nats_header_<name>` metadata
//! as headers. With `jetstream`, a batch is confirmed once JetStream acknowledged storing every message (the
//! subject must be on a stream); without, once the server has them (a flush), at most once for subscribers.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::nats::{CREDENTIALS, check_url, connect, external, headers_of};
use airtruct_runtime::kind::{Check, Kind, OutputKind};
use airtruct_runtime::{BuildContext, Error, Message, Output, meta_get};

fn default_timeout() -> airtruct_model::Duration {
    airtruct_model::Duration(Duration::from_secs(30))
}

/// Publishes to NATS.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct NatsOutputConfig {
    /// `nats://[user:password@]host:4222`; write the password as `${secret:NAME}`.
    pub url: String,
    /// The subject to publish on.
    #[serde(default)]
    pub subject: Option<String>,
    /// A metadata key holding the subject, where a message has it (`nats_subject` to keep an input's).
    #[serde(default)]
    pub subject_metadata: Option<String>,
    /// Wait for JetStream to acknowledge storing each message (the subject must be on a stream).
    #[serde(default)]
    pub jetstream: bool,
    /// Longest a batch may wait for its acknowledgements (default 30s); then it is retried.
    #[serde(default = "default_timeout")]
    pub timeout: airtruct_model::Duration,
}

impl Kind for NatsOutputConfig {
    const NAME: &'static str = "nats";
    const DESCRIPTION: &'static str = "Publishes on a NATS subject; with jetstream, a batch is confirmed once \
         JetStream stored every message";
    const EXAMPLE: &'static str =
        r#"{"url": "nats://127.0.0.1:4222", "subject": "orders.enriched"}"#;
    const CREDENTIALS: &'static [&'static str] = CREDENTIALS;

    fn check(&mut self, check: &mut Check<'_>) {
        check_url(check, &self.url);
        if self.subject.is_none() && self.subject_metadata.is_none() {
            check.problem("subject", "set subject or subject_metadata");
        }
        if self
            .subject
            .as_ref()
            .is_some_and(|s| s.is_empty() || s.contains(char::is_whitespace))
        {
            check.problem("subject", "a subject, without spaces");
        }
    }
}

#[async_trait]
impl OutputKind for NatsOutputConfig {
    async fn build(&self, cx: &BuildContext) -> Result<Box<dyn Output>, Error> {
        let client = connect(cx, &self.url).await?;
        Ok(Box::new(NatsOutput {
            config: self.clone(),
            jetstream: self
                .jetstream
                .then(|| async_nats::jetstream::new(client.clone())),
            client,
        }))
    }
}

/// The running `nats` output.
pub struct NatsOutput {
    config: NatsOutputConfig,
    client: async_nats::Client,
    jetstream: Option<async_nats::jetstream::Context>,
}

impl NatsOutput {
    fn subject<'a>(&'a self, m: &'a Message) -> Result<&'a str, Error> {
        let c = &self.config;
        c.subject_metadata
            .as_deref()
            .and_then(|k| meta_get(m, k))
            .or(c.subject.as_deref())
            .ok_or_else(|| Error::User("nats: the message has no subject metadata".into()))
    }
}

#[async_trait]
impl Output for NatsOutput {
    async fn write(&mut self, batch: &[Message]) -> Result<(), Error> {
        let publish = async {
            if let Some(js) = &self.jetstream {
                let mut acks = Vec::with_capacity(batch.len());
                for m in batch {
                    acks.push(
                        js.publish_with_headers(
                            self.subject(m)?.to_string(),
                            headers_of(&m.metadata),
                            bytes::Bytes::copy_from_slice(&m.payload),
                        )
                        .await
                        .map_err(external("publishing"))?,
                    );
                }
                for a in acks {
                    a.await.map_err(external("storing"))?;
                }
            } else {
                for m in batch {
                    self.client
                        .publish_with_headers(
                            self.subject(m)?.to_string(),
                            headers_of(&m.metadata),
                            bytes::Bytes::copy_from_slice(&m.payload),
                        )
                        .await
                        .map_err(external("publishing"))?;
                }
                self.client.flush().await.map_err(external("flushing"))?;
            }
            Ok(())
        };
        tokio::time::timeout(self.config.timeout.0, publish)
            .await
            .map_err(|_| {
                Error::External(format!(
                    "nats: no acknowledgement within {}",
                    humantime::format_duration(self.config.timeout.0)
                ))
            })?
    }
}
