//! `nats` input: core NATS subjects (at most once: NATS keeps nothing for a subscriber that is away), or a
//! JetStream durable pull consumer whose messages are acknowledged only once the output confirmed them; what is
//! not acknowledged within `ack_wait` (a worker killed mid batch) JetStream delivers again. The stream may be
//! created at start.
//!
//! Metadata: `nats_subject`, `nats_sequence` (JetStream's stream sequence) and each header as
//! `nats_header_<name>`.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::message::Acker;
use async_trait::async_trait;
use futures_util::StreamExt;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::acks::AckTask;
use crate::inputs::READ_CHUNK;
use crate::nats::{CREDENTIALS, check_url, connect, external, headers_into};
use airtruct_runtime::kind::{Check, InputKind, Kind};
use airtruct_runtime::{Ack, BuildContext, Error, Input, InputBatch, Metadata, message};

/// Where a new durable consumer starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Deliver {
    /// Every message the stream holds.
    #[default]
    All,
    /// Only messages stored from now on.
    New,
}

/// A JetStream durable consumer.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct JetStreamInput {
    /// The stream; absent: the stream that holds `subject`.
    #[serde(default)]
    pub stream: Option<String>,
    /// Create the stream (named `stream`, on `subject`, kept on disk) when it is missing.
    #[serde(default)]
    pub create_stream: bool,
    /// The durable consumer's name: replicas of a stream share it, and it keeps its place across restarts.
    pub durable: String,
    /// Where a new consumer starts (default `all`).
    #[serde(default)]
    pub deliver: Deliver,
    /// How long a message may stay unacknowledged before JetStream delivers it again (default `30s`).
    #[serde(default = "default_ack_wait")]
    pub ack_wait: airtruct_model::Duration,
}

fn default_ack_wait() -> airtruct_model::Duration {
    airtruct_model::Duration(Duration::from_secs(30))
}

/// Reads NATS subjects, or a JetStream consumer.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct NatsInputConfig {
    /// `nats://[user:password@]host:4222`; write the password as `${secret:NAME}`.
    pub url: String,
    /// The subject (`orders.>`, `orders.*`).
    pub subject: String,
    /// A queue group for core subscriptions: each message goes to one member (replicas share it).
    #[serde(default)]
    pub queue: Option<String>,
    /// Read through a JetStream durable consumer, acknowledged once delivered.
    #[serde(default)]
    pub jetstream: Option<JetStreamInput>,
}

impl Kind for NatsInputConfig {
    const NAME: &'static str = "nats";
    const DESCRIPTION: &'static str = "Reads NATS subjects, or a JetStream durable consumer whose messages are \
         acknowledged once delivered";
    const EXAMPLE: &'static str = r#"{"url": "nats://127.0.0.1:4222", "subject": "orders.>",
        "jetstream": {"stream": "ORDERS", "create_stream": true, "durable": "airtruct-orders"}}"#;
    const CREDENTIALS: &'static [&'static str] = CREDENTIALS;

    fn check(&mut self, check: &mut Check<'_>) {
        check_url(check, &self.url);
        if self.subject.is_empty() || self.subject.contains(char::is_whitespace) {
            check.problem("subject", "a subject, without spaces");
        }
        if let Some(js) = &self.jetstream {
            if self.queue.is_some() {
                check.problem(
                    "queue",
                    "a JetStream consumer is shared by its durable name: no queue group",
                );
            }
            if js.durable.is_empty() || js.durable.contains(['.', '*', '>', ' ']) {
                check.problem("jetstream.durable", "a name without . * > or spaces");
            }
            if js.create_stream && js.stream.is_none() {
                check.problem("jetstream.create_stream", "name the stream to create");
            }
        }
    }
}

