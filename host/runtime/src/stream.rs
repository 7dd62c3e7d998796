//! Runs one stream: an input task, a batcher, processor threads (each with its own chain of wasm instances) and
//! an output task, joined by bounded channels. An input batch is acknowledged only once the output confirmed
//! every message of it (or the error policy handled the failed ones).
//!
//! Shutdown: on cancel the input stops reading; the batcher, processors and output drain what is in flight; the
//! input's `close` then commits what was delivered.

use std::sync::Arc;
use std::time::{Duration, Instant};

use airtruct_engine::Engine;
use airtruct_model::ErrorPolicy;
use tokio_util::sync::CancellationToken;

use crate::chain::{Chain, ChainOutput};
use crate::validate::StreamPlan;
use crate::{Ack, Delivery, Error, Input, InputBatch, Message, Output, StreamMetrics, meta_set};

/// How a stream ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamExit {
    /// A finite input was exhausted and everything was delivered.
    Completed,
    /// It was asked to stop and drained what was in flight.
    Stopped,
}

/// A validated plan with its input and outputs opened.
pub struct BuiltStream {
    plan: StreamPlan,
    input: Box<dyn Input>,
    output: Box<dyn Output>,
    dead_letter: Option<Box<dyn Output>>,
}

/// Opens the plan's input and outputs (its buffer opens when the stream runs).
pub async fn build_stream(plan: StreamPlan) -> Result<BuiltStream, Error> {
    let input = plan.input.build(plan.stream_id.as_deref()).await?;
    let output = plan.output.build(&plan.engine).await?;
    let dead_letter = match &plan.dead_letter {
        Some(d) => Some(d.build(&plan.engine).await?),
        None => None,
    };
    Ok(BuiltStream {
        plan,
        input,
        output,
        dead_letter,
    })
}

struct Work {
    messages: Vec<Message>,
    acks: Vec<Ack>,
    formed: Instant,
}

struct Processed {
    out: ChainOutput,
    acks: Vec<Ack>,
    formed: Instant,
}

fn nack(acks: Vec<Ack>) {
    for a in acks {
        a.done(Delivery::NotDelivered);
    }
}

