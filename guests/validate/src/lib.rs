//! The `validate` processor: checks each JSON payload against a JSON Schema.
//!
//! Configuration: `{"schema": <JSON Schema>}`. The draft is taken from the schema's `$schema` (2020-12 when
//! absent); `format` keywords are asserted (an invalid `"format": "email"` value fails the message). Remote
//! `$ref`s are not fetched: a schema must be self-contained. A valid message passes unchanged; an invalid one
//! fails with every violation, each with the JSON pointer of the offending value:
//! `/name: "name" is a required property; /qty: -1 is less than the minimum of 0`. A payload that is not
//! JSON fails the message.

use airtruct_sdk::{
    ConfigError, ConfigErrors, Info, Message, Outcome, Processor, export_processor,
};
use jsonschema::Validator;
use serde::Deserialize;

/// At most this many violations are listed in one error; the rest are counted.
const MAX_VIOLATIONS: usize = 100;
/// A single violation's text is cut to this many bytes (messages quote the offending value).
const MAX_VIOLATION_LEN: usize = 300;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    schema: serde_json::Value,
}

/// The validate processor: one compiled JSON Schema.
pub struct Validate {
    validator: Validator,
}

impl Validate {
    /// Builds the validator from a schema directly (native use); the error is the reason the schema is invalid.
    pub fn from_schema(schema: &serde_json::Value) -> Result<Self, ConfigError> {
        jsonschema::options()
            .should_validate_formats(true)
            .build(schema)
            .map(|validator| Validate { validator })
            .map_err(|e| {
                let at = e.instance_path().as_str();
                let path = format!(".schema{}", pointer_to_path(at));
                ConfigError::new(path, format!("invalid JSON Schema: {e}"))
            })
    }

    /// Every violation of `payload`, in one line; `Ok` when it is valid.
    pub fn check(&self, payload: &[u8]) -> Result<(), String> {
        let instance: serde_json::Value = serde_json::from_slice(payload)
            .map_err(|e| format!("payload is not valid JSON: {e}"))?;
        let mut violations = Vec::new();
        let mut total = 0usize;
        for error in self.validator.iter_errors(&instance) {
            total += 1;
            if violations.len() < MAX_VIOLATIONS {
                let at = error.instance_path().as_str();
                let at = if at.is_empty() { "(root)" } else { at };
                let mut text = format!("{at}: {error}").replace(['\n', '\r'], " ");
                truncate(&mut text, MAX_VIOLATION_LEN);
                violations.push(text);
            }
        }
        if total == 0 {
            return Ok(());
        }
        let mut text = violations.join("; ");
        if total > violations.len() {
            text.push_str(&format!(
                "; and {} more violations",
                total - violations.len()
            ));
        }
        Err(text)
    }
}

/// `/a/0/b` as `.a[0].b`.
fn pointer_to_path(pointer: &str) -> String {
    let mut out = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{segment}]"));
        } else if !segment.is_empty()
            && segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        {
            out.push('.');
            out.push_str(&segment);
        } else {
            out.push_str(&format!(".{}", serde_json::Value::String(segment)));
        }
    }
    out
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
}

impl Processor for Validate {
    fn describe() -> Info {
        airtruct_sdk::info_from_files!("validate")
    }

    fn init(config: &str) -> Result<Self, ConfigErrors> {
        let config: Config = serde_json::from_str(config).map_err(|e| {
            vec![ConfigError::new(
                "",
                format!("expected {{\"schema\": <JSON Schema>}}: {e}"),
            )]
        })?;
        Validate::from_schema(&config.schema).map_err(|e| vec![e])
    }

    fn process_message(&mut self, msg: Message) -> Outcome {
        match self.check(&msg.payload) {
            Ok(()) => Outcome::Keep(msg),
            Err(e) => Outcome::Fail(msg, e),
        }
    }
}

export_processor!(Validate);

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{"schema": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "qty": {"type": "integer", "minimum": 0},
            "tags": {"type": "array", "items": {"type": "string"}}
        },
        "required": ["name", "qty"]
    }}"#;

    #[test]
    fn lists_every_violation() {
        let mut v = Validate::init(CONFIG).unwrap_or_else(|e| panic!("{e:?}"));
        let out = v
            .process(vec![
                Message::new(r#"{"name":"a","qty":1}"#),
                Message::new(r#"{"qty":-1,"tags":["x",2]}"#),
                Message::new("not json"),
            ])
            .unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].error, None);
        let e = out[1].error.as_deref().unwrap();
        assert!(
            e.contains(r#"(root): "name" is a required property"#),
            "{e}"
        );
        assert!(e.contains("/qty: -1 is less than the minimum of 0"), "{e}");
        assert!(e.contains(r#"/tags/1: 2 is not of type "string""#), "{e}");
        assert_eq!(e.matches("; ").count(), 2, "{e}");
        assert_eq!(out[1].payload, br#"{"qty":-1,"tags":["x",2]}"#);
        assert!(
            out[2]
                .error
                .as_deref()
                .unwrap()
                .starts_with("payload is not valid JSON")
        );
    }

    #[test]
    fn invalid_schema_is_a_config_error() {
        let e = Validate::init(r#"{"schema": {"type": "strnig"}}"#)
            .err()
            .unwrap();
        assert_eq!(e.len(), 1);
        assert!(e[0].path.starts_with(".schema"), "{e:?}");
        assert!(e[0].message.contains("invalid JSON Schema"), "{e:?}");
        let e = Validate::init(r#"{"schema": {"properties": {"a": {"minimum": "x"}}}}"#)
            .err()
            .unwrap();
        assert_eq!(e[0].path, ".schema.properties.a.minimum", "{e:?}");
        assert!(Validate::init("{}").is_err());
        assert!(Validate::init("null").is_err());
    }

    #[test]
    fn pointer_paths() {
        assert_eq!(pointer_to_path(""), "");
        assert_eq!(pointer_to_path("/a/0/b c"), r#".a[0]."b c""#);
    }
}
