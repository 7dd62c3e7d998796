//! Running a stream's `tests:` cases (`airtruct test FILE`, `POST /api/v1/streams/tests`): each case's messages go
//! through the stream's processors in the sandbox as one batch, and what leaves the last processor (or the one
//! the case names) is compared with what it expects and checked against its VRL conditions. The input and the
//! output are never opened, so a test has no side effects.

use std::sync::Arc;

use airtruct_engine::{Engine, Resources};
use airtruct_model::{ExpectedMessage, TestCase, ValidationError, payload_matches};
use airtruct_runtime::chain::{Chain, Step};
use airtruct_runtime::kind::{Check, CheckContext};
use airtruct_runtime::policy::Policy;
use airtruct_runtime::resources::ResourcesPlan;
use airtruct_runtime::{Message, Metadata, Uploaded, message};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

/// How one case went.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    pub passed: bool,
    /// What did not match, one line each (`message 1: payload differs`); empty when it passed.
    pub problems: Vec<String>,
    /// The messages expected, one line each; none for a case with conditions only.
    pub expected: Option<Vec<String>>,
    /// The messages the processors made, one line each: the payload, then its metadata and error if any.
    pub actual: Vec<String>,
}

/// Every case's result, in order. Problems that keep the cases from running (a processor or a condition that
/// does not compile, a malformed case) come back as validation errors with their paths. No case starts after
/// `deadline`: those left fail as not run.
pub fn run_cases(
    engine: &Engine,
    config: &Value,
    uploaded: &Uploaded,
    deadline: Option<std::time::Instant>,
    policy: Option<Arc<Policy>>,
) -> Result<Vec<CaseResult>, Vec<ValidationError>> {
    let (partial, errors) = airtruct_model::parse_stream_partial(config);
    let mut errors: Vec<ValidationError> = errors
        .into_iter()
        .filter(|e| {
            e.path.starts_with("pipeline")
                || e.path.starts_with("tests")
                || e.path.starts_with("resources")
        })
        .collect();
    let registry = airtruct_connectors::registry();
    let mut cx = CheckContext::new(registry, engine, uploaded).with_policy(policy.as_deref());
    let plan = declare_resources(&partial, &mut cx, &mut errors);
    let specs = processor_specs(&partial, &cx, &mut errors);
    // Cases never change anything: calls with side effects are refused.
    let resources = match errors.is_empty() {
        true => open_resources(plan, engine, policy.clone(), false).map_err(|e| vec![e])?,
        false => TestResources::default(),
    };
    // Each condition is a `filter`: kept means true. (When a case could not be read, the others' places are not
    // known: their conditions are checked once it is mended.)
    let all_read = config["tests"]
        .as_array()
        .is_none_or(|t| t.len() == partial.tests.len());
    let mut conditions: Vec<Vec<(String, Step)>> = Vec::new();
    for (i, case) in partial.tests.iter().enumerate().filter(|_| all_read) {
        let mut specs = Vec::new();
        for (j, source) in case.conditions.iter().enumerate() {
            let c = airtruct_model::Component {
                kind: "filter".into(),
                options: Value::String(source.clone()),
                path: format!("tests[{i}].conditions[{j}]"),
            };
            let mut found = Vec::new();
            if let Some(spec) = registry.processor(&c, &cx, &mut found) {
                specs.push((source.clone(), spec));
            }
            errors.extend(found.into_iter().map(|mut e| {
                e.path = e.path.replace("].filter", "]");
                e
            }));
        }
        conditions.push(specs);
    }
    // Instantiated up front (each `init` compiles its VRL), so every problem is reported at once; a condition's
    // instance is made again when its case runs, so no more than one case's are alive at a time.
    let chain = Chain::with_resources(engine, &specs, resources.resources.clone())
        .map_err(|e| errors.extend(e))
        .ok();
    for (_, spec) in conditions.iter().flatten() {
        if let Err(e) = Chain::new(engine, std::slice::from_ref(spec)) {
            // A condition's own errors sit at its place in the case, not at a `filter` it was written as.
            errors.extend(e.into_iter().map(|mut e| {
                e.path = e.path.replace("].filter", "]");
                e
            }));
        }
    }
    let (Some(mut chain), true) = (chain, errors.is_empty()) else {
        return Err(errors);
    };
    let mut results = Vec::new();
    for (case, conditions) in partial.tests.iter().zip(conditions) {
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            results.push(CaseResult {
                name: case.name.clone(),
                passed: false,
                problems: vec!["not run: the tests ran past their deadline".into()],
                expected: None,
                actual: Vec::new(),
            });
            continue;
        }
        let actual = leaving(&mut chain, case);
        let mut problems = Vec::new();
        if let Some(expect) = &case.expect {
            compare(expect, &actual, &mut problems);
        } else {
            for (n, m) in actual.iter().enumerate() {
                if let Some(e) = &m.error {
                    problems.push(format!("message {}: failed: {e}", n + 1));
                }
            }
        }
        for (source, spec) in &conditions {
            let mut check = Chain::new(engine, std::slice::from_ref(spec))?;
            for (n, m) in actual.iter().enumerate().filter(|(_, m)| m.error.is_none()) {
                let out = check.run(vec![m.clone()], |_| {});
                if let Some(failed) = out.failed.first() {
                    let e = failed.error.as_deref().unwrap_or("");
                    problems.push(format!(
                        "message {}: condition `{source}` failed: {e}",
                        n + 1
                    ));
                } else if out.ok.is_empty() {
                    problems.push(format!("message {}: condition `{source}` is false", n + 1));
                }
            }
        }
        results.push(CaseResult {
            name: case.name.clone(),
            passed: problems.is_empty(),
            problems,
            expected: case
                .expect
                .as_ref()
                .map(|e| e.iter().map(expected_line).collect()),
            actual: actual.iter().map(actual_line).collect(),
        });
    }
    Ok(results)
}

