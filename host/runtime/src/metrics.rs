//! The counters every stream reports, with their names in one place.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters of one stream, shared between its tasks and whoever reports them.
#[derive(Debug, Default)]
pub struct StreamMetrics {
    /// Messages read from the input.
    pub received: AtomicU64,
    /// Messages confirmed by the output.
    pub sent: AtomicU64,
    /// Messages filtered out by processors.
    pub filtered: AtomicU64,
    /// Failed messages dropped by the `drop` error policy.
    pub dropped: AtomicU64,
    /// Messages that failed in a processor (whatever the policy did with them).
    pub failed: AtomicU64,
    /// Payload bytes read from the input.
    pub bytes_in: AtomicU64,
    /// Payload bytes confirmed by the output.
    pub bytes_out: AtomicU64,
    /// Batches processed.
    pub batches: AtomicU64,
    /// Sum of batch latencies (batch formed to output confirmed), in microseconds.
    pub latency_us_sum: AtomicU64,
    /// Processor instances replaced after a trap, timeout or memory-cap hit.
    pub processor_restarts: AtomicU64,
}

/// A point-in-time copy of [`StreamMetrics`].
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
pub struct MetricsSnapshot {
    pub received: u64,
    pub sent: u64,
    pub filtered: u64,
    pub dropped: u64,
    pub failed: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub batches: u64,
    pub latency_us_sum: u64,
    pub processor_restarts: u64,
}

impl StreamMetrics {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            received: self.received.load(Relaxed),
            sent: self.sent.load(Relaxed),
            filtered: self.filtered.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            failed: self.failed.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            batches: self.batches.load(Relaxed),
            latency_us_sum: self.latency_us_sum.load(Relaxed),
            processor_restarts: self.processor_restarts.load(Relaxed),
        }
    }
}

impl MetricsSnapshot {
    /// `(name, help, value)` for each counter, as exported to Prometheus (`airtruct_stream_<name>_total`).
    pub fn counters(&self) -> [(&'static str, &'static str, u64); 9] {
        [
            ("received", "Messages read from the input", self.received),
            ("sent", "Messages confirmed by the output", self.sent),
            (
                "filtered",
                "Messages filtered out by processors",
                self.filtered,
            ),
            (
                "dropped",
                "Failed messages dropped by the error policy",
                self.dropped,
            ),
            ("failed", "Messages that failed in a processor", self.failed),
            (
                "bytes_in",
                "Payload bytes read from the input",
                self.bytes_in,
            ),
            (
                "bytes_out",
                "Payload bytes confirmed by the output",
                self.bytes_out,
            ),
            ("batches", "Batches processed", self.batches),
            (
                "processor_restarts",
                "Processor instances replaced after a failure",
                self.processor_restarts,
            ),
        ]
    }
}
