//! The `dedupe` processor: a message whose key the cache already holds is dropped; the first of each key is
//! kept, and its key added to the cache (one atomic add per message, so two workers never both keep it).

#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use std::time::Duration;

use airtruct_sdk::paths::{Template, parse_duration};
use airtruct_sdk::{
    Capability, ConfigErrors, Info, Message, Outcome, Processor, cache, export_processor,
    parse_config, read_option,
};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    resource: String,
    key: String,
    #[serde(default)]
    ttl: Option<String>,
}

struct Dedupe {
    resource: String,
    key: Template,
    ttl: Option<Duration>,
}

impl Processor for Dedupe {
    fn describe() -> Info {
        airtruct_sdk::info_from_files!("dedupe")
    }

    fn capabilities() -> Vec<Capability> {
        vec![Capability::Cache]
    }

    fn init(config: &str) -> Result<Self, ConfigErrors> {
        let c: Config = parse_config(config)?;
        let mut errors = Vec::new();
        let key = read_option(&mut errors, ".key", Some(&c.key), Template::parse);
        let ttl = read_option(&mut errors, ".ttl", c.ttl.as_deref(), parse_duration);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Dedupe {
            resource: c.resource,
            key: key.expect("checked"),
            ttl,
        })
    }

    fn process_message(&mut self, msg: Message) -> Outcome {
        let payload = if self.key.reads_payload() {
            match msg.json() {
                Ok(v) => v,
                Err(e) => return Outcome::Fail(msg, format!("dedupe: {e}")),
            }
        } else {
            Value::Null
        };
        let key = match self.key.render(&payload, &msg.metadata) {
            Ok(k) => k,
            Err(e) => return Outcome::Fail(msg, format!("dedupe: {e}")),
        };
        match cache::add(&self.resource, &key, b"1", self.ttl) {
            Ok(true) => Outcome::Keep(msg),
            Ok(false) => Outcome::Drop,
            Err(e) => Outcome::Fail(msg, format!("dedupe: {e}")),
        }
    }
}

export_processor!(Dedupe);
