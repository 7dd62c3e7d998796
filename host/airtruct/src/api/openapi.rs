//! The OpenAPI 3.1 document, built from the route list: JSON Schema 2020-12 from the same types the handlers
//! use (schemars), so generated clients (the console) match the server.

use axum::Json;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use super::{Access, ErrorBody, routes, schema};

/// `GET /api/v1/openapi.json`.
pub async fn serve() -> Json<Value> {
    Json(document())
}

fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            // Versions are numbers (1, 2, ...); every other path parameter is a name or an id.
            let schema = if name == "version" {
                json!({"type": "integer", "minimum": 1})
            } else {
                json!({"type": "string", "minLength": 1})
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect()
}

/// The whole document.
pub fn document() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let error_schema = Value::from(schema::<ErrorBody>(&mut generator));
    let mut paths = Map::new();
    for r in routes() {
        let mut op = Map::new();
        op.insert("operationId".into(), r.operation_id.into());
        op.insert("summary".into(), r.summary.into());
        let security = match r.access {
            Access::Public => json!([]),
            Access::User | Access::Editor | Access::Admin => json!([{"bearer": []}]),
            Access::Join => json!([{"workerToken": []}]),
            Access::Worker => json!([{"workerCredential": []}]),
        };
        op.insert("security".into(), security);
        let params = path_params(r.path);
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        if r.binary_body {
            op.insert(
                "requestBody".into(),
                json!({"required": true, "content": {"application/wasm": {"schema": {"type": "string", "format": "binary"}}}}),
            );
            let query = json!([
                {"name": "name", "in": "query", "required": true, "schema": {"type": "string"}},
                {"name": "description", "in": "query", "required": false, "schema": {"type": "string"}}
            ]);
            let params = op.entry("parameters").or_insert_with(|| json!([]));
            if let (Some(p), Some(q)) = (params.as_array_mut(), query.as_array()) {
                p.extend(q.iter().cloned());
            }
        }
        if r.octet_body {
            op.insert(
                "requestBody".into(),
                json!({"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}),
            );
        }
        if let Some(f) = r.request {
            let s = Value::from(f(&mut generator));
            op.insert(
                "requestBody".into(),
                json!({"required": true, "content": {"application/json": {"schema": s}}}),
            );
        }
        let mut responses = Map::new();
        let ok = match (r.response, r.text || r.binary) {
            (Some(f), _) => {
                let s = Value::from(f(&mut generator));
                json!({"description": "success", "content": {"application/json": {"schema": s}}})
            }
            (None, true) if r.binary => {
                json!({"description": "success", "content": {r.media: {"schema": {"type": "string", "format": "binary"}}}})
            }
            (None, true) => {
                json!({"description": "success", "content": {"text/plain": {"schema": {"type": "string"}}}})
            }
            (None, false) => json!({"description": "success"}),
        };
        responses.insert(r.status.to_string(), ok.clone());
        if let Some(other) = r.also_status {
            responses.insert(other.to_string(), ok);
        }
        let error = |description: &str| json!({"description": description, "content": {"application/json": {"schema": error_schema.clone()}}});
        if r.access != Access::Public {
            responses.insert("401".into(), error("missing or invalid credentials"));
        }
        responses.insert("default".into(), error("an error, in the error envelope"));
        op.insert("responses".into(), Value::Object(responses));
        let entry = paths
            .entry(r.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[r.method.as_str().to_ascii_lowercase()] = Value::Object(op);
    }
    let schemas = generator.take_definitions(true);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Airtruct",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Streams, their versions and status, workers, secrets and the components catalogue. \
                Log in with POST /api/v1/auth/login and send the token as `Authorization: Bearer TOKEN`. \
                Errors are `{\"error\": ..., \"details\": [{\"path\": ..., \"message\": ...}]}`."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "a session token from login, or an API token"},
                "workerToken": {"type": "http", "scheme": "bearer", "description": "the worker (join) token"},
                "workerCredential": {"type": "http", "scheme": "bearer", "description": "a registered worker's own credential, from its registration"}
            }
        },
        "security": [{"bearer": []}]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_says_what_the_server_checks() {
        let doc = document();
        let params =
            &doc["paths"]["/api/v1/streams/{id}/versions/{version}/rollback"]["post"]["parameters"];
        let version = params
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "version")
            .unwrap();
        assert_eq!(version["schema"]["type"], "integer", "{params}");
        let put = &doc["paths"]["/api/v1/secrets/{name}"]["put"]["responses"];
        assert!(
            put.get("200").is_some() && put.get("201").is_some(),
            "{put}"
        );
        let name = &doc["components"]["schemas"]["StreamInput"]["properties"]["name"];
        assert_eq!(name["minLength"], 1, "{name}");
        assert_eq!(name["maxLength"], 200, "{name}");
    }
}
