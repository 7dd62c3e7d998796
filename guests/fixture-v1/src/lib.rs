//! Test fixture `fixture-v1` (not a built-in): a processor for the airtruct:processor@0.1.0 world, written
//! against `wit/processor.wit` without the SDK (which targets 0.2.0), to prove the host still loads and runs 0.1.0
//! components. `process` upper-cases each payload.

#[cfg(target_arch = "wasm32")]
mod bindings {
    wit_bindgen::generate!({
        world: "processor",
        path: "../../wit",
    });

    struct V1;

    impl Guest for V1 {
        fn describe() -> Info {
            Info {
                name: "fixture-v1".into(),
                description: "Test fixture: a 0.1.0 processor that upper-cases payloads.".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                config_schema: "{}".into(),
            }
        }

        fn init(_config: String) -> Result<(), Vec<ConfigError>> {
            Ok(())
        }

        fn process(batch: Vec<Message>) -> Result<Vec<Message>, String> {
            Ok(batch
                .into_iter()
                .map(|mut m| {
                    m.payload.make_ascii_uppercase();
                    m
                })
                .collect())
        }
    }

    export!(V1);
}
