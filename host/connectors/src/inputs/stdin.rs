//! `stdin`: one message per line of standard input; the stream completes at end of input.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::inputs::READ_CHUNK;
use airtruct_runtime::kind::{InputKind, Kind};
use airtruct_runtime::{Ack, BuildContext, Error, Input, InputBatch, Metadata, message};

/// Reads standard input, one message per line.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StdinInputConfig {}

impl Kind for StdinInputConfig {
    const NAME: &'static str = "stdin";
    const DESCRIPTION: &'static str = "Reads standard input, one message per line";
    const EXAMPLE: &'static str = "{}";
}

#[async_trait]
impl InputKind for StdinInputConfig {
    async fn build(&self, _cx: &BuildContext) -> Result<Box<dyn Input>, Error> {
        Ok(Box::new(StdinInput {
            lines: BufReader::new(tokio::io::stdin()).lines(),
        }))
    }
}

/// The running `stdin` input.
pub struct StdinInput {
    lines: tokio::io::Lines<BufReader<tokio::io::Stdin>>,
}

#[async_trait]
impl Input for StdinInput {
    async fn read(&mut self) -> Result<Option<InputBatch>, Error> {
        let mut messages = Vec::new();
        while messages.len() < READ_CHUNK {
            let line = if messages.is_empty() {
                self.lines.next_line().await
            } else {
                // Take what is already buffered without waiting for more.
                match tokio::time::timeout(std::time::Duration::ZERO, self.lines.next_line()).await
                {
                    Ok(r) => r,
                    Err(_) => break,
                }
            };
            match line.map_err(|e| Error::External(format!("reading stdin: {e}")))? {
                Some(l) => messages.push(message(l.into_bytes(), Metadata::new())),
                None => break,
            }
        }
        if messages.is_empty() {
            return Ok(None);
        }
        Ok(Some(InputBatch {
            messages,
            ack: Ack::none(),
        }))
    }
}
