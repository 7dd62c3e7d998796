//! Processor kinds: every processor is a wasm component, either built in (its description and schema are the
//! component's own) or `wasm`, a component of the user's (uploaded, or a file for `airtruct run`), with its
//! limits. Resolving a processor entry gives the [`ProcessorSpec`] the chain instantiates.

use std::sync::Arc;

use airtruct_builtins::Builtin;
use airtruct_engine::{Engine, Grants, Limits, LoadError, LoadedComponent};
use airtruct_model::{Component, ValidationError, join_path};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::Role;
use crate::chain::{ProcessorSpec, Step};
use crate::kind::{Check, CheckContext, Kind, KindEntry, Registry, parse_options};

/// Loads a built-in component (compiled once, then from the engine's cache).
pub fn load_builtin(engine: &Engine, b: &Builtin) -> Result<Arc<LoadedComponent>, LoadError> {
    engine.load(b.wasm)
}

/// Compiles every built-in processor (or reads it from the disk cache) on a background thread, one at a time, so
/// that the first stream saved or started does not wait for the compiler: a stream that needs one still compiling
/// waits for that compile rather than starting its own. One at a time leaves the other compile slot to uploads.
pub fn prewarm(engine: &Engine) -> std::io::Result<std::thread::JoinHandle<()>> {
    let engine = engine.clone();
    std::thread::Builder::new()
        .name("prewarm".into())
        .spawn(move || {
            let started = std::time::Instant::now();
            for b in airtruct_builtins::BUILTINS {
                let one = std::time::Instant::now();
                match load_builtin(&engine, b) {
                    Ok(_) => tracing::debug!(
                        kind = b.kind,
                        ms = one.elapsed().as_millis() as u64,
                        "built-in processor ready"
                    ),
                    Err(e) => tracing::warn!(kind = b.kind, "built-in processor: {e}"),
                }
            }
            tracing::info!(
                ms = started.elapsed().as_millis() as u64,
                "built-in processors ready"
            );
        })
}

/// A built-in processor: the options are its configuration, checked by its `init`.
pub(crate) fn resolve_builtin(
    entry: &KindEntry,
    c: &Component,
    cx: &CheckContext<'_>,
    problems: &mut Vec<ValidationError>,
) -> Option<Step> {
    let b = entry.builtin()?;
    if let Some(expected) = crate::fused::refuse_fused_form(&c.kind, &c.options) {
        problems.push(ValidationError::new(c.options_path(), expected));
        return None;
    }
    let schema: Value = serde_json::from_str(b.config_schema).unwrap_or(Value::Null);
    // The resources its options name.
    let grants = {
        let before = problems.len();
        let grants = crate::resources::builtin_grants(
            &schema,
            &c.options,
            &mut Check::new(cx, c.options_path(), problems),
        );
        if problems.len() > before {
            return None;
        }
        Arc::new(grants)
    };
    // Files its options name, read here (the component reads none itself).
    let options = if b.config_schema.contains("x-airtruct-read") {
        let before = problems.len();
        let options = crate::reads::with_files(
            &schema,
            &c.options,
            &mut Check::new(cx, c.options_path(), problems),
        );
        if problems.len() > before {
            return None;
        }
        options
    } else {
        c.options.clone()
    };
    let component = load_builtin(cx.engine, b)
        .map_err(|e| {
            problems.push(ValidationError::new(
                &c.path,
                format!("loading built-in processor \"{}\": {e}", b.kind),
            ))
        })
        .ok()?;
    Some(Step::Processor(ProcessorSpec {
        path: c.path.clone(),
        kind: c.kind.clone(),
        component,
        config: options.to_string(),
        limits: Limits::default(),
        grants,
    }))
}

