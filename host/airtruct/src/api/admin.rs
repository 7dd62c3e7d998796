//! Everything but streams: health and metrics, login and API tokens, secrets, workers and the components
//! catalogue.

use airtruct_model::ValidationError;
use airtruct_runtime::registry::{self, KindDoc};
use airtruct_store::{SecretRecord, TokenRecord, WorkerState, now_ms};
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::Body;
use super::{Access, ApiError, AppState, Caller, Route, route};
use crate::protocol::StreamReport;

/// How long a login session lasts.
const SESSION_MS: i64 = 12 * 3600 * 1000;

pub fn routes() -> Vec<Route> {
    use Access::{Public, User};
    use Method as M;
    vec![
        route(
            M::POST,
            "/api/v1/auth/login",
            Public,
            "login",
            "Log in; answers a session token",
            login,
        )
        .body::<LoginRequest>()
        .returns::<TokenCreated>(200),
        route(
            M::POST,
            "/api/v1/auth/logout",
            User,
            "logout",
            "Revoke the token of this request",
            logout,
        )
        .no_content(),
        route(
            M::GET,
            "/api/v1/auth/me",
            User,
            "me",
            "Who the token belongs to",
            me,
        )
        .returns::<Me>(200),
        route(
            M::GET,
            "/api/v1/tokens",
            User,
            "listTokens",
            "List your API tokens",
            list_tokens,
        )
        .returns::<Vec<TokenView>>(200),
        route(
            M::POST,
            "/api/v1/tokens",
            User,
            "createToken",
            "Create an API token (shown once)",
            create_token,
        )
        .body::<CreateToken>()
        .returns::<TokenCreated>(201),
        route(
            M::DELETE,
            "/api/v1/tokens/{id}",
            User,
            "deleteToken",
            "Revoke an API token",
            delete_token,
        )
        .no_content(),
        route(
            M::GET,
            "/api/v1/secrets",
            User,
            "listSecrets",
            "List secret names (never values)",
            list_secrets,
        )
        .returns::<Vec<SecretView>>(200),
        route(
            M::PUT,
            "/api/v1/secrets/{name}",
            User,
            "putSecret",
            "Create or replace a secret",
            put_secret,
        )
        .body::<SecretValue>()
        .returns::<SecretView>(200),
        route(
            M::DELETE,
            "/api/v1/secrets/{name}",
            User,
            "deleteSecret",
            "Delete a secret",
            delete_secret,
        )
        .no_content(),
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
            User,
            "drainWorker",
            "Move a worker's streams elsewhere and give it no new ones",
            drain_worker,
        )
        .returns::<WorkerView>(200),
        route(
            M::GET,
            "/api/v1/components",
            User,
            "components",
            "Every input, output, buffer and processor kind with the JSON Schema of its options",
            components,
        )
        .returns::<Catalogue>(200),
    ]
}

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.store.ping().await {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the store does not answer\n",
        )
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// A new token; it is shown only this once.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TokenCreated {
    /// Send it as `Authorization: Bearer TOKEN`.
    pub token: String,
    /// Its id, for revoking it.
    pub id: String,
    pub name: String,
    /// When it expires (ms since the epoch), if it does.
    pub expires_at: Option<i64>,
}

async fn issue(
    username: &str,
    name: &str,
    expires_at: Option<i64>,
    state: &AppState,
) -> Result<TokenCreated, ApiError> {
    let (token, hash) = airtruct_auth::new_token();
    state
        .store
        .create_token(&TokenRecord {
            token_hash: hash.clone(),
            username: username.into(),
            name: name.into(),
            created_at: now_ms(),
            expires_at,
        })
        .await?;
    Ok(TokenCreated {
        token,
        id: hash,
        name: name.into(),
        expires_at,
    })
}

