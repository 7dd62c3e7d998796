//! Workers as users see them: each with the streams it last reported, draining one (with a warning first when
//! that leaves streams with no worker) and resuming a drained one; and the coordinators sharing the store, with
//! the one that leads. The worker protocol itself is in `worker`.

use airtruct_model::ValidationError;
use airtruct_store::{StreamStatus, WorkerState};
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::{Extension, Json};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
            "Move a worker's streams elsewhere and give it no new ones (409 when that would leave streams with no \
             worker, unless force is set)",
            drain_worker,
        )
        .query::<DrainQuery>()
        .returns::<WorkerView>(200),
        route(
            M::POST,
            "/api/v1/workers/{id}/resume",
            Editor,
            "resumeWorker",
            "Undo a drain: the worker takes streams again",
            resume_worker,
        )
        .returns::<WorkerView>(200),
        route(
            M::GET,
            "/api/v1/coordinators",
            User,
            "listCoordinators",
            "List the coordinators sharing this store, and which one leads (places streams)",
            list_coordinators,
        )
        .returns::<Vec<CoordinatorView>>(200),
    ]
}

/// A coordinator sharing the store.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CoordinatorView {
    pub id: String,
    /// Where it serves the API, as it says (its listen address).
    pub address: String,
    pub started_at: i64,
    /// When it last said it is alive (ms since the epoch; about twice a second).
    pub last_seen: i64,
    /// Whether it holds the placement lease: it places streams on workers and expires their leases.
    pub leader: bool,
    /// Whether it is the one that answered this request.
    pub this: bool,
}

/// Coordinators not seen for this long are left out (and forgotten).
const COORDINATOR_GONE_MS: i64 = 30_000;

async fn list_coordinators(
    State(state): State<AppState>,
) -> Result<Json<Vec<CoordinatorView>>, ApiError> {
    let now = airtruct_store::now_ms();
    let leader = state
        .store
        .lease_holder(crate::coordinator::PLACEMENT, now)
        .await?;
    let list = state
        .store
        .list_coordinators(now - COORDINATOR_GONE_MS)
        .await?;
    Ok(Json(
        list.into_iter()
            .map(|c| CoordinatorView {
                leader: leader.as_deref() == Some(c.id.as_str()),
                this: c.id == state.id,
                id: c.id,
                address: c.address,
                started_at: c.started_at,
                last_seen: c.last_seen,
            })
            .collect(),
    ))
}

/// How to drain.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrainQuery {
    /// Drain even when it leaves active streams with no worker to run them (they wait until a worker is resumed
    /// or joins). Without it such a drain is refused with 409, listing those streams.
    #[serde(default)]
    pub force: bool,
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
    query: Result<Query<DrainQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<WorkerView>, ApiError> {
    let Query(q) = query.map_err(|e| {
        ApiError::invalid(
            "the drain's query is not understood (it takes force=true or force=false)",
            vec![ValidationError::new("query", e.body_text())],
        )
    })?;
    let w = state.store.get_worker(&id).await?;
    if w.state == WorkerState::Dead {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("worker \"{id}\" is dead: it has nothing to drain"),
        ));
    }
    if !q.force && w.state == WorkerState::Alive {
        let stopping = would_stop(&state, &id).await?;
        if !stopping.is_empty() {
            let names: Vec<&str> = stopping.iter().map(|(_, n)| n.as_str()).collect();
            return Err(ApiError {
                status: StatusCode::CONFLICT,
                body: super::error::ErrorBody {
                    error: format!(
                        "\"{}\" is the last alive worker: draining it stops {} until a worker is resumed or joins \
                         ({}); drain with force=true to do it anyway",
                        w.name,
                        if names.len() == 1 {
                            "1 stream".to_string()
                        } else {
                            format!("{} streams", names.len())
                        },
                        names.join(", ")
                    ),
                    details: stopping
                        .into_iter()
                        .map(|(sid, name)| {
                            ValidationError::new(
                                format!("streams.{sid}"),
                                format!("\"{name}\" stops"),
                            )
                        })
                        .collect(),
                },
            });
        }
    }
    set_state(&state, &caller, &id, WorkerState::Draining, "worker.drain").await
}

/// Sets a worker's state, audited as `action`; placement follows at once.
async fn set_state(
    state: &AppState,
    caller: &Caller,
    id: &str,
    to: WorkerState,
    action: &str,
) -> Result<Json<WorkerView>, ApiError> {
    let w = state.store.set_worker_state(id, to).await?;
    tracing::info!(worker = %id, state = to.as_str(), "worker state set");
    caller
        .audit(state, action, id, &format!("\"{}\"", w.name))
        .await;
    state.changed();
    Ok(Json(worker_view(w, state)))
}

/// The active streams that run on worker `id` and would have no worker left if it drained: with no other alive
/// worker, every one of them; otherwise none (another alive worker takes each).
async fn would_stop(state: &AppState, id: &str) -> Result<Vec<(String, String)>, ApiError> {
    let workers = state.store.list_workers().await?;
    if workers
        .iter()
        .any(|w| w.id != id && w.state == WorkerState::Alive)
    {
        return Ok(Vec::new());
    }
    let on_it: std::collections::HashSet<String> = state
        .store
        .list_assignments()
        .await?
        .into_iter()
        .filter(|a| a.worker_id == id)
        .map(|a| a.stream_id)
        .collect();
    Ok(state
        .store
        .list_streams()
        .await?
        .into_iter()
        .filter(|s| s.status == StreamStatus::Active && on_it.contains(&s.id))
        .map(|s| (s.id, s.name))
        .collect())
}

async fn resume_worker(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<WorkerView>, ApiError> {
    let w = state.store.get_worker(&id).await?;
    match w.state {
        WorkerState::Dead => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("worker \"{id}\" is dead: it has nothing to resume"),
            ));
        }
        WorkerState::Alive => return Ok(Json(worker_view(w, &state))),
        WorkerState::Draining => {}
    }
    set_state(&state, &caller, &id, WorkerState::Alive, "worker.resume").await
}
