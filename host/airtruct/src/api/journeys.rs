//! `GET /api/v1/streams/{id}/journeys`: the journeys of traced messages (`trace: {sample}`, see
//! [`airtruct_runtime::journeys`]), for editors and admins: from this process and every worker's listener.

use std::time::Duration;

use airtruct_model::ValidationError;
use airtruct_runtime::journeys::Journey;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::Method;
use schemars::JsonSchema;
use serde::Deserialize;

use super::ingest::FORWARD_HEADER;
use super::{Access, ApiError, AppState, Route, route};

/// Journeys answered at most, newest first.
const MAX_FOUND: usize = 50;

pub fn routes() -> Vec<Route> {
    vec![
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
