//! What workers report: the last report of each, the stream statuses a report decides (`failed` when a replica
//! failed, `completed` when every replica completed) and the ingest targets it names.

use std::collections::HashMap;

use airtruct_store::{StoreError, StreamRecord, StreamStatus};

use super::Coordinator;
use crate::protocol::{ReplicaState, StreamReport};

/// What a worker last reported.
#[derive(Debug, Clone)]
pub struct WorkerReport {
    pub streams: Vec<StreamReport>,
}

impl Coordinator {
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
        let previous = self.reports.lock().expect("reports lock").insert(
            worker.to_string(),
            WorkerReport {
                streams: streams.clone(),
            },
        );
        if let Some(previous) = previous {
            let ended = previous.streams.into_iter().filter(|p| {
                !streams
                    .iter()
                    .any(|s| s.stream_id == p.stream_id && s.started_at == p.started_at)
            });
            self.settle(ended);
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
        let reports = self.reports.lock().expect("reports lock");
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
        let reports = self.reports.lock().expect("reports lock");
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
        self.reports.lock().expect("reports lock").clone()
    }
}
