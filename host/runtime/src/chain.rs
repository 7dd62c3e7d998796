//! The processor chain of a stream: the per-thread chain of instances that a batch goes through step by step,
//! made from the steps of `spec.rs` (each processor's component and configuration, and the control flow the
//! host runs among them: `switch`, `catch`, `try`, see [`crate::control`]).
//!
//! Steps are numbered in order, those inside control flow included (a `switch` first, then the steps of its
//! cases): counters, the live tap and the test endpoint see every step by that number.

use std::sync::Arc;

use airtruct_engine::{Engine, ProcessorInstance, Resources};
use airtruct_model::ValidationError;

use crate::control::run::{BranchNode, CaseNode};
use crate::fused::FusedNode;
use crate::journeys::TRACE_KEY;
use crate::metrics::ComponentMetrics;
use crate::tap::Tap;
use crate::vrl::VrlProgram;
use crate::{Message, StreamMetrics};

pub use crate::spec::{BranchSpec, CaseSpec, ControlSpec, Flow, ProcessorSpec, Step};

/// The outcome of a batch through the chain.
#[derive(Debug, Default)]
pub struct ChainOutput {
    /// Messages that went through every processor.
    pub ok: Vec<Message>,
    /// Messages that failed, each with its error.
    pub failed: Vec<Message>,
    /// Messages filtered out (counted, not kept).
    pub filtered: u64,
}

/// What a step handed on, seen after it ran (by the test endpoint, the tap and stream tests).
pub struct Seen<'a> {
    /// The step's number (see the module's documentation).
    pub at: usize,
    /// Its position in `pipeline.processors`, for a step at the top.
    pub top: Option<usize>,
    /// What it handed on.
    pub ok: &'a [Message],
    /// What failed at it (inside it, for control flow).
    pub failed_here: &'a [Message],
    /// What has failed so far in the list it is in and not been caught (at the top: the whole pipeline's).
    pub failed_so_far: &'a [Message],
}

/// One thread's instances of every step of a stream.
pub struct Chain {
    steps: Steps,
    /// Every step's label, by number.
    labels: Vec<String>,
}

/// The instances of a list of steps (the pipeline's, or one inside control flow).
pub(crate) struct Steps(Vec<Node>);

struct Node {
    at: usize,
    label: String,
    run: Run,
}

enum Run {
    Processor(ProcessorInstance),
    Switch(Vec<CaseNode>),
    Catch(Steps),
    Try(Steps),
    Branch(Box<BranchNode>),
    /// Consecutive mappings and filters as one call (see [`crate::fused`]).
    Fused(Box<FusedNode>),
}

impl Chain {
    /// Instantiates every processor (and every condition), without resources.
    pub fn new(engine: &Engine, steps: &[Step]) -> Result<Self, Vec<ValidationError>> {
        Self::with_resources(engine, steps, None)
    }

    /// [`Chain::new`], its processors calling through the stream's `resources` as their grants allow.
    pub fn with_resources(
        engine: &Engine,
        steps: &[Step],
        resources: Option<Arc<dyn Resources>>,
    ) -> Result<Self, Vec<ValidationError>> {
        Self::build(engine, steps, resources, false)
    }

    /// [`Chain::with_resources`] for a running stream: consecutive mappings and filters at the top of the
    /// pipeline fused into one call each (see [`crate::fused`]).
    pub fn fused(
        engine: &Engine,
        steps: &[Step],
        resources: Option<Arc<dyn Resources>>,
    ) -> Result<Self, Vec<ValidationError>> {
        Self::build(engine, steps, resources, true)
    }

