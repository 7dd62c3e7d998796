//! `/mcp`: the streams with an `mcp_tool` input as tools of a Model Context Protocol server, over Streamable HTTP
//! (JSON-RPC 2.0 in a `POST`, answered with `application/json`; no server-sent event stream, so `GET` is 405).
//! Callers send an API token with the `mcp` scope. A call's arguments are checked against the tool's schema, then
//! handed to its stream like an ingest request (in this process, or forwarded to a worker that runs it); the
//! stream's `sync_response` output makes the tool's result. `GET /api/v1/mcp/tools` lists the same tools for the
//! console.

use airtruct_connectors::inputs::mcp_tool::McpToolInputConfig;
use airtruct_runtime::ingest::IngestResponse;
use airtruct_store::{StreamRecord, StreamStatus};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Value, json};

use super::{Access, ApiError, AppState, Caller, Route, Scope, bearer, caller_of, route};

/// The protocol versions of the `initialize` handshake this server speaks, oldest first.
pub const PROTOCOL_VERSIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// The largest JSON-RPC message taken (4 MiB).
pub const MAX_MESSAGE: usize = 4 << 20;

/// The header a client names its protocol version in after the handshake.
const VERSION_HEADER: &str = "mcp-protocol-version";

pub fn routes() -> Vec<Route> {
    vec![
        route(
            Method::GET,
            "/api/v1/mcp/tools",
            Access::User,
            "listMcpTools",
            "The tools streams expose on this server's /mcp endpoint",
            list,
        )
        .returns::<Vec<McpToolView>>(200),
    ]
}

/// A tool a stream exposes.
#[derive(Debug, Serialize, JsonSchema)]
pub struct McpToolView {
    pub name: String,
    pub description: String,
    /// The JSON Schema of its arguments.
    pub input_schema: Value,
    pub stream_id: String,
    pub stream_name: String,
    /// Agents see and call only the tools of active streams.
    pub callable: bool,
}

/// The tools of `streams`, by name; a name two streams give is the active one's (saves refuse a second).
fn tools(streams: Vec<StreamRecord>) -> Vec<(McpToolInputConfig, StreamRecord)> {
    let mut out: Vec<(McpToolInputConfig, StreamRecord)> = Vec::new();
    for s in streams {
        let Some(tool) = tool_of(&s.config) else {
            continue;
        };
        match out.iter_mut().find(|(t, _)| t.name == tool.name) {
            Some(slot) if slot.1.status != StreamStatus::Active => *slot = (tool, s),
            Some(_) => {}
            None => out.push((tool, s)),
        }
    }
    out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    out
}

/// A config's `mcp_tool` input, when it has one that parses.
pub fn tool_of(config: &Value) -> Option<McpToolInputConfig> {
    serde_json::from_value(config.pointer("/input/mcp_tool")?.clone()).ok()
}

/// The problem of saving `config` for stream `except` (a new one: `None`) when another stream exposes its tool's
/// name already.
pub async fn name_taken(
    state: &AppState,
    config: &Value,
    except: Option<&str>,
) -> Result<Option<airtruct_model::ValidationError>, ApiError> {
    let Some(tool) = tool_of(config) else {
        return Ok(None);
    };
    let taken = state.store.list_streams().await?.into_iter().find(|s| {
        Some(s.id.as_str()) != except && tool_of(&s.config).is_some_and(|t| t.name == tool.name)
    });
    Ok(taken.map(|s| {
        airtruct_model::ValidationError::new(
            "config.input.mcp_tool.name",
            format!(
                "the tool \"{}\" is exposed by stream \"{}\" already: tool names are unique on a server",
                tool.name, s.name
            ),
        )
    }))
}

async fn list(State(state): State<AppState>) -> Result<Json<Vec<McpToolView>>, ApiError> {
    let all = tools(state.store.list_streams().await?);
    Ok(Json(
        all.into_iter()
            .map(|(t, s)| McpToolView {
                input_schema: t.schema(),
                name: t.name,
                description: t.description,
                callable: s.status == StreamStatus::Active,
                stream_id: s.id,
                stream_name: s.name,
            })
            .collect(),
    ))
}

/// `GET` and `DELETE /mcp`: this server opens no event stream and keeps no session.
pub async fn other(method: Method) -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "POST")],
        Json(json!({
            "error": format!("{method} /mcp: this server answers each POST with JSON and keeps no event stream or session")
        })),
    )
        .into_response()
}

