//! The shape of a stream: `input`, optional `buffer`, `pipeline` (batching, threads, processors), `output` and
//! `on_error`, each component written as `kind: {options}`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Duration, ValidationError, from_value, join_path};

/// A stream's whole configuration, as `airtruct run` reads it and the API stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamConfig {
    /// Where messages come from.
    pub input: Component,
    /// An optional buffer between the input and the processors.
    pub buffer: Option<Component>,
    /// Batching, threads and the ordered processors.
    pub pipeline: Pipeline,
    /// Where messages go.
    pub output: Component,
    /// What happens to a message that failed.
    pub on_error: ErrorPolicy,
    /// On how many workers the stream runs at once (its input splits the work).
    pub replicas: u32,
    /// The fraction of messages whose journey through the steps is kept (`trace: {sample: 0.01}`).
    pub trace: Option<f64>,
    /// The resources its processors are granted by name (`resources: {caches, sql, http, rate_limits}`), as
    /// written: the registry's resource support checks them.
    pub resources: Option<Value>,
}

/// One component: its kind and its options, written `kind: options`.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    /// The kind (`file`, `mapping`, `kafka`).
    pub kind: String,
    /// The options as written (an object, or for some processors a string).
    pub options: Value,
    /// Where it sits in the config (`pipeline.processors[0]`), for error paths.
    pub path: String,
}

impl Component {
    /// Reads `{kind: options}` at `path`.
    pub fn parse(path: &str, value: &Value) -> Result<Self, ValidationError> {
        let Value::Object(map) = value else {
            return Err(ValidationError::new(
                path,
                format!(
                    "expected a component written as `kind: {{options}}`, found {}",
                    kind_of(value)
                ),
            ));
        };
        let mut it = map.iter();
        match (it.next(), it.next()) {
            (Some((kind, options)), None) => Ok(Self {
                kind: kind.clone(),
                options: options.clone(),
                path: path.to_string(),
            }),
            (None, _) => Err(ValidationError::new(
                path,
                "expected one key naming the component kind, found none",
            )),
            (Some(_), Some(_)) => Err(ValidationError::new(
                path,
                format!(
                    "expected one key naming the component kind, found {}: {}",
                    map.len(),
                    map.keys()
                        .map(|k| format!("\"{k}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    /// The path of this component's options (`pipeline.processors[0].mapping`).
    pub fn options_path(&self) -> String {
        join_path(&self.path, &self.kind)
    }

    /// `{kind: options}`.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert(self.kind.clone(), self.options.clone());
        Value::Object(m)
    }
}

/// How messages are grouped into batches before the processors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct BatchPolicy {
    /// Most messages in a batch.
    #[serde(default = "default_batch_size")]
    pub size: usize,
    /// Longest a batch waits to fill before it goes on anyway. A ceiling, not a wait: a batch goes on as soon as
    /// the input has nothing more ready and the processors have nothing queued.
    #[serde(default = "default_batch_period")]
    pub period: Duration,
}

fn default_batch_size() -> usize {
    256
}

fn default_batch_period() -> Duration {
    Duration(std::time::Duration::from_millis(10))
}

impl Default for BatchPolicy {
    fn default() -> Self {
        Self {
            size: default_batch_size(),
            period: default_batch_period(),
        }
    }
}

/// The processing part of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// Batching.
    pub batch: BatchPolicy,
    /// Processor threads for this stream; each has its own instance of every processor.
    pub threads: usize,
    /// The processors, in order.
    pub processors: Vec<Component>,
}

/// What happens to failed messages.
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorPolicy {
    /// Drop them and count them (the default).
    Drop,
    /// Stop the stream; nothing after the failure is acknowledged.
    Stop,
    /// Write them to this output, with the error in the `error` metadata key.
    DeadLetter(Component),
}

/// A count from 1 to 64 (threads, replicas), 1 when absent.
fn count_1_to_64(v: Option<&Value>, path: &str, errors: &mut Vec<ValidationError>) -> u32 {
    match v {
        None | Some(Value::Null) => 1,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=u64::from(crate::MAX_COUNT)).contains(&n) => n as u32,
            _ => {
                errors.push(ValidationError::new(
                    path,
                    "must be a whole number from 1 to 64",
                ));
                1
            }
        },
    }
}

const PIPELINE_KEYS: &[&str] = &["batch", "threads", "processors"];

/// Reads `pipeline`, each field on its own, so that one mistake does not hide the others: the processors are
/// returned (and later checked) even when `batch` or `threads` is wrong.
fn parse_pipeline(v: &Value, errors: &mut Vec<ValidationError>) -> Option<Pipeline> {
    let Value::Object(map) = v else {
        errors.push(ValidationError::new(
            "pipeline",
            format!("expected an object, found {}", kind_of(v)),
        ));
        return None;
    };
    for key in map.keys().filter(|k| !PIPELINE_KEYS.contains(&k.as_str())) {
        errors.push(ValidationError::new(
            format!("pipeline.{key}"),
            format!(
                "unknown field \"{key}\", expected one of {}",
                PIPELINE_KEYS.join(", ")
            ),
        ));
    }
    let batch = match map.get("batch") {
        None | Some(Value::Null) => BatchPolicy::default(),
        Some(b) => from_value::<BatchPolicy>("pipeline.batch", b).unwrap_or_else(|e| {
            errors.push(e);
            BatchPolicy::default()
        }),
    };
    if batch.size == 0 {
        errors.push(ValidationError::new(
            "pipeline.batch.size",
            "must be at least 1",
        ));
    }
    let threads = count_1_to_64(map.get("threads"), "pipeline.threads", errors) as usize;
    let processors = match map.get("processors") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                Component::parse(&format!("pipeline.processors[{i}]"), p)
                    .map_err(|e| errors.push(e))
                    .ok()
            })
            .collect(),
        Some(other) => {
            errors.push(ValidationError::new(
                "pipeline.processors",
                format!("expected a list of processors, found {}", kind_of(other)),
            ));
            Vec::new()
        }
    };
    Some(Pipeline {
        batch,
        threads,
        processors,
    })
}