    fn build(
        engine: &Engine,
        steps: &[Step],
        resources: Option<Arc<dyn Resources>>,
        fuse: bool,
    ) -> Result<Self, Vec<ValidationError>> {
        let mut errors = Vec::new();
        let built = Steps::build(engine, resources.as_ref(), steps, &mut 0, &mut errors, fuse);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            steps: built,
            labels: Step::flatten(steps).iter().map(|s| s.label()).collect(),
        })
    }

    /// Every step's label (`pipeline.processors[0] (mapping)`), by number.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// How many steps each top-level call runs (more than one when fused).
    #[cfg(test)]
    pub(crate) fn widths(&self) -> Vec<usize> {
        self.steps
            .0
            .iter()
            .map(|n| match &n.run {
                Run::Fused(f) => f.len(),
                _ => 1,
            })
            .collect()
    }

    /// Instance replacements so far, over every step.
    pub fn restarts(&self) -> u64 {
        self.steps.restarts()
    }

    /// Runs a batch through every step. `observe` sees what each step handed on (used by the test endpoint).
    pub fn run(&mut self, batch: Vec<Message>, mut observe: impl FnMut(Seen<'_>)) -> ChainOutput {
        self.steps
            .run_with(batch, &[], &mut observe, Some(0), false)
    }

    /// Runs a batch through every step, counting what each took in, handed on, filtered and failed, and its
    /// time, in `counters` (one per step, by number).
    pub fn run_counted(
        &mut self,
        batch: Vec<Message>,
        counters: &[Arc<ComponentMetrics>],
    ) -> ChainOutput {
        self.steps
            .run_with(batch, counters, &mut |_| {}, Some(0), true)
    }

    /// [`Chain::run_counted`], sampling what each step handed on and what failed at it into `tap` (step `n + 1`
    /// for step number `n`) while someone watches.
    pub fn run_tapped(
        &mut self,
        batch: Vec<Message>,
        counters: &[Arc<ComponentMetrics>],
        tap: &Tap,
    ) -> ChainOutput {
        if !tap.active() && !tap.tracing() {
            return self.run_counted(batch, counters);
        }
        let labels = self.labels.clone();
        let traced = |ms: &[Message]| -> Vec<Message> {
            ms.iter()
                .filter(|m| crate::meta_get(m, TRACE_KEY).is_some())
                .cloned()
                .collect()
        };
        // The traced messages that went into the top step being run, to tell which of them it filtered out.
        let mut going_in = if tap.tracing() {
            traced(&batch)
        } else {
            Vec::new()
        };
        self.steps.run_with(
            batch,
            counters,
            &mut |seen: Seen<'_>| {
                let i = seen.at;
                let label = || labels.get(i).cloned().unwrap_or_default();
                tap.sample(i + 1, &label, seen.ok.iter().chain(seen.failed_here));
                if tap.tracing() {
                    // One look at each message's metadata; what follows works on the few traced ones.
                    let traced_ok = traced(seen.ok);
                    let traced_failed = traced(seen.failed_here);
                    tap.record(i + 1, &label, traced_ok.iter().chain(&traced_failed), false);
                    if seen.top.is_some() {
                        let out: std::collections::HashSet<&str> = traced_ok
                            .iter()
                            .chain(&traced_failed)
                            .chain(seen.failed_so_far)
                            .filter_map(|m| crate::meta_get(m, TRACE_KEY))
                            .collect();
                        let filtered = going_in.iter().filter(|m| {
                            crate::meta_get(m, TRACE_KEY).is_some_and(|id| !out.contains(id))
                        });
                        tap.record(i + 1, &label, filtered, true);
                        going_in = traced_ok;
                    }
                }
            },
            Some(0),
            false,
        )
    }
}

