//! `drop`: confirms every message and writes nothing (benchmarks, tests, streams run for side effects).

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use airtruct_runtime::kind::{Kind, OutputKind};
use airtruct_runtime::{BuildContext, Error, Message, Output};

/// Discards messages.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DropOutputConfig {}

impl Kind for DropOutputConfig {
    const NAME: &'static str = "drop";
    const DESCRIPTION: &'static str = "Confirms and discards every message";
    const EXAMPLE: &'static str = "{}";
}

#[async_trait]
impl OutputKind for DropOutputConfig {
    async fn build(&self, _cx: &BuildContext) -> Result<Box<dyn Output>, Error> {
        Ok(Box::new(DropOutput))
    }
}

/// The running `drop` output.
pub struct DropOutput;

#[async_trait]
impl Output for DropOutput {
    async fn write(&mut self, _batch: &[Message]) -> Result<(), Error> {
        Ok(())
    }
}
