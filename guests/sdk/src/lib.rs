//! The Airtruct guest SDK: write a processor in Rust as a type implementing [`Processor`], then export it with
//! [`export_processor!`]. Build with `cargo build --release --target wasm32-wasip2`; the `.wasm` file is a
//! component for the `airtruct:processor@0.2.0` world.
//!
//! A processor that calls out (HTTP, SQL, a cache, a rate limit) says so in [`Processor::capabilities`] and calls
//! through [`http`], [`sql`], [`cache`] and [`rate_limit`]: the host serves each call from a resource the stream
//! grants the processor, and a failure comes back as a [`HostError`].
//!
//! ```
//! use airtruct_sdk::{export_processor, Info, Message, Outcome, Processor, ConfigErrors};
//!
//! struct Upcase;
//!
//! impl Processor for Upcase {
//!     fn describe() -> Info {
//!         Info::new("upcase", "Upper-cases the payload", "0.1.0", r#"{"type":"object"}"#)
//!     }
//!     fn init(_config: &str) -> Result<Self, ConfigErrors> {
//!         Ok(Upcase)
//!     }
//!     fn process_message(&mut self, mut msg: Message) -> Outcome {
//!         msg.payload.make_ascii_uppercase();
//!         Outcome::Keep(msg)
//!     }
//! }
//!
//! export_processor!(Upcase);
//! ```

use std::any::Any;
use std::cell::RefCell;

pub use airtruct_codec::Metadata;
pub use serde_json;

mod host;
pub mod paths;
pub use host::{Capability, HostError, cache, http, rate_limit, sql};

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "processor",
        path: "../../wit/v0.2.0",
        pub_export_macro: true,
        default_bindings_module: "airtruct_sdk::bindings",
    });
}

/// One message: its payload bytes, its metadata and, once it failed, its error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The body, as bytes.
    pub payload: Vec<u8>,
    /// The metadata pairs.
    pub metadata: Metadata,
    /// Set when the message failed.
    pub error: Option<String>,
}

impl Message {
    /// A message with this payload and no metadata.
    pub fn new(payload: impl Into<Vec<u8>>) -> Self {
        Self {
            payload: payload.into(),
            ..Self::default()
        }
    }

    /// The payload parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.payload).map_err(|e| format!("payload is not valid JSON: {e}"))
    }

    /// Replaces the payload with this JSON value.
    pub fn set_json(&mut self, value: &serde_json::Value) {
        self.payload = serde_json::to_vec(value).expect("a JSON value always serializes");
    }
}

/// What a processor is, for the host and the console.
#[derive(Debug, Clone)]
pub struct Info {
    /// Short lowercase name.
    pub name: String,
    /// What it does, for the user.
    pub description: String,
    /// Its own semver version.
    pub version: String,
    /// The JSON Schema of its configuration, as JSON text.
    pub config_schema: String,
}

impl Info {
    /// Builds an [`Info`].
    pub fn new(name: &str, description: &str, version: &str, config_schema: &str) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            version: version.into(),
            config_schema: config_schema.into(),
        }
    }
}

/// The [`Info`] named `$name` at the crate's version, with the description and config schema read from
/// `description.txt` and `schema.json` beside the crate's `Cargo.toml`: files a host can also read without running
/// the component (the built-in processors' catalogue entries come from them).
#[macro_export]
macro_rules! info_from_files {
    ($name:literal) => {
        $crate::Info::new(
            $name,
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/description.txt")).trim_ascii_end(),
            env!("CARGO_PKG_VERSION"),
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.json")).trim_ascii_end(),
        )
    };
}

/// One problem with a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// JSON path into the configuration (`.source`), empty for the whole.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Every problem found in a configuration.
pub type ConfigErrors = Vec<ConfigError>;

impl ConfigError {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Parses a JSON configuration into `T`, reporting the path of a bad field.
pub fn parse_config<T: serde::de::DeserializeOwned>(config: &str) -> Result<T, ConfigErrors> {
    let de = &mut serde_json::Deserializer::from_str(config);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." {
            String::new()
        } else if path.starts_with('[') {
            path
        } else {
            format!(".{path}")
        };
        vec![ConfigError::new(path, e.into_inner().to_string())]
    })
}

/// Reads an option with `parse`, reporting its problem at `path`: `None` when it is absent or wrong.
pub fn read_option<T>(
    errors: &mut ConfigErrors,
    path: &str,
    value: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    match parse(value?) {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push(ConfigError::new(path, e));
            None
        }
    }
}

/// What became of one message in [`Processor::process_message`].
#[derive(Debug)]
pub enum Outcome {
    /// The message goes on (changed or not).
    Keep(Message),
    /// The message is filtered out.
    Drop,
    /// The message becomes several.
    Many(Vec<Message>),
    /// The message failed with this error; the original message goes to the error policy.
    Fail(Message, String),
}