/// The resolved processors of a config's pipeline, in order; each problem goes to `errors` with its path.
/// Checks the config's `resources:` and declares them in `cx`, so its processors may be granted them.
pub fn declare_resources(
    partial: &airtruct_model::PartialStream,
    cx: &mut CheckContext<'_>,
    errors: &mut Vec<ValidationError>,
) -> Option<Arc<dyn ResourcesPlan>> {
    let section = partial.resources.as_ref()?;
    cx.resources = airtruct_runtime::resources::declared_in(section);
    let support = cx.registry.resources()?;
    (support.check)(section, &mut Check::new(cx, "resources".into(), errors))
}

/// Resources opened for a test run, and the runtime that serves them when the caller has none (`airtruct test`).
#[derive(Default)]
pub struct TestResources {
    pub resources: Option<Arc<dyn Resources>>,
    _runtime: Option<tokio::runtime::Runtime>,
}

/// Opens `plan` for a test run (on a blocking thread or outside any runtime); `side_effects: false` refuses
/// calls that could change something.
pub fn open_resources(
    plan: Option<Arc<dyn ResourcesPlan>>,
    engine: &Engine,
    policy: Option<Arc<Policy>>,
    side_effects: bool,
) -> Result<TestResources, ValidationError> {
    let Some(plan) = plan else {
        return Ok(TestResources::default());
    };
    let (handle, runtime) = match tokio::runtime::Handle::try_current() {
        Ok(h) => (h, None),
        Err(_) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .map_err(|e| {
                    ValidationError::new("resources", format!("starting a runtime: {e}"))
                })?;
            (rt.handle().clone(), Some(rt))
        }
    };
    let cx = airtruct_runtime::BuildContext::local(
        engine.clone(),
        Default::default(),
        tokio_util::sync::CancellationToken::new(),
    )
    .with_policy(policy);
    let resources = handle
        .block_on(plan.open(&cx, side_effects))
        .map_err(|e| ValidationError::new("resources", e.to_string()))?;
    Ok(TestResources {
        resources: Some(resources),
        _runtime: runtime,
    })
}

pub fn processor_specs(
    partial: &airtruct_model::PartialStream,
    cx: &CheckContext<'_>,
    errors: &mut Vec<ValidationError>,
) -> Vec<Step> {
    partial
        .pipeline
        .iter()
        .flat_map(|p| &p.processors)
        .filter_map(|c| cx.registry.processor(c, cx, errors))
        .collect()
}

