//! VRL plumbing shared by the `mapping` and `filter` processors.
//!
//! * [`functions`]: the VRL functions registered in Airtruct: all of VRL's stdlib but the few that need what the
//!   sandbox withholds, which are refused at compile time with the reason ([`REFUSED`]).
//! * [`Vrl`]: a compiled program and its runtime; [`Vrl::resolve`] runs it on a target.
//! * [`Steps`]: the `mapping` and `filter` processors, one or several fused into one call ([`steps`]).
//! * The message as a VRL target:
//!   - `.` is the payload. A JSON payload is parsed (`.user.name`); a payload that is not JSON is exposed as a
//!     string, so `. = upcase(string!(.))` rewrites a text payload, and `. = "raw text"` writes one.
//!   - On the way back, a string result written to a payload that was not JSON is written as its raw bytes;
//!     everything else is written as JSON (a JSON string payload stays a JSON string).
//!   - `%` is the message metadata: `%kafka_key` reads a value, `%foo = "bar"` writes one, `del(%foo)` removes
//!     one. Metadata values are strings: a non-string value written by the program is stored as its string
//!     form (numbers and booleans as written, timestamps RFC 3339, objects and arrays as JSON); `null` removes
//!     the key.
//! * Time: the time zone is UTC. `now()` reads the guest's wall clock, which the host may not provide (it
//!   then reads as the Unix epoch).

use std::collections::BTreeMap;

use airtruct_sdk::Metadata;
use vrl::compiler::runtime::{Runtime, Terminate};
use vrl::compiler::{CompileConfig, Program, TargetValue, TimeZone, TypeState};
use vrl::diagnostic::{DiagnosticList, Formatter};
use vrl::path::PathPrefix;
use vrl::value::{KeyString, ObjectMap, Value};

pub use vrl;

mod condition;
mod functions;
mod sandboxed;
pub mod steps;

pub use condition::{compile_condition, condition_result, mapping_error};
pub use functions::{REFUSED, Refusal, WITHHELD_ARGUMENTS, function_names, functions, refusal};
pub use steps::{Outcome, StepKind, Steps};

/// Compiles `source` with the registered functions. The error is VRL's own diagnostics, formatted without
/// colour (codes, spans and hints), ready to show to the user.
pub fn compile(source: &str) -> Result<Program, String> {
    compile_with(source, false)
}

/// Compiles `source`; with `read_only`, assigning to `.` or `%` (or deleting from them) is a compile error,
/// for conditions.
pub fn compile_with(source: &str, read_only: bool) -> Result<Program, String> {
    compile_diagnostics(source, read_only).map_err(|d| format_diagnostics(source, d))
}

/// VRL's diagnostics as text, without colour.
pub fn format_diagnostics(source: &str, diagnostics: DiagnosticList) -> String {
    Formatter::new(source, diagnostics)
        .to_string()
        .trim()
        .to_string()
}

/// Compiles `source`, returning VRL's diagnostics unformatted on error (see [`compile_with`]).
pub fn compile_diagnostics(source: &str, read_only: bool) -> Result<Program, DiagnosticList> {
    let fns = functions();
    let state = TypeState::default();
    let mut config = CompileConfig::default();
    if read_only {
        config.set_read_only();
    }
    // A program whose last expression is a bare value is fine (a filter condition is exactly that).
    config.disable_unused_expression_check();
    vrl::compiler::compile_with_state(source, &fns, &state, config).map(|result| result.program)
}

/// A payload as a VRL value: parsed JSON, or the raw bytes as a string when it is not JSON.
pub fn payload_to_value(payload: &[u8]) -> (Value, bool) {
    match serde_json::from_slice::<Value>(payload) {
        Ok(v) => (v, true),
        Err(_) => (Value::Bytes(payload.to_vec().into()), false),
    }
}

