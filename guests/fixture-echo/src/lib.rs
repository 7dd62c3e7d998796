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

/// What WASI gives this guest: the host grants no environment, no directories and no timer; the wall clock is
/// read at the start and at the end of some work, and the monotonic clock across it.
fn probe() -> Message {
    let ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    };
    let (first, started) = (ms(), std::time::Instant::now());
    let mut x = 0u64;
    for i in 0..20_000_000u64 {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
    }
    let report = airtruct_sdk::serde_json::json!({
        "env_vars": std::env::vars().count(),
        "root_dir_readable": std::fs::read_dir("/").is_ok(),
        "wall_clock_ms_first": first,
        "wall_clock_ms_last": ms(),
        "monotonic_elapsed_ns": started.elapsed().as_nanos() as u64,
        "work": x % 2,
    });
    Message::new(report.to_string())
}

export_processor!(Fixture);