/// Runs a processor component of your own: one uploaded to the coordinator (`name`, `version`), or a `.wasm`
/// file (`path`, for `airtruct run`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct WasmProcessorConfig {
    /// The name of an uploaded processor.
    #[serde(default)]
    pub name: Option<String>,
    /// Its version; when unset, saving the stream pins the latest.
    #[serde(default)]
    pub version: Option<i64>,
    /// Or the path of a component file (`.wasm`, built for wasm32-wasip2) on the machine that runs the stream.
    #[serde(default)]
    pub path: Option<std::path::PathBuf>,
    /// The processor's own configuration, passed to its `init` as JSON.
    #[serde(default)]
    pub config: Option<Value>,
    /// Limits for this processor, each within what the operator allows; absent ones take the defaults.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The stream's resources (declared under `resources`) it may call through, by name: it needs one of each
    /// capability its component asks for.
    #[serde(default)]
    pub grants: Vec<String>,
    /// Set by the check: the component, limits and grants resolved.
    #[serde(skip)]
    #[schemars(skip)]
    resolved: Option<(Arc<LoadedComponent>, Limits, Arc<Grants>)>,
}

impl Kind for WasmProcessorConfig {
    const NAME: &'static str = "wasm";
    const DESCRIPTION: &'static str = "Runs a processor component of your own";
    const EXAMPLE: &'static str =
        r#"{"path": "prefix.wasm", "config": {"prefix": "> "}, "limits": {"timeout": "2s"}}"#;

    fn check(&mut self, check: &mut Check<'_>) {
        let limits = match self.limits.resolve(check.cx.engine) {
            Ok(l) => Some(l),
            Err(problems) => {
                for (field, message) in problems {
                    check.problem(&format!("limits.{field}"), message);
                }
                None
            }
        };
        let component = match (&self.path, &self.name) {
            (Some(_), Some(_)) => {
                check.problem(
                    "",
                    "give either `name` (an uploaded processor) or `path`, not both",
                );
                None
            }
            (None, None) => {
                check.problem("", "`name` (an uploaded processor) or `path` is required");
                None
            }
            (None, Some(name)) => match self.version {
                None => {
                    check.problem(
                        "version",
                        "required (saving a stream through the API pins the latest)",
                    );
                    None
                }
                Some(version) => match check.cx.uploaded.get(name, version) {
                    Some(c) => Some(c.clone()),
                    None => {
                        check.problem(
                            "name",
                            format!(
                                "uploaded processor \"{name}\" version {version} is not available here (uploaded \
                                 processors run on a coordinator's workers; `airtruct run` takes `path`)"
                            ),
                        );
                        None
                    }
                },
            },
            (Some(path), None) => match std::fs::read(path) {
                Err(e) => {
                    check.problem("path", format!("reading \"{}\": {e}", path.display()));
                    None
                }
                Ok(bytes) => match check.cx.engine.load(&bytes) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        check.problem("path", e.to_string());
                        None
                    }
                },
            },
        };
        let before = check.problems_len();
        let grants = crate::resources::named_grants(&self.grants, check);
        // What it asks for and is not granted, with the grants that could be read.
        if let Some(c) = &component
            && let Some(e) = crate::resources::missing_grants(
                c.capabilities(),
                &grants,
                &check.at("grants"),
                "name a resource of each in `grants`",
            )
        {
            check.extend([e]);
        }
        if let (Some(c), Some(l)) = (component, limits)
            && check.problems_len() == before
        {
            self.resolved = Some((c, l, Arc::new(grants)));
        }
    }
}

/// Resolves a `wasm` entry.
pub fn resolve_wasm(
    _entry: &KindEntry,
    c: &Component,
    cx: &CheckContext<'_>,
    problems: &mut Vec<ValidationError>,
) -> Option<Step> {
    let w = parse_options::<WasmProcessorConfig>(c, cx, problems)?;
    let (component, limits, grants) = w.resolved?;
    Some(Step::Processor(ProcessorSpec {
        path: c.path.clone(),
        kind: c.kind.clone(),
        component,
        config: w
            .config
            .unwrap_or(Value::Object(Default::default()))
            .to_string(),
        limits,
        grants,
    }))
}

