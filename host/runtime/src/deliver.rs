//! The output side of a stream: writes confirmed under the one retry policy (each write abandoned when the
//! stream is aborted), the error policy for failed and refused messages, and the acknowledgements.

use std::sync::Arc;

use airtruct_model::ErrorPolicy;
use tokio_util::sync::CancellationToken;

use crate::batcher::nack;
use crate::chain::ChainOutput;
use crate::metrics::ComponentMetrics;
use crate::retry::{confirmed, write_confirmed};
use crate::stream::Processed;
use crate::tap::Tap;
use crate::{Delivery, Error, Message, Output, StreamMetrics, meta_set};

/// A stream's output and dead-letter output, with their counters.
pub(crate) struct Outputs {
    pub output: Box<dyn Output>,
    pub output_metrics: Arc<ComponentMetrics>,
    pub dead_letter: Option<(Box<dyn Output>, Arc<ComponentMetrics>)>,
}

/// Applies the error policy to failed messages: `Err` stops the stream (the caller does not acknowledge).
async fn handle_failed(
    failed: &mut [Message],
    policy: &ErrorPolicy,
    dead_letter: Option<&mut (Box<dyn Output>, Arc<ComponentMetrics>)>,
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
        (ErrorPolicy::DeadLetter(_), Some((dlq, counters))) => {
            for m in failed.iter_mut() {
                let e = m.error.take().unwrap_or_default();
                meta_set(m, "error", &e);
            }
            write_confirmed(dlq.as_mut(), failed, counters, abort)
                .await
                .map_err(|e| Error::External(format!("dead-letter output: {e}")))?;
            confirmed(counters, failed.iter());
            Ok(())
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

pub(crate) async fn output_loop(
    mut done_rx: tokio::sync::mpsc::Receiver<Processed>,
    outputs: Outputs,
    policy: ErrorPolicy,
    metrics: Arc<StreamMetrics>,
    abort: CancellationToken,
    (tap, output_step, output_label): (Tap, usize, String),
) -> Result<(), Error> {
    let Outputs {
        mut output,
        output_metrics,
        mut dead_letter,
    } = outputs;
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
            match write_confirmed(output.as_mut(), &ok, &output_metrics, &abort).await {
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
            confirmed(&output_metrics, &ok);
            tap.sample(output_step, &|| output_label.clone(), &ok);
            tap.record(output_step, &|| output_label.clone(), &ok, false);
            StreamMetrics::add(&metrics.failed, refused.len() as u64);
            StreamMetrics::add(&output_metrics.failed, refused.len() as u64);
            tap.sample(output_step, &|| output_label.clone(), &refused);
            tap.record(output_step, &|| output_label.clone(), &refused, false);
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
    if let Some((mut d, _)) = dead_letter {
        d.close().await?;
    }
    Ok(())
}
