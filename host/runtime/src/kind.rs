//! What a component kind is: a config type that says its name, description and example ([`Kind`]), checks
//! itself (every problem, at its path) and builds its running part ([`InputKind`], [`OutputKind`],
//! [`BufferKind`]); and the [`Registry`], the one table of every kind that the catalogue, parsing, validation and
//! building all read. The table itself is written in `airtruct-connectors` (`registry()`), one line a kind.

use std::collections::HashMap;
use std::sync::Arc;

use airtruct_builtins::Builtin;
use airtruct_engine::LoadedComponent;
use airtruct_model::{Component, ValidationError, from_value, join_path};
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use crate::check::{Check, CheckContext};

use crate::chain::Step;
use crate::context::BuildContext;
use crate::{Error, Input, Output};

/// What part of a stream a kind is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Input,
    Output,
    Processor,
    Buffer,
}

impl Role {
    /// `input`, `output`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Input => "input",
            Role::Output => "output",
            Role::Processor => "processor",
            Role::Buffer => "buffer",
        }
    }
}

/// The static facts of a kind, said by its config type.
pub trait Kind: DeserializeOwned + JsonSchema + Send + Sync + 'static {
    /// The key used in a stream config (`file`, `kafka`).
    const NAME: &'static str;
    /// What it does, in a sentence (the catalogue and the docs show it).
    const DESCRIPTION: &'static str;
    /// A documented example of its options, as JSON; the registry's test parses, validates and builds it.
    const EXAMPLE: &'static str;
    /// The fields that carry credentials (`dsn`, `sasl.password`, `headers.*` for every value of a map): the
    /// only places a `${secret:NAME}` may appear.
    const CREDENTIALS: &'static [&'static str] = &[];
    /// Options the catalogue's schema lists first, in this order; the rest follow in the order the type declares
    /// them (which is the order the console's forms show). For a type whose shared options come from a flattened
    /// struct, which would otherwise all come first.
    const FIELD_ORDER: &'static [&'static str] = &[];
    /// Where the options hold components of their own, and their role: `late_output`, `outputs[]` (each
    /// element of a list), `cases[].output`. Validation finds the credential fields of nested components by it.
    const NESTED: &'static [(&'static str, Role)] = &[];

    /// Checks what serde cannot, reporting every problem with [`Check::problem`]; it may resolve what the
    /// options reference (a VRL program, a nested output) into fields of its own.
    fn check(&mut self, _check: &mut Check<'_>) {}
}

/// A parsed input kind: builds the running input.
#[async_trait]
pub trait InputKind: Send + Sync {
    async fn build(&self, cx: &BuildContext) -> Result<Box<dyn Input>, Error>;
}

/// A parsed output kind: builds the running output.
#[async_trait]
pub trait OutputKind: Send + Sync {
    async fn build(&self, cx: &BuildContext) -> Result<Box<dyn Output>, Error>;

    /// Whether it answers the HTTP caller of an `http_server` input once its message is delivered (then the
    /// stream may not acknowledge early).
    fn answers_callers(&self) -> bool {
        false
    }
}

/// A parsed buffer kind: wraps the stream's input.
#[async_trait]
pub trait BufferKind: Send + Sync {
    /// Wraps the input: the buffer reads it and the stream reads the buffer.
    async fn wrap(&self, input: Box<dyn Input>, cx: &BuildContext)
    -> Result<Box<dyn Input>, Error>;

    /// Whether it acknowledges the input before the output confirmed.
    fn acknowledges_early(&self) -> bool {
        false
    }

    /// Whether each batch it gives must reach the processors whole (a window), rather than being batched
    /// again by `pipeline.batch`.
    fn keeps_batches(&self) -> bool {
        false
    }
}

/// Uploaded processor components available to a validation, by name and version (fetched beforehand by the
/// coordinator or the worker; empty for `airtruct run`).
#[derive(Debug, Default, Clone)]
pub struct Uploaded(HashMap<(String, i64), Arc<LoadedComponent>>);

impl Uploaded {
    pub fn insert(&mut self, name: &str, version: i64, component: Arc<LoadedComponent>) {
        self.0.insert((name.to_string(), version), component);
    }

    pub fn get(&self, name: &str, version: i64) -> Option<&Arc<LoadedComponent>> {
        self.0.get(&(name.to_string(), version))
    }
}

