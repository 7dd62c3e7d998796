//! The stream configuration: its shape, how it is read from YAML or JSON with `${ENV}` interpolation, and the
//! validation error type shared by the CLI, the API and the save check. No I/O beyond reading variables.

mod bytesize;
mod cases;
mod config;
mod duration;
mod interpolate;
mod schema;

pub use bytesize::{ByteSize, parse_bytesize};
pub use cases::{
    CaseMessage, ExpectedMessage, MAX_CASE_MESSAGES, TestCase, parse_cases, payload_bytes,
    payload_matches,
};
pub use config::{
    BatchPolicy, Component, ErrorPolicy, PartialStream, Pipeline, StreamConfig, parse_stream,
    parse_stream_partial, parse_text, refuse_yaml_aliases,
};
pub use duration::{Duration, parse_duration};
pub use interpolate::{interpolate_env, resolve_secrets, secret_refs, secret_uses};
pub use schema::{MAX_COUNT, PipelineSchema, StreamSchema, stream_schema};

/// One problem in a configuration, with where it is.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct ValidationError {
    /// Where the problem is: `pipeline.processors[0].mapping.source`; empty for the whole document.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl ValidationError {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ValidationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Joins a path prefix and a serde path (`.a.b`, `[0]`).
pub fn join_path(prefix: &str, inner: &str) -> String {
    let inner = inner.trim_start_matches('.');
    match (prefix.is_empty(), inner.is_empty() || inner == ".") {
        (_, true) => prefix.to_string(),
        (true, false) => inner.to_string(),
        (false, false) if inner.starts_with('[') => format!("{prefix}{inner}"),
        (false, false) => format!("{prefix}.{inner}"),
    }
}

/// Deserializes `value` into `T`, turning a failure into a [`ValidationError`] at `path` plus the bad field's path.
pub fn from_value<T: serde::de::DeserializeOwned>(
    path: &str,
    value: &serde_json::Value,
) -> Result<T, ValidationError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        ValidationError::new(join_path(path, &inner), e.into_inner().to_string())
    })
}
