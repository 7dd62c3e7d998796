//! Test fixture `fixture-huge` (not a built-in): `process` returns one message with a 100 MB payload (for the host's output size limit).
//! `describe` and `init` behave normally and accept any configuration.

use airtruct_sdk::{ConfigErrors, Info, Message, Processor, export_processor};

/// The fixture processor.
pub struct Fixture;

impl Processor for Fixture {
    fn describe() -> Info {
        Info::new("fixture-huge", "Test fixture: process returns one message with a 100 MB payload (for the host's output size limit).", env!("CARGO_PKG_VERSION"), "{}")
    }

    fn init(_config: &str) -> Result<Self, ConfigErrors> {
        Ok(Fixture)
    }

    fn process(&mut self, _batch: Vec<Message>) -> Result<Vec<Message>, String> {
        Ok(vec![Message::new(vec![b'x'; 100 * 1024 * 1024])])
    }
}

export_processor!(Fixture);
