//! `kafka` output: produces each message and confirms the batch only once the brokers acknowledged every message
//! (`acks=all`, idempotent producer by default). The key comes from metadata (`kafka_key` by default), headers
//! from every `kafka_header_<name>` metadata key, and the topic is fixed or read from metadata.

use std::time::Duration;

use async_trait::async_trait;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::kafka::KafkaConnection;
use airtruct_runtime::kind::{Check, Kind, OutputKind};
use airtruct_runtime::{BuildContext, Error, Message, Metadata, Output, meta_get};

/// Compression of produced batches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

/// Produces to Kafka.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct KafkaOutputConfig {
    #[serde(flatten)]
    pub connection: KafkaConnection,
    /// The topic to produce to.
    #[serde(default)]
    pub topic: Option<String>,
    /// A metadata key holding the topic (instead of `topic`, or where a message has it).
    #[serde(default)]
    pub topic_metadata: Option<String>,
    /// The metadata key holding the message key (default `kafka_key`; absent: no key).
    #[serde(default = "default_key")]
    pub key_metadata: String,
    /// Compression (default `none`).
    #[serde(default)]
    pub compression: Compression,
    /// Idempotent producer: no duplicates from the producer's own retries (default true).
    #[serde(default = "default_true")]
    pub idempotent: bool,
    /// Longest a batch may wait for the brokers' acknowledgement (default 30s); then it is retried.
    #[serde(default = "default_timeout")]
    pub timeout: airtruct_model::Duration,
}

fn default_key() -> String {
    "kafka_key".into()
}
fn default_true() -> bool {
    true
}
fn default_timeout() -> airtruct_model::Duration {
    airtruct_model::Duration(Duration::from_secs(30))
}

impl Kind for KafkaOutputConfig {
    const NAME: &'static str = "kafka";
    const DESCRIPTION: &'static str = "Produces to a Kafka topic; a batch is confirmed once the brokers acknowledged every message";
    const EXAMPLE: &'static str = r#"{"brokers": ["127.0.0.1:9092"], "topic": "orders-enriched",
        "key_metadata": "kafka_key", "compression": "zstd"}"#;
    const FIELD_ORDER: &'static [&'static str] = &[
        "brokers",
        "topic",
        "topic_metadata",
        "key_metadata",
        "compression",
        "idempotent",
        "timeout",
        "tls",
        "sasl",
        "options",
    ];

    const CREDENTIALS: &'static [&'static str] = crate::kafka::CREDENTIALS;

    fn check(&mut self, check: &mut Check<'_>) {
        self.connection.check(check);
        if self.topic.is_none() && self.topic_metadata.is_none() {
            check.problem("topic", "set topic or topic_metadata");
        }
    }
}

#[async_trait]
impl OutputKind for KafkaOutputConfig {
    async fn build(&self, cx: &BuildContext) -> Result<Box<dyn Output>, Error> {
        self.connection.allow(cx)?;
        Ok(Box::new(self.open()?))
    }
}

impl KafkaOutputConfig {
    /// Creates the producer (connecting happens in the background).
    pub fn open(&self) -> Result<KafkaOutput, Error> {
        let mut c = self.connection.client_config();
        c.set("acks", "all")
            .set(
                "enable.idempotence",
                if self.idempotent { "true" } else { "false" },
            )
            .set(
                "compression.type",
                match self.compression {
                    Compression::None => "none",
                    Compression::Gzip => "gzip",
                    Compression::Snappy => "snappy",
                    Compression::Lz4 => "lz4",
                    Compression::Zstd => "zstd",
                },
            )
            .set("message.timeout.ms", self.timeout.0.as_millis().to_string())
            .set("linger.ms", "5");
        self.connection.apply_options(&mut c);
        let producer: FutureProducer =
            c.create().map_err(|e| Error::User(format!("kafka: {e}")))?;
        Ok(KafkaOutput {
            producer,
            config: self.clone(),
        })
    }
}

/// The running `kafka` output.
pub struct KafkaOutput {
    producer: FutureProducer,
    config: KafkaOutputConfig,
}

fn headers_of(m: &Message) -> Option<OwnedHeaders> {
    let mut headers: Option<OwnedHeaders> = None;
    for (k, v) in Metadata::iter_bytes(&m.metadata) {
        if let Some(name) = k.strip_prefix("kafka_header_") {
            headers = Some(headers.unwrap_or_default().insert(Header {
                key: name,
                value: Some(v),
            }));
        }
    }
    headers
}

#[async_trait]
impl Output for KafkaOutput {
    async fn write(&mut self, batch: &[Message]) -> Result<(), Error> {
        let mut pending = Vec::with_capacity(batch.len());
        for m in batch {
            let topic = self
                .config
                .topic_metadata
                .as_deref()
                .and_then(|k| meta_get(m, k))
                .or(self.config.topic.as_deref())
                .ok_or_else(|| {
                    Error::User(
                        "kafka: a message has no topic (neither topic_metadata nor topic)".into(),
                    )
                })?;
            let mut record = FutureRecord::<str, [u8]>::to(topic).payload(m.payload.as_slice());
            if let Some(k) = meta_get(m, &self.config.key_metadata) {
                record = record.key(k);
            }
            if let Some(h) = headers_of(m) {
                record = record.headers(h);
            }
            // Enqueue everything first; wait for the acknowledgements after.
            loop {
                match self.producer.send_result(record) {
                    Ok(f) => {
                        pending.push(f);
                        break;
                    }
                    Err((e, r)) => {
                        if matches!(
                            e,
                            rdkafka::error::KafkaError::MessageProduction(
                                rdkafka::types::RDKafkaErrorCode::QueueFull
                            )
                        ) {
                            // The local queue is full: wait for some acknowledgements, then enqueue again.
                            if let Some(f) = pending.pop() {
                                check(f.await)?;
                            } else {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                            record = r;
                            continue;
                        }
                        return Err(Error::External(format!("kafka: producing to {topic}: {e}")));
                    }
                }
            }
        }
        for f in pending {
            check(f.await)?;
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<(), Error> {
        use rdkafka::producer::Producer;
        let p = self.producer.clone();
        let _ = tokio::task::spawn_blocking(move || p.flush(Duration::from_secs(10))).await;
        Ok(())
    }
}

fn check<E>(
    r: Result<rdkafka::producer::future_producer::OwnedDeliveryResult, E>,
) -> Result<(), Error> {
    match r {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(Error::External(format!("kafka: not acknowledged: {e}"))),
        Err(_) => Err(Error::External("kafka: the producer went away".into())),
    }
}
