//! Streams: create, read, update, delete, status changes, versions and rollback, and validation (the test endpoint
//! is in `sample`).

use airtruct_model::ValidationError;
use airtruct_store::{StreamRecord, StreamStatus};
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::{Extension, Json};
use serde_json::Value;

use super::checks::{check, config_value, join, pin_versions};
use super::error::Body;
use super::stream_views::*;
use super::{Access, ApiError, AppState, Caller, Route, route, sample, version_number};

/// A stream config in a request: generous for configs, small against floods.
const CONFIG_BODY_LIMIT: usize = 4 << 20;
/// A test request: a config and up to 100 sample messages.
const TEST_BODY_LIMIT: usize = 16 << 20;

pub fn routes() -> Vec<Route> {
    use Access::{Editor, User};
    use Method as M;
    vec![
        route(
            M::GET,
            "/api/v1/streams",
            User,
            "listStreams",
            "List streams with status and counters",
            list,
        )
        .returns::<Vec<StreamView>>(200),
        route(
            M::POST,
            "/api/v1/streams",
            Editor,
            "createStream",
            "Create a stream (version 1)",
            create,
        )
        .body::<StreamInput>()
        .returns::<StreamView>(201)
        .body_limit(CONFIG_BODY_LIMIT),
        route(
            M::POST,
            "/api/v1/streams/validate",
            User,
            "validateStream",
            "Check a stream config: every problem with its path",
            validate,
        )
        .body::<ConfigInput>()
        .returns::<ValidationReport>(200)
        .body_limit(CONFIG_BODY_LIMIT),
        route(
            M::POST,
            "/api/v1/streams/test",
            Editor,
            "testStream",
            "Run a config's processors on sample messages and show the output of each step",
            sample::test,
        )
        .body::<sample::TestRequest>()
        .returns::<sample::TestResponse>(200)
        .body_limit(TEST_BODY_LIMIT),
        route(
            M::POST,
            "/api/v1/streams/tests",
            Editor,
            "runStreamTests",
            "Run a config's tests: cases through its processors and say which passed",
            sample::cases,
        )
        .body::<sample::CasesRequest>()
        .returns::<sample::CasesResponse>(200)
        .body_limit(TEST_BODY_LIMIT),
        route(
            M::GET,
            "/api/v1/streams/{id}",
            User,
            "getStream",
            "A stream with status, counters and where it runs",
            get,
        )
        .returns::<StreamView>(200),
        route(
            M::PUT,
            "/api/v1/streams/{id}",
            Editor,
            "updateStream",
            "Save a new version of a stream",
            update,
        )
        .body::<StreamInput>()
        .returns::<StreamView>(200)
        .body_limit(CONFIG_BODY_LIMIT),
        route(
            M::DELETE,
            "/api/v1/streams/{id}",
            Editor,
            "deleteStream",
            "Delete a stream and its versions",
            delete,
        )
        .no_content(),
        route(
            M::POST,
            "/api/v1/streams/{id}/status",
            Editor,
            "setStreamStatus",
            "Pause or resume a stream",
            set_status,
        )
        .body::<StatusChange>()
        .returns::<StreamView>(200),
        route(
            M::GET,
            "/api/v1/streams/{id}/metrics/history",
            User,
            "getStreamHistory",
            "A stream's counters sampled every 5 seconds over the last 15 minutes, oldest first",
            history,
        )
        .returns::<HistoryView>(200),
        route(
            M::GET,
            "/api/v1/streams/{id}/versions",
            User,
            "listStreamVersions",
            "A stream's versions, newest first",
            versions,
        )
        .returns::<Vec<VersionView>>(200),
        route(
            M::GET,
            "/api/v1/streams/{id}/versions/{version}",
            User,
            "getStreamVersion",
            "One version of a stream",
            version,
        )
        .returns::<VersionView>(200),
        route(
            M::POST,
            "/api/v1/streams/{id}/versions/{version}/rollback",
            Editor,
            "rollbackStream",
            "Save an old version's config as a new version",
            rollback,
        )
        .body::<RollbackRequest>()
        .returns::<StreamView>(200),
    ]
}

