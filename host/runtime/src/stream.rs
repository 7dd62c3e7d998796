//! Runs one stream: an input task, a batcher, processor threads (each with its own chain of wasm instances) and
//! an output task, joined by bounded channels. An input batch is acknowledged only once the output confirmed
//! every message of it (or the error policy handled the failed ones).
//!
//! Shutdown: on cancel the input stops reading; the batcher, processors and output drain what is in flight; the
//! input's `close` then commits what was delivered. After the grace period the stream is aborted: the log names
//! every task still running, and a write still in progress is abandoned (its messages stay unacknowledged).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::batcher::{Work, batcher, whole};
use crate::chain::{Chain, ChainOutput, Step};
use crate::context::BuildContext;
use crate::deliver::{Outputs, output_loop};
use crate::metrics::ComponentMetrics;
use crate::retry::RetryPolicy;
use crate::validate::StreamPlan;
use crate::{Ack, Error, Input, InputBatch, Message, StreamMetrics};

/// How a stream ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamExit {
    /// A finite input was exhausted and everything was delivered.
    Completed,
    /// It was asked to stop and drained what was in flight.
    Stopped,
}

/// A validated plan with its input and outputs opened, and the context they were built in.
pub struct BuiltStream {
    plan: StreamPlan,
    cx: BuildContext,
    input: Box<dyn Input>,
    outputs: Outputs,
}

/// Opens the plan's input and outputs (its buffer opens when the stream runs). `cx` is the stream's context:
/// each component is built in its own copy of it ([`BuildContext::for_component`]).
pub async fn build_stream(plan: StreamPlan, cx: BuildContext) -> Result<BuiltStream, Error> {
    let c = &plan.config;
    let input_cx = cx.for_component("input", &c.input.kind);
    let input = plan.input.build(&input_cx).await?;
    let output_cx = cx.for_component("output", &c.output.kind);
    let output = plan.output.build(&output_cx).await?;
    let dead_letter = match (&plan.dead_letter, &c.on_error) {
        (Some(d), airtruct_model::ErrorPolicy::DeadLetter(dc)) => {
            let dl_cx = cx.for_component("on_error.dead_letter", &dc.kind);
            Some((d.build(&dl_cx).await?, dl_cx.metrics))
        }
        _ => None,
    };
    Ok(BuiltStream {
        outputs: Outputs {
            output,
            output_metrics: output_cx.metrics,
            dead_letter,
        },
        input,
        plan,
        cx,
    })
}

/// Counts the batches an input (or a buffer) hands on, for its own counters (`handed_on`, as sent) and for the
/// components that take them in (`taken_in`, as received: the input itself, which read them, and a buffer).
struct Counted {
    inner: Box<dyn Input>,
    handed_on: Arc<ComponentMetrics>,
    taken_in: Vec<Arc<ComponentMetrics>>,
}

#[async_trait::async_trait]
impl Input for Counted {
    async fn read(&mut self) -> Result<Option<InputBatch>, Error> {
        let read = self.inner.read().await;
        if let Ok(Some(b)) = &read {
            let n = b.messages.len() as u64;
            let bytes: u64 = b.messages.iter().map(|m| m.payload.len() as u64).sum();
            StreamMetrics::add(&self.handed_on.sent, n);
            StreamMetrics::add(&self.handed_on.bytes_out, bytes);
            for c in &self.taken_in {
                StreamMetrics::add(&c.received, n);
                StreamMetrics::add(&c.bytes_in, bytes);
            }
        }
        read
    }

    async fn close(&mut self) -> Result<(), Error> {
        self.inner.close().await
    }
}

/// A batch after the processors, with the acknowledgements it covers.
pub(crate) struct Processed {
    pub out: ChainOutput,
    pub acks: Vec<Ack>,
    pub formed: Instant,
}

/// How long a stopping stream may take to drain what is in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Runs the stream until its input is exhausted (`Completed`), its context's `shutdown` is cancelled
/// (`Stopped`) or it fails.
pub async fn run_stream(stream: BuiltStream) -> Result<StreamExit, Error> {
    run_stream_with_grace(stream, SHUTDOWN_GRACE).await
}

