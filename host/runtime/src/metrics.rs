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
    /// Messages that arrived after every window they belong to had closed (`system_window`).
    pub late: AtomicU64,
    /// Gauge: messages held in the stream's buffer now.
    pub buffer_depth: AtomicU64,
    /// Gauge: when the oldest message in the buffer arrived, in ms since the epoch (0 when it is empty).
    pub buffer_oldest_at_ms: AtomicU64,
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
    #[serde(default)]
    pub late: u64,
    /// Messages held in the buffer now (a gauge: not summed over ended runs).
    #[serde(default)]
    pub buffer_depth: u64,
    /// How long the oldest message in the buffer has waited, in ms (a gauge).
    #[serde(default)]
    pub buffer_oldest_age_ms: u64,
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
            late: self.late.load(Relaxed),
            buffer_depth: self.buffer_depth.load(Relaxed),
            buffer_oldest_age_ms: match self.buffer_oldest_at_ms.load(Relaxed) {
                0 => 0,
                at => crate::buffers::now_ms().saturating_sub(at),
            },
        }
    }

    /// Sets the buffer gauges.
    pub fn set_buffer(&self, depth: u64, oldest_at_ms: u64) {
        self.buffer_depth.store(depth, Relaxed);
        self.buffer_oldest_at_ms.store(oldest_at_ms, Relaxed);
    }
}

impl MetricsSnapshot {
    /// `(name, help, value)` for each counter, as exported to Prometheus (`airtruct_stream_<name>_total`).
    pub fn counters(&self) -> [(&'static str, &'static str, u64); 10] {
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
            (
                "late",
                "Messages that arrived after their windows closed",
                self.late,
            ),
        ]
    }

    /// `(name, help, value)` for each gauge (`airtruct_stream_<name>`).
    pub fn gauges(&self) -> [(&'static str, &'static str, u64); 2] {
        [
            (
                "buffer_depth",
                "Messages held in the stream's buffer",
                self.buffer_depth,
            ),
            (
                "buffer_oldest_age_ms",
                "How long the oldest message in the buffer has waited, in milliseconds",
                self.buffer_oldest_age_ms,
            ),
        ]
    }
}
