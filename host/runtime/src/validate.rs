//! The one validation of a stream config, behind `airtruct validate`, the API's validate endpoint and the save
//! check: the skeleton, every component's options, and every processor's `init` with its configuration.

use airtruct_engine::Engine;
use airtruct_model::{ErrorPolicy, StreamConfig, ValidationError, parse_stream};
use serde_json::Value;

use crate::chain::ProcessorSpec;
use crate::registry::{InputConfig, OutputConfig, resolve_processor};

/// A stream config that passed validation, with everything parsed and resolved, ready to run.
pub struct StreamPlan {
    pub config: StreamConfig,
    pub input: InputConfig,
    pub output: OutputConfig,
    pub dead_letter: Option<OutputConfig>,
    pub processors: Vec<ProcessorSpec>,
}

/// Validates a stream config (as a JSON value, after interpolation), returning every problem at once.
pub fn validate_stream(engine: &Engine, value: &Value) -> Result<StreamPlan, Vec<ValidationError>> {
    let config = parse_stream(value)?;
    let mut errors = Vec::new();
    let input = InputConfig::parse(&config.input).map_err(|e| errors.push(e)).ok();
    let output = OutputConfig::parse(&config.output).map_err(|e| errors.push(e)).ok();
    let dead_letter = match &config.on_error {
        ErrorPolicy::DeadLetter(c) => OutputConfig::parse(c).map_err(|e| errors.push(e)).ok(),
        _ => None,
    };
    if let Some(b) = &config.buffer {
        errors.push(ValidationError::new(
            &b.path,
            format!("unknown buffer kind \"{}\": this version has no buffers yet", b.kind),
        ));
    }
    let mut processors = Vec::new();
    for c in &config.pipeline.processors {
        match resolve_processor(engine, c) {
            Ok(spec) => match spec.instantiate(engine) {
                Ok(_) => processors.push(spec),
                Err(e) => errors.extend(e),
            },
            Err(e) => errors.push(e),
        }
    }
    match (input, output) {
        (Some(input), Some(output)) if errors.is_empty() => {
            let dead_letter = dead_letter.filter(|_| matches!(config.on_error, ErrorPolicy::DeadLetter(_)));
            Ok(StreamPlan { config, input, output, dead_letter, processors })
        }
        _ => Err(errors),
    }
}
