//! The `protobuf` processor: Protobuf to JSON (`to_json`) and JSON to Protobuf (`from_json`) for one message type.
//!
//! Configuration: `{"operator": "to_json" | "from_json", "message": "pkg.Type", "schema": <.proto source>,
//! "import_paths": [<folder or file>...], "use_proto_names": false, "discard_unknown": false}`. The host reads the
//! `.proto` files under `import_paths` (under the operator's path policy) and hands them over in `$files`, by the
//! name an `import` uses (the path under its import path); the component reads no file. Every file given is
//! compiled, inline definitions as `inline.proto`; the well-known types are built in.
//!
//! JSON follows the proto3 JSON mapping (64-bit integers as strings, bytes as base64, enums by name, fields at
//! their default value left out), as protoc's and Benthos's converters write it.

use std::collections::BTreeMap;
use std::path::Path;

use airtruct_sdk::{
    ConfigError, ConfigErrors, Info, Message, Outcome, Processor, export_processor,
};
use prost::Message as _;
use prost_reflect::{DeserializeOptions, DynamicMessage, MessageDescriptor, SerializeOptions};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};
use serde::Deserialize;

/// The name inline definitions are compiled under.
const INLINE: &str = "inline.proto";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Operator {
    ToJson,
    FromJson,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    operator: Operator,
    message: String,
    #[serde(default)]
    schema: Option<String>,
    #[serde(default)]
    import_paths: Vec<String>,
    #[serde(default)]
    use_proto_names: bool,
    #[serde(default)]
    discard_unknown: bool,
    /// The `.proto` files the host read under `import_paths`, by import name.
    #[serde(default, rename = "$files")]
    files: BTreeMap<String, String>,
}

/// Sources by import name.
struct Sources(BTreeMap<String, String>);

impl FileResolver for Sources {
    fn resolve_path(&self, path: &Path) -> Option<String> {
        let name = path.to_str()?;
        self.0.contains_key(name).then(|| name.to_string())
    }

    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.0.get(name) {
            Some(source) => File::from_source(name, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// The protobuf processor: the message type and how JSON is read and written.
pub struct Protobuf {
    operator: Operator,
    message: MessageDescriptor,
    read: DeserializeOptions,
    write: SerializeOptions,
}

impl Protobuf {
    /// Compiles the definitions and finds the message type; every problem at its path.
    pub fn from_config(config: &str) -> Result<Self, ConfigErrors> {
        let config: Config = airtruct_sdk::parse_config(config)?;
        if config.schema.is_none() && config.import_paths.is_empty() {
            return Err(vec![ConfigError::new(
                "",
                "give the message definitions: `schema` (.proto source) or `import_paths` (.proto files)",
            )]);
        }
        let at = if config.schema.is_some() {
            ".schema"
        } else {
            ".import_paths"
        };
        let mut sources = config.files;
        if sources.is_empty() && config.schema.is_none() {
            return Err(vec![ConfigError::new(
                ".import_paths",
                "no .proto file was found under the import paths",
            )]);
        }
        let mut names: Vec<String> = sources.keys().cloned().collect();
        if let Some(inline) = config.schema {
            sources.insert(INLINE.to_string(), inline);
            names.insert(0, INLINE.to_string());
        }
        let mut resolver = ChainFileResolver::new();
        resolver.add(Sources(sources));
        resolver.add(GoogleFileResolver::new());
        let mut compiler = protox::Compiler::with_file_resolver(resolver);
        compiler.include_imports(true);
        compiler.open_files(&names).map_err(|e| {
            vec![ConfigError::new(
                at,
                format!("invalid .proto definitions: {}", describe(&e)),
            )]
        })?;
        let pool = compiler.descriptor_pool();
        let message = pool.get_message_by_name(&config.message).ok_or_else(|| {
            let mut known: Vec<String> = pool
                .all_messages()
                .filter(|m| !m.is_map_entry())
                .map(|m| m.full_name().to_string())
                .filter(|n| !n.starts_with("google.protobuf."))
                .collect();
            known.sort();
            vec![ConfigError::new(
                ".message",
                format!(
                    "no message type {:?} in the definitions (they define: {})",
                    config.message,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            )]
        })?;
        Ok(Protobuf {
            operator: config.operator,
            message,
            read: DeserializeOptions::new().deny_unknown_fields(!config.discard_unknown),
            write: SerializeOptions::new().use_proto_field_name(config.use_proto_names),
        })
    }

    /// One Protobuf payload as JSON.
    pub fn to_json(&self, payload: &[u8]) -> Result<Vec<u8>, String> {
        let msg = DynamicMessage::decode(self.message.clone(), payload)
            .map_err(|e| format!("not a {} message: {e}", self.message.full_name()))?;
        let mut out = Vec::with_capacity(payload.len() * 2);
        let mut ser = serde_json::Serializer::new(&mut out);
        msg.serialize_with_options(&mut ser, &self.write)
            .map_err(|e| format!("cannot write {} as JSON: {e}", self.message.full_name()))?;
        Ok(out)
    }

    /// One JSON payload as Protobuf.
    pub fn from_json(&self, payload: &[u8]) -> Result<Vec<u8>, String> {
        let mut de = serde_json::Deserializer::from_slice(payload);
        let msg =
            DynamicMessage::deserialize_with_options(self.message.clone(), &mut de, &self.read)
                .and_then(|m| de.end().map(|()| m))
                .map_err(|e| format!("not JSON of a {} message: {e}", self.message.full_name()))?;
        Ok(msg.encode_to_vec())
    }
}

/// A compile error with the file and line it points at, when it has them.
fn describe(e: &protox::Error) -> String {
    let text = e.to_string();
    match e.file() {
        Some(file) if !text.contains(file) => format!("{file}: {text}"),
        _ => text,
    }
}

impl Processor for Protobuf {
    fn describe() -> Info {
        airtruct_sdk::info_from_files!("protobuf")
    }

    fn init(config: &str) -> Result<Self, ConfigErrors> {
        Protobuf::from_config(config)
    }

    fn process_message(&mut self, mut msg: Message) -> Outcome {
        let converted = match self.operator {
            Operator::ToJson => self.to_json(&msg.payload),
            Operator::FromJson => self.from_json(&msg.payload),
        };
        match converted {
            Ok(payload) => {
                msg.payload = payload;
                Outcome::Keep(msg)
            }
            Err(e) => Outcome::Fail(msg, e),
        }
    }
}

export_processor!(Protobuf);

#[cfg(test)]
mod tests;
