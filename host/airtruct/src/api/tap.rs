//! `GET /api/v1/streams/{id}/tap`: the live tap of a running stream as server-sent events, for editors and
//! admins. A bounded sample of the messages at each step (see [`airtruct_runtime::tap`]) from every replica:
//! in this process, or relayed from the workers' listeners. Nothing is stored; the events stop when the caller
//! goes away or the stream stops.
//!
//! Events: `open` (`{"replicas": N}`) once, then `message` (a [`TapEvent`]) for each sampled message, `missed`
//! (`{"missed": N}`) when a replica's events came faster than the caller read them, `error` (`{"error": ...}`)
//! when a worker could not be reached, and a `: keepalive` comment every 15 seconds.

use std::convert::Infallible;
use std::time::Duration;

use airtruct_model::ValidationError;
use airtruct_runtime::tap::{Journey, TapEvent, Watch};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::ingest::FORWARD_HEADER;
use super::{Access, ApiError, AppState, Route, route};

/// How often an idle tap sends a comment, so that the caller and any proxy see the connection alive.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// Journeys answered at most, newest first.
const MAX_FOUND: usize = 50;

pub fn routes() -> Vec<Route> {
    let mut r = route(
        Method::GET,
        "/api/v1/streams/{id}/tap",
        Access::Editor,
        "tapStream",
        "A live sample of the messages at each step of a running stream, as server-sent events (stored nowhere)",
        tap,
    )
    .query::<TapQuery>()
    .binary();
    r.media = "text/event-stream";
    vec![
        r,
        route(
            Method::GET,
            "/api/v1/streams/{id}/journeys",
            Access::Editor,
            "findJourneys",
            "Traced messages' journeys through the steps (`trace: {sample}`), by trace id or metadata value",
            journeys,
        )
        .query::<JourneyQuery>()
        .returns::<JourneysView>(200),
    ]
}

/// Which journeys to find: by `trace_id`, or by a metadata `value` (under `key`, or any key); the newest when
/// neither is given.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JourneyQuery {
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub trace_id: Option<String>,
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub key: Option<String>,
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub value: Option<String>,
}

/// The journeys found, newest first (at most 50), from this process and every worker's listener.
#[derive(Debug, Default, serde::Serialize, Deserialize, JsonSchema)]
pub struct JourneysView {
    pub journeys: Vec<Journey>,
    /// Workers whose journeys could not be read, and why.
    #[serde(default)]
    pub unreachable: Vec<String>,
}

/// The journeys of a stream kept in this process that match `q`.
pub fn local_journeys(
    taps: &airtruct_runtime::tap::Taps,
    stream: &str,
    q: &JourneyQuery,
) -> Vec<Journey> {
    taps.journeys(stream).map_or_else(Vec::new, |j| {
        j.find(
            q.trace_id.as_deref(),
            q.key.as_deref(),
            q.value.as_deref(),
            MAX_FOUND,
        )
    })
}

async fn journeys(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<JourneyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<JourneysView>, ApiError> {
    let Query(q) = query.map_err(|e| {
        ApiError::invalid(
            "the journeys' query is not understood (it takes trace_id, key and value)",
            vec![ValidationError::new("query", e.body_text())],
        )
    })?;
    let too_long: Vec<ValidationError> = [
        ("trace_id", &q.trace_id, 200),
        ("key", &q.key, 200),
        ("value", &q.value, 1000),
    ]
    .into_iter()
    .filter(|(_, v, max)| v.as_ref().is_some_and(|v| v.chars().count() > *max))
    .map(|(field, _, max)| {
        ValidationError::new(
            format!("query.{field}"),
            format!("at most {max} characters"),
        )
    })
    .collect();
    if !too_long.is_empty() {
        return Err(ApiError::invalid(
            "the journeys' query is not understood",
            too_long,
        ));
    }
    state.store.get_stream(&id).await?;
    let mut view = JourneysView {
        journeys: local_journeys(state.ingest.taps(), &id, &q),
        unreachable: Vec::new(),
    };
    let mut params: Vec<(&str, &str)> = Vec::new();
    for (k, v) in [
        ("trace_id", &q.trace_id),
        ("key", &q.key),
        ("value", &q.value),
    ] {
        if let Some(v) = v {
            params.push((k, v));
        }
    }
    for (worker, url) in state.listeners() {
        let resp = state
            .http
            .get(format!("{}/journeys/{id}", url.trim_end_matches('/')))
            .query(&params)
            .timeout(Duration::from_secs(5))
            .header(FORWARD_HEADER, state.forward_token(&worker))
            .send()
            .await;
        match resp {
            Ok(r) if r.status().is_success() => match r.json::<JourneysView>().await {
                Ok(found) => view.journeys.extend(found.journeys),
                Err(e) => view.unreachable.push(format!("{worker}: {e}")),
            },
            Ok(r) => view.unreachable.push(format!("{worker}: {}", r.status())),
            Err(e) => view.unreachable.push(format!("{worker}: {e}")),
        }
    }
    view.journeys
        .sort_by_key(|j| std::cmp::Reverse(j.started_ms));
    view.journeys.truncate(MAX_FOUND);
    Ok(Json(view))
}

/// Which messages to send.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TapQuery {
    /// Only this step: 0 the input, 1 to N the processors in order, N + 1 the output (every step when absent).
    #[serde(default)]
    #[schemars(range(min = 0, max = 1000))]
    pub step: Option<usize>,
}

