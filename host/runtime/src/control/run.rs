//! Control flow run on a batch: the `switch` and `branch` steps of a chain (`try` and `catch` are a few lines of
//! [`crate::chain`]'s loop).

use std::sync::Arc;

use crate::Message;
use crate::chain::{ChainOutput, Seen, Steps};
use crate::metrics::ComponentMetrics;
use crate::vrl::{ConditionRunner, VrlRunner};

/// A `switch` case's instances.
pub(crate) struct CaseNode {
    /// The check and where it sits, for errors.
    pub check: Option<(ConditionRunner, String)>,
    pub steps: Steps,
    pub fallthrough: bool,
}

/// A `branch`'s instances.
pub(crate) struct BranchNode {
    pub request: Option<VrlRunner>,
    pub steps: Steps,
    pub result: Option<VrlRunner>,
}

/// A `switch`: each case's check on the messages no case took yet, then its steps on those it matched (and on
/// what the case before handed on, when that one falls through). Messages that match no case go on unchanged.
pub(crate) fn run_switch(
    cases: &mut [CaseNode],
    batch: Vec<Message>,
    counters: &[Arc<ComponentMetrics>],
    observe: &mut dyn FnMut(Seen<'_>),
    out: &mut ChainOutput,
) -> Vec<Message> {
    let mut remaining = batch;
    let mut carry: Vec<Message> = Vec::new();
    let mut done: Vec<Message> = Vec::new();
    for case in cases.iter_mut() {
        let matched = match &mut case.check {
            None => std::mem::take(&mut remaining),
            Some(_) if remaining.is_empty() => Vec::new(),
            Some((runner, path)) => match runner.eval_blocking(&remaining) {
                Ok(verdicts) => {
                    let mut matched = Vec::new();
                    let mut rest = Vec::with_capacity(remaining.len());
                    for (mut m, v) in std::mem::take(&mut remaining).into_iter().zip(verdicts) {
                        match v {
                            Ok(true) => matched.push(m),
                            Ok(false) => rest.push(m),
                            Err(e) => {
                                m.error = Some(format!("{path}: {e}"));
                                out.failed.push(m);
                            }
                        }
                    }
                    remaining = rest;
                    matched
                }
                Err(e) => {
                    for mut m in std::mem::take(&mut remaining) {
                        m.error = Some(format!("{path}: {e}"));
                        out.failed.push(m);
                    }
                    Vec::new()
                }
            },
        };
        let mut input = std::mem::take(&mut carry);
        input.extend(matched);
        let sub = case.steps.run_with(input, counters, observe, None, false);
        out.failed.extend(sub.failed);
        out.filtered += sub.filtered;
        if case.fallthrough {
            carry = sub.ok;
        } else {
            done.extend(sub.ok);
        }
    }
    done.extend(carry);
    done.extend(remaining);
    done
}

/// The metadata key that ties a branch's copy to its original while the branch's processors run.
const BRANCH_INDEX: &str = "airtruct_branch_index";

/// A `branch`: the request mapping makes a copy of each message, the steps run on the copies, and the result
/// mapping's value of each copy they hand on is merged into its original. A copy that fails fails its original,
/// one filtered out (or that lost its tie) leaves its original as it was, and one split in several fails it.
pub(crate) fn run_branch(
    b: &mut BranchNode,
    label: &str,
    batch: Vec<Message>,
    counters: &[Arc<ComponentMetrics>],
    observe: &mut dyn FnMut(Seen<'_>),
    out: &mut ChainOutput,
) -> Vec<Message> {
    if batch.is_empty() {
        let sub = b.steps.run_with(Vec::new(), counters, observe, None, false);
        debug_assert!(sub.ok.is_empty());
        return batch;
    }
    // The copies, each tied to its original by index; an original whose copy could not be made fails.
    let mut failed_at: Vec<Option<String>> = vec![None; batch.len()];
    let copies: Vec<Message> = match &mut b.request {
        None => batch.clone(),
        Some(r) => match r.run_blocking(&batch) {
            Ok(made) => made,
            Err(e) => {
                failed_at = vec![Some(format!("{label}: request_map: {e}")); batch.len()];
                Vec::new()
            }
        },
    };
    let mut tied = Vec::with_capacity(copies.len());
    for (i, mut m) in copies.into_iter().enumerate() {
        if let Some(e) = m.error.take() {
            failed_at[i] = Some(format!("{label}: request_map: {e}"));
            continue;
        }
        // The copy keeps the original's metadata.
        m.metadata = batch[i].metadata.clone();
        crate::meta_set(&mut m, BRANCH_INDEX, &i.to_string());
        tied.push(m);
    }
    let sub = b.steps.run_with(tied, counters, observe, None, false);
    for m in &sub.failed {
        if let Some(slot) = branch_index(m).and_then(|i| failed_at.get_mut(i)) {
            *slot = Some(m.error.clone().unwrap_or_default());
        }
    }
    // What the steps made of each copy.
    let mut results: Vec<Option<Message>> = vec![None; batch.len()];
    for mut m in sub.ok {
        let Some(i) = branch_index(&m).filter(|&i| i < batch.len()) else {
            continue;
        };
        if results[i].is_some() {
            failed_at[i] = Some(format!(
                "{label}: the branch's processors handed on several messages for one; they must hand on one"
            ));
            continue;
        }
        crate::meta_remove(&mut m, BRANCH_INDEX);
        results[i] = Some(m);
    }
    // The result mapping on every result at once.
    let have: Vec<usize> = (0..batch.len())
        .filter(|&i| results[i].is_some() && failed_at[i].is_none())
        .collect();
    let mut values: Vec<Option<Result<Vec<u8>, String>>> = vec![None; batch.len()];
    if let Some(r) = &mut b.result
        && !have.is_empty()
    {
        let inputs: Vec<Message> = have.iter().filter_map(|&i| results[i].take()).collect();
        match r.run_blocking(&inputs) {
            Ok(mapped) => {
                for (&i, m) in have.iter().zip(mapped) {
                    values[i] = Some(match m.error {
                        Some(e) => Err(format!("{label}: result_map: {e}")),
                        None => Ok(m.payload),
                    });
                }
            }
            Err(e) => {
                for &i in &have {
                    values[i] = Some(Err(format!("{label}: result_map: {e}")));
                }
            }
        }
    }
    let mut kept = Vec::with_capacity(batch.len());
    for (i, mut m) in batch.into_iter().enumerate() {
        if let Some(e) = failed_at[i].take() {
            m.error = Some(e);
            out.failed.push(m);
            continue;
        }
        match values[i].take() {
            None => kept.push(m),
            Some(Err(e)) => {
                m.error = Some(e);
                out.failed.push(m);
            }
            Some(Ok(value)) => match merge_into(&m.payload, &value) {
                Ok(merged) => {
                    m.payload = merged;
                    kept.push(m);
                }
                Err(e) => {
                    m.error = Some(format!("{label}: result_map: {e}"));
                    out.failed.push(m);
                }
            },
        }
    }
    kept
}

/// The original a copy is tied to.
fn branch_index(m: &Message) -> Option<usize> {
    crate::meta_get(m, BRANCH_INDEX)?.parse().ok()
}

/// Merges `value` (a JSON object) into `payload` (a JSON object): deeply, `value`'s fields winning.
fn merge_into(payload: &[u8], value: &[u8]) -> Result<Vec<u8>, String> {
    use serde_json::Value;
    fn merge(into: &mut serde_json::Map<String, Value>, from: serde_json::Map<String, Value>) {
        for (k, v) in from {
            match (into.get_mut(&k), v) {
                (Some(Value::Object(a)), Value::Object(b)) => merge(a, b),
                (_, v) => {
                    into.insert(k, v);
                }
            }
        }
    }
    let Ok(Value::Object(from)) = serde_json::from_slice::<Value>(value) else {
        return Err(format!(
            "its value must be an object to merge into the message, got {}",
            String::from_utf8_lossy(&value[..value.len().min(100)])
        ));
    };
    let Ok(Value::Object(mut into)) = serde_json::from_slice::<Value>(payload) else {
        return Err("the message is not a JSON object to merge the result into".into());
    };
    merge(&mut into, from);
    serde_json::to_vec(&Value::Object(into)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::merge_into;

    #[test]
    fn a_result_merges_deeply_into_the_original() {
        let merged = merge_into(
            br#"{"id":1,"user":{"id":7,"name":"old"}}"#,
            br#"{"user":{"name":"Ada","email":"a@x"}}"#,
        )
        .unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&merged).unwrap(),
            serde_json::json!({"id":1,"user":{"id":7,"name":"Ada","email":"a@x"}})
        );
        assert!(merge_into(br#"{"id":1}"#, b"3").is_err());
        assert!(merge_into(b"[1]", br#"{"a":1}"#).is_err());
    }
}
