//! Mappings and filters run in sequence on one VRL target: the `mapping` and `filter` processors, and
//! consecutive ones fused into one call.
//!
//! A stream's runtime fuses consecutive `mapping` and `filter` processors at the top of a pipeline into one
//! call of the first one's component, configured with `{"steps": [{"mapping": <its config>}, {"filter": ...}]}`
//! (a form the processors' schemas do not offer users). The payload is parsed once, each step runs on the same
//! target, the first filter that says `false` stops the message, and what is kept is serialized once.
//!
//! It behaves as the processors one after the other would: between two steps the target is made what writing
//! it out and reading it back would make it (timestamps and regexes become strings, metadata values strings, a
//! raw-text result read again as JSON when it is JSON), and a message that fails at a step carries what that
//! step was given (a mapping that may fail or abort after another mapping has changed the message works on a
//! copy).
//!
//! The host reads a fused call's results by these marks: a failed message's error is `"\0<step>\0<error>"`, and
//! the last message of the results (no payload, no metadata) carries the drops of each step in its error,
//! `"\0drops\0<n0>,<n1>,..."`. A processor configured the usual way returns its results unmarked.

use airtruct_sdk::{ConfigError, ConfigErrors, Message, Metadata};
use vrl::compiler::TargetValue;
use vrl::path::PathPrefix;
use vrl::value::{ObjectMap, Secrets, Value};

use crate::condition::{compile_condition, condition_result, mapping_error};
use crate::{Vrl, kind_name, metadata_to_value, metadata_unchanged, payload_to_value};

/// The mark that starts a fused call's marked errors.
pub const MARK: char = '\0';
/// What follows [`MARK`] in the error of a fused call's summary (its last message).
pub const DROPS: &str = "drops";

/// What a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Mapping,
    Filter,
}

impl StepKind {
    /// The processor's name.
    pub fn name(self) -> &'static str {
        match self {
            StepKind::Mapping => "mapping",
            StepKind::Filter => "filter",
        }
    }

    /// The option that holds its VRL text in the object form, and what that text is called.
    fn field(self) -> (&'static str, &'static str) {
        match self {
            StepKind::Mapping => ("source", "program"),
            StepKind::Filter => ("condition", "condition"),
        }
    }
}

/// One step: a compiled program and what the runner needs to know of it.
struct Step {
    kind: StepKind,
    vrl: Vrl,
    /// A mapping that may fail or abort, or replace `%` as a whole: when a mapping before it changed the
    /// target, it runs on a copy kept to give back should it fail.
    keeps_copy: bool,
}

/// What happened to one message.
#[derive(Debug)]
pub enum Outcome {
    /// Every step kept it: here it is, written back.
    Keep(Message),
    /// The filter at this step dropped it.
    Drop(usize),
    /// It failed at this step, with this error; the message is what that step was given.
    Fail(Message, usize, String),
}

/// Mappings and filters run in order on each message.
pub struct Steps {
    steps: Vec<Step>,
    /// Whether any step reads or writes `%`: when none does, the metadata is not made into a VRL object.
    metadata_used: bool,
    /// Whether results are marked for the host (configured with `{"steps": [...]}`).
    marked: bool,
}

/// Reads a `mapping` or `filter` configuration: its VRL text, bare or in an object, and the path of that text.
fn vrl_text(kind: StepKind, config: &serde_json::Value) -> Result<(String, String), ConfigError> {
    let (field, what) = kind.field();
    let (text, path) = match config {
        serde_json::Value::String(s) => (s.clone(), String::new()),
        serde_json::Value::Object(o)
            if o.len() == 1 && o.get(field).is_some_and(|v| v.is_string()) =>
        {
            let text = o.get(field).and_then(|v| v.as_str()).unwrap_or_default();
            (text.to_string(), format!(".{field}"))
        }
        _ => {
            return Err(ConfigError::new(
                "",
                format!(
                    "expected the VRL {what} as a string, or an object {{\"{field}\": \"...\"}}"
                ),
            ));
        }
    };
    if text.trim().is_empty() {
        return Err(ConfigError::new(path, format!("the VRL {what} is empty")));
    }
    Ok((text, path))
}

/// Compiles one step; the error is at `path`, the path of its VRL text.
fn compile_step(kind: StepKind, text: &str, path: &str) -> Result<Step, ConfigError> {
    let vrl = match kind {
        StepKind::Mapping => Vrl::new(text),
        StepKind::Filter => compile_condition(text).map(Vrl::from_program),
    }
    .map_err(|e| ConfigError::new(path, e))?;
    let info = vrl.program().info();
    let replaces_metadata = info
        .target_assignments
        .iter()
        .any(|p| p.prefix == PathPrefix::Metadata && p.path.is_root());
    Ok(Step {
        kind,
        keeps_copy: kind == StepKind::Mapping
            && (info.fallible || info.abortable || replaces_metadata),
        vrl,
    })
}

