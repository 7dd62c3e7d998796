//! An uploaded component: size and magic checks, compilation, the contract's world and imports, `describe`.
//! Random and mutated bytes must be refused with an error, never a panic or a hang.

#![no_main]

use std::sync::OnceLock;

use airtruct_engine::{Engine, EngineConfig};
use libfuzzer_sys::fuzz_target;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::new(EngineConfig {
            pool_instances: 16,
            ..EngineConfig::default()
        })
        .expect("the engine starts")
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = engine().load(data);
});
