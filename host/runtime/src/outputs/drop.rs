//! `drop`: confirms every message and writes nothing (benchmarks, tests, streams run for side effects).

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::{Error, Message, Output};

/// Discards messages.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DropOutputConfig {}

/// The running `drop` output.
pub struct DropOutput;

#[async_trait]
impl Output for DropOutput {
    async fn write(&mut self, _batch: &[Message]) -> Result<(), Error> {
        Ok(())
    }
}
