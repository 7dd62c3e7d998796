//! `POST /api/v1/streams/test`: runs a config's processors on sample messages, in the sandbox and with no side
//! effects, and answers the output of each step for each message; `POST /api/v1/streams/tests` runs a config's
//! `tests:` cases the same way.

use std::collections::BTreeMap;

use airtruct_model::{ValidationError, parse_stream_partial};
use airtruct_runtime::Uploaded;
use airtruct_runtime::chain::Chain;
use airtruct_runtime::kind::CheckContext;
use airtruct_runtime::{Metadata, message};
use axum::Json;
use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::checks::{config_value, fetch_uploaded, join, pin_versions, refuse_local_paths};
use super::error::Body;
use super::{ApiError, AppState};
use crate::stream_tests::CaseResult;

/// A sample message.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestMessage {
    /// The payload: a string is taken as it is, anything else as its JSON text.
    pub payload: Value,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// Processors to try on sample messages.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    /// A stream config (an object or YAML text); only `pipeline.processors` is used, so input and output may
    /// be missing.
    #[schemars(schema_with = "super::stream_views::config_schema")]
    pub config: Value,
    pub messages: Vec<TestMessage>,
    /// Lets the processors' calls that could change something go through: HTTP methods other than GET and
    /// HEAD, SQL writes, cache writes. Off by default: a test changes nothing.
    #[serde(default)]
    pub allow_side_effects: bool,
}

/// A message as it came out of a step.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TestOutput {
    /// The payload as text (invalid UTF-8 replaced).
    pub payload: String,
    /// The payload's bytes in base64, when they are not text (not UTF-8, or with control characters other than
    /// tab and line breaks: Avro or Protobuf, say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_base64: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// Why it failed, with the processor that failed it.
    pub error: Option<String>,
}

/// What one processor made of one sample message.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TestStep {
    /// The processor (`pipeline.processors[0] (mapping)`).
    pub processor: String,
    /// The messages after this step: none when filtered out, several when split; failed ones carry `error`.
    pub output: Vec<TestOutput>,
}

/// The trace of one sample message through every processor.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TestTrace {
    pub steps: Vec<TestStep>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TestResponse {
    /// One trace per sample message, in order.
    pub results: Vec<TestTrace>,
    /// Why the test stopped before the last message (it ran past its deadline), if it did.
    pub stopped: Option<String>,
}

fn test_output(m: &airtruct_runtime::Message) -> TestOutput {
    let metadata = Metadata::iter_bytes(&m.metadata)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let binary = std::str::from_utf8(&m.payload).is_err()
        || m.payload
            .iter()
            .any(|&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7f);
    TestOutput {
        payload: String::from_utf8_lossy(&m.payload).into_owned(),
        payload_base64: binary.then(|| BASE64.encode(&m.payload)),
        metadata,
        error: m.error.clone(),
    }
}

const MAX_TEST_MESSAGES: usize = 100;
/// How long one test request runs: no message starts after it (one already started finishes its steps, each
/// within its processor's time limit).
pub const TEST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

pub(super) async fn test(
    State(state): State<AppState>,
    Body(req): Body<TestRequest>,
) -> Result<Json<TestResponse>, ApiError> {
    if req.messages.len() > MAX_TEST_MESSAGES {
        return Err(ApiError::invalid(
            "too many sample messages",
            vec![ValidationError::new(
                "messages",
                format!("at most {MAX_TEST_MESSAGES}"),
            )],
        ));
    }
    let (config, uploaded) = testable(&state, req.config).await?;
    let engine = state.engine.clone();
    let policy = Some(state.policy.clone());
    let side_effects = req.allow_side_effects;
    let result = tokio::task::spawn_blocking(move || {
        run_test(
            &engine,
            &config,
            &uploaded,
            req.messages,
            policy,
            side_effects,
        )
    })
    .await
    .map_err(ApiError::internal)?;
    result.map(Json).map_err(|errors| {
        ApiError::invalid(
            "the processors are not valid",
            errors
                .into_iter()
                .map(|e| ValidationError::new(join("config", &e.path), e.message))
                .collect(),
        )
    })
}

/// A config as the test endpoints run it: parsed, with no secrets and no local paths (what the processors make
/// comes back in the answer), uploaded processors pinned and fetched.
async fn testable(state: &AppState, config: Value) -> Result<(Value, Uploaded), ApiError> {
    let config =
        config_value(config).map_err(|e| ApiError::invalid("the config is not valid", e))?;
    // The answer shows what the processors made, so a secret would come back in clear: refuse them here.
    let secrets: Vec<ValidationError> = airtruct_model::secret_refs(&config)
        .into_iter()
        .map(|(name, path)| {
            ValidationError::new(
                join("config", &path),
                format!("the test endpoint does not resolve secrets (\"{name}\"): test with a sample value"),
            )
        })
        .chain(
            refuse_local_paths(&config)
                .into_iter()
                .map(|e| ValidationError::new(join("config", &e.path), e.message)),
        )
        .collect();
    if !secrets.is_empty() {
        return Err(ApiError::invalid("the config cannot be tested", secrets));
    }
    let mut config = config;
    let mut errors = pin_versions(state, &mut config).await;
    let (uploaded, fetch_errors) = fetch_uploaded(state, &config).await;
    errors.extend(fetch_errors);
    if !errors.is_empty() {
        errors.dedup();
        return Err(ApiError::invalid(
            "the processors are not valid",
            errors
                .into_iter()
                .map(|e| ValidationError::new(join("config", &e.path), e.message))
                .collect(),
        ));
    }
    Ok((config, uploaded))
}

