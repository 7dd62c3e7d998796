//! The OpenAPI 3.1 document, built from the route list: JSON Schema 2020-12 from the same types the handlers
//! use (schemars), so generated clients (the console) match the server.

use axum::Json;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use super::error::{FILE_NAME, NameRule, PROCESSOR_NAME, SECRET_NAME, USER_NAME};
use super::{Access, ErrorBody, routes, schema};

/// `GET /api/v1/openapi.json`.
pub async fn serve() -> Json<Value> {
    Json(document())
}

/// The rule a name in this path follows, if the server checks one.
fn name_rule(path: &str) -> Option<&'static NameRule> {
    [
        ("/api/v1/files/", &FILE_NAME),
        ("/api/v1/secrets/", &SECRET_NAME),
        ("/api/v1/users/", &USER_NAME),
        ("/api/v1/processors/", &PROCESSOR_NAME),
    ]
    .into_iter()
    .find(|(prefix, _)| path.starts_with(prefix))
    .map(|(_, rule)| rule)
}

fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            // Versions are numbers (1, 2, ...); names follow their rule; ids are any non-empty string.
            let schema = match (name, name_rule(path)) {
                ("version", _) => {
                    json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": i64::MAX})
                }
                ("name" | "username", Some(rule)) => rule.schema(),
                _ => json!({"type": "string", "minLength": 1}),
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect()
}

/// Links from what creates a thing to the operations that take its id or name, for clients and for stateful
/// testing: `POST /x` answering 201 links to `/x/{p}...` with `p` from its answer; `PUT /x/{p}` answering 201
/// links to the other operations on `/x/{p}...` with `p` as it was given.
fn with_links(
    mut ok: Value,
    path: &str,
    method: &str,
    status: u16,
    routes: &[(&str, &str, String)],
) -> Value {
    if status != 201 {
        return ok;
    }
    let (prefix, param, value) = match method {
        "POST" => {
            let prefix = format!("{path}/{{");
            let Some(param) = routes.iter().find_map(|(p, _, _)| {
                p.strip_prefix(&prefix)?
                    .split_once('}')
                    .map(|(name, _)| name.to_string())
            }) else {
                return ok;
            };
            let value = format!("$response.body#/{param}");
            (format!("{prefix}{param}}}"), param, value)
        }
        "PUT" => {
            let Some((start, param)) = path
                .rsplit_once('{')
                .and_then(|(start, rest)| Some((start, rest.strip_suffix('}')?)))
            else {
                return ok;
            };
            (
                format!("{start}{{{param}}}"),
                param.to_string(),
                format!("$request.path.{param}"),
            )
        }
        _ => return ok,
    };
    let mut links = Map::new();
    for (p, id, m) in routes {
        if *p == path && m.eq_ignore_ascii_case(method) {
            continue;
        }
        if p.starts_with(&prefix) && (p.len() == prefix.len() || p[prefix.len()..].starts_with('/'))
        {
            let mut parameters = Map::new();
            parameters.insert(param.clone(), value.clone().into());
            // Versions of what was just made: its own.
            if p.contains("{version}") && method == "POST" {
                parameters.insert("version".into(), "$response.body#/version".into());
            }
            links.insert(
                id.to_string(),
                json!({"operationId": id, "parameters": parameters}),
            );
        }
    }
    if !links.is_empty() {
        ok["links"] = Value::Object(links);
    }
    ok
}

/// Gives every integer with a sized `format` (`uint32`, `int64`, ...) the range the server's type takes, so a
/// client (and a test generator) knows that 2^32 is no `uint32`.
fn bound_integers(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let range: Option<(Value, Value)> = match map.get("format").and_then(Value::as_str) {
                Some("uint8") => Some((0.into(), u8::MAX.into())),
                Some("uint16") => Some((0.into(), u16::MAX.into())),
                Some("uint32") => Some((0.into(), u32::MAX.into())),
                Some("uint64") => Some((0.into(), u64::MAX.into())),
                Some("int8") => Some((i8::MIN.into(), i8::MAX.into())),
                Some("int16") => Some((i16::MIN.into(), i16::MAX.into())),
                Some("int32") => Some((i32::MIN.into(), i32::MAX.into())),
                Some("int64") => Some((i64::MIN.into(), i64::MAX.into())),
                _ => None,
            };
            if let Some((min, max)) = range {
                map.entry("minimum").or_insert(min);
                map.entry("maximum").or_insert(max);
            }
            map.values_mut().for_each(bound_integers);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_integers),
        _ => {}
    }
}

