//! Stream tests: `tests:` cases beside a stream's config. Each case gives sample input messages and says what the
//! processors must make of them, at the end of the pipeline or after a given processor: the messages expected, or
//! VRL conditions every message must meet. `airtruct test FILE`, the API and the console run them.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{ValidationError, from_value};

/// The most input messages one case may give.
pub const MAX_CASE_MESSAGES: usize = 100;
/// The most cases a stream may carry.
pub const MAX_CASES: usize = 100;
/// The most conditions one case may give.
pub const MAX_CONDITIONS: usize = 20;

/// One stream test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// What the case checks, shown in the report.
    pub name: String,
    /// The messages given to the first processor, in order (1 to 100). A stream carries at most 100 cases.
    pub input: Vec<CaseMessage>,
    /// Check the messages as they leave this processor (its index in `pipeline.processors`, from 0) instead of
    /// as they leave the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<usize>,
    /// The messages expected, in order. A payload written as text is compared as JSON when both sides are JSON
    /// (else as text); any other payload is compared as JSON. Only the metadata keys given are compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Vec<ExpectedMessage>>,
    /// VRL conditions every message must meet (`.total > 0`), each run as a `filter` would run it (at most 20).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<String>,
}

/// A sample message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseMessage {
    /// The payload: text as it is, anything else as its JSON.
    pub payload: Value,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// A message a case expects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedMessage {
    /// The payload expected; absent (or null), the payload is not compared.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub payload: Value,
    /// Metadata the message must carry (other keys are not compared).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// The message must have failed, with an error containing this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl CaseMessage {
    /// The payload's bytes: text as it is, anything else as its JSON.
    pub fn payload_bytes(&self) -> Vec<u8> {
        payload_bytes(&self.payload)
    }
}

/// A payload as bytes: text as it is, anything else as its JSON.
pub fn payload_bytes(payload: &Value) -> Vec<u8> {
    match payload {
        Value::String(s) => s.clone().into_bytes(),
        other => other.to_string().into_bytes(),
    }
}

/// Whether an actual payload is the one expected: JSON against JSON when both are, else text against text.
pub fn payload_matches(expected: &Value, actual: &[u8]) -> bool {
    let parsed = serde_json::from_slice::<Value>(actual).ok();
    match expected {
        Value::String(text) => match (serde_json::from_str::<Value>(text).ok(), parsed) {
            (Some(e), Some(a)) if !matches!(e, Value::String(_)) => e == a,
            _ => text.as_bytes() == actual,
        },
        other => parsed.as_ref() == Some(other),
    }
}

/// Reads `tests:` (absent: none), checking every case against the number of processors; every problem at once,
/// each with its path.
pub fn parse_cases(
    value: Option<&Value>,
    processors: usize,
) -> (Vec<TestCase>, Vec<ValidationError>) {
    let mut errors = Vec::new();
    let items = match value {
        None | Some(Value::Null) => return (Vec::new(), errors),
        Some(Value::Array(items)) => items,
        Some(_) => {
            errors.push(ValidationError::new(
                "tests",
                "expected a list of cases (`- name: ..., input: [...], expect: [...]`)",
            ));
            return (Vec::new(), errors);
        }
    };
    if items.len() > MAX_CASES {
        errors.push(ValidationError::new(
            "tests",
            format!("at most {MAX_CASES} cases, found {}", items.len()),
        ));
        return (Vec::new(), errors);
    }
    let mut cases = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("tests[{i}]");
        let case: TestCase = match from_value(&path, item) {
            Ok(c) => c,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if case.name.trim().is_empty() {
            errors.push(ValidationError::new(format!("{path}.name"), "required"));
        }
        if case.input.is_empty() || case.input.len() > MAX_CASE_MESSAGES {
            errors.push(ValidationError::new(
                format!("{path}.input"),
                format!("give 1 to {MAX_CASE_MESSAGES} messages"),
            ));
        }
        if case.expect.is_none() && case.conditions.is_empty() {
            errors.push(ValidationError::new(
                path.clone(),
                "a case needs `expect` (the messages expected) or `conditions` (VRL each message must meet)",
            ));
        }
        if case.conditions.len() > MAX_CONDITIONS {
            errors.push(ValidationError::new(
                format!("{path}.conditions"),
                format!("at most {MAX_CONDITIONS} conditions"),
            ));
        }
        if let Some(after) = case.after
            && after >= processors
        {
            errors.push(ValidationError::new(
                format!("{path}.after"),
                match processors {
                    0 => "the pipeline has no processors".to_string(),
                    n => format!(
                        "there is no processor {after}: the pipeline has {n} (0 to {})",
                        n - 1
                    ),
                },
            ));
        }
        cases.push(case);
    }
    (cases, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cases_are_read_with_every_problem_at_its_path() {
        let (cases, errors) = parse_cases(
            Some(&json!([
                {"name": "ok", "input": [{"payload": {"a": 1}}], "expect": [{"payload": {"a": 2}}]},
                {"name": "no check", "input": [{"payload": "x"}]},
                {"name": "too far", "input": [{"payload": "x"}], "after": 2, "conditions": [".a == 1"]},
                {"name": "typo", "input": [], "expct": []}
            ])),
            2,
        );
        assert_eq!(cases.len(), 3);
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["tests[1]", "tests[2].after", "tests[3].expct"],
            "{errors:?}"
        );
        assert!(errors[1].message.contains("0 to 1"), "{errors:?}");
        assert!(errors[2].message.contains("expct"), "{errors:?}");
    }

    #[test]
    fn payloads_compare_as_json_when_both_are_json() {
        assert!(payload_matches(
            &json!({"a": 1, "b": [true]}),
            br#"{"b":[true],"a":1}"#
        ));
        assert!(payload_matches(&json!("{\"a\": 1}"), br#"{"a":1}"#));
        assert!(payload_matches(&json!("plain text"), b"plain text"));
        assert!(!payload_matches(&json!({"a": 1}), br#"{"a":2}"#));
        assert!(!payload_matches(&json!({"a": 1}), b"not json"));
        assert!(!payload_matches(&json!("text"), b"other"));
    }
}
