//! `amqp_0_9` output: publishes each message to an exchange (RabbitMQ) on a channel in confirm mode, and confirms
//! a batch only once the broker acknowledged every message of it; a message the broker refuses fails the batch,
//! which is retried. The routing key is fixed or read from metadata; `amqp_header_<name>` metadata become headers.
//! The exchange may be declared at start.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amqprs::channel::{
    BasicPublishArguments, Channel, ConfirmSelectArguments, ExchangeDeclareArguments,
};
use amqprs::connection::Connection;
use amqprs::{BasicProperties, CloseChannel};
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::Notify;

use crate::amqp::{CREDENTIALS, check_url, external, headers_of, open};
use airtruct_runtime::kind::{Check, Kind, OutputKind};
use airtruct_runtime::{BuildContext, Error, Message, Output, meta_get};

/// The type of an exchange.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExchangeType {
    #[default]
    Direct,
    Fanout,
    Topic,
    Headers,
}

/// Declare the exchange at start.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ExchangeDeclare {
    /// Default `direct`.
    #[serde(default, rename = "type")]
    pub kind: ExchangeType,
    /// Survives a broker restart (default true).
    #[serde(default = "default_true")]
    pub durable: bool,
}

fn default_true() -> bool {
    true
}

fn default_timeout() -> airtruct_model::Duration {
    airtruct_model::Duration(Duration::from_secs(30))
}

/// Publishes to an AMQP 0-9-1 exchange.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct AmqpOutputConfig {
    /// `amqp://user:password@host:5672/vhost`; write the password as `${secret:NAME}`.
    pub url: String,
    /// The exchange (`""`, the default exchange, routes by queue name).
    #[serde(default)]
    pub exchange: String,
    /// Declare the exchange when it is missing.
    #[serde(default)]
    pub exchange_declare: Option<ExchangeDeclare>,
    /// The routing key (with the default exchange: the queue's name).
    #[serde(default)]
    pub key: String,
    /// A metadata key holding the routing key, where a message has it (`amqp_routing_key` to keep an input's).
    #[serde(default)]
    pub key_metadata: Option<String>,
    /// Persistent messages: written to disk by the broker (default true).
    #[serde(default = "default_true")]
    pub persistent: bool,
    /// The content type property, if any (`application/json`).
    #[serde(default)]
    pub content_type: Option<String>,
    /// Longest a batch may wait for the broker's confirms (default 30s); then it is retried.
    #[serde(default = "default_timeout")]
    pub timeout: airtruct_model::Duration,
}

impl Kind for AmqpOutputConfig {
    const NAME: &'static str = "amqp_0_9";
    const DESCRIPTION: &'static str = "Publishes to a RabbitMQ (AMQP 0-9-1) exchange; a batch is confirmed once \
         the broker confirmed every message";
    const EXAMPLE: &'static str = r#"{"url": "amqp://guest:guest@127.0.0.1:5672/%2f", "exchange": "orders",
        "exchange_declare": {"type": "topic"}, "key": "orders.created"}"#;
    const CREDENTIALS: &'static [&'static str] = CREDENTIALS;

    fn check(&mut self, check: &mut Check<'_>) {
        check_url(check, &self.url);
        if self.exchange_declare.is_some() && self.exchange.is_empty() {
            check.problem(
                "exchange_declare",
                "the default exchange (\"\") cannot be declared: name an exchange",
            );
        }
        if self.exchange.is_empty() && self.key.is_empty() && self.key_metadata.is_none() {
            check.problem(
                "key",
                "with the default exchange the key is the queue's name: set key or key_metadata",
            );
        }
    }
}

/// Confirms not yet received, and the tags the broker refused.
#[derive(Default)]
struct Confirms {
    state: Mutex<ConfirmState>,
    changed: Notify,
}

#[derive(Default)]
struct ConfirmState {
    pending: BTreeMap<u64, ()>,
    refused: BTreeSet<u64>,
    closed: Option<String>,
}

impl Confirms {
    fn settle(&self, tag: u64, multiple: bool, refused: bool) {
        let mut s = self.state.lock().expect("amqp confirms");
        let tags: Vec<u64> = if multiple {
            s.pending.range(..=tag).map(|(t, ())| *t).collect()
        } else {
            vec![tag]
        };
        for t in tags {
            s.pending.remove(&t);
            if refused {
                s.refused.insert(t);
            }
        }
        drop(s);
        self.changed.notify_waiters();
    }
}

struct Callback(Arc<Confirms>);

