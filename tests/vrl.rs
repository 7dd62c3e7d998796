//! VRL as people bring it from Vector: every example VRL ships with its functions, run through the wasm mapping
//! component and through VRL natively, with the same result; the functions the sandbox refuses are refused with
//! their reason; and a mapping of hashes, HMACs and log parsers gives in a real stream what VRL gives natively.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::Duration;

use airtruct_engine::{Engine, EngineConfig, InitError, Limits, Message, ProcessorInstance};
use support::{airtruct, lines};
use vrl::compiler::function::Example;
use vrl::compiler::runtime::{Runtime, Terminate};
use vrl::compiler::{CompileConfig, TargetValue, TimeZone, TypeState};
use vrl::diagnostic::Formatter;
use vrl::value::{Secrets, Value};

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::new(EngineConfig {
            cache_dir: Some(
                std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache"),
            ),
            pool_instances: 16,
            ..EngineConfig::default()
        })
        .unwrap()
    })
}

fn limits() -> Limits {
    Limits {
        memory_bytes: 256 << 20,
        timeout: Duration::from_secs(5),
        max_output_bytes: 16 << 20,
    }
}

/// One of VRL's examples, with the function it documents.
struct Case {
    function: &'static str,
    example: Example,
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for f in vrl::stdlib::all() {
        let function = f.identifier();
        if let Some(closure) = f.closure() {
            for input in closure.inputs {
                cases.push(Case {
                    function,
                    example: input.example,
                });
            }
        }
        for example in f.examples() {
            cases.push(Case {
                function,
                example: *example,
            });
        }
    }
    // VRL gives no example of this one: ours, in the same form.
    cases.push(Case {
        function: "strip_ansi_escape_codes",
        example: vrl::example! {
            title: "Strip the colours of a terminal line",
            source: "strip_ansi_escape_codes(\"\u{1b}[46mfoo\u{1b}[0m bar\")",
            result: Ok("foo bar"),
        },
    });
    cases
}

/// What a program did: its value (as JSON), or the error or abort it stopped with.
#[derive(Debug, PartialEq)]
enum Outcome {
    Value(serde_json::Value),
    Failed(String),
}

