//! Test fixture `fixture-net` (not a built-in): tries to open a TCP connection, so the component imports
//! `wasi:sockets`. The host must refuse to load it: processors get no network.

use airtruct_sdk::{ConfigErrors, Info, Message, Processor, export_processor};

/// The fixture processor.
pub struct Fixture;

impl Processor for Fixture {
    fn describe() -> Info {
        Info::new(
            "fixture-net",
            "Test fixture: opens a TCP connection (imports wasi:sockets).",
            env!("CARGO_PKG_VERSION"),
            "{}",
        )
    }

    fn init(_config: &str) -> Result<Self, ConfigErrors> {
        Ok(Fixture)
    }

    fn process(&mut self, batch: Vec<Message>) -> Result<Vec<Message>, String> {
        let addr = String::from_utf8_lossy(&batch[0].payload).into_owned();
        std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
        Ok(batch)
    }
}

export_processor!(Fixture);
