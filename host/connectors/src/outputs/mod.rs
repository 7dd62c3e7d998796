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
use airtruct_runtime::{BuildContext, Error, Message, Output};
use serde_json::Value;

/// An output held by another (a `switch` case's, a `broker`'s), built: where it sits and its counters.
pub(crate) struct Held {
    /// Where it sits in the config (`output.switch.cases[0].output`).
    pub path: String,
    pub output: Box<dyn Output>,
    pub metrics: Arc<ComponentMetrics>,
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
        })
    }

    /// Writes with this output's own retries; an error says which output it was.
    pub async fn write(&mut self, batch: &[Message]) -> Result<(), Error> {
        airtruct_runtime::retry::write_nested(self.output.as_mut(), batch, &self.metrics)
            .await
            .map_err(|e| match e {
                Error::User(m) => Error::User(format!("{}: {m}", self.path)),
                Error::External(m) => Error::External(format!("{}: {m}", self.path)),
                Error::Internal(m) => Error::Internal(format!("{}: {m}", self.path)),
                Error::Rejected(list) => Error::Rejected(
                    list.into_iter()
                        .map(|(i, m)| (i, format!("{}: {m}", self.path)))
                        .collect(),
                ),
            })
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
