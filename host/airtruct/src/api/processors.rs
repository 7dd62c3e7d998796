//! Uploaded processors: `POST /api/v1/processors` takes a `.wasm` component as the raw body, checks it (a
//! component, the `airtruct:processor` world, nothing imported beyond the contract, under the size cap, compiles,
//! `describe()` answers in time) and stores it content-addressed as the next version of its name. Nothing is
//! stored when a check fails.

use std::collections::BTreeMap;

use airtruct_model::ValidationError;
use airtruct_runtime::processors::uploaded_refs;
use airtruct_store::ProcessorRecord;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode, header};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Access, ApiError, AppState, Caller, Route, route};

/// The most a request body may carry; the engine's component size cap (32 MiB by default) is checked after.
const MAX_UPLOAD: usize = 128 << 20;

pub fn routes() -> Vec<Route> {
    use Access::{Editor, User, Worker};
    use Method as M;
    let mut upload = route(M::POST, "/api/v1/processors", Editor, "uploadProcessor", "Upload a processor component (the .wasm file as the body; name and description in the query)", upload)
        .returns::<ProcessorView>(201)
        .body_limit(MAX_UPLOAD);
    upload.binary_body = true;
    vec![
        upload,
        route(M::GET, "/api/v1/processors", User, "listProcessors", "Uploaded processors, latest version of each", list)
            .returns::<Vec<ProcessorView>>(200),
        route(M::GET, "/api/v1/processors/{name}", User, "getProcessor", "An uploaded processor: its latest version, its config schema, and the streams that use it", get)
            .returns::<ProcessorView>(200),
        route(M::DELETE, "/api/v1/processors/{name}", Editor, "deleteProcessor", "Delete every version of a processor (refused while a stream uses it)", delete)
            .no_content(),
        route(M::GET, "/api/v1/processors/{name}/versions", User, "listProcessorVersions", "Every version of a processor, newest first", versions)
            .returns::<Vec<ProcessorVersionView>>(200),
        route(M::GET, "/api/v1/processors/{name}/versions/{version}/download", User, "downloadProcessor", "The .wasm file of a version", download)
            .binary(),
        route(M::GET, "/api/v1/worker/components/{sha256}", Worker, "fetchComponent", "A component's bytes by hash (worker protocol)", fetch)
            .binary(),
    ]
}

/// Where to store an upload.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// The processor's name (`a-z`, `0-9`, `-`, `_`); an existing name gets a new version. A form may send it
    /// as a field instead.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// One version of an uploaded processor.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ProcessorVersionView {
    pub name: String,
    pub version: i64,
    pub sha256: String,
    pub size: i64,
    pub description: String,
    /// What the component says of itself (`describe()`).
    pub described_name: String,
    pub described_description: String,
    pub described_version: String,
    /// The JSON Schema of its config, as the component describes it.
    pub config_schema: Value,
    /// The version of the processor contract it targets: `0.1.0` or `0.2.0`.
    pub contract: String,
    /// The host capabilities it asks for (`http`, `sql`, `cache`, `rate_limit`): a stream that uses it must grant
    /// it a resource of each (`grants`).
    pub capabilities: Vec<String>,
    pub created_at: i64,
}

/// A stream that uses a processor, and which version.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UsedBy {
    pub stream_id: String,
    pub stream_name: String,
    pub version: Option<i64>,
}

/// An uploaded processor: its latest version and where it is used.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ProcessorView {
    #[serde(flatten)]
    pub latest: ProcessorVersionView,
    /// How many versions exist.
    pub versions: usize,
    pub used_by: Vec<UsedBy>,
}

fn version_view(p: ProcessorRecord) -> ProcessorVersionView {
    ProcessorVersionView {
        described_name: p.described("name").to_string(),
        described_description: p.described("description").to_string(),
        described_version: p.described("version").to_string(),
        config_schema: p.config_schema(),
        contract: match p.described("contract") {
            "" => "0.1.0".to_string(),
            c => c.to_string(),
        },
        capabilities: capabilities_of(&p),
        name: p.name,
        version: p.version,
        sha256: p.sha256,
        size: p.size,
        description: p.description,
        created_at: p.created_at,
    }
}

/// The capabilities an uploaded processor asks for, as it described them at upload.
pub(super) fn capabilities_of(p: &ProcessorRecord) -> Vec<String> {
    p.info
        .get("capabilities")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect()
}

/// The latest version of each processor, with how many versions it has (`all` is by name, newest first, as
/// the store lists them).
pub(super) fn latest_versions(all: Vec<ProcessorRecord>) -> Vec<(ProcessorRecord, usize)> {
    let mut out: Vec<(ProcessorRecord, usize)> = Vec::new();
    for p in all {
        match out.last_mut() {
            Some((latest, n)) if latest.name == p.name => *n += 1,
            _ => out.push((p, 1)),
        }
    }
    out
}

/// Which streams (their current version) use each processor name.
async fn usage(state: &AppState) -> Result<BTreeMap<String, Vec<UsedBy>>, ApiError> {
    let mut by_name: BTreeMap<String, Vec<UsedBy>> = BTreeMap::new();
    for s in state.store.list_streams().await? {
        for r in uploaded_refs(airtruct_connectors::registry(), &s.config) {
            by_name.entry(r.name).or_default().push(UsedBy {
                stream_id: s.id.clone(),
                stream_name: s.name.clone(),
                version: r.version,
            });
        }
    }
    Ok(by_name)
}

fn check_name(name: &str) -> Result<(), ApiError> {
    super::error::PROCESSOR_NAME.check(name)
}

