//! The `split` processor: turns a JSON array payload into one message per element.
//!
//! Configuration: none (`{}` or `null`). Each element becomes a message whose payload is that element's JSON
//! text, exactly as it was written in the array, with the original metadata plus `split_index` (0, 1, ...).
//! An empty array produces no message. A payload that is not a JSON array fails the message.

use airtruct_sdk::{
    ConfigError, ConfigErrors, Info, Message, Outcome, Processor, export_processor,
};
use serde_json::value::RawValue;

/// The metadata key holding an element's position in the array.
pub const INDEX_KEY: &str = "split_index";

/// The split processor (no settings).
pub struct Split;

/// Splits a JSON array payload into its elements' JSON texts.
pub fn split_array(payload: &[u8]) -> Result<Vec<&RawValue>, String> {
    match serde_json::from_slice::<Vec<&RawValue>>(payload) {
        Ok(items) => Ok(items),
        Err(_) => match serde_json::from_slice::<serde_json::Value>(payload) {
            Ok(v) => Err(format!(
                "split expects a JSON array payload, got {}",
                json_type(&v)
            )),
            Err(e) => Err(format!(
                "split expects a JSON array payload, but the payload is not valid JSON: {e}"
            )),
        },
    }
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

impl Processor for Split {
    fn describe() -> Info {
        airtruct_sdk::info_from_files!("split")
    }

    fn init(config: &str) -> Result<Self, ConfigErrors> {
        if config.trim().is_empty() {
            return Ok(Split);
        }
        match serde_json::from_str::<serde_json::Value>(config) {
            Ok(serde_json::Value::Null) => Ok(Split),
            Ok(serde_json::Value::Object(map)) => {
                let errors: ConfigErrors = map
                    .keys()
                    .map(|k| {
                        ConfigError::new(
                            format!(".{k}"),
                            format!("unknown setting `{k}`: split takes no settings"),
                        )
                    })
                    .collect();
                if errors.is_empty() {
                    Ok(Split)
                } else {
                    Err(errors)
                }
            }
            _ => Err(vec![ConfigError::new(
                "",
                "split takes no settings: use {} or null",
            )]),
        }
    }

    fn process_message(&mut self, msg: Message) -> Outcome {
        let items = match split_array(&msg.payload) {
            Ok(items) => items,
            Err(e) => return Outcome::Fail(msg, e),
        };
        let out = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let mut metadata = msg.metadata.clone();
                metadata.insert(INDEX_KEY, &i.to_string());
                Message {
                    payload: item.get().as_bytes().to_vec(),
                    metadata,
                    error: None,
                }
            })
            .collect();
        Outcome::Many(out)
    }
}

export_processor!(Split);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_arrays() {
        let mut s = Split::init("{}").unwrap();
        assert!(Split::init("null").is_ok());
        assert!(Split::init(r#"{"x":1}"#).is_err());
        let mut m = Message::new(r#"[{"b":1,"a":2}, 3, "x", [1]]"#);
        m.metadata.insert("k", "v");
        let out = s
            .process(vec![
                m,
                Message::new("[]"),
                Message::new(r#"{"a":1}"#),
                Message::new("nope"),
            ])
            .unwrap();
        assert_eq!(out.len(), 6);
        let payloads: Vec<&[u8]> = out[..4].iter().map(|m| m.payload.as_slice()).collect();
        assert_eq!(
            payloads,
            vec![&br#"{"b":1,"a":2}"#[..], b"3", br#""x""#, b"[1]"]
        );
        assert_eq!(out[2].metadata.get("k"), Some("v"));
        assert_eq!(out[2].metadata.get("split_index"), Some("2"));
        assert_eq!(
            out[4].error.as_deref(),
            Some("split expects a JSON array payload, got an object")
        );
        assert_eq!(out[4].payload, br#"{"a":1}"#);
        assert!(out[5].error.as_deref().unwrap().contains("not valid JSON"));
    }
}
