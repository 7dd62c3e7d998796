//! Test fixture `fixture-loop` (not a built-in): `process` spins forever (for the host's epoch deadline).
//! It misbehaves only on a batch holding a message whose payload is `boom`, and passes other batches through.
//! `describe` and `init` behave normally and accept any configuration.

use airtruct_sdk::{ConfigErrors, Info, Message, Processor, export_processor};

/// The fixture processor.
pub struct Fixture;

impl Processor for Fixture {
    fn describe() -> Info {
        Info::new(
            "fixture-loop",
            "Test fixture: process spins forever (for the host's epoch deadline).",
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
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

export_processor!(Fixture);
