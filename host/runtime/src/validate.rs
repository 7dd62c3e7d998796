//! The one validation of a stream config, behind `airtruct validate`, the API's validate endpoint and the save
//! check: the skeleton, every component's options, and every processor's `init` with its configuration.

use airtruct_engine::Engine;
use airtruct_model::{ErrorPolicy, StreamConfig, ValidationError, parse_stream_partial};
use serde_json::Value;

use crate::chain::ProcessorSpec;
use crate::registry::{InputConfig, OutputConfig, Uploaded, resolve_processor};

/// A stream config that passed validation, with everything parsed and resolved, ready to run.
pub struct StreamPlan {
    pub config: StreamConfig,
    pub input: InputConfig,
    pub output: OutputConfig,
    pub dead_letter: Option<OutputConfig>,
    pub processors: Vec<ProcessorSpec>,
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
    if let Some(b) = &partial.buffer {
        errors.push(ValidationError::new(
            &b.path,
            format!(
                "unknown buffer kind \"{}\": this version has no buffers yet",
                b.kind
            ),
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
            Ok(spec) => match spec.instantiate(engine) {
                Ok(_) => processors.push(spec),
                Err(e) => errors.extend(e),
            },
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
                processors,
            })
        }
        _ => Err(errors),
    }
}
