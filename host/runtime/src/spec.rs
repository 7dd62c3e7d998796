//! What a stream's processor chain is made from: each resolved processor ([`ProcessorSpec`]: its component,
//! configuration, limits and grants) and the control flow among them ([`Step`], [`ControlSpec`]). The instances
//! that run them are [`crate::chain`]'s.

use std::sync::Arc;

use airtruct_engine::{
    Engine, Grants, HostAccess, InitError, Limits, LoadedComponent, ProcessorInstance, Resources,
};
use airtruct_model::{Component, ValidationError, join_path};

use crate::vrl::{VrlCondition, VrlProgram};

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
    /// The resources it may call through.
    pub grants: Arc<Grants>,
}

impl ProcessorSpec {
    /// A label for errors and logs: `pipeline.processors[0] (mapping)`.
    pub fn label(&self) -> String {
        format!("{} ({})", self.path, self.kind)
    }

    /// Creates an instance without resources (every capability call is `not-granted`), turning `init` errors
    /// into validation errors at this processor's options path.
    pub fn instantiate(&self, engine: &Engine) -> Result<ProcessorInstance, Vec<ValidationError>> {
        self.instantiate_with(engine, None)
    }

    /// [`ProcessorSpec::instantiate`], calling through `resources` as its grants allow.
    pub fn instantiate_with(
        &self,
        engine: &Engine,
        resources: Option<&Arc<dyn Resources>>,
    ) -> Result<ProcessorInstance, Vec<ValidationError>> {
        let access = resources
            .filter(|_| !self.grants.is_empty())
            .map(|r| HostAccess {
                resources: r.clone(),
                grants: self.grants.clone(),
            });
        engine
            .instantiate_with(&self.component, &self.config, self.limits, access)
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

/// One step of a pipeline: a processor component, or control flow over steps of its own.
#[derive(Debug, Clone)]
pub enum Step {
    Processor(ProcessorSpec),
    Control(Arc<ControlSpec>),
}

/// Control flow run by the host.
#[derive(Debug)]
pub struct ControlSpec {
    /// Where it sits in the config (`pipeline.processors[1]`).
    pub path: String,
    /// `switch`, `catch`, `try`.
    pub kind: String,
    pub flow: Flow,
}

/// What a control step does.
#[derive(Debug)]
pub enum Flow {
    /// Each message through the steps of the first case whose check it matches; one that matches none goes on
    /// unchanged.
    Switch(Vec<CaseSpec>),
    /// The messages that failed before it, through its steps (their error in the `error` metadata key); those
    /// that come out go on with the others, no longer failed.
    Catch(Vec<Step>),
    /// Its steps as one.
    Try(Vec<Step>),
    /// Its steps on a copy of each message, the result merged back into the original.
    Branch(BranchSpec),
}

/// A `branch` processor.
#[derive(Debug)]
pub struct BranchSpec {
    /// The program whose value is the copy (none: the original as it is).
    pub request: Option<VrlProgram>,
    pub steps: Vec<Step>,
    /// The program whose value (an object) is merged into the original (none: the original is kept).
    pub result: Option<VrlProgram>,
}

/// One case of a `switch` processor.
#[derive(Debug)]
pub struct CaseSpec {
    /// The condition (none: every message), and where it sits (`pipeline.processors[1].switch.cases[0].check`).
    pub check: Option<(VrlCondition, String)>,
    pub steps: Vec<Step>,
    /// Whether what its steps hand on runs through the next case's steps too (without that case's check).
    pub fallthrough: bool,
}

impl Step {
    pub fn path(&self) -> &str {
        match self {
            Step::Processor(p) => &p.path,
            Step::Control(c) => &c.path,
        }
    }

    pub fn kind(&self) -> &str {
        match self {
            Step::Processor(p) => &p.kind,
            Step::Control(c) => &c.kind,
        }
    }

    /// A label for errors and logs: `pipeline.processors[0] (mapping)`.
    pub fn label(&self) -> String {
        format!("{} ({})", self.path(), self.kind())
    }

    /// The steps directly inside this one.
    pub fn children(&self) -> Vec<&Step> {
        match self {
            Step::Processor(_) => Vec::new(),
            Step::Control(c) => match &c.flow {
                Flow::Switch(cases) => cases.iter().flat_map(|c| &c.steps).collect(),
                Flow::Catch(steps) | Flow::Try(steps) => steps.iter().collect(),
                Flow::Branch(b) => b.steps.iter().collect(),
            },
        }
    }

    /// Every step, those inside control flow included, in the order they are numbered.
    pub fn flatten(steps: &[Step]) -> Vec<&Step> {
        fn walk<'a>(s: &'a Step, out: &mut Vec<&'a Step>) {
            out.push(s);
            for c in s.children() {
                walk(c, out);
            }
        }
        let mut out = Vec::new();
        for s in steps {
            walk(s, &mut out);
        }
        out
    }

    /// Every processor component, those inside control flow included.
    pub fn processors(steps: &[Step]) -> Vec<&ProcessorSpec> {
        Self::flatten(steps)
            .into_iter()
            .filter_map(|s| match s {
                Step::Processor(p) => Some(p),
                Step::Control(_) => None,
            })
            .collect()
    }
}
