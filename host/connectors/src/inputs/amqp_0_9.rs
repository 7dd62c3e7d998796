//! `amqp_0_9` input: consumes a queue (RabbitMQ) with manual acknowledgements, sent only once the output
//! confirmed a message; at most `prefetch_count` messages are unacknowledged at a time. What is not acknowledged
//! when the connection goes (a worker killed mid batch) the broker delivers again. The queue, and its bindings to
//! exchanges, may be declared at start.
//!
//! Metadata: `amqp_exchange`, `amqp_routing_key`, `amqp_redelivered`, `amqp_content_type` and each header as
//! `amqp_header_<name>`.

use amqprs::channel::{
    BasicAckArguments, BasicConsumeArguments, BasicQosArguments, Channel, ConsumerMessage,
    QueueBindArguments, QueueDeclareArguments,
};
use amqprs::connection::Connection;
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::acks::AckTask;
use crate::amqp::{CREDENTIALS, HEADER_PREFIX, check_url, external, header_text, open};
use crate::inputs::READ_CHUNK;
use airtruct_runtime::kind::{Check, InputKind, Kind};
use airtruct_runtime::{BuildContext, Error, Input, InputBatch, Metadata, message};

/// Declare the queue at start.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct QueueDeclare {
    /// Survives a broker restart (default true).
    #[serde(default = "default_true")]
    pub durable: bool,
}

/// A binding of the queue to an exchange, declared at start.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Binding {
    pub exchange: String,
    /// The binding key (`orders.*` on a topic exchange).
    #[serde(default)]
    pub key: String,
}

fn default_true() -> bool {
    true
}

fn default_prefetch() -> u16 {
    500
}

/// Consumes an AMQP 0-9-1 queue.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct AmqpInputConfig {
    /// `amqp://user:password@host:5672/vhost`; write the password as `${secret:NAME}`.
    pub url: String,
    pub queue: String,
    /// Declare the queue when it is missing.
    #[serde(default)]
    pub queue_declare: Option<QueueDeclare>,
    /// Bind the queue to exchanges (the exchanges must exist).
    #[serde(default)]
    pub bindings_declare: Vec<Binding>,
    /// Most messages delivered and not yet acknowledged (default 500).
    #[serde(default = "default_prefetch")]
    pub prefetch_count: u16,
}

impl Kind for AmqpInputConfig {
    const NAME: &'static str = "amqp_0_9";
    const DESCRIPTION: &'static str = "Consumes a RabbitMQ (AMQP 0-9-1) queue; each message is acknowledged once \
         the output confirmed it";
    const EXAMPLE: &'static str = r#"{"url": "amqp://guest:guest@127.0.0.1:5672/%2f", "queue": "orders",
        "queue_declare": {"durable": true}, "prefetch_count": 500}"#;
    const CREDENTIALS: &'static [&'static str] = CREDENTIALS;

    fn check(&mut self, check: &mut Check<'_>) {
        check_url(check, &self.url);
        if self.queue.is_empty() {
            check.problem("queue", "must not be empty");
        }
        if self.prefetch_count == 0 {
            check.problem("prefetch_count", "at least 1");
        }
        for (i, b) in self.bindings_declare.iter().enumerate() {
            if b.exchange.is_empty() {
                check.problem(
                    &format!("bindings_declare[{i}].exchange"),
                    "must not be empty",
                );
            }
        }
    }
}

#[async_trait]
impl InputKind for AmqpInputConfig {
    async fn build(&self, cx: &BuildContext) -> Result<Box<dyn Input>, Error> {
        let (conn, channel) = open(cx, &self.url, "airtruct input").await?;
        if let Some(d) = &self.queue_declare {
            channel
                .queue_declare(
                    QueueDeclareArguments::new(&self.queue)
                        .durable(d.durable)
                        .finish(),
                )
                .await
                .map_err(external("declaring the queue"))?;
        }
        for b in &self.bindings_declare {
            channel
                .queue_bind(QueueBindArguments::new(&self.queue, &b.exchange, &b.key))
                .await
                .map_err(external("binding the queue"))?;
        }
        channel
            .basic_qos(BasicQosArguments::new(0, self.prefetch_count, false))
            .await
            .map_err(external("setting the prefetch count"))?;
        let (_tag, deliveries) = channel
            .basic_consume_rx(
                BasicConsumeArguments::new(&self.queue, "")
                    .manual_ack(true)
                    .finish(),
            )
            .await
            .map_err(external("consuming"))?;
        let acker = channel.clone();
        let acks = AckTask::spawn(cx, move |tags: Vec<u64>| {
            let channel = acker.clone();
            async move {
                for t in tags {
                    channel
                        .basic_ack(BasicAckArguments::new(t, false))
                        .await
                        .map_err(external("acknowledging"))?;
                }
                Ok(())
            }
        });
        Ok(Box::new(AmqpInput {
            _conn: conn,
            _channel: channel,
            deliveries,
            acks,
        }))
    }
}

/// The running `amqp_0_9` input.
pub struct AmqpInput {
    /// Kept open while the input lives.
    _conn: Connection,
    _channel: Channel,
    deliveries: mpsc::UnboundedReceiver<ConsumerMessage>,
    /// Acknowledges the delivery tags of delivered messages.
    acks: AckTask<u64>,
}

fn to_message(m: ConsumerMessage) -> Option<(u64, airtruct_runtime::Message)> {
    let deliver = m.deliver?;
    let mut meta = Metadata::default();
    meta.insert("amqp_exchange", deliver.exchange());
    meta.insert("amqp_routing_key", deliver.routing_key());
    meta.insert("amqp_redelivered", &deliver.redelivered().to_string());
    if let Some(p) = &m.basic_properties {
        if let Some(ct) = p.content_type() {
            meta.insert("amqp_content_type", ct);
        }
        if let Some(h) = p.headers() {
            for (k, v) in h.as_ref() {
                meta.insert(&format!("{HEADER_PREFIX}{k}"), &header_text(v));
            }
        }
    }
    Some((
        deliver.delivery_tag(),
        message(m.content.unwrap_or_default(), meta),
    ))
}

#[async_trait]
impl Input for AmqpInput {
    async fn read(&mut self) -> Result<Option<InputBatch>, Error> {
        let Some(first) = self.deliveries.recv().await else {
            return Err(Error::External(
                "amqp: the broker closed the consumer".into(),
            ));
        };
        let mut batch = vec![first];
        while batch.len() < READ_CHUNK {
            match self.deliveries.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let (tags, messages): (Vec<u64>, Vec<_>) = batch.into_iter().filter_map(to_message).unzip();
        Ok(Some(InputBatch {
            messages,
            ack: self.acks.ack(tags),
        }))
    }

    async fn close(&mut self) -> Result<(), Error> {
        self.acks.close().await
    }
}
