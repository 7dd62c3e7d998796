//! The table of kinds, walked: every schema is a valid JSON Schema, every kind's documented example parses,
//! checks and builds, the catalogue lists exactly what the parser accepts, and validation reports every problem
//! of every component at once (nested programs included), each at its path.
//!
//! The examples point at this machine's services (PostgreSQL on 5432, the Kafka-compatible broker on 9092), which
//! the test command starts.

use std::sync::Arc;

use airtruct_connectors::registry;
use airtruct_engine::{Engine, EngineConfig, Limits};
use airtruct_model::Component;
use airtruct_runtime::kind::{CheckContext, Role};
use airtruct_runtime::{BuildContext, StreamMetrics, Uploaded, validate_stream};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

fn engine() -> Engine {
    Engine::new(EngineConfig::default()).expect("an engine")
}

/// The test runs in a folder of its own holding the files the examples name.
fn in_example_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_current_dir(dir.path()).unwrap();
    std::fs::write("in.jsonl", "{\"id\": 1}\n").unwrap();
    std::fs::write("prefix.wasm", airtruct_builtins::fixtures::TEMPLATE).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn every_kind_has_a_valid_schema_and_an_example_that_parses_checks_and_builds() {
    let _dir = in_example_folder();
    let engine = engine();
    let reg = registry();
    let uploaded = Uploaded::default();
    let cx = CheckContext::new(reg, &engine, &uploaded);
    let validator = engine
        .load(airtruct_builtins::VALIDATE.wasm)
        .expect("the validate component");
    let metrics = Arc::new(StreamMetrics::default());
    let mut build_cx = BuildContext::local(engine.clone(), metrics, CancellationToken::new());
    // As a worker builds it: an `mcp_tool` input is reached through the server's stream it belongs to.
    build_cx.stream = Some(airtruct_runtime::StreamRef {
        id: "example".into(),
        version: 1,
    });
    let mut examples = 0;
    for kind in reg.kinds() {
        let name = format!("{} {}", kind.role().as_str(), kind.name());
        let doc = kind.doc();
        assert!(!doc.description.is_empty(), "{name}: no description");
        if let Some(b) = kind.builtin() {
            // The catalogue reads the files the guest's describe reads: what the component says must agree.
            let said = engine
                .load(b.wasm)
                .expect("the built-in component")
                .info()
                .clone();
            assert_eq!(doc.description, said.description, "{name}");
            let schema: serde_json::Value = serde_json::from_str(&said.config_schema).unwrap();
            assert_eq!(doc.config_schema, schema, "{name}");
        }
        assert!(
            doc.config_schema.is_object(),
            "{name}: {}",
            doc.config_schema
        );
        // The sandboxed validate processor compiles the schema: an invalid one fails its init.
        let config = json!({ "schema": doc.config_schema }).to_string();
        if let Err(e) = engine.instantiate(&validator, &config, Limits::default()) {
            panic!("{name}: the schema is not valid: {e}");
        }
        let Some(example) = kind.example() else {
            assert_eq!(kind.role(), Role::Processor, "{name} has no example");
            continue;
        };
        let options: Value = serde_json::from_str(example)
            .unwrap_or_else(|e| panic!("{name}: the example is not JSON: {e}"));
        let c = Component {
            kind: kind.name().to_string(),
            options,
            path: kind.role().as_str().to_string(),
        };
        let mut problems = Vec::new();
        match kind.role() {
            Role::Input => {
                let parsed = reg.input(&c, &cx, &mut problems);
                assert!(problems.is_empty(), "{name}: {problems:?}");
                let built = parsed.unwrap().build(&build_cx).await;
                assert!(built.is_ok(), "{name}: {:?}", built.err());
            }
            Role::Output => {
                let parsed = reg.output(&c, &cx, &mut problems);
                assert!(problems.is_empty(), "{name}: {problems:?}");
                let built = parsed.unwrap().build(&build_cx).await;
                assert!(built.is_ok(), "{name}: {:?}", built.err());
            }
            Role::Buffer => {
                let parsed = reg.buffer(&c, &cx, &mut problems);
                assert!(problems.is_empty(), "{name}: {problems:?}");
                let input = Box::new(
                    airtruct_connectors::inputs::generate::GenerateInputConfig {
                        count: 1,
                        interval: None,
                        payload: "{}".into(),
                    }
                    .open(),
                );
                let wrapped = parsed.unwrap().wrap(input, &build_cx).await;
                assert!(wrapped.is_ok(), "{name}: {:?}", wrapped.err());
            }
            Role::Processor => {
                let spec = reg.processor(&c, &cx, &mut problems);
                assert!(problems.is_empty(), "{name}: {problems:?}");
                let made = airtruct_runtime::chain::Chain::new(&engine, &[spec.unwrap()]);
                assert!(made.is_ok(), "{name}: {:?}", made.err());
            }
        }
        examples += 1;
    }
    assert!(examples >= 19, "only {examples} examples were tried");
    drop_example_slot().await;
}

/// The `postgres_cdc` example made a replication slot: a slot left behind keeps PostgreSQL's WAL forever.
async fn drop_example_slot() {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/test")
        .await
        .unwrap();
    sqlx::query("SELECT pg_drop_replication_slot('airtruct_example')")
        .execute(&mut c)
        .await
        .unwrap();
}

