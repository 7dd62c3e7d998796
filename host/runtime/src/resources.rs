//! A stream's resources (`resources:`): caches, SQL connections, HTTP grants and rate limits declared once and
//! granted by name to the processors that call through them. The runtime knows what was declared and what each
//! processor is granted; the registry's [`ResourceSupport`] (written with the connectors) checks the section and
//! opens the resources a running stream serves its processors' capability calls from.

use std::sync::Arc;

use airtruct_engine::{Capability, Grants, Resources};
use airtruct_model::ValidationError;
use async_trait::async_trait;
use serde_json::Value;

use crate::kind::Check;
use crate::{BuildContext, Error};

/// One declared resource: its capability, its name, and where it is written (`resources.caches.seen`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub capability: Capability,
    pub name: String,
    pub at: String,
}

/// The section a capability's resources are declared in.
pub fn section(capability: Capability) -> &'static str {
    match capability {
        Capability::Http => "http",
        Capability::Sql => "sql",
        Capability::Cache => "caches",
        Capability::RateLimit => "rate_limits",
    }
}

/// The resources a `resources:` section (as written) declares, valid or not: processors may name them whatever
/// problems their options have (those are reported at the resource, not again at every processor).
pub fn declared_in(written: &Value) -> Vec<Declared> {
    let mut out = Vec::new();
    for capability in Capability::ALL {
        let at = section(capability);
        for name in written
            .get(at)
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.keys())
        {
            out.push(Declared {
                capability,
                name: name.clone(),
                at: format!("resources.{at}.{name}"),
            });
        }
    }
    out
}

/// A checked `resources:` section, ready to open.
#[async_trait]
pub trait ResourcesPlan: Send + Sync {
    /// What it declares.
    fn declared(&self) -> Vec<Declared>;

    /// Opens the resources (connections are made when first used). `side_effects: false` (the test endpoint,
    /// unless asked) refuses what could change something: HTTP methods other than GET and HEAD, SQL writes,
    /// cache writes.
    async fn open(
        &self,
        cx: &BuildContext,
        side_effects: bool,
    ) -> Result<Arc<dyn Resources>, Error>;
}

/// How the registry checks and opens resources.
#[derive(Clone, Copy)]
pub struct ResourceSupport {
    /// Checks the section (at `resources`), every problem at its path.
    pub check: fn(&Value, &mut Check<'_>) -> Option<Arc<dyn ResourcesPlan>>,
    /// The JSON Schema of the section, for the catalogue and the console.
    pub schema: fn() -> Value,
    /// Where secrets may appear, as paths under `resources` with `*` for any name (`sql.*.dsn`).
    pub credentials: &'static [&'static str],
}

impl ResourceSupport {
    /// Whether `field` (a path under `resources`, `sql.users.dsn`) is a credential field.
    pub fn is_credential(&self, field: &str) -> bool {
        let parts: Vec<&str> = field.split('.').collect();
        self.credentials.iter().any(|pattern| {
            let want: Vec<&str> = pattern.split('.').collect();
            want.len() == parts.len() && want.iter().zip(&parts).all(|(w, p)| *w == "*" || w == p)
        })
    }
}

/// The grants of a built-in processor: each option its schema marks `x-airtruct-resource: <capability>` names a
/// resource of that capability, which must be declared. Problems are reported at the option.
pub fn builtin_grants(schema: &Value, options: &Value, check: &mut Check<'_>) -> Grants {
    let mut grants = Grants::default();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return grants;
    };
    for (field, prop) in props {
        let Some(cap) = prop.get("x-airtruct-resource").and_then(Value::as_str) else {
            continue;
        };
        let Some(capability) = Capability::ALL.into_iter().find(|c| c.name() == cap) else {
            continue;
        };
        let Some(name) = options.get(field).and_then(Value::as_str) else {
            continue;
        };
        if grant(check, field, capability, name) {
            grants.grant(capability, name);
        }
    }
    grants
}

/// Checks that `name` is a declared resource of `capability`, reporting at `field` when it is not.
fn grant(check: &mut Check<'_>, field: &str, capability: Capability, name: &str) -> bool {
    let declared = &check.cx.resources;
    if declared
        .iter()
        .any(|d| d.capability == capability && d.name == name)
    {
        return true;
    }
    let other = declared.iter().find(|d| d.name == name);
    let names: Vec<&str> = declared
        .iter()
        .filter(|d| d.capability == capability)
        .map(|d| d.name.as_str())
        .collect();
    let message = match other {
        Some(d) => format!(
            "\"{name}\" is a {} resource (resources.{}), not a {} one",
            d.capability.name(),
            section(d.capability),
            capability.name()
        ),
        None if names.is_empty() => format!(
            "no {} resource \"{name}\": declare it under resources.{}",
            capability.name(),
            section(capability)
        ),
        None => format!(
            "no {} resource \"{name}\" (declared: {})",
            capability.name(),
            names.join(", ")
        ),
    };
    check.problem(field, message);
    false
}

/// The grants of a `wasm` processor: each name in `grants` a declared resource, whatever its capability.
pub fn named_grants(names: &[String], check: &mut Check<'_>) -> Grants {
    let mut grants = Grants::default();
    for (i, name) in names.iter().enumerate() {
        match check.cx.resources.iter().find(|d| &d.name == name) {
            Some(d) => grants.grant(d.capability, name),
            None => check.problem(
                &format!("grants[{i}]"),
                format!("no resource \"{name}\" is declared under resources"),
            ),
        }
    }
    grants
}

/// The capabilities a component asks for that `grants` gives it nothing of, as one problem at `at`.
pub fn missing_grants(
    asked: &[Capability],
    grants: &Grants,
    at: &str,
    how: &str,
) -> Option<ValidationError> {
    let missing: Vec<Capability> = asked.iter().copied().filter(|c| !grants.has(*c)).collect();
    if missing.is_empty() {
        return None;
    }
    let names: Vec<String> = missing
        .iter()
        .map(|c| format!("{} (resources.{})", c.name(), section(*c)))
        .collect();
    Some(ValidationError::new(
        at,
        format!(
            "the processor asks for {} but the stream grants it none: {how}",
            names.join(" and ")
        ),
    ))
}
