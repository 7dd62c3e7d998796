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
