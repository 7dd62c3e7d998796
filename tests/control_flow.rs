//! Control flow run by the host, end to end on `airtruct standalone`: a `switch` output that routes by a VRL check
//! and acknowledges a Redis stream entry only once the output it went to confirmed it (Redis on 6379, which the
//! test command starts), a `broker` input and output, and validation of what they nest, each problem at its path.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Api, eventually, lines, standalone, suffix, wait_status};

fn redis(args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .args(args)
        .output()
        .expect("redis-cli runs");
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A consumer group's `pending` and `entries-read`, from `XINFO GROUPS`.
fn group_counts(key: &str) -> (u64, u64) {
    let info = redis(&["XINFO", "GROUPS", key]);
    let fields: Vec<&str> = info.lines().map(str::trim).collect();
    let after = |name: &str| {
        fields
            .iter()
            .position(|f| *f == name)
            .and_then(|i| fields.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name} in {info}"))
    };
    (after("pending"), after("entries-read"))
}

/// An HTTP endpoint that answers 503 until `open` is set, then 200, counting every request and keeping the
/// bodies it accepted.
struct Sink {
    url: String,
    open: Arc<AtomicBool>,
    tries: Arc<AtomicU64>,
    accepted: Arc<Mutex<Vec<String>>>,
}

async fn sink() -> Sink {
    let open = Arc::new(AtomicBool::new(false));
    let tries = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (o, t, a) = (open.clone(), tries.clone(), accepted.clone());
    let app = axum::Router::new().route(
        "/b",
        axum::routing::post(move |body: String| {
            let (o, t, a) = (o.clone(), t.clone(), a.clone());
            async move {
                t.fetch_add(1, Ordering::SeqCst);
                if !o.load(Ordering::SeqCst) {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                a.lock().unwrap().push(body);
                axum::http::StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Sink {
        url: format!("http://{addr}/b"),
        open,
        tries,
        accepted,
    }
}

/// The `n` of each JSON line or body.
fn ns<'a>(items: impl IntoIterator<Item = &'a String>) -> Vec<u64> {
    items
        .into_iter()
        .flat_map(|s| s.lines())
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
            v["n"].as_u64().unwrap_or_else(|| panic!("no n in {l}"))
        })
        .collect()
}

#[tokio::test]
async fn a_switch_output_acknowledges_only_what_the_output_it_went_to_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let key = format!("switch-{}", suffix());
    let mut adds = String::new();
    for n in 1..=200u64 {
        let kind = if n % 2 == 1 { "a" } else { "b" };
        adds.push_str(&format!(
            "XADD {key} * body \"{{\\\"n\\\":{n},\\\"kind\\\":\\\"{kind}\\\"}}\"\n"
        ));
    }
    let mut cli = std::process::Command::new("redis-cli")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(cli.stdin.as_mut().unwrap(), adds.as_bytes()).unwrap();
    drop(cli.stdin.take());
    assert!(cli.wait().unwrap().success());
    assert_eq!(redis(&["XLEN", &key]).trim(), "200");

    let sink = sink().await;
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    let a_file = dir.path().join("a.jsonl");
    let (status, saved) = api
        .post(
            "/api/v1/streams",
            json!({"name": "route", "config": {
            "input": {"redis": {"url": "redis://127.0.0.1:6379",
                                "stream": {"keys": [key], "group": "g"}}},
            "pipeline": {"batch": {"size": 500, "period": "200ms"}},
            "output": {"switch": {"cases": [
                {"check": ".kind == \"a\"", "output": {"file": {"path": a_file}}},
                {"check": ".kind == \"b\"", "output": {"http_client": {"url": sink.url}}}
            ]}}}}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    let id = saved["id"].as_str().unwrap().to_string();

    // While the b output fails, the a output has confirmed its messages, and no entry the stream read is
    // acknowledged: every one of them is still pending in the group.
    eventually(
        "the b output to be tried again",
        Duration::from_secs(60),
        || async { (sink.tries.load(Ordering::SeqCst) >= 3 && a_file.exists()).then_some(()) },
    )
    .await;
    let written_a = ns(&lines(&a_file));
    assert!(!written_a.is_empty());
    assert!(written_a.iter().all(|n| n % 2 == 1), "{written_a:?}");
    let (pending, read) = group_counts(&key);
    assert!(read > 0);
    assert_eq!(
        pending, read,
        "entries were acknowledged while the b output failed"
    );
    assert!(sink.accepted.lock().unwrap().is_empty());

    // Once it answers, everything is delivered and acknowledged; each a message was written once (only the
    // failing output was retried).
    sink.open.store(true, Ordering::SeqCst);
    eventually(
        "every entry to be acknowledged",
        Duration::from_secs(60),
        || async { (group_counts(&key) == (0, 200)).then_some(()) },
    )
    .await;
    let a: Vec<u64> = ns(&lines(&a_file));
    assert_eq!(a, (1..=200).filter(|n| n % 2 == 1).collect::<Vec<_>>());
    let b: BTreeSet<u64> = ns(sink.accepted.lock().unwrap().iter())
        .into_iter()
        .collect();
    assert_eq!(b, (1..=200).filter(|n| n % 2 == 0).collect::<BTreeSet<_>>());

    // The case outputs have counters of their own.
    let s = api.get(&format!("/api/v1/streams/{id}")).await;
    let text = s.to_string();
    assert!(
        text.contains("output.switch.cases[1].output"),
        "no counters for the case output: {text}"
    );
    redis(&["DEL", &key]);
}

#[tokio::test]
async fn a_broker_input_and_output_read_several_inputs_and_write_every_message_to_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    let (one, two) = (dir.path().join("one.jsonl"), dir.path().join("two.jsonl"));
    let (status, saved) = api
        .post(
            "/api/v1/streams",
            json!({"name": "fan", "config": {
            "input": {"broker": {"inputs": [
                {"generate": {"count": 60, "payload": "{\"n\": {{seq}}}"}},
                {"generate": {"count": 40, "payload": "{\"n\": 1{{seq}}000}"}}
            ]}},
            "output": {"broker": {"pattern": "fan_out", "outputs": [
                {"file": {"path": one}}, {"file": {"path": two}}
            ]}}}}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    let id = saved["id"].as_str().unwrap().to_string();
    wait_status(&api, &id, "completed", Duration::from_secs(60)).await;
    let expected: BTreeSet<u64> = (1..=60)
        .chain((1..=40).map(|s| format!("1{s}000").parse().unwrap()))
        .collect();
    for file in [&one, &two] {
        let got = ns(&lines(file));
        assert_eq!(got.len(), 100, "{}", file.display());
        assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), expected);
    }
}

#[tokio::test]
async fn validation_reports_the_problems_of_nested_components_at_their_paths() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    let (status, _) = api
        .put("/api/v1/secrets/api_key", json!({"value": "k-123"}))
        .await;
    assert!(status < 300, "{status}");
    let (status, body) = api
        .post(
            "/api/v1/streams/validate",
            json!({"config": {
            "input": {"broker": {"inputs": [{"generate": {"count": 1}}, {"nope": {}},
                                            {"http_server": {}}, {"http_server": {}}]}},
            "output": {"switch": {"cases": [
                {"check": ".kind ==", "output": {"drop": {}}},
                {"check": "1 + 1", "output": {"drop": {}}},
                {"output": {"broker": {"outputs": [
                    {"http_client": {"url": "http://127.0.0.1:9/x",
                                     "headers": {"authorization": "${secret:api_key}"}}},
                    {"file": {"path": "${secret:api_key}"}}
                ]}}}
            ]}}}}),
        )
        .await;
    assert!(status == 200 || status == 422, "{status} {body}");
    let text = body.to_string();
    let paths: BTreeSet<String> = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {text}"))
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect();
    for at in [
        "input.broker.inputs[1]",
        "input.broker.inputs[3]",
        "output.switch.cases[0].check",
        "output.switch.cases[1].check",
        "output.switch.cases[2].output.broker.outputs[1].file.path",
    ] {
        assert!(paths.contains(at), "no problem at {at}: {text}");
    }
    // A secret in a nested output's credential field is allowed.
    assert!(
        !paths.iter().any(|p| p.contains("headers")),
        "a credential field was refused: {text}"
    );
    assert!(text.contains("must return a boolean"), "{text}");
    assert!(text.contains("takes requests through one input"), "{text}");
}

/// A pipeline with a `switch`, a `try` and a `catch`, as YAML a user writes.
const FLOW: &str = r#"
pipeline:
  processors:
    - switch:
        cases:
          - check: .n > 3
            processors:
              - mapping: .big = true
          - processors:
              - mapping: .big = false
    - try:
        - mapping: |
            if .n == 2 { .x = int!(.nothing) }
        - mapping: .after_try = true
    - catch:
        - mapping: |
            .recovered = true
            .why = %error
"#;

#[tokio::test]
async fn switch_try_and_catch_processors_route_and_recover_messages_and_the_test_shows_each_step() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    let out = dir.path().join("flow.jsonl");
    let config = format!(
        "input:\n  generate: {{count: 6, payload: '{{\"n\": {{{{seq}}}}}}'}}\n{FLOW}\noutput:\n  file: {{path: {}}}\n",
        out.display()
    );
    let (status, saved) = api
        .post("/api/v1/streams", json!({"name": "flow", "config": config}))
        .await;
    assert_eq!(status, 201, "{saved}");
    let id = saved["id"].as_str().unwrap().to_string();
    wait_status(&api, &id, "completed", Duration::from_secs(60)).await;
    let mut got: Vec<Value> = lines(&out)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    got.sort_by_key(|v| v["n"].as_u64());
    assert_eq!(got.len(), 6, "{got:?}");
    for v in &got {
        let n = v["n"].as_u64().unwrap();
        assert_eq!(v["big"], json!(n > 3), "{v}");
        if n == 2 {
            // Failed in the try (its second step skipped), caught, and gone on.
            assert_eq!(v["recovered"], true, "{v}");
            assert!(v.get("after_try").is_none(), "{v}");
            let why = v["why"].as_str().unwrap();
            assert!(
                why.contains("pipeline.processors[1].try[0] (mapping)"),
                "{why}"
            );
        } else {
            assert_eq!(v["after_try"], true, "{v}");
            assert!(v.get("recovered").is_none(), "{v}");
        }
    }
    // Every step inside has counters of its own.
    let s = api.get(&format!("/api/v1/streams/{id}")).await.to_string();
    assert!(
        s.contains("pipeline.processors[0].switch.cases[1].processors[0]"),
        "{s}"
    );

    // The test endpoint shows each step, those inside control flow included, in order.
    let (status, body) = api
        .post(
            "/api/v1/streams/test",
            json!({"config": FLOW, "messages": [{"payload": {"n": 2}}, {"payload": {"n": 5}}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let steps = |i: usize| -> Vec<(String, usize)> {
        body["results"][i]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["processor"].as_str().unwrap().to_string(),
                    s["output"].as_array().unwrap().len(),
                )
            })
            .collect()
    };
    let labels: Vec<String> = steps(0).into_iter().map(|(l, _)| l).collect();
    assert_eq!(
        labels,
        [
            "pipeline.processors[0] (switch)",
            "pipeline.processors[0].switch.cases[0].processors[0] (mapping)",
            "pipeline.processors[0].switch.cases[1].processors[0] (mapping)",
            "pipeline.processors[1] (try)",
            "pipeline.processors[1].try[0] (mapping)",
            "pipeline.processors[1].try[1] (mapping)",
            "pipeline.processors[2] (catch)",
            "pipeline.processors[2].catch[0] (mapping)",
        ]
    );
    // n = 2 took the second case, failed in the try, and was caught; n = 5 took the first case.
    let counts = |i| steps(i).into_iter().map(|(_, n)| n).collect::<Vec<_>>();
    assert_eq!(counts(0), [1, 0, 1, 1, 1, 0, 1, 1]);
    assert_eq!(counts(1), [1, 1, 0, 1, 1, 1, 1, 0]);
}

#[tokio::test]
async fn processors_inside_control_flow_are_checked_like_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    let problems_at = |processors: Value| {
        let api = api.clone();
        async move {
            let (status, body) = api
                .post(
                    "/api/v1/streams/validate",
                    json!({"config": {
                        "input": {"generate": {"count": 1}},
                        "pipeline": {"processors": processors},
                        "output": {"drop": {}}}}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            let paths: BTreeSet<String> = body["errors"]
                .as_array()
                .unwrap_or_else(|| panic!("no errors in {body}"))
                .iter()
                .map(|e| e["path"].as_str().unwrap().to_string())
                .collect();
            (paths, body.to_string())
        }
    };
    let (paths, text) = problems_at(json!([
        {"switch": {"cases": [
            {"check": ".n >", "processors": [{"mapping": ".a = 1"}]},
            {"processors": [{"nope": {}}, {"mapping": ".b = "}]}
        ]}},
        {"try": [{"filter": "1 + 1"}]}
    ]))
    .await;
    for at in [
        "pipeline.processors[0].switch.cases[0].check",
        "pipeline.processors[0].switch.cases[1].processors[0]",
        "pipeline.processors[0].switch.cases[1].processors[1].mapping",
        "pipeline.processors[1].try[0].filter",
    ] {
        assert!(paths.contains(at), "no problem at {at}: {text}");
    }
    // A stream saved through the API names uploaded processors: no file of the server's, nested or not.
    let (paths, text) = problems_at(json!([{"catch": [{"wasm": {"path": "/etc/passwd"}}]}])).await;
    assert!(
        paths.contains("pipeline.processors[0].catch[0].wasm.path"),
        "{text}"
    );
}

#[tokio::test]
async fn a_branch_merges_what_its_processors_make_of_a_copy_back_into_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    let flow = r#"
pipeline:
  processors:
    - branch:
        request_map: '{"id": .n}'
        processors:
          - mapping: |
              if .id == 3 { .x = int!(.nothing) }
          - mapping: .name = "user-" + to_string!(.id)
        result_map: '{"user": {"name": .name}}'
"#;
    let (status, body) = api
        .post(
            "/api/v1/streams/test",
            json!({"config": flow, "messages": [
                {"payload": {"n": 1, "keep": "yes", "user": {"id": 9}}, "metadata": {"m": "kept"}},
                {"payload": {"n": 3}}
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let steps = |i: usize| body["results"][i]["steps"].as_array().unwrap().clone();
    let labels: Vec<&str> = body["results"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["processor"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "pipeline.processors[0] (branch)",
            "pipeline.processors[0].branch.processors[0] (mapping)",
            "pipeline.processors[0].branch.processors[1] (mapping)",
        ]
    );
    // The copy was `{"id": 1}`; the result merged deeply into the original, its metadata untouched.
    let first = &steps(0)[0]["output"][0];
    let merged: Value = serde_json::from_str(first["payload"].as_str().unwrap()).unwrap();
    assert_eq!(
        merged,
        json!({"n": 1, "keep": "yes", "user": {"id": 9, "name": "user-1"}})
    );
    assert_eq!(first["metadata"], json!({"m": "kept"}));
    let copy: Value =
        serde_json::from_str(steps(0)[2]["output"][0]["payload"].as_str().unwrap()).unwrap();
    assert_eq!(copy, json!({"id": 1, "name": "user-1"}));
    // The copy of the second failed inside the branch: its original fails with that error.
    let second = &steps(1)[0]["output"][0];
    let error = second["error"].as_str().unwrap();
    assert!(
        error.starts_with("pipeline.processors[0].branch.processors[0] (mapping):"),
        "{error}"
    );
    assert_eq!(second["payload"], "{\"n\":3}");
}

#[tokio::test]
async fn consecutive_mappings_and_filters_run_as_one_call_with_each_step_counted_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    let out = dir.path().join("fused.jsonl");
    // Four steps that run fused, then a catch that recovers what failed in them.
    let config = json!({
        "input": {"generate": {"count": 40, "payload": "{\"n\": {{seq}}}"}},
        "pipeline": {"processors": [
            {"mapping": ".n = to_int!(.n)\n.even = mod(.n, 2) == 0\n.at = t'2026-01-01T00:00:00Z'"},
            {"filter": ".n > 3"},
            {"mapping": "if .n == 7 || .n == 13 { abort \"unlucky\" }\n.seen = is_string(.at)"},
            {"filter": ".even || .n > 30"},
            {"catch": [{"mapping": ".why = %error"}]}
        ]},
        "output": {"file": {"path": out}}
    });
    let (status, saved) = api
        .post(
            "/api/v1/streams",
            json!({"name": "fused", "config": config.to_string()}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    let id = saved["id"].as_str().unwrap().to_string();
    wait_status(&api, &id, "completed", Duration::from_secs(60)).await;
    let mut got: Vec<Value> = lines(&out)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    got.sort_by_key(|v| v["n"].as_u64());
    // What the processors one after the other give: n from 1 to 40, 1..3 filtered, 7 and 13 failed at the
    // second mapping (with the first one's work) and caught, the odd ones up to 29 filtered.
    let want: Vec<u64> = (4..=40)
        .filter(|n| *n == 7 || *n == 13 || n % 2 == 0 || *n > 30)
        .collect();
    let ns: Vec<u64> = got.iter().map(|v| v["n"].as_u64().unwrap()).collect();
    assert_eq!(ns, want);
    for v in &got {
        let n = v["n"].as_u64().unwrap();
        // The timestamp is the string it is written as, as the next step read it.
        assert_eq!(v["at"], "2026-01-01T00:00:00Z", "{v}");
        if n == 7 || n == 13 {
            let why = v["why"].as_str().unwrap();
            assert_eq!(
                why, "pipeline.processors[2] (mapping): mapping aborted: unlucky",
                "{v}"
            );
            assert_eq!(v["even"], false, "{v}");
            assert!(v.get("seen").is_none(), "{v}");
        } else {
            assert_eq!(v["seen"], true, "{v}");
        }
    }
    // Each fused step keeps its own counters.
    let s = api.get(&format!("/api/v1/streams/{id}")).await;
    let counted = |component: &str| -> (u64, u64, u64, u64) {
        let c = s["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["component"] == component)
            .unwrap_or_else(|| panic!("no {component} in {s}"));
        let n = |k: &str| c[k].as_u64().unwrap();
        (n("received"), n("sent"), n("filtered"), n("failed"))
    };
    assert_eq!(counted("pipeline.processors[0]"), (40, 40, 0, 0));
    assert_eq!(counted("pipeline.processors[1]"), (40, 37, 3, 0));
    assert_eq!(counted("pipeline.processors[2]"), (37, 35, 0, 2));
    // 35 in: the 13 odd ones from 5 to 29 but 7 and 13 filtered.
    assert_eq!(counted("pipeline.processors[3]"), (35, 24, 11, 0));
    // The catch takes the 24 kept and the 2 failed, and hands all 26 on.
    assert_eq!(counted("pipeline.processors[4]"), (26, 26, 0, 0));
}
