//! Consecutive `mapping` and `filter` processors at the top of a stream's pipeline, run as one call of one
//! instance: the payload is parsed once, each program runs on the same value, and what is kept is serialized once
//! (the guests' side is `guests/vrl-common/src/steps.rs`, which also says how the call's results are marked).
//!
//! Every step keeps its own counters: what each took in, handed on, filtered and failed is exact; bytes between
//! two fused steps are never written out, so they are counted at the size the messages had when they came in, and
//! the call's time is shared among the steps by the messages each took in. A failed message's error names the
//! step it failed at, as it would unfused.
//!
//! The same steps one by one are made when first needed: while someone watches the live tap or traces journeys
//! (which show what each step hands on), and to find the step at fault when the fused call fails a batch as a
//! whole (a trap, a time limit), whose messages then go through them one by one.

use std::sync::Arc;
use std::time::Instant;

use airtruct_engine::{Engine, Limits, ProcessorInstance, Resources};

use crate::chain::{ChainOutput, ProcessorSpec, Seen, Step, Steps};
use crate::metrics::ComponentMetrics;
use crate::{Message, StreamMetrics};

/// The processors that can be fused.
const FUSABLE: [&str; 2] = ["mapping", "filter"];

/// The fused form's option, which only the runtime may give a mapping or a filter: a user's is refused with what
/// the processor expects.
pub(crate) fn refuse_fused_form(kind: &str, options: &serde_json::Value) -> Option<&'static str> {
    if !FUSABLE.contains(&kind) || options.get("steps").is_none() {
        return None;
    }
    Some(if kind == "mapping" {
        "expected the VRL program as a string, or an object {\"source\": \"...\"}"
    } else {
        "expected the VRL condition as a string, or an object {\"condition\": \"...\"}"
    })
}
/// The mark that starts a marked error of a fused call.
const MARK: char = '\0';
/// What follows [`MARK`] in the error of a fused call's summary (its last message).
const DROPS: &str = "drops";

/// Whether `spec` can be fused with the processors next to it of the same `limits`.
pub(crate) fn fusable(spec: &ProcessorSpec, limits: Option<&Limits>) -> bool {
    FUSABLE.contains(&spec.kind.as_str())
        && spec.grants.is_empty()
        && limits.is_none_or(|l| same_limits(l, &spec.limits))
}

fn same_limits(a: &Limits, b: &Limits) -> bool {
    a.memory_bytes == b.memory_bytes
        && a.timeout == b.timeout
        && a.max_output_bytes == b.max_output_bytes
}

/// A run of fused steps: one instance, and the same steps one by one when needed.
pub(crate) struct FusedNode {
    instance: ProcessorInstance,
    /// Each step's number and label.
    members: Vec<(usize, String)>,
    /// What the one-by-one steps are made from.
    specs: Vec<Step>,
    engine: Engine,
    resources: Option<Arc<dyn Resources>>,
    one_by_one: Option<Steps>,
}

/// A fused call's results, read.
struct Marked {
    kept: Vec<Message>,
    /// Each failed message, with the step it failed at.
    failed: Vec<(usize, Message)>,
    drops: Vec<u64>,
}

impl FusedNode {
    /// Instantiates `specs` (two or more fusable processors, numbered from `first`) as one; `None` when the
    /// component refuses the fused configuration, so that the caller makes them one by one and reports their
    /// own errors.
    pub(crate) fn build(
        engine: &Engine,
        resources: Option<&Arc<dyn Resources>>,
        specs: &[&ProcessorSpec],
        first: usize,
    ) -> Option<Self> {
        let steps: Vec<serde_json::Value> = specs
            .iter()
            .map(|s| {
                let config: serde_json::Value = serde_json::from_str(&s.config).ok()?;
                Some(serde_json::json!({ s.kind.clone(): config }))
            })
            .collect::<Option<_>>()?;
        let config = serde_json::json!({ "steps": steps }).to_string();
        // The steps' limits (the same for all): a batch that goes over them in one call runs again one by one,
        // each step under its own.
        let instance = match engine.instantiate_with(
            &specs[0].component,
            &config,
            specs[0].limits,
            None,
        ) {
            Ok(instance) => instance,
            Err(e) => {
                tracing::warn!(processor = %specs[0].label(), error = %e, "fusing failed; running the steps one by one");
                return None;
            }
        };
        Some(Self {
            instance,
            members: specs
                .iter()
                .enumerate()
                .map(|(i, s)| (first + i, s.label()))
                .collect(),
            specs: specs
                .iter()
                .map(|s| Step::Processor((*s).clone()))
                .collect(),
            engine: engine.clone(),
            resources: resources.cloned(),
            one_by_one: None,
        })
    }