/// [`run_stream`] with another grace period.
pub async fn run_stream_with_grace(
    stream: BuiltStream,
    grace_period: Duration,
) -> Result<StreamExit, Error> {
    let BuiltStream {
        plan,
        cx,
        mut input,
        outputs,
    } = stream;
    let metrics = cx.stream_metrics.clone();
    cx.tap.set_trace(plan.config.trace);
    let shutdown = cx.shutdown.clone();
    let tasks = cx.tasks.clone();
    let keep_batches = plan.buffer.as_ref().is_some_and(|b| b.keeps_batches());
    let input_counters = metrics.component("input", &plan.config.input.kind);
    match (&plan.buffer, &plan.config.buffer) {
        (Some(buffer), Some(bc)) => {
            let buffer_cx = cx.for_component("buffer", &bc.kind);
            let counted = Counted {
                inner: input,
                handed_on: input_counters.clone(),
                taken_in: vec![input_counters, buffer_cx.metrics.clone()],
            };
            input = Box::new(Counted {
                inner: buffer.wrap(Box::new(counted), &buffer_cx).await?,
                handed_on: buffer_cx.metrics.clone(),
                taken_in: Vec::new(),
            });
        }
        _ => {
            input = Box::new(Counted {
                inner: input,
                handed_on: input_counters.clone(),
                taken_in: vec![input_counters],
            })
        }
    }
    let threads = plan.config.pipeline.threads.max(1);
    let batch = plan.config.pipeline.batch;
    // A failure anywhere stops the whole stream; `shutdown` only stops the input.
    let abort = CancellationToken::new();

    let (in_tx, in_rx) = tokio::sync::mpsc::channel::<InputBatch>(threads * 4);
    let (work_tx, work_rx) = async_channel::bounded::<Work>(threads * 2);
    // Each time a processor thread takes a batch, so the batcher can send its open one.
    let taken = Arc::new(tokio::sync::Notify::new());
    let (done_tx, done_rx) = tokio::sync::mpsc::channel::<Processed>(threads * 2);

    // After `shutdown`, what is in flight gets a grace period to drain; then the stream is aborted (its
    // unconfirmed messages stay unacknowledged and are read again next time).
    let grace = {
        let (shutdown, abort, all) = (shutdown.clone(), abort.clone(), tasks.tasks().clone());
        tasks.spawn("grace period", async move {
            shutdown.cancelled().await;
            tokio::select! {
                _ = abort.cancelled() => {}
                _ = tokio::time::sleep(grace_period) => {
                    let running: Vec<String> =
                        all.running().into_iter().filter(|t| !t.ends_with(": grace period")).collect();
                    tracing::warn!(grace = ?grace_period, still_running = ?running,
                        "in-flight messages did not drain in time: aborting");
                    abort.cancel();
                }
            }
        })
    };
    let _abort_on_exit = abort.clone().drop_guard();

    // Processor threads: wasm calls (instantiation and `init` included) never run on the async reactor.
    let steps: Vec<Arc<ComponentMetrics>> = Step::flatten(&plan.processors)
        .into_iter()
        .map(|p| metrics.component(p.path(), p.kind()))
        .collect();
    // The resources the processors call through, shared by every processor thread.
    let resources = match &plan.resources {
        Some(r) => Some(r.open(&cx, true).await?),
        None => None,
    };
    let chains = {
        let (engine, specs) = (cx.engine.clone(), plan.processors.clone());
        tokio::task::spawn_blocking(move || {
            (0..threads)
                .map(|_| Chain::fused(&engine, &specs, resources.clone()))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| Error::Internal(format!("creating processor instances: {e}")))?
        .map_err(|errs| {
            Error::User(
                errs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?
    };
    let mut handles = Vec::new();
    for (i, mut chain) in chains.into_iter().enumerate() {
        let work_rx = work_rx.clone();
        let taken = taken.clone();
        let done_tx = done_tx.clone();
        let metrics = metrics.clone();
        let steps = steps.clone();
        let tap = cx.tap.clone();
        let handle = std::thread::Builder::new()
            .name(format!("processor-{i}"))
            .spawn(move || {
                while let Ok(work) = work_rx.recv_blocking() {
                    taken.notify_one();
                    let (failed_in, todo): (Vec<Message>, Vec<Message>) =
                        work.messages.into_iter().partition(|m| m.error.is_some());
                    let restarts = chain.restarts();
                    let mut out = chain.run_tapped(todo, &steps, &tap);
                    StreamMetrics::add(&metrics.processor_restarts, chain.restarts() - restarts);
                    out.failed.extend(failed_in);
                    if done_tx
                        .blocking_send(Processed {
                            out,
                            acks: work.acks,
                            formed: work.formed,
                        })
                        .is_err()
                    {
                        break;
                    }
                }
            })
            .map_err(|e| Error::Internal(format!("spawning a processor thread: {e}")))?;
        handles.push(handle);
    }
    drop(work_rx);
    drop(done_tx);

    // Input: reads until exhausted, cancelled or failed.
    let input_task = {
        let shutdown = shutdown.clone();
        let abort = abort.clone();
        let metrics = metrics.clone();
        let tap = cx.tap.clone();
        let input_label = format!("input ({})", plan.config.input.kind);
        tasks.spawn("input", async move {
            let mut backoff = RetryPolicy::INPUT.start();
            let result = loop {
                let read = tokio::select! {
                    _ = shutdown.cancelled() => break Ok(false),
                    _ = abort.cancelled() => break Ok(false),
                    r = input.read() => r,
                };
                match read {
                    Ok(Some(mut b)) => {
                        backoff.reset();
                        tap.mark(0, &|| input_label.clone(), &mut b.messages);
                        tap.sample(0, &|| input_label.clone(), &b.messages);
                        StreamMetrics::add(&metrics.received, b.messages.len() as u64);
                        StreamMetrics::add(
                            &metrics.bytes_in,
                            b.messages.iter().map(|m| m.payload.len() as u64).sum(),
                        );
                        if in_tx.send(b).await.is_err() {
                            break Ok(false);
                        }
                    }
                    Ok(None) => break Ok(true),
                    Err(e) if e.is_retryable() => {
                        let wait = backoff.next_wait().unwrap_or(RetryPolicy::INPUT.max);
                        tracing::warn!(error = %e, retry_in = ?wait, "input failed, retrying");
                        tokio::select! {
                            _ = shutdown.cancelled() => break Ok(false),
                            _ = abort.cancelled() => break Ok(false),
                            _ = tokio::time::sleep(wait) => {}
                        }
                    }
                    Err(e) => break Err(e),
                }
            };
            (input, result)
        })
    };

    // Batcher: groups input batches by size and period; a window goes on whole.
    let batcher_task = if keep_batches {
        tasks.spawn("batcher", whole(in_rx, work_tx))
    } else {
        tasks.spawn(
            "batcher",
            batcher(in_rx, work_tx, batch.size, batch.period.into(), taken),
        )
    };

    // Output: writes, applies the error policy, acknowledges.
    let output_task = tasks.spawn(
        "output",
        output_loop(
            done_rx,
            outputs,
            plan.config.on_error.clone(),
            metrics.clone(),
            abort.clone(),
            (
                cx.tap.clone(),
                Step::flatten(&plan.processors).len() + 1,
                format!("output ({})", plan.config.output.kind),
            ),
        ),
    );

    let output_result = output_task
        .await
        .unwrap_or_else(|e| Err(Error::Internal(format!("output task: {e}"))));
    if output_result.is_err() {
        abort.cancel();
    }
    let _ = batcher_task.await;
    let panicked = tokio::task::spawn_blocking(move || {
        handles
            .into_iter()
            .map(|h| h.join())
            .filter(Result::is_err)
            .count()
    })
    .await
    .unwrap_or(0);
    grace.abort();
    let (mut input, input_result) = input_task
        .await
        .map_err(|e| Error::Internal(format!("input task: {e}")))?;
    let closed = input.close().await;
    output_result?;
    if panicked > 0 {
        return Err(Error::Internal(format!(
            "{panicked} processor thread(s) panicked"
        )));
    }
    let exhausted = input_result?;
    closed?;
    Ok(if exhausted {
        StreamExit::Completed
    } else {
        StreamExit::Stopped
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Output;
    use crate::kind::{InputKind, OutputKind};
    use airtruct_model::{BatchPolicy, Component, ErrorPolicy, Pipeline, StreamConfig};
    use async_trait::async_trait;

    /// One message, then nothing until the stream stops.
    struct OneThenWait(bool);

    #[async_trait]
    impl Input for OneThenWait {
        async fn read(&mut self) -> Result<Option<InputBatch>, Error> {
            if std::mem::replace(&mut self.0, true) {
                std::future::pending::<()>().await;
            }
            Ok(Some(InputBatch {
                messages: vec![crate::message(b"m".to_vec(), Default::default())],
                ack: Ack::none(),
            }))
        }
    }

    /// A write that never returns.
    struct Hangs;

    #[async_trait]
    impl Output for Hangs {
        async fn write(&mut self, _batch: &[Message]) -> Result<(), Error> {
            std::future::pending().await
        }
    }

    struct Kinds;

    #[async_trait]
    impl InputKind for Kinds {
        async fn build(&self, _cx: &BuildContext) -> Result<Box<dyn Input>, Error> {
            Ok(Box::new(OneThenWait(false)))
        }
    }

    #[async_trait]
    impl OutputKind for Kinds {
        async fn build(&self, _cx: &BuildContext) -> Result<Box<dyn Output>, Error> {
            Ok(Box::new(Hangs))
        }
    }

    fn component(kind: &str, path: &str) -> Component {
        Component {
            kind: kind.into(),
            options: serde_json::Value::Null,
            path: path.into(),
        }
    }

    #[tokio::test]
    async fn a_write_that_hangs_past_the_grace_period_is_abandoned_and_its_task_named() {
        let plan = StreamPlan {
            config: StreamConfig {
                input: component("one", "input"),
                buffer: None,
                pipeline: Pipeline {
                    batch: BatchPolicy::default(),
                    threads: 1,
                    processors: Vec::new(),
                },
                output: component("hangs", "output"),
                on_error: ErrorPolicy::Drop,
                replicas: 1,
                trace: None,
                resources: None,
            },
            input: Box::new(Kinds),
            output: Box::new(Kinds),
            dead_letter: None,
            buffer: None,
            processors: Vec::new(),
            resources: None,
        };
        let engine = airtruct_engine::Engine::new(Default::default()).unwrap();
        let metrics = Arc::new(StreamMetrics::default());
        let shutdown = CancellationToken::new();
        let cx = BuildContext::local(engine, metrics.clone(), shutdown.clone());
        let tasks = cx.tasks.tasks().clone();
        let built = build_stream(plan, cx).await.unwrap();
        let run = tokio::spawn(run_stream_with_grace(built, Duration::from_millis(200)));
        // The message reached the output, whose write hangs.
        while metrics
            .snapshot()
            .components
            .iter()
            .all(|c| c.received == 0 || c.component != "output")
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let running = tasks.running();
        assert!(
            running.contains(&"stream: output".to_string()),
            "{running:?}"
        );
        assert!(
            running.contains(&"stream: input".to_string()),
            "{running:?}"
        );
        shutdown.cancel();
        let exit = run.await.unwrap();
        let Err(Error::External(reason)) = exit else {
            panic!("the stream should end with the abandoned write: {exit:?}");
        };
        assert!(reason.contains("write was in progress"), "{reason}");
        assert!(tasks.running().is_empty(), "{:?}", tasks.running());
        assert_eq!(metrics.snapshot().sent, 0, "nothing was confirmed");
    }
}
