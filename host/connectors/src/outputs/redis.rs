//! `redis` output: appends each message to a stream (`XADD`, its metadata as fields beside the payload), pushes
//! it onto a list (`RPUSH`), or publishes it on a channel (`PUBLISH`). A batch goes in one round trip and is
//! confirmed once Redis answered for every message.

use ::redis::aio::MultiplexedConnection;
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::inputs::redis::default_body_key;
use crate::redis::{CREDENTIALS, check_one_way, check_url, client, connect, external};
use airtruct_runtime::kind::{Check, Kind, OutputKind};
use airtruct_runtime::{BuildContext, Error, Message, Metadata, Output};

/// Appends to a stream.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RedisStreamOutput {
    pub key: String,
    /// The field that holds the payload (default `body`); metadata goes in the other fields.
    #[serde(default = "default_body_key")]
    pub body_key: String,
    /// Trim the stream to about this many entries (`MAXLEN ~`); absent: keep every entry.
    #[serde(default)]
    pub max_length: Option<u64>,
    /// Put the message's metadata in fields of the entry (default true).
    #[serde(default = "default_true")]
    pub metadata: bool,
}

fn default_true() -> bool {
    true
}

/// Writes to Redis.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RedisOutputConfig {
    /// `redis://[user:password@]host:6379[/db]`; write the password as `${secret:NAME}`.
    pub url: String,
    /// Append to a stream.
    #[serde(default)]
    pub stream: Option<RedisStreamOutput>,
    /// Push onto the tail of this list.
    #[serde(default)]
    pub list: Option<String>,
    /// Publish on this channel.
    #[serde(default)]
    pub channel: Option<String>,
}

impl Kind for RedisOutputConfig {
    const NAME: &'static str = "redis";
    const DESCRIPTION: &'static str = "Appends to a Redis stream, pushes onto a list or publishes on a channel; a batch is one round trip";
    const EXAMPLE: &'static str = r#"{"url": "redis://127.0.0.1:6379", "stream": {"key": "orders-out", "max_length": 100000}}"#;
    const CREDENTIALS: &'static [&'static str] = CREDENTIALS;

    fn check(&mut self, check: &mut Check<'_>) {
        check_url(check, &self.url);
        check_one_way(
            check,
            &[
                ("stream", self.stream.is_some()),
                ("list", self.list.is_some()),
                ("channel", self.channel.is_some()),
            ],
        );
        if self.stream.as_ref().is_some_and(|s| s.key.is_empty()) {
            check.problem("stream.key", "must not be empty");
        }
        if self.list.as_ref().is_some_and(String::is_empty) {
            check.problem("list", "must not be empty");
        }
        if self.channel.as_ref().is_some_and(String::is_empty) {
            check.problem("channel", "must not be empty");
        }
    }
}

#[async_trait]
impl OutputKind for RedisOutputConfig {
    async fn build(&self, cx: &BuildContext) -> Result<Box<dyn Output>, Error> {
        let client = client(cx, &self.url).await?;
        Ok(Box::new(RedisOutput {
            config: self.clone(),
            conn: connect(&client).await?,
        }))
    }
}

/// The running `redis` output.
pub struct RedisOutput {
    config: RedisOutputConfig,
    conn: MultiplexedConnection,
}

#[async_trait]
impl Output for RedisOutput {
    async fn write(&mut self, batch: &[Message]) -> Result<(), Error> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut pipe = ::redis::pipe();
        let c = &self.config;
        if let Some(s) = &c.stream {
            for m in batch {
                let cmd = pipe.cmd("XADD").arg(&s.key);
                if let Some(n) = s.max_length {
                    cmd.arg("MAXLEN").arg("~").arg(n);
                }
                cmd.arg("*").arg(&s.body_key).arg(&m.payload);
                if s.metadata {
                    for (k, v) in Metadata::iter_bytes(&m.metadata) {
                        if k != s.body_key {
                            cmd.arg(k).arg(v);
                        }
                    }
                }
                cmd.ignore();
            }
        } else if let Some(list) = &c.list {
            let cmd = pipe.cmd("RPUSH").arg(list);
            for m in batch {
                cmd.arg(&m.payload);
            }
            cmd.ignore();
        } else if let Some(channel) = &c.channel {
            for m in batch {
                pipe.cmd("PUBLISH").arg(channel).arg(&m.payload).ignore();
            }
        }
        let done: Result<(), _> = pipe.query_async(&mut self.conn).await;
        done.map_err(external("writing"))
    }
}
