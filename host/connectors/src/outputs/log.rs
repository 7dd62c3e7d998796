//! `log`: writes a sample of the messages to the server's log and confirms every message; for looking at what
//! a stream carries while building it, or as the end of a stream run for its side effects.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use airtruct_runtime::kind::{Check, Kind, OutputKind};
use airtruct_runtime::{BuildContext, Error, Message, Metadata, Output};

/// The level messages are logged at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Warn,
}

/// Logs one message in `every`, and confirms them all.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct LogOutputConfig {
    /// `debug`, `info` (default) or `warn`.
    #[serde(default)]
    pub level: LogLevel,
    /// Log one message in this many (default 1: every message).
    #[serde(default = "default_every")]
    pub every: u64,
    /// The most payload bytes logged per message (default 1024); longer payloads are cut, with their length.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// Log the message's metadata too (default false).
    #[serde(default)]
    pub metadata: bool,
}

fn default_every() -> u64 {
    1
}
fn default_max_bytes() -> usize {
    1024
}

impl Kind for LogOutputConfig {
    const NAME: &'static str = "log";
    const DESCRIPTION: &'static str = "Writes a sample of the messages (one in `every`) to the server's log and confirms every message";
    const EXAMPLE: &'static str =
        r#"{"level": "info", "every": 100, "max_bytes": 512, "metadata": true}"#;

    fn check(&mut self, check: &mut Check<'_>) {
        if self.every == 0 {
            check.problem("every", "must be at least 1");
        }
    }
}

#[async_trait]
impl OutputKind for LogOutputConfig {
    async fn build(&self, cx: &BuildContext) -> Result<Box<dyn Output>, Error> {
        Ok(Box::new(LogOutput {
            config: self.clone(),
            stream: cx.stream_id().unwrap_or("").to_string(),
            seen: AtomicU64::new(0),
        }))
    }
}

/// The running `log` output.
pub struct LogOutput {
    config: LogOutputConfig,
    stream: String,
    seen: AtomicU64,
}

impl LogOutput {
    fn log(&self, m: &Message) {
        let c = &self.config;
        let cut = m.payload.len().min(c.max_bytes);
        let mut payload = String::from_utf8_lossy(&m.payload[..cut]).into_owned();
        if cut < m.payload.len() {
            payload.push_str(&format!("... ({} bytes)", m.payload.len()));
        }
        let metadata = if c.metadata {
            Metadata::iter_bytes(&m.metadata)
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            String::new()
        };
        let stream = self.stream.as_str();
        match c.level {
            LogLevel::Debug => tracing::debug!(stream, %metadata, "message: {payload}"),
            LogLevel::Info => tracing::info!(stream, %metadata, "message: {payload}"),
            LogLevel::Warn => tracing::warn!(stream, %metadata, "message: {payload}"),
        }
    }
}

#[async_trait]
impl Output for LogOutput {
    async fn write(&mut self, batch: &[Message]) -> Result<(), Error> {
        for m in batch {
            if self
                .seen
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(self.config.every)
            {
                self.log(m);
            }
        }
        Ok(())
    }
}
