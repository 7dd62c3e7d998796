//! `switch`: routes each message to the output of the first case whose `check` (a VRL condition, as a `filter`
//! processor reads it) it matches, and on to later cases when a case says `continue`. A batch is confirmed only
//! when every output it went to confirmed it: each case's output retries under its own policy, so one failing
//! output is retried alone and the others are not written twice; when it gives up, the whole batch stays
//! unacknowledged (and is read again, at least once, to every case). The shape is Benthos's
//! (`switch: {cases: [{check, output, continue}], strict_mode}`), so its configs carry over.

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::future::join_all;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use airtruct_runtime::kind::{Check, Kind, OutputKind, Resolved};
use airtruct_runtime::metrics::ComponentMetrics;
use airtruct_runtime::retry::RetryPolicy;
use airtruct_runtime::vrl::{ConditionRunner, VrlCondition};
use airtruct_runtime::{BuildContext, Error, Message, Output, Role, StreamMetrics};

use super::{Held, merge_refused};

/// Sends each message to the outputs of the cases it matches.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchOutputConfig {
    /// The cases, tried in order: a message goes to the output of the first case whose `check` it matches (and
    /// to later ones as well while the cases it matches say `continue`).
    #[schemars(length(min = 1))]
    pub cases: Vec<SwitchCase>,
    /// A message that matches no case: `false` (the default) confirms it and counts it as filtered; `true`
    /// fails it, for the stream's `on_error` policy.
    #[serde(default)]
    pub strict_mode: bool,
    /// Set by the check: each case's condition (none: every message) and output.
    #[serde(skip)]
    #[schemars(skip)]
    resolved: Vec<(Option<VrlCondition>, Resolved<dyn OutputKind>)>,
}

/// One case of a `switch` output.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(title = "Case")]
#[serde(deny_unknown_fields)]
pub struct SwitchCase {
    /// A VRL condition on the message (`.type == "order"`, `%topic == "eu"`); empty or absent matches every
    /// message. A condition that fails on a message (or is not a boolean) fails that message.
    #[serde(default)]
    pub check: String,
    /// Where the messages that match go, as an output (`kafka: {...}`).
    #[schemars(
        with = "serde_json::Map<String, Value>",
        extend("x-airtruct-component" = "output")
    )]
    pub output: Value,
    /// Whether a message that matches this case is tried against the cases after it too (by default the first
    /// case it matches takes it).
    #[serde(default, rename = "continue")]
    pub continue_: bool,
}

impl Kind for SwitchOutputConfig {
    const NAME: &'static str = "switch";
    const DESCRIPTION: &'static str = "Routes each message to the output of the first case whose VRL check it \
         matches; a batch is confirmed when every output it went to confirmed it";
    const EXAMPLE: &'static str = r#"{"cases": [
        {"check": ".level == \"error\"", "output": {"file": {"path": "errors.jsonl"}}, "continue": true},
        {"output": {"drop": {}}}]}"#;
    const NESTED: &'static [(&'static str, Role)] = &[("cases[].output", Role::Output)];

    fn check(&mut self, check: &mut Check<'_>) {
        if self.cases.is_empty() {
            check.problem("cases", "give at least one case");
        }
        self.resolved = self
            .cases
            .iter()
            .enumerate()
            .map(|(i, case)| {
                let condition = (!case.check.trim().is_empty())
                    .then(|| check.condition(&format!("cases[{i}].check"), &case.check))
                    .flatten();
                let output = check.output(&format!("cases[{i}].output"), &case.output);
                (condition, Resolved(output.map(Arc::from)))
            })
            .collect();
    }
}

#[async_trait]
impl OutputKind for SwitchOutputConfig {
    async fn build(&self, cx: &BuildContext) -> Result<Box<dyn Output>, Error> {
        let mut cases = Vec::with_capacity(self.cases.len());
        for (i, (case, (condition, output))) in self.cases.iter().zip(&self.resolved).enumerate() {
            let kind = output
                .0
                .as_ref()
                .ok_or_else(|| Error::Internal("switch output built before its check".into()))?;
            let path = format!("{}.switch.cases[{i}].output", cx.path);
            cases.push(Case {
                check: condition.as_ref().map(|c| c.runner()).transpose()?,
                held: Held::build(kind.as_ref(), &case.output, cx, path).await?,
                continue_: case.continue_,
                check_path: format!("{}.switch.cases[{i}].check", cx.path),
            });
        }
        Ok(Box::new(SwitchOutput {
            cases,
            strict: self.strict_mode,
            metrics: cx.metrics.clone(),
        }))
    }