async fn login(
    State(state): State<AppState>,
    Body(req): Body<LoginRequest>,
) -> Result<Json<TokenCreated>, ApiError> {
    if let Err(wait) = state.logins.attempt(&req.username) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many failed logins for \"{}\": try again in {} s",
                req.username,
                wait.as_secs().max(1)
            ),
        ));
    }
    let user = match state.store.get_user(&req.username).await {
        Ok(u) => Some(u),
        Err(airtruct_store::StoreError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    // An unknown user costs the same check as a known one, so names cannot be probed by timing.
    let hash = user
        .as_ref()
        .map_or(DUMMY_HASH.to_string(), |u| u.password_hash.clone());
    let password = req.password.clone();
    let matches =
        tokio::task::spawn_blocking(move || airtruct_auth::verify_password(&password, &hash))
            .await
            .map_err(ApiError::internal)?;
    let Some(user) = user.filter(|_| matches) else {
        tracing::warn!(username = %req.username, "failed login");
        return Err(ApiError::unauthorized("wrong username or password"));
    };
    state.logins.succeeded(&req.username);
    let created = issue(
        &user.username,
        "session",
        Some(now_ms() + SESSION_MS),
        &state,
    )
    .await?;
    tracing::info!(username = %user.username, "logged in");
    Ok(Json(created))
}

/// An argon2id hash of a random password, for constant-time refusals of unknown users.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$4mK4bYfN0S7vAVb9Gj8wDXcnRUmIP0bxbsN3t0h0J6M";

async fn logout(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .delete_token(&caller.username, &caller.token_hash)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Me {
    pub username: String,
}

async fn me(Extension(caller): Extension<Caller>) -> Json<Me> {
    Json(Me {
        username: caller.username,
    })
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

async fn list_tokens(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    let tokens = state.store.list_tokens(&caller.username).await?;
    Ok(Json(
        tokens
            .into_iter()
            .map(|t| TokenView {
                id: t.token_hash,
                name: t.name,
                created_at: t.created_at,
                expires_at: t.expires_at,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// What the token is for (`ci`, `deploy script`).
    pub name: String,
    /// How long it lasts (`30d`, `12h`); it never expires when unset.
    pub expires_in: Option<airtruct_model::Duration>,
}

async fn create_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(req): Body<CreateToken>,
) -> Result<(StatusCode, Json<TokenCreated>), ApiError> {
    if req.name.trim().is_empty() {
        return Err(ApiError::invalid(
            "the token is not valid",
            vec![ValidationError::new("name", "must not be empty")],
        ));
    }
    let expires_at = req.expires_in.map(|d| now_ms() + d.0.as_millis() as i64);
    let created = issue(&caller.username, req.name.trim(), expires_at, &state).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn delete_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_token(&caller.username, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A secret's name; its value is never returned.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SecretView {
    pub name: String,
    pub updated_at: i64,
    /// How configs reference it.
    pub reference: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretValue {
    pub value: String,
}

fn secret_view(name: String, updated_at: i64) -> SecretView {
    SecretView {
        reference: format!("${{secret:{name}}}"),
        name,
        updated_at,
    }
}

async fn list_secrets(State(state): State<AppState>) -> Result<Json<Vec<SecretView>>, ApiError> {
    let secrets = state.store.list_secrets().await?;
    Ok(Json(
        secrets
            .into_iter()
            .map(|(n, t)| secret_view(n, t))
            .collect(),
    ))
}

fn check_secret_name(name: &str) -> Result<(), ApiError> {
    super::error::check_name(
        "secret",
        name,
        128,
        |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'),
        "letters, digits, '_', '-' or '.'",
    )
}

async fn put_secret(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Body(req): Body<SecretValue>,
) -> Result<(StatusCode, Json<SecretView>), ApiError> {
    check_secret_name(&name)?;
    let (nonce, ciphertext) = state.key.encrypt(&name, &req.value);
    let updated_at = now_ms();
    let existed = state
        .store
        .put_secret(&SecretRecord {
            name: name.clone(),
            nonce,
            ciphertext,
            updated_at,
        })
        .await?;
    tracing::info!(secret = %name, replaced = existed, "secret saved");
    // Streams that use it pick up the new value when they next start.
    state.changed();
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(secret_view(name, updated_at))))
}

async fn delete_secret(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_secret(&name).await?;
    Ok(StatusCode::NO_CONTENT)
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
    state.changed();
    Ok(Json(worker_view(w, &state)))
}

/// Every component kind, by role.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Catalogue {
    pub inputs: Vec<KindDoc>,
    pub buffers: Vec<KindDoc>,
    pub processors: Vec<KindDoc>,
    /// Uploaded processors (latest versions), used as `wasm: { name, config }`.
    pub uploaded: Vec<UploadedKind>,
    pub outputs: Vec<KindDoc>,
}

/// An uploaded processor in the catalogue.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UploadedKind {
    pub name: String,
    pub version: i64,
    pub description: String,
    /// The JSON Schema of its `config`, as it describes it.
    pub config_schema: Value,
}

async fn components(State(state): State<AppState>) -> Result<Json<Catalogue>, ApiError> {
    let engine = state.engine.clone();
    let processors = tokio::task::spawn_blocking(move || registry::processors(&engine))
        .await
        .map_err(ApiError::internal)?;
    let uploaded = super::processors::latest_versions(state.store.list_processors().await?)
        .into_iter()
        .map(|(p, _)| UploadedKind {
            description: if p.description.is_empty() {
                p.described("description").to_string()
            } else {
                p.description.clone()
            },
            config_schema: p.config_schema(),
            name: p.name,
            version: p.version,
        })
        .collect();
    Ok(Json(Catalogue {
        inputs: registry::inputs(),
        buffers: registry::buffers(),
        processors,
        uploaded,
        outputs: registry::outputs(),
    }))
}
