//! The native outputs.

pub mod amqp_0_9;
pub mod broker;
pub mod drop;
pub mod file;
pub mod http_client;
pub mod kafka;
pub mod log;
pub mod mqtt;
pub mod nats;
pub mod redis;
pub mod sql_insert;
pub mod stdout;
pub mod switch;
pub mod sync_response;

use std::sync::Arc;

use airtruct_runtime::kind::OutputKind;
use airtruct_runtime::metrics::ComponentMetrics;
use airtruct_runtime::retry::{confirmed, write_confirmed};
use airtruct_runtime::{BuildContext, Error, Message, Output, StreamMetrics};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// An output held by another (a `switch` case's, a `broker`'s), built: where it sits and its counters.
pub(crate) struct Held {
    /// Where it sits in the config (`output.switch.cases[0].output`).
    pub path: String,
    pub output: Box<dyn Output>,
    pub metrics: Arc<ComponentMetrics>,
    /// Never cancelled: a write in progress is abandoned with the write of the output holding this one.
    abort: CancellationToken,
}

impl Held {
    /// Builds the output checked at `path` from `value` (`{kind: options}`).
    pub async fn build(
        kind: &dyn OutputKind,
        value: &Value,
        cx: &BuildContext,
        path: String,
    ) -> Result<Self, Error> {
        let name = value
            .as_object()
            .and_then(|m| m.keys().next())
            .cloned()
            .unwrap_or_default();
        let cx = cx.for_component(&path, &name);
        let output = kind.build(&cx).await?;
        Ok(Self {
            path,
            output,
            metrics: cx.metrics,
            abort: CancellationToken::new(),
        })
    }

    /// Writes with this output's own retries; an error says which output it was.
    pub async fn write(&mut self, batch: &[Message]) -> Result<(), Error> {
        let written =
            write_confirmed(self.output.as_mut(), batch, &self.metrics, &self.abort).await;
        match &written {
            Ok(()) => confirmed(&self.metrics, batch),
            Err(Error::Rejected(list)) => {
                let refused: std::collections::HashSet<usize> = list.iter().map(|r| r.0).collect();
                let kept = batch
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !refused.contains(i));
                confirmed(&self.metrics, kept.map(|(_, m)| m));
                StreamMetrics::add(&self.metrics.failed, refused.len() as u64);
            }
            Err(_) => {}
        }
        written.map_err(|e| e.within(&self.path))
    }

    /// Closes every held output, reporting the first failure.
    pub async fn close_all(held: Vec<&mut Held>) -> Result<(), Error> {
        let mut first = Ok(());
        for h in held {
            if let Err(e) = h.output.close().await
                && first.is_ok()
            {
                first = Err(e);
            }
        }
        first
    }
}

/// `Ok` when nothing was refused; otherwise each refused message once (the first reason), in batch order.
pub(crate) fn merge_refused(mut refused: Vec<(usize, String)>) -> Result<(), Error> {
    if refused.is_empty() {
        return Ok(());
    }
    refused.sort_by_key(|r| r.0);
    refused.dedup_by_key(|r| r.0);
    Err(Error::Rejected(refused))
}
