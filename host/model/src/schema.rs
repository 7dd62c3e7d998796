//! The JSON Schema of a whole stream config, for the API (`GET /api/v1/schema/stream`) and the console's settings
//! form. Parsing is [`crate::parse_stream_partial`], which reports every problem at once; this type only describes
//! the same shape, with the same defaults and bounds (a test holds the two together).

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::BatchPolicy;

/// The most threads or replicas a stream may ask for.
pub const MAX_COUNT: u32 = 64;

/// A stream: one input, an optional buffer, the pipeline of processors, one output, and what happens to failed
/// messages.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
#[schemars(title = "stream")]
pub struct StreamSchema {
    /// Where messages come from: one input kind with its options (`file: {path: in.jsonl}`); the kinds are in
    /// the components catalogue.
    pub input: Map<String, Value>,
    /// An optional buffer between the input and the processors (`memory`, `sqlite`, `system_window`).
    #[serde(default)]
    pub buffer: Option<Map<String, Value>>,
    /// Batching, threads and the ordered processors.
    #[serde(default)]
    pub pipeline: PipelineSchema,
    /// Where messages go: one output kind with its options.
    pub output: Map<String, Value>,
    /// What happens to a message that failed: `drop` (count it and drop it, the default), `stop` (stop the
    /// stream at the first failure) or `{dead_letter: {<output>}}` (write it to an output, with the error in its
    /// `error` metadata).
    #[serde(default)]
    pub on_error: Option<Value>,
    /// On how many workers the stream runs at once (its input splits the work), 1 to 64.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 64))]
    pub replicas: u32,
    /// Keep the journey of a fraction of the messages: each traced message gets a `trace_id` metadata value,
    /// and its payload and metadata at each step (where it was filtered out or failed) are kept for 15 minutes,
    /// the newest 1,000 journeys of the stream on each worker, found by the id or a metadata value.
    #[serde(default)]
    pub trace: Option<TraceSchema>,
    /// Resources the processors call through, declared once and granted by name: `caches` (`memory`, `redis`),
    /// `sql` connections, `http` grants (the hosts a processor may call) and `rate_limits` (`local`, `redis`).
    /// Their schema is the components catalogue's `resources`.
    #[serde(default)]
    pub resources: Option<Map<String, Value>>,
    /// Test cases for `airtruct test`, the API's `POST /api/v1/streams/tests` and the console: sample input
    /// messages and the messages expected (or VRL conditions on them) at the end or after a processor. A running
    /// stream ignores them.
    #[serde(default)]
    pub tests: Vec<crate::TestCase>,
}

/// Which messages are traced.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct TraceSchema {
    /// The fraction of messages traced, above 0 and at most 1 (0.01: one in a hundred).
    #[schemars(range(min = 0.0, max = 1.0))]
    pub sample: f64,
}

/// The processing part of a stream.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct PipelineSchema {
    /// How messages are grouped into batches for the processors.
    #[serde(default)]
    pub batch: BatchPolicy,
    /// Processor threads for this stream, each with its own instance of every processor, 1 to 64.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 64))]
    pub threads: u32,
    /// The processors, in order, each one kind with its options (`mapping: .name = upcase!(.name)`).
    #[serde(default)]
    pub processors: Vec<Map<String, Value>>,
}

impl Default for PipelineSchema {
    fn default() -> Self {
        Self {
            batch: BatchPolicy::default(),
            threads: 1,
            processors: Vec::new(),
        }
    }
}

fn one() -> u32 {
    1
}

/// The JSON Schema of a stream config, with every subschema inlined.
pub fn stream_schema() -> Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<StreamSchema>();
    serde_json::to_value(schema).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_gives_the_defaults_and_bounds_the_parser_applies() {
        let schema = stream_schema();
        let (parsed, errors) = crate::parse_stream_partial(&serde_json::json!({
            "input": {"stdin": {}}, "output": {"drop": {}}
        }));
        assert!(errors.is_empty(), "{errors:?}");
        let pipeline = parsed.pipeline.unwrap();
        let props = &schema["properties"];
        let p = &props["pipeline"]["properties"];
        assert_eq!(
            p["batch"]["properties"]["size"]["default"],
            pipeline.batch.size
        );
        assert_eq!(
            p["batch"]["properties"]["period"]["default"],
            serde_json::to_value(pipeline.batch.period).unwrap()
        );
        assert_eq!(p["threads"]["default"], pipeline.threads);
        assert_eq!(props["replicas"]["default"], parsed.replicas);
        for bounded in [&p["threads"], &props["replicas"]] {
            assert_eq!(bounded["minimum"], 1);
            assert_eq!(bounded["maximum"], MAX_COUNT);
        }
        // One past the bound is refused by the parser, with the same words.
        let (_, errors) = crate::parse_stream_partial(&serde_json::json!({
            "input": {"stdin": {}}, "output": {"drop": {}}, "replicas": MAX_COUNT + 1
        }));
        assert_eq!(errors[0].path, "replicas");
        assert!(schema["properties"]["input"]["description"].is_string());
        assert!(schema.to_string().find("$ref").is_none(), "{schema}");
    }
}
