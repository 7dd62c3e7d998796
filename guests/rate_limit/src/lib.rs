//! The `rate_limit` processor: each message takes one from the rate limit before it goes on. The host waits
//! for the limit (that wait does not count against the processor's time limit, up to the limit's `max_wait`);
//! a message that cannot be let through in time fails with why.

#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use airtruct_sdk::{
    Capability, ConfigErrors, Info, Message, Outcome, Processor, export_processor, parse_config,
    rate_limit,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    resource: String,
}

struct RateLimit {
    resource: String,
}

impl Processor for RateLimit {
    fn describe() -> Info {
        airtruct_sdk::info_from_files!("rate_limit")
    }

    fn capabilities() -> Vec<Capability> {
        vec![Capability::RateLimit]
    }

    fn init(config: &str) -> Result<Self, ConfigErrors> {
        let c: Config = parse_config(config)?;
        Ok(RateLimit {
            resource: c.resource,
        })
    }

    fn process_message(&mut self, msg: Message) -> Outcome {
        match rate_limit::take(&self.resource, 1) {
            Ok(()) => Outcome::Keep(msg),
            Err(e) => Outcome::Fail(msg, format!("rate_limit: {e}")),
        }
    }
}

export_processor!(RateLimit);
