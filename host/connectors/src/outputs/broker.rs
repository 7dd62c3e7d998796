//! `broker`: several outputs as one. `fan_out` writes every message to every output at once,
//! `fan_out_sequential` to each in turn (the next starts once the one before confirmed), `round_robin` each
//! batch to the next output. A batch is confirmed only when every output it went to confirmed it: each output
//! retries under its own policy, so one failing output is retried alone; when it gives up, the batch stays
//! unacknowledged and is read again. The shape is Benthos's (`broker: {pattern, outputs}`).

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::future::join_all;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use airtruct_runtime::kind::{Check, Kind, OutputKind, Resolved};
use airtruct_runtime::retry::RetryPolicy;
use airtruct_runtime::{BuildContext, Error, Message, Output, Role};

use super::{Held, merge_refused};

/// How a broker shares messages among its outputs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BrokerPattern {
    /// Every message to every output, written at once.
    #[default]
    FanOut,
    /// Every message to every output, one output after another in the order given.
    FanOutSequential,
    /// Each batch to the next output in turn.
    RoundRobin,
}

/// Writes to several outputs as one.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BrokerOutputConfig {
    /// How messages are shared among the outputs.
    #[serde(default)]
    pub pattern: BrokerPattern,
    /// The outputs, each written `kind: {options}`.
    #[schemars(
        with = "Vec<serde_json::Map<String, Value>>",
        extend("x-airtruct-component" = "output")
    )]
    pub outputs: Vec<Value>,
    /// Set by the check: the outputs, parsed.
    #[serde(skip)]
    #[schemars(skip)]
    resolved: Vec<Resolved<dyn OutputKind>>,
}

impl Kind for BrokerOutputConfig {
    const NAME: &'static str = "broker";
    const DESCRIPTION: &'static str = "Writes to several outputs as one: every message to each (fan_out, \
         fan_out_sequential) or each batch to the next (round_robin); confirmed when every output it went to \
         confirmed";
    const EXAMPLE: &'static str = r#"{"pattern": "fan_out",
        "outputs": [{"file": {"path": "copy.jsonl"}}, {"drop": {}}]}"#;
    const FIELD_ORDER: &'static [&'static str] = &["pattern", "outputs"];
    const NESTED: &'static [(&'static str, Role)] = &[("outputs[]", Role::Output)];

    fn check(&mut self, check: &mut Check<'_>) {
        if self.outputs.is_empty() {
            check.problem("outputs", "give at least one output");
        }
        self.resolved = self
            .outputs
            .iter()
            .enumerate()
            .map(|(i, o)| Resolved(check.output(&format!("outputs[{i}]"), o).map(Arc::from)))
            .collect();
    }
}

#[async_trait]
impl OutputKind for BrokerOutputConfig {
    async fn build(&self, cx: &BuildContext) -> Result<Box<dyn Output>, Error> {
        let mut outputs = Vec::with_capacity(self.outputs.len());
        for (i, (value, kind)) in self.outputs.iter().zip(&self.resolved).enumerate() {
            let kind = kind
                .0
                .as_ref()
                .ok_or_else(|| Error::Internal("broker output built before its check".into()))?;
            let path = format!("{}.broker.outputs[{i}]", cx.path);
            outputs.push(Held::build(kind.as_ref(), value, cx, path).await?);
        }
        Ok(Box::new(BrokerOutput {
            outputs,
            pattern: self.pattern,
            next: 0,
        }))
    }

    fn answers_callers(&self) -> bool {
        self.resolved
            .iter()
            .any(|o| o.0.as_ref().is_some_and(|o| o.answers_callers()))
    }
}

/// The running `broker` output.
pub struct BrokerOutput {
    outputs: Vec<Held>,
    pattern: BrokerPattern,
    /// The output the next batch goes to (`round_robin`).
    next: usize,
}

#[async_trait]
impl Output for BrokerOutput {
    async fn write(&mut self, batch: &[Message]) -> Result<(), Error> {
        let results = match self.pattern {
            BrokerPattern::FanOut => {
                join_all(self.outputs.iter_mut().map(|o| o.write(batch))).await
            }
            BrokerPattern::FanOutSequential => {
                let mut results = Vec::with_capacity(self.outputs.len());
                for o in &mut self.outputs {
                    let r = o.write(batch).await;
                    let stop = matches!(&r, Err(e) if !matches!(e, Error::Rejected(_)));
                    results.push(r);
                    if stop {
                        break;
                    }
                }
                results
            }
            BrokerPattern::RoundRobin => {
                let i = self.next % self.outputs.len().max(1);
                self.next = i + 1;
                match self.outputs.get_mut(i) {
                    Some(o) => vec![o.write(batch).await],
                    None => Vec::new(),
                }
            }
        };
        let mut refused = Vec::new();
        for r in results {
            match r {
                Ok(()) => {}
                Err(Error::Rejected(list)) => refused.extend(list),
                // Nothing of the batch is acknowledged: it is read again and written to every output once more.
                Err(e) => return Err(e),
            }
        }
        merge_refused(refused)
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::NONE
    }

    async fn close(&mut self) -> Result<(), Error> {
        Held::close_all(self.outputs.iter_mut().collect()).await
    }
}
