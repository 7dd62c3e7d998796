//! The processor chain of a stream: which component and configuration each processor runs, and the per-thread
//! chain of instances that a batch goes through step by step.

use std::sync::Arc;

use airtruct_engine::{Engine, InitError, Limits, LoadedComponent, ProcessorInstance};
use airtruct_model::{Component, ValidationError, join_path};

use crate::journeys::TRACE_KEY;
use crate::metrics::ComponentMetrics;
use crate::tap::Tap;
use crate::{Message, StreamMetrics};

/// A resolved processor: its component, its configuration (JSON text) and its limits.
#[derive(Debug, Clone)]
pub struct ProcessorSpec {
    /// Where it sits in the config (`pipeline.processors[0]`).
    pub path: String,
    /// Its kind (`mapping`, `wasm`).
    pub kind: String,
    pub component: Arc<LoadedComponent>,
    pub config: String,
    pub limits: Limits,
}

impl ProcessorSpec {
    /// A label for errors and logs: `pipeline.processors[0] (mapping)`.
    pub fn label(&self) -> String {
        format!("{} ({})", self.path, self.kind)
    }

    /// Creates an instance, turning `init` errors into validation errors at this processor's options path.
    pub fn instantiate(&self, engine: &Engine) -> Result<ProcessorInstance, Vec<ValidationError>> {
        engine
            .instantiate(&self.component, &self.config, self.limits)
            .map_err(|e| match e {
                InitError::Config(errors) => errors
                    .into_iter()
                    .map(|e| {
                        ValidationError::new(join_path(&self.options_path(), &e.path), e.message)
                    })
                    .collect(),
                InitError::Call(e) => {
                    vec![ValidationError::new(self.options_path(), e.to_string())]
                }
            })
    }

    /// Where this processor's own configuration sits: `init` errors are paths inside it.
    pub(crate) fn options_path(&self) -> String {
        let options = Component {
            kind: self.kind.clone(),
            options: serde_json::Value::Null,
            path: self.path.clone(),
        }
        .options_path();
        if self.kind == "wasm" {
            join_path(&options, "config")
        } else {
            options
        }
    }
}

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

/// One thread's instances of every processor of a stream.
pub struct Chain {
    steps: Vec<(ProcessorSpec, ProcessorInstance)>,
}

impl Chain {
    /// Instantiates every processor.
    pub fn new(engine: &Engine, specs: &[ProcessorSpec]) -> Result<Self, Vec<ValidationError>> {
        let mut steps = Vec::with_capacity(specs.len());
        let mut errors = Vec::new();
        for spec in specs {
            match spec.instantiate(engine) {
                Ok(i) => steps.push((spec.clone(), i)),
                Err(e) => errors.extend(e),
            }
        }
        if errors.is_empty() {
            Ok(Self { steps })
        } else {
            Err(errors)
        }
    }

    /// Instance replacements so far, over every step.
    pub fn restarts(&self) -> u64 {
        self.steps.iter().map(|(_, i)| i.restarts()).sum()
    }

    /// Runs a batch through every processor. `observe(step, ok, failed_so_far)` sees the messages after each
    /// step (used by the test endpoint).
    pub fn run(
        &mut self,
        batch: Vec<Message>,
        observe: impl FnMut(usize, &[Message], &[Message]),
    ) -> ChainOutput {
        self.run_with(batch, &[], observe)
    }

    /// Runs a batch through every processor, counting what each step took in, handed on, filtered and failed,
    /// and its time, in `counters` (one per step).
    pub fn run_counted(
        &mut self,
        batch: Vec<Message>,
        counters: &[Arc<ComponentMetrics>],
    ) -> ChainOutput {
        self.run_with(batch, counters, |_, _, _| {})
    }

