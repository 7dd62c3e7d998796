//! Everything but streams and processors: the health probes, and the routes of login and tokens (`auth`),
//! `secrets`, `workers` and the components `catalogue`, gathered in one list.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::{AppState, Route, auth, catalogue, secrets, workers};

pub fn routes() -> Vec<Route> {
    let mut all = auth::routes();
    all.extend(secrets::routes());
    all.extend(workers::routes());
    all.extend(catalogue::routes());
    all
}

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.store.ping().await {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the store does not answer\n",
        )
    }
}
