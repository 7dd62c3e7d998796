//! `mqtt` input: subscribes to topics with a persistent session (a fixed client id, `clean_session` off), so the
//! broker keeps QoS 1 and 2 messages while the stream is away and delivers again what it did not acknowledge.
//! A message is acknowledged once the output confirmed it.
//!
//! Metadata: `mqtt_topic`, `mqtt_qos`, `mqtt_retain`, `mqtt_dup`.

use async_trait::async_trait;
use rumqttc::{Event, Incoming, Publish};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::acks::AckTask;
use crate::inputs::READ_CHUNK;
use crate::mqtt::{CREDENTIALS, check_url, client, default_qos, external, qos};
use airtruct_runtime::kind::{Check, InputKind, Kind};
use airtruct_runtime::{BuildContext, Error, Input, InputBatch, Metadata, message};

/// Subscribes to MQTT topics.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct MqttInputConfig {
    /// `mqtt://[user:password@]host:1883`; write the password as `${secret:NAME}`.
    pub url: String,
    /// Topic filters (`sensors/+/temperature`, `orders/#`).
    pub topics: Vec<String>,
    /// 0, 1 (default) or 2.
    #[serde(default = "default_qos")]
    #[schemars(range(max = 2))]
    pub qos: u8,
    /// The session's client id (default `airtruct-<stream id>`): the broker keeps the session under it.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Start a fresh session at each connect, dropping what the broker kept (default false).
    #[serde(default)]
    pub clean_session: bool,
}

impl Kind for MqttInputConfig {
    const NAME: &'static str = "mqtt";
    const DESCRIPTION: &'static str = "Subscribes to MQTT topics with a persistent session; each message is \
         acknowledged once delivered";
    const EXAMPLE: &'static str =
        r#"{"url": "mqtt://127.0.0.1:1883", "topics": ["sensors/#"], "qos": 1}"#;
    const CREDENTIALS: &'static [&'static str] = CREDENTIALS;

    fn check(&mut self, check: &mut Check<'_>) {
        check_url(check, &self.url);
        if self.qos > 2 {
            check.problem("qos", "0, 1 or 2");
        }
        if self.topics.is_empty() || self.topics.iter().any(String::is_empty) {
            check.problem("topics", "at least one topic filter, none empty");
        }
        if self
            .client_id
            .as_ref()
            .is_some_and(|c| c.is_empty() || c.len() > 128)
        {
            check.problem("client_id", "1 to 128 characters");
        }
    }
}

#[async_trait]
impl InputKind for MqttInputConfig {
    async fn build(&self, cx: &BuildContext) -> Result<Box<dyn Input>, Error> {
        let id = self
            .client_id
            .clone()
            .unwrap_or_else(|| format!("airtruct-{}", cx.stream_id().unwrap_or("run")));
        let (client, mut events) = client(cx, &self.url, &id, self.clean_session).await?;
        for t in &self.topics {
            client
                .subscribe(t.clone(), qos(self.qos))
                .await
                .map_err(external("subscribing"))?;
        }
        // The event loop runs on its own; a connection that fails ends the input, and the stream starts again.
        let (tx, rx) = mpsc::unbounded_channel();
        // Stopped with the input: two event loops under one client id would take the session from each other.
        let shutdown = cx.shutdown.child_token();
        let stop = shutdown.clone().drop_guard();
        cx.tasks.spawn("mqtt event loop", async move {
            loop {
                let event = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    e = events.poll() => e,
                };
                match event {
                    Ok(Event::Incoming(Incoming::Publish(p))) => {
                        if tx.send(Ok(p)).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = tx.send(Err(external("connection")(e)));
                        return;
                    }
                }
            }
        });
        let acker = client.clone();
        let acks = AckTask::spawn(cx, move |publishes: Vec<Publish>| {
            let client = acker.clone();
            async move {
                for p in &publishes {
                    client.ack(p).await.map_err(external("acknowledging"))?;
                }
                Ok(())
            }
        });
        Ok(Box::new(MqttInput {
            _stop: stop,
            incoming: rx,
            acks,
        }))
    }
}

/// The running `mqtt` input.
pub struct MqttInput {
    _stop: tokio_util::sync::DropGuard,
    incoming: mpsc::UnboundedReceiver<Result<Publish, Error>>,
    acks: AckTask<Publish>,
}

fn to_message(p: &Publish) -> airtruct_runtime::Message {
    let mut meta = Metadata::default();
    meta.insert("mqtt_topic", &p.topic);
    meta.insert("mqtt_qos", &(p.qos as u8).to_string());
    meta.insert("mqtt_retain", &p.retain.to_string());
    meta.insert("mqtt_dup", &p.dup.to_string());
    message(p.payload.to_vec(), meta)
}

#[async_trait]
impl Input for MqttInput {
    async fn read(&mut self) -> Result<Option<InputBatch>, Error> {
        let first = match self.incoming.recv().await {
            Some(p) => p?,
            None => return Err(Error::External("mqtt: the connection ended".into())),
        };
        let mut batch = vec![first];
        while batch.len() < READ_CHUNK {
            match self.incoming.try_recv() {
                Ok(Ok(p)) => batch.push(p),
                _ => break,
            }
        }
        let messages = batch.iter().map(to_message).collect();
        Ok(Some(InputBatch {
            messages,
            ack: self.acks.ack(batch),
        }))
    }

    async fn close(&mut self) -> Result<(), Error> {
        self.acks.close().await
    }
}
