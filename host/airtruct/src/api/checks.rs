//! The checks behind saving, resuming, validating and testing a stream through the API: configs given as text,
//! pinning and loading uploaded processors, refusing file paths, and the one validation with secrets.

use airtruct_model::ValidationError;
use airtruct_runtime::Uploaded;
use airtruct_runtime::processors::{uploaded_refs, wasm_steps};
use airtruct_runtime::validate_stream_under;
use serde_json::Value;

use super::AppState;

/// A config given as text is parsed as YAML (JSON is YAML). `${VAR}` is not read from the server's
/// environment: configs saved through the API use `${secret:NAME}`.
pub(super) fn config_value(config: Value) -> Result<Value, Vec<ValidationError>> {
    let value = match config {
        // An empty document is an empty config (every missing section is then reported where it matters).
        Value::String(text) if text.trim().is_empty() => Value::Object(Default::default()),
        Value::String(text) => {
            airtruct_model::refuse_yaml_aliases(&text)
                .map_err(|e| vec![ValidationError::new("config", e.message)])?;
            airtruct_model::parse_text(&text, |_| None).map_err(|errs| {
                errs.into_iter()
                    .map(|e| ValidationError::new(join("config", &e.path), e.message))
                    .collect::<Vec<_>>()
            })?
        }
        other => other,
    };
    // Even a paused stream's config is a mapping of sections; anything else could never run.
    if value.is_object() {
        Ok(value)
    } else {
        let found = match &value {
            Value::Null => "nothing (null)",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "a list",
            Value::Object(_) => "an object",
        };
        Err(vec![ValidationError::new(
            "config",
            format!("a stream config is an object (or its YAML or JSON text), found {found}"),
        )])
    }
}

pub(super) fn join(prefix: &str, path: &str) -> String {
    if path.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}.{path}")
    }
}

/// The one check behind validate, save-as-active and resume: the config itself (with every processor's
/// `init`) and the existence of every secret it references. Paths are relative to the config.
/// Pins the latest version of every uploaded processor named without one, so that a later upload never
/// changes a saved stream. Unknown names are reported at their path.
pub(super) async fn pin_versions(state: &AppState, config: &mut Value) -> Vec<ValidationError> {
    let mut errors = Vec::new();
    for r in uploaded_refs(airtruct_connectors::registry(), config) {
        match state.store.get_processor(&r.name, r.version).await {
            Ok(p) => {
                if r.version.is_none()
                    && let Some(wasm) = config
                        .pointer_mut(&r.pointer)
                        .and_then(Value::as_object_mut)
                {
                    wasm.insert("version".into(), Value::from(p.version));
                }
            }
            Err(airtruct_store::StoreError::NotFound(what)) => errors.push(ValidationError::new(
                r.path(),
                format!("{what} does not exist"),
            )),
            Err(e) => errors.push(ValidationError::new(r.path(), e.to_string())),
        }
    }
    errors
}

/// Loads the uploaded components a (pinned) config names.
pub(super) async fn fetch_uploaded(
    state: &AppState,
    config: &Value,
) -> (Uploaded, Vec<ValidationError>) {
    let mut uploaded = Uploaded::default();
    let mut errors = Vec::new();
    for r in uploaded_refs(airtruct_connectors::registry(), config) {
        let Some(version) = r.version else { continue };
        let loaded = match state.store.get_processor(&r.name, Some(version)).await {
            Ok(p) => state.load_component(&p.sha256).await,
            Err(e) => Err(e.to_string()),
        };
        match loaded {
            Ok(c) => uploaded.insert(&r.name, version, c),
            Err(e) => errors.push(ValidationError::new(r.path(), e)),
        }
    }
    (uploaded, errors)
}

/// Configs saved through the API name uploaded processors: `wasm.path` would make the coordinator and the workers
/// read files of their own disks. Paths are relative to the config.
pub(super) fn refuse_local_paths(config: &Value) -> Vec<ValidationError> {
    wasm_steps(airtruct_connectors::registry(), config)
        .into_iter()
        .filter(|w| w.options.get("path").is_some())
        .map(|w| {
            ValidationError::new(
                format!("{}.wasm.path", w.at),
                "a stream saved through the API uses an uploaded processor (`name`): `path` is for `airtruct run`",
            )
        })
        .collect()
}

pub(super) async fn check(state: &AppState, config: &Value) -> Result<(), Vec<ValidationError>> {
    let local = refuse_local_paths(config);
    if !local.is_empty() {
        return Err(local);
    }
    let mut value = config.clone();
    let mut errors = pin_versions(state, &mut value).await;
    let (uploaded, fetch_errors) = fetch_uploaded(state, &value).await;
    errors.extend(fetch_errors);
    let engine = state.engine.clone();
    let policy = state.policy.clone();
    errors.extend(
        match tokio::task::spawn_blocking(move || {
            validate_stream_under(
                airtruct_connectors::registry(),
                &engine,
                &value,
                &uploaded,
                Some(&policy),
            )
            .map(|_| ())
        })
        .await
        {
            Ok(Ok(())) => Vec::new(),
            Ok(Err(errors)) => errors,
            Err(e) => vec![ValidationError::new("", format!("validation crashed: {e}"))],
        },
    );
    errors.dedup();
    for (name, path) in airtruct_model::secret_refs(config) {
        match state.store.get_secret(&name).await {
            Ok(_) => {}
            Err(airtruct_store::StoreError::NotFound(_)) => errors.push(ValidationError::new(
                path,
                format!("secret \"{name}\" does not exist"),
            )),
            Err(e) => errors.push(ValidationError::new(
                path,
                format!("checking secret \"{name}\": {e}"),
            )),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}