#[test]
fn the_catalogue_lists_exactly_the_kinds_the_parser_accepts() {
    let engine = engine();
    let reg = registry();
    let uploaded = Uploaded::default();
    let cx = CheckContext::new(reg, &engine, &uploaded);
    for role in [Role::Input, Role::Output, Role::Buffer, Role::Processor] {
        let listed: Vec<String> = reg.docs(role).into_iter().map(|d| d.kind).collect();
        assert_eq!(listed, reg.names(role), "{role:?}");
        // A kind not in the catalogue is refused, and the refusal lists the catalogue.
        let c = Component {
            kind: "nope".into(),
            options: json!({}),
            path: "x".into(),
        };
        let mut problems = Vec::new();
        match role {
            Role::Input => assert!(reg.input(&c, &cx, &mut problems).is_none()),
            Role::Output => assert!(reg.output(&c, &cx, &mut problems).is_none()),
            Role::Buffer => assert!(reg.buffer(&c, &cx, &mut problems).is_none()),
            Role::Processor => assert!(reg.processor(&c, &cx, &mut problems).is_none()),
        }
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            problems[0].message,
            format!(
                "unknown {} kind \"nope\", expected one of {}",
                role.as_str(),
                listed.join(", ")
            )
        );
    }
}

#[test]
fn validation_reports_every_problem_of_every_component_at_once_with_its_path() {
    let engine = engine();
    let config = json!({
        "input": {"kafka": {"brokers": [], "topics": [], "consumer_group": " "}},
        "buffer": {"system_window": {"type": "hopping", "size": "10s",
            "late_output": {"file": {"path": "late.jsonl", "colour": "red"}}}},
        "pipeline": {"threads": 0, "processors": [
            {"mapping": ".a = "},
            {"filter": ".qty > 0"},
            {"wasm": {"limits": {"memory_mib": 0, "timeout": "1h", "max_output_mib": 100000}}}
        ]},
        "output": {"sql_insert": {"driver": "postgres", "dsn": "mysql://x", "table": "a b",
            "columns": ["id"], "args_mapping": "[.id"}},
        "replicas": 65
    });
    let errors = match validate_stream(registry(), &engine, &config, &Uploaded::default()) {
        Ok(_) => panic!("the config is invalid"),
        Err(e) => e,
    };
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    for expected in [
        "input.kafka.brokers",
        "input.kafka.topics",
        "input.kafka.consumer_group",
        "buffer.system_window.slide",
        "buffer.system_window.late_output.file.colour",
        "pipeline.threads",
        "pipeline.processors[0].mapping",
        "pipeline.processors[2].wasm",
        "pipeline.processors[2].wasm.limits.memory_mib",
        "pipeline.processors[2].wasm.limits.timeout",
        "pipeline.processors[2].wasm.limits.max_output_mib",
        "output.sql_insert.dsn",
        "output.sql_insert.table",
        "output.sql_insert.args_mapping",
        "replicas",
    ] {
        assert!(
            paths.contains(&expected),
            "no problem at {expected}: {errors:#?}"
        );
    }
    // The filter is fine: nothing is reported at it.
    assert!(
        !paths
            .iter()
            .any(|p| p.starts_with("pipeline.processors[1]")),
        "{errors:#?}"
    );
    let args = errors
        .iter()
        .find(|e| e.path == "output.sql_insert.args_mapping")
        .unwrap();
    assert!(args.message.contains("error"), "{}", args.message);
}

#[test]
fn the_fused_form_of_mappings_and_filters_is_the_runtimes_alone() {
    let engine = engine();
    let config = json!({
        "input": {"generate": {"count": 1}},
        "pipeline": {"processors": [
            {"mapping": {"steps": [{"filter": "true"}]}},
            {"filter": {"steps": [{"mapping": ". = 1"}]}}
        ]},
        "output": {"drop": {}}
    });
    let errors = match validate_stream(registry(), &engine, &config, &Uploaded::default()) {
        Ok(_) => panic!("a user's `steps` is refused"),
        Err(e) => e,
    };
    let said: Vec<(&str, &str)> = errors
        .iter()
        .map(|e| (e.path.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(
        said,
        [
            (
                "pipeline.processors[0].mapping",
                "expected the VRL program as a string, or an object {\"source\": \"...\"}"
            ),
            (
                "pipeline.processors[1].filter",
                "expected the VRL condition as a string, or an object {\"condition\": \"...\"}"
            ),
        ]
    );
}

#[test]
fn options_are_listed_in_the_order_that_explains_them_not_alphabetically() {
    let reg = registry();
    let keys = |role: Role, kind: &str| -> Vec<String> {
        let doc = reg.docs(role).into_iter().find(|d| d.kind == kind).unwrap();
        doc.config_schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    // The connection options shared by Kafka's input and output come from one flattened struct: the kind says
    // which go first.
    let kafka = keys(Role::Input, "kafka");
    assert_eq!(
        kafka,
        [
            "brokers",
            "topics",
            "consumer_group",
            "start_from",
            "tls",
            "sasl",
            "options"
        ],
        "{kafka:?}"
    );
    // A default the form can show (`default (earliest)`), not only in the description.
    let kafka_doc = reg
        .docs(Role::Input)
        .into_iter()
        .find(|d| d.kind == "kafka")
        .unwrap();
    assert_eq!(
        kafka_doc.config_schema["properties"]["start_from"]["default"],
        "earliest"
    );
    let out = keys(Role::Output, "kafka");
    assert_eq!(out[..2], ["brokers", "topic"], "{out:?}");
    assert_eq!(out[out.len() - 3..], ["tls", "sasl", "options"], "{out:?}");
    // Other kinds as their types declare them.
    let http = keys(Role::Input, "http_server");
    assert_eq!(
        http,
        ["methods", "token", "hmac", "address", "timeout"],
        "{http:?}"
    );
}
