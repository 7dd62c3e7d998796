//! Stream counters: every run's last report is kept in the store (`stream_runs`), so a stream's counters, the sum
//! over its runs, add up over pauses, failovers and restarts of any coordinator; the leader samples them into the
//! store's history for the console's charts, and folds runs that ended long ago into one row per stream.

use std::sync::Arc;
use std::time::Duration;

use airtruct_runtime::MetricsSnapshot;
use airtruct_store::{StoreError, now_ms};
use tokio_util::sync::CancellationToken;

use super::Coordinator;
use crate::protocol::{ReplicaState, StreamReport};

/// How often [`Coordinator::run_sampler`] samples every stream's counters.
pub const HISTORY_EVERY: Duration = Duration::from_secs(5);
/// How long samples are kept: 15 minutes.
const HISTORY_KEPT: Duration = Duration::from_secs(15 * 60);
/// Runs that ended this long ago are folded into their stream's one folded row. A worker that has been silent
/// this long was forgotten (see `prune_workers`) and must register again, so it cannot report them again.
pub(super) const FOLD_AFTER: Duration = Duration::from_secs(3600);

impl Coordinator {
    /// Forgets a deleted stream's counters (the store deleted their rows with the stream).
    pub fn forget(&self, stream_id: &str) {
        self.runs.lock().expect("runs lock").forget(stream_id);
    }

    /// Samples every stream's counters now, into the store (the leader does this).
    pub async fn sample_history(&self) -> Result<(), StoreError> {
        let now = now_ms();
        let streams = self.store.list_streams().await?;
        let samples: Vec<(String, String)> = streams
            .iter()
            .map(|s| {
                // The charts plot the stream's totals: the per-component counters stay out of the history.
                let totals = MetricsSnapshot {
                    components: Vec::new(),
                    ..self.stream_metrics(&s.id)
                };
                let json = serde_json::to_string(&totals).expect("counters serialize");
                (s.id.clone(), json)
            })
            .collect();
        self.store
            .add_history(now, &samples, now - HISTORY_KEPT.as_millis() as i64)
            .await
    }

    /// While this coordinator leads, samples counters every [`HISTORY_EVERY`] until `shutdown`.
    pub async fn run_sampler(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(HISTORY_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if !self.leads() {
                continue;
            }
            if let Err(e) = self.sample_history().await {
                tracing::warn!(error = %e, "sampling stream counters failed");
            }
        }
    }

    /// A stream's sampled counters, oldest first: (milliseconds since the epoch, counters).
    pub async fn history(
        &self,
        stream_id: &str,
    ) -> Result<Vec<(i64, MetricsSnapshot)>, StoreError> {
        self.store
            .history(stream_id)
            .await?
            .into_iter()
            .map(|(at, json)| {
                serde_json::from_str(&json)
                    .map(|m| (at, m))
                    .map_err(|e| StoreError::Corrupt(format!("a history sample: {e}")))
            })
            .collect()
    }

    /// A stream's counters over all its runs: those that ended and those workers report now. What the replicas
    /// hold in their buffers counts only for the runs that go on.
    pub fn stream_metrics(&self, stream_id: &str) -> MetricsSnapshot {
        let mut sum = MetricsSnapshot::default();
        let runs = self.runs.lock().expect("runs lock");
        for run in runs.of_stream(stream_id) {
            if run.live {
                add(&mut sum, &run.report.metrics);
            } else {
                add(&mut sum, &ended(&run.report.metrics));
            }
        }
        sum
    }

    /// Folds the runs that ended more than [`FOLD_AFTER`] ago (the leader does this now and then).
    pub(super) async fn fold_runs(&self) -> Result<(), StoreError> {
        let folded = self
            .store
            .fold_runs(now_ms() - FOLD_AFTER.as_millis() as i64, |stream_id, reports| {
                let mut sum = MetricsSnapshot::default();
                for r in reports {
                    match serde_json::from_str::<StreamReport>(r) {
                        Ok(r) => add(&mut sum, &ended(&r.metrics)),
                        Err(e) => tracing::warn!(stream = stream_id, error = %e, "a run's stored report does not read: its counters are left out"),
                    }
                }
                serde_json::to_string(&folded_report(stream_id, sum)).expect("a report serializes")
            })
            .await?;
        if folded > 0 {
            tracing::debug!(runs = folded, "folded the counters of runs that ended");
            self.runs.lock().expect("runs lock").read_all_next();
        }
        Ok(())
    }
}

/// The report a stream's folded row holds: the counters of the runs folded into it (it is never live).
fn folded_report(stream_id: &str, metrics: MetricsSnapshot) -> StreamReport {
    StreamReport {
        stream_id: stream_id.to_string(),
        version: 0,
        state: ReplicaState::Completed,
        reason: None,
        attempts: 0,
        started_at: 0,
        assigned_at: 0,
        metrics,
    }
}

/// A run that ended holds nothing in its buffer any more: only its counters add up.
fn ended(m: &MetricsSnapshot) -> MetricsSnapshot {
    MetricsSnapshot {
        buffer_depth: 0,
        buffer_oldest_age_ms: 0,
        ..m.clone()
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