const TOP_KEYS: &[&str] = &[
    "input",
    "buffer",
    "pipeline",
    "output",
    "on_error",
    "replicas",
    "trace",
    "resources",
    "tests",
];

/// Reads `trace: {sample: F}`, F above 0 and at most 1.
fn parse_trace(v: Option<&Value>, errors: &mut Vec<ValidationError>) -> Option<f64> {
    let v = v.filter(|v| !v.is_null())?;
    let Some(map) = v.as_object() else {
        errors.push(ValidationError::new(
            "trace",
            "expected `{sample: F}`, the fraction of messages traced",
        ));
        return None;
    };
    for key in map.keys().filter(|k| *k != "sample") {
        errors.push(ValidationError::new(
            format!("trace.{key}"),
            format!("unknown field \"{key}\", expected sample"),
        ));
    }
    match map.get("sample").and_then(Value::as_f64) {
        Some(f) if f > 0.0 && f <= 1.0 => Some(f),
        _ => {
            errors.push(ValidationError::new(
                "trace.sample",
                "must be a number above 0 and at most 1 (0.01 traces one message in a hundred)",
            ));
            None
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Refuses YAML anchors (`&name`) and aliases (`*name`), for configs sent to the API: a few kilobytes of aliases
/// can expand to billions of values. A node starting with `&` or `*` is one (a plain scalar cannot start so);
/// quoted strings, comments and block scalars (`|`, `>`) are skipped.
pub fn refuse_yaml_aliases(text: &str) -> Result<(), ValidationError> {
    let mut block_indent: Option<usize> = None;
    for (i, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        if let Some(b) = block_indent {
            if line.trim().is_empty() || indent > b {
                continue;
            }
            block_indent = None;
        }
        let mut quote: Option<char> = None;
        let mut prev = ' ';
        for c in line.chars() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None => {
                    if c == '#' && (prev == ' ' || prev == '\t') {
                        break;
                    }
                    if (c == '"' || c == '\'') && matches!(prev, ' ' | ':' | '-' | '[' | '{' | ',')
                    {
                        quote = Some(c);
                    } else if (c == '&' || c == '*')
                        && matches!(prev, ' ' | '\t' | '[' | '{' | ',')
                        && starts_node(line, c)
                    {
                        return Err(ValidationError::new(
                            "",
                            format!(
                                "line {}: YAML anchors and aliases (`&name`, `*name`) are not accepted in configs \
                                 sent to the API: write the values out",
                                i + 1
                            ),
                        ));
                    }
                }
            }
            prev = c;
        }
        let t = line.trim_end();
        if t.ends_with(['|', '>'])
            || t.ends_with("|-")
            || t.ends_with("|+")
            || t.ends_with(">-")
            || t.ends_with(">+")
        {
            block_indent = Some(indent);
        }
    }
    Ok(())
}

/// Whether an `&` or `*` in `line` begins a node: after a key's `: `, a list's `- `, a flow `[`, `{` or `,`, or
/// at the start of the line.
fn starts_node(line: &str, c: char) -> bool {
    let mut rest = line;
    while let Some(at) = rest.find(c) {
        let before = rest[..at].trim_end();
        let after = &rest[at + 1..];
        let named = after.chars().next().is_some_and(|n| !n.is_whitespace());
        if named && (before.is_empty() || before.ends_with([':', '-', '[', '{', ','])) {
            return true;
        }
        rest = after;
    }
    false
}

/// Reads a stream config from YAML or JSON text, after `${ENV}` interpolation with `lookup`.
pub fn parse_text(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Value, Vec<ValidationError>> {
    let text = crate::interpolate_env(text, lookup)?;
    serde_yaml::from_str::<Value>(&text)
        .map_err(|e| vec![ValidationError::new("", format!("invalid YAML: {e}"))])
}

/// The parts of a stream config that could be read, whatever else was wrong: validation goes on to check them,
/// so that every problem is reported at once.
#[derive(Debug, Clone, Default)]
pub struct PartialStream {
    pub input: Option<Component>,
    pub buffer: Option<Component>,
    pub pipeline: Option<Pipeline>,
    pub output: Option<Component>,
    pub on_error: Option<ErrorPolicy>,
    pub replicas: u32,
    pub trace: Option<f64>,
    pub resources: Option<Value>,
    /// The stream's test cases (`tests:`), for `airtruct test`; a running stream ignores them.
    pub tests: Vec<crate::TestCase>,
}

/// Reads the skeleton of a stream config, reporting every structural problem at once. Component options are
/// checked later, by the registry that knows each kind.
pub fn parse_stream(value: &Value) -> Result<StreamConfig, Vec<ValidationError>> {
    let (partial, errors) = parse_stream_partial(value);
    match partial {
        PartialStream {
            input: Some(input),
            output: Some(output),
            pipeline: Some(pipeline),
            on_error: Some(on_error),
            buffer,
            replicas,
            trace,
            resources,
            tests: _,
        } if errors.is_empty() => Ok(StreamConfig {
            input,
            buffer,
            pipeline,
            output,
            on_error,
            replicas,
            trace,
            resources,
        }),
        _ => Err(errors),
    }
}

/// Like [`parse_stream`], but returns what could be read along with the problems.
pub fn parse_stream_partial(value: &Value) -> (PartialStream, Vec<ValidationError>) {
    let mut errors = Vec::new();
    let Value::Object(map) = value else {
        let e = ValidationError::new(
            "",
            format!("a stream config is an object, found {}", kind_of(value)),
        );
        return (PartialStream::default(), vec![e]);
    };
    for key in map.keys().filter(|k| !TOP_KEYS.contains(&k.as_str())) {
        errors.push(ValidationError::new(
            key.as_str(),
            format!(
                "unknown field \"{key}\", expected one of {}",
                TOP_KEYS.join(", ")
            ),
        ));
    }
    let mut required = |key: &str| -> Option<Component> {
        match map.get(key) {
            None | Some(Value::Null) => {
                errors.push(ValidationError::new(key, "required"));
                None
            }
            Some(v) => Component::parse(key, v).map_err(|e| errors.push(e)).ok(),
        }
    };
    let input = required("input");
    let output = required("output");
    let buffer = match map.get("buffer") {
        None | Some(Value::Null) => None,
        Some(v) => Component::parse("buffer", v)
            .map_err(|e| errors.push(e))
            .ok(),
    };
    let pipeline = match map.get("pipeline") {
        None | Some(Value::Null) => Some(Pipeline {
            batch: BatchPolicy::default(),
            threads: 1,
            processors: vec![],
        }),
        Some(v) => parse_pipeline(v, &mut errors),
    };
    let on_error = match map.get("on_error") {
        None | Some(Value::Null) => Some(ErrorPolicy::Drop),
        Some(Value::String(s)) if s == "drop" => Some(ErrorPolicy::Drop),
        Some(Value::String(s)) if s == "stop" => Some(ErrorPolicy::Stop),
        Some(Value::Object(m)) if m.len() == 1 && m.contains_key("dead_letter") => {
            Component::parse("on_error.dead_letter", &m["dead_letter"])
                .map(ErrorPolicy::DeadLetter)
                .map_err(|e| errors.push(e))
                .ok()
        }
        Some(_) => {
            errors.push(ValidationError::new(
                "on_error",
                "expected \"drop\", \"stop\" or `dead_letter: {<output kind>: {options}}`",
            ));
            None
        }
    };
    let replicas = count_1_to_64(map.get("replicas"), "replicas", &mut errors);
    let trace = parse_trace(map.get("trace"), &mut errors);
    let resources = map.get("resources").filter(|v| !v.is_null()).cloned();
    let processors = pipeline.as_ref().map_or(0, |p| p.processors.len());
    let (tests, test_errors) = crate::parse_cases(map.get("tests"), processors);
    errors.extend(test_errors);
    (
        PartialStream {
            input,
            buffer,
            pipeline,
            output,
            on_error,
            replicas,
            trace,
            resources,
            tests,
        },
        errors,
    )
}

impl StreamConfig {
    /// The config as a JSON value, in the shape it was read from.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("input".into(), self.input.to_value());
        if let Some(b) = &self.buffer {
            m.insert("buffer".into(), b.to_value());
        }
        m.insert(
            "pipeline".into(),
            serde_json::json!({
                "batch": self.pipeline.batch,
                "threads": self.pipeline.threads,
                "processors": self.pipeline.processors.iter().map(Component::to_value).collect::<Vec<_>>(),
            }),
        );
        m.insert("output".into(), self.output.to_value());
        m.insert(
            "on_error".into(),
            match &self.on_error {
                ErrorPolicy::Drop => "drop".into(),
                ErrorPolicy::Stop => "stop".into(),
                ErrorPolicy::DeadLetter(c) => serde_json::json!({ "dead_letter": c.to_value() }),
            },
        );
        if self.replicas != 1 {
            m.insert("replicas".into(), self.replicas.into());
        }
        if let Some(sample) = self.trace {
            m.insert("trace".into(), serde_json::json!({ "sample": sample }));
        }
        if let Some(r) = &self.resources {
            m.insert("resources".into(), r.clone());
        }
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_and_aliases_are_refused_but_not_multiplication_or_quoted_stars() {
        let bomb = "a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b]\n";
        assert!(
            refuse_yaml_aliases(bomb)
                .unwrap_err()
                .message
                .starts_with("line 1")
        );
        assert!(refuse_yaml_aliases("- *x\n").is_err());
        for fine in [
            "pipeline:\n  processors:\n    - mapping: .total = .qty * .price\n",
            "input: {generate: {payload: '*not an alias'}}\n",
            "x: \"&nope\" # a comment with *star\n",
            "mapping: |\n  .a = 2 * 3\n  *b\nnext: 1\n",
        ] {
            assert_eq!(refuse_yaml_aliases(fine), Ok(()), "{fine}");
        }
    }

    fn parse(yaml: &str) -> Result<StreamConfig, Vec<ValidationError>> {
        parse_stream(&parse_text(yaml, |_| None).unwrap())
    }

    #[test]
    fn reads_the_documented_example() {
        let c = parse(
            r#"
input:
  file: { path: in.jsonl, codec: lines }
pipeline:
  batch: { size: 500, period: 50ms }
  threads: 2
  processors:
    - mapping: |
        .name = upcase!(.name)
    - filter: '.qty > 0'
output:
  file: { path: out.jsonl }
on_error: drop
"#,
        )
        .unwrap();
        assert_eq!(c.input.kind, "file");
        assert_eq!(c.pipeline.threads, 2);
        assert_eq!(c.pipeline.batch.size, 500);
        assert_eq!(
            c.pipeline.batch.period.0,
            std::time::Duration::from_millis(50)
        );
        assert_eq!(
            c.pipeline.processors[1].options,
            Value::String(".qty > 0".into())
        );
        assert_eq!(
            c.pipeline.processors[1].options_path(),
            "pipeline.processors[1].filter"
        );
        assert_eq!(parse_stream(&c.to_value()).unwrap(), c);
    }

    #[test]
    fn lists_every_structural_problem_with_its_path() {
        let errs = parse(
            r#"
inptu: {}
pipeline:
  threads: 0
  batch: { period: soon }
  processors:
    - { mapping: ".a = 1", filter: "true" }
on_error: explode
"#,
        )
        .unwrap_err();
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"inptu"), "{errs:?}");
        assert!(paths.contains(&"input"), "{errs:?}");
        assert!(paths.contains(&"output"), "{errs:?}");
        assert!(paths.contains(&"pipeline.batch.period"), "{errs:?}");
        assert!(paths.contains(&"on_error"), "{errs:?}");
    }

    #[test]
    fn reads_a_dead_letter_policy() {
        let c = parse("input: {stdin: {}}\noutput: {stdout: {}}\non_error: {dead_letter: {file: {path: bad.jsonl}}}")
            .unwrap();
        assert!(matches!(c.on_error, ErrorPolicy::DeadLetter(ref o) if o.kind == "file"));
    }
}