    /// How many steps it runs.
    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }

    pub(crate) fn restarts(&self) -> u64 {
        self.instance.restarts() + self.one_by_one.as_ref().map_or(0, Steps::restarts)
    }

    /// The same steps one by one, made the first time.
    fn one_by_one(&mut self) -> Result<&mut Steps, String> {
        if self.one_by_one.is_none() {
            let mut errors = Vec::new();
            let mut next = self.members[0].0;
            let steps = Steps::build(
                &self.engine,
                self.resources.as_ref(),
                &self.specs,
                &mut next,
                &mut errors,
                false,
            );
            if !errors.is_empty() {
                return Err(errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "));
            }
            self.one_by_one = Some(steps);
        }
        Ok(self.one_by_one.as_mut().expect("made above"))
    }

    /// Runs the batch through the steps one by one: `observe` sees each (its position at the top from `top`).
    pub(crate) fn run_one_by_one(
        &mut self,
        batch: Vec<Message>,
        counters: &[Arc<ComponentMetrics>],
        observe: &mut dyn FnMut(Seen<'_>),
        top: usize,
        out: &mut ChainOutput,
    ) -> Vec<Message> {
        match self.one_by_one() {
            Ok(steps) => {
                let sub = steps.run_with(batch, counters, observe, Some(top), false);
                out.failed.extend(sub.failed);
                out.filtered += sub.filtered;
                sub.ok
            }
            Err(e) => {
                let label = &self.members[0].1;
                tracing::warn!(processor = %label, error = %e, "creating the steps one by one failed");
                for mut m in batch {
                    m.error = Some(format!("{label}: {e}"));
                    out.failed.push(m);
                }
                Vec::new()
            }
        }
    }

    /// Runs the batch through the fused call, counting each step in `counters`; the batch goes through the
    /// steps one by one when the call fails it as a whole.
    pub(crate) fn run(
        &mut self,
        batch: Vec<Message>,
        counters: &[Arc<ComponentMetrics>],
        top: usize,
        out: &mut ChainOutput,
    ) -> Vec<Message> {
        let started = Instant::now();
        let read = self
            .instance
            .process(&batch)
            .map_err(|e| e.to_string())
            .and_then(|r| read_marked(r, self.members.len()));
        let marked = match read {
            Ok(marked) => marked,
            Err(e) => {
                tracing::debug!(processor = %self.members[0].1, error = %e, "the fused call failed the batch; running its steps one by one");
                // The failed call's time goes to the first step.
                if let Some(c) = counters.get(self.members[0].0) {
                    c.time(started);
                }
                return self.run_one_by_one(batch, counters, &mut |_| {}, top, out);
            }
        };
        let elapsed_us = started.elapsed().as_micros() as u64;
        let n_in = batch.len() as u64;
        let bytes_in: u64 = batch.iter().map(|m| m.payload.len() as u64).sum();
        let bytes_kept: u64 = marked.kept.iter().map(|m| m.payload.len() as u64).sum();
        let mut failed_at = vec![0u64; self.members.len()];
        for (at, mut m) in marked.failed {
            failed_at[at] += 1;
            let e = m.error.take().unwrap_or_default();
            m.error = Some(format!("{}: {e}", self.members[at].1));
            out.failed.push(m);
        }
        out.filtered += marked.drops.iter().sum::<u64>();
        // What each step took in: the batch, less what the steps before dropped and failed.
        let mut received = Vec::with_capacity(self.members.len());
        let mut going = n_in;
        for (failed, dropped) in failed_at.iter().zip(&marked.drops) {
            received.push(going);
            going = going.saturating_sub(failed + dropped);
        }
        let all_received: u64 = received.iter().sum::<u64>().max(1);
        let mean_size = bytes_in.checked_div(n_in).unwrap_or_default();
        let last = self.members.len() - 1;
        for (i, (at, _)) in self.members.iter().enumerate() {
            let Some(c) = counters.get(*at) else { continue };
            let sent = received.get(i + 1).copied().unwrap_or(going);
            StreamMetrics::add(&c.received, received[i]);
            StreamMetrics::add(&c.sent, sent);
            StreamMetrics::add(&c.filtered, marked.drops[i]);
            StreamMetrics::add(&c.failed, failed_at[i]);
            StreamMetrics::add(
                &c.bytes_in,
                if i == 0 {
                    bytes_in
                } else {
                    received[i] * mean_size
                },
            );
            StreamMetrics::add(
                &c.bytes_out,
                if i == last {
                    bytes_kept
                } else {
                    sent * mean_size
                },
            );
            StreamMetrics::add(&c.processing_us, elapsed_us * received[i] / all_received);
        }
        marked.kept
    }
}

/// Reads a fused call's results (see `guests/vrl-common/src/steps.rs`).
fn read_marked(mut results: Vec<Message>, steps: usize) -> Result<Marked, String> {
    let summary = results
        .pop()
        .and_then(|m| m.error)
        .and_then(|e| {
            e.strip_prefix(MARK)?
                .strip_prefix(DROPS)?
                .strip_prefix(MARK)
                .map(str::to_string)
        })
        .ok_or("the fused call's results end without their summary")?;
    let drops: Vec<u64> = summary
        .split(',')
        .map(|n| n.parse().map_err(|_| format!("a bad summary: {summary:?}")))
        .collect::<Result<_, _>>()?;
    if drops.len() != steps {
        return Err(format!("a summary of {} steps for {steps}", drops.len()));
    }
    let mut kept = Vec::with_capacity(results.len());
    let mut failed = Vec::new();
    for mut m in results {
        let Some(error) = m.error.take() else {
            kept.push(m);
            continue;
        };
        let (at, text) = error
            .strip_prefix(MARK)
            .and_then(|rest| rest.split_once(MARK))
            .and_then(|(at, text)| Some((at.parse::<usize>().ok()?, text)))
            .filter(|(at, _)| *at < steps)
            .ok_or_else(|| format!("a failed message without its step: {error:?}"))?;
        m.error = Some(text.to_string());
        failed.push((at, m));
    }
    // In the order the steps one by one would fail them: step by step.
    failed.sort_by_key(|(at, _)| *at);
    Ok(Marked {
        kept,
        failed,
        drops,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Chain;
    use airtruct_engine::{EngineConfig, Grants};

    fn engine() -> Engine {
        Engine::new(EngineConfig {
            cache_dir: Some(std::env::temp_dir().join("airtruct-runtime-test-components")),
            ..Default::default()
        })
        .unwrap()
    }

    fn spec(engine: &Engine, at: usize, kind: &str, wasm: &[u8], config: &str) -> Step {
        Step::Processor(ProcessorSpec {
            path: format!("pipeline.processors[{at}]"),
            kind: kind.to_string(),
            component: engine.load(wasm).unwrap(),
            config: serde_json::to_string(config).unwrap(),
            limits: Limits::default(),
            grants: Arc::new(Grants::default()),
        })
    }

    fn counters(n: usize) -> Vec<Arc<ComponentMetrics>> {
        (0..n)
            .map(|_| Arc::new(ComponentMetrics::default()))
            .collect()
    }

    fn batch(payloads: &[String]) -> Vec<Message> {
        payloads.iter().map(|p| msg(p, None)).collect()
    }

    /// Payloads and errors, for comparing.
    fn seen(ms: &[Message]) -> Vec<(String, Option<String>)> {
        ms.iter()
            .map(|m| {
                (
                    String::from_utf8_lossy(&m.payload).into_owned(),
                    m.error.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn fused_steps_give_what_they_give_one_by_one_and_count_each_step() {
        let engine = engine();
        let (mapping, filter) = (
            airtruct_builtins::MAPPING.wasm,
            airtruct_builtins::FILTER.wasm,
        );
        let steps = vec![
            spec(
                &engine,
                0,
                "mapping",
                mapping,
                ".n = to_int!(.n)\n.big = .n > 5",
            ),
            spec(&engine, 1, "filter", filter, ".n != 3"),
            spec(
                &engine,
                2,
                "mapping",
                mapping,
                "if .n == 7 { abort \"seven\" }\n.seen = true",
            ),
            spec(&engine, 3, "filter", filter, ".big || .n < 3"),
        ];
        let payloads: Vec<String> = (0..12)
            .map(|n| format!(r#"{{"n":"{n}"}}"#))
            .chain([r#"{"n":"x"}"#.to_string()])
            .collect();
        let mut fused = Chain::fused(&engine, &steps, None).unwrap();
        assert_eq!(fused.widths(), [4], "the four steps run as one call");
        let mut apart = Chain::new(&engine, &steps).unwrap();
        assert_eq!(apart.widths(), [1, 1, 1, 1]);
        let (a, b) = (counters(4), counters(4));
        let got = fused.run_counted(batch(&payloads), &a);
        let want = apart.run_counted(batch(&payloads), &b);
        assert_eq!(seen(&got.ok), seen(&want.ok));
        assert_eq!(seen(&got.failed), seen(&want.failed));
        assert_eq!(got.filtered, want.filtered);
        // 0, 1, 2 and 6..11 kept but 7, which failed at the second mapping with the first one's work; x failed at
        // the first.
        assert_eq!(got.ok.len(), 8);
        let failed = seen(&got.failed);
        assert_eq!(failed[0].0, r#"{"n":"x"}"#);
        let e = failed[0].1.as_deref().unwrap();
        assert!(
            e.starts_with("pipeline.processors[0] (mapping): mapping failed"),
            "{e}"
        );
        assert_eq!(
            failed[1],
            (
                r#"{"big":true,"n":7}"#.to_string(),
                Some("pipeline.processors[2] (mapping): mapping aborted: seven".to_string())
            )
        );
        for (x, y) in a.iter().zip(&b) {
            let (x, y) = (x.snapshot(), y.snapshot());
            assert_eq!(
                (x.received, x.sent, x.filtered, x.failed),
                (y.received, y.sent, y.filtered, y.failed)
            );
        }
        let first = (a[0].snapshot(), b[0].snapshot());
        assert_eq!(first.0.bytes_in, first.1.bytes_in);
        let last = (a[3].snapshot(), b[3].snapshot());
        assert_eq!(last.0.bytes_out, last.1.bytes_out);

        // Watched (the test endpoint, the tap), the fused steps run one by one and each is seen.
        let watched = |chain: &mut Chain| {
            let mut saw = Vec::new();
            chain.run(batch(&payloads), |s| {
                saw.push((s.at, s.top, s.ok.len(), s.failed_here.len()))
            });
            saw
        };
        assert_eq!(watched(&mut fused), watched(&mut apart));
    }

    #[test]
    fn a_batch_the_fused_call_fails_goes_through_the_steps_one_by_one() {
        let engine = engine();
        use airtruct_builtins::fixtures::{ECHO, PANIC};
        let payloads: Vec<String> = (0..3).map(|n| n.to_string()).collect();
        // A component that does not mark its results: its results are not trusted, the steps run one by one.
        let steps = vec![
            spec(&engine, 0, "mapping", ECHO, "x"),
            spec(&engine, 1, "filter", ECHO, "y"),
        ];
        let mut chain = Chain::fused(&engine, &steps, None).unwrap();
        let c = counters(2);
        let out = chain.run_counted(batch(&payloads), &c);
        assert_eq!(seen(&out.ok), seen(&batch(&payloads)));
        assert_eq!((c[1].snapshot().received, c[1].snapshot().sent), (3, 3));
        // A trap in the fused call: the batch goes through the steps one by one and fails at the one that traps.
        let steps = vec![
            spec(&engine, 0, "mapping", PANIC, "x"),
            spec(&engine, 1, "filter", ECHO, "y"),
        ];
        let mut chain = Chain::fused(&engine, &steps, None).unwrap();
        assert_eq!(chain.widths(), [2]);
        let c = counters(2);
        let payloads = ["0", "boom", "2"].map(String::from);
        let out = chain.run_counted(batch(&payloads), &c);
        assert!(out.ok.is_empty());
        assert_eq!(out.failed.len(), 3);
        for m in &out.failed {
            let e = m.error.as_deref().unwrap();
            assert!(e.starts_with("pipeline.processors[0] (mapping): "), "{e}");
            assert!(e.contains("fixture panic"), "{e}");
        }
        let counted = |i: usize| {
            let s = c[i].snapshot();
            (s.received, s.sent, s.failed)
        };
        assert_eq!([counted(0), counted(1)], [(3, 0, 3), (0, 0, 0)]);
        // The fused instance and the step's own are each replaced after their trap, and the next batch goes on.
        let out = chain.run_counted(batch(&["3".to_string()]), &c);
        assert_eq!(seen(&out.ok), seen(&batch(&["3".to_string()])));
        assert_eq!(chain.restarts(), 2);
    }

    fn msg(payload: &str, error: Option<&str>) -> Message {
        Message {
            payload: payload.as_bytes().to_vec(),
            metadata: Vec::new(),
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn marked_results_are_read() {
        let read = read_marked(
            vec![
                msg("a", None),
                msg("b", Some("\u{0}1\u{0}filter failed: no")),
                msg("c", None),
                msg("", Some("\u{0}drops\u{0}0,2,1")),
            ],
            3,
        )
        .unwrap();
        assert_eq!(read.kept.len(), 2);
        assert_eq!(read.failed.len(), 1);
        assert_eq!(read.failed[0].0, 1);
        assert_eq!(read.failed[0].1.error.as_deref(), Some("filter failed: no"));
        assert_eq!(read.drops, vec![0, 2, 1]);
    }

    #[test]
    fn unmarked_results_are_refused() {
        // No summary (a component that does not know the fused form).
        assert!(read_marked(vec![msg("a", None)], 2).is_err());
        // A summary of the wrong length, a failure without its step, a step out of range.
        let summary = || msg("", Some("\u{0}drops\u{0}0,0"));
        assert!(read_marked(vec![msg("", Some("\u{0}drops\u{0}0"))], 2).is_err());
        assert!(read_marked(vec![msg("a", Some("mapping failed")), summary()], 2).is_err());
        assert!(read_marked(vec![msg("a", Some("\u{0}2\u{0}x")), summary()], 2).is_err());
        assert!(read_marked(vec![summary()], 2).is_ok());
    }
}
