//! Request and reply through a stream: `wrk` at 32 connections against `POST /ingest/echo` (`http_server` ->
//! mapping -> `sync_response`) on `airtruct standalone`, and against the same server's `/healthz` in the same run,
//! so the stream's cost is read beside the server's own floor. Needs `wrk` (Debian's package).

use std::process::Command;

use serde_json::json;

use crate::control::{Api, first_answer, standalone};

/// Connections and seconds per `wrk` run (`INGEST_SECONDS` overrides the seconds).
const CONNECTIONS: u32 = 32;

/// What `wrk --latency` printed: requests a second, the 50th and 99th percentile latencies, and errors.
struct Wrk {
    rps: f64,
    p50: String,
    p99: String,
    non_2xx: u64,
}

fn wrk(url: &str, script: Option<&std::path::Path>, seconds: u64) -> Wrk {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t2",
        &format!("-c{CONNECTIONS}"),
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    if let Some(s) = script {
        cmd.arg("-s").arg(s);
    }
    let out = cmd
        .arg(url)
        .output()
        .expect("wrk runs (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "wrk {url}: {text}");
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no {prefix:?} in wrk's output:\n{text}"))
    };
    Wrk {
        rps: field("Requests/sec:").parse().unwrap_or(0.0),
        p50: field("50%"),
        p99: field("99%"),
        non_2xx: text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
            .map_or(0, |v| v.trim().parse().unwrap_or(0)),
    }
}

/// Whether `wrk` is on the PATH (`all` skips this table without it; `ingest` asks for it).
pub fn wrk_installed() -> bool {
    let found = Command::new("wrk").arg("--version").output().is_ok();
    if !found {
        println!("\n(request and reply skipped: `wrk` is not installed; apt-get install wrk)");
    }
    found
}

pub fn ingest() {
    let seconds: u64 = std::env::var("INGEST_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    println!(
        "\n## Request and reply: wrk, {CONNECTIONS} connections, {seconds} s each (`airtruct-bench ingest`)\n"
    );
    let dir = std::env::temp_dir().join(format!("airtruct-ingest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (server, base) = standalone(&dir, "data", &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let api = Api::login(&base).await;
        let config = json!({
            "input": {"http_server": {}},
            "pipeline": {"processors": [{"mapping": ".seen = true"}]},
            "output": {"sync_response": {}},
        });
        let s = api
            .call(
                reqwest::Method::POST,
                "/api/v1/streams",
                Some(json!({"name": "echo", "config": config})),
            )
            .await;
        assert!(s["id"].is_string(), "creating the echo stream: {s}");
        let body = first_answer(&api.http, &format!("{base}/ingest/echo"), "{\"n\":1}").await;
        assert!(body.contains("\"seen\":true"), "the echo answered {body}");
    });
    let script = dir.join("post.lua");
    std::fs::write(
        &script,
        "wrk.method = \"POST\"\nwrk.body = '{\"n\":1,\"name\":\"wrk\"}'\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n",
    )
    .unwrap();
    println!("| target | requests/s | p50 | p99 | non-2xx |");
    println!("|---|---|---|---|---|");
    for (name, url, script) in [
        ("`GET /healthz`", format!("{base}/healthz"), None),
        (
            "`POST /ingest/echo` (mapping, `sync_response`)",
            format!("{base}/ingest/echo"),
            Some(script.as_path()),
        ),
    ] {
        let w = wrk(&url, script, seconds);
        println!(
            "| {name} | {:.0} | {} | {} | {} |",
            w.rps, w.p50, w.p99, w.non_2xx
        );
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
