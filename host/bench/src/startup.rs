//! Starting up (`airtruct-bench startup`): `airtruct standalone` (the release binary next to this one) started on a
//! new data directory, and a first stream (`http_server` -> mapping -> filter -> `sync_response`) saved through the
//! API: how long until the API answers, until the save returns, and until the stream answers its first request.
//! Each case runs on a component cache of its own: cold (nothing compiled on this machine yet) without and with the
//! background compile at startup (`--prewarm`), cold with the user arriving later than the compile, and warm (a
//! restart on the same cache).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::control::{Api, first_answer, standalone};

/// The times of one start: API up, stream saved, first answer (each from the process's start).
struct Start {
    api: Duration,
    saved: Duration,
    answered: Duration,
}

async fn start(
    dir: &Path,
    name: &str,
    cache: &Path,
    prewarm: bool,
    arrive_after: Duration,
) -> Start {
    let t = Instant::now();
    let (_p, base) = standalone(
        dir,
        name,
        &[
            "--cache-dir",
            cache.to_str().unwrap(),
            &format!("--prewarm={prewarm}"),
        ],
    );
    let api_up = t.elapsed();
    tokio::time::sleep(arrive_after.saturating_sub(t.elapsed())).await;
    let api = Api::login(&base).await;
    let config = json!({
        "input": {"http_server": {}},
        "pipeline": {"processors": [{"mapping": ".seen = true"}, {"filter": ".drop != true"}]},
        "output": {"sync_response": {}}
    });
    let saved = api
        .call(
            reqwest::Method::POST,
            "/api/v1/streams",
            Some(json!({"name": "first", "config": config})),
        )
        .await;
    assert!(saved["id"].is_string(), "the stream was not saved: {saved}");
    let saved_at = t.elapsed();
    let answer = first_answer(&api.http, &format!("{base}/ingest/first"), r#"{"n": 1}"#).await;
    assert!(answer.contains("\"seen\":true"), "{answer}");
    Start {
        api: api_up,
        saved: saved_at,
        answered: t.elapsed(),
    }
}

pub fn startup() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let now = Duration::ZERO;
        let later = Duration::from_secs(60);
        let cases = [
            ("cold cache, `--prewarm=false`", "a", "cache-a", false, now),
            (
                "cold cache, prewarm (the default)",
                "b",
                "cache-b",
                true,
                now,
            ),
            (
                "cold cache, prewarm, the user arrives after 60 s",
                "c",
                "cache-c",
                true,
                later,
            ),
            ("warm cache (a restart)", "d", "cache-b", true, now),
        ];
        println!(
            "\n## Starting up: `airtruct standalone` on a new data directory, then a first stream\n"
        );
        println!("| case | API up | stream saved | first answer |");
        println!("|---|---|---|---|");
        for (label, data, cache, prewarm, after) in cases {
            let s = start(d, data, &d.join(cache), prewarm, after).await;
            let secs = |x: Duration| format!("{:.2} s", x.as_secs_f64());
            let since_arrival = |x: Duration| {
                if after.is_zero() {
                    secs(x)
                } else {
                    format!(
                        "{} ({} after arriving)",
                        secs(x),
                        secs(x.saturating_sub(after))
                    )
                }
            };
            println!(
                "| {label} | {} | {} | {} |",
                secs(s.api),
                since_arrival(s.saved),
                since_arrival(s.answered)
            );
        }
    });
}
