//! `stdout`: one line per message on standard output.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use airtruct_runtime::kind::{Kind, OutputKind};
use airtruct_runtime::{BuildContext, Error, Message, Output};

/// Writes each message's payload as a line on standard output.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StdoutOutputConfig {}

/// The running `stdout` output.
pub struct StdoutOutput {
    out: tokio::io::Stdout,
    buf: Vec<u8>,
}

impl Kind for StdoutOutputConfig {
    const NAME: &'static str = "stdout";
    const DESCRIPTION: &'static str = "Writes one line per message to standard output";
    const EXAMPLE: &'static str = "{}";
}

#[async_trait]
impl OutputKind for StdoutOutputConfig {
    async fn build(&self, _cx: &BuildContext) -> Result<Box<dyn Output>, Error> {
        Ok(Box::new(StdoutOutput {
            out: tokio::io::stdout(),
            buf: Vec::new(),
        }))
    }
}

#[async_trait]
impl Output for StdoutOutput {
    async fn write(&mut self, batch: &[Message]) -> Result<(), Error> {
        self.buf.clear();
        for m in batch {
            self.buf.extend_from_slice(&m.payload);
            self.buf.push(b'\n');
        }
        let err = |e: std::io::Error| match e.kind() {
            // The reader went away (`airtruct run s.yaml | head`): retrying cannot help.
            std::io::ErrorKind::BrokenPipe => Error::User(format!("writing stdout: {e}")),
            _ => Error::External(format!("writing stdout: {e}")),
        };
        self.out.write_all(&self.buf).await.map_err(err)?;
        self.out.flush().await.map_err(err)
    }
}