    /// [`Chain::run_counted`], sampling what each step handed on and what failed at it into `tap` (step `i + 1`
    /// for processor `i`) while someone watches.
    pub fn run_tapped(
        &mut self,
        batch: Vec<Message>,
        counters: &[Arc<ComponentMetrics>],
        tap: &Tap,
    ) -> ChainOutput {
        if !tap.active() && !tap.tracing() {
            return self.run_counted(batch, counters);
        }
        let labels: Vec<String> = self.steps.iter().map(|(s, _)| s.label()).collect();
        let mut failed_before = 0;
        let traced = |ms: &[Message]| -> Vec<Message> {
            ms.iter()
                .filter(|m| crate::meta_get(m, TRACE_KEY).is_some())
                .cloned()
                .collect()
        };
        // The traced messages that went into the step being run, to tell which of them it filtered out.
        let mut going_in = if tap.tracing() {
            traced(&batch)
        } else {
            Vec::new()
        };
        self.run_with(batch, counters, |i, ok, failed| {
            let label = || labels[i].clone();
            let new_failed = &failed[failed_before..];
            tap.sample(i + 1, &label, ok.iter().chain(new_failed));
            if tap.tracing() {
                // One look at each message's metadata; what follows works on the few traced ones.
                let traced_ok = traced(ok);
                let traced_failed = traced(new_failed);
                tap.record(i + 1, &label, traced_ok.iter().chain(&traced_failed), false);
                let out: std::collections::HashSet<&str> = traced_ok
                    .iter()
                    .chain(&traced_failed)
                    .filter_map(|m| crate::meta_get(m, TRACE_KEY))
                    .collect();
                let filtered = going_in
                    .iter()
                    .filter(|m| crate::meta_get(m, TRACE_KEY).is_some_and(|id| !out.contains(id)));
                tap.record(i + 1, &label, filtered, true);
                going_in = traced_ok;
            }
            failed_before = failed.len();
        })
    }

    fn run_with(
        &mut self,
        batch: Vec<Message>,
        counters: &[Arc<ComponentMetrics>],
        mut observe: impl FnMut(usize, &[Message], &[Message]),
    ) -> ChainOutput {
        let mut out = ChainOutput::default();
        let mut current = batch;
        for (i, (spec, instance)) in self.steps.iter_mut().enumerate() {
            if current.is_empty() {
                observe(i, &current, &out.failed);
                continue;
            }
            let n_in = current.len() as u64;
            let bytes_in: u64 = current.iter().map(|m| m.payload.len() as u64).sum();
            let failed_before = out.failed.len() as u64;
            let filtered_before = out.filtered;
            let started = std::time::Instant::now();
            match instance.process(&current) {
                Ok(result) => {
                    let mut next = Vec::with_capacity(result.len());
                    for mut m in result {
                        match m.error.take() {
                            None => next.push(m),
                            Some(e) => {
                                m.error = Some(format!("{}: {e}", spec.label()));
                                out.failed.push(m);
                            }
                        }
                    }
                    let produced = next.len() as u64 + (out.failed.len() as u64 - failed_before);
                    out.filtered += n_in.saturating_sub(produced);
                    current = next;
                }
                Err(e) => {
                    tracing::warn!(processor = %spec.label(), error = %e, messages = current.len(), "batch failed");
                    let error = format!("{}: {e}", spec.label());
                    for mut m in current.drain(..) {
                        m.error = Some(error.clone());
                        out.failed.push(m);
                    }
                }
            }
            if let Some(c) = counters.get(i) {
                c.time(started);
                StreamMetrics::add(&c.received, n_in);
                StreamMetrics::add(&c.bytes_in, bytes_in);
                StreamMetrics::add(&c.sent, current.len() as u64);
                StreamMetrics::add(
                    &c.bytes_out,
                    current.iter().map(|m| m.payload.len() as u64).sum(),
                );
                StreamMetrics::add(&c.filtered, out.filtered - filtered_before);
                StreamMetrics::add(&c.failed, out.failed.len() as u64 - failed_before);
            }
            observe(i, &current, &out.failed);
        }
        out.ok = current;
        out
    }
}
