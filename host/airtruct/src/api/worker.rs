//! The worker protocol over HTTP: register and heartbeat, with the worker token.

use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode};

use super::error::Body;
use super::{Access, ApiError, AppState, Route, route};
use crate::coordinator::ProtocolError;
use crate::protocol::{
    HeartbeatRequest, HeartbeatResponse, LeaveRequest, RegisterRequest, RegisterResponse,
};

pub fn routes() -> Vec<Route> {
    use Access::Worker;
    use Method as M;
    vec![
        route(
            M::POST,
            "/api/v1/worker/register",
            Worker,
            "registerWorker",
            "A worker joins (worker protocol)",
            register,
        )
        .body::<RegisterRequest>()
        .returns::<RegisterResponse>(200),
        route(
            M::POST,
            "/api/v1/worker/heartbeat",
            Worker,
            "heartbeat",
            "A worker reports its streams and gets its assignments (worker protocol)",
            heartbeat,
        )
        .body::<HeartbeatRequest>()
        .returns::<HeartbeatResponse>(200),
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
    ]
}

impl From<ProtocolError> for ApiError {
    fn from(e: ProtocolError) -> Self {
        match e {
            ProtocolError::UnknownWorker(_) => ApiError::new(StatusCode::GONE, e.to_string()),
            ProtocolError::Store(e) => e.into(),
        }
    }
}

async fn register(
    State(state): State<AppState>,
    Body(req): Body<RegisterRequest>,
) -> Result<Json<RegisterResponse>, ApiError> {
    Ok(Json(state.register(&req.name).await?))
}

async fn heartbeat(
    State(state): State<AppState>,
    Body(req): Body<HeartbeatRequest>,
) -> Result<Json<HeartbeatResponse>, ApiError> {
    Ok(Json(state.heartbeat(req).await?))
}

async fn leave(
    State(state): State<AppState>,
    Body(req): Body<LeaveRequest>,
) -> Result<StatusCode, ApiError> {
    state.leave(&req.worker_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
