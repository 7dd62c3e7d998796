//! Control flow among processors, run by the host (the steps inside stay wasm components): `switch` (cases, each
//! a VRL check and processors of its own), `catch` (processors for the messages that failed before it, after
//! which they go on), `try` (processors as one step) and `branch` (processors on a copy made by a request
//! mapping, with the result merged back). Checks are VRL conditions read as a `filter` processor reads them, and
//! mappings VRL programs, all evaluated in the sandbox. The shapes are Benthos's (`switch: {cases: [{check,
//! processors}]}`, `catch: [...]`, `try: [...]`, `branch: {request_map, processors, result_map}`), so its
//! configs carry over.

use std::sync::Arc;

use airtruct_model::{Component, ValidationError};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::Role;
pub(crate) mod run;

use crate::chain::{BranchSpec, CaseSpec, ControlSpec, Flow, Step};
use crate::kind::{CheckContext, Kind, KindEntry, parse_options};

/// Runs each message through the processors of the first case whose check it matches.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchProcessorConfig {
    /// The cases, tried in order: a message runs through the processors of the first case whose `check` it
    /// matches; a message that matches none goes on unchanged.
    #[schemars(length(min = 1))]
    pub cases: Vec<ProcessorCase>,
}

/// One case of a `switch` processor.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(title = "Case")]
#[serde(deny_unknown_fields)]
pub struct ProcessorCase {
    /// A VRL condition on the message (`.type == "order"`); empty or absent matches every message. A check that
    /// fails on a message (or is not a boolean) fails that message.
    #[serde(default)]
    pub check: String,
    /// The processors the messages that match run through, in order.
    #[serde(default)]
    #[schemars(
        with = "Vec<serde_json::Map<String, Value>>",
        extend("x-airtruct-component" = "processor")
    )]
    pub processors: Vec<Value>,
    /// Whether what this case's processors hand on also runs through the next case's processors (without that
    /// case's check).
    #[serde(default)]
    pub fallthrough: bool,
}

impl Kind for SwitchProcessorConfig {
    const NAME: &'static str = "switch";
    const DESCRIPTION: &'static str = "Runs each message through the processors of the first case whose VRL check \
         it matches; a message that matches none goes on unchanged";
    const EXAMPLE: &'static str = r#"{"cases": [
        {"check": ".type == \"order\"", "processors": [{"mapping": ".total = to_int!(.qty) * to_int!(.price)"}]},
        {"processors": [{"filter": ".keep == true"}]}]}"#;
    const NESTED: &'static [(&'static str, Role)] = &[("cases[].processors[]", Role::Processor)];
}

/// Runs its processors on the messages that failed before it; those that come out go on, no longer failed.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(transparent)]
#[schemars(extend("x-airtruct-component" = "processor"))]
pub struct CatchProcessorConfig(
    #[schemars(with = "Vec<serde_json::Map<String, Value>>")] pub Vec<Value>,
);

impl Kind for CatchProcessorConfig {
    const NAME: &'static str = "catch";
    const DESCRIPTION: &'static str = "Runs its processors on the messages that failed before it (the error is in \
         the `error` metadata key); those they hand on go on with the others, no longer failed";
    const EXAMPLE: &'static str = r#"[{"mapping": ".recovered = true\n.why = %error"}]"#;
    const NESTED: &'static [(&'static str, Role)] = &[("[]", Role::Processor)];
}

/// Runs its processors as one step.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(transparent)]
#[schemars(extend("x-airtruct-component" = "processor"))]
pub struct TryProcessorConfig(
    #[schemars(with = "Vec<serde_json::Map<String, Value>>")] pub Vec<Value>,
);

impl Kind for TryProcessorConfig {
    const NAME: &'static str = "try";
    const DESCRIPTION: &'static str = "Runs its processors as one step: a message that fails at one of them \
         skips the rest (a catch after it takes it)";
    const EXAMPLE: &'static str = r#"[{"mapping": ".n = to_int!(.n)"}, {"filter": ".n > 0"}]"#;
    const NESTED: &'static [(&'static str, Role)] = &[("[]", Role::Processor)];
}

/// Runs processors on a copy of each message and merges what they make back into the original.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BranchProcessorConfig {
    /// A VRL program whose value is the message the processors get (`{"id": .user_id}`); its metadata is the
    /// original's. Empty: a copy of the original.
    #[serde(default)]
    pub request_map: String,
    /// The processors the copy runs through. Each must hand on one message per message (a mapping, an
    /// enrichment); one it filters leaves its original unchanged, one that fails fails its original.
    #[serde(default)]
    #[schemars(
        with = "Vec<serde_json::Map<String, Value>>",
        extend("x-airtruct-component" = "processor")
    )]
    pub processors: Vec<Value>,
    /// A VRL program run on the processors' result (`.` is the result) whose value, an object, is merged into
    /// the original payload (`{"user": {"name": .name}}`): deeply, the result's fields winning. Empty: the
    /// original is left as it was (the branch runs for its side effects).
    #[serde(default)]
    pub result_map: String,
}