/// Parses and checks a component as a kind, reporting its problems; `None` when there was one.
type Parse<T> = fn(&Component, &CheckContext<'_>, &mut Vec<ValidationError>) -> Option<T>;

/// Resolves a processor entry to the component it runs.
pub type ResolveProcessor =
    fn(&KindEntry, &Component, &CheckContext<'_>, &mut Vec<ValidationError>) -> Option<Step>;

/// How an entry of the table parses a component.
enum Imp {
    Input(Parse<Box<dyn InputKind>>),
    Output(Parse<Box<dyn OutputKind>>),
    Buffer(Parse<Box<dyn BufferKind>>),
    /// A processor resolved to its component: built in, or `wasm`.
    Processor(ResolveProcessor),
}

/// Where an entry's description and schema come from.
enum About {
    /// From the config type.
    Typed {
        description: &'static str,
        schema: fn() -> Value,
        example: &'static str,
        credentials: &'static [&'static str],
        nested: &'static [(&'static str, Role)],
    },
    /// From a built-in component's own `describe`.
    Component(&'static Builtin),
}

/// One line of the table.
pub struct KindEntry {
    name: &'static str,
    about: About,
    imp: Imp,
}

fn schema_of<T: Kind>() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Value::Null);
    if let Some(Value::Object(props)) = schema.get_mut("properties")
        && !T::FIELD_ORDER.is_empty()
    {
        let mut ordered = serde_json::Map::new();
        for name in T::FIELD_ORDER {
            if let Some(v) = props.remove(*name) {
                ordered.insert(name.to_string(), v);
            }
        }
        ordered.append(props);
        *props = ordered;
    }
    schema
}

fn typed<T: Kind>(imp: Imp) -> KindEntry {
    KindEntry {
        name: T::NAME,
        about: About::Typed {
            description: T::DESCRIPTION,
            schema: schema_of::<T>,
            example: T::EXAMPLE,
            credentials: T::CREDENTIALS,
            nested: T::NESTED,
        },
        imp,
    }
}

/// Reads a component's options as `T` and checks them; `None` when there was a problem (reported).
pub fn parse_options<T: Kind>(
    c: &Component,
    cx: &CheckContext<'_>,
    problems: &mut Vec<ValidationError>,
) -> Option<T> {
    // `kind: ~` and `kind: {}` both mean "all defaults".
    let value = if c.options.is_null() {
        Value::Object(Default::default())
    } else {
        c.options.clone()
    };
    let path = c.options_path();
    let mut t: T = from_value(&path, &value)
        .map_err(|e| problems.push(e))
        .ok()?;
    let before = problems.len();
    t.check(&mut Check::new(cx, path, problems));
    (problems.len() == before).then_some(t)
}

/// An input kind's line in the table.
pub fn input<T: Kind + InputKind>() -> KindEntry {
    typed::<T>(Imp::Input(|c, cx, p| {
        parse_options::<T>(c, cx, p).map(|t| Box::new(t) as Box<dyn InputKind>)
    }))
}

/// An output kind's line in the table.
pub fn output<T: Kind + OutputKind>() -> KindEntry {
    typed::<T>(Imp::Output(|c, cx, p| {
        parse_options::<T>(c, cx, p).map(|t| Box::new(t) as Box<dyn OutputKind>)
    }))
}

/// A buffer kind's line in the table.
pub fn buffer<T: Kind + BufferKind>() -> KindEntry {
    typed::<T>(Imp::Buffer(|c, cx, p| {
        parse_options::<T>(c, cx, p).map(|t| Box::new(t) as Box<dyn BufferKind>)
    }))
}

/// A built-in processor component's line in the table: its description and schema are the component's own.
pub fn builtin(b: &'static Builtin) -> KindEntry {
    KindEntry {
        name: b.kind,
        about: About::Component(b),
        imp: Imp::Processor(crate::processors::resolve_builtin),
    }
}

/// A processor kind whose options say which component runs (`wasm`).
pub fn processor<T: Kind>(
    resolve: fn(
        &KindEntry,
        &Component,
        &CheckContext<'_>,
        &mut Vec<ValidationError>,
    ) -> Option<Step>,
) -> KindEntry {
    typed::<T>(Imp::Processor(resolve))
}

/// One kind in the catalogue.
#[derive(Debug, Clone, serde::Serialize, JsonSchema)]
pub struct KindDoc {
    /// The key used in a stream config (`file`, `mapping`).
    pub kind: String,
    pub role: Role,
    /// What it does.
    pub description: String,
    /// JSON Schema of its options.
    pub config_schema: Value,
}

impl KindEntry {
    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn role(&self) -> Role {
        match self.imp {
            Imp::Input(_) => Role::Input,
            Imp::Output(_) => Role::Output,
            Imp::Buffer(_) => Role::Buffer,
            Imp::Processor(_) => Role::Processor,
        }
    }

