//! The `avro` processor: Avro to JSON (`to_json`) and JSON to Avro (`from_json`), one datum per message.
//!
//! Configuration: `{"operator": "to_json" | "from_json", "encoding": "binary" | "single" | "confluent", "schema":
//! <schema>, "schema_path": <path>, "schema_id": <id>}`. A `schema_path` is read by the host, under the operator's
//! path policy, and handed over in `$files` (the component itself reads no file).
//!
//! The JSON side is plain JSON, the same both ways, so that `from_json` takes what `to_json` gives:
//! - a union is its value (`null`, or the first branch the value fits, in the schema's order);
//! - `bytes` and `fixed` are base64 strings, an enum its symbol, a record or a map an object;
//! - `decimal` a string of its exact value (`"12.30"`; a JSON number is taken too), `uuid` a string, `date` and
//!   times their numbers (days, milliseconds or microseconds), `duration` `{"months", "days", "millis"}`;
//! - a float that is not finite is `"NaN"`, `"Infinity"` or `"-Infinity"`.
//!
//! `from_json` fills a missing record field from its default, or with `null` where the field's union allows it;
//! it ignores fields the schema does not name.

mod json;

use std::collections::BTreeMap;

use airtruct_sdk::{
    ConfigError, ConfigErrors, Info, Message, Outcome, Processor, export_processor,
};
use apache_avro::Schema;
use apache_avro::headers::{HeaderBuilder, RabinFingerprintHeader};
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::ResolvedSchema;
use apache_avro::writer::datum::GenericDatumWriter;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Operator {
    ToJson,
    FromJson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Encoding {
    #[default]
    Binary,
    Single,
    Confluent,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    operator: Operator,
    #[serde(default)]
    encoding: Encoding,
    #[serde(default)]
    schema: Option<serde_json::Value>,
    #[serde(default)]
    schema_path: Option<String>,
    #[serde(default)]
    schema_id: Option<u32>,
    /// The files the host read for this component, by the path the config gave.
    #[serde(default, rename = "$files")]
    files: BTreeMap<String, String>,
}

/// The avro processor: one parsed schema and how a datum is framed.
pub struct Avro {
    operator: Operator,
    encoding: Encoding,
    schema_id: Option<u32>,
    /// The single-object header (C3 01 and the fingerprint).
    single_header: Vec<u8>,
    schema: &'static Schema,
    names: ResolvedSchema<'static>,
    reader: GenericDatumReader<'static>,
    writer: GenericDatumWriter<'static>,
}

impl Avro {
    /// Builds the processor from its configuration; every problem at its path.
    pub fn from_config(config: &str) -> Result<Self, ConfigErrors> {
        let config: Config = airtruct_sdk::parse_config(config)?;
        let text = match (&config.schema, &config.schema_path) {
            (Some(_), Some(_)) => {
                return Err(vec![ConfigError::new(
                    "",
                    "give either `schema` or `schema_path`, not both",
                )]);
            }
            (None, None) => {
                return Err(vec![ConfigError::new(
                    "",
                    "give the Avro schema: `schema` (inline) or `schema_path` (a file)",
                )]);
            }
            (Some(serde_json::Value::String(text)), None) => (text.clone(), ".schema"),
            (Some(schema), None) => (schema.to_string(), ".schema"),
            (None, Some(path)) => match config.files.get(path) {
                Some(text) => (text.clone(), ".schema_path"),
                None => {
                    return Err(vec![ConfigError::new(
                        ".schema_path",
                        format!("the file {path:?} was not read by the host"),
                    )]);
                }
            },
        };
        if config.schema_id.is_some() && config.encoding != Encoding::Confluent {
            return Err(vec![ConfigError::new(
                ".schema_id",
                "a schema id is only written with `encoding: confluent`",
            )]);
        }
        let (text, at) = text;
        let schema = Schema::parse_str(&text)
            .map_err(|e| vec![ConfigError::new(at, format!("invalid Avro schema: {e}"))])?;
        let schema: &'static Schema = Box::leak(Box::new(schema));
        let invalid =
            |e: apache_avro::Error| vec![ConfigError::new(at, format!("invalid Avro schema: {e}"))];
        let names = ResolvedSchema::try_from(schema).map_err(invalid)?;
        let reader = GenericDatumReader::builder(schema)
            .build()
            .map_err(invalid)?;
        let writer = GenericDatumWriter::builder(schema)
            .build()
            .map_err(invalid)?;
        Ok(Avro {
            operator: config.operator,
            encoding: config.encoding,
            schema_id: config.schema_id,
            single_header: RabinFingerprintHeader::from_schema(schema).build_header(),
            schema,
            names,
            reader,
            writer,
        })
    }

    /// One Avro payload as JSON.
    pub fn to_json(&self, payload: &[u8]) -> Result<Vec<u8>, String> {
        let mut datum = self.unframe(payload)?;
        let value = self
            .reader
            .read_value(&mut datum)
            .map_err(|e| format!("not an Avro datum of this schema: {e}"))?;
        if !datum.is_empty() {
            return Err(format!(
                "not an Avro datum of this schema: {} bytes left over after the datum",
                datum.len()
            ));
        }
        let json = json::Json::new(&value, self.schema, self.names.get_names());
        serde_json::to_vec(&json).map_err(|e| e.to_string())
    }

    /// One JSON payload as Avro.
    pub fn from_json(&self, payload: &[u8]) -> Result<Vec<u8>, String> {
        let json: serde_json::Value = serde_json::from_slice(payload)
            .map_err(|e| format!("payload is not valid JSON: {e}"))?;
        let value = json::to_avro(&json, self.schema, self.names.get_names())?;
        let mut out = Vec::with_capacity(payload.len());
        match self.encoding {
            Encoding::Binary => {}
            Encoding::Single => out.extend_from_slice(&self.single_header),
            Encoding::Confluent => {
                out.push(0);
                out.extend_from_slice(&self.schema_id.unwrap_or(0).to_be_bytes());
            }
        }
        self.writer
            .write_value_ref(&mut out, &value)
            .map_err(|e| format!("the value does not fit the schema: {e}"))?;
        Ok(out)
    }

    /// The datum inside a payload, its framing checked.
    fn unframe<'p>(&self, payload: &'p [u8]) -> Result<&'p [u8], String> {
        match self.encoding {
            Encoding::Binary => Ok(payload),
            Encoding::Single => payload
                .strip_prefix(&self.single_header[..])
                .ok_or_else(|| {
                    if payload.starts_with(&[0xC3, 0x01]) && payload.len() >= 10 {
                        format!(
                            "written with another schema: fingerprint {} where this schema's is {}",
                            hex(&payload[2..10]),
                            hex(&self.single_header[2..])
                        )
                    } else {
                        "not in the single-object encoding (it starts with C3 01)".to_string()
                    }
                }),
            Encoding::Confluent => {
                if payload.len() < 5 || payload[0] != 0 {
                    return Err(
                        "not in the Confluent wire format (a zero byte and a 4-byte schema id)"
                            .into(),
                    );
                }
                let id = u32::from_be_bytes([payload[1], payload[2], payload[3], payload[4]]);
                match self.schema_id {
                    Some(want) if want != id => {
                        Err(format!("written with schema id {id}, not {want}"))
                    }
                    _ => Ok(&payload[5..]),
                }
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Processor for Avro {
    fn describe() -> Info {
        airtruct_sdk::info_from_files!("avro")
    }

    fn init(config: &str) -> Result<Self, ConfigErrors> {
        Avro::from_config(config)
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

export_processor!(Avro);

#[cfg(test)]
mod tests;