/// The case's messages as they leave the last processor, or the one it names: those handed on, then those that
/// failed (with their errors).
fn leaving(chain: &mut Chain, case: &TestCase) -> Vec<Message> {
    let batch: Vec<Message> = case
        .input
        .iter()
        .map(|m| {
            let mut meta = Metadata::default();
            for (k, v) in &m.metadata {
                meta.insert(k, v);
            }
            message(m.payload_bytes(), meta)
        })
        .collect();
    let mut at_step: Option<Vec<Message>> = None;
    let out = chain.run(batch, |seen| {
        if seen.top.is_some() && case.after == seen.top {
            at_step = Some(seen.ok.iter().chain(seen.failed_so_far).cloned().collect());
        }
    });
    // With no processors, `ok` is the batch as it was given.
    at_step.unwrap_or_else(|| out.ok.into_iter().chain(out.failed).collect())
}

fn compare(expect: &[ExpectedMessage], actual: &[Message], problems: &mut Vec<String>) {
    if expect.len() != actual.len() {
        problems.push(format!(
            "expected {} message(s), got {}",
            expect.len(),
            actual.len()
        ));
    }
    for (n, (e, a)) in expect.iter().zip(actual).enumerate() {
        let n = n + 1;
        match (&e.error, &a.error) {
            (None, Some(err)) => problems.push(format!("message {n}: failed: {err}")),
            (Some(want), None) => {
                problems.push(format!("message {n}: expected it to fail with \"{want}\""))
            }
            (Some(want), Some(err)) if !err.contains(want.as_str()) => problems.push(format!(
                "message {n}: failed with \"{err}\", expected \"{want}\""
            )),
            _ => {}
        }
        if !e.payload.is_null() && !payload_matches(&e.payload, &a.payload) {
            problems.push(format!("message {n}: the payload differs"));
        }
        for (k, want) in &e.metadata {
            match airtruct_runtime::meta_get(a, k) {
                Some(v) if v == want.as_str() => {}
                Some(v) => problems.push(format!(
                    "message {n}: metadata \"{k}\" is \"{v}\", expected \"{want}\""
                )),
                None => problems.push(format!("message {n}: no metadata \"{k}\"")),
            }
        }
    }
}

fn expected_line(e: &ExpectedMessage) -> String {
    let mut line = match &e.payload {
        Value::Null => "(any payload)".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if !e.metadata.is_empty() {
        let pairs: Vec<String> = e.metadata.iter().map(|(k, v)| format!("{k}={v}")).collect();
        line.push_str(&format!("  metadata {}", pairs.join(" ")));
    }
    if let Some(err) = &e.error {
        line.push_str(&format!("  error ~ {err}"));
    }
    line
}

fn actual_line(m: &Message) -> String {
    let mut line = match serde_json::from_slice::<Value>(&m.payload) {
        Ok(v) if !v.is_string() => v.to_string(),
        _ => String::from_utf8_lossy(&m.payload).into_owned(),
    };
    let pairs: Vec<String> = Metadata::iter_bytes(&m.metadata)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !pairs.is_empty() {
        line.push_str(&format!("  metadata {}", pairs.join(" ")));
    }
    if let Some(err) = &m.error {
        line.push_str(&format!("  error: {err}"));
    }
    line
}

/// The report `airtruct test` prints: each case, with the problems and a line diff of a failed one, then
/// `N passed, M failed`.
pub fn report(results: &[CaseResult]) -> String {
    let mut out = String::new();
    for r in results {
        if r.passed {
            out.push_str(&format!("ok    {}\n", r.name));
            continue;
        }
        out.push_str(&format!("FAIL  {}\n", r.name));
        for p in &r.problems {
            out.push_str(&format!("      {p}\n"));
        }
        if let Some(expected) = &r.expected {
            out.push_str("      --- expected\n      +++ actual\n");
            let n = expected.len().max(r.actual.len());
            for i in 0..n {
                match (expected.get(i), r.actual.get(i)) {
                    (Some(e), Some(a)) if e == a => out.push_str(&format!("        {a}\n")),
                    (e, a) => {
                        if let Some(e) = e {
                            out.push_str(&format!("      - {e}\n"));
                        }
                        if let Some(a) = a {
                            out.push_str(&format!("      + {a}\n"));
                        }
                    }
                }
            }
        }
    }
    let passed = results.iter().filter(|r| r.passed).count();
    out.push_str(&format!(
        "{passed} passed, {} failed\n",
        results.len() - passed
    ));
    out
}
