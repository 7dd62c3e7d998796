//! Logging in and out, and API tokens: sessions from a password (throttled per address and user name), tokens for scripts,
//! and who a token belongs to.

use airtruct_model::ValidationError;
use airtruct_store::{TokenRecord, now_ms};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{Method, StatusCode};
use axum::{Extension, Json};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::error::Body;
use super::{Access, ApiError, AppState, Caller, Role, Route, Scope, route};
use crate::coordinator::Throttled;
use crate::listener::Peer;

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
        .returns::<TokenCreated>(200)
        .body_limit(16 << 10),
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
    ]
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schemars(length(min = 1, max = 256))]
    pub username: String,
    #[schemars(length(max = 1024))]
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
    /// The role it acts with (`None`: its owner's, whatever that becomes).
    pub role: Option<Role>,
    /// What it may be used for.
    pub scopes: Vec<Scope>,
}

async fn issue(
    username: &str,
    name: &str,
    expires_at: Option<i64>,
    role: Option<Role>,
    scopes: &[Scope],
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
            role: role.map(|r| r.as_str().to_string()),
            scopes: Scope::join(scopes),
        })
        .await?;
    Ok(TokenCreated {
        token,
        id: hash,
        name: name.into(),
        expires_at,
        role,
        scopes: scopes.to_vec(),
    })
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Body(req): Body<LoginRequest>,
) -> Result<Json<TokenCreated>, ApiError> {
    // Bounded before anything is looked up, logged or hashed.
    if req.username.is_empty()
        || req.username.chars().count() > 256
        || req.password.chars().count() > 1024
    {
        return Err(ApiError::bad_request(
            "a user name is 1 to 256 characters and a password at most 1024",
        ));
    }
    let from = peer.0.ip();
    if let Err(throttled) = state.logins.attempt(&req.username, from) {
        let (whom, wait) = match throttled {
            Throttled::Address(wait) => ("from this address".to_string(), wait),
            Throttled::User(wait) => (format!("for \"{}\"", req.username), wait),
        };
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many failed logins {whom}: try again in {} s",
                wait.as_secs().max(1)
            ),
        ));
    }
    let Some(_turn) = state.logins.hashing_turn().await else {
        state.logins.cancel(&req.username, from);
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many logins at once: try again in a moment",
        ));
    };
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
    let matches = state.logins.verify(password, hash).await;
    let Some(user) = user.filter(|_| matches) else {
        tracing::warn!(username = %req.username, "failed login");
        return Err(ApiError::unauthorized("wrong username or password"));
    };
    if user.disabled {
        return Err(ApiError::unauthorized("this user is disabled"));
    }
    state.logins.succeeded(&req.username, from);
    let created = issue(
        &user.username,
        "session",
        Some(now_ms() + SESSION_MS),
        None,
        &[Scope::Api],
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
    /// The role this token acts with.
    pub role: Role,
}

async fn me(Extension(caller): Extension<Caller>) -> Json<Me> {
    Json(Me {
        username: caller.username,
        role: caller.role,
    })
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    /// The role it acts with (`None`: its owner's).
    pub role: Option<Role>,
    /// What it may be used for.
    pub scopes: Vec<Scope>,
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
                role: t.role.as_deref().and_then(Role::parse),
                scopes: Scope::parse_list(&t.scopes),
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// What the token is for (`ci`, `deploy script`): not only spaces.
    #[schemars(length(min = 1), regex(pattern = "\\S"))]
    pub name: String,
    /// How long it lasts (`30d`, `12h`); it never expires when unset.
    pub expires_in: Option<airtruct_model::Duration>,
    /// The role it acts with, no higher than yours (default: yours, whatever it becomes).
    pub role: Option<Role>,
    /// What it may be used for (default `["api"]`): `api` for the REST API, `mcp` for the `/mcp` endpoint's
    /// tools. Give an agent a token with `mcp` alone.
    #[schemars(length(min = 1))]
    pub scopes: Option<Vec<Scope>>,
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
    if let Some(r) = req.role
        && r > caller.role
    {
        return Err(ApiError::invalid(
            "the token is not valid",
            vec![ValidationError::new(
                "role",
                format!("a token's role is at most yours ({})", caller.role.as_str()),
            )],
        ));
    }
    let mut scopes = req.scopes.unwrap_or_else(|| vec![Scope::Api]);
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(ApiError::invalid(
            "the token is not valid",
            vec![ValidationError::new(
                "scopes",
                "a token needs at least one scope (api, mcp)",
            )],
        ));
    }
    let expires_at = req.expires_in.map(|d| now_ms() + d.0.as_millis() as i64);
    let created = issue(
        &caller.username,
        req.name.trim(),
        expires_at,
        req.role,
        &scopes,
        &state,
    )
    .await?;
    caller
        .audit(
            &state,
            "token.create",
            &created.name,
            &format!("scopes {}", Scope::join(&created.scopes)),
        )
        .await;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn delete_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_token(&caller.username, &id).await?;
    caller.audit(&state, "token.revoke", &id, "").await;
    Ok(StatusCode::NO_CONTENT)
}
