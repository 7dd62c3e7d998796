//! HTTP enrichment through the sandbox's `http` capability against a plain native loop on the same local server,
//! side by side in one run: each message's `id` looked up at `GET /users/{id}` and the answer put at `.user`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use airtruct_engine::Engine;
use futures_util::StreamExt;
use serde_json::{Value, json};

const MESSAGES: u64 = 20_000;
const ROUNDS: usize = 3;

/// A local API answering `{"id", "name", "tier"}` for any id.
async fn serve() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/users/{id}",
        axum::routing::get(
            |axum::extract::Path(id): axum::extract::Path<u64>| async move {
                axum::Json(json!({"id": id, "name": format!("user-{id}"), "tier": "gold"}))
            },
        ),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// What the `http` processor does for one message, natively: the request, the answer parsed and merged, the
/// message serialized again.
async fn enrich_one(client: &reqwest::Client, base: &str, payload: &[u8]) -> Vec<u8> {
    let mut doc: Value = serde_json::from_slice(payload).unwrap();
    let id = doc["id"].as_u64().unwrap();
    let body = client
        .get(format!("{base}/users/{id}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    doc["user"] = serde_json::from_slice(&body).unwrap();
    serde_json::to_vec(&doc).unwrap()
}

fn payloads() -> Vec<Vec<u8>> {
    (1..=MESSAGES)
        .map(|i| format!("{{\"id\":{i}}}").into_bytes())
        .collect()
}

/// The native loop, `in_flight` requests at a time: messages a second.
async fn native(base: &str, in_flight: usize) -> f64 {
    let client = reqwest::Client::new();
    let payloads = payloads();
    let t = Instant::now();
    let done: Vec<Vec<u8>> = futures_util::stream::iter(&payloads)
        .map(|p| enrich_one(&client, base, p))
        .buffered(in_flight)
        .collect()
        .await;
    assert_eq!(done.len() as u64, MESSAGES);
    MESSAGES as f64 / t.elapsed().as_secs_f64()
}

/// generate -> http (through the capability) -> drop: messages a second.
fn sandboxed(
    engine: &Engine,
    rt: &tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
    in_flight: usize,
    threads: usize,
) -> f64 {
    let config = json!({
        "resources": {"http": {"users": {"hosts": [addr.to_string()], "max_in_flight": in_flight}}},
        "input": {"generate": {"count": MESSAGES, "payload": "{\"id\":{{seq}}}"}},
        "pipeline": {"threads": threads, "processors": [
            {"http": {"resource": "users", "url": format!("http://{addr}/users/{{id}}"), "target": "user"}}
        ]},
        "output": {"drop": {}}
    });
    let (d, received) = crate::run_to_end(engine, rt, &config);
    assert_eq!(received, MESSAGES);
    MESSAGES as f64 / d.as_secs_f64()
}

pub(crate) fn enrich(engine: &Engine) {
    println!(
        "\n## HTTP enrichment: {MESSAGES} messages, each looked up at a local API (`GET /users/{{id}}`) and the answer put at `.user`\n"
    );
    println!(
        "The same server for every variant; each round runs every variant one after the other; the best of {ROUNDS} rounds is shown.\n"
    );
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    );
    let addr = rt.block_on(serve());
    let base = format!("http://{addr}");
    // (name, requests in flight, processor threads: 0 for the native loop)
    let variants: [(&str, usize, usize); 5] = [
        ("native loop (reqwest), one request at a time", 1, 0),
        (
            "airtruct: http processor through the capability, one at a time",
            1,
            1,
        ),
        ("native loop (reqwest), 16 in flight", 16, 0),
        (
            "airtruct: http processor through the capability, 16 in flight (default)",
            16,
            1,
        ),
        ("airtruct: the same, `pipeline.threads: 2`", 16, 2),
    ];
    let mut best = [0f64; 5];
    for _ in 0..ROUNDS {
        for (i, (_, in_flight, threads)) in variants.iter().enumerate() {
            let rate = if *threads > 0 {
                sandboxed(engine, &rt, addr, *in_flight, *threads)
            } else {
                rt.block_on(native(&base, *in_flight))
            };
            best[i] = best[i].max(rate);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("| variant | messages/s | relative to the native loop alike |");
    println!("|---|---|---|");
    for (i, (name, in_flight, _)) in variants.iter().enumerate() {
        let native = if *in_flight == 1 { best[0] } else { best[2] };
        println!("| {name} | {:.0} | {:.2}x |", best[i], best[i] / native);
    }
}
