//! What workers report: every run's last report, kept in the store and read back by every coordinator (so any
//! of them answers for any worker), the stream statuses a report decides (`failed` when a replica failed,
//! `completed` when every replica completed) and the ingest targets it names.

use std::collections::HashMap;

use airtruct_store::{FOLDED, RunRecord, StoreError, StreamRecord, StreamStatus, now_ms};

use super::Coordinator;
use crate::protocol::{ReplicaState, StreamReport};

/// What a worker last reported.
#[derive(Debug, Clone)]
pub struct WorkerReport {
    pub streams: Vec<StreamReport>,
}

/// A run as this coordinator last heard or read it.
#[derive(Debug, Clone)]
pub(super) struct Run {
    pub report: StreamReport,
    /// The report as stored, to tell a changed one.
    json: String,
    /// Whether a worker reports it now.
    pub live: bool,
    /// When its row was written (ms): an older row read from the store does not replace it.
    updated_at: i64,
}

/// How far back each read of the store looks past the last one began: rows are stamped by the clock of the
/// coordinator that wrote them and may commit a moment after.
const READ_MARGIN_MS: i64 = 10_000;
/// How often every row is read again, for rows deleted meanwhile (a deleted stream, folded runs).
const READ_ALL_EVERY_MS: i64 = 60_000;

/// Every run this coordinator knows of, by stream and then by worker and start.
#[derive(Default)]
pub(super) struct Runs {
    by_stream: HashMap<String, HashMap<(String, i64), Run>>,
    /// When the last read of the store began, and the last read of every row.
    read_at: Option<i64>,
    read_all_at: i64,
}

impl Runs {
    pub fn of_stream(&self, stream_id: &str) -> impl Iterator<Item = &Run> {
        self.by_stream
            .get(stream_id)
            .into_iter()
            .flat_map(|r| r.values())
    }

    pub fn forget(&mut self, stream_id: &str) {
        self.by_stream.remove(stream_id);
    }

    /// Reads every row on the next refresh.
    pub fn read_all_next(&mut self) {
        self.read_at = None;
    }

    /// Ends a worker's live runs but those in `keep` (stream, start).
    fn end_worker(&mut self, worker: &str, keep: &[(String, i64)], now: i64) {
        for (stream_id, runs) in &mut self.by_stream {
            for ((w, started_at), run) in runs.iter_mut() {
                if w == worker
                    && run.live
                    && !keep.iter().any(|(s, t)| s == stream_id && t == started_at)
                {
                    run.live = false;
                    run.updated_at = now;
                }
            }
        }
    }

    /// Takes a row read from the store, unless what is here was written later; whether it was a folded row
    /// this coordinator did not have (its runs are here still: every row must be read again).
    fn take(&mut self, row: RunRecord) -> bool {
        let runs = self.by_stream.entry(row.stream_id.clone()).or_default();
        let key = (row.worker_id.clone(), row.started_at);
        if runs
            .get(&key)
            .is_some_and(|r| r.updated_at >= row.updated_at)
        {
            return false;
        }
        let report: StreamReport = match serde_json::from_str(&row.report) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(stream = %row.stream_id, worker = %row.worker_id, error = %e, "a run's stored report does not read: it is left out");
                return false;
            }
        };
        let folded = row.worker_id == FOLDED;
        runs.insert(
            key,
            Run {
                report,
                json: row.report,
                live: row.live,
                updated_at: row.updated_at,
            },
        );
        folded
    }
}

impl Coordinator {
    /// Reads what changed in the store since the last read: the runs other coordinators heard of, and where
    /// workers take ingest requests. Every coordinator does this on each round of its scheduler.
    pub(super) async fn refresh(&self) -> Result<(), StoreError> {
        for _ in 0..2 {
            let now = now_ms();
            let since = {
                let runs = self.runs.lock().expect("runs lock");
                match runs.read_at {
                    Some(t) if now - runs.read_all_at < READ_ALL_EVERY_MS => t - READ_MARGIN_MS,
                    _ => i64::MIN,
                }
            };
            let rows = self.store.runs_since(since).await?;
            let workers = self.store.list_workers().await?;
            *self.ingest_urls.lock().expect("ingest lock") = workers
                .into_iter()
                .filter(|w| w.state != airtruct_store::WorkerState::Dead)
                .filter_map(|w| Some((w.id, w.ingest_url?)))
                .collect();
            let mut runs = self.runs.lock().expect("runs lock");
            let mut stale = false;
            if since == i64::MIN {
                // Keep only what was written here after this read began.
                for map in runs.by_stream.values_mut() {
                    map.retain(|_, r| r.updated_at >= now);
                }
                runs.by_stream.retain(|_, m| !m.is_empty());
                runs.read_all_at = now;
            }
            for row in rows {
                stale |= runs.take(row);
            }
            runs.read_at = Some(now);
            if !stale || since == i64::MIN {
                return Ok(());
            }
            runs.read_all_next();
        }
        Ok(())
    }