impl Steps {
    /// Instantiates `steps`, numbered from `next`; with `fuse`, runs of consecutive mappings and filters are
    /// fused (at the top of a pipeline only: the steps inside control flow are made one by one).
    pub(crate) fn build(
        engine: &Engine,
        resources: Option<&Arc<dyn Resources>>,
        steps: &[Step],
        next: &mut usize,
        errors: &mut Vec<ValidationError>,
        fuse: bool,
    ) -> Self {
        let mut nodes = Vec::with_capacity(steps.len());
        let mut i = 0;
        // Steps before this one are not fused (a run whose fused instance could not be made).
        let mut apart_until = 0;
        while i < steps.len() {
            let step = &steps[i];
            i += 1;
            if fuse && i > apart_until {
                match Self::fuse(engine, resources, &steps[i - 1..], *next) {
                    Ok(Some(fused)) => {
                        let n = fused.len();
                        i += n - 1;
                        nodes.push(Node {
                            at: *next,
                            label: step.label(),
                            run: Run::Fused(Box::new(fused)),
                        });
                        *next += n;
                        continue;
                    }
                    Ok(None) => {}
                    Err(n) => apart_until = i - 1 + n,
                }
            }
            let at = *next;
            *next += 1;
            let run = match step {
                Step::Processor(spec) => match spec.instantiate_with(engine, resources) {
                    Ok(i) => Some(Run::Processor(i)),
                    Err(e) => {
                        errors.extend(e);
                        None
                    }
                },
                Step::Control(c) => {
                    let mut sub = |steps: &[Step], errors: &mut Vec<ValidationError>| {
                        Self::build(engine, resources, steps, next, errors, false)
                    };
                    match &c.flow {
                        Flow::Try(steps) => Some(Run::Try(sub(steps, errors))),
                        Flow::Catch(steps) => Some(Run::Catch(sub(steps, errors))),
                        Flow::Branch(b) => {
                            let mut runner = |p: &Option<VrlProgram>, field: &str| {
                                let p = p.as_ref()?;
                                p.runner()
                                    .map_err(|e| {
                                        let at = format!("{}.branch.{field}", c.path);
                                        errors.push(ValidationError::new(at, e.to_string()))
                                    })
                                    .ok()
                            };
                            let request = runner(&b.request, "request_map");
                            let result = runner(&b.result, "result_map");
                            Some(Run::Branch(Box::new(BranchNode {
                                request,
                                steps: sub(&b.steps, errors),
                                result,
                            })))
                        }
                        Flow::Switch(cases) => {
                            let mut nodes = Vec::with_capacity(cases.len());
                            for case in cases {
                                let check = match &case.check {
                                    None => None,
                                    Some((condition, path)) => match condition.runner() {
                                        Ok(r) => Some((r, path.clone())),
                                        Err(e) => {
                                            errors.push(ValidationError::new(path, e.to_string()));
                                            None
                                        }
                                    },
                                };
                                nodes.push(CaseNode {
                                    check,
                                    steps: sub(&case.steps, errors),
                                    fallthrough: case.fallthrough,
                                });
                            }
                            Some(Run::Switch(nodes))
                        }
                    }
                }
            };
            if let Some(run) = run {
                nodes.push(Node {
                    at,
                    label: step.label(),
                    run,
                });
            }
        }
        Self(nodes)
    }

    pub(crate) fn restarts(&self) -> u64 {
        self.0
            .iter()
            .map(|n| match &n.run {
                Run::Processor(i) => i.restarts(),
                Run::Switch(cases) => cases.iter().map(|c| c.steps.restarts()).sum(),
                Run::Catch(s) | Run::Try(s) => s.restarts(),
                Run::Branch(b) => b.steps.restarts(),
                Run::Fused(f) => f.restarts(),
            })
            .sum()
    }

    /// The run of two or more fusable processors that `steps` starts with, fused (none when there is no such
    /// run; the run's length when its fused instance could not be made).
    fn fuse(
        engine: &Engine,
        resources: Option<&Arc<dyn Resources>>,
        steps: &[Step],
        first: usize,
    ) -> Result<Option<FusedNode>, usize> {
        let mut run: Vec<&ProcessorSpec> = Vec::new();
        for step in steps {
            match step {
                Step::Processor(p) if crate::fused::fusable(p, run.first().map(|f| &f.limits)) => {
                    run.push(p)
                }
                _ => break,
            }
        }
        if run.len() < 2 {
            return Ok(None);
        }
        FusedNode::build(engine, resources, &run, first)
            .map(Some)
            .ok_or(run.len())
    }