#[async_trait]
impl amqprs::callbacks::ChannelCallback for Callback {
    async fn close(
        &mut self,
        _: &Channel,
        close: CloseChannel,
    ) -> Result<(), amqprs::error::Error> {
        self.0.state.lock().expect("amqp confirms").closed = Some(close.to_string());
        self.0.changed.notify_waiters();
        Ok(())
    }
    async fn cancel(&mut self, _: &Channel, _: amqprs::Cancel) -> Result<(), amqprs::error::Error> {
        Ok(())
    }
    async fn flow(&mut self, _: &Channel, active: bool) -> Result<bool, amqprs::error::Error> {
        Ok(active)
    }
    async fn publish_ack(&mut self, _: &Channel, ack: amqprs::Ack) {
        self.0.settle(ack.delivery_tag(), ack.mutiple(), false);
    }
    async fn publish_nack(&mut self, _: &Channel, nack: amqprs::Nack) {
        self.0.settle(nack.delivery_tag(), nack.multiple(), true);
    }
    async fn publish_return(
        &mut self,
        _: &Channel,
        _: amqprs::Return,
        _: BasicProperties,
        _: Vec<u8>,
    ) {
    }
}

#[async_trait]
impl OutputKind for AmqpOutputConfig {
    async fn build(&self, cx: &BuildContext) -> Result<Box<dyn Output>, Error> {
        let (conn, channel) = open(cx, &self.url, "airtruct output").await?;
        if let Some(d) = &self.exchange_declare {
            let kind = match d.kind {
                ExchangeType::Direct => "direct",
                ExchangeType::Fanout => "fanout",
                ExchangeType::Topic => "topic",
                ExchangeType::Headers => "headers",
            };
            channel
                .exchange_declare(
                    ExchangeDeclareArguments::new(&self.exchange, kind)
                        .durable(d.durable)
                        .finish(),
                )
                .await
                .map_err(external("declaring the exchange"))?;
        }
        let confirms = Arc::new(Confirms::default());
        channel
            .register_callback(Callback(confirms.clone()))
            .await
            .map_err(external("registering for confirms"))?;
        channel
            .confirm_select(ConfirmSelectArguments::default())
            .await
            .map_err(external("turning on publisher confirms"))?;
        Ok(Box::new(AmqpOutput {
            config: self.clone(),
            _conn: conn,
            channel,
            confirms,
            next_tag: 0,
        }))
    }
}

/// The running `amqp_0_9` output.
pub struct AmqpOutput {
    config: AmqpOutputConfig,
    _conn: Connection,
    channel: Channel,
    confirms: Arc<Confirms>,
    /// The delivery tag of the last message published on the channel.
    next_tag: u64,
}

#[async_trait]
impl Output for AmqpOutput {
    async fn write(&mut self, batch: &[Message]) -> Result<(), Error> {
        if batch.is_empty() {
            return Ok(());
        }
        let c = &self.config;
        let first = self.next_tag + 1;
        let last = self.next_tag + batch.len() as u64;
        {
            let mut s = self.confirms.state.lock().expect("amqp confirms");
            if let Some(why) = &s.closed {
                return Err(Error::External(format!("amqp: the channel closed: {why}")));
            }
            for t in first..=last {
                s.pending.insert(t, ());
            }
        }
        self.next_tag = last;
        for m in batch {
            let key = c
                .key_metadata
                .as_deref()
                .and_then(|k| meta_get(m, k))
                .unwrap_or(&c.key);
            let mut props = BasicProperties::default();
            props.with_persistence(c.persistent);
            if let Some(ct) = &c.content_type {
                props.with_content_type(ct);
            }
            let headers = headers_of(&m.metadata);
            if !headers.as_ref().is_empty() {
                props.with_headers(headers);
            }
            self.channel
                .basic_publish(
                    props.finish(),
                    m.payload.clone(),
                    BasicPublishArguments::new(&c.exchange, key),
                )
                .await
                .map_err(external("publishing"))?;
        }
        let wait = async {
            loop {
                let changed = self.confirms.changed.notified();
                {
                    let s = self.confirms.state.lock().expect("amqp confirms");
                    if s.pending.range(..=last).next().is_none() {
                        break;
                    }
                    if let Some(why) = &s.closed {
                        return Err(Error::External(format!("amqp: the channel closed: {why}")));
                    }
                }
                changed.await;
            }
            Ok(())
        };
        tokio::time::timeout(c.timeout.0, wait)
            .await
            .map_err(|_| {
                Error::External(format!(
                    "amqp: the broker did not confirm within {}",
                    humantime::format_duration(c.timeout.0)
                ))
            })??;
        let mut s = self.confirms.state.lock().expect("amqp confirms");
        let refused = s.refused.range(first..=last).count();
        s.refused.retain(|t| *t < first);
        if refused > 0 {
            return Err(Error::External(format!(
                "amqp: the broker refused {refused} of {} messages",
                batch.len()
            )));
        }
        Ok(())
    }
}
