//! The `filter` processor: keeps the messages for which a VRL condition is `true`.
//!
//! Configuration: the condition as a JSON string (`".level == \"error\""`) or `{"condition": "..."}`. The
//! condition reads the message like a mapping does (`.` the payload, `%` the metadata) but cannot change it:
//! assigning to `.` or `%` is a compile error. `true` keeps the message, `false` drops it; any other result, a
//! runtime error or `abort` fails the message (which keeps its original content).

use airtruct_sdk::{ConfigError, ConfigErrors, Info, Message, Outcome, Processor, export_processor};
use serde::Deserialize;
use vrl_common::vrl::value::Value;
use vrl_common::{RunError, Vrl};

#[derive(Deserialize)]
#[serde(untagged)]
enum Config {
    Condition(String),
    Object(ObjectConfig),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectConfig {
    condition: String,
}

const SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "filter",
  "description": "A VRL condition evaluated on each message: `true` keeps it, `false` drops it.",
  "oneOf": [
    {
      "type": "string",
      "title": "VRL condition",
      "description": "A VRL expression returning a boolean, for example `.level == \"error\"` or `exists(%kafka_key)`."
    },
    {
      "type": "object",
      "properties": {
        "condition": {
          "type": "string",
          "title": "VRL condition",
          "description": "A VRL expression returning a boolean, for example `.level == \"error\"` or `exists(%kafka_key)`."
        }
      },
      "required": ["condition"],
      "additionalProperties": false
    }
  ]
}"##;

/// The filter processor: one compiled, read-only VRL condition.
pub struct Filter {
    vrl: Vrl,
}

impl Filter {
    /// Compiles a condition directly (native use, benchmarks); the error is VRL's formatted diagnostics.
    pub fn from_condition(condition: &str) -> Result<Self, String> {
        let program = vrl_common::compile_with(condition, true)?;
        let kind = program.final_type_info().result.kind().clone();
        if !kind.contains_boolean() {
            return Err(format!("the condition must return a boolean, but it returns {kind}"));
        }
        Ok(Self { vrl: Vrl::from_program(program) })
    }

    /// Evaluates the condition on one message: `Ok(true)` keeps it, `Ok(false)` drops it.
    pub fn matches(&mut self, msg: &Message) -> Result<bool, String> {
        match self.vrl.evaluate(msg) {
            Ok(Value::Boolean(b)) => Ok(b),
            Ok(other) => Err(format!(
                "filter condition must return a boolean, got {} {}",
                vrl_common::type_name(&other),
                vrl_common::short_display(&other)
            )),
            Err(RunError::Abort(m)) => Err(format!("filter aborted: {m}")),
            Err(RunError::Error(m)) => Err(format!("filter failed: {m}")),
        }
    }
}

impl Processor for Filter {
    fn describe() -> Info {
        Info::new(
            "filter",
            "Keeps the messages for which a VRL condition is true and drops those for which it is false. The \
             condition reads the payload (`.`) and metadata (`%`) but cannot change them; a non-boolean result \
             or a runtime error fails the message.",
            env!("CARGO_PKG_VERSION"),
            SCHEMA,
        )
    }

    fn init(config: &str) -> Result<Self, ConfigErrors> {
        let (condition, path) = match serde_json::from_str::<Config>(config) {
            Ok(Config::Condition(s)) => (s, ""),
            Ok(Config::Object(o)) => (o.condition, ".condition"),
            Err(_) => {
                return Err(vec![ConfigError::new(
                    "",
                    "expected the VRL condition as a string, or an object {\"condition\": \"...\"}",
                )]);
            }
        };
        if condition.trim().is_empty() {
            return Err(vec![ConfigError::new(path, "the VRL condition is empty")]);
        }
        Filter::from_condition(&condition).map_err(|e| vec![ConfigError::new(path, e)])
    }

    fn process_message(&mut self, msg: Message) -> Outcome {
        match self.matches(&msg) {
            Ok(true) => Outcome::Keep(msg),
            Ok(false) => Outcome::Drop,
            Err(e) => Outcome::Fail(msg, e),
        }
    }
}

export_processor!(Filter);

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(condition: &str) -> Filter {
        Filter::init(&serde_json::to_string(condition).unwrap()).unwrap_or_else(|e| panic!("{}", e[0].message))
    }

    #[test]
    fn keeps_true_drops_false() {
        let mut f = filter(r#".level == "error""#);
        let out = f
            .process(vec![
                Message::new(r#"{"level":"error","n":1}"#),
                Message::new(r#"{"level":"info","n":2}"#),
                Message::new(r#"{"level":"error","n":3}"#),
            ])
            .unwrap();
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|m| m.error.is_none()));
        assert_eq!(out[1].payload, br#"{"level":"error","n":3}"#);
    }

    #[test]
    fn metadata_and_object_config() {
        let mut f = Filter::init(r#"{"condition": "%tenant == \"a\""}"#).unwrap_or_else(|e| panic!("{:?}", e));
        let mut a = Message::new("x");
        a.metadata.insert("tenant", "a");
        let b = Message::new("y");
        let out = f.process(vec![a, b]).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].payload, b"x");
    }

    #[test]
    fn non_boolean_fails_the_message() {
        let mut f = filter(".n");
        let out = f.process(vec![Message::new(r#"{"n":3}"#), Message::new(r#"{"n":true}"#)]).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].error.as_deref(), Some("filter condition must return a boolean, got integer 3"));
        assert_eq!(out[0].payload, br#"{"n":3}"#);
        assert_eq!(out[1].error, None);
    }

    #[test]
    fn runtime_error_fails_the_message() {
        let mut f = filter("to_int!(.s) > 2");
        let out = f.process(vec![Message::new(r#"{"s":"abc"}"#), Message::new(r#"{"s":"5"}"#)]).unwrap();
        assert_eq!(out.len(), 2);
        assert!(out[0].error.as_deref().unwrap().starts_with("filter"), "{:?}", out[0].error);
        assert_eq!(out[1].error, None);
    }

    #[test]
    fn config_errors() {
        // Not a boolean at all.
        let e = Filter::init(r#""\"text\"""#).err().unwrap();
        assert!(e[0].message.contains("must return a boolean"), "{}", e[0].message);
        // Read-only target.
        let e = Filter::init(r#"{"condition": ".x = 1\ntrue"}"#).err().unwrap();
        assert_eq!(e[0].path, ".condition");
        assert!(e[0].message.contains("error[E"), "{}", e[0].message);
    }
}
