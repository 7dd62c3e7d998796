//! Test fixture `fixture-membomb` (not a built-in): `process` allocates and touches memory until allocation fails (for the host's memory limit).
//! It misbehaves only on a batch holding a message whose payload is `boom`, and passes other batches through.
//! `describe` and `init` behave normally and accept any configuration.

use airtruct_sdk::{ConfigErrors, Info, Message, Processor, export_processor};

/// The fixture processor.
pub struct Fixture;

impl Processor for Fixture {
    fn describe() -> Info {
        Info::new(
            "fixture-membomb",
            "Test fixture: process allocates and touches memory until allocation fails (for the host's memory limit).",
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
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            // 1 MiB at a time, every page written so that the memory is really used.
            let mut chunk = vec![0u8; 1 << 20];
            for i in (0..chunk.len()).step_by(4096) {
                chunk[i] = (hoard.len() as u8).wrapping_add(1);
            }
            hoard.push(std::hint::black_box(chunk));
        }
    }
}

export_processor!(Fixture);