/// A processor. The host creates one value per instance with [`Processor::init`] and then calls
/// [`Processor::process`] with batches; override [`Processor::process_message`] for a per-message transform or
/// [`Processor::process`] to see the whole batch (aggregations).
pub trait Processor: Sized + 'static {
    /// Name, description, version and config schema. Called without a configuration.
    fn describe() -> Info;

    /// The host capabilities it calls through (none by default). A stream must grant it a resource of each.
    fn capabilities() -> Vec<Capability> {
        Vec::new()
    }

    /// Builds the processor from its configuration (JSON text), returning every problem found.
    fn init(config: &str) -> Result<Self, ConfigErrors>;

    /// Processes one message.
    fn process_message(&mut self, msg: Message) -> Outcome {
        Outcome::Keep(msg)
    }

    /// Processes one batch. The default calls [`Processor::process_message`] for each message; an `Err` fails
    /// the whole batch.
    fn process(&mut self, batch: Vec<Message>) -> Result<Vec<Message>, String> {
        let mut out = Vec::with_capacity(batch.len());
        for msg in batch {
            match self.process_message(msg) {
                Outcome::Keep(m) => out.push(m),
                Outcome::Drop => {}
                Outcome::Many(ms) => out.extend(ms),
                Outcome::Fail(mut m, e) => {
                    m.error = Some(e);
                    out.push(m);
                }
            }
        }
        Ok(out)
    }
}

/// Log levels for [`log`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Writes a record to the host's log.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        use bindings::airtruct::processor::log::{Level as L, log};
        let level = match level {
            Level::Trace => L::Trace,
            Level::Debug => L::Debug,
            Level::Info => L::Info,
            Level::Warn => L::Warn,
            Level::Error => L::Error,
        };
        log(level, message);
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

thread_local! {
    static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

#[doc(hidden)]
pub mod __export {
    use super::*;
    use bindings::airtruct::processor::capabilities as caps;
    use bindings::airtruct::processor::types as wit;

    pub fn describe<P: Processor>() -> caps::Description {
        let i = P::describe();
        caps::Description {
            info: wit::Info {
                name: i.name,
                description: i.description,
                version: i.version,
                config_schema: i.config_schema,
            },
            capabilities: P::capabilities()
                .into_iter()
                .map(|c| match c {
                    Capability::Http => caps::Capability::Http,
                    Capability::Sql => caps::Capability::Sql,
                    Capability::Cache => caps::Capability::Cache,
                    Capability::RateLimit => caps::Capability::RateLimit,
                })
                .collect(),
        }
    }

    pub fn init<P: Processor>(config: String) -> Result<(), Vec<wit::ConfigError>> {
        match P::init(&config) {
            Ok(p) => {
                INSTANCE.with(|i| *i.borrow_mut() = Some(Box::new(p)));
                Ok(())
            }
            Err(errors) => Err(errors
                .into_iter()
                .map(|e| wit::ConfigError {
                    path: e.path,
                    message: e.message,
                })
                .collect()),
        }
    }

    pub fn process<P: Processor>(batch: Vec<wit::Message>) -> Result<Vec<wit::Message>, String> {
        let batch = batch
            .into_iter()
            .map(|m| Message {
                payload: m.payload,
                metadata: Metadata::from_bytes_unchecked(m.metadata),
                error: m.error,
            })
            .collect();
        let out = INSTANCE.with(|i| {
            let mut slot = i.borrow_mut();
            let p = slot
                .as_mut()
                .and_then(|b| b.downcast_mut::<P>())
                .ok_or_else(|| "process called before a successful init".to_string())?;
            p.process(batch)
        })?;
        Ok(out
            .into_iter()
            .map(|m| wit::Message {
                payload: m.payload,
                metadata: m.metadata.into_bytes(),
                error: m.error,
            })
            .collect())
    }
}

/// Exports a [`Processor`] type as the component's `airtruct:processor` implementation.
#[macro_export]
macro_rules! export_processor {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct AirtructExport;
            impl $crate::bindings::Guest for AirtructExport {
                fn describe() -> $crate::bindings::airtruct::processor::capabilities::Description {
                    $crate::__export::describe::<$ty>()
                }
                fn init(
                    config: String,
                ) -> Result<(), Vec<$crate::bindings::airtruct::processor::types::ConfigError>>
                {
                    $crate::__export::init::<$ty>(config)
                }
                fn process(
                    batch: Vec<$crate::bindings::airtruct::processor::types::Message>,
                ) -> Result<Vec<$crate::bindings::airtruct::processor::types::Message>, String>
                {
                    $crate::__export::process::<$ty>(batch)
                }
            }
            $crate::bindings::export!(AirtructExport);
        };
    };
}