/// A VRL value back to payload bytes: a string written to a payload that was not JSON is written raw,
/// anything else as JSON.
pub fn value_to_payload(value: &Value, was_json: bool) -> Result<Vec<u8>, String> {
    if !was_json {
        match value {
            Value::Bytes(b) => return Ok(b.to_vec()),
            Value::String(s) => return Ok(s.as_bytes().to_vec()),
            _ => {}
        }
    }
    serde_json::to_vec(value).map_err(|e| format!("the result cannot be written as JSON: {e}"))
}

/// Metadata as a VRL object of strings.
pub fn metadata_to_value(metadata: &Metadata) -> Value {
    let map: ObjectMap = metadata
        .iter()
        .map(|(k, v)| (KeyString::from(k), Value::from(v)))
        .collect();
    Value::Object(map)
}

/// A VRL metadata object back to metadata: every value as its string form, `null` values dropped.
pub fn value_to_metadata(value: &Value) -> Result<Metadata, String> {
    let map = match value {
        Value::Object(map) => map,
        Value::Null => return Ok(Metadata::new()),
        other => {
            return Err(format!(
                "metadata (`%`) must be an object, got {}",
                kind_name(other)
            ));
        }
    };
    let strings: BTreeMap<&str, std::borrow::Cow<'_, str>> = map
        .iter()
        .filter(|(_, v)| !matches!(v, Value::Null))
        .map(|(k, v)| (k.as_str(), v.to_string_lossy()))
        .collect();
    Ok(airtruct_codec::pack(
        strings.iter().map(|(k, v)| (*k, v.as_ref())),
    ))
}

/// Whether the VRL metadata object holds exactly the pairs of `original` (so it need not be re-encoded).
fn metadata_unchanged(original: &Metadata, value: &Value) -> bool {
    let Value::Object(map) = value else {
        return false;
    };
    let mut count = 0;
    for (k, v) in original.iter() {
        count += 1;
        let same = match map.get(k) {
            Some(Value::Bytes(b)) => b.as_ref() == v.as_bytes(),
            Some(Value::String(s)) => s.as_bytes().as_ref() == v.as_bytes(),
            _ => false,
        };
        if !same {
            return false;
        }
    }
    count == map.len()
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Bytes(_) | Value::String(_) => "string",
        Value::Regex(_) => "regex",
        Value::Integer(_) => "integer",
        Value::Float(_) => "float",
        Value::Boolean(_) => "boolean",
        Value::Timestamp(_) => "timestamp",
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        Value::Null => "null",
    }
}

/// The name of a value's VRL type, for error messages.
pub fn type_name(v: &Value) -> &'static str {
    kind_name(v)
}

