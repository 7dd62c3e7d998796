//! The components catalogue: every input, buffer, processor and output kind with the JSON Schema of its options,
//! and the uploaded processors.

use airtruct_runtime::Role;
use airtruct_runtime::kind::KindDoc;
use axum::Json;
use axum::extract::State;
use axum::http::Method;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::{Access, ApiError, AppState, Route, route};

pub fn routes() -> Vec<Route> {
    use Access::User;
    use Method as M;
    vec![
        route(
            M::GET,
            "/api/v1/components",
            User,
            "components",
            "Every input, output, buffer and processor kind with the JSON Schema of its options",
            components,
        )
        .returns::<Catalogue>(200),
        route(
            M::GET,
            "/api/v1/schema/stream",
            User,
            "streamSchema",
            "The JSON Schema of a whole stream config: its parts, with their defaults and bounds",
            stream_schema,
        )
        .returns::<Value>(200),
    ]
}

async fn stream_schema() -> Json<Value> {
    Json(airtruct_model::stream_schema())
}

/// Every component kind, by role.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Catalogue {
    pub inputs: Vec<KindDoc>,
    pub buffers: Vec<KindDoc>,
    pub processors: Vec<KindDoc>,
    /// Uploaded processors (latest versions), used as `wasm: { name, config }`.
    pub uploaded: Vec<UploadedKind>,
    pub outputs: Vec<KindDoc>,
    /// The JSON Schema of a stream's `resources:` section (caches, sql, http, rate_limits).
    pub resources: Value,
}

/// An uploaded processor in the catalogue.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UploadedKind {
    pub name: String,
    pub version: i64,
    pub description: String,
    /// The JSON Schema of its `config`, as it describes it.
    pub config_schema: Value,
    /// The host capabilities it asks for: a stream must grant it a resource of each in `grants`.
    pub capabilities: Vec<String>,
}

async fn components(State(state): State<AppState>) -> Result<Json<Catalogue>, ApiError> {
    let registry = airtruct_connectors::registry();
    let uploaded = super::processors::latest_versions(state.store.list_processors().await?)
        .into_iter()
        .map(|(p, _)| UploadedKind {
            description: if p.description.is_empty() {
                p.described("description").to_string()
            } else {
                p.description.clone()
            },
            config_schema: p.config_schema(),
            capabilities: super::processors::capabilities_of(&p),
            name: p.name,
            version: p.version,
        })
        .collect();
    Ok(Json(Catalogue {
        inputs: registry.docs(Role::Input),
        buffers: registry.docs(Role::Buffer),
        processors: registry.docs(Role::Processor),
        uploaded,
        outputs: registry.docs(Role::Output),
        resources: registry.resources().map_or(Value::Null, |r| (r.schema)()),
    }))
}