/// Checks a save: the name, and the config when the stream is to be active. Answers the config as a value.
async fn check_save(
    state: &AppState,
    input: StreamInput,
    id: Option<&str>,
) -> Result<(String, StreamStatus, Value), ApiError> {
    let mut errors = Vec::new();
    let name = input.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 {
        errors.push(ValidationError::new("name", "must be 1 to 200 characters"));
    }
    let config = match config_value(input.config) {
        Ok(mut c) => {
            // Unknown names are reported by `check` for an active save; a paused one keeps them as they are.
            let _unknown = pin_versions(state, &mut c).await;
            Some(c)
        }
        Err(e) => {
            errors.extend(e);
            None
        }
    };
    if let (Some(c), UserStatus::Active) = (&config, input.status)
        && let Err(e) = check(state, c).await
    {
        errors.extend(
            e.into_iter()
                .map(|e| ValidationError::new(join("config", &e.path), e.message)),
        );
    }
    if let Some(c) = &config
        && let Some(taken) = super::mcp::name_taken(state, c, id).await?
    {
        errors.push(taken);
    }
    match config {
        Some(c) if errors.is_empty() => Ok((name, input.status.into(), c)),
        _ => Err(ApiError::invalid(
            format!(
                "the stream is not valid: {} problem(s); save it as paused to keep it anyway",
                errors.len()
            ),
            errors,
        )),
    }
}

async fn list(State(state): State<AppState>) -> Result<Json<Vec<StreamView>>, ApiError> {
    let at = Placements::read(&state).await?;
    let streams = state.store.list_streams().await?;
    Ok(Json(
        streams
            .into_iter()
            .map(|s| view_with(&state, &at, s))
            .collect(),
    ))
}

async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(input): Body<StreamInput>,
) -> Result<(StatusCode, Json<StreamView>), ApiError> {
    let (name, status, config) = check_save(&state, input, None).await?;
    let s = state
        .store
        .create_stream(&name, status, &config, &caller.username)
        .await?;
    audit_save(&state, &caller, "stream.create", &s).await;
    tracing::info!(stream = %s.id, name = %s.name, status = s.status.as_str(), "stream created");
    state.changed();
    Ok((StatusCode::CREATED, Json(view(&state, s).await?)))
}

/// Records a saved version in the audit trail: its name, version and status.
async fn audit_save(state: &AppState, caller: &Caller, action: &str, s: &StreamRecord) {
    caller
        .audit(
            state,
            action,
            &s.id,
            &format!("\"{}\" v{}, {}", s.name, s.version, s.status.as_str()),
        )
        .await;
}

async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<StreamView>, ApiError> {
    let s = state.store.get_stream(&id).await?;
    Ok(Json(view(&state, s).await?))
}

async fn history(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<HistoryView>, ApiError> {
    state.store.get_stream(&id).await?;
    let samples = state
        .history(&id)
        .await?
        .into_iter()
        .map(|(at, counters)| HistorySample { at, counters })
        .collect();
    Ok(Json(HistoryView {
        interval_secs: crate::coordinator::HISTORY_EVERY.as_secs(),
        samples,
    }))
}

async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Body(input): Body<StreamInput>,
) -> Result<Json<StreamView>, ApiError> {
    state.store.get_stream(&id).await?;
    let (name, status, config) = check_save(&state, input, Some(&id)).await?;
    // Read after the checks (which may wait on uploads), so the comparison is with what is saved now.
    let current = state.store.get_stream(&id).await?;
    if current.name == name && current.status == status && current.config == config {
        // A save that changes nothing makes no version (`airtruct streams apply` of the same file twice).
        return Ok(Json(view(&state, current).await?));
    }
    let s = state
        .store
        .update_stream(&id, &name, status, &config, &caller.username)
        .await?;
    audit_save(&state, &caller, "stream.update", &s).await;
    tracing::info!(stream = %s.id, version = s.version, status = s.status.as_str(), "stream saved");
    state.changed();
    Ok(Json(view(&state, s).await?))
}