/// A VRL value in a short readable form, for error messages (JSON, cut to 100 characters).
pub fn short_display(v: &Value) -> String {
    let mut s = serde_json::to_string(v).unwrap_or_else(|_| v.to_string_lossy().into_owned());
    if s.len() > 100 {
        let mut end = 100;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

/// A compiled VRL program with its runtime, run once per message.
pub struct Vrl {
    program: Program,
    runtime: Runtime,
    timezone: TimeZone,
    /// Whether the program reads or writes `%` anywhere: when not, the metadata is not made into a VRL object.
    metadata_used: bool,
}

impl Vrl {
    /// Compiles `source` (see [`compile`]).
    pub fn new(source: &str) -> Result<Self, String> {
        Ok(Self::from_program(compile(source)?))
    }

    /// Wraps a program compiled with [`compile`] or [`compile_with`].
    pub fn from_program(program: Program) -> Self {
        let info = program.info();
        let metadata_used = info
            .target_queries
            .iter()
            .chain(&info.target_assignments)
            .any(|p| p.prefix == PathPrefix::Metadata);
        Self {
            metadata_used,
            program,
            runtime: Runtime::default(),
            timezone: TimeZone::parse("UTC").unwrap_or_default(),
        }
    }

    /// The compiled program (for its type information).
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Runs the program on a target: the value of its last expression, or why it did not finish.
    pub fn resolve(&mut self, target: &mut TargetValue) -> Result<Value, RunError> {
        let result = self.runtime.resolve(target, &self.program, &self.timezone);
        self.runtime.clear();
        result.map_err(RunError::from)
    }
}

impl From<Terminate> for RunError {
    fn from(t: Terminate) -> Self {
        match t {
            Terminate::Abort(e) => RunError::Abort(e.to_string()),
            Terminate::Error(e) => RunError::Error(e.to_string()),
            Terminate::Interrupted => RunError::Error("execution interrupted".into()),
        }
    }
}

/// Why a program did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunError {
    /// `abort` (or an unhandled fallible expression), with its message.
    Abort(String),
    /// A runtime error, with its message.
    Error(String),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Abort(m) => write!(f, "aborted: {m}"),
            RunError::Error(m) => write!(f, "runtime error: {m}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use airtruct_sdk::Message;

    #[test]
    fn registered_functions_are_unique() {
        let names = function_names();
        let mut dedup = names.clone();
        dedup.dedup();
        assert_eq!(names, dedup);
    }

    #[test]
    fn raw_payload_round_trip() {
        let (v, json) = payload_to_value(b"hello world");
        assert!(!json);
        assert_eq!(value_to_payload(&v, json).unwrap(), b"hello world");
        let (v, json) = payload_to_value(br#""a json string""#);
        assert!(json);
        assert_eq!(value_to_payload(&v, json).unwrap(), br#""a json string""#);
    }

    #[test]
    fn unchanged_metadata_is_detected() {
        let mut m = Metadata::new();
        m.insert("a", "1");
        m.insert("b", "2");
        let v = metadata_to_value(&m);
        assert!(metadata_unchanged(&m, &v));
        let Value::Object(mut map) = v else {
            unreachable!()
        };
        map.insert("a".into(), Value::Integer(1));
        assert!(!metadata_unchanged(&m, &Value::Object(map.clone())));
        map.insert("a".into(), Value::from("1"));
        map.insert("c".into(), Value::from("3"));
        assert!(!metadata_unchanged(&m, &Value::Object(map)));
    }

    #[test]
    fn metadata_is_made_only_for_programs_that_use_it() {
        for (source, used) in [
            (".a = 1", false),
            (".a = upcase!(.name)\ndel(.b)", false),
            (".k = %kafka_key", true),
            ("%x = 1", true),
            ("del(%x)", true),
            (". = %", true),
            ("% = {}", true),
            (".m = merge({}, %)", true),
        ] {
            assert_eq!(Vrl::new(source).unwrap().metadata_used, used, "{source}");
        }
        // A program that does not use `%` leaves the metadata as it was.
        let mut msg = Message::new(r#"{"a": 0}"#);
        msg.metadata.insert("kafka_key", "k1");
        let run = |source: &str, msg: Message| {
            let config = serde_json::to_string(source).unwrap();
            match Steps::from_config(StepKind::Mapping, &config)
                .unwrap()
                .run(msg)
            {
                Outcome::Keep(m) => m,
                other => panic!("{other:?}"),
            }
        };
        let msg = run(".a = 1", msg);
        assert_eq!(msg.metadata.get("kafka_key"), Some("k1"));
        assert_eq!(msg.payload, br#"{"a":1}"#);
        // One that does sees it and changes it.
        let msg = run("%kafka_key = upcase!(%kafka_key)", msg);
        assert_eq!(msg.metadata.get("kafka_key"), Some("K1"));
    }

    #[test]
    fn metadata_values_become_strings() {
        let mut map = ObjectMap::new();
        map.insert("n".into(), Value::Integer(3));
        map.insert("s".into(), Value::from("x"));
        map.insert("gone".into(), Value::Null);
        let m = value_to_metadata(&Value::Object(map)).unwrap();
        assert_eq!(m.get("n"), Some("3"));
        assert_eq!(m.get("s"), Some("x"));
        assert_eq!(m.get("gone"), None);
    }
}

/// VRL allocates many small values per event: talc is markedly faster at that than the target's default allocator.
#[cfg(target_family = "wasm")]
#[global_allocator]
static ALLOCATOR: talc::TalckWasm = unsafe { talc::TalckWasm::new_global() };
