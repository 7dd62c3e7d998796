//! `/ingest/{stream}/...`: HTTP requests for a stream's `http_server` input. Public by design (senders are other
//! systems); the input checks its own `token` or `hmac` when it has one. In standalone the request goes to the
//! stream in this process; otherwise it is forwarded to a worker that runs the stream, whose ingest listener
//! takes it (with that worker's forward token, and without the caller's credentials).

use std::time::Duration;

pub use airtruct_connectors::inputs::http_server::FORWARD_HEADER;
use airtruct_connectors::inputs::http_server::{
    HttpServerInputConfig, await_reply, from_http, to_http,
};
use airtruct_runtime::ingest::IngestResponse;
use airtruct_store::StreamStatus;
use axum::extract::{Path, Request, State};
use axum::response::Response;
use serde_json::Value;

use super::AppState;

/// Largest body taken (16 MiB).
pub const MAX_BODY: usize = 16 << 20;

/// `/ingest/{stream}`.
pub async fn root(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    req: Request,
) -> Response {
    to_http(handle(state, stream, String::new(), req).await)
}

/// `/ingest/{stream}/{*rest}`.
pub async fn nested(
    State(state): State<AppState>,
    Path((stream, rest)): Path<(String, String)>,
    req: Request,
) -> Response {
    to_http(handle(state, stream, rest, req).await)
}

/// How long the stream's input lets a caller wait: its `http_server` options read through their type, so the
/// default is the input's own.
fn timeout_of(config: &Value) -> Duration {
    serde_json::from_value::<HttpServerInputConfig>(http_server_options(config))
        .map_or(HttpServerInputConfig::DEFAULT_TIMEOUT, |c| c.timeout.0)
}

/// The options of a stream's `http_server` input as written (`http_server: ~` is all defaults).
fn http_server_options(config: &Value) -> Value {
    match config.pointer("/input/http_server") {
        Some(Value::Null) | None => Value::Object(Default::default()),
        Some(o) => o.clone(),
    }
}

async fn handle(state: AppState, key: String, rest: String, req: Request) -> IngestResponse {
    let stream = match state.ingest_stream(&key).await {
        Ok(Some(s)) => s,
        Ok(None) => return IngestResponse::error(404, &format!("no stream \"{key}\"")),
        Err(e) => {
            tracing::error!(error = %e, "ingest: reading the stream");
            return IngestResponse::error(500, "internal error");
        }
    };
    if stream.config.pointer("/input/http_server").is_none() {
        return IngestResponse::error(404, &format!("stream \"{key}\" has no http_server input"));
    }
    if stream.status != StreamStatus::Active {
        return IngestResponse::error(
            503,
            &format!(
                "stream \"{key}\" is {}: it takes no requests",
                stream.status.as_str()
            ),
        );
    }
    let timeout = timeout_of(&stream.config);
    if rest.split('/').any(|seg| seg == ".." || seg == ".") {
        return IngestResponse::error(400, "the path must not hold . or .. segments");
    }
    if !state.ingest.is_local(&stream.id) {
        // The stream runs on another worker: its method, token and signature header are checked here, before the
        // body is read, so a refused caller costs no body and no forwarding.
        match remote_precheck(&state, &stream.config).await {
            Ok(check) => {
                if let Err(refused) =
                    check.check(req.method().as_str(), |n| header_value(req.headers(), n))
                {
                    return refused;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, stream = %stream.id, "ingest: reading the stream's credentials");
                return IngestResponse::error(500, "internal error");
            }
        }
    }
    pass_on(&state, &stream.id, &key, rest, req, timeout).await
}

