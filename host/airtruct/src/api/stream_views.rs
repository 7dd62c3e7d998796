//! What the streams API answers and takes: a stream as the API shows it (with where it runs and its counters),
//! its versions and history, and the bodies of saves, status changes and rollbacks.

use airtruct_model::ValidationError;
use airtruct_runtime::MetricsSnapshot;
use airtruct_store::{StreamRecord, StreamStatus, VersionRecord, WorkerState};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ApiError, AppState};
use crate::protocol::ReplicaState;

/// A status a user can choose; `completed` and `failed` are set by the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    Paused,
}

impl From<UserStatus> for StreamStatus {
    fn from(s: UserStatus) -> Self {
        match s {
            UserStatus::Active => StreamStatus::Active,
            UserStatus::Paused => StreamStatus::Paused,
        }
    }
}

/// `active`, `paused`, `completed` or `failed`.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusView {
    Active,
    Paused,
    Completed,
    Failed,
}

impl From<StreamStatus> for StatusView {
    fn from(s: StreamStatus) -> Self {
        match s {
            StreamStatus::Active => Self::Active,
            StreamStatus::Paused => Self::Paused,
            StreamStatus::Completed => Self::Completed,
            StreamStatus::Failed => Self::Failed,
        }
    }
}

/// A stream to save.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamInput {
    /// 1 to 200 characters, not only spaces.
    #[schemars(length(min = 1, max = 200), regex(pattern = "\\S"))]
    pub name: String,
    /// `active` (the default) runs it and requires a valid config; `paused` saves anything.
    #[serde(default = "active")]
    pub status: UserStatus,
    /// The stream config, as `airtruct run` takes it: an object, or YAML/JSON text.
    #[schemars(schema_with = "config_schema")]
    pub config: Value,
}

/// A config is an object or the text of one.
pub(super) fn config_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": ["object", "string"], "additionalProperties": true})
}

fn active() -> UserStatus {
    UserStatus::Active
}

/// A config to check.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigInput {
    /// The stream config: an object, or YAML/JSON text.
    #[schemars(schema_with = "config_schema")]
    pub config: Value,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    pub status: UserStatus,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The status after the rollback; the current one when unset (`active` if it had completed or failed).
    pub status: Option<UserStatus>,
}

/// One replica of a stream on a worker.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReplicaView {
    pub worker_id: String,
    pub worker_name: String,
    /// What the worker last reported; unset until its first report.
    pub state: Option<ReplicaState>,
    pub version: Option<i64>,
    pub reason: Option<String>,
    pub attempts: u32,
}

/// A stream as the API shows it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StreamView {
    pub id: String,
    pub name: String,
    pub status: StatusView,
    /// Why it failed, when `failed`.
    pub failure_reason: Option<String>,
    pub version: i64,
    pub config: Value,
    /// The input's kind (`kafka`), for lists.
    pub input_kind: Option<String>,
    /// The output's kind.
    pub output_kind: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Counters summed over every run of the stream on every worker (kept in the store: they outlive restarts).
    #[serde(flatten)]
    pub counters: MetricsSnapshot,
    /// Where it runs.
    pub replicas: Vec<ReplicaView>,
    /// Why an active stream runs nowhere (`every worker is draining: ...`); absent when it runs or is not active.
    pub waiting: Option<String>,
}

/// A stream's sampled counters.
#[derive(Debug, Serialize, JsonSchema)]
pub struct HistoryView {
    /// Seconds between samples.
    pub interval_secs: u64,
    /// Cumulative counters, oldest first; rates are the differences between neighbours.
    pub samples: Vec<HistorySample>,
}

/// The counters at one moment.
#[derive(Debug, Serialize, JsonSchema)]
pub struct HistorySample {
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    #[serde(flatten)]
    pub counters: MetricsSnapshot,
}

/// One saved version.
#[derive(Debug, Serialize, JsonSchema)]
pub struct VersionView {
    pub version: i64,
    pub name: String,
    pub status: StatusView,
    pub config: Value,
    pub created_at: i64,
    /// Who saved it (none for versions saved before versions recorded it).
    pub saved_by: Option<String>,
}

impl From<VersionRecord> for VersionView {
    fn from(v: VersionRecord) -> Self {
        Self {
            version: v.version,
            name: v.name,
            status: v.status.into(),
            config: v.config,
            created_at: v.created_at,
            saved_by: v.saved_by,
        }
    }
}

/// The result of a validation.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ValidationReport {
    pub valid: bool,
    pub errors: Vec<ValidationError>,
}

pub(super) fn kind_of(config: &Value, key: &str) -> Option<String> {
    config.get(key)?.as_object()?.keys().next().cloned()
}

/// Where streams run, read once for any number of views.
pub(super) struct Placements {
    workers: Vec<airtruct_store::WorkerRecord>,
    assignments: Vec<airtruct_store::AssignmentRecord>,
    reports: std::collections::HashMap<String, crate::coordinator::WorkerReport>,
}

impl Placements {
    pub(super) async fn read(state: &AppState) -> Result<Self, ApiError> {
        Ok(Self {
            workers: state.store.list_workers().await?,
            assignments: state.store.list_assignments().await?,
            reports: state.reports(),
        })
    }
}

pub(super) async fn view(state: &AppState, s: StreamRecord) -> Result<StreamView, ApiError> {
    Ok(view_with(state, &Placements::read(state).await?, s))
}

pub(super) fn view_with(state: &AppState, at: &Placements, s: StreamRecord) -> StreamView {
    let mut replicas = Vec::new();
    for w in &at.workers {
        let report = at
            .reports
            .get(&w.id)
            .and_then(|r| r.streams.iter().find(|r| r.stream_id == s.id));
        let assigned = at
            .assignments
            .iter()
            .any(|a| a.stream_id == s.id && a.worker_id == w.id);
        if assigned || report.is_some() {
            replicas.push(ReplicaView {
                worker_id: w.id.clone(),
                worker_name: w.name.clone(),
                state: report.map(|r| r.state),
                version: report.map(|r| r.version),
                reason: report.and_then(|r| r.reason.clone()),
                attempts: report.map_or(0, |r| r.attempts),
            });
        }
    }
    let waiting = (s.status == StreamStatus::Active && replicas.is_empty())
        .then(|| waiting_reason(&at.workers));
    StreamView {
        waiting,
        counters: state.stream_metrics(&s.id),
        input_kind: kind_of(&s.config, "input"),
        output_kind: kind_of(&s.config, "output"),
        id: s.id,
        name: s.name,
        status: s.status.into(),
        failure_reason: s.failure_reason,
        version: s.version,
        config: s.config,
        created_at: s.created_at,
        updated_at: s.updated_at,
        replicas,
    }
}

/// Why an active stream has no worker, from the workers there are.
fn waiting_reason(workers: &[airtruct_store::WorkerRecord]) -> String {
    let count = |state| workers.iter().filter(|w| w.state == state).count();
    let (alive, draining) = (count(WorkerState::Alive), count(WorkerState::Draining));
    if workers.is_empty() {
        "no worker has registered yet".into()
    } else if alive == 0 && draining > 0 {
        let names: Vec<&str> = workers
            .iter()
            .filter(|w| w.state == WorkerState::Draining)
            .map(|w| w.name.as_str())
            .collect();
        format!(
            "every worker is draining ({}): resume one on the Workers page or with POST /api/v1/workers/{{id}}/resume",
            names.join(", ")
        )
    } else if alive == 0 {
        "no worker is alive: start one, or wait for one to come back".into()
    } else {
        "waiting for a worker to take it (placement runs about every second)".into()
    }
}