/// One server-sent event.
pub fn frame(event: &str, data: &serde_json::Value) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

fn message_frame(e: &TapEvent) -> Bytes {
    frame("message", &serde_json::to_value(e).unwrap_or_default())
}

/// The frames of local watches, filtered to `step`, into `tx` until the caller goes away or the stream stops.
pub fn pump_local(watches: Vec<Watch>, step: Option<usize>, tx: &mpsc::Sender<Bytes>) {
    for mut watch in watches {
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    _ = tx.closed() => break,
                    next = watch.next() => next,
                };
                let frame = match next {
                    Some(Ok(e)) if step.is_none_or(|s| s == e.step) => message_frame(&e),
                    Some(Ok(_)) => continue,
                    Some(Err(missed)) => frame("missed", &json!({ "missed": missed })),
                    None => break,
                };
                if tx.send(frame).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// A response that sends what arrives on `rx`, with a keepalive comment while nothing does; it ends when every
/// sender is gone.
pub fn event_stream(rx: mpsc::Receiver<Bytes>) -> Response {
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        match tokio::time::timeout(KEEPALIVE, rx.recv()).await {
            Ok(Some(frame)) => Some((Ok::<_, Infallible>(frame), rx)),
            Ok(None) => None,
            Err(_) => Some((Ok(Bytes::from_static(b": keepalive\n\n")), rx)),
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .header("x-accel-buffering", "no")
        .body(Body::from_stream(frames))
        .expect("a valid response")
}

async fn tap(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<TapQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| {
        ApiError::invalid(
            "the tap's query is not understood (it takes step=N)",
            vec![ValidationError::new("query", e.body_text())],
        )
    })?;
    let stream = state.store.get_stream(&id).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    if let Some(watches) = state.ingest.taps().watch(&id) {
        let _ = tx
            .send(frame("open", &json!({ "replicas": watches.len() })))
            .await;
        pump_local(watches, q.step, &tx);
        return Ok(event_stream(rx));
    }
    let targets = state.ingest_targets(&id);
    if targets.is_empty() {
        let running_somewhere = state
            .reports()
            .values()
            .any(|r| r.streams.iter().any(|s| s.stream_id == id));
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            if running_somewhere {
                format!(
                    "stream \"{}\" runs on workers without a listener (`--ingest-listen`): it cannot be tapped there",
                    stream.name
                )
            } else {
                format!(
                    "stream \"{}\" is not running: there is nothing to tap",
                    stream.name
                )
            },
        ));
    }
    let _ = tx
        .send(frame("open", &json!({ "replicas": targets.len() })))
        .await;
    for (worker, url) in targets {
        let tx = tx.clone();
        let mut url = format!("{}/tap/{id}", url.trim_end_matches('/'));
        if let Some(step) = q.step {
            url.push_str(&format!("?step={step}"));
        }
        let req = state
            .http
            .get(url)
            .timeout(Duration::from_secs(24 * 3600))
            .header(FORWARD_HEADER, state.forward_token(&worker));
        tokio::spawn(relay(req, worker, tx));
    }
    Ok(event_stream(rx))
}

/// Relays one worker's events, whole frames only (two workers' frames never interleave mid-frame).
async fn relay(req: reqwest::RequestBuilder, worker: String, tx: mpsc::Sender<Bytes>) {
    let resp = tokio::select! {
        _ = tx.closed() => return,
        r = req.send() => r,
    };
    let resp = match resp {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => {
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            let _ = tx
                .send(frame(
                    "error",
                    &json!({"error": format!("worker {worker} answered {status}: {text}")}),
                ))
                .await;
            return;
        }
        Err(e) => {
            let _ = tx
                .send(frame(
                    "error",
                    &json!({"error": format!("worker {worker} could not be reached: {e}")}),
                ))
                .await;
            return;
        }
    };
    let mut body = resp.bytes_stream();
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let chunk = tokio::select! {
            _ = tx.closed() => return,
            c = body.next() => c,
        };
        let Some(Ok(chunk)) = chunk else { return };
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
            let frame: Vec<u8> = pending.drain(..end + 2).collect();
            // The worker's own keepalives stay there: this side sends its own.
            if frame.starts_with(b":") {
                continue;
            }
            if tx.send(Bytes::from(frame)).await.is_err() {
                return;
            }
        }
    }
}