    /// The built-in component this kind runs, if it is one.
    pub fn builtin(&self) -> Option<&'static Builtin> {
        match self.about {
            About::Component(b) => Some(b),
            About::Typed { .. } => None,
        }
    }

    /// The documented example of its options (JSON), for kinds described by their config type.
    pub fn example(&self) -> Option<&'static str> {
        match self.about {
            About::Typed { example, .. } => Some(example),
            About::Component(_) => None,
        }
    }

    /// The fields of its options that carry credentials (see [`Kind::CREDENTIALS`]).
    pub fn credentials(&self) -> &'static [&'static str] {
        match self.about {
            About::Typed { credentials, .. } => credentials,
            About::Component(_) => &[],
        }
    }

    /// Where its options hold components of their own (see [`Kind::NESTED`]).
    pub fn nested(&self) -> &'static [(&'static str, Role)] {
        match self.about {
            About::Typed { nested, .. } => nested,
            About::Component(_) => &[],
        }
    }

    /// Whether `field` (a path inside its options: `sasl.password`, `headers.x-api-key`) carries credentials.
    pub fn is_credential(&self, field: &str) -> bool {
        self.credentials()
            .iter()
            .any(|c| match c.strip_suffix(".*") {
                Some(map) => field
                    .strip_prefix(map)
                    .is_some_and(|rest| rest.starts_with('.') && rest.len() > 1),
                None => field == *c,
            })
    }

    /// Its catalogue entry.
    pub fn doc(&self) -> KindDoc {
        let (description, config_schema) = match &self.about {
            About::Typed {
                description,
                schema,
                ..
            } => (description.to_string(), schema()),
            // Read from the files the guest's describe reads, so the catalogue never waits for a compile.
            About::Component(b) => (
                b.description.to_string(),
                serde_json::from_str(b.config_schema).unwrap_or(Value::Null),
            ),
        };
        KindDoc {
            kind: self.name.to_string(),
            role: self.role(),
            description,
            config_schema,
        }
    }
}

/// The table of every kind.
pub struct Registry {
    kinds: Vec<KindEntry>,
    resources: Option<crate::resources::ResourceSupport>,
}

impl Registry {
    /// A table of these kinds; a name may appear once per role.
    pub fn new(kinds: Vec<KindEntry>) -> Self {
        let mut seen = std::collections::HashSet::new();
        for k in &kinds {
            assert!(
                seen.insert((k.role(), k.name)),
                "{} kind \"{}\" is listed twice",
                k.role().as_str(),
                k.name
            );
        }
        Self {
            kinds,
            resources: None,
        }
    }

    /// The same, checking and opening a stream's `resources:` with `support`.
    pub fn with_resources(mut self, support: crate::resources::ResourceSupport) -> Self {
        self.resources = Some(support);
        self
    }

    /// How `resources:` is checked and opened (`None`: a stream may declare none).
    pub fn resources(&self) -> Option<&crate::resources::ResourceSupport> {
        self.resources.as_ref()
    }

    /// Every kind, in table order.
    pub fn kinds(&self) -> &[KindEntry] {
        &self.kinds
    }

    /// The names of a role's kinds, in table order.
    pub fn names(&self, role: Role) -> Vec<&'static str> {
        self.of(role).map(|k| k.name).collect()
    }

    fn of(&self, role: Role) -> impl Iterator<Item = &KindEntry> {
        self.kinds.iter().filter(move |k| k.role() == role)
    }

    /// The entry of a kind.
    pub fn entry(&self, role: Role, name: &str) -> Option<&KindEntry> {
        self.of(role).find(|k| k.name == name)
    }

    /// The catalogue of a role.
    pub fn docs(&self, role: Role) -> Vec<KindDoc> {
        self.of(role).map(KindEntry::doc).collect()
    }

    fn find(
        &self,
        role: Role,
        c: &Component,
        problems: &mut Vec<ValidationError>,
    ) -> Option<&KindEntry> {
        let found = self.entry(role, &c.kind);
        if found.is_none() {
            problems.push(ValidationError::new(
                &c.path,
                format!(
                    "unknown {} kind \"{}\", expected one of {}",
                    role.as_str(),
                    c.kind,
                    self.names(role).join(", ")
                ),
            ));
        }
        found
    }

    /// Parses and checks an input entry; its problems go to `problems`.
    pub fn input(
        &self,
        c: &Component,
        cx: &CheckContext<'_>,
        problems: &mut Vec<ValidationError>,
    ) -> Option<Box<dyn InputKind>> {
        match self.find(Role::Input, c, problems)?.imp {
            Imp::Input(parse) => parse(c, cx, problems),
            _ => None,
        }
    }

    /// Parses and checks an output entry.
    pub fn output(
        &self,
        c: &Component,
        cx: &CheckContext<'_>,
        problems: &mut Vec<ValidationError>,
    ) -> Option<Box<dyn OutputKind>> {
        match self.find(Role::Output, c, problems)?.imp {
            Imp::Output(parse) => parse(c, cx, problems),
            _ => None,
        }
    }

    /// Parses and checks a buffer entry.
    pub fn buffer(
        &self,
        c: &Component,
        cx: &CheckContext<'_>,
        problems: &mut Vec<ValidationError>,
    ) -> Option<Box<dyn BufferKind>> {
        match self.find(Role::Buffer, c, problems)?.imp {
            Imp::Buffer(parse) => parse(c, cx, problems),
            _ => None,
        }
    }

    /// Resolves a processor entry to its component and configuration (loading compiles the component the first
    /// time, or reads it from the engine's cache).
    pub fn processor(
        &self,
        c: &Component,
        cx: &CheckContext<'_>,
        problems: &mut Vec<ValidationError>,
    ) -> Option<Step> {
        let entry = self.find(Role::Processor, c, problems)?;
        match entry.imp {
            Imp::Processor(resolve) => resolve(entry, c, cx, problems),
            _ => None,
        }
    }
}