/// Runs the stream until its input is exhausted (`Completed`), `shutdown` is cancelled (`Stopped`) or it fails.
pub async fn run_stream(
    engine: Engine,
    stream: BuiltStream,
    metrics: Arc<StreamMetrics>,
    shutdown: CancellationToken,
) -> Result<StreamExit, Error> {
    let BuiltStream {
        plan,
        mut input,
        output,
        dead_letter,
    } = stream;
    let keep_batches = plan.buffer.as_ref().is_some_and(|b| b.keeps_batches());
    if let Some(buffer) = &plan.buffer {
        input = buffer.wrap(input, metrics.clone(), &engine).await?;
    }
    let threads = plan.config.pipeline.threads.max(1);
    let batch = plan.config.pipeline.batch;
    // A failure anywhere stops the whole stream; `shutdown` only stops the input.
    let abort = CancellationToken::new();

    let (in_tx, in_rx) = tokio::sync::mpsc::channel::<InputBatch>(threads * 4);
    let (work_tx, work_rx) = async_channel::bounded::<Work>(threads * 2);
    let (done_tx, done_rx) = tokio::sync::mpsc::channel::<Processed>(threads * 2);

    // After `shutdown`, what is in flight gets a grace period to drain; then the stream is aborted (its
    // unconfirmed messages stay unacknowledged and are read again next time).
    let grace = {
        let (shutdown, abort) = (shutdown.clone(), abort.clone());
        tokio::spawn(async move {
            shutdown.cancelled().await;
            tokio::select! {
                _ = abort.cancelled() => {}
                _ = tokio::time::sleep(SHUTDOWN_GRACE) => {
                    tracing::warn!(grace = ?SHUTDOWN_GRACE, "in-flight messages did not drain in time: aborting");
                    abort.cancel();
                }
            }
        })
    };
    let _abort_on_exit = abort.clone().drop_guard();

    // Processor threads: wasm calls (instantiation and `init` included) never run on the async reactor.
    let chains = {
        let (engine, specs) = (engine.clone(), plan.processors.clone());
        tokio::task::spawn_blocking(move || {
            (0..threads)
                .map(|_| Chain::new(&engine, &specs))
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
        let done_tx = done_tx.clone();
        let metrics = metrics.clone();
        let handle = std::thread::Builder::new()
            .name(format!("processor-{i}"))
            .spawn(move || {
                while let Ok(work) = work_rx.recv_blocking() {
                    let (failed_in, todo): (Vec<Message>, Vec<Message>) =
                        work.messages.into_iter().partition(|m| m.error.is_some());
                    let restarts = chain.restarts();
                    let mut out = chain.run(todo, |_, _, _| {});
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
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            let result = loop {
                let read = tokio::select! {
                    _ = shutdown.cancelled() => break Ok(false),
                    _ = abort.cancelled() => break Ok(false),
                    r = input.read() => r,
                };
                match read {
                    Ok(Some(b)) => {
                        backoff = Duration::from_millis(100);
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
                        tracing::warn!(error = %e, retry_in = ?backoff, "input failed, retrying");
                        tokio::select! {
                            _ = shutdown.cancelled() => break Ok(false),
                            _ = abort.cancelled() => break Ok(false),
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                    Err(e) => break Err(e),
                }
            };
            (input, result)
        })
    };

    // Batcher: groups input batches by size and period; a window goes on whole.
    let batcher_task = if keep_batches {
        tokio::spawn(whole(in_rx, work_tx))
    } else {
        tokio::spawn(batcher(in_rx, work_tx, batch.size, batch.period.into()))
    };

    // Output: writes, applies the error policy, acknowledges.
    let output_task = tokio::spawn(output_loop(
        done_rx,
        output,
        dead_letter,
        plan.config.on_error.clone(),
        metrics.clone(),
        abort.clone(),
    ));

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

/// Splits one acknowledgement into `parts`: the original fires once every part has, `NotDelivered` if any was.
fn split_ack(ack: Ack, parts: usize) -> Vec<Ack> {
    if parts <= 1 {
        return vec![ack];
    }
    let state = Arc::new(std::sync::Mutex::new((
        Some(ack),
        parts,
        Delivery::Delivered,
    )));
    (0..parts)
        .map(|_| {
            let state = state.clone();
            Ack::new(move |d: Delivery| {
                let mut g = state.lock().unwrap();
                if d == Delivery::NotDelivered {
                    g.2 = Delivery::NotDelivered;
                }
                g.1 -= 1;
                if g.1 == 0 {
                    let (ack, outcome) = (g.0.take(), g.2);
                    drop(g);
                    if let Some(ack) = ack {
                        ack.done(outcome);
                    }
                }
            })
        })
        .collect()
}

/// Hands each input batch on as one batch (a window from `system_window`).
async fn whole(
    mut in_rx: tokio::sync::mpsc::Receiver<InputBatch>,
    work_tx: async_channel::Sender<Work>,
) {
    while let Some(b) = in_rx.recv().await {
        let work = Work {
            messages: b.messages,
            acks: vec![b.ack],
            formed: Instant::now(),
        };
        if let Err(e) = work_tx.send(work).await {
            nack(e.into_inner().acks);
            return;
        }
    }
}

/// Groups input batches into batches of at most `size` messages, sent when full or `period` after their first
/// message arrived. An input batch larger than the room left is split across batches.
async fn batcher(
    mut in_rx: tokio::sync::mpsc::Receiver<InputBatch>,
    work_tx: async_channel::Sender<Work>,
    size: usize,
    period: Duration,
) {
    let mut messages: Vec<Message> = Vec::new();
    let mut acks: Vec<Ack> = Vec::new();
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let next = match deadline {
            Some(d) => tokio::select! {
                b = in_rx.recv() => b.map(Some),
                _ = tokio::time::sleep_until(d) => Some(None),
            },
            None => in_rx.recv().await.map(Some),
        };
        let closed = next.is_none();
        let mut full: Vec<Work> = Vec::new();
        if let Some(Some(b)) = next {
            if messages.is_empty() {
                deadline = Some(tokio::time::Instant::now() + period);
            }
            let room = size - messages.len();
            let parts = if b.messages.len() <= room {
                1
            } else {
                1 + (b.messages.len() - room).div_ceil(size)
            };
            let mut part_acks = split_ack(b.ack, parts).into_iter();
            let mut rest = b.messages.into_iter().peekable();
            while rest.peek().is_some() {
                let room = size - messages.len();
                messages.extend(rest.by_ref().take(room));
                acks.push(part_acks.next().expect("one ack per part"));
                if messages.len() >= size {
                    let formed = Instant::now();
                    full.push(Work {
                        messages: std::mem::take(&mut messages),
                        acks: std::mem::take(&mut acks),
                        formed,
                    });
                    deadline = None;
                }
            }
            if !messages.is_empty() && deadline.is_none() {
                deadline = Some(tokio::time::Instant::now() + period);
            }
        } else if !acks.is_empty() {
            // The period elapsed or the input closed: send what there is.
            full.push(Work {
                messages: std::mem::take(&mut messages),
                acks: std::mem::take(&mut acks),
                formed: Instant::now(),
            });
            deadline = None;
        }
        for work in full {
            if let Err(e) = work_tx.send(work).await {
                nack(e.into_inner().acks);
                nack(std::mem::take(&mut acks));
                return;
            }
        }
        if closed {
            break;
        }
    }
}

/// How long a stopping stream may take to drain what is in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Retries of a failing output write before the stream fails (about 2.5 minutes with the backoff).
const OUTPUT_RETRIES: u32 = 35;

/// Writes with retries until confirmed, the retries run out or the stream is aborted.
async fn write_confirmed(
    output: &mut dyn Output,
    batch: &[Message],
    abort: &CancellationToken,
) -> Result<(), Error> {
    let mut backoff = Duration::from_millis(100);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match output.write(batch).await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_retryable() && attempt > OUTPUT_RETRIES => {
                return Err(Error::External(format!(
                    "{e} (gave up after {OUTPUT_RETRIES} retries)"
                )));
            }
            Err(e) if e.is_retryable() => {
                tracing::warn!(error = %e, retry_in = ?backoff, "output failed, retrying");
                tokio::select! {
                    _ = abort.cancelled() => return Err(e),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Applies the error policy to failed messages: `Err` stops the stream (the caller does not acknowledge).
async fn handle_failed(
    failed: &mut [Message],
    policy: &ErrorPolicy,
    dead_letter: Option<&mut Box<dyn Output>>,
    metrics: &StreamMetrics,
    abort: &CancellationToken,
) -> Result<(), Error> {
    if failed.is_empty() {
        return Ok(());
    }
    match (policy, dead_letter) {
        (ErrorPolicy::Stop, _) => {
            let first = failed[0].error.clone().unwrap_or_default();
            Err(Error::User(format!(
                "stopping: {} message(s) failed and on_error is \"stop\"; first error: {first}",
                failed.len()
            )))
        }
        (ErrorPolicy::DeadLetter(_), Some(dlq)) => {
            for m in failed.iter_mut() {
                let e = m.error.take().unwrap_or_default();
                meta_set(m, "error", &e);
            }
            write_confirmed(dlq.as_mut(), failed, abort)
                .await
                .map_err(|e| Error::External(format!("dead-letter output: {e}")))
        }
        _ => {
            for m in failed.iter() {
                tracing::debug!(
                    error = m.error.as_deref().unwrap_or(""),
                    "dropping failed message"
                );
            }
            StreamMetrics::add(&metrics.dropped, failed.len() as u64);
            Ok(())
        }
    }
}

async fn output_loop(
    mut done_rx: tokio::sync::mpsc::Receiver<Processed>,
    mut output: Box<dyn Output>,
    mut dead_letter: Option<Box<dyn Output>>,
    policy: ErrorPolicy,
    metrics: Arc<StreamMetrics>,
    abort: CancellationToken,
) -> Result<(), Error> {
    while let Some(Processed { out, acks, formed }) = done_rx.recv().await {
        let ChainOutput {
            mut ok,
            mut failed,
            filtered,
        } = out;
        StreamMetrics::add(&metrics.filtered, filtered);
        StreamMetrics::add(&metrics.failed, failed.len() as u64);
        if let Err(e) =
            handle_failed(&mut failed, &policy, dead_letter.as_mut(), &metrics, &abort).await
        {
            nack(acks);
            return Err(e);
        }
        if !ok.is_empty() {
            let mut refused = Vec::new();
            match write_confirmed(output.as_mut(), &ok, &abort).await {
                Ok(()) => {}
                // The destination refused these messages and confirmed the rest: the refused ones go to the
                // error policy.
                Err(Error::Rejected(list)) => {
                    let mut refused_at = vec![None; ok.len()];
                    for (i, e) in list {
                        if let Some(slot) = refused_at.get_mut(i) {
                            *slot = Some(e);
                        }
                    }
                    let mut kept = Vec::with_capacity(ok.len());
                    for (m, e) in ok.into_iter().zip(refused_at) {
                        match e {
                            Some(e) => refused.push(Message {
                                error: Some(e),
                                ..m
                            }),
                            None => kept.push(m),
                        }
                    }
                    ok = kept;
                }
                Err(e) => {
                    nack(acks);
                    return Err(e);
                }
            }
            StreamMetrics::add(&metrics.sent, ok.len() as u64);
            StreamMetrics::add(
                &metrics.bytes_out,
                ok.iter().map(|m| m.payload.len() as u64).sum(),
            );
            StreamMetrics::add(&metrics.failed, refused.len() as u64);
            if let Err(e) = handle_failed(
                &mut refused,
                &policy,
                dead_letter.as_mut(),
                &metrics,
                &abort,
            )
            .await
            {
                nack(acks);
                return Err(e);
            }
        }
        StreamMetrics::add(&metrics.batches, 1);
        StreamMetrics::add(&metrics.latency_us_sum, formed.elapsed().as_micros() as u64);
        for a in acks {
            a.done(Delivery::Delivered);
        }
    }
    output.close().await?;
    if let Some(mut d) = dead_letter {
        d.close().await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn recorder() -> (Ack, Arc<Mutex<Vec<Delivery>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        (Ack::new(move |d| s.lock().unwrap().push(d)), seen)
    }

    #[test]
    fn a_split_ack_fires_once_after_every_part() {
        let (ack, seen) = recorder();
        let mut parts = split_ack(ack, 3);
        parts.pop().unwrap().done(Delivery::Delivered);
        parts.pop().unwrap().done(Delivery::Delivered);
        assert!(seen.lock().unwrap().is_empty());
        parts.pop().unwrap().done(Delivery::Delivered);
        assert_eq!(*seen.lock().unwrap(), [Delivery::Delivered]);
    }

    #[test]
    fn a_split_ack_with_one_part_dropped_is_not_delivered() {
        let (ack, seen) = recorder();
        let mut parts = split_ack(ack, 2);
        parts.pop().unwrap().done(Delivery::Delivered);
        drop(parts);
        assert_eq!(*seen.lock().unwrap(), [Delivery::NotDelivered]);
    }

    #[tokio::test]
    async fn the_batcher_splits_input_batches_to_the_batch_size() {
        let (in_tx, in_rx) = tokio::sync::mpsc::channel(4);
        let (work_tx, work_rx) = async_channel::bounded(16);
        let (ack, seen) = recorder();
        let messages = (0..5)
            .map(|i| crate::message(vec![i], Default::default()))
            .collect();
        in_tx.send(InputBatch { messages, ack }).await.unwrap();
        drop(in_tx);
        batcher(in_rx, work_tx, 2, Duration::from_millis(5)).await;
        let sizes: Vec<usize> = std::iter::from_fn(|| work_rx.try_recv().ok())
            .map(|w| {
                let n = w.messages.len();
                for a in w.acks {
                    a.done(Delivery::Delivered);
                }
                n
            })
            .collect();
        assert_eq!(sizes, [2, 2, 1]);
        assert_eq!(*seen.lock().unwrap(), [Delivery::Delivered]);
    }
}