impl Steps {
    /// Builds the processor of `kind` from its configuration (JSON text), or, from `{"steps": [...]}`, the
    /// fused steps the runtime asks for.
    pub fn from_config(kind: StepKind, config: &str) -> Result<Self, ConfigErrors> {
        let value: serde_json::Value = serde_json::from_str(config).map_err(|e| {
            vec![ConfigError::new(
                "",
                format!("the configuration is not JSON: {e}"),
            )]
        })?;
        let Some(list) = value.as_object().and_then(|o| o.get("steps")) else {
            let (text, path) = vrl_text(kind, &value).map_err(|e| vec![e])?;
            let step = compile_step(kind, &text, &path).map_err(|e| vec![e])?;
            return Ok(Self::new(vec![step], false));
        };
        let items = match list.as_array() {
            Some(items) if !items.is_empty() && value.as_object().is_some_and(|o| o.len() == 1) => {
                items
            }
            _ => {
                return Err(vec![ConfigError::new(
                    ".steps",
                    "expected a list of {\"mapping\": ...} or {\"filter\": ...} steps",
                )]);
            }
        };
        let mut steps = Vec::with_capacity(items.len());
        let mut errors = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!(".steps[{i}]");
            let step = item.as_object().filter(|o| o.len() == 1).and_then(|o| {
                let (name, config) = o.iter().next()?;
                let kind = [StepKind::Mapping, StepKind::Filter]
                    .into_iter()
                    .find(|k| k.name() == name)?;
                Some((kind, name, config))
            });
            let Some((kind, name, config)) = step else {
                errors.push(ConfigError::new(
                    at,
                    "expected {\"mapping\": ...} or {\"filter\": ...}",
                ));
                continue;
            };
            let at = format!("{at}.{name}");
            match vrl_text(kind, config)
                .and_then(|(text, path)| compile_step(kind, &text, &format!("{at}{path}")))
            {
                Ok(step) => steps.push(step),
                Err(mut e) => {
                    if !e.path.starts_with(&at) {
                        e.path = format!("{at}{}", e.path);
                    }
                    errors.push(e);
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self::new(steps, true))
    }

    fn new(steps: Vec<Step>, marked: bool) -> Self {
        Self {
            metadata_used: steps.iter().any(|s| s.vrl.metadata_used),
            steps,
            marked,
        }
    }

    /// How many steps there are.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether there are none (never, once built).
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Runs every message through the steps: what is kept and what failed, in order; for fused steps, marked
    /// and followed by the summary (see the module's documentation).
    pub fn process(&mut self, batch: Vec<Message>) -> Vec<Message> {
        let mut out = Vec::with_capacity(batch.len() + 1);
        let mut drops = vec![0u64; self.steps.len()];
        for msg in batch {
            match self.run(msg) {
                Outcome::Keep(m) => out.push(m),
                Outcome::Drop(at) => drops[at] += 1,
                Outcome::Fail(mut m, at, e) => {
                    m.error = Some(if self.marked {
                        format!("{MARK}{at}{MARK}{e}")
                    } else {
                        e
                    });
                    out.push(m);
                }
            }
        }
        if self.marked {
            let counts: Vec<String> = drops.iter().map(u64::to_string).collect();
            out.push(Message {
                payload: Vec::new(),
                metadata: Metadata::new(),
                error: Some(format!("{MARK}{DROPS}{MARK}{}", counts.join(","))),
            });
        }
        out
    }

    /// Runs one message through the steps.
    pub fn run(&mut self, msg: Message) -> Outcome {
        self.run_until(msg, self.steps.len())
    }

    /// Runs one message through the first `end` steps (one or more).
    fn run_until(&mut self, mut msg: Message, end: usize) -> Outcome {
        let metadata_used = self.metadata_used;
        let (value, was_json) = payload_to_value(&msg.payload);
        let metadata = if metadata_used {
            metadata_to_value(&msg.metadata)
        } else {
            Value::Object(ObjectMap::new())
        };
        let mut now = Now {
            target: TargetValue {
                value,
                metadata,
                secrets: Secrets::default(),
            },
            was_json,
            raw: None,
            metadata_changed: false,
        };
        // Whether a mapping has run: from then on `msg` no longer holds what the next step is given.
        let mut mapped = false;
        let last = end - 1;
        let mut failure = None;
        for (at, step) in self.steps[..end].iter_mut().enumerate() {
            match step.kind {
                StepKind::Filter => match condition_result(step.vrl.resolve(&mut now.target)) {
                    Ok(true) => {}
                    Ok(false) => return Outcome::Drop(at),
                    Err(e) => {
                        failure = Some((at, e, false));
                        break;
                    }
                },
                StepKind::Mapping => {
                    let copy = (step.keeps_copy && mapped).then(|| {
                        let metadata = if metadata_used {
                            now.target.metadata.clone()
                        } else {
                            Value::Null
                        };
                        (now.target.value.clone(), metadata)
                    });
                    let ran = step.vrl.resolve(&mut now.target).map_err(mapping_error);
                    let ran = ran.and_then(|_| {
                        now.settle(step.vrl.metadata_used, at < last)
                            .map_err(|e| format!("mapping failed: {e}"))
                    });
                    match ran {
                        Ok(()) => {
                            mapped = true;
                            if step.vrl.metadata_used {
                                now.metadata_changed |=
                                    !metadata_unchanged(&msg.metadata, &now.target.metadata);
                            }
                        }
                        Err(e) => {
                            // Without a copy, what this step was given is lost (a failure VRL did not
                            // foresee): the steps before it make it again.
                            let lost = mapped && copy.is_none();
                            if let Some((value, metadata)) = copy {
                                now.target.value = value;
                                if metadata_used {
                                    now.target.metadata = metadata;
                                }
                            }
                            failure = Some((at, e, lost));
                            break;
                        }
                    }
                }
            }
        }
        match failure {
            None => {
                if mapped && let Err(e) = now.write(&mut msg) {
                    return Outcome::Fail(msg, last, format!("mapping failed: {e}"));
                }
                Outcome::Keep(msg)
            }
            Some((at, error, true)) => {
                let original = msg.clone();
                match self.run_until(msg, at) {
                    Outcome::Keep(given) => Outcome::Fail(given, at, error),
                    _ => Outcome::Fail(original, at, error),
                }
            }
            // It leaves with what this step was given.
            Some((at, error, false)) => {
                if mapped && let Err(e) = now.write(&mut msg) {
                    return Outcome::Fail(msg, at, format!("mapping failed: {e}"));
                }
                Outcome::Fail(msg, at, error)
            }
        }
    }
}

/// A message between steps: the target, and how to write it out.
struct Now {
    target: TargetValue,
    /// Whether the payload is JSON (a payload that is not is a string, written back raw).
    was_json: bool,
    /// The bytes the payload is written as when they are not the target's JSON: a mapping's raw-text result that
    /// the next step read as JSON.
    raw: Option<Vec<u8>>,
    /// Whether a mapping changed the metadata (it is written back, sorted, even if a later one undid that).
    metadata_changed: bool,
}

impl Now {
    /// Makes the target what the next step would read had this mapping's result been written out: after a
    /// mapping that uses `%`, metadata values as strings (`null`s dropped; `%` not an object is this mapping's
    /// error); and, with `payload` (a step follows), a raw-text result read as JSON when it is JSON, timestamps
    /// and regexes as the strings they are written as, infinite numbers as `null`, text that is not UTF-8 made
    /// so.
    fn settle(&mut self, metadata: bool, payload: bool) -> Result<(), String> {
        if metadata {
            settle_metadata(&mut self.target.metadata)?;
        }
        // What this mapping made is what is written.
        self.raw = None;
        if !payload {
            return Ok(());
        }
        if !self.was_json {
            let raw = match &self.target.value {
                Value::Bytes(b) => Some(b.as_ref()),
                Value::String(s) => Some(s.as_bytes().as_ref()),
                _ => None,
            };
            match raw {
                // Written as it is; the next step parses it.
                Some(raw) => {
                    if let Ok(v) = serde_json::from_slice::<Value>(raw) {
                        self.raw = Some(raw.to_vec());
                        self.target.value = v;
                        self.was_json = true;
                    }
                    return Ok(());
                }
                None => self.was_json = true,
            }
        }
        settle_value(&mut self.target.value);
        Ok(())
    }