    /// Keeps a worker's report and applies what it says about finished streams.
    pub(super) async fn record_report(
        &self,
        worker: &str,
        streams: Vec<StreamReport>,
    ) -> Result<(), StoreError> {
        let finished: Vec<StreamReport> = streams
            .iter()
            .filter(|r| matches!(r.state, ReplicaState::Completed | ReplicaState::Failed))
            .cloned()
            .collect();
        let reported: Vec<(String, i64)> = streams
            .iter()
            .map(|r| (r.stream_id.clone(), r.started_at))
            .collect();
        // Only the runs whose report changed are written (an idle stream's counters stand still).
        let changed: Vec<(&StreamReport, String)> = {
            let runs = self.runs.lock().expect("runs lock");
            streams
                .iter()
                .filter_map(|r| {
                    let json = serde_json::to_string(r).expect("a report serializes");
                    let same = runs
                        .by_stream
                        .get(&r.stream_id)
                        .and_then(|m| m.get(&(worker.to_string(), r.started_at)))
                        .is_some_and(|run| run.live && run.json == json);
                    (!same).then_some((r, json))
                })
                .collect()
        };
        let rows: Vec<(String, i64, String)> = changed
            .iter()
            .map(|(r, json)| (r.stream_id.clone(), r.started_at, json.clone()))
            .collect();
        self.store.record_runs(worker, &reported, &rows).await?;
        {
            let now = now_ms();
            let mut runs = self.runs.lock().expect("runs lock");
            runs.end_worker(worker, &reported, now);
            for (r, json) in changed {
                runs.by_stream
                    .entry(r.stream_id.clone())
                    .or_default()
                    .insert(
                        (worker.to_string(), r.started_at),
                        Run {
                            report: r.clone(),
                            json,
                            live: true,
                            updated_at: now,
                        },
                    );
            }
        }
        for r in finished {
            let stream = match self.store.get_stream(&r.stream_id).await {
                Ok(s) => s,
                Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            if stream.status != StreamStatus::Active || stream.version != r.version {
                continue;
            }
            // Only a report of the current assignment counts (not one from before a resume).
            let current = self.store.list_assignments().await?.into_iter().any(|a| {
                a.stream_id == stream.id && a.worker_id == worker && a.assigned_at == r.assigned_at
            });
            if !current {
                continue;
            }
            if r.state == ReplicaState::Failed {
                let reason = r.reason.clone().unwrap_or_else(|| "failed".into());
                tracing::warn!(stream = %stream.id, worker, reason = %reason, "stream failed");
                self.store
                    .finish_stream(
                        &stream.id,
                        stream.version,
                        StreamStatus::Failed,
                        Some(&reason),
                    )
                    .await?;
                self.changed();
            } else if self.all_replicas_completed(&stream).await? {
                tracing::info!(stream = %stream.id, "stream completed");
                self.store
                    .finish_stream(&stream.id, stream.version, StreamStatus::Completed, None)
                    .await?;
                self.changed();
            }
        }
        Ok(())
    }

    async fn all_replicas_completed(&self, stream: &StreamRecord) -> Result<bool, StoreError> {
        let on: Vec<String> = self
            .store
            .list_assignments()
            .await?
            .into_iter()
            .filter(|a| a.stream_id == stream.id)
            .map(|a| a.worker_id)
            .collect();
        let reports = self.reports();
        Ok(on.iter().all(|w| {
            reports.get(w).is_some_and(|r| {
                r.streams.iter().any(|s| {
                    s.stream_id == stream.id
                        && s.version == stream.version
                        && s.state == ReplicaState::Completed
                })
            })
        }))
    }

    /// Every worker with a listener, with its URL (the journeys of a stream that ran there are kept there).
    pub fn listeners(&self) -> Vec<(String, String)> {
        let urls = self.ingest_urls.lock().expect("ingest lock");
        urls.iter().map(|(w, u)| (w.clone(), u.clone())).collect()
    }

    /// The workers that report `stream_id` running, with their ingest URLs.
    pub fn ingest_targets(&self, stream_id: &str) -> Vec<(String, String)> {
        let reports = self.reports();
        let urls = self.ingest_urls.lock().expect("ingest lock");
        reports
            .iter()
            .filter(|(_, r)| {
                r.streams
                    .iter()
                    .any(|s| s.stream_id == stream_id && s.state == ReplicaState::Running)
            })
            .filter_map(|(w, _)| Some((w.clone(), urls.get(w)?.clone())))
            .collect()
    }

    /// What each worker last reported.
    pub fn reports(&self) -> HashMap<String, WorkerReport> {
        let runs = self.runs.lock().expect("runs lock");
        let mut reports: HashMap<String, WorkerReport> = HashMap::new();
        for ((worker, _), run) in runs.by_stream.values().flatten() {
            if run.live {
                reports
                    .entry(worker.clone())
                    .or_insert_with(|| WorkerReport {
                        streams: Vec::new(),
                    })
                    .streams
                    .push(run.report.clone());
            }
        }
        for r in reports.values_mut() {
            r.streams.sort_by(|a, b| a.stream_id.cmp(&b.stream_id));
        }
        reports
    }

    /// Ends a worker's runs here (it left, or its lease expired; the store ended them already).
    pub(super) fn end_runs(&self, worker: &str) {
        self.runs
            .lock()
            .expect("runs lock")
            .end_worker(worker, &[], now_ms());
    }
}
