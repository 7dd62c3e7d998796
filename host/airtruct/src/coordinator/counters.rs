//! Stream counters: the totals of runs that ended (settled), their sum with what workers report now, and the
//! history sampled for the console's charts.

use std::sync::Arc;
use std::time::Duration;

use airtruct_runtime::MetricsSnapshot;
use airtruct_store::{StoreError, now_ms};
use tokio_util::sync::CancellationToken;

use super::Coordinator;
use crate::protocol::StreamReport;

/// How often [`Coordinator::run_sampler`] samples every stream's counters.
pub const HISTORY_EVERY: Duration = Duration::from_secs(5);
/// How many samples it keeps per stream: 15 minutes.
const HISTORY_LEN: usize = 180;

impl Coordinator {
    /// Adds the last counters of runs that ended to their streams' totals.
    pub(super) fn settle(&self, ended: impl IntoIterator<Item = StreamReport>) {
        let mut settled = self.settled.lock().expect("settled lock");
        for r in ended {
            // A run that ended holds nothing in its buffer any more: only its counters add up.
            let counters = MetricsSnapshot {
                buffer_depth: 0,
                buffer_oldest_age_ms: 0,
                ..r.metrics.clone()
            };
            add(settled.entry(r.stream_id).or_default(), &counters);
        }
    }

    /// Forgets a deleted stream's counters.
    pub fn forget(&self, stream_id: &str) {
        self.settled.lock().expect("settled lock").remove(stream_id);
        self.history.lock().expect("history lock").remove(stream_id);
    }

    /// Samples every stream's counters now, keeping the last [`HISTORY_LEN`] samples of each.
    pub async fn sample_history(&self) -> Result<(), StoreError> {
        let now = now_ms();
        let streams = self.store.list_streams().await?;
        let mut history = self.history.lock().expect("history lock");
        history.retain(|id, _| streams.iter().any(|s| &s.id == id));
        for s in &streams {
            let samples = history.entry(s.id.clone()).or_default();
            if samples.len() == HISTORY_LEN {
                samples.pop_front();
            }
            // The charts plot the stream's totals: the per-component counters stay out of the history.
            let totals = MetricsSnapshot {
                components: Vec::new(),
                ..self.stream_metrics(&s.id)
            };
            samples.push_back((now, totals));
        }
        Ok(())
    }

    /// Samples counters every [`HISTORY_EVERY`] until `shutdown`.
    pub async fn run_sampler(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(HISTORY_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.sample_history().await {
                tracing::warn!(error = %e, "sampling stream counters failed");
            }
        }
    }

    /// A stream's sampled counters, oldest first: (milliseconds since the epoch, counters).
    pub fn history(&self, stream_id: &str) -> Vec<(i64, MetricsSnapshot)> {
        self.history
            .lock()
            .expect("history lock")
            .get(stream_id)
            .map(|h| h.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// A stream's counters since the coordinator started: runs that ended plus the runs workers report now.
    pub fn stream_metrics(&self, stream_id: &str) -> MetricsSnapshot {
        let mut sum = self
            .settled
            .lock()
            .expect("settled lock")
            .get(stream_id)
            .cloned()
            .unwrap_or_default();
        let reports = self.reports.lock().expect("reports lock");
        for r in reports.values() {
            for s in r.streams.iter().filter(|s| s.stream_id == stream_id) {
                add(&mut sum, &s.metrics);
            }
        }
        sum
    }
}

fn add(sum: &mut MetricsSnapshot, m: &MetricsSnapshot) {
    sum.received += m.received;
    sum.sent += m.sent;
    sum.filtered += m.filtered;
    sum.dropped += m.dropped;
    sum.failed += m.failed;
    sum.bytes_in += m.bytes_in;
    sum.bytes_out += m.bytes_out;
    sum.batches += m.batches;
    sum.latency_us_sum += m.latency_us_sum;
    sum.processor_restarts += m.processor_restarts;
    sum.late += m.late;
    // Gauges: what the replicas hold adds up; the age is the oldest message's.
    sum.buffer_depth += m.buffer_depth;
    sum.buffer_oldest_age_ms = sum.buffer_oldest_age_ms.max(m.buffer_oldest_age_ms);
    airtruct_runtime::metrics::add_components(&mut sum.components, &m.components);
}
