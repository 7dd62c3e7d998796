//! End-to-end tests of `airtruct run` and `airtruct validate` (the real binary on real files), and of the commands
//! for a server's API (`airtruct streams apply -f ...`) against a standalone server.

#[path = "support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use support::{airtruct, lines};

fn run(dir: &Path, args: &[&str]) -> Output {
    airtruct(dir)
        .args(args)
        .output()
        .expect("starting airtruct")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write_input(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("in.jsonl");
    let mut text = String::new();
    for i in 1..=n {
        text.push_str(&format!(
            "{{\"id\":{i},\"name\":\"user{i}\",\"qty\":{}}}\n",
            i % 5
        ));
    }
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn run_maps_filters_and_validates_a_jsonl_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut input = String::new();
    for i in 1..=500 {
        input.push_str(&format!(
            "{{\"id\":{i},\"name\":\"user{i}\",\"qty\":{}}}\n",
            i % 3
        ));
    }
    input.push_str("{\"name\":\"no id\",\"qty\":5}\nnot json at all\n");
    std::fs::write(dir.path().join("in.jsonl"), input).unwrap();
    std::fs::write(
        dir.path().join("stream.yaml"),
        r#"
input:
  file: { path: in.jsonl, codec: jsonl }
pipeline:
  batch: { size: 64, period: 20ms }
  threads: 2
  processors:
    - mapping: |
        .name = upcase!(.name)
        .tagged = true
    - filter: '.qty > 0'
    - validate: { schema: { type: object, required: [id, name] } }
output:
  file: { path: out.jsonl }
on_error:
  dead_letter: { file: { path: failed.jsonl, envelope: true } }
"#,
    )
    .unwrap();
    let o = run(dir.path(), &["run", "stream.yaml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out: Vec<serde_json::Value> = lines(&dir.path().join("out.jsonl"))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let expected: Vec<u64> = (1..=500).filter(|i| i % 3 > 0).collect();
    let mut ids: Vec<u64> = out.iter().map(|v| v["id"].as_u64().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, expected);
    for v in &out {
        assert_eq!(v["name"], format!("USER{}", v["id"]));
        assert_eq!(v["tagged"], true);
    }
    let failed: Vec<serde_json::Value> = lines(&dir.path().join("failed.jsonl"))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    let not_json = failed
        .iter()
        .find(|f| f["payload"] == "not json at all")
        .expect("the non-JSON line");
    let error = not_json["metadata"]["error"].as_str().unwrap();
    assert!(error.contains("not valid JSON"), "{error}");
    // The record without an id failed validation as the validator received it (mapped), with its violation.
    let no_id = failed
        .iter()
        .find(|f| f["payload"]["name"] == "NO ID")
        .expect("the record without an id");
    let error = no_id["metadata"]["error"].as_str().unwrap();
    assert!(
        error.starts_with("pipeline.processors[2] (validate):"),
        "{error}"
    );
    assert!(error.contains("\"id\" is a required property"), "{error}");
    assert!(stderr(&o).contains("stream completed"), "{}", stderr(&o));
}

/// Starts `airtruct run stream.yaml`, kills it with SIGKILL once the output holds `min_bytes`, checks that it had
/// not finished, runs it again to the end, and counts each id in the output (a kill can cut the last line short:
/// every whole line must be a mapped record).
fn kill_midway_and_finish(dir: &Path, n: usize, min_bytes: u64) -> HashMap<u64, usize> {
    let mut child = airtruct(dir)
        .args(["run", "stream.yaml"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = dir.join("out.jsonl");
    let started = Instant::now();
    while std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) < min_bytes {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no output appeared"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL: no draining, no final checkpoint.
    child.wait().unwrap();
    let before = lines(&out).len();
    assert!(
        before < n,
        "killed after everything was written ({before} lines): make the input larger"
    );
    assert!(
        dir.join("in.offset").exists(),
        "no checkpoint was written before the kill"
    );
    let o = run(dir, &["run", "stream.yaml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for l in lines(&out) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&l) else {
            continue;
        };
        assert_eq!(v["seen"], true);
        *seen.entry(v["id"].as_u64().unwrap()).or_default() += 1;
    }
    seen
}

#[test]
fn killed_run_resumes_from_its_checkpoint_and_loses_no_line() {
    let dir = tempfile::tempdir().unwrap();
    let n = 300_000;
    write_input(dir.path(), n);
    std::fs::write(
        dir.path().join("stream.yaml"),
        r#"
input:
  file: { path: in.jsonl, checkpoint: in.offset }
pipeline:
  batch: { size: 100, period: 5ms }
  processors:
    - mapping: '.seen = true'
output:
  file: { path: out.jsonl }
"#,
    )
    .unwrap();
    let seen = kill_midway_and_finish(dir.path(), n, 200_000);
    let missing: Vec<u64> = (1..=n as u64)
        .filter(|i| !seen.contains_key(i))
        .take(5)
        .collect();
    assert!(missing.is_empty(), "lines lost: {missing:?}");
    let total: usize = seen.values().sum();
    assert!(
        total < 2 * n,
        "the second run started over instead of resuming ({total} lines)"
    );
}

#[test]
fn validate_lists_every_problem_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        r#"
input:
  kafak: { topic: x }
pipeline:
  batch: { size: 10, period: soon }
  processors:
    - mapping: '.name = upcase(.name'
    - filter: '.qty >'
    - validate: { schema: { type: 12 } }
    - split: { unknown: 1 }
output:
  file: { pth: out.jsonl }
surprise: true
"#,
    )
    .unwrap();
    let o = run(dir.path(), &["validate", "bad.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    for path in [
        "input:",
        "pipeline.batch.period:",
        "surprise:",
        "pipeline.processors[0].mapping",
        "pipeline.processors[3].split",
        "output.file",
    ] {
        assert!(err.contains(path), "missing {path} in:\n{err}");
    }
    std::fs::write(
        dir.path().join("bad2.yaml"),
        r#"
input:
  kafak: { topic: x }
pipeline:
  processors:
    - mapping: '.name = upcase(.name'
    - filter: '.qty >'
    - validate: { schema: { type: 12 } }
output:
  file: { pth: out.jsonl }
"#,
    )
    .unwrap();
    let o = run(dir.path(), &["validate", "bad2.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    for path in [
        "input: unknown input kind \"kafak\"",
        "pipeline.processors[0].mapping",
        "pipeline.processors[1].filter",
        "pipeline.processors[2].validate.schema",
        "output.file",
    ] {
        assert!(err.contains(path), "missing {path} in:\n{err}");
    }
    std::fs::write(
        dir.path().join("good.yaml"),
        "input: {stdin: {}}\noutput: {stdout: {}}\n",
    )
    .unwrap();
    let o = run(dir.path(), &["validate", "good.yaml"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn misbehaving_processors_fail_their_batch_and_the_stream_goes_on() {
    use airtruct_builtins::fixtures;
    let dir = tempfile::tempdir().unwrap();
    for (name, wasm) in [
        ("loop", fixtures::LOOP),
        ("membomb", fixtures::MEMBOMB),
        ("panic", fixtures::PANIC),
    ] {
        std::fs::write(dir.path().join(format!("{name}.wasm")), wasm).unwrap();
    }
    std::fs::write(dir.path().join("in.txt"), "one\nboom\ntwo\n").unwrap();
    let expectations = [
        ("loop", "time limit of 300ms"),
        ("membomb", "memory limit of 33554432 bytes"),
        ("panic", "fixture panic"),
    ];
    for (name, error) in expectations {
        let _ = std::fs::remove_file(dir.path().join("out.txt"));
        let _ = std::fs::remove_file(dir.path().join("failed.txt"));
        std::fs::write(
            dir.path().join("stream.yaml"),
            format!(
                r#"
input:
  file: {{ path: in.txt }}
pipeline:
  batch: {{ size: 1 }}
  processors:
    - wasm: {{ path: {name}.wasm, limits: {{ memory_mib: 32, timeout: 300ms }} }}
output:
  file: {{ path: out.txt }}
on_error:
  dead_letter: {{ file: {{ path: failed.txt }} }}
"#
            ),
        )
        .unwrap();
        let o = run(dir.path(), &["run", "stream.yaml"]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let mut out = lines(&dir.path().join("out.txt"));
        out.sort();
        assert_eq!(out, ["one", "two"], "{name}");
        assert_eq!(lines(&dir.path().join("failed.txt")), ["boom"], "{name}");
        assert!(
            stderr(&o).contains(error),
            "{name}: expected \"{error}\" in:\n{}",
            stderr(&o)
        );
    }
}

#[test]
fn stop_policy_stops_the_stream_with_the_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.jsonl"), "{\"a\":1}\n{\"a\":\"x\"}\n").unwrap();
    std::fs::write(
        dir.path().join("stream.yaml"),
        "input: {file: {path: in.jsonl}}\npipeline: {processors: [{mapping: '.b = to_int!(.a) + 1'}]}\noutput: {drop: {}}\non_error: stop\n",
    )
    .unwrap();
    let o = run(dir.path(), &["run", "stream.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("on_error is \"stop\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn generate_input_counts_and_stdout_output_prints() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("stream.yaml"),
        "input: {generate: {count: 3, payload: '{\"n\":{{seq}}}'}}\npipeline: {processors: [{mapping: '.n = int!(.n) * 10'}]}\noutput: {stdout: {}}\n",
    )
    .unwrap();
    let o = run(dir.path(), &["run", "stream.yaml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "{\"n\":10}\n{\"n\":20}\n{\"n\":30}\n"
    );
}

#[test]
fn log_output_logs_one_message_in_every_and_cuts_long_payloads() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("stream.yaml"),
        "input: {generate: {count: 6, payload: '{\"n\":{{seq}},\"pad\":\"xxxxxxxxxx\"}'}}\noutput: {log: {every: 2, max_bytes: 8}}\n",
    )
    .unwrap();
    let o = run(dir.path(), &["run", "stream.yaml"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let logged: Vec<&str> = err.lines().filter(|l| l.contains("message: ")).collect();
    assert_eq!(logged.len(), 3, "{err}");
    // Messages 1, 3 and 5, each cut to 8 bytes with the full length said.
    for (line, n) in logged.iter().zip([1, 3, 5]) {
        assert!(
            line.contains(&format!("message: {{\"n\":{n},\"... (")),
            "{line}"
        );
    }
}

#[test]
fn a_file_input_on_a_line_without_end_fails_with_where_it_is() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("stream.yaml"),
        "input: {file: {path: /dev/zero, max_line: 1MiB}}\noutput: {drop: {}}\n",
    )
    .unwrap();
    let o = run(dir.path(), &["run", "stream.yaml"]);
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("line longer than 1048576 bytes"), "{err}");
}

#[test]
fn env_variables_are_interpolated_and_missing_ones_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("stream.yaml"),
        "input: {generate: {count: ${COUNT}, payload: '${WORD:hello}'}}\noutput: {stdout: {}}\n",
    )
    .unwrap();
    let o = airtruct(dir.path())
        .args(["run", "stream.yaml"])
        .env("COUNT", "2")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hello\nhello\n");
    let o = airtruct(dir.path())
        .args(["validate", "stream.yaml"])
        .env_remove("COUNT")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("environment variable \"COUNT\" is not set"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn aggregate_counts_and_sums_a_batch_per_group() {
    let dir = tempfile::tempdir().unwrap();
    let rows = [("a", 5), ("b", 1), ("a", 7), ("c", 2), ("b", 3), ("a", 0)];
    let text: String = rows
        .iter()
        .map(|(k, v)| format!("{{\"k\":\"{k}\",\"v\":{v}}}\n"))
        .collect();
    std::fs::write(dir.path().join("in.jsonl"), text).unwrap();
    std::fs::write(
        dir.path().join("stream.yaml"),
        r#"
input: { file: { path: in.jsonl, codec: jsonl } }
pipeline:
  batch: { size: 100, period: 500ms }
  processors:
    - aggregate:
        group_by: k
        metrics:
          - { name: n, op: count }
          - { name: total, op: sum, field: v }
          - { name: top, op: max, field: v }
output: { stdout: {} }
"#,
    )
    .unwrap();
    let o = run(dir.path(), &["run", "stream.yaml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        concat!(
            "{\"k\":\"a\",\"n\":3,\"top\":7,\"total\":12}\n",
            "{\"k\":\"b\",\"n\":2,\"top\":3,\"total\":4}\n",
            "{\"k\":\"c\",\"n\":1,\"top\":2,\"total\":2}\n"
        )
    );
}

#[test]
fn sqlite_buffer_survives_kill_9_and_loses_nothing_the_input_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let n = 200_000;
    write_input(dir.path(), n);
    // The file input's checkpoint moves as soon as a line is in the buffer: what the buffer holds must survive.
    // A syncing output keeps batches in flight between the buffer and the output when the kill comes.
    std::fs::write(
        dir.path().join("stream.yaml"),
        r#"
input:
  file: { path: in.jsonl, checkpoint: in.offset }
buffer:
  sqlite: { path: buffer.db }
pipeline:
  batch: { size: 100, period: 5ms }
  threads: 2
  processors:
    - mapping: '.seen = true'
output:
  file: { path: out.jsonl, fsync: true }
"#,
    )
    .unwrap();
    let seen = kill_midway_and_finish(dir.path(), n, 100_000);
    assert!(dir.path().join("buffer.db").exists());
    let missing: Vec<u64> = (1..=n as u64)
        .filter(|i| !seen.contains_key(i))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "lines lost: {missing:?} ({} distinct of {n})",
        seen.len()
    );
    let total: usize = seen.values().sum();
    assert!(
        total < 2 * n,
        "the second run started over instead of resuming ({total} lines)"
    );
}

#[test]
fn memory_buffer_with_spillover_past_its_limit_keeps_every_message_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let n = 50_000;
    write_input(dir.path(), n);
    // 4 KB of memory for about 2.5 MB of input: the input is read far ahead of the processors (while their
    // instances start), so most of it goes through the spill segments.
    std::fs::write(
        dir.path().join("stream.yaml"),
        r#"
input:
  file: { path: in.jsonl, codec: jsonl }
buffer:
  memory: { limit: 4KB, spillover: true, spill_dir: spill }
pipeline:
  batch: { size: 100, period: 5ms }
  processors:
    - mapping: '.seen = true'
output:
  file: { path: out.jsonl }
"#,
    )
    .unwrap();
    let o = run(dir.path(), &["run", "stream.yaml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ids: Vec<u64> = lines(&dir.path().join("out.jsonl"))
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["seen"], true);
            v["id"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(ids, (1..=n as u64).collect::<Vec<_>>());
    let left: Vec<_> = std::fs::read_dir(dir.path().join("spill"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "spill segments were left behind: {left:?}");
}

#[test]
fn system_window_counts_per_key_per_window_and_sets_late_messages_aside() {
    let dir = tempfile::tempdir().unwrap();
    // Tumbling windows of 10 s by the `ts` field (ms, or RFC 3339). Hand-computed:
    // [0s,10s): a 1+3 (out of order), b 2; closed by ts 12000.
    // 9000 arrives after [0s,10s) closed: late. [20s,30s) gets nothing: no output.
    // [10s,20s): a 4; closed by ts 35000. [30s,40s): b 6+7; closed when the file ends.
    let events = [
        r#"{"ts":1000,"k":"a","v":1}"#,
        r#"{"ts":4000,"k":"b","v":2}"#,
        r#"{"ts":2000,"k":"a","v":3}"#,
        r#"{"ts":12000,"k":"a","v":4}"#,
        r#"{"ts":9000,"k":"b","v":5}"#,
        r#"{"ts":35000,"k":"b","v":6}"#,
        r#"{"ts":"1970-01-01T00:00:36Z","k":"b","v":7}"#,
        r#"{"k":"a","v":8}"#,
    ];
    std::fs::write(dir.path().join("in.jsonl"), events.join("\n") + "\n").unwrap();
    std::fs::write(
        dir.path().join("stream.yaml"),
        r#"
input:
  file: { path: in.jsonl, codec: jsonl }
buffer:
  system_window:
    type: tumbling
    size: 10s
    timestamp_field: ts
    late_output: { file: { path: late.jsonl } }
pipeline:
  processors:
    - aggregate:
        group_by: k
        metrics:
          - { name: n, op: count }
          - { name: total, op: sum, field: v }
    - mapping: '.window = [to_int!(%window_start), to_int!(%window_end)]'
output:
  file: { path: out.jsonl }
on_error:
  dead_letter: { file: { path: dead.jsonl, envelope: true } }
"#,
    )
    .unwrap();
    let o = run(dir.path(), &["run", "stream.yaml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        lines(&dir.path().join("out.jsonl")),
        [
            r#"{"k":"a","n":2,"total":4,"window":[0,10000]}"#,
            r#"{"k":"b","n":1,"total":2,"window":[0,10000]}"#,
            r#"{"k":"a","n":1,"total":4,"window":[10000,20000]}"#,
            r#"{"k":"b","n":2,"total":13,"window":[30000,40000]}"#,
        ]
    );
    assert_eq!(
        lines(&dir.path().join("late.jsonl")),
        [r#"{"ts":9000,"k":"b","v":5}"#]
    );
    let dead = lines(&dir.path().join("dead.jsonl"));
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(
        dead[0].contains("no field \\\"ts\\\""),
        "the message without a time should fail with why: {}",
        dead[0]
    );
}

/// `airtruct streams|processors|secrets ...` against a server, as CI would run it with a token in the environment.
fn remote(dir: &Path, base: &str, token: &str, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = airtruct(dir)
        .args(args)
        .env("AIRTRUCT_SERVER", base)
        .env("AIRTRUCT_TOKEN", token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting airtruct");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test]
async fn streams_apply_makes_a_version_only_when_the_file_changed_and_the_cli_walks_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base) = support::standalone(dir.path());
    let api = support::Api::login(&base).await;
    let token = api.token.clone().unwrap();
    let ok = |args: &[&str], stdin: Option<&str>| {
        let o = remote(dir.path(), &base, &token, args, stdin);
        assert!(
            o.status.success(),
            "airtruct {args:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    };
    let file = dir.path().join("ticks.yaml");
    let config = |payload: &str| {
        format!(
            "input:\n  generate: {{ interval: 1s, payload: '{payload}' }}\noutput:\n  drop: {{}}\n"
        )
    };
    std::fs::write(&file, config("{\"n\":{{seq}}}")).unwrap();
    let f = file.to_str().unwrap();

    // Created from the file (named after it), then applied again unchanged: still version 1.
    assert!(ok(&["streams", "apply", "-f", f], None).contains("ticks created: version 1, active"));
    assert!(ok(&["streams", "apply", "-f", f], None).contains("ticks unchanged: version 1"));
    // A changed file makes version 2.
    std::fs::write(&file, config("{\"m\":{{seq}}}")).unwrap();
    assert!(ok(&["streams", "apply", "-f", f], None).contains("ticks updated: version 2, active"));
    let listed = ok(&["streams", "list"], None);
    assert!(
        listed.starts_with("NAME") && listed.contains("ticks") && listed.contains("active"),
        "{listed}"
    );
    assert!(ok(&["streams", "get", "ticks"], None).contains("\"m\""));
    let versions = ok(&["streams", "versions", "ticks"], None);
    assert_eq!(versions.lines().count(), 3, "{versions}");
    assert!(versions.contains("admin"), "{versions}");
    assert!(
        ok(&["streams", "rollback", "ticks", "1"], None).contains("now version 3"),
        "rollback"
    );
    assert!(ok(&["streams", "get", "ticks"], None).contains("\"n\""));
    assert!(ok(&["streams", "pause", "ticks"], None).contains("ticks paused"));
    assert!(ok(&["streams", "resume", "ticks"], None).contains("ticks active"));
    let got: serde_json::Value =
        serde_json::from_str(&ok(&["streams", "get", "ticks", "--json"], None)).unwrap();
    let s = support::stream(&api, got["id"].as_str().unwrap()).await;
    assert_eq!(s["version"], 3, "pause and resume make no version");

    // A broken config is refused with the server's words and its path; nothing is saved.
    std::fs::write(
        dir.path().join("broken.yaml"),
        "input:\n  generate: {}\noutput:\n  nowhere: {}\n",
    )
    .unwrap();
    let o = remote(
        dir.path(),
        &base,
        &token,
        &[
            "streams",
            "apply",
            "-f",
            dir.path().join("broken.yaml").to_str().unwrap(),
        ],
        None,
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("config.output"), "{}", stderr(&o));
    assert!(!ok(&["streams", "list"], None).contains("broken"));

    // Secrets from standard input, listed by name only.
    assert!(
        ok(
            &["secrets", "set", "db-password"],
            Some("hunter2-very-secret\n")
        )
        .contains("secret db-password created")
    );
    let secrets = ok(&["secrets", "list"], None);
    assert!(
        secrets.contains("db-password") && !secrets.contains("hunter2"),
        "{secrets}"
    );

    // A processor upload, then the list.
    let wasm = dir.path().join("echo.wasm");
    std::fs::write(&wasm, airtruct_builtins::fixtures::ECHO).unwrap();
    assert!(
        ok(
            &[
                "processors",
                "upload",
                wasm.to_str().unwrap(),
                "--name",
                "echo"
            ],
            None
        )
        .contains("echo uploaded: version 1")
    );
    assert!(ok(&["processors", "list"], None).contains("echo"));

    // Delete, then a stream that is not there; a wrong token.
    assert!(ok(&["streams", "delete", "ticks"], None).contains("ticks deleted"));
    let o = remote(
        dir.path(),
        &base,
        &token,
        &["streams", "get", "ticks"],
        None,
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no stream named \"ticks\""),
        "{}",
        stderr(&o)
    );
    let o = remote(dir.path(), &base, "at_wrong", &["streams", "list"], None);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("(401)"), "{}", stderr(&o));
}

#[test]
fn test_passes_the_documented_cases_and_fails_a_broken_mapping_with_a_diff() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/orders-tested.yaml"),
    )
    .unwrap();
    std::fs::write(dir.path().join("orders.yaml"), &example).unwrap();
    let o = run(dir.path(), &["test", "orders.yaml"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(
        out.contains("ok    names are upper-cased and totals computed"),
        "{out}"
    );
    assert!(out.ends_with("4 passed, 0 failed\n"), "{out}");

    // The mapping broken: the case that checks it fails, with what differs; the exit status says so.
    std::fs::write(
        dir.path().join("broken.yaml"),
        example.replace(".name = upcase!(.name)", ".name = downcase!(.name)"),
    )
    .unwrap();
    let o = run(dir.path(), &["test", "broken.yaml"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("FAIL  names are upper-cased and totals computed"),
        "{out}"
    );
    assert!(out.contains("message 1: the payload differs"), "{out}");
    assert!(out.contains("- {\"name\":\"ANN\""), "{out}");
    assert!(out.contains("+ {\"name\":\"ann\""), "{out}");
    assert!(
        out.contains("FAIL  every mapped message has a total"),
        "{out}"
    );
    assert!(out.ends_with("2 passed, 2 failed\n"), "{out}");

    // A case that names a processor the pipeline lacks, and a condition that does not compile: refused with paths.
    std::fs::write(
        dir.path().join("bad.yaml"),
        "input: {stdin: {}}\noutput: {stdout: {}}\npipeline:\n  processors: [{mapping: .a = 1}]\ntests:\n  - {name: far, input: [{payload: x}], after: 3, expect: []}\n  - {name: cond, input: [{payload: x}], conditions: ['.a =='] }\n",
    )
    .unwrap();
    let o = run(dir.path(), &["test", "bad.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("tests[0].after"), "{err}");
    assert!(err.contains("tests[1].conditions[0]:"), "{err}");
    assert!(!err.contains("conditions[0].filter"), "{err}");
    // No cases at all is a failure too, so CI notices a file that lost them.
    std::fs::write(
        dir.path().join("none.yaml"),
        "input: {stdin: {}}\noutput: {stdout: {}}\n",
    )
    .unwrap();
    let o = run(dir.path(), &["test", "none.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no test cases"), "{}", stderr(&o));
}

#[tokio::test]
async fn the_api_runs_a_configs_cases_without_opening_its_input_or_output() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base) = support::standalone(dir.path());
    let api = support::Api::login(&base).await;
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/orders-tested.yaml"),
    )
    .unwrap();
    // The example's output takes its DSN from a secret: only the processors and the cases run, so it is no bar.
    let (status, body) = api
        .post(
            "/api/v1/streams/tests",
            serde_json::json!({"config": example}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["passed"], 4, "{body}");
    assert_eq!(body["failed"], 0, "{body}");
    let broken = example.replace(".name = upcase!(.name)", ".name = downcase!(.name)");
    let (status, body) = api
        .post(
            "/api/v1/streams/tests",
            serde_json::json!({"config": broken}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["failed"], 2, "{body}");
    let case = &body["cases"][0];
    assert_eq!(case["passed"], false);
    assert!(
        case["actual"][0].as_str().unwrap().contains("\"ann\""),
        "{case}"
    );
    assert!(
        case["expected"][0].as_str().unwrap().contains("\"ANN\""),
        "{case}"
    );
    // A secret in a processor would come back in the answer: not run, the problem at its path.
    let (status, body) = api
        .post(
            "/api/v1/streams/tests",
            serde_json::json!({"config": {"pipeline": {"processors": [{"mapping": ".k = \"${secret:key}\""}]},
                "tests": [{"name": "k", "input": [{"payload": "{}"}], "conditions": ["exists(.k)"]}]}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cases"].as_array().unwrap().len(), 0, "{body}");
    assert!(
        body["errors"][0]["path"]
            .as_str()
            .unwrap()
            .starts_with("config.pipeline"),
        "{body}"
    );
    // A case that names a processor the pipeline lacks: the same.
    let (status, body) = api
        .post(
            "/api/v1/streams/tests",
            serde_json::json!({"config": "pipeline: {processors: [{mapping: .a = 1}]}\ntests: [{name: x, input: [{payload: y}], after: 1, expect: []}]\n"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["errors"][0]["path"], "config.tests[0].after", "{body}");
    // Saving a stream with a malformed case is refused like any other config problem.
    let (status, body) = api
        .post(
            "/api/v1/streams",
            serde_json::json!({"name": "bad-case", "config": "input: {generate: {count: 1}}\noutput: {drop: {}}\ntests: [{name: x, input: []}]\n"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("config.tests[0]"), "{body}");
}

#[tokio::test]
async fn airtruct_tap_prints_a_running_streams_messages_at_the_step_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base) = support::standalone(dir.path());
    let api = support::Api::login(&base).await;
    let token = api.token.clone().unwrap();
    let file = dir.path().join("tapped.yaml");
    std::fs::write(
        &file,
        "input:\n  generate: { interval: 20ms, payload: '{\"n\":{{seq}}}' }\npipeline:\n  processors:\n    \
         - mapping: .label = \"n=\" + to_string!(.n)\noutput:\n  drop: {}\n",
    )
    .unwrap();
    let applied = remote(
        dir.path(),
        &base,
        &token,
        &["streams", "apply", "-f", file.to_str().unwrap()],
        None,
    );
    assert!(applied.status.success(), "{}", stderr(&applied));
    let got: serde_json::Value = serde_json::from_str(&stdout(&remote(
        dir.path(),
        &base,
        &token,
        &["streams", "get", "tapped", "--json"],
        None,
    )))
    .unwrap();
    support::wait_status(&api, got["id"].as_str().unwrap(), "active", support::WAIT).await;

    // Three messages after the mapping, as JSON lines; then as lines for people.
    let tapped = support::eventually("three messages tapped", support::WAIT, || async {
        let o = remote(
            dir.path(),
            &base,
            &token,
            &["tap", "tapped", "--step", "1", "--count", "3", "--json"],
            None,
        );
        o.status.success().then_some(o)
    })
    .await;
    let lines: Vec<serde_json::Value> = stdout(&tapped)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{}", stdout(&tapped));
    for l in &lines {
        assert_eq!(l["step"], 1);
        let payload: serde_json::Value =
            serde_json::from_str(l["payload"].as_str().unwrap()).unwrap();
        assert_eq!(payload["label"], format!("n={}", payload["n"]), "{l}");
    }
    assert!(
        stderr(&tapped).contains("tapping \"tapped\" (1 replica running)"),
        "{}",
        stderr(&tapped)
    );
    let o = remote(
        dir.path(),
        &base,
        &token,
        &["tap", "tapped", "--step", "0", "--count", "1"],
        None,
    );
    assert!(
        stdout(&o).starts_with("[0 input (generate)] {\"n\":"),
        "{}",
        stdout(&o)
    );

    // A stream that is not running: the server's reason, exit status 1.
    assert!(
        remote(
            dir.path(),
            &base,
            &token,
            &["streams", "pause", "tapped"],
            None
        )
        .status
        .success()
    );
    let o = support::eventually("the tap refused", support::WAIT, || async {
        let o = remote(dir.path(), &base, &token, &["tap", "tapped"], None);
        (!o.status.success()).then_some(o)
    })
    .await;
    assert!(
        stderr(&o).contains("is not running: there is nothing to tap (409)"),
        "{}",
        stderr(&o)
    );
}