/// A VRL value as JSON, the way VRL's own example runner writes it.
fn json(value: &Value) -> serde_json::Value {
    match value {
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned().into(),
        Value::String(s) => s.to_string().into(),
        Value::Integer(i) => (*i).into(),
        Value::Float(f) => f.into_inner().into(),
        Value::Boolean(b) => (*b).into(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.to_string(), json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        Value::Array(items) => items.iter().map(json).collect(),
        Value::Timestamp(t) => t
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            .into(),
        Value::Regex(r) => r.to_string().into(),
        Value::Null => serde_json::Value::Null,
    }
}

/// The example's expected result, read the way VRL's example runner reads it.
fn expected(want: &str) -> serde_json::Value {
    let want = want.trim();
    if let Some(inner) = want.strip_prefix("r'").and_then(|w| w.strip_suffix('\'')) {
        return inner.replace("\\'", "'").into();
    }
    if let Some(inner) = want.strip_prefix("t'").and_then(|w| w.strip_suffix('\'')) {
        return match inner.parse::<chrono::DateTime<chrono::Utc>>() {
            Ok(t) => t
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                .into(),
            Err(_) => inner.into(),
        };
    }
    if let Some(inner) = want.strip_prefix("s'").and_then(|w| w.strip_suffix('\'')) {
        return inner.into();
    }
    serde_json::from_str(want).unwrap_or_else(|_| want.into())
}

fn utc() -> TimeZone {
    TimeZone::parse("UTC").unwrap()
}

/// Compiles `source` natively with all of VRL's functions, as the mapping component compiles it.
fn native_compile(source: &str) -> Result<vrl::compiler::Program, String> {
    let mut config = CompileConfig::default();
    config.disable_unused_expression_check();
    vrl::compiler::compile_with_state(source, &vrl::stdlib::all(), &TypeState::default(), config)
        .map(|r| r.program)
        .map_err(|d| Formatter::new(source, d).to_string().trim().to_string())
}

/// Runs `source` natively on `input`: the program's value, and the target afterwards.
fn native_run(source: &str, input: &Value) -> Result<(Outcome, Value), String> {
    let program = native_compile(source)?;
    let mut target = TargetValue {
        value: input.clone(),
        metadata: Value::Object(Default::default()),
        secrets: Secrets::default(),
    };
    let result = Runtime::default().resolve(&mut target, &program, &utc());
    let outcome = match result {
        Ok(v) => Outcome::Value(json(&v)),
        // As the mapping component words them.
        Err(Terminate::Abort(e)) => match e.to_string() {
            m if m == "aborted" => Outcome::Failed("mapping aborted".into()),
            m => Outcome::Failed(format!("mapping aborted: {m}")),
        },
        Err(Terminate::Error(e)) => Outcome::Failed(format!("mapping failed: {e}")),
        Err(Terminate::Interrupted) => {
            Outcome::Failed("mapping failed: execution interrupted".into())
        }
    };
    Ok((outcome, target.value))
}

/// A mapping instance with `source`, or the error its `init` gave.
fn wasm_instance(source: &str) -> Result<ProcessorInstance, String> {
    static MAPPING: OnceLock<std::sync::Arc<airtruct_engine::LoadedComponent>> = OnceLock::new();
    let component = MAPPING.get_or_init(|| {
        engine()
            .load(airtruct_builtins::builtin("mapping").unwrap().wasm)
            .unwrap()
    });
    let config = serde_json::json!({ "source": source }).to_string();
    engine()
        .instantiate(component, &config, limits())
        .map_err(|e| match e {
            InitError::Config(errors) => errors
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("\n"),
            other => panic!("the mapping component did not start: {other}"),
        })
}

/// Runs `source` through the wasm mapping component on `input`: the payload it wrote, or how it failed.
fn wasm_run(source: &str, input: &serde_json::Value) -> Result<Outcome, String> {
    let mut instance = wasm_instance(source)?;
    let out = instance
        .process(&[Message {
            payload: serde_json::to_vec(input).unwrap(),
            metadata: Vec::new(),
            error: None,
        }])
        .unwrap_or_else(|e| panic!("the batch itself failed: {e}"));
    assert_eq!(out.len(), 1);
    Ok(match &out[0].error {
        Some(e) => Outcome::Failed(e.clone()),
        None => Outcome::Value(
            serde_json::from_slice(&out[0].payload)
                .unwrap_or_else(|_| String::from_utf8_lossy(&out[0].payload).into_owned().into()),
        ),
    })
}

/// The program whose payload is the example's value: `.` becomes the value of the example's last expression.
fn wrapped(source: &str) -> String {
    format!(". = {{\n{source}\n}}")
}

/// zstd's frame header depends on the library's version (VRL's example was written with another): the same bytes
/// compressed, then, are the same example.
fn same_when_decompressed(
    function: &str,
    got: &serde_json::Value,
    want: &serde_json::Value,
) -> bool {
    let (Some(got), Some(want)) = (got.as_str(), want.as_str()) else {
        return false;
    };
    if function != "encode_zstd" {
        return false;
    }
    let decoded = |b64: &str| {
        native_run(
            &format!("decode_zstd!(decode_base64!(\"{b64}\"))"),
            &Value::Null,
        )
        .ok()
        .map(|(outcome, _)| outcome)
    };
    matches!(decoded(got), Some(Outcome::Value(_))) && decoded(got) == decoded(want)
}

fn same_shape(a: &Outcome, b: &Outcome) -> bool {
    match (a, b) {
        (Outcome::Value(a), Outcome::Value(b)) => {
            std::mem::discriminant(a) == std::mem::discriminant(b)
        }
        (a, b) => a == b,
    }
}

#[test]
fn every_example_vrl_ships_gives_the_same_result_in_the_sandbox_as_natively() {
    let registered: BTreeSet<&str> = vrl_common::function_names().into_iter().collect();
    let mut covered = BTreeSet::new();
    let mut failures = Vec::new();
    let (mut run, mut refused) = (0, 0);
    for case in cases() {
        let Case { function, example } = case;
        let what = format!(
            "{function}: {} ({}:{})",
            example.title, example.file, example.line
        );
        let withheld = vrl_common::WITHHELD_ARGUMENTS
            .iter()
            .find(|(f, arg)| *f == function && example.source.contains(&format!("{arg}:")));
        if let Some(refusal) = vrl_common::refusal(function) {
            // Refused in the sandbox: the program does not compile, and the error says why.
            match wasm_instance(example.source) {
                Ok(_) => failures.push(format!("{what}: compiled, but {function} is refused")),
                Err(e)
                    if e.contains("is not available in the sandbox")
                        && e.contains(&refusal.reason[..40]) =>
                {
                    refused += 1
                }
                Err(e) => failures.push(format!("{what}: refused without its reason:\n{e}")),
            }
            covered.insert(function);
            continue;
        }
        if let Some((_, argument)) = withheld {
            match wasm_instance(example.source) {
                Ok(_) => failures.push(format!(
                    "{what}: compiled with `{argument}`, which names a file"
                )),
                Err(e)
                    if e.contains(&format!(
                        "`{function}` with `{argument}` is not available in the sandbox"
                    )) =>
                {
                    refused += 1
                }
                Err(e) => failures.push(format!("{what}: refused without its reason:\n{e}")),
            }
            covered.insert(function);
            continue;
        }
        if !registered.contains(function) {
            failures.push(format!(
                "{what}: {function} is neither registered nor refused"
            ));
            continue;
        }
        covered.insert(function);
        let input: serde_json::Value = match example.input {
            Some(input) => serde_json::from_str(input).unwrap(),
            None => serde_json::json!({}),
        };
        let vrl_input: Value = serde_json::from_value(input.clone()).unwrap();

        // The example against VRL natively: VRL's own expectation holds here (compile errors included).
        let native = native_run(example.source, &vrl_input);
        match (&native, example.result) {
            (Err(diagnostics), Err(want)) => {
                if example.deterministic && diagnostics.trim() != want.trim() {
                    failures.push(format!(
                        "{what}: natively, compile error\n{diagnostics}\nnot\n{want}"
                    ));
                }
            }
            (Err(diagnostics), Ok(_)) => {
                failures.push(format!("{what}: does not compile natively:\n{diagnostics}"));
            }
            (Ok((Outcome::Value(got), _)), Ok(want)) => {
                let want = expected(want);
                let ok = if example.deterministic && !example.skip {
                    *got == want || same_when_decompressed(function, got, &want)
                } else {
                    std::mem::discriminant(got) == std::mem::discriminant(&want)
                };
                if !ok {
                    failures.push(format!("{what}: natively {got}, VRL's example says {want}"));
                }
            }
            (Ok((Outcome::Failed(_), target)), Err(want))
            | (Ok((Outcome::Failed(_), target)), Ok(want)) => {
                // VRL's runner accepts an error with the expected text, or an abort that left the expected target.
                let got = match native_run(example.source, &vrl_input) {
                    Ok((Outcome::Failed(e), _)) => e,
                    _ => unreachable!(),
                };
                let text = got
                    .trim_start_matches("mapping failed: ")
                    .trim_start_matches("mapping aborted: ");
                if text.trim() != want.trim() && json(target) != expected(want) {
                    failures.push(format!("{what}: natively {got}, VRL's example says {want}"));
                }
            }
            (Ok((Outcome::Value(got), _)), Err(want)) => {
                failures.push(format!(
                    "{what}: natively {got}, VRL's example says the error {want}"
                ));
            }
        }

        // The same example through the wasm mapping component.
        match native {
            Err(native_diagnostics) => match wasm_instance(example.source) {
                Ok(_) => failures.push(format!("{what}: compiles in the sandbox, not natively")),
                Err(e) if e.trim() == native_diagnostics.trim() => run += 1,
                Err(e) => failures.push(format!(
                    "{what}: compile errors differ:\n{e}\nnatively:\n{native_diagnostics}"
                )),
            },
            Ok(_) => {
                let program = wrapped(example.source);
                let native = match native_run(&program, &vrl_input) {
                    Ok((Outcome::Value(_), target)) => Outcome::Value(json(&target)),
                    Ok((failed, _)) => failed,
                    Err(e) => {
                        failures.push(format!(
                            "{what}: the wrapped program does not compile:\n{e}"
                        ));
                        continue;
                    }
                };
                match wasm_run(&program, &input) {
                    Err(e) => {
                        failures.push(format!("{what}: does not compile in the sandbox:\n{e}"))
                    }
                    Ok(wasm) => {
                        let same = if example.deterministic && !example.skip {
                            wasm == native
                        } else {
                            same_shape(&wasm, &native)
                        };
                        if same {
                            run += 1;
                        } else {
                            failures.push(format!(
                                "{what}: in the sandbox {wasm:?}, natively {native:?}"
                            ));
                        }
                    }
                }
            }
        }
    }
    let uncovered: Vec<_> = registered.difference(&covered).collect();
    println!(
        "{run} examples of {} functions gave the same result in the sandbox as natively; {refused} refused with \
         their reason; {} functions have no example: {uncovered:?}",
        covered.len(),
        uncovered.len()
    );
    assert!(
        uncovered.is_empty(),
        "registered functions without an example: {uncovered:?}"
    );
    assert!(
        failures.is_empty(),
        "{} of the examples failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(run > 500, "only {run} examples ran");
}

/// Runs `airtruct COMMAND stream.yaml` in `dir`; it must succeed (its log shown if not).
fn succeeds(dir: &std::path::Path, command: &str) -> std::process::Output {
    let out = airtruct(dir)
        .args([command, "stream.yaml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "airtruct {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The mapping of the issue: hashes and an HMAC to pseudonymise, XML, an nginx access line and its user agent.
const PSEUDONYMISE: &str = r#"
.user = sha2(string!(.user), variant: "SHA-256")
.signature = encode_base16(hmac(string!(.email), "a shared key", algorithm: "SHA-256"))
.email = sha3(string!(.email))
.order = parse_xml!(string!(.xml)).order
.request = parse_nginx_log!(string!(.line), "combined")
.agent = parse_user_agent(string!(.request.agent))
del(.xml)
del(.line)
"#;

fn access_record(i: usize) -> serde_json::Value {
    let agents = [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "curl/8.5.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    ];
    serde_json::json!({
        "user": format!("user{i}"),
        "email": format!("user{i}@example.com"),
        "xml": format!("<order id=\"{i}\"><item sku=\"A{i}\">{}</item></order>", i * 3),
        "line": format!(
            "172.17.0.{} - alice [01/Dec/2026:10:{:02}:00 +0000] \"GET /items/{i} HTTP/1.1\" 200 {} \"-\" \"{}\"",
            i % 250,
            i % 60,
            100 + i,
            agents[i % agents.len()]
        ),
    })
}

#[test]
fn a_mapping_of_hashes_an_hmac_and_log_parsers_gives_in_a_stream_what_vrl_gives_natively() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<serde_json::Value> = (0..30).map(access_record).collect();
    let input: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(dir.path().join("in.jsonl"), input).unwrap();
    let stream = serde_json::json!({
        "input": { "file": { "path": "in.jsonl", "codec": "jsonl" } },
        "pipeline": { "processors": [ { "mapping": PSEUDONYMISE } ] },
        "output": { "file": { "path": "out.jsonl" } },
    });
    std::fs::write(dir.path().join("stream.yaml"), stream.to_string()).unwrap();

    succeeds(dir.path(), "validate");
    succeeds(dir.path(), "run");

    let out: Vec<serde_json::Value> = lines(&dir.path().join("out.jsonl"))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(out.len(), records.len());
    for (record, got) in records.iter().zip(&out) {
        let input: Value = serde_json::from_value(record.clone()).unwrap();
        let (outcome, target) = native_run(PSEUDONYMISE, &input).unwrap();
        assert!(matches!(outcome, Outcome::Value(_)), "{outcome:?}");
        let native: serde_json::Value =
            serde_json::from_slice(&vrl_common::value_to_payload(&target, true).unwrap()).unwrap();
        assert_eq!(
            *got, native,
            "the stream and VRL natively differ on {record}"
        );
    }
    // What a user would look at: the pseudonyms and the parsed parts are there.
    assert_eq!(out[0]["user"].as_str().unwrap().len(), 64, "{}", out[0]);
    assert_eq!(out[4]["order"]["item"]["@sku"], "A4", "{}", out[4]);
    assert_eq!(out[1]["request"]["status"], 200, "{}", out[1]);
    assert_eq!(out[0]["agent"]["browser"]["family"], "Chrome", "{}", out[0]);
    assert_eq!(
        out[1]["agent"]["browser"]["family"], "HTTP Library",
        "{}",
        out[1]
    );
}

#[test]
fn the_docs_list_every_function_a_program_may_call_and_every_refused_one() {
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/vrl.md")).unwrap();
    let (_, listing) = docs
        .split_once("## The functions")
        .expect("docs/vrl.md lists the functions");
    let listed: BTreeSet<&str> = listing
        .split("[`")
        .skip(1)
        .filter_map(|s| s.split_once("`]").map(|(name, _)| name))
        .collect();
    let registered: BTreeSet<&str> = vrl_common::function_names().into_iter().collect();
    assert_eq!(
        listed, registered,
        "docs/vrl.md and the registered functions differ"
    );
    for refusal in vrl_common::REFUSED {
        assert!(
            docs.contains(&format!("`{}`", refusal.name)),
            "docs/vrl.md does not say why {} is refused",
            refusal.name
        );
    }
}

#[test]
fn log_writes_to_the_servers_log_and_now_is_the_time_of_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.jsonl"), "{\"id\":1}\n{\"id\":2}\n").unwrap();
    let stream = serde_json::json!({
        "input": { "file": { "path": "in.jsonl", "codec": "jsonl" } },
        "pipeline": { "processors": [ { "mapping":
            "log(\"seen order \" + to_string(int!(.id)), level: \"warn\")\n.at = to_unix_timestamp(now(), unit: \"milliseconds\")"
        } ] },
        "output": { "file": { "path": "out.jsonl" } },
    });
    std::fs::write(dir.path().join("stream.yaml"), stream.to_string()).unwrap();
    let before = chrono::Utc::now().timestamp_millis();
    let ran = succeeds(dir.path(), "run");
    let after = chrono::Utc::now().timestamp_millis();
    let log = String::from_utf8_lossy(&ran.stderr);
    for id in [1, 2] {
        let line = log
            .lines()
            .find(|l| l.contains(&format!("seen order {id}")))
            .unwrap_or_else(|| panic!("no log line for order {id} in:\n{log}"));
        assert!(line.contains("WARN"), "{line}");
    }
    for line in lines(&dir.path().join("out.jsonl")) {
        let out: serde_json::Value = serde_json::from_str(&line).unwrap();
        let at = out["at"].as_i64().unwrap();
        assert!(before <= at && at <= after, "{before} <= {at} <= {after}");
    }
}

#[test]
fn get_env_var_is_refused_at_validation_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("stream.yaml"),
        "input: {stdin: {}}\npipeline:\n  processors:\n    - mapping: '.home = get_env_var!(\"HOME\")'\noutput: {stdout: {}}\n",
    )
    .unwrap();
    let o = airtruct(dir.path())
        .args(["validate", "stream.yaml"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    for needle in [
        "pipeline.processors[0].mapping",
        "`get_env_var` is not available in the sandbox",
        "processors cannot read the environment of the host",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}
