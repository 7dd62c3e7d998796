//! A stream config as the API takes it: text (YAML or JSON) checked for aliases, parsed, and validated under a
//! policy with one empty root, with every kind's checks and each processor's `init` in the sandbox. Anything may
//! be refused; nothing may panic, hang or grow without bound.

#![no_main]

use std::sync::OnceLock;

use airtruct_engine::{Engine, EngineConfig};
use airtruct_runtime::Uploaded;
use airtruct_runtime::policy::Policy;
use libfuzzer_sys::fuzz_target;

fn setup() -> &'static (Engine, Policy) {
    static SETUP: OnceLock<(Engine, Policy)> = OnceLock::new();
    SETUP.get_or_init(|| {
        // Compiled components are cached across runs: the first compile of the VRL components takes seconds.
        let engine = Engine::new(EngineConfig {
            pool_instances: 16,
            cache_dir: Some(std::env::temp_dir().join("airtruct-fuzz-cache")),
            ..EngineConfig::default()
        })
        .expect("the engine starts");
        let root = std::env::temp_dir().join("airtruct-fuzz-root");
        std::fs::create_dir_all(&root).expect("a folder for the policy's root");
        (engine, Policy::for_data_dir(&root))
    })
}

/// Every built-in processor once, before fuzzing starts, so that their compilation is not taken for a hang.
fn warm_up() {
    let (engine, policy) = setup();
    let config = serde_json::json!({
        "input": {"generate": {"count": 1}},
        "pipeline": {"processors": [
            {"mapping": ".a = 1"}, {"filter": "true"}, {"validate": {"schema": {}}},
            {"split": {}}, {"aggregate": {"count": 2}}, {"template": {"template": "x"}}
        ]},
        "output": {"drop": {}}
    });
    let _ = airtruct_runtime::validate_stream_under(
        airtruct_connectors::registry(),
        engine,
        &config,
        &Uploaded::default(),
        Some(policy),
    );
}

fuzz_target!(init: warm_up(), |data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (engine, policy) = setup();
    if airtruct_model::refuse_yaml_aliases(text).is_err() {
        return;
    }
    let Ok(value) = airtruct_model::parse_text(text, |_| None) else {
        return;
    };
    let _ = airtruct_runtime::validate_stream_under(
        airtruct_connectors::registry(),
        engine,
        &value,
        &Uploaded::default(),
        Some(policy),
    );
});
