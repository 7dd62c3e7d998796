//! The one validation of a stream config, behind `airtruct validate`, the API's validate endpoint and the save
//! check: the skeleton, every component's options, and every processor's `init` with its configuration.

use airtruct_engine::Engine;
use airtruct_model::{ErrorPolicy, StreamConfig, ValidationError, parse_stream_partial};
use serde_json::Value;

use crate::chain::ProcessorSpec;
use crate::registry::{
    BufferConfig, InputConfig, OutputConfig, Uploaded, builtin_component, resolve_processor,
};

/// A stream config that passed validation, with everything parsed and resolved, ready to run.
pub struct StreamPlan {
    pub config: StreamConfig,
    pub input: InputConfig,
    pub output: OutputConfig,
    pub dead_letter: Option<OutputConfig>,
    pub buffer: Option<BufferConfig>,
    pub processors: Vec<ProcessorSpec>,
    /// The stream's id when a worker runs it (an `http_server` input takes its requests by it).
    pub stream_id: Option<String>,
    /// The engine outputs that run wasm (`sql_insert`'s `args_mapping`) use.
    pub engine: Engine,
}

/// Validates a stream config (as a JSON value, after interpolation), returning every problem at once.
/// `uploaded` holds the uploaded components the config names (see [`crate::registry::uploaded_refs`]).
pub fn validate_stream(
    engine: &Engine,
    value: &Value,
    uploaded: &Uploaded,
) -> Result<StreamPlan, Vec<ValidationError>> {
    let (partial, mut errors) = parse_stream_partial(value);
    let input = partial
        .input
        .as_ref()
        .and_then(|c| InputConfig::parse(c).map_err(|e| errors.push(e)).ok());
    let output = partial
        .output
        .as_ref()
        .and_then(|c| OutputConfig::parse(c).map_err(|e| errors.push(e)).ok());
    let dead_letter = match &partial.on_error {
        Some(ErrorPolicy::DeadLetter(c)) => OutputConfig::parse(c).map_err(|e| errors.push(e)).ok(),
        _ => None,
    };
    let buffer_plan = partial
        .buffer
        .as_ref()
        .and_then(|c| BufferConfig::parse(c).map_err(|e| errors.extend(e)).ok());
    if let (Some(OutputConfig::SyncResponse(_)), Some(b)) = (&output, &buffer_plan)
        && b.acknowledges_early()
    {
        errors.push(ValidationError::new(
            "buffer",
            "a sync_response output answers callers when their message is delivered, but this buffer \
             acknowledges the input as soon as it holds a message: use no buffer, a memory buffer with \
             acknowledge: delivered, or a system_window",
        ));
    }
    let mut processors = Vec::new();
    let no_processors = Vec::new();
    let steps = partial
        .pipeline
        .as_ref()
        .map_or(&no_processors, |p| &p.processors);
    for c in steps {
        match resolve_processor(engine, c, uploaded) {
            Ok(spec) => {
                let schema_errors = check_described_schema(engine, &spec);
                if !schema_errors.is_empty() {
                    errors.extend(schema_errors);
                    continue;
                }
                match spec.instantiate(engine) {
                    Ok(_) => processors.push(spec),
                    Err(e) => errors.extend(e),
                }
            }
            Err(e) => errors.push(e),
        }
    }
    match (partial, input, output) {
        (
            airtruct_model::PartialStream {
                input: Some(input_c),
                output: Some(output_c),
                pipeline: Some(pipeline),
                on_error: Some(on_error),
                buffer,
                replicas,
            },
            Some(input),
            Some(output),
        ) if errors.is_empty() => {
            let config = StreamConfig {
                input: input_c,
                buffer,
                pipeline,
                output: output_c,
                on_error,
                replicas,
            };
            Ok(StreamPlan {
                config,
                input,
                output,
                dead_letter,
                buffer: buffer_plan,
                processors,
                stream_id: None,
                engine: engine.clone(),
            })
        }
        _ => Err(errors),
    }
}

/// Checks a `wasm` processor's config against the JSON Schema its component describes, with the built-in
/// `validate` component (so the check runs in the sandbox too). Each violation is reported at its path.
fn check_described_schema(engine: &Engine, spec: &ProcessorSpec) -> Vec<ValidationError> {
    if spec.kind != "wasm" {
        return Vec::new();
    }
    let schema: Value = match serde_json::from_str(&spec.component.info().config_schema) {
        Ok(Value::Object(map)) if !map.is_empty() => Value::Object(map),
        _ => return Vec::new(), // no schema, or `{}`: only `init` checks
    };
    let at = spec.options_path();
    let checker = match builtin_component(engine, "validate") {
        Ok(c) => c,
        Err(e) => return vec![ValidationError::new(at, e.message)],
    };
    let config = serde_json::json!({ "schema": schema }).to_string();
    let mut instance = match engine.instantiate(&checker, &config, Default::default()) {
        Ok(i) => i,
        Err(e) => {
            return vec![ValidationError::new(
                at,
                format!("the processor describes a config schema that is not valid: {e}"),
            )];
        }
    };
    let message = crate::message(spec.config.clone().into_bytes(), Default::default());
    let out = match instance.process(&[message]) {
        Ok(out) => out,
        Err(e) => {
            return vec![ValidationError::new(
                at,
                format!("checking the config: {e}"),
            )];
        }
    };
    let Some(error) = out.into_iter().next().and_then(|m| m.error) else {
        return Vec::new();
    };
    // Violations come as "/json/pointer: message; ...".
    error
        .split("; ")
        .map(|v| match v.split_once(": ") {
            Some((pointer, message)) if pointer.starts_with('/') => {
                let inner: String = pointer
                    .split('/')
                    .skip(1)
                    .map(|seg| match seg.parse::<usize>() {
                        Ok(i) => format!("[{i}]"),
                        Err(_) => format!(".{}", seg.replace("~1", "/").replace("~0", "~")),
                    })
                    .collect();
                ValidationError::new(
                    airtruct_model::join_path(&at, &inner),
                    format!("{message} (the processor's config schema)"),
                )
            }
            Some(("(root)", message)) => ValidationError::new(
                at.clone(),
                format!("{message} (the processor's config schema)"),
            ),
            _ => ValidationError::new(at.clone(), format!("{v} (the processor's config schema)")),
        })
        .collect()
}
