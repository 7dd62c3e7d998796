//! Test fixture `fixture-seen` (not a built-in): a 0.2.0 processor that asks for the `cache` capability and
//! marks each message with whether its payload was seen before (`seen: true|false` metadata), remembering
//! payloads in the cache its config names. A host error (a cache not granted) fails the message with its words.

#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use airtruct_sdk::{
    Capability, ConfigErrors, Info, Message, Outcome, Processor, cache, export_processor,
    parse_config,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    cache: String,
}

struct Seen {
    cache: String,
}

impl Processor for Seen {
    fn describe() -> Info {
        Info::new(
            "fixture-seen",
            "Test fixture: marks each message with whether its payload was seen before, through a cache.",
            env!("CARGO_PKG_VERSION"),
            r#"{"type":"object","properties":{"cache":{"type":"string"}},"required":["cache"],"additionalProperties":false}"#,
        )
    }

    fn capabilities() -> Vec<Capability> {
        vec![Capability::Cache]
    }

    fn init(config: &str) -> Result<Self, ConfigErrors> {
        let c: Config = parse_config(config)?;
        Ok(Seen { cache: c.cache })
    }

    fn process_message(&mut self, mut msg: Message) -> Outcome {
        let key = String::from_utf8_lossy(&msg.payload).into_owned();
        match cache::add(&self.cache, &key, b"1", None) {
            Ok(added) => {
                msg.metadata
                    .insert("seen", if added { "false" } else { "true" });
                Outcome::Keep(msg)
            }
            Err(e) => Outcome::Fail(msg, format!("fixture-seen: {e}")),
        }
    }
}

export_processor!(Seen);