    pub(crate) fn run_with(
        &mut self,
        batch: Vec<Message>,
        counters: &[Arc<ComponentMetrics>],
        observe: &mut dyn FnMut(Seen<'_>),
        top: Option<usize>,
        fuse: bool,
    ) -> ChainOutput {
        let mut out = ChainOutput::default();
        let mut current = batch;
        // The position in `pipeline.processors` of the next step, for steps at the top.
        let mut position = top;
        for node in self.0.iter_mut() {
            let here = position;
            let width = match &node.run {
                Run::Fused(f) => f.len(),
                _ => 1,
            };
            position = position.map(|p| p + width);
            let mut n_in = current.len() as u64;
            let mut bytes_in: u64 = current.iter().map(|m| m.payload.len() as u64).sum();
            // Where this step's failures start in `out.failed`.
            let mut first_new = out.failed.len();
            let filtered_before = out.filtered;
            let started = std::time::Instant::now();
            let mut ran = true;
            let mut observed = false;
            match &mut node.run {
                Run::Processor(_) if current.is_empty() => ran = false,
                Run::Processor(instance) => {
                    current = run_processor(instance, &node.label, current, &mut out);
                }
                // Counted and observed step by step inside.
                Run::Fused(f) => {
                    (ran, observed) = (false, true);
                    let batch = std::mem::take(&mut current);
                    let first = here.unwrap_or_default();
                    if !fuse {
                        current = f.run_one_by_one(batch, counters, observe, first, &mut out);
                    } else {
                        if !batch.is_empty() {
                            current = f.run(batch, counters, first, &mut out);
                        }
                        observe(Seen {
                            at: node.at + width - 1,
                            top: here.map(|p| p + width - 1),
                            ok: &current,
                            failed_here: &out.failed[first_new..],
                            failed_so_far: &out.failed,
                        });
                    }
                }
                Run::Try(chain) => {
                    let sub = chain.run_with(
                        std::mem::take(&mut current),
                        counters,
                        observe,
                        None,
                        false,
                    );
                    current = sub.ok;
                    out.failed.extend(sub.failed);
                    out.filtered += sub.filtered;
                }
                Run::Catch(chain) => {
                    let caught: Vec<Message> = std::mem::take(&mut out.failed)
                        .into_iter()
                        .map(|mut m| {
                            let e = m.error.take().unwrap_or_default();
                            crate::meta_set(&mut m, "error", &e);
                            m
                        })
                        .collect();
                    first_new = 0;
                    n_in += caught.len() as u64;
                    bytes_in += caught.iter().map(|m| m.payload.len() as u64).sum::<u64>();
                    let sub = chain.run_with(caught, counters, observe, None, false);
                    for mut m in sub.ok {
                        crate::meta_remove(&mut m, "error");
                        current.push(m);
                    }
                    out.failed.extend(sub.failed);
                    out.filtered += sub.filtered;
                }
                Run::Switch(cases) => {
                    current = crate::control::run::run_switch(
                        cases,
                        std::mem::take(&mut current),
                        counters,
                        observe,
                        &mut out,
                    );
                }
                Run::Branch(b) => {
                    current = crate::control::run::run_branch(
                        b,
                        &node.label,
                        std::mem::take(&mut current),
                        counters,
                        observe,
                        &mut out,
                    );
                }
            }
            if ran && let Some(c) = counters.get(node.at) {
                c.time(started);
                StreamMetrics::add(&c.received, n_in);
                StreamMetrics::add(&c.bytes_in, bytes_in);
                StreamMetrics::add(&c.sent, current.len() as u64);
                StreamMetrics::add(
                    &c.bytes_out,
                    current.iter().map(|m| m.payload.len() as u64).sum(),
                );
                StreamMetrics::add(&c.filtered, out.filtered - filtered_before);
                StreamMetrics::add(&c.failed, (out.failed.len() - first_new) as u64);
            }
            if !observed {
                observe(Seen {
                    at: node.at,
                    top: here,
                    ok: &current,
                    failed_here: &out.failed[first_new..],
                    failed_so_far: &out.failed,
                });
            }
        }
        out.ok = current;
        out
    }
}

/// One processor call: what it hands on, with its failures (labelled) added to `out`.
fn run_processor(
    instance: &mut ProcessorInstance,
    label: &str,
    mut current: Vec<Message>,
    out: &mut ChainOutput,
) -> Vec<Message> {
    let n_in = current.len() as u64;
    let failed_before = out.failed.len() as u64;
    match instance.process(&current) {
        Ok(result) => {
            let mut next = Vec::with_capacity(result.len());
            for mut m in result {
                match m.error.take() {
                    None => next.push(m),
                    Some(e) => {
                        m.error = Some(format!("{label}: {e}"));
                        out.failed.push(m);
                    }
                }
            }
            let produced = next.len() as u64 + (out.failed.len() as u64 - failed_before);
            out.filtered += n_in.saturating_sub(produced);
            next
        }
        Err(e) => {
            tracing::warn!(processor = %label, error = %e, messages = current.len(), "batch failed");
            let error = format!("{label}: {e}");
            for mut m in current.drain(..) {
                m.error = Some(error.clone());
                out.failed.push(m);
            }
            current
        }
    }
}
