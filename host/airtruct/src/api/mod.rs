//! The HTTP server: the REST API under `/api/v1`, the worker protocol, health and metrics. Every route is listed
//! once, in [`routes`], with who may call it and the types it takes and returns; the router and the OpenAPI
//! document (`/api/v1/openapi.json`) are both built from that list, so they cannot drift apart.

mod admin;
mod auth;
mod catalogue;
mod checks;
pub(crate) mod error;
mod files;
pub mod ingest;
pub mod journeys;
pub mod mcp;
mod metrics;
mod multipart;
pub mod openapi;
mod processors;
mod sample;
mod secrets;
mod stream_views;
mod streams;
pub mod tap;
mod users;
mod worker;
mod workers;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

use crate::coordinator::Coordinator;
pub use error::{ApiError, ErrorBody};

/// What every handler shares.
pub type AppState = Arc<Coordinator>;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: health, metrics, login.
    Public,
    /// A logged-in user or an API token, of any role (reads).
    User,
    /// An editor or an admin: streams, processors, secrets, workers.
    Editor,
    /// An admin: users.
    Admin,
    /// A worker joining, with the worker (join) token.
    Join,
    /// A registered worker, with its own credential.
    Worker,
}

impl Access {
    /// The least role a route of this access needs (`None`: no user at all).
    fn role(self) -> Option<Role> {
        match self {
            Access::User => Some(Role::Viewer),
            Access::Editor => Some(Role::Editor),
            Access::Admin => Some(Role::Admin),
            Access::Public | Access::Join | Access::Worker => None,
        }
    }
}

/// What a user may do: a viewer reads, an editor changes streams, processors, secrets and workers, an admin
/// also manages users. Ordered: each role may do what the ones before it may.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "UserRole")]
pub enum Role {
    Viewer,
    Editor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// What an API token may be used for. A token made for an agent (`mcp` alone) cannot drive the REST API.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "TokenScope")]
pub enum Scope {
    /// The REST API (and so the console).
    Api,
    /// The `/mcp` endpoint: listing and calling the tools streams expose.
    Mcp,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Api => "api",
            Scope::Mcp => "mcp",
        }
    }

    /// The scopes of a stored token (`api,mcp`); unknown names are ignored.
    pub fn parse_list(s: &str) -> Vec<Scope> {
        s.split(',')
            .filter_map(|p| match p.trim() {
                "api" => Some(Scope::Api),
                "mcp" => Some(Scope::Mcp),
                _ => None,
            })
            .collect()
    }

    /// How a token's scopes are stored.
    pub fn join(scopes: &[Scope]) -> String {
        scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The user and role behind a bearer token that carries `scope`: `Err` is the refusal to answer.
pub async fn caller_of(
    state: &AppState,
    token: Option<&str>,
    scope: Scope,
) -> Result<Caller, ApiError> {
    let Some(token) = token else {
        return Err(ApiError::unauthorized(
            "log in or send an API token as \"Authorization: Bearer TOKEN\"",
        ));
    };
    let hash = airtruct_auth::token_hash(token);
    let Some(t) = state.store.find_token(&hash).await? else {
        return Err(ApiError::unauthorized(
            "the token is unknown or expired: log in again",
        ));
    };
    let user = state.store.get_user(&t.username).await?;
    if user.disabled {
        return Err(ApiError::unauthorized("this user is disabled"));
    }
    let scopes = Scope::parse_list(&t.scopes);
    if !scopes.contains(&scope) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "this token is not for the {}: its scopes are {}; make one with the {} scope",
                match scope {
                    Scope::Api => "REST API",
                    Scope::Mcp => "/mcp endpoint",
                },
                if scopes.is_empty() {
                    "none".to_string()
                } else {
                    Scope::join(&scopes)
                },
                scope.as_str()
            ),
        ));
    }
    let user_role = Role::parse(&user.role).unwrap_or(Role::Viewer);
    let role = t
        .role
        .as_deref()
        .and_then(Role::parse)
        .map_or(user_role, |r| r.min(user_role));
    Ok(Caller {
        username: t.username,
        token_hash: hash,
        role,
    })
}

/// The caller of a `User`, `Editor` or `Admin` route.
#[derive(Debug, Clone)]
pub struct Caller {
    pub username: String,
    pub token_hash: String,
    /// The role the request acts with: its token's, at most its user's.
    pub role: Role,
}

