//! The one retry-with-backoff policy: inputs that fail in a way that may pass, outputs that fail to write (a
//! stream's own and those a `switch` or `broker` holds: [`write_confirmed`]), and the buffers' pumps all wait by
//! it.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::metrics::ComponentMetrics;
use crate::{Error, Message, Output, StreamMetrics};

/// How often and how long to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first wait, doubled after each try.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
    /// Tries after the first before giving up (`None`: never give up, for inputs).
    pub retries: Option<u32>,
}

impl RetryPolicy {
    /// Outputs: about 2.5 minutes of retries (100 ms doubling up to 5 s, 35 times), then the stream fails.
    pub const OUTPUT: RetryPolicy = RetryPolicy {
        first: Duration::from_millis(100),
        max: Duration::from_secs(5),
        retries: Some(35),
    };

    /// Inputs and buffer pumps: 100 ms doubling up to 5 s, until the stream stops.
    pub const INPUT: RetryPolicy = RetryPolicy {
        first: Duration::from_millis(100),
        max: Duration::from_secs(5),
        retries: None,
    };

    /// A fresh count of tries under this policy.
    pub fn start(self) -> Backoff {
        Backoff {
            policy: self,
            next: self.first,
            tries: 0,
        }
    }
}

/// The waits of one run of retries.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: RetryPolicy,
    next: Duration,
    tries: u32,
}

impl Backoff {
    /// The wait before the next try, or `None` when the retries are spent.
    pub fn next_wait(&mut self) -> Option<Duration> {
        if self.policy.retries.is_some_and(|n| self.tries >= n) {
            return None;
        }
        self.tries += 1;
        let wait = self.next;
        self.next = (self.next * 2).min(self.policy.max);
        Some(wait)
    }

    /// Tries so far after the first.
    pub fn tries(&self) -> u32 {
        self.tries
    }

    /// After a success: the next failure starts from the first wait again.
    pub fn reset(&mut self) {
        self.next = self.policy.first;
        self.tries = 0;
    }
}

impl RetryPolicy {
    /// No retries: for an output that retries what it holds itself (a `switch` or `broker` output).
    pub const NONE: RetryPolicy = RetryPolicy {
        first: Duration::from_millis(100),
        max: Duration::from_secs(5),
        retries: Some(0),
    };
}

/// Writes with retries (under the output's own policy) until confirmed, the retries run out or the stream is aborted (a write in progress is
/// then abandoned: its messages stay unacknowledged).
pub async fn write_confirmed(
    output: &mut dyn Output,
    batch: &[Message],
    counters: &ComponentMetrics,
    abort: &CancellationToken,
) -> Result<(), Error> {
    let policy = output.retry_policy();
    let mut backoff = policy.start();
    StreamMetrics::add(&counters.received, batch.len() as u64);
    StreamMetrics::add(
        &counters.bytes_in,
        batch.iter().map(|m| m.payload.len() as u64).sum(),
    );
    loop {
        let started = Instant::now();
        let written = tokio::select! {
            _ = abort.cancelled() => {
                return Err(Error::External("the stream was aborted while a write was in progress".into()));
            }
            w = output.write(batch) => w,
        };
        counters.time(started);
        match written {
            Ok(()) => return Ok(()),
            Err(e) if e.is_retryable() => match backoff.next_wait() {
                None => {
                    return Err(Error::External(format!(
                        "{e} (gave up after {} retries)",
                        backoff.tries()
                    )));
                }
                Some(wait) => {
                    tracing::warn!(error = %e, retry_in = ?wait, "output failed, retrying");
                    tokio::select! {
                        _ = abort.cancelled() => return Err(e),
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            },
            Err(e) => return Err(e),
        }
    }
}

/// Counts messages an output confirmed.
pub fn confirmed<'a>(counters: &ComponentMetrics, messages: impl IntoIterator<Item = &'a Message>) {
    let (n, bytes) = messages
        .into_iter()
        .fold((0, 0), |(n, b), m| (n + 1, b + m.payload.len() as u64));
    StreamMetrics::add(&counters.sent, n);
    StreamMetrics::add(&counters.bytes_out, bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_max_and_stop_after_the_retries() {
        let mut b = RetryPolicy {
            first: Duration::from_millis(100),
            max: Duration::from_millis(300),
            retries: Some(3),
        }
        .start();
        let waits: Vec<_> = std::iter::from_fn(|| b.next_wait()).collect();
        assert_eq!(waits, [100, 200, 300].map(Duration::from_millis).to_vec());
        b.reset();
        assert_eq!(b.next_wait(), Some(Duration::from_millis(100)));
    }

    #[test]
    fn the_output_policy_retries_for_about_two_and_a_half_minutes() {
        let mut b = RetryPolicy::OUTPUT.start();
        let total: Duration = std::iter::from_fn(|| b.next_wait()).sum();
        assert!(
            total > Duration::from_secs(140) && total < Duration::from_secs(170),
            "{total:?}"
        );
    }
}