impl Kind for BranchProcessorConfig {
    const NAME: &'static str = "branch";
    const DESCRIPTION: &'static str = "Runs processors on a copy of each message made by a request mapping, and \
         merges a result mapping of what they make back into the original";
    const EXAMPLE: &'static str = r#"{"request_map": "{\"id\": .id}",
        "processors": [{"mapping": ".name = \"n\" + to_string!(.id)"}],
        "result_map": "{\"user\": {\"name\": .name}}"}"#;
    const FIELD_ORDER: &'static [&'static str] = &["request_map", "processors", "result_map"];
    const NESTED: &'static [(&'static str, Role)] = &[("processors[]", Role::Processor)];
}

/// Resolves a `branch` entry: its mappings compiled, its processors resolved.
pub fn resolve_branch(
    _entry: &KindEntry,
    c: &Component,
    cx: &CheckContext<'_>,
    problems: &mut Vec<ValidationError>,
) -> Option<Step> {
    let config = parse_options::<BranchProcessorConfig>(c, cx, problems)?;
    let at = c.options_path();
    let mut program = |field: &str, source: &str| {
        if source.trim().is_empty() {
            return None;
        }
        cx.vrl
            .value_program(source)
            .map_err(|e| problems.push(ValidationError::new(format!("{at}.{field}"), e)))
            .ok()
    };
    let request = program("request_map", &config.request_map);
    let result = program("result_map", &config.result_map);
    let steps = resolve_list(
        &config.processors,
        &format!("{at}.processors"),
        cx,
        problems,
    );
    Some(control(
        c,
        Flow::Branch(BranchSpec {
            request,
            steps,
            result,
        }),
    ))
}

/// Resolves the processors of a nested list at `at` (`pipeline.processors[1].catch`).
fn resolve_list(
    items: &[Value],
    at: &str,
    cx: &CheckContext<'_>,
    problems: &mut Vec<ValidationError>,
) -> Vec<Step> {
    items
        .iter()
        .enumerate()
        .filter_map(|(j, v)| {
            let c = Component::parse(&format!("{at}[{j}]"), v)
                .map_err(|e| problems.push(e))
                .ok()?;
            cx.registry.processor(&c, cx, problems)
        })
        .collect()
}

fn control(c: &Component, flow: Flow) -> Step {
    Step::Control(Arc::new(ControlSpec {
        path: c.path.clone(),
        kind: c.kind.clone(),
        flow,
    }))
}

/// Resolves a `switch` entry: its checks compiled, its processors resolved.
pub fn resolve_switch(
    _entry: &KindEntry,
    c: &Component,
    cx: &CheckContext<'_>,
    problems: &mut Vec<ValidationError>,
) -> Option<Step> {
    let config = parse_options::<SwitchProcessorConfig>(c, cx, problems)?;
    let at = c.options_path();
    if config.cases.is_empty() {
        problems.push(ValidationError::new(
            format!("{at}.cases"),
            "give at least one case",
        ));
    }
    let mut cases = Vec::with_capacity(config.cases.len());
    for (i, case) in config.cases.iter().enumerate() {
        let check_at = format!("{at}.cases[{i}].check");
        let check = if case.check.trim().is_empty() {
            None
        } else {
            match cx.vrl.condition(&case.check) {
                Ok(condition) => Some((condition, check_at)),
                Err(e) => {
                    problems.push(ValidationError::new(check_at, e));
                    None
                }
            }
        };
        let steps = resolve_list(
            &case.processors,
            &format!("{at}.cases[{i}].processors"),
            cx,
            problems,
        );
        cases.push(CaseSpec {
            check,
            steps,
            fallthrough: case.fallthrough,
        });
    }
    // With problems reported, what did resolve is still handed back, so that validation reports the problems
    // of the processors inside too (their `init`), all at once.
    Some(control(c, Flow::Switch(cases)))
}

/// Resolves a `catch` entry.
pub fn resolve_catch(
    _entry: &KindEntry,
    c: &Component,
    cx: &CheckContext<'_>,
    problems: &mut Vec<ValidationError>,
) -> Option<Step> {
    let config = parse_options::<CatchProcessorConfig>(c, cx, problems)?;
    Some(control(
        c,
        Flow::Catch(resolve_list(&config.0, &c.options_path(), cx, problems)),
    ))
}

/// Resolves a `try` entry.
pub fn resolve_try(
    _entry: &KindEntry,
    c: &Component,
    cx: &CheckContext<'_>,
    problems: &mut Vec<ValidationError>,
) -> Option<Step> {
    let config = parse_options::<TryProcessorConfig>(c, cx, problems)?;
    Some(control(
        c,
        Flow::Try(resolve_list(&config.0, &c.options_path(), cx, problems)),
    ))
}
