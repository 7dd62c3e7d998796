//! `mqtt` output: publishes each message on a topic, fixed or from metadata, at QoS 0, 1 or 2. At 1 and 2 a
//! batch is confirmed once the broker acknowledged every message (`PUBACK`, or `PUBCOMP` at 2); a connection that
//! fails meanwhile fails the batch, which is retried.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, Incoming};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::mqtt::{CREDENTIALS, check_url, client, default_qos, external, qos};
use airtruct_runtime::kind::{Check, Kind, OutputKind};
use airtruct_runtime::{BuildContext, Error, Message, Output, meta_get};

use async_trait::async_trait;

fn default_timeout() -> airtruct_model::Duration {
    airtruct_model::Duration(Duration::from_secs(30))
}

/// Publishes to MQTT.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct MqttOutputConfig {
    /// `mqtt://[user:password@]host:1883`; write the password as `${secret:NAME}`.
    pub url: String,
    /// The topic to publish on.
    #[serde(default)]
    pub topic: Option<String>,
    /// A metadata key holding the topic, where a message has it (`mqtt_topic` to keep an input's).
    #[serde(default)]
    pub topic_metadata: Option<String>,
    /// 0, 1 (default) or 2.
    #[serde(default = "default_qos")]
    #[schemars(range(max = 2))]
    pub qos: u8,
    /// Publish as retained messages (default false).
    #[serde(default)]
    pub retain: bool,
    /// The client id (default `airtruct-<stream id>-out`).
    #[serde(default)]
    pub client_id: Option<String>,
    /// Longest a batch may wait for the broker's acknowledgements (default 30s); then it is retried.
    #[serde(default = "default_timeout")]
    pub timeout: airtruct_model::Duration,
}

impl Kind for MqttOutputConfig {
    const NAME: &'static str = "mqtt";
    const DESCRIPTION: &'static str = "Publishes on an MQTT topic at QoS 0, 1 or 2; at 1 and 2 a batch is \
         confirmed once the broker acknowledged every message";
    const EXAMPLE: &'static str =
        r#"{"url": "mqtt://127.0.0.1:1883", "topic": "sensors/averages", "qos": 1}"#;
    const CREDENTIALS: &'static [&'static str] = CREDENTIALS;

    fn check(&mut self, check: &mut Check<'_>) {
        check_url(check, &self.url);
        if self.qos > 2 {
            check.problem("qos", "0, 1 or 2");
        }
        if self.topic.is_none() && self.topic_metadata.is_none() {
            check.problem("topic", "set topic or topic_metadata");
        }
        if self
            .topic
            .as_ref()
            .is_some_and(|t| t.is_empty() || t.contains(['+', '#']))
        {
            check.problem("topic", "a topic name, without the wildcards + and #");
        }
    }
}

/// What the event loop reports to a writing batch.
enum Report {
    /// A message acknowledged (PUBACK at QoS 1, PUBCOMP at QoS 2).
    Confirmed,
    Failed(Error),
}

#[async_trait]
impl OutputKind for MqttOutputConfig {
    async fn build(&self, cx: &BuildContext) -> Result<Box<dyn Output>, Error> {
        let id = self
            .client_id
            .clone()
            .unwrap_or_else(|| format!("airtruct-{}-out", cx.stream_id().unwrap_or("run")));
        let (client, mut events) = client(cx, &self.url, &id, true).await?;
        let (tx, reports) = mpsc::unbounded_channel();
        let shutdown = cx.shutdown.child_token();
        let stop = shutdown.clone().drop_guard();
        let level = self.qos;
        cx.tasks.spawn("mqtt event loop", async move {
            loop {
                let event = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    e = events.poll() => e,
                };
                let report = match event {
                    Ok(Event::Incoming(Incoming::PubAck(_))) if level == 1 => Report::Confirmed,
                    Ok(Event::Incoming(Incoming::PubComp(_))) if level == 2 => Report::Confirmed,
                    Ok(_) => continue,
                    // The next poll connects again; the batch in flight is retried.
                    Err(e) => {
                        let r = Report::Failed(external("connection")(e));
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        r
                    }
                };
                if tx.send(report).is_err() {
                    return;
                }
            }
        });
        Ok(Box::new(MqttOutput {
            config: self.clone(),
            _stop: stop,
            client,
            reports,
        }))
    }
}

/// The running `mqtt` output.
pub struct MqttOutput {
    config: MqttOutputConfig,
    _stop: tokio_util::sync::DropGuard,
    client: AsyncClient,
    reports: mpsc::UnboundedReceiver<Report>,
}

#[async_trait]
impl Output for MqttOutput {
    async fn write(&mut self, batch: &[Message]) -> Result<(), Error> {
        // Reports left from a batch that failed belong to it.
        while self.reports.try_recv().is_ok() {}
        let c = &self.config;
        for m in batch {
            let topic = c
                .topic_metadata
                .as_deref()
                .and_then(|k| meta_get(m, k))
                .or(c.topic.as_deref())
                .ok_or_else(|| Error::User("mqtt: the message has no topic metadata".into()))?;
            self.client
                .publish(topic, qos(c.qos), c.retain, m.payload.clone())
                .await
                .map_err(external("publishing"))?;
        }
        if c.qos == 0 {
            return Ok(());
        }
        let mut confirmed = 0;
        let wait = async {
            while confirmed < batch.len() {
                match self.reports.recv().await {
                    Some(Report::Confirmed) => confirmed += 1,
                    Some(Report::Failed(e)) => return Err(e),
                    None => return Err(Error::External("mqtt: the event loop ended".into())),
                }
            }
            Ok(())
        };
        tokio::time::timeout(c.timeout.0, wait).await.map_err(|_| {
            Error::External(format!(
                "mqtt: the broker did not acknowledge within {}",
                humantime::format_duration(c.timeout.0)
            ))
        })?
    }
}
