//! Workers as users see them: each with the streams it last reported, and draining one. The worker protocol
//! itself is in `worker`.

use airtruct_store::WorkerState;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::{Extension, Json};
use schemars::JsonSchema;
use serde::Serialize;

use super::{Access, ApiError, AppState, Caller, Route, route};
use crate::protocol::StreamReport;

pub fn routes() -> Vec<Route> {
    use Access::{Editor, User};
    use Method as M;
    vec![
        route(
            M::GET,
            "/api/v1/workers",
            User,
            "listWorkers",
            "List workers and the streams each runs",
            list_workers,
        )
        .returns::<Vec<WorkerView>>(200),
        route(
            M::POST,
            "/api/v1/workers/{id}/drain",
            Editor,
            "drainWorker",
            "Move a worker's streams elsewhere and give it no new ones",
            drain_worker,
        )
        .returns::<WorkerView>(200),
    ]
}

/// A worker and what it runs.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WorkerView {
    pub id: String,
    pub name: String,
    pub state: WorkerStateView,
    pub started_at: i64,
    pub last_heartbeat: i64,
    /// The streams it reported in its last heartbeat.
    pub streams: Vec<StreamReport>,
}

/// `alive`, `draining` or `dead`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkerStateView {
    Alive,
    Draining,
    Dead,
}

impl From<WorkerState> for WorkerStateView {
    fn from(s: WorkerState) -> Self {
        match s {
            WorkerState::Alive => Self::Alive,
            WorkerState::Draining => Self::Draining,
            WorkerState::Dead => Self::Dead,
        }
    }
}

fn worker_view(w: airtruct_store::WorkerRecord, state: &AppState) -> WorkerView {
    let streams = state
        .reports()
        .remove(&w.id)
        .filter(|_| w.state != WorkerState::Dead)
        .map(|r| r.streams)
        .unwrap_or_default();
    WorkerView {
        id: w.id,
        name: w.name,
        state: w.state.into(),
        started_at: w.started_at,
        last_heartbeat: w.last_heartbeat,
        streams,
    }
}

async fn list_workers(State(state): State<AppState>) -> Result<Json<Vec<WorkerView>>, ApiError> {
    let workers = state.store.list_workers().await?;
    Ok(Json(
        workers
            .into_iter()
            .map(|w| worker_view(w, &state))
            .collect(),
    ))
}

async fn drain_worker(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<WorkerView>, ApiError> {
    let w = state.store.get_worker(&id).await?;
    if w.state == WorkerState::Dead {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("worker \"{id}\" is dead: it has nothing to drain"),
        ));
    }
    let w = state
        .store
        .set_worker_state(&id, WorkerState::Draining)
        .await?;
    tracing::info!(worker = %id, "worker draining");
    caller
        .audit(&state, "worker.drain", &id, &format!("\"{}\"", w.name))
        .await;
    state.changed();
    Ok(Json(worker_view(w, &state)))
}
