//! Test fixture `fixture-huge` (not a built-in): `process` returns one message with a 100 MB payload (for the host's output size limit).
//! It misbehaves only on a batch holding a message whose payload is `boom`, and passes other batches through.
//! `describe` and `init` behave normally and accept any configuration.

use airtruct_sdk::{ConfigErrors, Info, Message, Processor, export_processor};

/// The fixture processor.
pub struct Fixture;

impl Processor for Fixture {
    fn describe() -> Info {
        Info::new(
            "fixture-huge",
            "Test fixture: process returns one message with a 100 MB payload (for the host's output size limit).",
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
        Ok(vec![Message::new(vec![b'x'; 100 * 1024 * 1024])])
    }
}

export_processor!(Fixture);
