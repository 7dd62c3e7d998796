//! The built-in processor components, built from `guests/` by this crate's build script and embedded in the
//! binary, and the misbehaving fixtures that tests use.

/// A component embedded in the binary.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// The processor kind as written in a stream config (`mapping`).
    pub kind: &'static str,
    /// The component's bytes.
    pub wasm: &'static [u8],
    /// What its `describe` says of it, read from the same files as the guest reads (`guests/<kind>/description.txt`),
    /// so the catalogue can show it without compiling the component.
    pub description: &'static str,
    /// The JSON Schema of its config, as its `describe` gives it (`guests/<kind>/schema.json`).
    pub config_schema: &'static str,
}

macro_rules! component {
    ($file:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/", $file, ".wasm"))
    };
}

macro_rules! builtin {
    ($kind:literal) => {
        Builtin {
            kind: $kind,
            wasm: component!($kind),
            description: include_str!(concat!("../../../guests/", $kind, "/description.txt"))
                .trim_ascii_end(),
            config_schema: include_str!(concat!("../../../guests/", $kind, "/schema.json"))
                .trim_ascii_end(),
        }
    };
}

/// The `mapping` processor (VRL).
pub const MAPPING: Builtin = builtin!("mapping");
/// The `filter` processor (a VRL condition).
pub const FILTER: Builtin = builtin!("filter");
/// The `validate` processor (JSON Schema).
pub const VALIDATE: Builtin = builtin!("validate");
/// The `split` processor.
pub const SPLIT: Builtin = builtin!("split");
/// The `aggregate` processor.
pub const AGGREGATE: Builtin = builtin!("aggregate");

/// The `avro` processor (Avro to and from JSON).
pub const AVRO: Builtin = builtin!("avro");
/// The `protobuf` processor (Protobuf to and from JSON).
pub const PROTOBUF: Builtin = builtin!("protobuf");

/// The `http` processor (calls an API through an http resource).
pub const HTTP: Builtin = builtin!("http");
/// The `cache` processor (get, set, add, delete through a cache resource).
pub const CACHE: Builtin = builtin!("cache");
/// The `dedupe` processor (drops repeated keys, remembered in a cache resource).
pub const DEDUPE: Builtin = builtin!("dedupe");
/// The `sql` processor (looks rows up through a sql resource).
pub const SQL: Builtin = builtin!("sql");
/// The `rate_limit` processor (waits on a rate limit resource).
pub const RATE_LIMIT: Builtin = builtin!("rate_limit");

/// Every built-in processor, by the kind name used in stream configs.
pub const BUILTINS: &[Builtin] = &[
    MAPPING, FILTER, VALIDATE, SPLIT, AGGREGATE, AVRO, PROTOBUF, HTTP, CACHE, DEDUPE, SQL,
    RATE_LIMIT,
];

/// The built-in processor of this kind.
pub fn builtin(kind: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.kind == kind)
}

/// Components for tests and benchmarks: the template processor and the misbehaving fixtures. Not shipped as
/// processor kinds.
pub mod fixtures {
    /// The template processor (`guests/template`): prefixes payloads.
    pub const TEMPLATE: &[u8] = component!("template");
    /// Spins forever in `process`.
    pub const LOOP: &[u8] = component!("fixture_loop");
    /// Allocates until it hits its memory cap.
    pub const MEMBOMB: &[u8] = component!("fixture_membomb");
    /// Panics in `process` with "fixture panic".
    pub const PANIC: &[u8] = component!("fixture_panic");
    /// Returns one 100 MB message.
    pub const HUGE: &[u8] = component!("fixture_huge");
    /// Targets another world.
    pub const WRONG_WORLD: &[u8] = component!("fixture_wrong_world");
    /// Passes messages through unchanged.
    pub const ECHO: &[u8] = component!("fixture_echo");
    /// Opens a TCP connection: imports `wasi:sockets`, which the contract does not grant.
    pub const NET: &[u8] = component!("fixture_net");
    /// A 0.1.0 component (the SDK builds 0.2.0 ones): upper-cases payloads.
    pub const V1: &[u8] = component!("fixture_v1");
    /// A 0.2.0 component that asks for the `cache` capability: marks whether each payload was seen before.
    pub const SEEN: &[u8] = component!("fixture_seen");
}
