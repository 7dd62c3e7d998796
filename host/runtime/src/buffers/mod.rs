//! Buffers between a stream's input and its processors. A buffer wraps the input: it reads from it in the
//! background (a pump task), keeps what it read, and is itself the input the stream reads from.

pub mod memory;
pub mod window;

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{Error, Input, InputBatch};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What a pump got from the upstream input.
pub enum Pumped {
    Batch(InputBatch),
    /// A finite input is exhausted.
    Exhausted,
    /// The buffer is closing.
    Stopped,
}

/// The next batch from `inner`, retrying failures that may pass with a backoff of up to 5 s, until `stop`.
pub async fn pump_read(inner: &mut dyn Input, stop: &CancellationToken) -> Result<Pumped, Error> {
    let mut backoff = crate::retry::RetryPolicy::INPUT.start();
    loop {
        let read = tokio::select! {
            _ = stop.cancelled() => return Ok(Pumped::Stopped),
            r = inner.read() => r,
        };
        match read {
            Ok(Some(batch)) => return Ok(Pumped::Batch(batch)),
            Ok(None) => return Ok(Pumped::Exhausted),
            Err(e) if e.is_retryable() => {
                let wait = backoff.next_wait().unwrap_or(Duration::from_secs(5));
                tracing::warn!(error = %e, retry_in = ?wait, "input failed, retrying");
                tokio::select! {
                    _ = stop.cancelled() => return Ok(Pumped::Stopped),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Reads `inner` into a channel until it is exhausted (`Ok(true)`), `stop` is cancelled or the receiver is gone
/// (`Ok(false)`), then closes it: waiting on the channel can be cancelled without losing a batch.
pub async fn pump_into(
    mut inner: Box<dyn Input>,
    tx: tokio::sync::mpsc::Sender<InputBatch>,
    stop: CancellationToken,
) -> Result<bool, Error> {
    let result = loop {
        match pump_read(inner.as_mut(), &stop).await {
            Ok(Pumped::Batch(b)) => {
                if tx.send(b).await.is_err() {
                    break Ok(false);
                }
            }
            Ok(Pumped::Exhausted) => break Ok(true),
            Ok(Pumped::Stopped) => break Ok(false),
            Err(e) => break Err(e),
        }
    };
    drop(tx);
    let closed = inner.close().await;
    result.and_then(|exhausted| closed.map(|()| exhausted))
}
