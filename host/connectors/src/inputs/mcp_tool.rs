//! `mcp_tool`: the stream is a tool on the server's `/mcp` endpoint (the Model Context Protocol over Streamable
//! HTTP), which AI agents list and call. A call's arguments (a JSON object) are the message; the caller is
//! answered with what the stream's `sync_response` output gets, as the tool's result. The coordinator checks the
//! caller (an API token with the `mcp` scope) and the arguments against `input_schema` before the stream sees
//! them; see `docs/mcp.md`.
//!
//! Messages carry `mcp_tool` (the tool's name) and `http_request_id` (the call waiting for its answer) as metadata.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::inputs::http_server::tool_input;
use airtruct_runtime::kind::{Check, InputKind, Kind};
use airtruct_runtime::{BuildContext, Error, Input};

/// Exposes the stream as a tool of the server's `/mcp` endpoint.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct McpToolInputConfig {
    /// The tool's name, unique on the server: 1 to 64 letters, digits, `_`, `-` or `.`.
    pub name: String,
    /// What the tool does, for the agent that chooses it.
    pub description: String,
    /// The JSON Schema of the tool's arguments, an object schema (default: any object). Calls whose arguments do
    /// not match are answered with the mismatch and never reach the stream.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Map<String, Value>>")]
    pub input_schema: Option<Value>,
    /// Longest a call waits for its message to be delivered (default 30s).
    #[serde(default = "default_timeout")]
    pub timeout: airtruct_model::Duration,
}

fn default_timeout() -> airtruct_model::Duration {
    airtruct_model::Duration(Duration::from_secs(30))
}

impl McpToolInputConfig {
    /// The arguments' schema, `{"type": "object"}` when none is given.
    pub fn schema(&self) -> Value {
        self.input_schema
            .clone()
            .unwrap_or_else(|| serde_json::json!({"type": "object"}))
    }

    /// What is wrong with these options, by field.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if !valid_name(&self.name) {
            out.push((
                "name",
                format!(
                    "\"{}\" is not a tool name: 1 to 64 letters, digits, `_`, `-` or `.`",
                    self.name
                ),
            ));
        }
        if self.description.trim().is_empty() {
            out.push((
                "description",
                "is empty: agents choose tools by their description".to_string(),
            ));
        }
        if let Some(schema) = &self.input_schema {
            if schema.get("type").and_then(Value::as_str) != Some("object") {
                out.push((
                    "input_schema",
                    "must be an object schema (`type: object`): a tool's arguments are a JSON object".to_string(),
                ));
            } else if let Err(e) = jsonschema::validator_for(schema) {
                out.push(("input_schema", format!("is not a valid JSON Schema: {e}")));
            }
        }
        out
    }
}

impl McpToolInputConfig {
    /// Checks a call's arguments against the tool's schema: `Err` says where they do not match.
    pub fn check_arguments(&self, arguments: &Value) -> Result<(), String> {
        let schema = self.schema();
        let validator = jsonschema::validator_for(&schema)
            .map_err(|e| format!("the tool's input_schema is not valid: {e}"))?;
        let problems: Vec<String> = validator
            .iter_errors(arguments)
            .take(10)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("{at}: {e}")
                }
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the arguments do not match the tool's input schema: {}",
                problems.join("; ")
            ))
        }
    }
}

/// Whether `name` is a tool name this server takes.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl Kind for McpToolInputConfig {
    const NAME: &'static str = "mcp_tool";
    const DESCRIPTION: &'static str = "Exposes the stream as a tool on the server's /mcp endpoint (Model Context \
         Protocol): an agent's call is a message, answered through a sync_response output";
    const EXAMPLE: &'static str = r#"{"name": "lookup_order", "description": "Finds an order by its id", "input_schema": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}}"#;

    fn check(&mut self, check: &mut Check<'_>) {
        for (field, message) in self.problems() {
            check.problem(field, message);
        }
    }
}

#[async_trait]
impl InputKind for McpToolInputConfig {
    async fn build(&self, cx: &BuildContext) -> Result<Box<dyn Input>, Error> {
        let Some(stream) = cx.stream_id() else {
            return Err(Error::User(
                "mcp_tool: a tool is called through a server's /mcp endpoint; run the stream on `airtruct \
                 standalone` or a coordinator's workers, not `airtruct run`"
                    .into(),
            ));
        };
        Ok(Box::new(tool_input(stream, &self.name, &cx.ingest)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &str, schema: Option<Value>) -> McpToolInputConfig {
        McpToolInputConfig {
            name: name.into(),
            description: "does things".into(),
            input_schema: schema,
            timeout: default_timeout(),
        }
    }

    #[test]
    fn names_and_schemas_are_checked() {
        assert!(config("lookup_order.v2-x", None).problems().is_empty());
        for bad in ["", "has space", "ünï", &"x".repeat(65)] {
            let problems = config(bad, None).problems();
            assert_eq!(problems.len(), 1, "{bad:?}: {problems:?}");
            assert_eq!(problems[0].0, "name");
        }
        let array = config("t", Some(serde_json::json!({"type": "array"}))).problems();
        assert!(array[0].1.contains("object schema"), "{array:?}");
        let broken = config(
            "t",
            Some(serde_json::json!({"type": "object", "properties": {"id": {"type": 5}}})),
        )
        .problems();
        assert!(
            broken[0].1.contains("not a valid JSON Schema"),
            "{broken:?}"
        );
    }

    #[test]
    fn arguments_are_checked_against_the_schema() {
        let tool = config(
            "t",
            Some(serde_json::json!({
                "type": "object",
                "properties": {"id": {"type": "string"}},
                "required": ["id"]
            })),
        );
        assert!(
            tool.check_arguments(&serde_json::json!({"id": "o-1"}))
                .is_ok()
        );
        let wrong = tool
            .check_arguments(&serde_json::json!({"id": 7}))
            .unwrap_err();
        assert!(wrong.contains("/id"), "{wrong}");
        let missing = tool.check_arguments(&serde_json::json!({})).unwrap_err();
        assert!(
            missing.contains("\"id\" is a required property"),
            "{missing}"
        );
        // A `$ref` to a file or a URL is never fetched.
        let reaching = config(
            "t",
            Some(serde_json::json!({"type": "object", "$ref": "file:///etc/passwd"})),
        );
        assert!(!reaching.problems().is_empty());
    }
}
