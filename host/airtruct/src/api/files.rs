//! Files streams use (a lookup table, a JSON Schema, a CA certificate), uploaded through the API and stored under
//! the operator's first path root, where the policy lets streams read them; configs reference a file by the
//! `path` its listing shows.

use std::path::PathBuf;

use airtruct_store::now_ms;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use schemars::JsonSchema;
use serde::Serialize;

use super::error::FILE_NAME;
use super::{Access, ApiError, AppState, Caller, Route, route};

/// The largest file taken.
const MAX_FILE: usize = 16 << 20;

pub fn routes() -> Vec<Route> {
    use Access::{Editor, User};
    use Method as M;
    let mut put = route(
        M::PUT,
        "/api/v1/files/{name}",
        Editor,
        "putFile",
        "Upload or replace a file streams may use (the bytes as the body)",
        put_file,
    )
    .returns::<FileView>(201)
    .or_status(200)
    .body_limit(MAX_FILE);
    put.octet_body = true;
    let mut get = route(
        M::GET,
        "/api/v1/files/{name}",
        User,
        "getFile",
        "A file's bytes",
        get_file,
    )
    .binary();
    get.media = "application/octet-stream";
    vec![
        route(
            M::GET,
            "/api/v1/files",
            User,
            "listFiles",
            "The uploaded files, with the path configs use",
            list_files,
        )
        .returns::<Vec<FileView>>(200),
        put,
        get,
        route(
            M::DELETE,
            "/api/v1/files/{name}",
            Editor,
            "deleteFile",
            "Delete a file",
            delete_file,
        )
        .no_content(),
    ]
}

/// An uploaded file.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FileView {
    pub name: String,
    pub size: u64,
    /// Milliseconds since the epoch.
    pub updated_at: i64,
    /// The path a stream config uses for it.
    pub path: String,
}

/// The folder files go to: the policy's first path root.
fn folder(state: &AppState) -> Result<PathBuf, ApiError> {
    state.policy.paths.first().cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "the operator's policy has no path root: files cannot be uploaded",
        )
    })
}

fn file_path(state: &AppState, name: &str) -> Result<PathBuf, ApiError> {
    FILE_NAME.check(name)?;
    Ok(folder(state)?.join(name))
}

fn view(name: String, path: &std::path::Path) -> Result<FileView, ApiError> {
    let meta = std::fs::metadata(path).map_err(ApiError::internal)?;
    let updated_at = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(now_ms(), |d| d.as_millis() as i64);
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    Ok(FileView {
        name,
        size: meta.len(),
        updated_at,
        path: path.display().to_string(),
    })
}

async fn list_files(State(state): State<AppState>) -> Result<Json<Vec<FileView>>, ApiError> {
    let dir = folder(&state)?;
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(ApiError::internal)? {
        let entry = entry.map_err(ApiError::internal)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.file_type().map_err(ApiError::internal)?.is_file() {
            continue;
        }
        out.push(view(name, &entry.path())?);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(out))
}

async fn put_file(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<FileView>), ApiError> {
    let path = file_path(&state, &name)?;
    let bytes = body.map_err(|e| {
        ApiError::new(
            e.status(),
            format!(
                "reading the file: {} (at most {} MiB)",
                e.body_text(),
                MAX_FILE >> 20
            ),
        )
    })?;
    let bytes = super::multipart::upload(&headers, bytes, &[]).await?.bytes;
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "the body is empty: send the file's bytes as the body (curl -T FILE, --data-binary @FILE, or -F file=@FILE)",
        ));
    }
    let existed = path.exists();
    // Written beside, then renamed: a stream reading it sees the old file or the new one, never half.
    let tmp = path.with_file_name(format!(".{name}.upload"));
    std::fs::write(&tmp, &bytes)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(ApiError::internal)?;
    caller
        .audit(
            &state,
            "file.put",
            &name,
            &format!(
                "{} bytes{}",
                bytes.len(),
                if existed { ", replaced" } else { "" }
            ),
        )
        .await;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(view(name, &path)?)))
}

async fn get_file(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let path = file_path(&state, &name)?;
    let bytes = std::fs::read(&path)
        .map_err(|_| ApiError::not_found(format!("file \"{name}\" does not exist")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

async fn delete_file(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let path = file_path(&state, &name)?;
    std::fs::remove_file(&path)
        .map_err(|_| ApiError::not_found(format!("file \"{name}\" does not exist")))?;
    caller.audit(&state, "file.delete", &name, "").await;
    Ok(StatusCode::NO_CONTENT)
}
