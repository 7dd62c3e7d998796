//! The worker protocol over HTTP: a worker registers with the join token (the worker token) and gets a
//! credential of its own, which every later call carries and which is checked against the worker it names.

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{Method, StatusCode};
use axum::{Extension, Json};

use super::error::Body;
use super::{Access, ApiError, AppState, Route, route};
use crate::coordinator::ProtocolError;
use crate::protocol::{
    CheckpointBody, HeartbeatRequest, HeartbeatResponse, LeaveRequest, RegisterRequest,
    RegisterResponse,
};

pub fn routes() -> Vec<Route> {
    use Access::{Join, Worker};
    use Method as M;
    vec![
        route(
            M::POST,
            "/api/v1/worker/register",
            Join,
            "registerWorker",
            "A worker joins (worker protocol)",
            register,
        )
        .body::<RegisterRequest>()
        .returns::<RegisterResponse>(200)
        .body_limit(4 << 10),
        route(
            M::POST,
            "/api/v1/worker/heartbeat",
            Worker,
            "heartbeat",
            "A worker reports its streams and gets its assignments (worker protocol)",
            heartbeat,
        )
        .body::<HeartbeatRequest>()
        .returns::<HeartbeatResponse>(200)
        .body_limit(16 << 20),
        route(
            M::POST,
            "/api/v1/worker/leave",
            Worker,
            "leaveWorker",
            "A worker shuts down and gives up its streams (worker protocol)",
            leave,
        )
        .body::<LeaveRequest>()
        .no_content(),
        route(
            M::GET,
            "/api/v1/worker/streams/{id}/checkpoints/{key}",
            Worker,
            "getCheckpoint",
            "An input's checkpoint (worker protocol)",
            get_checkpoint,
        )
        .returns::<CheckpointBody>(200),
        route(
            M::PUT,
            "/api/v1/worker/streams/{id}/checkpoints/{key}",
            Worker,
            "saveCheckpoint",
            "Saves an input's checkpoint; 409 when the stream is not assigned to the calling worker (worker \
             protocol)",
            save_checkpoint,
        )
        .body::<CheckpointBody>()
        .body_limit(64 << 10)
        .no_content(),
    ]
}

async fn get_checkpoint(
    State(state): State<AppState>,
    Path((id, key)): Path<(String, String)>,
) -> Result<Json<CheckpointBody>, ApiError> {
    let value = match state.store.checkpoint(&id, &key).await? {
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| ApiError::internal(format!("checkpoint {key} is not JSON: {e}")))?,
        None => serde_json::Value::Null,
    };
    Ok(Json(CheckpointBody { value }))
}

async fn save_checkpoint(
    State(state): State<AppState>,
    Extension(caller): Extension<WorkerCaller>,
    Path((id, key)): Path<(String, String)>,
    Body(body): Body<CheckpointBody>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .save_checkpoint(&id, &caller.0, &key, &body.value.to_string())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

impl From<ProtocolError> for ApiError {
    fn from(e: ProtocolError) -> Self {
        match e {
            ProtocolError::UnknownWorker(_) => ApiError::new(StatusCode::GONE, e.to_string()),
            ProtocolError::NotYours(..) => ApiError::new(StatusCode::FORBIDDEN, e.to_string()),
            ProtocolError::BadIngestUrl(_) => ApiError::bad_request(e.to_string()),
            ProtocolError::Store(e) => e.into(),
        }
    }
}

/// The worker a call's credential belongs to.
#[derive(Debug, Clone)]
pub struct WorkerCaller(pub String);

impl WorkerCaller {
    /// A worker acts only for itself.
    fn check(&self, worker_id: &str) -> Result<(), ProtocolError> {
        if self.0 == worker_id {
            Ok(())
        } else {
            Err(ProtocolError::NotYours(self.0.clone(), worker_id.into()))
        }
    }
}

async fn register(
    State(state): State<AppState>,
    Body(req): Body<RegisterRequest>,
) -> Result<Json<RegisterResponse>, ApiError> {
    if req.name.is_empty()
        || req.name.chars().count() > 253
        || req.name.chars().any(char::is_control)
    {
        return Err(ApiError::bad_request(
            "a worker name is 1 to 253 characters, none of them control characters",
        ));
    }
    Ok(Json(state.register(&req.name).await?))
}

async fn heartbeat(
    State(state): State<AppState>,
    Extension(caller): Extension<WorkerCaller>,
    ConnectInfo(peer): ConnectInfo<crate::listener::Peer>,
    Body(req): Body<HeartbeatRequest>,
) -> Result<Json<HeartbeatResponse>, ApiError> {
    caller.check(&req.worker_id)?;
    Ok(Json(state.heartbeat(req, Some(peer.0.ip())).await?))
}

async fn leave(
    State(state): State<AppState>,
    Extension(caller): Extension<WorkerCaller>,
    Body(req): Body<LeaveRequest>,
) -> Result<StatusCode, ApiError> {
    caller.check(&req.worker_id)?;
    state.leave(&req.worker_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
