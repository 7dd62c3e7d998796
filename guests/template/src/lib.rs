//! A template processor: it adds a prefix to text payloads and records it in metadata.
//! Copy this folder, rename the crate, change `describe` and `process_message`, and build with
//! `cargo build --release --target wasm32-wasip2`.

// Built natively (for unit tests) nothing calls the export, so the types look unused there.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use airtruct_sdk::{
    ConfigErrors, Info, Message, Outcome, Processor, export_processor, parse_config,
};
use serde::Deserialize;

/// The configuration, as the user writes it in the stream (`wasm: { config: { prefix: ">> " } }`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Text put in front of every payload.
    prefix: String,
}

struct Prefix {
    prefix: Vec<u8>,
}

impl Processor for Prefix {
    fn describe() -> Info {
        Info::new(
            "prefix",
            "Puts a fixed prefix in front of every payload",
            "0.1.0",
            r#"{"type":"object","properties":{"prefix":{"type":"string","description":"Text put in front of every payload"}},"required":["prefix"],"additionalProperties":false}"#,
        )
    }

    fn init(config: &str) -> Result<Self, ConfigErrors> {
        let config: Config = parse_config(config)?;
        Ok(Prefix {
            prefix: config.prefix.into_bytes(),
        })
    }

    fn process_message(&mut self, mut msg: Message) -> Outcome {
        msg.payload.splice(0..0, self.prefix.iter().copied());
        msg.metadata.insert("prefixed", "true");
        Outcome::Keep(msg)
    }
}

export_processor!(Prefix);
