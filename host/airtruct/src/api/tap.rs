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
use airtruct_runtime::tap::{TapEvent, Watch};
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
use crate::protocol::ReplicaState;

/// How often an idle tap sends a comment, so that the caller and any proxy see the connection alive.
const KEEPALIVE: Duration = Duration::from_secs(15);

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
    vec![r]
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
        let running_somewhere = state.reports().values().any(|r| {
            r.streams
                .iter()
                .any(|s| s.stream_id == id && s.state == ReplicaState::Running)
        });
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
