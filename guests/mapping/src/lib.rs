//! The `mapping` processor: rewrites each message with a VRL program.
//!
//! Configuration: the program as a JSON string (`"..."`) or `{"source": "..."}`. The program is compiled once,
//! in `init`; compile errors come back as configuration errors with VRL's diagnostics. In the program `.` is
//! the payload (parsed JSON, or the raw text as a string when the payload is not JSON) and `%` the metadata
//! (string values); see `vrl-common` for the details. A runtime error or `abort` fails the message, which
//! keeps its original payload and metadata.
//!
//! The runtime also configures it with `{"steps": [...]}` to run consecutive mappings and filters in one call
//! (see `vrl_common::steps`).

use airtruct_sdk::{ConfigErrors, Info, Message, Processor, export_processor};
use vrl_common::{StepKind, Steps};

/// The mapping processor: one compiled VRL program, or fused steps.
pub struct Mapping {
    steps: Steps,
}

impl Processor for Mapping {
    fn describe() -> Info {
        airtruct_sdk::info_from_files!("mapping")
    }

    fn init(config: &str) -> Result<Self, ConfigErrors> {
        Steps::from_config(StepKind::Mapping, config).map(|steps| Mapping { steps })
    }

    fn process(&mut self, batch: Vec<Message>) -> Result<Vec<Message>, String> {
        Ok(self.steps.process(batch))
    }
}

export_processor!(Mapping);

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(source: &str) -> Mapping {
        Mapping::init(&serde_json::to_string(source).unwrap())
            .unwrap_or_else(|e| panic!("{}", e[0].message))
    }

    fn run(m: &mut Mapping, msg: Message) -> Vec<Message> {
        m.process(vec![msg]).unwrap()
    }

    #[test]
    fn upcases_a_field() {
        let mut m = mapping(".name = upcase(string!(.name))");
        let out = run(&mut m, Message::new(r#"{"name":"ada","n":1}"#));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].error, None);
        assert_eq!(
            out[0].json().unwrap(),
            serde_json::json!({"name": "ADA", "n": 1})
        );
        // `upcase!` raises the argument's type error at runtime.
        let mut m = mapping(".name = upcase!(.name)\n.tagged = true");
        let out = run(&mut m, Message::new(r#"{"name":"ada"}"#));
        assert_eq!(
            out[0].json().unwrap(),
            serde_json::json!({"name": "ADA", "tagged": true})
        );
        let out = run(&mut m, Message::new(r#"{"name":1}"#));
        assert_eq!(out[0].payload, br#"{"name":1}"#);
        assert!(
            out[0]
                .error
                .as_deref()
                .unwrap()
                .starts_with("mapping failed: "),
            "{:?}",
            out[0].error
        );
    }

    #[test]
    fn object_config_and_metadata() {
        let mut m = Mapping::init(
            r#"{"source": ".key = %kafka_key\n%foo = \"bar\"\n%n = 42\ndel(%gone)\n%ts = t'2024-01-02T03:04:05Z'"}"#,
        )
        .unwrap_or_else(|e| panic!("{}", e[0].message));
        let mut msg = Message::new(r#"{}"#);
        msg.metadata.insert("kafka_key", "k1");
        msg.metadata.insert("gone", "x");
        let out = run(&mut m, msg);
        assert_eq!(out[0].error, None);
        assert_eq!(out[0].json().unwrap(), serde_json::json!({"key": "k1"}));
        assert_eq!(out[0].metadata.get("kafka_key"), Some("k1"));
        assert_eq!(out[0].metadata.get("foo"), Some("bar"));
        assert_eq!(out[0].metadata.get("n"), Some("42"));
        assert_eq!(out[0].metadata.get("gone"), None);
        assert_eq!(out[0].metadata.get("ts"), Some("2024-01-02T03:04:05Z"));
    }

    #[test]
    fn raw_text_payload() {
        let mut m = mapping(". = upcase(string!(.)) + \"!\"");
        let out = run(&mut m, Message::new("hello world"));
        assert_eq!(out[0].error, None);
        assert_eq!(out[0].payload, b"HELLO WORLD!");
        // A JSON string payload stays JSON.
        let out = run(&mut m, Message::new(r#""hi""#));
        assert_eq!(out[0].payload, br#""HI!""#);
    }

    #[test]
    fn compile_error_has_diagnostics() {
        let e = Mapping::init(r#"{"source": ".x = upcas(.y)"}"#)
            .err()
            .unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].path, ".source");
        assert!(e[0].message.contains("error[E105]"), "{}", e[0].message);
        assert!(
            e[0].message.contains("upcase"),
            "did you mean: {}",
            e[0].message
        );
        assert!(!e[0].message.contains('\u{1b}'), "no colour");
        let e = Mapping::init(r#"".x = ""#).err().unwrap();
        assert_eq!(e[0].path, "");
        assert!(e[0].message.contains("error[E"), "{}", e[0].message);
        assert!(Mapping::init("42").is_err());
        assert!(Mapping::init(r#"{"source": ".x = 1", "other": 1}"#).is_err());
    }

    #[test]
    fn runtime_error_and_abort_keep_the_original() {
        let mut m = mapping(".a = 1\n%m = \"changed\"\n.b = to_int!(.text)");
        let mut msg = Message::new(r#"{"text":"abc"}"#);
        msg.metadata.insert("m", "orig");
        let out = run(&mut m, msg.clone());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].payload, msg.payload);
        assert_eq!(out[0].metadata, msg.metadata);
        let err = out[0].error.as_deref().unwrap();
        assert!(
            err.starts_with("mapping failed:") || err.starts_with("mapping aborted:"),
            "{err}"
        );
        assert!(err.contains("to_int"), "{err}");

        let mut m = mapping(".a = 1\nabort \"no thanks\"");
        let out = run(&mut m, msg.clone());
        assert_eq!(out[0].payload, msg.payload);
        assert_eq!(out[0].error.as_deref(), Some("mapping aborted: no thanks"));
        let mut m = mapping("abort");
        assert_eq!(
            run(&mut m, msg.clone())[0].error.as_deref(),
            Some("mapping aborted")
        );
    }

    #[test]
    fn describe_schema_is_json() {
        let info = Mapping::describe();
        assert_eq!(info.name, "mapping");
        let _: serde_json::Value = serde_json::from_str(&info.config_schema).unwrap();
    }
}