/// Hands a request to a running stream (`/{rest}` its path) and waits up to `timeout` for its answer: to the
/// stream's input in this process, or forwarded to a worker that runs it (whose credentials the caller checked).
pub async fn pass_on(
    state: &AppState,
    stream: &str,
    key: &str,
    rest: String,
    req: Request,
    timeout: Duration,
) -> IngestResponse {
    let path = format!("/{rest}");
    let checked = state.ingest.precheck(stream, req.method().as_str(), |n| {
        header_value(req.headers(), n)
    });
    if let Some(checked) = checked {
        // The stream runs in this process: refuse bad credentials before reading the body.
        if let Err(refused) = checked {
            return refused;
        }
        let (request, rx) = match from_http(req, path, MAX_BODY).await {
            Ok(r) => r,
            Err(refused) => return refused,
        };
        if let Err(busy) = state.ingest.dispatch(stream, request) {
            return busy;
        }
        return await_reply(rx, timeout).await;
    }
    // Bodies being forwarded share one memory budget: when it is spent, callers are told to come back.
    let size = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .unwrap_or(MAX_BODY)
        .min(MAX_BODY);
    let Ok(_budget) = state
        .ingest_budget
        .try_acquire_many(size.div_ceil(1024).max(1) as u32)
    else {
        return IngestResponse::error(
            503,
            "the server holds too many request bodies right now; send it again",
        );
    };
    let targets = state.ingest_targets(stream);
    if targets.is_empty() {
        return IngestResponse::error(
            503,
            &format!(
                "stream \"{key}\" is not running on a worker that takes requests right now; send it again"
            ),
        );
    }
    // Spread requests over the replicas.
    let (worker, url) = targets[state.next_ingest() % targets.len()].clone();
    // The worker's listener takes `/ingest/{stream}` and `/ingest/{stream}/{*rest}`: no trailing `/` for the root.
    let forwarded = if rest.is_empty() { "" } else { path.as_str() };
    forward(state, &worker, &url, stream, forwarded, req, timeout).await
}

/// A header's value, when it is text.
fn header_value(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The precheck of a stream's `http_server` input, with its token's secrets resolved by the coordinator (which
/// holds the key).
async fn remote_precheck(
    state: &AppState,
    config: &Value,
) -> Result<airtruct_runtime::ingest::Precheck, String> {
    let options = http_server_options(config);
    let mut values = std::collections::HashMap::new();
    for (name, _) in airtruct_model::secret_refs(&options) {
        let secret = state
            .store
            .get_secret(&name)
            .await
            .map_err(|e| e.to_string())?;
        let value = state
            .key
            .decrypt(&secret.name, &secret.nonce, &secret.ciphertext)
            .map_err(|e| e.to_string())?;
        values.insert(name, value);
    }
    let resolved = airtruct_model::resolve_secrets(&options, |n| values.get(n).cloned())
        .map_err(|e| format!("{e:?}"))?;
    let input: HttpServerInputConfig =
        serde_json::from_value(resolved).map_err(|e| e.to_string())?;
    Ok(input.precheck())
}

async fn forward(
    state: &AppState,
    worker: &str,
    base: &str,
    stream: &str,
    path: &str,
    req: Request,
    timeout: Duration,
) -> IngestResponse {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return IngestResponse::error(413, &format!("the body is larger than {MAX_BODY} bytes"));
    };
    let query = parts
        .uri
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let url = format!(
        "{}/ingest/{stream}{path}{query}",
        base.trim_end_matches('/')
    );
    let mut out = state
        .http
        .request(parts.method.clone(), &url)
        .timeout(timeout + Duration::from_secs(5))
        .body(body);
    // The caller's credentials stay here (its bearer token was checked above); the worker learns that the
    // coordinator sent this from its own forward token.
    for (k, v) in &parts.headers {
        if !matches!(
            k.as_str(),
            "host"
                | "content-length"
                | "connection"
                | "transfer-encoding"
                | "authorization"
                | "proxy-authorization"
                | "cookie"
        ) && k.as_str() != FORWARD_HEADER
        {
            out = out.header(k, v);
        }
    }
    out = out.header(FORWARD_HEADER, state.forward_token(worker));
    match out.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let content_type = resp
                .headers()
                .get(axum::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/octet-stream")
                .to_string();
            match resp.bytes().await {
                Ok(body) => IngestResponse {
                    status,
                    content_type,
                    body: body.to_vec(),
                },
                Err(e) => {
                    IngestResponse::error(502, &format!("the worker's answer was cut off: {e}"))
                }
            }
        }
        Err(e) if e.is_timeout() => IngestResponse::error(504, "the worker did not answer in time"),
        Err(e) => {
            tracing::warn!(error = %e, "ingest: forwarding to a worker failed");
            IngestResponse::error(
                502,
                "forwarding to the worker that runs the stream failed; send it again",
            )
        }
    }
}