/// Per-processor limits.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct LimitsConfig {
    /// Memory cap of each instance, in MiB (default 256).
    pub memory_mib: Option<u32>,
    /// Time limit of one batch (default "5s").
    pub timeout: Option<airtruct_model::Duration>,
    /// Most output of one batch, in MiB (default 64).
    pub max_output_mib: Option<u32>,
}

impl LimitsConfig {
    /// The limits, or every field that is out of bounds with why.
    fn resolve(&self, engine: &Engine) -> Result<Limits, Vec<(&'static str, String)>> {
        let d = Limits::default();
        let mut problems = Vec::new();
        let memory_bytes = self
            .memory_mib
            .map_or(d.memory_bytes, |m| (m as usize) << 20);
        let max = engine.config().max_memory_bytes;
        if memory_bytes > max || memory_bytes == 0 {
            problems.push((
                "memory_mib",
                format!("must be between 1 and {} (the operator's limit)", max >> 20),
            ));
        }
        let timeout = self.timeout.map_or(d.timeout, Into::into);
        if timeout < std::time::Duration::from_millis(10)
            || timeout > std::time::Duration::from_secs(300)
        {
            problems.push(("timeout", "must be between 10ms and 5m".to_string()));
        }
        let max_output_bytes = self
            .max_output_mib
            .map_or(d.max_output_bytes, |m| (m as usize) << 20);
        // What a batch returns is copied out of the instance's memory: it cannot be more than the memory cap
        // the operator allows.
        if max_output_bytes == 0 || max_output_bytes > max {
            problems.push((
                "max_output_mib",
                format!("must be between 1 and {} (the operator's limit)", max >> 20),
            ));
        }
        if problems.is_empty() {
            Ok(Limits {
                memory_bytes,
                timeout,
                max_output_bytes,
            })
        } else {
            Err(problems)
        }
    }
}

/// A `wasm` processor that names an uploaded component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedRef {
    /// Where the step sits (`pipeline.processors[1]`, `pipeline.processors[2].catch[0]`).
    pub at: String,
    /// The JSON pointer of its `wasm` options (`/pipeline/processors/1/wasm`).
    pub pointer: String,
    pub name: String,
    pub version: Option<i64>,
}

impl UploadedRef {
    /// Where its `name` sits in the config.
    pub fn path(&self) -> String {
        join_path(&self.at, "wasm.name")
    }
}

/// A `wasm` processor of a stream config (as JSON), at the top of the pipeline or inside control flow.
#[derive(Debug, Clone, PartialEq)]
pub struct WasmStep<'a> {
    /// Where the step sits (`pipeline.processors[1]`).
    pub at: String,
    /// The JSON pointer of its options (`/pipeline/processors/1/wasm`).
    pub pointer: String,
    pub options: &'a Value,
}

/// Every `wasm` processor of a stream config (as JSON), those inside control flow (a `switch` case, a `catch`)
/// included, in order: found through the kinds' nested fields in `registry`.
pub fn wasm_steps<'a>(registry: &Registry, config: &'a Value) -> Vec<WasmStep<'a>> {
    let mut placed = Vec::new();
    registry.pipeline_components(config, &mut placed);
    placed
        .into_iter()
        .filter(|p| p.role == Role::Processor && p.kind == Some(WasmProcessorConfig::NAME))
        .filter_map(|p| {
            Some(WasmStep {
                options: p.value.get(WasmProcessorConfig::NAME)?,
                pointer: format!("{}/{}", p.pointer, WasmProcessorConfig::NAME),
                at: p.at,
            })
        })
        .collect()
}

/// Every uploaded component a stream config names, in order.
pub fn uploaded_refs(registry: &Registry, config: &Value) -> Vec<UploadedRef> {
    wasm_steps(registry, config)
        .into_iter()
        .filter_map(|w| {
            Some(UploadedRef {
                name: w.options.get("name")?.as_str()?.to_string(),
                version: w.options.get("version").and_then(Value::as_i64),
                at: w.at,
                pointer: w.pointer,
            })
        })
        .collect()
}
