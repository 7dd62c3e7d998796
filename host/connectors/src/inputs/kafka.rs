//! `kafka` input: consumes topics in a consumer group and commits an offset only once every message before it in
//! its partition was confirmed by the output. A stream with `replicas: N` shares the partitions through the group;
//! on a rebalance the consumer commits what was delivered of the partitions it loses, and messages still in flight
//! from them are consumed again by their new owner (at least once).
//!
//! Metadata: `kafka_key`, `kafka_topic`, `kafka_partition`, `kafka_offset`, `kafka_timestamp_ms` and each header
//! as `kafka_header_<name>`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{Headers, Message as _};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::inputs::READ_CHUNK;
use crate::kafka::KafkaConnection;
use airtruct_runtime::kind::{Check, InputKind, Kind};
use airtruct_runtime::{Ack, BuildContext, Delivery, Error, Input, InputBatch, Metadata, message};

/// Where a new consumer group starts. Serialize: the schema shows the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StartFrom {
    /// The oldest message kept.
    #[default]
    Earliest,
    /// Only messages produced from now on.
    Latest,
}

/// Consumes Kafka topics.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct KafkaInputConfig {
    #[serde(flatten)]
    pub connection: KafkaConnection,
    /// Topics to consume; a name starting with `^` is a regular expression.
    pub topics: Vec<String>,
    /// The consumer group: replicas of a stream share its partitions.
    pub consumer_group: String,
    /// Where a group without committed offsets starts (default `earliest`).
    #[serde(default)]
    pub start_from: StartFrom,
}

impl Kind for KafkaInputConfig {
    const NAME: &'static str = "kafka";
    const DESCRIPTION: &'static str = "Consumes Kafka topics in a consumer group; offsets are committed only for \
         messages the output confirmed";
    const EXAMPLE: &'static str = r#"{"brokers": ["127.0.0.1:9092"], "topics": ["orders"],
        "consumer_group": "orders-to-db", "start_from": "earliest"}"#;
    const FIELD_ORDER: &'static [&'static str] = &[
        "brokers",
        "topics",
        "consumer_group",
        "start_from",
        "tls",
        "sasl",
        "options",
    ];

    const CREDENTIALS: &'static [&'static str] = crate::kafka::CREDENTIALS;

    fn check(&mut self, check: &mut Check<'_>) {
        self.connection.check(check);
        if self.topics.is_empty() {
            check.problem("topics", "at least one topic is needed");
        }
        if self.consumer_group.trim().is_empty() {
            check.problem("consumer_group", "must not be empty");
        }
    }
}

#[async_trait]
impl InputKind for KafkaInputConfig {
    async fn build(&self, cx: &BuildContext) -> Result<Box<dyn Input>, Error> {
        self.connection.allow(cx)?;
        Ok(Box::new(self.open()?))
    }
}

impl KafkaInputConfig {
    /// Creates the consumer and subscribes (connecting happens in the background).
    pub fn open(&self) -> Result<KafkaInput, Error> {
        let tracker = Arc::new(Mutex::new(Tracker::default()));
        let mut c = self.connection.client_config();
        c.set("group.id", &self.consumer_group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set(
                "auto.offset.reset",
                match self.start_from {
                    StartFrom::Earliest => "earliest",
                    StartFrom::Latest => "latest",
                },
            )
            // Joins and failovers in seconds rather than tens of seconds.
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000");
        self.connection.apply_options(&mut c);
        let consumer: StreamConsumer<Context> = c
            .create_with_context(Context {
                tracker: tracker.clone(),
            })
            .map_err(|e| Error::User(format!("kafka: {e}")))?;
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(|e| {
            Error::User(format!(
                "kafka: subscribing to {}: {e}",
                self.topics.join(", ")
            ))
        })?;
        Ok(KafkaInput {
            consumer: Arc::new(consumer),
            tracker,
        })
    }
}

/// Offsets handed on and not yet delivered, per partition.
#[derive(Default)]
struct Tracker {
    parts: HashMap<(String, i32), Part>,
}

#[derive(Default)]
struct Part {
    /// Offset -> delivered.
    pending: BTreeMap<i64, bool>,
    /// The next offset to commit (everything before it was delivered).
    committable: Option<i64>,
    committed: Option<i64>,
}

impl Tracker {
    fn delivered(&mut self, topic: &str, partition: i32, offsets: &[i64]) {
        let Some(p) = self.parts.get_mut(&(topic.to_string(), partition)) else {
            return; // revoked meanwhile: its new owner reads it again
        };
        for o in offsets {
            if let Some(d) = p.pending.get_mut(o) {
                *d = true;
            }
        }
        while let Some((&o, &true)) = p.pending.first_key_value() {
            p.pending.pop_first();
            p.committable = Some(o + 1);
        }
    }

    /// Offsets to commit, for the partitions `only` names (all when `None`); marks them committed.
    fn take_commits(&mut self, only: Option<&TopicPartitionList>) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), p) in &mut self.parts {
            if only.is_some_and(|l| l.find_partition(topic, *partition).is_none()) {
                continue;
            }
            if let Some(next) = p.committable
                && p.committed != Some(next)
            {
                let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(next));
                p.committed = Some(next);
            }
        }
        tpl
    }
}

struct Context {
    tracker: Arc<Mutex<Tracker>>,
}

