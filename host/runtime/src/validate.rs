//! The one validation of a stream config, behind `airtruct validate`, the API's validate endpoint and the save
//! check: the skeleton, every component's options, and every processor's `init` with its configuration.

use airtruct_engine::Engine;
use airtruct_model::{ErrorPolicy, StreamConfig, ValidationError, parse_stream_partial};
use serde_json::Value;

use std::sync::Arc;

use crate::chain::{ProcessorSpec, Step};
use crate::kind::{
    BufferKind, Check, CheckContext, InputKind, OutputKind, Registry, Role, Uploaded,
};
use crate::policy::Policy;
use crate::resources::{ResourcesPlan, missing_grants};

/// A stream config that passed validation, with everything parsed and resolved, ready to build.
pub struct StreamPlan {
    pub config: StreamConfig,
    pub input: Box<dyn InputKind>,
    pub output: Box<dyn OutputKind>,
    pub dead_letter: Option<Box<dyn OutputKind>>,
    pub buffer: Option<Box<dyn BufferKind>>,
    /// The pipeline's steps: processors, and control flow over processors of its own.
    pub processors: Vec<Step>,
    /// The resources its processors are granted, checked and ready to open.
    pub resources: Option<Arc<dyn ResourcesPlan>>,
}

/// Validates a stream config (as a JSON value, after interpolation) against the kinds of `registry`, returning
/// every problem of every component at once. `uploaded` holds the uploaded components the config names (see
/// [`crate::processors::uploaded_refs`]). No policy: for `airtruct run`, which runs as its user.
pub fn validate_stream(
    registry: &Registry,
    engine: &Engine,
    value: &Value,
    uploaded: &Uploaded,
) -> Result<StreamPlan, Vec<ValidationError>> {
    validate_stream_under(registry, engine, value, uploaded, None)
}

/// [`validate_stream`] under the operator's policy (streams saved through the API): paths, destinations,
/// listeners and pass-through options are checked at their fields, and `${secret:...}` may appear only in
/// credential fields.
pub fn validate_stream_under(
    registry: &Registry,
    engine: &Engine,
    value: &Value,
    uploaded: &Uploaded,
    policy: Option<&Policy>,
) -> Result<StreamPlan, Vec<ValidationError>> {
    let mut cx = CheckContext::new(registry, engine, uploaded).with_policy(policy);
    let mut secret_errors = if policy.is_some() {
        secrets_outside_credentials(registry, value)
    } else {
        Vec::new()
    };
    let (partial, mut errors) = parse_stream_partial(value);
    errors.append(&mut secret_errors);
    // Resources first: processors are granted them by name.
    // Declared names count even when a resource has problems of its own (reported at the resource).
    if let Some(section) = &partial.resources {
        cx.resources = crate::resources::declared_in(section);
    }
    let resources = match (&partial.resources, registry.resources()) {
        (None, _) => None,
        (Some(_), None) => {
            errors.push(ValidationError::new(
                "resources",
                "this build of the server declares no resources",
            ));
            None
        }
        (Some(section), Some(support)) => (support.check)(
            section,
            &mut Check::new(&cx, "resources".into(), &mut errors),
        ),
    };
    let cx = cx;
    let input = partial
        .input
        .as_ref()
        .and_then(|c| registry.input(c, &cx, &mut errors));
    let output = partial
        .output
        .as_ref()
        .and_then(|c| registry.output(c, &cx, &mut errors));
    let dead_letter = match &partial.on_error {
        Some(ErrorPolicy::DeadLetter(c)) => registry.output(c, &cx, &mut errors),
        _ => None,
    };
    let buffer = partial
        .buffer
        .as_ref()
        .and_then(|c| registry.buffer(c, &cx, &mut errors));
    if let (Some(o), Some(b)) = (&output, &buffer)
        && o.answers_callers()
        && b.acknowledges_early()
    {
        errors.push(ValidationError::new(
            "buffer",
            "a sync_response output answers callers when their message is delivered, but this buffer \
             acknowledges the input as soon as it holds a message: use no buffer, a memory buffer with \
             acknowledge: delivered, or a system_window",
        ));
    }
    let mut processors = Vec::new();
    let no_processors = Vec::new();
    let steps = partial
        .pipeline
        .as_ref()
        .map_or(&no_processors, |p| &p.processors);
    for c in steps {
        let Some(step) = registry.processor(c, &cx, &mut errors) else {
            continue;
        };
        // Every processor component, those inside control flow included: its schema, then its `init`.
        let before = errors.len();
        for spec in Step::processors(std::slice::from_ref(&step)) {
            let schema_errors = check_described_schema(registry, engine, spec);
            if !schema_errors.is_empty() {
                errors.extend(schema_errors);
                continue;
            }
            // A built-in processor is granted the resource its options name (a `wasm` one is checked against its
            // `grants` where it is resolved).
            if let Some(e) = missing_grants(
                spec.component.capabilities(),
                &spec.grants,
                &spec.options_path(),
                "name one in its options",
            ) {
                errors.push(e);
                continue;
            }
            if let Err(e) = spec.instantiate(engine) {
                errors.extend(e);
            }
        }
        if errors.len() == before {
            processors.push(step);
        }
    }
    match (partial, input, output) {
        (
            airtruct_model::PartialStream {
                input: Some(input_c),
                output: Some(output_c),
                pipeline: Some(pipeline),
                on_error: Some(on_error),
                buffer: buffer_c,
                replicas,
                trace,
                resources: resources_c,
                tests: _,
            },
            Some(input),
            Some(output),
        ) if errors.is_empty() => Ok(StreamPlan {
            config: StreamConfig {
                input: input_c,
                buffer: buffer_c,
                pipeline,
                output: output_c,
                on_error,
                replicas,
                trace,
                resources: resources_c,
            },
            input,
            output,
            dead_letter,
            buffer,
            processors,
            resources,
        }),
        _ => Err(errors),
    }
}

