//! The host bindings of the `airtruct:processor` world: the one `bindgen!` call, used by everything else.

wasmtime::component::bindgen!({
    world: "processor",
    path: "../../wit",
    additional_derives: [PartialEq, Eq],
});

pub use airtruct::processor::log::Level;
// `ConfigError`, `Info` and `Message` are in scope here through the world's `use types.{..}`.
