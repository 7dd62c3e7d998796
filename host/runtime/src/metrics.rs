//! The counters every stream reports, and every component of it (input, each processor, output), with their
//! names in one place.

use std::sync::Arc;
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
    /// Each component's counters, in the order the stream built them.
    components: std::sync::Mutex<Vec<Arc<ComponentMetrics>>>,
}

/// Counters of one component of a stream.
#[derive(Debug, Default)]
pub struct ComponentMetrics {
    /// Where it sits in the config: `input`, `pipeline.processors[1]`, `output`, `on_error.dead_letter`.
    pub component: String,
    /// Its kind (`kafka`, `mapping`).
    pub kind: String,
    /// Messages it took in (read, for an input).
    pub received: AtomicU64,
    /// Messages it handed on (confirmed, for an output).
    pub sent: AtomicU64,
    /// Messages it filtered out.
    pub filtered: AtomicU64,
    /// Messages it failed (or refused, for an output).
    pub failed: AtomicU64,
    /// Payload bytes it took in.
    pub bytes_in: AtomicU64,
    /// Payload bytes it handed on.
    pub bytes_out: AtomicU64,
    /// Time spent in it, in microseconds (wasm calls, writes).
    pub processing_us: AtomicU64,
}

/// Where a component comes in the pipeline, for listing: input, buffer, processors in order, output, dead letter.
fn pipeline_rank(component: &str) -> (u8, usize) {
    if component == "input" {
        (0, 0)
    } else if component.starts_with("buffer") {
        (1, component.len())
    } else if let Some(i) = component
        .strip_prefix("pipeline.processors[")
        .and_then(|r| r.split(']').next())
        .and_then(|n| n.parse().ok())
    {
        (2, i)
    } else if component == "output" {
        (3, 0)
    } else {
        (4, 0)
    }
}

/// A point-in-time copy of [`ComponentMetrics`].
#[derive(
    Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct ComponentSnapshot {
    /// Where it sits in the config: `input`, `pipeline.processors[1]`, `output`, `on_error.dead_letter`.
    pub component: String,
    /// Its kind (`kafka`, `mapping`).
    pub kind: String,
    /// Messages it took in (read, for an input).
    pub received: u64,
    /// Messages it handed on (confirmed, for an output).
    pub sent: u64,
    /// Messages it filtered out.
    pub filtered: u64,
    /// Messages it failed (or refused, for an output).
    pub failed: u64,
    /// Payload bytes it took in.
    pub bytes_in: u64,
    /// Payload bytes it handed on.
    pub bytes_out: u64,
    /// Time spent in it, in microseconds.
    pub processing_us: u64,
}

impl ComponentMetrics {
    /// The current values.
    pub fn snapshot(&self) -> ComponentSnapshot {
        ComponentSnapshot {
            component: self.component.clone(),
            kind: self.kind.clone(),
            received: self.received.load(Relaxed),
            sent: self.sent.load(Relaxed),
            filtered: self.filtered.load(Relaxed),
            failed: self.failed.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            processing_us: self.processing_us.load(Relaxed),
        }
    }

    /// Adds the time since `since` to the processing time.
    pub fn time(&self, since: std::time::Instant) {
        self.processing_us
            .fetch_add(since.elapsed().as_micros() as u64, Relaxed);
    }
}

impl ComponentSnapshot {
    /// Adds another run's (or replica's) counters of the same component.
    pub fn add(&mut self, o: &ComponentSnapshot) {
        self.received += o.received;
        self.sent += o.sent;
        self.filtered += o.filtered;
        self.failed += o.failed;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.processing_us += o.processing_us;
    }

    /// `(name, help, value)` for each counter, as exported to Prometheus
    /// (`airtruct_component_<name>_total{stream, component, kind}`).
    pub fn counters(&self) -> [(&'static str, &'static str, u64); 7] {
        [
            ("received", "Messages a component took in", self.received),
            ("sent", "Messages a component handed on", self.sent),
            (
                "filtered",
                "Messages a component filtered out",
                self.filtered,
            ),
            (
                "failed",
                "Messages a component failed or refused",
                self.failed,
            ),
            (
                "bytes_in",
                "Payload bytes a component took in",
                self.bytes_in,
            ),
            (
                "bytes_out",
                "Payload bytes a component handed on",
                self.bytes_out,
            ),
            (
                "processing_us",
                "Microseconds spent in a component",
                self.processing_us,
            ),
        ]
    }
}

/// Adds `more` into `sum`, component by component (matched by `component` and `kind`; new ones appended).
pub fn add_components(sum: &mut Vec<ComponentSnapshot>, more: &[ComponentSnapshot]) {
    for c in more {
        match sum
            .iter_mut()
            .find(|s| s.component == c.component && s.kind == c.kind)
        {
            Some(s) => s.add(c),
            None => sum.push(c.clone()),
        }
    }
    // In the pipeline's order whatever order the reports came in (an early report may hold only the components
    // built before the processors).
    sum.sort_by_key(|c| pipeline_rank(&c.component));
}

/// A point-in-time copy of [`StreamMetrics`].
#[derive(
    Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
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
    /// Each component's counters, in pipeline order.
    #[serde(default)]
    pub components: Vec<ComponentSnapshot>,
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
            components: {
                let mut all: Vec<ComponentSnapshot> = self
                    .components
                    .lock()
                    .expect("metrics lock")
                    .iter()
                    .map(|c| c.snapshot())
                    .collect();
                all.sort_by_key(|c| pipeline_rank(&c.component));
                all
            },
        }
    }

    /// The counters of a component, made the first time it is asked for.
    pub fn component(&self, component: &str, kind: &str) -> Arc<ComponentMetrics> {
        let mut all = self.components.lock().expect("metrics lock");
        if let Some(c) = all
            .iter()
            .find(|c| c.component == component && c.kind == kind)
        {
            return c.clone();
        }
        let c = Arc::new(ComponentMetrics {
            component: component.to_string(),
            kind: kind.to_string(),
            ..Default::default()
        });
        all.push(c.clone());
        c
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

#[cfg(test)]
mod tests {
    use super::*;

    fn c(component: &str, sent: u64) -> ComponentSnapshot {
        ComponentSnapshot {
            component: component.into(),
            kind: "k".into(),
            sent,
            ..Default::default()
        }
    }

    #[test]
    fn merged_components_keep_the_pipelines_order_whatever_order_reports_came_in() {
        // The first report was taken before the processors' counters existed.
        let mut sum = Vec::new();
        add_components(&mut sum, &[c("input", 1), c("output", 1)]);
        add_components(
            &mut sum,
            &[
                c("input", 2),
                c("pipeline.processors[0]", 2),
                c("pipeline.processors[0].switch.cases[0].processors[0]", 2),
                c("output", 2),
            ],
        );
        let order: Vec<(&str, u64)> = sum.iter().map(|c| (c.component.as_str(), c.sent)).collect();
        assert_eq!(
            order,
            [
                ("input", 3),
                ("pipeline.processors[0]", 2),
                ("pipeline.processors[0].switch.cases[0].processors[0]", 2),
                ("output", 3)
            ]
        );
    }
}