/// A component found in a config (as JSON): where it sits, its JSON pointer, its role, its kind and its value
/// (`{kind: options}`).
#[derive(Debug, Clone)]
pub struct Placed<'a> {
    /// `output.switch.cases[0].output`
    pub at: String,
    /// `/output/switch/cases/0/output`
    pub pointer: String,
    pub role: Role,
    /// `None` when the value is not written `kind: {options}`.
    pub kind: Option<&'a str>,
    pub value: &'a Value,
}

impl Registry {
    /// Every processor of a stream config (as JSON) and every component inside them, in order.
    pub fn pipeline_components<'a>(&self, config: &'a Value, out: &mut Vec<Placed<'a>>) {
        let steps = config
            .pointer("/pipeline/processors")
            .and_then(Value::as_array);
        for (i, step) in steps.into_iter().flatten().enumerate() {
            let (at, pointer) = (
                format!("pipeline.processors[{i}]"),
                format!("/pipeline/processors/{i}"),
            );
            self.components_in(at, pointer, Role::Processor, step, out);
        }
    }

    /// The component `value` at `at` and every component inside its options, found through its kind's
    /// [`Kind::NESTED`] fields, recursively, in order.
    pub fn components_in<'a>(
        &self,
        at: String,
        pointer: String,
        role: Role,
        value: &'a Value,
        out: &mut Vec<Placed<'a>>,
    ) {
        let written = value
            .as_object()
            .filter(|m| m.len() == 1)
            .and_then(|m| m.iter().next());
        out.push(Placed {
            at: at.clone(),
            pointer: pointer.clone(),
            role,
            kind: written.map(|(k, _)| k.as_str()),
            value,
        });
        let Some((kind, options)) = written else {
            return;
        };
        let Some(entry) = self.entry(role, kind) else {
            return;
        };
        for (pattern, nested_role) in entry.nested() {
            let mut found = vec![(join_path(&at, kind), format!("{pointer}/{kind}"), options)];
            for segment in pattern.split('.') {
                let (name, each) = match segment.strip_suffix("[]") {
                    Some(name) => (name, true),
                    None => (segment, false),
                };
                found = found
                    .into_iter()
                    .filter_map(|(a, p, v)| match name {
                        // `[]`: the options are the list.
                        "" => Some((a, p, v)),
                        _ => v
                            .get(name)
                            .map(|v| (format!("{a}.{name}"), format!("{p}/{name}"), v)),
                    })
                    .flat_map(|(a, p, v)| match (each, v.as_array()) {
                        (true, Some(items)) => items
                            .iter()
                            .enumerate()
                            .map(|(i, item)| (format!("{a}[{i}]"), format!("{p}/{i}"), item))
                            .collect::<Vec<_>>(),
                        (true, None) => Vec::new(),
                        (false, _) => vec![(a, p, v)],
                    })
                    .collect();
            }
            for (a, p, v) in found {
                self.components_in(a, p, *nested_role, v, out);
            }
        }
    }
}

/// Something a check resolved from the options (a nested output), kept beside them in the config type.
pub struct Resolved<T: ?Sized>(pub Option<Arc<T>>);

impl<T: ?Sized> Default for Resolved<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<T: ?Sized> Clone for Resolved<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T: ?Sized> std::fmt::Debug for Resolved<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "resolved"
        } else {
            "unresolved"
        })
    }
}
