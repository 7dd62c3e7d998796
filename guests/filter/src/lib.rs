//! The `filter` processor: keeps the messages for which a VRL condition is `true`.
//!
//! Configuration: the condition as a JSON string (`".level == \"error\""`) or `{"condition": "..."}`. The
//! condition reads the message like a mapping does (`.` the payload, `%` the metadata) but cannot change it:
//! assigning to `.` or `%` is a compile error. `true` keeps the message, `false` drops it; any other result, a
//! runtime error or `abort` fails the message (which keeps its original content).

use airtruct_sdk::{
    ConfigError, ConfigErrors, Info, Message, Outcome, Processor, export_processor,
};
use serde::Deserialize;
use vrl_common::vrl::compiler::Program;
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

/// VRL's code for "unhandled error" (a fallible expression whose error is not handled).
const UNHANDLED_ERROR: usize = 100;
/// The key of the object a wrapped condition returns when it failed at runtime.
const ERROR_KEY: &str = "__airtruct_filter_error";

/// Wraps a fallible condition so that its runtime error is caught and returned as `{ERROR_KEY: message}`.
fn wrap(condition: &str) -> String {
    format!(
        "airtruct_filter_value, airtruct_filter_error = {{\n{condition}\n}}\n\
         if airtruct_filter_error == null {{ airtruct_filter_value }} else {{ {{ \"{ERROR_KEY}\": airtruct_filter_error }} }}"
    )
}

/// Compiles a condition as the filter runs it; the error is VRL's formatted diagnostics.
///
/// A condition that VRL rejects only because it can fail at runtime (`error[E100]: unhandled error`, as in
/// `.qty > 0` where `.qty` might not be a number) is accepted: it is wrapped so that the error is caught, and the
/// program returns `{ERROR_KEY: message}` on a message where it fails.
pub fn compile_condition(condition: &str) -> Result<Program, String> {
    let program = match vrl_common::compile_diagnostics(condition, true) {
        Ok(program) => program,
        Err(diagnostics) => {
            let errors = diagnostics.errors();
            let only_unhandled =
                !errors.is_empty() && errors.iter().all(|d| d.code == UNHANDLED_ERROR);
            match only_unhandled.then(|| vrl_common::compile_diagnostics(&wrap(condition), true)) {
                Some(Ok(program)) => program,
                _ => return Err(vrl_common::format_diagnostics(condition, diagnostics)),
            }
        }
    };
    let kind = program.final_type_info().result.kind().clone();
    if !kind.contains_boolean() {
        return Err(format!(
            "the condition must return a boolean, but it returns {kind}"
        ));
    }
    Ok(program)
}

/// The filter processor: one compiled, read-only VRL condition.
pub struct Filter {
    vrl: Vrl,
}

impl Filter {
    /// Compiles a condition directly (native use, benchmarks); the error is VRL's formatted diagnostics.
    pub fn from_condition(condition: &str) -> Result<Self, String> {
        compile_condition(condition).map(|program| Self {
            vrl: Vrl::from_program(program),
        })
    }

    /// Evaluates the condition on one message: `Ok(true)` keeps it, `Ok(false)` drops it.
    pub fn matches(&mut self, msg: &Message) -> Result<bool, String> {
        match self.vrl.evaluate(msg) {
            Ok(Value::Boolean(b)) => Ok(b),
            Ok(Value::Object(o)) if o.len() == 1 && o.contains_key(ERROR_KEY) => {
                let error = o
                    .get(ERROR_KEY)
                    .map(|e| e.to_string_lossy().into_owned())
                    .unwrap_or_default();
                Err(format!("filter failed: {error}"))
            }
            Ok(Value::Null) => Err("filter condition must return a boolean, got null".to_string()),
            Ok(other) => Err(format!(
                "filter condition must return a boolean, got {} {}",
                vrl_common::type_name(&other),
                vrl_common::short_display(&other)
            )),
            Err(RunError::Abort(m)) if m == "aborted" => Err("filter aborted".to_string()),
            Err(RunError::Abort(m)) => Err(format!("filter aborted: {m}")),
            Err(RunError::Error(m)) => Err(format!("filter failed: {m}")),
        }
    }
}

impl Processor for Filter {
    fn describe() -> Info {
        airtruct_sdk::info_from_files!("filter")
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
        Filter::init(&serde_json::to_string(condition).unwrap())
            .unwrap_or_else(|e| panic!("{}", e[0].message))
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
        let mut f = Filter::init(r#"{"condition": "%tenant == \"a\""}"#)
            .unwrap_or_else(|e| panic!("{:?}", e));
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
        let out = f
            .process(vec![
                Message::new(r#"{"n":3}"#),
                Message::new(r#"{"n":true}"#),
            ])
            .unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0].error.as_deref(),
            Some("filter condition must return a boolean, got integer 3")
        );
        assert_eq!(out[0].payload, br#"{"n":3}"#);
        assert_eq!(out[1].error, None);
    }

    #[test]
    fn runtime_error_fails_the_message() {
        let mut f = filter("to_int!(.s) > 2");
        let out = f
            .process(vec![
                Message::new(r#"{"s":"abc"}"#),
                Message::new(r#"{"s":"5"}"#),
            ])
            .unwrap();
        assert_eq!(out.len(), 2);
        assert!(
            out[0].error.as_deref().unwrap().starts_with("filter"),
            "{:?}",
            out[0].error
        );
        assert_eq!(out[1].error, None);
    }

    #[test]
    fn fallible_condition_fails_at_runtime() {
        let mut f = filter(".qty > 0");
        let out = f
            .process(vec![
                Message::new(r#"{"qty":3}"#),
                Message::new(r#"{"qty":0}"#),
                Message::new(r#"{"qty":"many"}"#),
                Message::new(r#"{}"#),
            ])
            .unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].error, None);
        let e = out[1].error.as_deref().unwrap();
        assert_eq!(e, "filter failed: expected string, got integer");
        assert_eq!(out[1].payload, br#"{"qty":"many"}"#);
        assert!(out[2].error.is_some());
        // Other errors are still reported on the original source.
        let e = Filter::init(r#"".qty > 0 && upcase(.x) == \"A\"""#)
            .err()
            .unwrap();
        assert!(e[0].message.contains("error[E110]"), "{}", e[0].message);
        assert!(
            !e[0].message.contains("airtruct_filter"),
            "{}",
            e[0].message
        );
    }

    #[test]
    fn config_errors() {
        // Not a boolean at all.
        let e = Filter::init(r#""\"text\"""#).err().unwrap();
        assert!(
            e[0].message.contains("must return a boolean"),
            "{}",
            e[0].message
        );
        // Read-only target.
        let e = Filter::init(r#"{"condition": ".x = 1\ntrue"}"#)
            .err()
            .unwrap();
        assert_eq!(e[0].path, ".condition");
        assert!(e[0].message.contains("error[E"), "{}", e[0].message);
    }
}
