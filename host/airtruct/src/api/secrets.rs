//! Secrets: stored encrypted, listed by name only, referenced from configs as `${secret:NAME}`.

use airtruct_store::{SecretRecord, now_ms};
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::{Extension, Json};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::error::Body;
use super::{Access, ApiError, AppState, Caller, Route, route};

pub fn routes() -> Vec<Route> {
    use Access::{Editor, User};
    use Method as M;
    vec![
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
            Editor,
            "putSecret",
            "Create (201) or replace (200) a secret",
            put_secret,
        )
        .body::<SecretValue>()
        .returns::<SecretView>(200)
        .or_status(201),
        route(
            M::DELETE,
            "/api/v1/secrets/{name}",
            Editor,
            "deleteSecret",
            "Delete a secret",
            delete_secret,
        )
        .no_content(),
    ]
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
    super::error::SECRET_NAME.check(name)
}

async fn put_secret(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
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
    caller
        .audit(
            &state,
            "secret.set",
            &name,
            if existed { "replaced" } else { "created" },
        )
        .await;
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
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_secret(&name).await?;
    caller.audit(&state, "secret.delete", &name, "").await;
    Ok(StatusCode::NO_CONTENT)
}