impl Caller {
    /// Records a change this caller made in the audit trail; a failure to record is logged, not returned (the
    /// change itself was made).
    pub async fn audit(&self, state: &AppState, action: &str, target: &str, detail: &str) {
        if let Err(e) = state
            .store
            .audit(&self.username, action, target, detail)
            .await
        {
            tracing::error!(error = %e, action, target, "recording an audit entry failed");
        }
    }
}

type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// `T`'s own schema, never a `$ref` to it: a query string's fields are read from its properties.
fn inline_schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    T::json_schema(g)
}

/// One route: how it is served and how it is documented.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub operation_id: &'static str,
    pub summary: &'static str,
    request: Option<SchemaFn>,
    /// The query string's fields, each documented as a query parameter.
    query: Option<SchemaFn>,
    response: Option<SchemaFn>,
    status: u16,
    /// A second success status with the same body (`201` when a `PUT` created what it names).
    also_status: Option<u16>,
    text: bool,
    binary: bool,
    binary_body: bool,
    /// A request body of raw bytes of any type (a file).
    octet_body: bool,
    /// The media type of a binary answer.
    media: &'static str,
    /// The largest request body taken, in bytes; more is refused with 413 before it is all read.
    body_limit: usize,
    handler: MethodRouter<AppState>,
}

/// The body limit of a route without one of its own.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

/// The body limit of the route a request is for, for the message of a refusal.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

fn route<H, T>(
    method: Method,
    path: &'static str,
    access: Access,
    operation_id: &'static str,
    summary: &'static str,
    handler: H,
) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).expect("a standard method");
    Route {
        method,
        path,
        access,
        operation_id,
        summary,
        request: None,
        query: None,
        response: None,
        status: 200,
        also_status: None,
        text: false,
        binary: false,
        binary_body: false,
        octet_body: false,
        media: "application/wasm",
        body_limit: DEFAULT_BODY_LIMIT,
        handler: on(filter, handler),
    }
}

impl Route {
    fn body<T: JsonSchema>(mut self) -> Self {
        self.request = Some(schema::<T>);
        self
    }

    /// Takes a query string of `T`'s fields (its handler answers a bad one in the error envelope).
    fn query<T: JsonSchema>(mut self) -> Self {
        self.query = Some(inline_schema::<T>);
        self
    }

    fn returns<T: JsonSchema>(mut self, status: u16) -> Self {
        self.response = Some(schema::<T>);
        self.status = status;
        self
    }

    /// Also answers `status` with the same body.
    fn or_status(mut self, status: u16) -> Self {
        self.also_status = Some(status);
        self
    }

    fn no_content(mut self) -> Self {
        self.status = 204;
        self
    }

    /// Takes request bodies up to `bytes`.
    fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    fn text(mut self) -> Self {
        self.text = true;
        self
    }

    fn binary(mut self) -> Self {
        self.binary = true;
        self
    }
}

/// Every route of the server.
pub fn routes() -> Vec<Route> {
    use Access::{Public, User};
    use Method as M;
    let mut all = vec![
        route(
            M::GET,
            "/healthz",
            Public,
            "health",
            "Whether the process is up",
            admin::healthz,
        )
        .text(),
        route(
            M::GET,
            "/readyz",
            Public,
            "readiness",
            "Whether the store answers",
            admin::readyz,
        )
        .text(),
        route(
            M::GET,
            "/metrics",
            Public,
            "metrics",
            "Prometheus metrics",
            metrics::serve,
        )
        .text(),
        route(
            M::GET,
            "/api/v1/openapi.json",
            User,
            "openapi",
            "This API's OpenAPI document",
            openapi::serve,
        ),
    ];
    all.extend(admin::routes());
    all.extend(streams::routes());
    all.extend(users::routes());
    all.extend(files::routes());
    all.extend(processors::routes());
    all.extend(worker::routes());
    all.extend(mcp::routes());
    all.extend(tap::routes());
    all.extend(journeys::routes());
    all
}