/// Every `${secret:NAME}` that is not in a credential field of its component's kind, as a problem at its path.
pub fn secrets_outside_credentials(registry: &Registry, value: &Value) -> Vec<ValidationError> {
    // Where components sit, and their roles; the longest prefix wins (a window's late output in its buffer).
    let mut places = Vec::new();
    for (at, role) in [
        ("input", Role::Input),
        ("output", Role::Output),
        ("buffer", Role::Buffer),
        ("on_error.dead_letter", Role::Output),
    ] {
        let pointer = format!("/{}", at.replace('.', "/"));
        if let Some(v) = value.pointer(&pointer) {
            registry.components_in(at.to_string(), pointer, role, v, &mut places);
        }
    }
    registry.pipeline_components(value, &mut places);
    let mut errors = Vec::new();
    for (name, path) in airtruct_model::secret_uses(value) {
        if let (Some(field), Some(support)) =
            (path.strip_prefix("resources."), registry.resources())
        {
            if !support.is_credential(field) {
                errors.push(ValidationError::new(
                    &path,
                    format!(
                        "secret \"{name}\" may only be used in a credential field of a resource ({})",
                        support.credentials.join(", ")
                    ),
                ));
            }
            continue;
        }
        let place = places
            .iter()
            .filter_map(|p| {
                let kind = p.kind?;
                let options = airtruct_model::join_path(&p.at, kind);
                let field = path.strip_prefix(&options)?.strip_prefix('.')?;
                Some((options.len(), p.role, kind, field))
            })
            .max_by_key(|p| p.0);
        let allowed = place.is_some_and(|(_, role, kind, field)| {
            registry
                .entry(role, kind)
                .is_some_and(|e| e.is_credential(field))
        });
        if !allowed {
            let fields: Vec<String> = place
                .and_then(|(_, role, kind, _)| registry.entry(role, kind))
                .map(|e| e.credentials().iter().map(|c| c.to_string()).collect())
                .unwrap_or_default();
            errors.push(ValidationError::new(
                path,
                format!(
                    "secret \"{name}\" may only be used in a credential field ({}): anywhere else its value \
                     could be written out",
                    if fields.is_empty() {
                        "this component has none".to_string()
                    } else {
                        fields.join(", ")
                    }
                ),
            ));
        }
    }
    errors
}

/// Checks a `wasm` processor's config against the JSON Schema its component describes, with the built-in
/// `validate` component (so the check runs in the sandbox too). Each violation is reported at its path.
fn check_described_schema(
    registry: &Registry,
    engine: &Engine,
    spec: &ProcessorSpec,
) -> Vec<ValidationError> {
    if spec.kind != "wasm" {
        return Vec::new();
    }
    let schema: Value = match serde_json::from_str(&spec.component.info().config_schema) {
        Ok(Value::Object(map)) if !map.is_empty() => Value::Object(map),
        _ => return Vec::new(), // no schema, or `{}`: only `init` checks
    };
    let at = spec.options_path();
    let checker = match registry
        .kinds()
        .iter()
        .find_map(|k| k.builtin().filter(|b| b.kind == "validate"))
        .map(|b| crate::processors::load_builtin(engine, b))
    {
        Some(Ok(c)) => c,
        Some(Err(e)) => return vec![ValidationError::new(at, e.to_string())],
        None => {
            return vec![ValidationError::new(
                at,
                "the built-in validate processor is missing",
            )];
        }
    };
    let config = serde_json::json!({ "schema": schema }).to_string();
    let mut instance = match engine.instantiate(&checker, &config, Default::default()) {
        Ok(i) => i,
        Err(e) => {
            return vec![ValidationError::new(
                at,
                format!("the processor describes a config schema that is not valid: {e}"),
            )];
        }
    };
    let message = crate::message(spec.config.clone().into_bytes(), Default::default());
    let out = match instance.process(&[message]) {
        Ok(out) => out,
        Err(e) => {
            return vec![ValidationError::new(
                at,
                format!("checking the config: {e}"),
            )];
        }
    };
    let Some(error) = out.into_iter().next().and_then(|m| m.error) else {
        return Vec::new();
    };
    // Violations come as "/json/pointer: message; ...".
    error
        .split("; ")
        .map(|v| match v.split_once(": ") {
            Some((pointer, message)) if pointer.starts_with('/') => {
                let inner: String = pointer
                    .split('/')
                    .skip(1)
                    .map(|seg| match seg.parse::<usize>() {
                        Ok(i) => format!("[{i}]"),
                        Err(_) => format!(".{}", seg.replace("~1", "/").replace("~0", "~")),
                    })
                    .collect();
                ValidationError::new(
                    airtruct_model::join_path(&at, &inner),
                    format!("{message} (the processor's config schema)"),
                )
            }
            Some(("(root)", message)) => ValidationError::new(
                at.clone(),
                format!("{message} (the processor's config schema)"),
            ),
            _ => ValidationError::new(at.clone(), format!("{v} (the processor's config schema)")),
        })
        .collect()
}