    fn answers_callers(&self) -> bool {
        self.resolved
            .iter()
            .any(|(_, o)| o.0.as_ref().is_some_and(|o| o.answers_callers()))
    }
}

struct Case {
    check: Option<ConditionRunner>,
    held: Held,
    continue_: bool,
    check_path: String,
}

/// The running `switch` output.
pub struct SwitchOutput {
    cases: Vec<Case>,
    strict: bool,
    metrics: Arc<ComponentMetrics>,
}

/// Which cases each message of a batch goes to, and the messages refused on the way.
#[derive(Debug, Default, PartialEq)]
struct Routes {
    /// Per case, the indices of its messages, in batch order.
    to: Vec<Vec<usize>>,
    refused: Vec<(usize, String)>,
    /// Messages that matched no case (with `strict_mode` off).
    unmatched: u64,
}

impl SwitchOutput {
    async fn route(&mut self, batch: &[Message]) -> Result<Routes, Error> {
        let mut routes = Routes {
            to: vec![Vec::new(); self.cases.len()],
            ..Routes::default()
        };
        // Indices still looking for a case, and whether each has matched one.
        let mut open: Vec<usize> = (0..batch.len()).collect();
        let mut matched = vec![false; batch.len()];
        for (c, case) in self.cases.iter_mut().enumerate() {
            if open.is_empty() {
                break;
            }
            let verdicts = match &mut case.check {
                None => vec![Ok(true); open.len()],
                Some(runner) if open.len() == batch.len() => runner.eval(batch).await?,
                Some(runner) => {
                    let some: Vec<Message> = open.iter().map(|&i| batch[i].clone()).collect();
                    runner.eval(&some).await?
                }
            };
            let mut still = Vec::with_capacity(open.len());
            for (i, verdict) in open.into_iter().zip(verdicts) {
                match verdict {
                    Ok(true) => {
                        routes.to[c].push(i);
                        matched[i] = true;
                        if case.continue_ {
                            still.push(i);
                        }
                    }
                    Ok(false) => still.push(i),
                    Err(e) => routes
                        .refused
                        .push((i, format!("{}: {e}", case.check_path))),
                }
            }
            open = still;
        }
        for i in open.into_iter().filter(|&i| !matched[i]) {
            if self.strict {
                routes
                    .refused
                    .push((i, "the message matched no case of the switch output".into()));
            } else {
                routes.unmatched += 1;
            }
        }
        Ok(routes)
    }
}

#[async_trait]
impl Output for SwitchOutput {
    async fn write(&mut self, batch: &[Message]) -> Result<(), Error> {
        let Routes {
            to,
            mut refused,
            unmatched,
        } = self.route(batch).await?;
        StreamMetrics::add(&self.metrics.filtered, unmatched);
        let writes = self
            .cases
            .iter_mut()
            .zip(&to)
            .filter(|(_, idx)| !idx.is_empty())
            .map(|(case, idx)| async move {
                let result = if idx.len() == batch.len() {
                    case.held.write(batch).await
                } else {
                    let some: Vec<Message> = idx.iter().map(|&i| batch[i].clone()).collect();
                    case.held.write(&some).await
                };
                (idx, result)
            });
        let mut failure = None;
        for (idx, result) in join_all(writes).await {
            match result {
                Ok(()) => {}
                Err(Error::Rejected(list)) => refused.extend(
                    list.into_iter()
                        .filter_map(|(k, e)| idx.get(k).map(|&i| (i, e))),
                ),
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failure {
            // Nothing of the batch is acknowledged: it is read again and goes to every case once more.
            return Err(e);
        }
        merge_refused(refused)
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::NONE
    }

    async fn close(&mut self) -> Result<(), Error> {
        let mut held = Vec::with_capacity(self.cases.len());
        for c in &mut self.cases {
            held.push(&mut c.held);
        }
        Held::close_all(held).await
    }
}