/// The router, with authentication applied per route. Paths outside the API are the web console's files
/// from `console` (its built `dist` folder), with `index.html` for the console's own routes.
pub fn router(state: AppState, console: Option<PathBuf>) -> Router {
    let mut router = Router::new();
    for r in routes() {
        let limit = r.body_limit;
        let handler = r
            .handler
            .layer(axum::extract::DefaultBodyLimit::max(limit))
            .layer(middleware::from_fn(
                move |mut req: Request, next: Next| async move {
                    req.extensions_mut().insert(BodyLimit(limit));
                    next.run(req).await
                },
            ))
            .layer(middleware::from_fn_with_state(
                (state.clone(), r.access),
                authenticate,
            ));
        router = router.route(r.path, handler);
    }
    let console = Arc::new(console);
    router
        .route("/ingest/{stream}", axum::routing::any(ingest::root))
        .route(
            "/ingest/{stream}/{*rest}",
            axum::routing::any(ingest::nested),
        )
        .route(
            "/mcp",
            axum::routing::post(mcp::post)
                .get(mcp::other)
                .delete(mcp::other)
                .layer(axum::extract::DefaultBodyLimit::max(mcp::MAX_MESSAGE)),
        )
        .fallback(move |req: Request| serve_console(console.clone(), req))
        .with_state(state)
}

/// Headers on every console file: a content security policy, no framing, no sniffing, no referrer.
const CONSOLE_HEADERS: &[(header::HeaderName, &str)] = &[
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
         font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; \
         frame-ancestors 'none'",
    ),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
];

/// The console's static files. They hold no data: everything they show comes from the API, with a token.
async fn serve_console(console: Arc<Option<PathBuf>>, req: Request) -> Response {
    let path = req.uri().path();
    if path.starts_with("/api/") || path == "/api" {
        return ApiError::not_found("no such path").into_response();
    }
    let Some(dir) = console.as_ref().as_ref() else {
        return ApiError::not_found("no such path").into_response();
    };
    let index = dir.join("index.html");
    if !index.is_file() {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!(
                "The web console is not built in \"{}\": run `npm --prefix ui ci && npm --prefix ui run build`, \
                 or point --console-dir at a built console. The API is at /api/v1.\n",
                dir.display()
            ),
        )
            .into_response();
    }
    let files = ServeDir::new(dir).fallback(ServeFile::new(index));
    let mut resp = match files.oneshot(req).await {
        Ok(resp) => resp.into_response(),
        Err(e) => match e {},
    };
    // The console loads only its own files and talks only to this API; no page may frame it.
    let headers = resp.headers_mut();
    for (name, value) in CONSOLE_HEADERS {
        headers.insert(name.clone(), header::HeaderValue::from_static(value));
    }
    resp
}

/// Serves until `shutdown`.
pub async fn serve(
    listener: crate::listener::ServerListener,
    state: AppState,
    console: Option<PathBuf>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state, console).into_make_service_with_connect_info::<crate::listener::Peer>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await
}

/// A version number from a path (`/versions/{version}`): digits, as the OpenAPI document says (an integer from 1 to
/// `i64::MAX`). Anything else is a bad request; digits past `i64::MAX` name a version that cannot exist, so they are
/// not found, like any other version that was never saved.
fn version_number(v: &str) -> Result<i64, ApiError> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(format!(
            "version \"{v}\" is not a number"
        )));
    }
    v.parse()
        .map_err(|_| ApiError::not_found(format!("version {v} not found")))
}

/// The bearer token a request carries.
fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

async fn authenticate(
    State((state, access)): State<(AppState, Access)>,
    mut req: Request,
    next: Next,
) -> Response {
    match access {
        Access::Public => next.run(req).await,
        Access::Join => match bearer(req.headers()) {
            Some(t) if state.is_worker_token(t) => next.run(req).await,
            _ => ApiError::unauthorized("this path needs the worker token").into_response(),
        },
        Access::Worker => match bearer(req.headers()).and_then(|t| state.worker_of(t)) {
            Some(id) => {
                req.extensions_mut().insert(worker::WorkerCaller(id));
                next.run(req).await
            }
            None => ApiError::unauthorized(
                "this path needs a worker's credential (from /api/v1/worker/register)",
            )
            .into_response(),
        },
        Access::User | Access::Editor | Access::Admin => {
            let needed = access.role().unwrap_or(Role::Admin);
            let caller = match caller_of(&state, bearer(req.headers()), Scope::Api).await {
                Ok(c) => c,
                Err(refused) => return refused.into_response(),
            };
            if caller.role < needed {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "this needs the {} role; the token acts as {}",
                        needed.as_str(),
                        caller.role.as_str()
                    ),
                )
                .into_response();
            }
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
    }
}
