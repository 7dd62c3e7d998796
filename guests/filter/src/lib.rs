//! The `filter` processor: keeps the messages for which a VRL condition is `true`.
//!
//! Configuration: the condition as a JSON string (`".level == \"error\""`) or `{"condition": "..."}`. The
//! condition reads the message like a mapping does (`.` the payload, `%` the metadata) but cannot change it:
//! assigning to `.` or `%` is a compile error. `true` keeps the message, `false` drops it; any other result, a
//! runtime error or `abort` fails the message (which keeps its original content). A condition that can fail at
//! runtime is accepted, its error caught ([`vrl_common::compile_condition`]).
//!
//! The runtime also configures it with `{"steps": [...]}` to run consecutive mappings and filters in one call
//! (see `vrl_common::steps`).

use airtruct_sdk::{ConfigErrors, Info, Message, Processor, export_processor};
use vrl_common::{StepKind, Steps};

pub use vrl_common::compile_condition;

/// The filter processor: one compiled, read-only VRL condition, or fused steps.
pub struct Filter {
    steps: Steps,
}

impl Processor for Filter {
    fn describe() -> Info {
        airtruct_sdk::info_from_files!("filter")
    }

    fn init(config: &str) -> Result<Self, ConfigErrors> {
        Steps::from_config(StepKind::Filter, config).map(|steps| Filter { steps })
    }

    fn process(&mut self, batch: Vec<Message>) -> Result<Vec<Message>, String> {
        Ok(self.steps.process(batch))
    }
}

export_processor!(Filter);

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(condition: &str) -> Filter {
        Filter::init(&serde_json::to_string(condition).unwrap())
            .unwrap_or_else(|e| panic!("{}", e[0].message))
    }

    #[test]
    fn keeps_true_drops_false() {
        let mut f = filter(r#".level == "error""#);
        let out = f
            .process(vec![
                Message::new(r#"{"level":"error","n":1}"#),
                Message::new(r#"{"level":"info","n":2}"#),
                Message::new(r#"{"level":"error","n":3}"#),
            ])
            .unwrap();
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|m| m.error.is_none()));
        assert_eq!(out[1].payload, br#"{"level":"error","n":3}"#);
    }

    #[test]
    fn metadata_and_object_config() {
        let mut f = Filter::init(r#"{"condition": "%tenant == \"a\""}"#)
            .unwrap_or_else(|e| panic!("{:?}", e));
        let mut a = Message::new("x");
        a.metadata.insert("tenant", "a");
        let b = Message::new("y");
        let out = f.process(vec![a, b]).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].payload, b"x");
    }

    #[test]
    fn non_boolean_fails_the_message() {
        let mut f = filter(".n");
        let out = f
            .process(vec![
                Message::new(r#"{"n":3}"#),
                Message::new(r#"{"n":true}"#),
            ])
            .unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0].error.as_deref(),
            Some("filter condition must return a boolean, got integer 3")
        );
        assert_eq!(out[0].payload, br#"{"n":3}"#);
        assert_eq!(out[1].error, None);
    }

    #[test]
    fn runtime_error_fails_the_message() {
        let mut f = filter("to_int!(.s) > 2");
        let out = f
            .process(vec![
                Message::new(r#"{"s":"abc"}"#),
                Message::new(r#"{"s":"5"}"#),
            ])
            .unwrap();
        assert_eq!(out.len(), 2);
        assert!(
            out[0].error.as_deref().unwrap().starts_with("filter"),
            "{:?}",
            out[0].error
        );
        assert_eq!(out[1].error, None);
    }

    #[test]
    fn fallible_condition_fails_at_runtime() {
        let mut f = filter(".qty > 0");
        let out = f
            .process(vec![
                Message::new(r#"{"qty":3}"#),
                Message::new(r#"{"qty":0}"#),
                Message::new(r#"{"qty":"many"}"#),
                Message::new(r#"{}"#),
            ])
            .unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].error, None);
        let e = out[1].error.as_deref().unwrap();
        assert_eq!(e, "filter failed: expected string, got integer");
        assert_eq!(out[1].payload, br#"{"qty":"many"}"#);
        assert!(out[2].error.is_some());
        // Other errors are still reported on the original source.
        let e = Filter::init(r#"".qty > 0 && upcase(.x) == \"A\"""#)
            .err()
            .unwrap();
        assert!(e[0].message.contains("error[E110]"), "{}", e[0].message);
        assert!(
            !e[0].message.contains("airtruct_filter"),
            "{}",
            e[0].message
        );
    }

    #[test]
    fn config_errors() {
        // Not a boolean at all.
        let e = Filter::init(r#""\"text\"""#).err().unwrap();
        assert!(
            e[0].message.contains("must return a boolean"),
            "{}",
            e[0].message
        );
        // Read-only target.
        let e = Filter::init(r#"{"condition": ".x = 1\ntrue"}"#)
            .err()
            .unwrap();
        assert_eq!(e[0].path, ".condition");
        assert!(e[0].message.contains("error[E"), "{}", e[0].message);
    }
}
