//! Users and their roles (admins manage them; anyone changes their own password), and the audit trail: who
//! created, changed, paused, resumed, deleted or uploaded what, and when.

use airtruct_store::{AuditRecord, UserRecord};
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::{Extension, Json};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::error::{Body, USER_NAME};
use super::{Access, ApiError, AppState, Caller, Role, Route, route};

/// Longest user name taken.
/// Shortest and longest password taken.
const MIN_PASSWORD: usize = 8;
const MAX_PASSWORD: usize = 1024;

pub fn routes() -> Vec<Route> {
    use Access::{Admin, User};
    use Method as M;
    vec![
        route(
            M::GET,
            "/api/v1/users",
            Admin,
            "listUsers",
            "Every user with their role",
            list,
        )
        .returns::<Vec<UserView>>(200),
        route(
            M::POST,
            "/api/v1/users",
            Admin,
            "createUser",
            "Create a user with a role",
            create,
        )
        .body::<CreateUser>()
        .returns::<UserView>(201),
        route(
            M::PATCH,
            "/api/v1/users/{username}",
            Admin,
            "updateUser",
            "Change a user's role, disable or enable them, or reset their password",
            update,
        )
        .body::<UpdateUser>()
        .returns::<UserView>(200),
        route(
            M::PUT,
            "/api/v1/auth/password",
            User,
            "changePassword",
            "Change your own password",
            change_password,
        )
        .body::<ChangePassword>()
        .no_content(),
        route(
            M::GET,
            "/api/v1/audit",
            User,
            "listAudit",
            "Who changed what and when, newest first",
            audit,
        )
        .returns::<Vec<AuditView>>(200),
    ]
}

/// A user, without their password.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UserView {
    pub username: String,
    pub role: Role,
    /// A disabled user cannot log in, and their tokens stop working.
    pub disabled: bool,
    pub created_at: i64,
}

impl From<UserRecord> for UserView {
    fn from(u: UserRecord) -> Self {
        Self {
            role: Role::parse(&u.role).unwrap_or(Role::Viewer),
            username: u.username,
            disabled: u.disabled,
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Letters, digits, `.`, `_`, `-` and `@`, at most 64.
    #[schemars(length(min = 1, max = 64), regex(pattern = "^[A-Za-z0-9._@-]{1,64}$"))]
    pub username: String,
    /// 8 to 1024 characters.
    #[schemars(length(min = 8, max = 1024))]
    pub password: String,
    pub role: Role,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    /// A new password (8 to 1024 characters).
    #[schemars(length(min = 8, max = 1024))]
    pub password: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current: String,
    /// 8 to 1024 characters.
    #[schemars(length(min = 8, max = 1024))]
    pub new: String,
}

/// One change in the audit trail.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AuditView {
    /// Milliseconds since the epoch.
    pub at: i64,
    pub username: String,
    /// `stream.create`, `stream.update`, `stream.pause`, `stream.resume`, `stream.delete`, `stream.rollback`,
    /// `processor.upload`, `processor.delete`, `secret.set`, `secret.delete`, `user.create`, `user.update`,
    /// `token.create`, `token.revoke`, `worker.drain`.
    pub action: String,
    /// What it was done to.
    pub target: String,
    pub detail: String,
}

impl From<AuditRecord> for AuditView {
    fn from(a: AuditRecord) -> Self {
        Self {
            at: a.at,
            username: a.username,
            action: a.action,
            target: a.target,
            detail: a.detail,
        }
    }
}

fn check_user_name(name: &str) -> Result<(), ApiError> {
    USER_NAME.check(name)
}

fn check_password(password: &str) -> Result<(), ApiError> {
    if (MIN_PASSWORD..=MAX_PASSWORD).contains(&password.chars().count()) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters"
        )))
    }
}

async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || airtruct_auth::hash_password(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

async fn list(State(state): State<AppState>) -> Result<Json<Vec<UserView>>, ApiError> {
    let users = state.store.list_users().await?;
    Ok(Json(users.into_iter().map(UserView::from).collect()))
}

async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(req): Body<CreateUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    check_user_name(&req.username)?;
    check_password(&req.password)?;
    let hashed = hash(req.password).await?;
    state
        .store
        .create_user(&req.username, &hashed, req.role.as_str())
        .await?;
    caller
        .audit(&state, "user.create", &req.username, req.role.as_str())
        .await;
    let user = state.store.get_user(&req.username).await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(username): Path<String>,
    Body(req): Body<UpdateUser>,
) -> Result<Json<UserView>, ApiError> {
    if username == caller.username
        && (req.disabled == Some(true) || req.role.is_some_and(|r| r < Role::Admin))
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "you cannot disable yourself or lower your own role: another admin can",
        ));
    }
    let hashed = match req.password {
        Some(p) => {
            check_password(&p)?;
            Some(hash(p).await?)
        }
        None => None,
    };
    let user = state
        .store
        .update_user(
            &username,
            req.role.map(Role::as_str),
            req.disabled,
            hashed.as_deref(),
        )
        .await?;
    let mut changed = Vec::new();
    if let Some(r) = req.role {
        changed.push(format!("role {}", r.as_str()));
    }
    if let Some(d) = req.disabled {
        changed.push(if d { "disabled" } else { "enabled" }.to_string());
    }
    if hashed.is_some() {
        changed.push("password reset".to_string());
    }
    caller
        .audit(&state, "user.update", &username, &changed.join(", "))
        .await;
    Ok(Json(user.into()))
}

async fn change_password(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Body(req): Body<ChangePassword>,
) -> Result<StatusCode, ApiError> {
    check_password(&req.new)?;
    let user = state.store.get_user(&caller.username).await?;
    let current = req.current;
    let stored = user.password_hash.clone();
    let ok = tokio::task::spawn_blocking(move || airtruct_auth::verify_password(&current, &stored))
        .await
        .map_err(ApiError::internal)?;
    if !ok {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "the current password is wrong",
        ));
    }
    let hashed = hash(req.new).await?;
    state
        .store
        .update_user(&caller.username, None, None, Some(&hashed))
        .await?;
    caller
        .audit(&state, "user.update", &caller.username, "password changed")
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AuditQuery {
    /// How many entries (default 200, at most 1000).
    pub limit: Option<i64>,
}

async fn audit(
    State(state): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    let limit = q.limit.unwrap_or(200).clamp(1, 1000);
    let entries = state.store.list_audit(limit).await?;
    Ok(Json(entries.into_iter().map(AuditView::from).collect()))
}
