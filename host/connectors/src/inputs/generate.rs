//! `generate`: makes messages from a template, for tests, demos and benchmarks.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::inputs::READ_CHUNK;
use airtruct_runtime::kind::{InputKind, Kind};
use airtruct_runtime::{Ack, BuildContext, Error, Input, InputBatch, Metadata, message};

/// Makes messages from a template: `{{seq}}` in the payload becomes the message's sequence number (from 1).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct GenerateInputConfig {
    /// How many messages to make; absent or 0 for no end.
    #[serde(default)]
    pub count: u64,
    /// Time between messages (`"1s"`); absent for as fast as the stream takes them.
    #[serde(default)]
    pub interval: Option<airtruct_model::Duration>,
    /// The payload template; `{{seq}}` is replaced by the sequence number.
    #[serde(default = "default_payload")]
    pub payload: String,
}

fn default_payload() -> String {
    r#"{"seq":{{seq}}}"#.to_string()
}

impl Kind for GenerateInputConfig {
    const NAME: &'static str = "generate";
    const DESCRIPTION: &'static str = "Makes messages from a template with a sequence number";
    const EXAMPLE: &'static str =
        r#"{"count": 100, "interval": "10ms", "payload": "{\"id\": {{seq}}}"}"#;
}

#[async_trait]
impl InputKind for GenerateInputConfig {
    async fn build(&self, _cx: &BuildContext) -> Result<Box<dyn Input>, Error> {
        Ok(Box::new(self.open()))
    }
}

impl GenerateInputConfig {
    /// The running input.
    pub fn open(&self) -> GenerateInput {
        let parts: Vec<&str> = self.payload.split("{{seq}}").collect();
        GenerateInput {
            parts: parts.iter().map(|p| p.as_bytes().to_vec()).collect(),
            count: self.count,
            interval: self.interval.map(Duration::from),
            next: 1,
            ticker: None,
        }
    }
}

/// The running `generate` input.
pub struct GenerateInput {
    parts: Vec<Vec<u8>>,
    count: u64,
    interval: Option<Duration>,
    next: u64,
    ticker: Option<tokio::time::Interval>,
}

impl GenerateInput {
    fn make(&self, seq: u64) -> Vec<u8> {
        let digits = seq.to_string();
        let mut out = Vec::with_capacity(self.parts.iter().map(Vec::len).sum::<usize>() + 8);
        for (i, p) in self.parts.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(digits.as_bytes());
            }
            out.extend_from_slice(p);
        }
        out
    }
}

#[async_trait]
impl Input for GenerateInput {
    async fn read(&mut self) -> Result<Option<InputBatch>, Error> {
        let remaining = if self.count == 0 {
            u64::MAX
        } else {
            self.count + 1 - self.next
        };
        if remaining == 0 {
            return Ok(None);
        }
        let n = match self.interval {
            Some(every) => {
                let ticker = self
                    .ticker
                    .get_or_insert_with(|| tokio::time::interval(every));
                ticker.tick().await;
                1
            }
            None => remaining.min(READ_CHUNK as u64),
        };
        let messages = (self.next..self.next + n)
            .map(|seq| message(self.make(seq), Metadata::new()))
            .collect();
        self.next += n;
        Ok(Some(InputBatch {
            messages,
            ack: Ack::none(),
        }))
    }
}