    /// Writes the target into `msg` (unchanged on error).
    fn write(&self, msg: &mut Message) -> Result<(), String> {
        let payload = match &self.raw {
            Some(raw) => raw.clone(),
            None => crate::value_to_payload(&self.target.value, self.was_json)?,
        };
        if self.metadata_changed {
            msg.metadata = crate::value_to_metadata(&self.target.metadata)?;
        }
        msg.payload = payload;
        Ok(())
    }
}

/// A value as writing it as JSON and reading it back makes it.
fn settle_value(v: &mut Value) {
    match v {
        Value::Object(map) => map.values_mut().for_each(settle_value),
        Value::Array(items) => items.iter_mut().for_each(settle_value),
        Value::Bytes(b) if std::str::from_utf8(b).is_err() => {
            *v = Value::from(String::from_utf8_lossy(b).into_owned());
        }
        // JSON has no infinity: it is written as `null`.
        Value::Float(f) if !f.is_finite() => *v = Value::Null,
        Value::Timestamp(_) | Value::Regex(_) => {
            if let Ok(text) = serde_json::to_string(v)
                && let Ok(back) = serde_json::from_str(&text)
            {
                *v = back;
            }
        }
        _ => {}
    }
}

/// Metadata as writing it and reading it back makes it: an object of strings.
fn settle_metadata(m: &mut Value) -> Result<(), String> {
    match m {
        Value::Null => *m = Value::Object(ObjectMap::new()),
        Value::Object(map) => {
            map.retain(|_, v| !matches!(v, Value::Null));
            for v in map.values_mut() {
                let text = match &*v {
                    Value::String(_) => continue,
                    Value::Bytes(b) if std::str::from_utf8(b).is_ok() => continue,
                    other => other.to_string_lossy().into_owned(),
                };
                *v = Value::from(text);
            }
        }
        other => {
            return Err(format!(
                "metadata (`%`) must be an object, got {}",
                kind_name(other)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "steps_tests.rs"]
mod tests;
