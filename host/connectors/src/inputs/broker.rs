//! `broker`: several inputs into one stream. Each input is read by a task of its own and its batches go on as
//! they come, each with its own input's acknowledgement, so every input keeps its at-least-once promise. A read
//! that fails in a way that may pass is retried by that input's task (the others go on); any other failure stops
//! the stream. The stream ends when every input has ended. The shape is Benthos's (`broker: {inputs}`).

use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use airtruct_runtime::kind::{Check, InputKind, Kind, Resolved};
use airtruct_runtime::metrics::ComponentMetrics;
use airtruct_runtime::retry::RetryPolicy;
use airtruct_runtime::{BuildContext, Error, Input, InputBatch, Role, StreamMetrics};

/// The input kinds that take requests through the server's route for their stream (`/ingest/{stream}`, `/mcp`).
const TAKES_REQUESTS: &[&str] = &["http_server", "mcp_tool"];

/// Reads several inputs into one stream.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BrokerInputConfig {
    /// The inputs, each written `kind: {options}`; all are read at once.
    #[schemars(
        with = "Vec<serde_json::Map<String, Value>>",
        extend("x-airtruct-component" = "input")
    )]
    pub inputs: Vec<Value>,
    /// Set by the check: the inputs, parsed.
    #[serde(skip)]
    #[schemars(skip)]
    resolved: Vec<Resolved<dyn InputKind>>,
}

impl Kind for BrokerInputConfig {
    const NAME: &'static str = "broker";
    const DESCRIPTION: &'static str =
        "Reads several inputs at once into one stream, each acknowledged on its own";
    const EXAMPLE: &'static str = r#"{"inputs": [{"generate": {"count": 10}},
        {"generate": {"count": 5, "payload": "{\"other\": {{seq}}}"}}]}"#;
    const NESTED: &'static [(&'static str, Role)] = &[("inputs[]", Role::Input)];

    fn check(&mut self, check: &mut Check<'_>) {
        if self.inputs.is_empty() {
            check.problem("inputs", "give at least one input");
        }
        self.resolved = self
            .inputs
            .iter()
            .enumerate()
            .map(|(i, v)| Resolved(check.input(&format!("inputs[{i}]"), v).map(Arc::from)))
            .collect(); // A stream takes the server's requests through one route: a second input taking them would silently
        // replace the first.
        let routed: Vec<usize> = self
            .inputs
            .iter()
            .enumerate()
            .filter(|(_, v)| {
                v.as_object()
                    .and_then(|m| m.keys().next())
                    .is_some_and(|k| TAKES_REQUESTS.contains(&k.as_str()))
            })
            .map(|(i, _)| i)
            .collect();
        if let [_, rest @ ..] = routed.as_slice() {
            for i in rest {
                check.problem(
                    &format!("inputs[{i}]"),
                    format!(
                        "a stream takes requests through one input: give only one of {} in a broker",
                        TAKES_REQUESTS.join(", ")
                    ),
                );
            }
        }
    }
}

#[async_trait]
impl InputKind for BrokerInputConfig {
    async fn build(&self, cx: &BuildContext) -> Result<Box<dyn Input>, Error> {
        let mut built = Vec::with_capacity(self.inputs.len());
        for (i, (value, kind)) in self.inputs.iter().zip(&self.resolved).enumerate() {
            let kind = kind
                .0
                .as_ref()
                .ok_or_else(|| Error::Internal("broker input built before its check".into()))?;
            let name = value
                .as_object()
                .and_then(|m| m.keys().next())
                .cloned()
                .unwrap_or_default();
            let path = format!("{}.broker.inputs[{i}]", cx.path);
            let input_cx = cx.for_component(&path, &name);
            built.push((path, kind.build(&input_cx).await?, input_cx.metrics));
        }
        let (tx, rx) = mpsc::channel(built.len().max(1));
        let stop = CancellationToken::new();
        let readers = built
            .into_iter()
            .map(|(path, input, metrics)| {
                let task = format!("read {path}");
                cx.tasks.spawn(
                    &task,
                    read_into(path, input, metrics, tx.clone(), stop.clone()),
                )
            })
            .collect();
        Ok(Box::new(BrokerInput { rx, stop, readers }))
    }
}

/// Reads one input into the broker's channel until it ends, fails for good or the broker stops; then hands the
/// input back, to be closed (only when the stream ends normally: an aborted one commits nothing).
async fn read_into(
    path: String,
    mut input: Box<dyn Input>,
    metrics: Arc<ComponentMetrics>,
    tx: mpsc::Sender<Result<InputBatch, Error>>,
    stop: CancellationToken,
) -> Box<dyn Input> {
    let mut backoff = RetryPolicy::INPUT.start();
    loop {
        let read = tokio::select! {
            _ = stop.cancelled() => break,
            r = input.read() => r,
        };
        match read {
            Ok(Some(batch)) => {
                backoff.reset();
                let n = batch.messages.len() as u64;
                let bytes: u64 = batch.messages.iter().map(|m| m.payload.len() as u64).sum();
                StreamMetrics::add(&metrics.received, n);
                StreamMetrics::add(&metrics.sent, n);
                StreamMetrics::add(&metrics.bytes_in, bytes);
                StreamMetrics::add(&metrics.bytes_out, bytes);
                // A batch that cannot be handed on is dropped with its acknowledgement: not delivered.
                tokio::select! {
                    _ = stop.cancelled() => break,
                    sent = tx.send(Ok(batch)) => {
                        if sent.is_err() {
                            break;
                        }
                    }
                }
            }
            Ok(None) => break,
            Err(e) if e.is_retryable() => {
                let wait = backoff.next_wait().unwrap_or(RetryPolicy::INPUT.max);
                tracing::warn!(input = %path, error = %e, retry_in = ?wait, "input failed, retrying");
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e.within(&path))).await;
                break;
            }
        }
    }
    input
}

/// The running `broker` input.
pub struct BrokerInput {
    rx: mpsc::Receiver<Result<InputBatch, Error>>,
    stop: CancellationToken,
    readers: Vec<JoinHandle<Box<dyn Input>>>,
}

#[async_trait]
impl Input for BrokerInput {
    async fn read(&mut self) -> Result<Option<InputBatch>, Error> {
        // `None` once every reader has ended (each holds a sender).
        self.rx.recv().await.transpose()
    }

    async fn close(&mut self) -> Result<(), Error> {
        self.stop.cancel();
        let mut first = Ok(());
        for reader in self.readers.drain(..) {
            let closed = match reader.await {
                Ok(mut input) => input.close().await,
                Err(e) => Err(Error::Internal(format!("a broker input's reader: {e}"))),
            };
            if let Err(e) = closed
                && first.is_ok()
            {
                first = Err(e);
            }
        }
        first
    }
}

impl Drop for BrokerInput {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