async fn upload(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<ProcessorView>), ApiError> {
    let Query(q) = query.map_err(|e| {
        ApiError::invalid(
            "give the processor's name in the query: POST /api/v1/processors?name=NAME",
            vec![ValidationError::new("name", e.body_text())],
        )
    })?;
    let bytes = body.map_err(|e| {
        ApiError::new(
            e.status(),
            format!(
                "reading the upload: {} (at most {MAX_UPLOAD} bytes)",
                e.body_text()
            ),
        )
    })?;
    let super::multipart::Upload { bytes, mut fields } =
        super::multipart::upload(&headers, bytes, &["name", "description"]).await?;
    let Some(name) = q.name.or_else(|| fields.remove("name")) else {
        return Err(ApiError::invalid(
            "give the processor's name in the query: POST /api/v1/processors?name=NAME",
            vec![ValidationError::new("name", "missing")],
        ));
    };
    let description = q.description.or_else(|| fields.remove("description"));
    check_name(&name)?;
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "the body is empty: send the .wasm file as the request body (curl --data-binary @my.wasm, or -F file=@my.wasm)",
        ));
    }
    let engine = state.engine.clone();
    let body = bytes.clone();
    let loaded = tokio::task::spawn_blocking(move || engine.load(&body))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| {
            let status = match e {
                airtruct_engine::LoadError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                airtruct_engine::LoadError::Cache(_) => return ApiError::internal(e),
                airtruct_engine::LoadError::CompileBusy => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_REQUEST,
            };
            ApiError::new(status, format!("the upload is not a usable processor: {e}"))
        })?;
    let info = loaded.info();
    let info = serde_json::json!({
        "name": info.name,
        "description": info.description,
        "version": info.version,
        "config_schema": info.config_schema,
        "contract": loaded.contract(),
        "capabilities": loaded.capabilities().iter().map(|c| c.name()).collect::<Vec<_>>(),
    });
    let description = description.unwrap_or_default();
    let record = state
        .store
        .add_processor(&name, &description, loaded.sha256(), &bytes, &info)
        .await?;
    tracing::info!(processor = %record.name, version = record.version, sha256 = %record.sha256, size = record.size, "processor uploaded");
    caller
        .audit(
            &state,
            "processor.upload",
            &record.name,
            &format!("v{} sha256 {}", record.version, record.sha256),
        )
        .await;
    let versions = state
        .store
        .list_processors()
        .await?
        .iter()
        .filter(|p| p.name == name)
        .count();
    let used_by = usage(&state).await?.remove(&name).unwrap_or_default();
    Ok((
        StatusCode::CREATED,
        Json(ProcessorView {
            latest: version_view(record),
            versions,
            used_by,
        }),
    ))
}

async fn list(State(state): State<AppState>) -> Result<Json<Vec<ProcessorView>>, ApiError> {
    let mut usage = usage(&state).await?;
    let out = latest_versions(state.store.list_processors().await?)
        .into_iter()
        .map(|(p, versions)| ProcessorView {
            used_by: usage.remove(&p.name).unwrap_or_default(),
            latest: version_view(p),
            versions,
        })
        .collect();
    Ok(Json(out))
}

async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ProcessorView>, ApiError> {
    let latest = state.store.get_processor(&name, None).await?;
    let versions = state
        .store
        .list_processors()
        .await?
        .iter()
        .filter(|p| p.name == name)
        .count();
    let used_by = usage(&state).await?.remove(&name).unwrap_or_default();
    Ok(Json(ProcessorView {
        latest: version_view(latest),
        versions,
        used_by,
    }))
}

async fn versions(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Vec<ProcessorVersionView>>, ApiError> {
    let all: Vec<ProcessorVersionView> = state
        .store
        .list_processors()
        .await?
        .into_iter()
        .filter(|p| p.name == name)
        .map(version_view)
        .collect();
    if all.is_empty() {
        return Err(ApiError::not_found(format!(
            "processor \"{name}\" not found"
        )));
    }
    Ok(Json(all))
}

async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.store.get_processor(&name, None).await?;
    let users = usage(&state).await?.remove(&name).unwrap_or_default();
    if !users.is_empty() {
        let names: Vec<String> = users
            .iter()
            .map(|u| format!("\"{}\"", u.stream_name))
            .collect();
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "processor \"{name}\" is used by stream(s) {}: change them first",
                names.join(", ")
            ),
        ));
    }
    state.store.delete_processor(&name).await?;
    tracing::info!(processor = %name, "processor deleted");
    caller.audit(&state, "processor.delete", &name, "").await;
    Ok(StatusCode::NO_CONTENT)
}

fn wasm(bytes: Vec<u8>, filename: String) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/wasm".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        bytes,
    )
}

async fn download(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let v = super::version_number(&version)?;
    let p = state.store.get_processor(&name, Some(v)).await?;
    let bytes = state.store.get_blob(&p.sha256).await?;
    Ok(wasm(bytes, format!("{name}-{v}.wasm")))
}

async fn fetch(
    State(state): State<AppState>,
    Extension(caller): Extension<super::worker::WorkerCaller>,
    Path(sha256): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    // A worker fetches only what a stream placed on it uses.
    let assigned = state
        .assignments_for(&caller.0)
        .await?
        .iter()
        .any(|a| a.components.iter().any(|c| c.sha256 == sha256));
    if !assigned {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "no stream placed on this worker uses that component",
        ));
    }
    let bytes = state.store.get_blob(&sha256).await?;
    Ok(wasm(bytes, format!("{sha256}.wasm")))
}