/// The whole document.
pub fn document() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let error_schema = Value::from(schema::<ErrorBody>(&mut generator));
    let mut paths = Map::new();
    let all = routes();
    let targets: Vec<(&str, &str, String)> = all
        .iter()
        .map(|r| {
            (
                r.path,
                r.operation_id,
                r.method.as_str().to_ascii_lowercase(),
            )
        })
        .collect();
    for r in all {
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
        if let Some(f) = r.query {
            let fields = Value::from(f(&mut generator));
            let required = fields["required"].as_array().cloned().unwrap_or_default();
            let query: Vec<Value> = fields["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, schema)| {
                    let mut schema = schema.clone();
                    let description = schema
                        .as_object_mut()
                        .and_then(|o| o.remove("description"))
                        .unwrap_or_default();
                    json!({"name": name, "in": "query", "required": required.contains(&name.as_str().into()),
                        "schema": schema, "description": description})
                })
                .collect();
            let params = op.entry("parameters").or_insert_with(|| json!([]));
            if let Some(p) = params.as_array_mut() {
                p.extend(query);
            }
        }
        if r.binary_body {
            op.insert(
                "requestBody".into(),
                json!({"required": true, "content": {
                    "application/wasm": {"schema": {"type": "string", "format": "binary", "minLength": 1}},
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary", "minLength": 1}},
                    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "additionalProperties": false, "properties": {
                        "file": {"type": "string", "format": "binary", "minLength": 1},
                        "name": PROCESSOR_NAME.schema(),
                        "description": {"type": "string"}
                    }}}
                }}),
            );
            let query = json!([
                {"name": "name", "in": "query", "required": false, "schema": PROCESSOR_NAME.schema(),
                 "description": "the processor's name; required unless a form sends it as a field"},
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
                json!({"required": true, "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary", "minLength": 1}},
                    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "additionalProperties": false, "properties": {
                        "file": {"type": "string", "format": "binary", "minLength": 1}
                    }}}
                }}),
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
        let created = if r.also_status == Some(201) {
            201
        } else {
            r.status
        };
        let ok = with_links(ok, r.path, r.method.as_str(), created, &targets);
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
    let mut schemas = Value::Object(generator.take_definitions(true));
    bound_integers(&mut schemas);
    let mut paths = Value::Object(paths);
    bound_integers(&mut paths);
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
        assert_eq!(version["schema"]["maximum"], i64::MAX, "{params}");
        // Any number the document allows is a version that exists or is not found, never a refused request.
        let status = |v: &str| super::super::version_number(v).map_err(|e| e.status.as_u16());
        assert_eq!(status("7"), Ok(7));
        assert_eq!(status(&i64::MAX.to_string()), Ok(i64::MAX));
        assert_eq!(status("7322289227747211349275443200"), Err(404));
        assert_eq!(status("1.5"), Err(400));
        assert_eq!(status("-1"), Err(400));
        let put = &doc["paths"]["/api/v1/secrets/{name}"]["put"]["responses"];
        assert!(
            put.get("200").is_some() && put.get("201").is_some(),
            "{put}"
        );
        let name = &doc["components"]["schemas"]["StreamInput"]["properties"]["name"];
        assert_eq!(name["minLength"], 1, "{name}");
        assert_eq!(name["maxLength"], 200, "{name}");
        // What creates a thing links to what takes its id; names carry the rule the server checks.
        let links = &doc["paths"]["/api/v1/streams"]["post"]["responses"]["201"]["links"];
        assert_eq!(
            links["getStream"]["parameters"]["id"], "$response.body#/id",
            "{links}"
        );
        let links = &doc["paths"]["/api/v1/secrets/{name}"]["put"]["responses"]["201"]["links"];
        assert_eq!(
            links["deleteSecret"]["parameters"]["name"], "$request.path.name",
            "{links}"
        );
        let drain = &doc["paths"]["/api/v1/workers/{id}/drain"]["post"]["parameters"];
        let force = drain
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "force")
            .unwrap_or_else(|| panic!("no force in {drain}"));
        assert_eq!(force["in"], "query", "{force}");
        assert_eq!(force["required"], false, "{force}");
        assert_eq!(force["schema"]["type"], "boolean", "{force}");
        let file = &doc["paths"]["/api/v1/files/{name}"]["get"]["parameters"][0]["schema"];
        assert_eq!(file["pattern"], FILE_NAME.pattern, "{file}");
        for name in ["lookup.csv", "a", "x_y-1"] {
            assert!(FILE_NAME.check(name).is_ok(), "{name}");
        }
        for name in [".hidden", "", "a/b", "a b"] {
            assert!(FILE_NAME.check(name).is_err(), "{name}");
        }
    }
}