fn rpc_error(id: Value, code: i64, message: impl Into<String>) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}})
}

fn rpc_result(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// An answer with a JSON-RPC body.
fn answer(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

/// Whether a browser page of another origin sent this (the DNS rebinding the transport's rules warn of): its
/// `Origin` names another host than the one it asked.
fn foreign_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let authority = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    !authority.eq_ignore_ascii_case(host)
}

/// `POST /mcp`: one JSON-RPC message.
pub async fn post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if foreign_origin(&headers) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "requests from another origin are refused",
        )
        .into_response();
    }
    let caller = match caller_of(&state, bearer(&headers), Scope::Mcp).await {
        Ok(c) => c,
        Err(refused) => return refused.into_response(),
    };
    let message: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return answer(
                StatusCode::BAD_REQUEST,
                rpc_error(Value::Null, -32700, format!("parse error: {e}")),
            );
        }
    };
    let Some(object) = message.as_object() else {
        return answer(
            StatusCode::BAD_REQUEST,
            rpc_error(
                Value::Null,
                -32600,
                "one JSON-RPC message per request, an object (batches are not taken)",
            ),
        );
    };
    let Some(method) = object.get("method").and_then(Value::as_str) else {
        // A response to a request of ours: this server sends none, so there is nothing to match it with.
        return StatusCode::ACCEPTED.into_response();
    };
    let Some(id) = object.get("id").cloned() else {
        // A notification (`notifications/initialized`, `notifications/cancelled`): nothing to answer.
        return StatusCode::ACCEPTED.into_response();
    };
    if !(id.is_string() || id.is_number()) {
        return answer(
            StatusCode::BAD_REQUEST,
            rpc_error(
                Value::Null,
                -32600,
                "a request's id is a string or a number",
            ),
        );
    }
    let params = object.get("params").cloned().unwrap_or(Value::Null);
    let known = matches!(method, "initialize" | "ping" | "tools/list" | "tools/call");
    if !known {
        return answer(
            StatusCode::OK,
            rpc_error(
                id,
                -32601,
                format!("method not found: {method} (this server has tools only)"),
            ),
        );
    }
    if method != "initialize"
        && let Some(version) = headers.get(VERSION_HEADER).and_then(|v| v.to_str().ok())
        && !PROTOCOL_VERSIONS.contains(&version)
    {
        return answer(
            StatusCode::BAD_REQUEST,
            rpc_error(
                id,
                -32600,
                format!(
                    "unsupported {VERSION_HEADER} {version}: this server speaks {}",
                    PROTOCOL_VERSIONS.join(", ")
                ),
            ),
        );
    }
    let result = match method {
        "initialize" => Ok(initialize(&params)),
        "ping" => Ok(json!({})),
        "tools/list" => list_for_agents(&state).await,
        _ => call(&state, &caller, &params).await,
    };
    match result {
        Ok(r) => answer(StatusCode::OK, rpc_result(id, r)),
        Err(Failure::Rpc(code, message)) => answer(StatusCode::OK, rpc_error(id, code, message)),
        Err(Failure::Api(e)) => e.into_response(),
    }
}

/// Why a request got no result.
enum Failure {
    /// A JSON-RPC error: its code and message.
    Rpc(i64, String),
    /// The server could not answer (the store failed).
    Api(ApiError),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::Api(e)
    }
}

impl From<airtruct_store::StoreError> for Failure {
    fn from(e: airtruct_store::StoreError) -> Self {
        Failure::Api(e.into())
    }
}

fn initialize(params: &Value) -> Value {
    let asked = params.get("protocolVersion").and_then(Value::as_str);
    let version = asked
        .filter(|v| PROTOCOL_VERSIONS.contains(v))
        .unwrap_or(PROTOCOL_VERSIONS[PROTOCOL_VERSIONS.len() - 1]);
    json!({
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": false}},
        "serverInfo": {"name": "airtruct", "version": env!("CARGO_PKG_VERSION")},
        "instructions": "Each tool is a stream on this Airtruct server: a call's arguments are the stream's \
            message, and the result is what the stream answers."
    })
}

async fn list_for_agents(state: &AppState) -> Result<Value, Failure> {
    let all = tools(state.store.list_streams().await?);
    let listed: Vec<Value> = all
        .into_iter()
        .filter(|(_, s)| s.status == StreamStatus::Active)
        .map(|(t, _)| {
            json!({
                "name": t.name,
                "description": t.description,
                "inputSchema": t.schema(),
            })
        })
        .collect();
    Ok(json!({ "tools": listed }))
}