/// Runs a config's `tests:` cases.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CasesRequest {
    /// A stream config with its `tests:` (an object or YAML text); only `pipeline.processors` and `tests` are
    /// used, so input and output may be missing.
    #[schemars(schema_with = "super::stream_views::config_schema")]
    pub config: Value,
}

/// Each case's result, and how many passed and failed; or, when the cases cannot run (a processor or a condition
/// that does not compile, a malformed case, a secret in a processor), every problem with its path and no cases. A
/// config with no `tests:` has no cases and no problems.
#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct CasesResponse {
    pub cases: Vec<CaseResult>,
    pub passed: usize,
    pub failed: usize,
    /// What keeps the cases from running, each with its path (`config.tests[0].after`).
    pub errors: Vec<ValidationError>,
}

/// `POST /api/v1/streams/tests`: a config's `tests:` cases through its processors, with no side effects. Like
/// `POST /api/v1/streams/validate`, a config that cannot run answers its problems, not a refusal.
pub(super) async fn cases(
    State(state): State<AppState>,
    Body(req): Body<CasesRequest>,
) -> Result<Json<CasesResponse>, ApiError> {
    let problems = |errors: Vec<ValidationError>| {
        Ok(Json(CasesResponse {
            errors,
            ..Default::default()
        }))
    };
    // A config that is not an object or its text is a malformed request, not a config that cannot run.
    if !(req.config.is_object() || req.config.is_string()) {
        return Err(ApiError::invalid(
            "the request body is not valid",
            config_value(req.config).err().unwrap_or_default(),
        ));
    }
    // Only the processors and the cases run: the input, output and the rest are never opened, so what they hold
    // (a secret in a DSN, a path) does not stand in the way.
    let config = match config_value(req.config) {
        Ok(c) => c,
        Err(errors) => return problems(errors),
    };
    let config: serde_json::Map<String, Value> = config
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| matches!(k.as_str(), "pipeline" | "tests" | "resources"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (config, uploaded) = match testable(&state, Value::Object(config)).await {
        Ok(t) => t,
        Err(e) if e.status == axum::http::StatusCode::BAD_REQUEST => {
            return problems(if e.body.details.is_empty() {
                vec![ValidationError::new("config", e.body.error)]
            } else {
                e.body.details
            });
        }
        Err(e) => return Err(e),
    };
    let engine = state.engine.clone();
    let policy = Some(state.policy.clone());
    let run = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + TEST_DEADLINE;
        crate::stream_tests::run_cases(&engine, &config, &uploaded, Some(deadline), policy)
    })
    .await
    .map_err(ApiError::internal)?;
    match run {
        Ok(cases) => {
            let passed = cases.iter().filter(|c| c.passed).count();
            Ok(Json(CasesResponse {
                failed: cases.len() - passed,
                passed,
                cases,
                errors: Vec::new(),
            }))
        }
        Err(errors) => problems(
            errors
                .into_iter()
                .map(|e| ValidationError::new(join("config", &e.path), e.message))
                .collect(),
        ),
    }
}

fn run_test(
    engine: &airtruct_engine::Engine,
    config: &Value,
    uploaded: &Uploaded,
    messages: Vec<TestMessage>,
    policy: Option<std::sync::Arc<airtruct_runtime::policy::Policy>>,
    side_effects: bool,
) -> Result<TestResponse, Vec<ValidationError>> {
    let (partial, errors) = parse_stream_partial(config);
    let mut errors: Vec<ValidationError> = errors
        .into_iter()
        .filter(|e| e.path.starts_with("pipeline") || e.path.starts_with("resources"))
        .collect();
    let mut cx = CheckContext::new(airtruct_connectors::registry(), engine, uploaded)
        .with_policy(policy.as_deref());
    let plan = crate::stream_tests::declare_resources(&partial, &mut cx, &mut errors);
    let specs = crate::stream_tests::processor_specs(&partial, &cx, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let resources = crate::stream_tests::open_resources(plan, engine, policy, side_effects)
        .map_err(|e| vec![e])?;
    let mut chain = Chain::with_resources(engine, &specs, resources.resources.clone())?;
    let labels: Vec<String> = chain.labels().to_vec();
    let total = messages.len();
    let started = std::time::Instant::now();
    let mut results = Vec::with_capacity(total);
    let mut stopped = None;
    for m in messages {
        if started.elapsed() >= TEST_DEADLINE {
            stopped = Some(format!(
                "the test stopped after {} of {total} messages: it ran past its deadline of {} s",
                results.len(),
                TEST_DEADLINE.as_secs()
            ));
            break;
        }
        let payload = match m.payload {
            Value::String(s) => s.into_bytes(),
            other => other.to_string().into_bytes(),
        };
        let mut meta = Metadata::default();
        for (k, v) in &m.metadata {
            meta.insert(k, v);
        }
        // Every step, those inside control flow included, in the order they are numbered (a control step is seen
        // after the steps inside it ran).
        let mut steps: Vec<(usize, TestStep)> = Vec::with_capacity(labels.len());
        chain.run(vec![message(payload, meta)], |seen| {
            let mut output: Vec<TestOutput> = seen.ok.iter().map(test_output).collect();
            output.extend(seen.failed_here.iter().map(test_output));
            steps.push((
                seen.at,
                TestStep {
                    processor: labels.get(seen.at).cloned().unwrap_or_default(),
                    output,
                },
            ));
        });
        steps.sort_by_key(|(at, _)| *at);
        results.push(TestTrace {
            steps: steps.into_iter().map(|(_, s)| s).collect(),
        });
    }
    Ok(TestResponse { results, stopped })
}