#[async_trait]
impl InputKind for NatsInputConfig {
    async fn build(&self, cx: &BuildContext) -> Result<Box<dyn Input>, Error> {
        let client = connect(cx, &self.url).await?;
        let Some(js) = &self.jetstream else {
            let sub = match &self.queue {
                Some(q) => {
                    client
                        .queue_subscribe(self.subject.clone(), q.clone())
                        .await
                }
                None => client.subscribe(self.subject.clone()).await,
            }
            .map_err(external("subscribing"))?;
            return Ok(Box::new(CoreInput { sub }));
        };
        let context = async_nats::jetstream::new(client);
        let stream = match (&js.stream, js.create_stream) {
            (Some(name), true) => context
                .get_or_create_stream(async_nats::jetstream::stream::Config {
                    name: name.clone(),
                    subjects: vec![self.subject.clone()],
                    ..Default::default()
                })
                .await
                .map_err(external("creating the stream"))?,
            (Some(name), false) => context
                .get_stream(name)
                .await
                .map_err(external("finding the stream"))?,
            (None, _) => {
                let name = context
                    .stream_by_subject(self.subject.clone())
                    .await
                    .map_err(external("finding the stream of the subject"))?;
                context
                    .get_stream(name)
                    .await
                    .map_err(external("finding the stream"))?
            }
        };
        let consumer = stream
            .get_or_create_consumer(
                &js.durable,
                pull::Config {
                    durable_name: Some(js.durable.clone()),
                    filter_subject: self.subject.clone(),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: js.ack_wait.0,
                    deliver_policy: match js.deliver {
                        Deliver::All => DeliverPolicy::All,
                        Deliver::New => DeliverPolicy::New,
                    },
                    ..Default::default()
                },
            )
            .await
            .map_err(external("creating the consumer"))?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(READ_CHUNK)
            .messages()
            .await
            .map_err(external("consuming"))?;
        let acks = AckTask::spawn(cx, |ackers: Vec<Acker>| async move {
            for a in ackers {
                a.ack().await.map_err(external("acknowledging"))?;
            }
            Ok(())
        });
        Ok(Box::new(JetStreamIn { messages, acks }))
    }
}

fn to_message(m: &async_nats::Message, sequence: Option<u64>) -> airtruct_runtime::Message {
    let mut meta = Metadata::default();
    meta.insert("nats_subject", m.subject.as_str());
    if let Some(s) = sequence {
        meta.insert("nats_sequence", &s.to_string());
    }
    headers_into(m.headers.as_ref(), &mut meta);
    message(m.payload.to_vec(), meta)
}

/// The running `nats` input on core subjects.
pub struct CoreInput {
    sub: async_nats::Subscriber,
}

#[async_trait]
impl Input for CoreInput {
    async fn read(&mut self) -> Result<Option<InputBatch>, Error> {
        let Some(first) = self.sub.next().await else {
            return Err(Error::External("nats: the subscription ended".into()));
        };
        let mut messages = vec![to_message(&first, None)];
        while messages.len() < READ_CHUNK {
            match futures_util::FutureExt::now_or_never(self.sub.next()) {
                Some(Some(m)) => messages.push(to_message(&m, None)),
                _ => break,
            }
        }
        Ok(Some(InputBatch {
            messages,
            ack: Ack::none(),
        }))
    }
}

/// The running `nats` input on a JetStream consumer.
pub struct JetStreamIn {
    messages: pull::Stream,
    acks: AckTask<Acker>,
}

#[async_trait]
impl Input for JetStreamIn {
    async fn read(&mut self) -> Result<Option<InputBatch>, Error> {
        let mut batch = match self.messages.next().await {
            Some(Ok(m)) => vec![m],
            Some(Err(e)) => return Err(external("consuming")(e)),
            None => return Err(Error::External("nats: the consumer ended".into())),
        };
        while batch.len() < READ_CHUNK {
            match futures_util::FutureExt::now_or_never(self.messages.next()) {
                Some(Some(Ok(m))) => batch.push(m),
                _ => break,
            }
        }
        let mut messages = Vec::with_capacity(batch.len());
        let mut ackers = Vec::with_capacity(batch.len());
        for m in batch {
            let sequence = m.info().ok().map(|i| i.stream_sequence);
            let (m, acker) = m.split();
            messages.push(to_message(&m, sequence));
            ackers.push(acker);
        }
        Ok(Some(InputBatch {
            messages,
            ack: self.acks.ack(ackers),
        }))
    }

    async fn close(&mut self) -> Result<(), Error> {
        self.acks.close().await
    }
}
