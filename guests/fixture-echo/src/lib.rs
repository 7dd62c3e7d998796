//! Test fixture `fixture-echo` (not a built-in): `process` returns its batch unchanged (to measure the boundary cost).
//! `describe` and `init` behave normally and accept any configuration.

use airtruct_sdk::{ConfigErrors, Info, Message, Processor, export_processor};

/// The fixture processor.
pub struct Fixture;

impl Processor for Fixture {
    fn describe() -> Info {
        Info::new(
            "fixture-echo",
            "Test fixture: process returns its batch unchanged (to measure the boundary cost).",
            env!("CARGO_PKG_VERSION"),
            "{}",
        )
    }

    fn init(_config: &str) -> Result<Self, ConfigErrors> {
        Ok(Fixture)
    }

    fn process(&mut self, batch: Vec<Message>) -> Result<Vec<Message>, String> {
        if batch.iter().any(|m| m.payload == b"sleep") {
            // Tries to wait past any time limit inside the host (the host must refuse).
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
        Ok(batch
            .into_iter()
            .map(|m| if m.payload == b"probe" { probe() } else { m })
            .collect())
    }
}

/// What WASI gives this guest: the host grants no environment, no directories and no real clock.
fn probe() -> Message {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let report = airtruct_sdk::serde_json::json!({
        "env_vars": std::env::vars().count(),
        "root_dir_readable": std::fs::read_dir("/").is_ok(),
        "wall_clock_secs": secs,
    });
    Message::new(report.to_string())
}

export_processor!(Fixture);