/// A tool's result that is an error the agent can read and act on.
fn tool_error(text: impl Into<String>) -> Value {
    json!({"content": [{"type": "text", "text": text.into()}], "isError": true})
}

async fn call(state: &AppState, caller: &Caller, params: &Value) -> Result<Value, Failure> {
    let Some(name) = params.get("name").and_then(Value::as_str) else {
        return Err(Failure::Rpc(
            -32602,
            "tools/call needs the tool's name".into(),
        ));
    };
    let arguments = match params.get("arguments") {
        None | Some(Value::Null) => json!({}),
        Some(a @ Value::Object(_)) => a.clone(),
        Some(_) => {
            return Err(Failure::Rpc(
                -32602,
                "a tool's arguments are a JSON object".into(),
            ));
        }
    };
    let found = tools(state.store.list_streams().await?)
        .into_iter()
        .find(|(t, _)| t.name == name);
    let Some((tool, stream)) = found else {
        return Err(Failure::Rpc(-32602, format!("unknown tool: {name}")));
    };
    if stream.status != StreamStatus::Active {
        return Ok(tool_error(format!(
            "the tool's stream \"{}\" is {}: it takes no calls",
            stream.name,
            stream.status.as_str()
        )));
    }
    if let Err(mismatch) = tool.check_arguments(&arguments) {
        return Ok(tool_error(mismatch));
    }
    tracing::debug!(tool = name, user = %caller.username, stream = %stream.id, "mcp: tool call");
    let body = serde_json::to_vec(&arguments).unwrap_or_default();
    let request = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/")
        .header(header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(body))
        .map_err(ApiError::internal)?;
    let answer = super::ingest::pass_on(
        state,
        &stream.id,
        &stream.name,
        String::new(),
        request,
        tool.timeout.0,
    )
    .await;
    Ok(result_of(answer))
}

/// A tool's result from the stream's answer: its payload as text, and as structured content when it is a JSON
/// object; an error status makes an error result.
fn result_of(answer: IngestResponse) -> Value {
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    if !(200..300).contains(&answer.status) {
        // The server's own refusals are `{"error": "..."}`; a stream's answer with an error status is its own.
        let message = serde_json::from_slice::<Value>(&answer.body)
            .ok()
            .and_then(|v| v.get("error")?.as_str().map(str::to_string))
            .unwrap_or(text);
        return tool_error(message);
    }
    let mut result = json!({"content": [{"type": "text", "text": text}], "isError": false});
    if let Ok(object @ Value::Object(_)) = serde_json::from_slice::<Value>(&answer.body) {
        result["structuredContent"] = object;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_carry_the_payload_and_errors_are_results_the_agent_reads() {
        let ok = result_of(IngestResponse {
            status: 200,
            content_type: "application/json".into(),
            body: br#"{"total": 3}"#.to_vec(),
        });
        assert_eq!(ok["isError"], false);
        assert_eq!(ok["structuredContent"]["total"], 3);
        assert_eq!(ok["content"][0]["text"], r#"{"total": 3}"#);
        let text = result_of(IngestResponse {
            status: 200,
            content_type: "text/plain".into(),
            body: b"hello".to_vec(),
        });
        assert!(text.get("structuredContent").is_none());
        let failed = result_of(IngestResponse::error(503, "the stream is stopping"));
        assert_eq!(failed["isError"], true);
        assert_eq!(failed["content"][0]["text"], "the stream is stopping");
    }

    #[test]
    fn another_origin_is_refused_and_the_same_one_is_not() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "localhost:8080".parse().unwrap());
        assert!(!foreign_origin(&h));
        h.insert(header::ORIGIN, "http://localhost:8080".parse().unwrap());
        assert!(!foreign_origin(&h));
        h.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(foreign_origin(&h));
    }

    #[test]
    fn the_handshake_answers_the_asked_version_when_it_is_known() {
        assert_eq!(
            initialize(&json!({"protocolVersion": "2025-06-18"}))["protocolVersion"],
            "2025-06-18"
        );
        assert_eq!(
            initialize(&json!({"protocolVersion": "1999-01-01"}))["protocolVersion"],
            *PROTOCOL_VERSIONS.last().unwrap()
        );
    }
}