impl ClientContext for Context {}

impl ConsumerContext for Context {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(lost) = rebalance {
            let mut t = self.tracker.lock().expect("kafka tracker");
            let tpl = t.take_commits(Some(lost));
            if tpl.count() > 0
                && let Err(e) = consumer.commit(&tpl, CommitMode::Sync)
            {
                tracing::warn!(error = %e, "kafka: committing before a rebalance failed");
            }
            for e in lost.elements() {
                t.parts.remove(&(e.topic().to_string(), e.partition()));
            }
        }
    }
}

/// The running `kafka` input.
pub struct KafkaInput {
    consumer: Arc<StreamConsumer<Context>>,
    tracker: Arc<Mutex<Tracker>>,
}

impl KafkaInput {
    fn commit(&self, mode: CommitMode) -> Result<(), Error> {
        let tpl = self
            .tracker
            .lock()
            .expect("kafka tracker")
            .take_commits(None);
        if tpl.count() == 0 {
            return Ok(());
        }
        self.consumer
            .commit(&tpl, mode)
            .map_err(|e| Error::External(format!("kafka: committing offsets: {e}")))
    }
}

fn to_message(m: &rdkafka::message::BorrowedMessage<'_>) -> airtruct_runtime::Message {
    let mut meta = Metadata::default();
    if let Some(k) = m.key() {
        meta.insert("kafka_key", &String::from_utf8_lossy(k));
    }
    meta.insert("kafka_topic", m.topic());
    meta.insert("kafka_partition", &m.partition().to_string());
    meta.insert("kafka_offset", &m.offset().to_string());
    if let Some(ts) = m.timestamp().to_millis() {
        meta.insert("kafka_timestamp_ms", &ts.to_string());
    }
    if let Some(h) = m.headers() {
        for header in h.iter() {
            if let Some(v) = header.value {
                meta.insert(
                    &format!("kafka_header_{}", header.key),
                    &String::from_utf8_lossy(v),
                );
            }
        }
    }
    message(m.payload().unwrap_or_default().to_vec(), meta)
}

#[async_trait]
impl Input for KafkaInput {
    async fn read(&mut self) -> Result<Option<InputBatch>, Error> {
        // Commit what was delivered since the last read (asynchronously: a failed commit is retried next time).
        if let Err(e) = self.commit(CommitMode::Async) {
            tracing::warn!(error = %e, "kafka: commit failed; retrying with the next batch");
        }
        let first = self
            .consumer
            .recv()
            .await
            .map_err(|e| Error::External(format!("kafka: {e}")))?;
        let mut messages = vec![to_message(&first)];
        let mut offsets: BTreeMap<(String, i32), Vec<i64>> = BTreeMap::new();
        offsets
            .entry((first.topic().to_string(), first.partition()))
            .or_default()
            .push(first.offset());
        drop(first);
        while messages.len() < READ_CHUNK {
            match tokio::time::timeout(Duration::ZERO, self.consumer.recv()).await {
                Ok(Ok(m)) => {
                    messages.push(to_message(&m));
                    offsets
                        .entry((m.topic().to_string(), m.partition()))
                        .or_default()
                        .push(m.offset());
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "kafka: consumer error");
                    break;
                }
                Err(_) => break,
            }
        }
        {
            let mut t = self.tracker.lock().expect("kafka tracker");
            for ((topic, partition), list) in &offsets {
                let p = t.parts.entry((topic.clone(), *partition)).or_default();
                for o in list {
                    p.pending.insert(*o, false);
                }
            }
        }
        let tracker = self.tracker.clone();
        let ack = Ack::new(move |d| {
            if d == Delivery::Delivered {
                let mut t = tracker.lock().expect("kafka tracker");
                for ((topic, partition), list) in &offsets {
                    t.delivered(topic, *partition, list);
                }
            }
        });
        Ok(Some(InputBatch { messages, ack }))
    }

    async fn close(&mut self) -> Result<(), Error> {
        let consumer = self.consumer.clone();
        let tracker = self.tracker.clone();
        tokio::task::spawn_blocking(move || {
            let tpl = tracker.lock().expect("kafka tracker").take_commits(None);
            if tpl.count() == 0 {
                return Ok(());
            }
            consumer
                .commit(&tpl, CommitMode::Sync)
                .map_err(|e| Error::External(format!("kafka: committing offsets: {e}")))
        })
        .await
        .map_err(|e| Error::Internal(format!("kafka commit task: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_past_the_first_undelivered_offset() {
        let mut t = Tracker::default();
        let p = t.parts.entry(("t".into(), 0)).or_default();
        for o in 10..15 {
            p.pending.insert(o, false);
        }
        t.delivered("t", 0, &[10, 11, 13]);
        let tpl = t.take_commits(None);
        assert_eq!(
            tpl.find_partition("t", 0).unwrap().offset(),
            Offset::Offset(12)
        );
        // Nothing new: nothing to commit.
        assert_eq!(t.take_commits(None).count(), 0);
        t.delivered("t", 0, &[12, 14]);
        assert_eq!(
            t.take_commits(None)
                .find_partition("t", 0)
                .unwrap()
                .offset(),
            Offset::Offset(15)
        );
        // A partition that was revoked is ignored.
        t.delivered("other", 3, &[1]);
    }
}
