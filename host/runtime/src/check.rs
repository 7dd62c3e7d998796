//! Checking a component's options: what a check may consult ([`CheckContext`]: the table of kinds, the engine, the
//! uploaded components, the VRL service, the operator's policy, the declared resources) and the problems it
//! reports, each at its path ([`Check`]). Re-exported from [`crate::kind`].

use airtruct_engine::Engine;
use airtruct_model::{Component, ValidationError, join_path};
use serde_json::Value;

use crate::kind::{InputKind, OutputKind, Registry, Uploaded};
use crate::policy::Policy;
use crate::vrl::{Vrl, VrlProgram};

/// What a check may consult: the table of kinds (for nested components), the engine, the uploaded components
/// and the VRL service.
pub struct CheckContext<'a> {
    pub registry: &'a Registry,
    pub engine: &'a Engine,
    pub uploaded: &'a Uploaded,
    pub vrl: Vrl,
    /// The operator's policy, for streams saved through the API (`None` for `airtruct run`).
    pub policy: Option<&'a Policy>,
    /// The resources the stream declares, which its processors may be granted.
    pub resources: Vec<crate::resources::Declared>,
}

impl<'a> CheckContext<'a> {
    pub fn new(registry: &'a Registry, engine: &'a Engine, uploaded: &'a Uploaded) -> Self {
        Self {
            registry,
            engine,
            uploaded,
            vrl: Vrl::new(engine.clone()),
            policy: None,
            resources: Vec::new(),
        }
    }

    /// The same, under the operator's policy.
    pub fn with_policy(mut self, policy: Option<&'a Policy>) -> Self {
        self.policy = policy;
        self
    }
}

/// Collects the problems of one component's options, each at its path.
pub struct Check<'a> {
    pub cx: &'a CheckContext<'a>,
    /// The options' path (`output.sql_insert`).
    path: String,
    problems: &'a mut Vec<ValidationError>,
}

impl<'a> Check<'a> {
    pub fn new(
        cx: &'a CheckContext<'a>,
        path: String,
        problems: &'a mut Vec<ValidationError>,
    ) -> Self {
        Self { cx, path, problems }
    }

    /// The path of a field of the options (`field` as serde writes it: `table`, `columns[1]`).
    pub fn at(&self, field: &str) -> String {
        join_path(&self.path, field)
    }

    /// Reports a problem at a field.
    pub fn problem(&mut self, field: &str, message: impl Into<String>) {
        let path = self.at(field);
        self.problems.push(ValidationError::new(path, message));
    }

    /// A check of the part at `field`, reporting into the same problems.
    pub fn sub(&mut self, field: &str) -> Check<'_> {
        Check {
            cx: self.cx,
            path: self.at(field),
            problems: self.problems,
        }
    }

    /// How many problems are reported so far (to tell whether a part of a check found any).
    pub fn problems_len(&self) -> usize {
        self.problems.len()
    }

    /// Reports problems found elsewhere, already with their paths.
    pub fn extend(&mut self, errors: impl IntoIterator<Item = ValidationError>) {
        self.problems.extend(errors);
    }

    /// Compiles a VRL program whose value is the result (`[.id, .name]`), in the sandbox; its diagnostics are
    /// reported at `field`.
    pub fn value_program(&mut self, field: &str, source: &str) -> Option<VrlProgram> {
        let at = self.at(field);
        self.cx
            .vrl
            .value_program(source)
            .map_err(|e| self.problems.push(ValidationError::new(at, e)))
            .ok()
    }

    /// Checks a path option against the policy: it must resolve under a root, outside the server's files.
    /// False when it was refused (and reported).
    pub fn path(&mut self, field: &str, path: &std::path::Path) -> bool {
        let refused = self.cx.policy.and_then(|p| p.check_path(path).err());
        refused.map(|e| self.problem(field, e)).is_none()
    }

    /// Checks an outbound destination against the egress policy.
    pub fn destination(&mut self, field: &str, host: &str, port: u16) {
        if let Some(Err(e)) = self.cx.policy.map(|p| p.check_destination(host, port)) {
            self.problem(field, e);
        }
    }

    /// Checks a URL's host and port against the egress policy.
    pub fn url(&mut self, field: &str, url: &str) {
        if let Some(Err(e)) = self.cx.policy.map(|p| p.check_url(url)) {
            self.problem(field, e);
        }
    }

    /// Refuses a listening socket of the stream's own unless the policy grants it.
    pub fn listener(&mut self, field: &str) {
        if self.cx.policy.is_some_and(|p| !p.listeners) {
            self.problem(
                field,
                "a stream may not open a listener of its own: the operator's policy (`listeners`); take \
                 requests through the coordinator's /ingest/{stream} instead",
            );
        }
    }

    /// The policy, when there is one.
    pub fn policy(&self) -> Option<&'a Policy> {
        self.cx.policy
    }

    /// Parses a nested output (`late_output: {file: {...}}`) at `field`.
    pub fn output(&mut self, field: &str, value: &Value) -> Option<Box<dyn OutputKind>> {
        let at = self.at(field);
        let c = Component::parse(&at, value)
            .map_err(|e| self.problems.push(e))
            .ok()?;
        let (cx, problems) = (self.cx, &mut *self.problems);
        cx.registry.output(&c, cx, problems)
    }

    /// Parses a nested input (`inputs[0]: {kafka: {...}}`) at `field`.
    pub fn input(&mut self, field: &str, value: &Value) -> Option<Box<dyn InputKind>> {
        let at = self.at(field);
        let c = Component::parse(&at, value)
            .map_err(|e| self.problems.push(e))
            .ok()?;
        let (cx, problems) = (self.cx, &mut *self.problems);
        cx.registry.input(&c, cx, problems)
    }

    /// Compiles a VRL condition (`.level == "error"`) as a `filter` processor would, in the sandbox; its
    /// diagnostics are reported at `field`.
    pub fn condition(&mut self, field: &str, source: &str) -> Option<crate::vrl::VrlCondition> {
        let at = self.at(field);
        self.cx
            .vrl
            .condition(source)
            .map_err(|e| self.problems.push(ValidationError::new(at, e)))
            .ok()
    }
}
