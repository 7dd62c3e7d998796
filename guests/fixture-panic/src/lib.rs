//! Test fixture `fixture-panic` (not a built-in): `process` panics with the message "fixture panic".
//! It misbehaves only on a batch holding a message whose payload is `boom`, and passes other batches through.
//! `describe` and `init` behave normally and accept any configuration.

use airtruct_sdk::{ConfigErrors, Info, Message, Processor, export_processor};

/// The fixture processor.
pub struct Fixture;

impl Processor for Fixture {
    fn describe() -> Info {
        Info::new(
            "fixture-panic",
            "Test fixture: process panics with the message \"fixture panic\".",
            env!("CARGO_PKG_VERSION"),
            "{}",
        )
    }

    fn init(_config: &str) -> Result<Self, ConfigErrors> {
        Ok(Fixture)
    }

    fn process(&mut self, batch: Vec<Message>) -> Result<Vec<Message>, String> {
        if !batch.iter().any(|m| m.payload == b"boom") {
            return Ok(batch);
        }
        panic!("fixture panic")
    }
}

export_processor!(Fixture);
