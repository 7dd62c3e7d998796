//! The host bindings of the `airtruct:processor` worlds: 0.1.0 (`wit/processor.wit`) and 0.2.0
//! (`wit/v0.2.0/processor.wit`), one `bindgen!` each, used by everything else.
//!
//! 0.2.0's `types` interface is 0.1.0's, mapped onto the same Rust types: a message crosses the boundary of
//! either version with the same code and no conversion.

wasmtime::component::bindgen!({
    world: "processor",
    path: "../../wit",
    additional_derives: [PartialEq, Eq],
});

pub use airtruct::processor::log::Level;
// `ConfigError`, `Info` and `Message` are in scope here through the world's `use types.{..}`.

/// The 0.2.0 world: 0.1.0 and the host's capabilities.
pub mod v2 {
    wasmtime::component::bindgen!({
        world: "processor",
        path: "../../wit/v0.2.0",
        additional_derives: [PartialEq],
        with: {
            "airtruct:processor/types@0.2.0": super::airtruct::processor::types,
        },
    });

    // `Description` is in scope through the world's `use capabilities.{description}`.
    pub use airtruct::processor::capabilities::{Capability, HostError};
    pub use airtruct::processor::http::{Request as HttpRequest, Response as HttpResponse};
    pub use airtruct::processor::sql::{Rows as SqlRows, Value as SqlValue};
}
