//! Test fixture `fixture-echo` (not a built-in): `process` returns its batch unchanged (to measure the boundary cost).
//! `describe` and `init` behave normally and accept any configuration.

use airtruct_sdk::{ConfigErrors, Info, Message, Processor, export_processor};

/// The fixture processor.
pub struct Fixture;

impl Processor for Fixture {
    fn describe() -> Info {
        Info::new("fixture-echo", "Test fixture: process returns its batch unchanged (to measure the boundary cost).", env!("CARGO_PKG_VERSION"), "{}")
    }

    fn init(_config: &str) -> Result<Self, ConfigErrors> {
        Ok(Fixture)
    }

    fn process(&mut self, batch: Vec<Message>) -> Result<Vec<Message>, String> {
        Ok(batch)
    }
}

export_processor!(Fixture);