async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let s = state.store.get_stream(&id).await?;
    state.store.delete_stream(&id).await?;
    caller
        .audit(&state, "stream.delete", &id, &format!("\"{}\"", s.name))
        .await;
    state.forget(&id);
    tracing::info!(stream = %id, "stream deleted");
    state.changed();
    Ok(StatusCode::NO_CONTENT)
}

async fn activate_check(state: &AppState, config: &Value) -> Result<(), ApiError> {
    check(state, config).await.map_err(|errors| {
        ApiError::invalid(
            format!(
                "the stream cannot be activated: {} problem(s) in its config",
                errors.len()
            ),
            errors
                .into_iter()
                .map(|e| ValidationError::new(join("config", &e.path), e.message))
                .collect(),
        )
    })
}

async fn set_status(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Body(change): Body<StatusChange>,
) -> Result<Json<StreamView>, ApiError> {
    let s = state.store.get_stream(&id).await?;
    if change.status == UserStatus::Active {
        activate_check(&state, &s.config).await?;
        // A fresh assignment, so a worker still holding the finished run starts it again.
        let stale: Vec<(String, String)> = state
            .store
            .list_assignments()
            .await?
            .into_iter()
            .filter(|a| a.stream_id == id)
            .map(|a| (a.stream_id, a.worker_id))
            .collect();
        state.store.apply_assignments(&stale, &[]).await?;
    }
    let s = state
        .store
        .set_status(&id, change.status.into(), None)
        .await?;
    tracing::info!(stream = %id, status = s.status.as_str(), "stream status changed");
    let action = if change.status == UserStatus::Active {
        "stream.resume"
    } else {
        "stream.pause"
    };
    caller
        .audit(&state, action, &id, &format!("\"{}\"", s.name))
        .await;
    state.changed();
    Ok(Json(view(&state, s).await?))
}

async fn versions(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<VersionView>>, ApiError> {
    let versions = state.store.list_versions(&id).await?;
    Ok(Json(versions.into_iter().map(Into::into).collect()))
}

async fn version(
    State(state): State<AppState>,
    Path((id, v)): Path<(String, String)>,
) -> Result<Json<VersionView>, ApiError> {
    let v = state.store.get_version(&id, version_number(&v)?).await?;
    Ok(Json(v.into()))
}

async fn rollback(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, v)): Path<(String, String)>,
    Body(req): Body<RollbackRequest>,
) -> Result<Json<StreamView>, ApiError> {
    let v = version_number(&v)?;
    let current = state.store.get_stream(&id).await?;
    let old = state.store.get_version(&id, v).await?;
    let status = match (req.status, current.status) {
        (Some(s), _) => s.into(),
        (None, StreamStatus::Paused) => StreamStatus::Paused,
        (None, _) => StreamStatus::Active,
    };
    if status == StreamStatus::Active {
        activate_check(&state, &old.config).await?;
    }
    let s = state
        .store
        .rollback(&id, v, status, &caller.username)
        .await?;
    caller
        .audit(
            &state,
            "stream.rollback",
            &id,
            &format!("to v{v} as v{}", s.version),
        )
        .await;
    tracing::info!(stream = %id, from = v, version = s.version, "stream rolled back");
    state.changed();
    Ok(Json(view(&state, s).await?))
}

async fn validate(
    State(state): State<AppState>,
    Body(input): Body<ConfigInput>,
) -> Result<Json<ValidationReport>, ApiError> {
    // A config that is not an object or its text is a malformed request, not an invalid stream.
    if !(input.config.is_object() || input.config.is_string()) {
        return Err(ApiError::invalid(
            "the request body is not valid",
            config_value(input.config).err().unwrap_or_default(),
        ));
    }
    let result = match config_value(input.config) {
        Ok(c) => check(&state, &c).await,
        Err(e) => Err(e),
    };
    let errors = result.err().unwrap_or_default();
    Ok(Json(ValidationReport {
        valid: errors.is_empty(),
        errors,
    }))
}
