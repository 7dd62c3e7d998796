//! One worker under many streams, and a message's latency at a steady rate (`airtruct-bench scale`), against
//! `airtruct standalone` (the binary next to this bench, or `AIRTRUCT_BIN`):
//!
//! - memory and idle CPU: `SCALE_STREAMS` streams (200 by default) of `generate` every 100 ms -> mapping -> filter
//!   -> drop, the server's resident memory before and after they all run, and its CPU over 30 s;
//! - processor threads: `airtruct run` of generate -> mapping -> filter -> drop with `pipeline.threads` 1 and 2,
//!   alternating, best of 3;
//! - latency: requests sent at a steady `SCALE_RATE` a second (10,000 by default, open loop: each timed from when it
//!   was due, so a slow answer delays no later one's clock) through `http_server` -> mapping -> `sync_response`;
//!   each request's time from sending to its processed message coming back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::control::{Api, binary, first_answer, standalone};
use crate::soak::rss_mib;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The process's CPU time so far (user + system).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    // Linux reports in USER_HZ, 100 on every common configuration.
    Duration::from_millis(ticks * 10)
}

const MAPPING: &str = ".name = upcase!(.name)\n.total = to_int!(.qty) * to_int!(.price)";
const FILTER: &str = ".qty > 2";

pub fn scale() {
    let streams = env_or("SCALE_STREAMS", 200);
    let rate = env_or("SCALE_RATE", 10_000);
    println!("\n## One worker under load (`airtruct-bench scale`)\n");
    let dir = std::env::temp_dir().join(format!("airtruct-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();

    // Many streams on the one worker of a standalone server.
    {
        let (server, base) = standalone(&dir, "data", &[]);
        let pid = server.0.id();
        rt.block_on(async {
            let api = Api::login(&base).await;
            // The built-in components compile in the background at startup: let that finish first.
            let _ = api.call(reqwest::Method::GET, "/api/v1/components", None).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
            let idle_before = measure(pid, Duration::from_secs(10)).await;
            let before = rss_mib(pid);
            for i in 0..streams {
                let config = json!({
                    "input": {"generate": {"interval": "100ms",
                        "payload": "{\"id\":{{seq}},\"name\":\"n\",\"qty\":4,\"price\":3}"}},
                    "pipeline": {"processors": [{"mapping": MAPPING}, {"filter": FILTER}]},
                    "output": {"drop": {}},
                });
                let s = api
                    .call(
                        reqwest::Method::POST,
                        "/api/v1/streams",
                        Some(json!({"name": format!("s{i}"), "config": config})),
                    )
                    .await;
                assert!(s["id"].is_string(), "creating stream {i}: {s}");
            }
            let started = Instant::now();
            loop {
                let all = api.call(reqwest::Method::GET, "/api/v1/streams", None).await;
                let running = all
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|s| {
                        s["replicas"]
                            .as_array()
                            .is_some_and(|r| r.iter().any(|r| r["state"] == "running"))
                    })
                    .count() as u64;
                if running == streams {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(300),
                    "only {running} of {streams} streams run after 5 minutes"
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let to_start = started.elapsed();
            tokio::time::sleep(Duration::from_secs(5)).await;
            let busy = measure(pid, Duration::from_secs(30)).await;
            let after = rss_mib(pid);
            println!(
                "{streams} streams (generate every 100 ms -> mapping -> filter -> drop, {} messages a second in all), \
                 all running {:.1} s after the last was saved:\n",
                streams * 10,
                to_start.as_secs_f64()
            );
            println!("| | resident memory | CPU (share of one core) |");
            println!("|---|---|---|");
            println!(
                "| no streams | {before:.0} MiB | {:.1} % |",
                idle_before * 100.0
            );
            println!(
                "| {streams} streams | {after:.0} MiB | {:.1} % |",
                busy * 100.0
            );
            println!(
                "| per stream | {:.2} MiB | {:.3} % |",
                (after - before) / streams as f64,
                (busy - idle_before) * 100.0 / streams as f64
            );
        });
        drop(server);
    }

    // Processor threads: the same stream run with 1 and 2.
    {
        let total = 400_000;
        let file = |threads: u32| {
            let path = dir.join(format!("threads-{threads}.yaml"));
            let config = json!({
                "input": {"generate": {"count": total,
                    "payload": "{\"id\":{{seq}},\"name\":\"n\",\"qty\":4,\"price\":3,\"note\":\"some text to carry along\"}"}},
                "pipeline": {"threads": threads, "processors": [{"mapping": MAPPING}, {"filter": FILTER}]},
                "output": {"drop": {}},
            });
            std::fs::write(&path, config.to_string()).unwrap();
            path
        };
        let files = [(1, file(1)), (2, file(2))];
        let mut best = [Duration::MAX; 2];
        for _ in 0..3 {
            for (i, (_, f)) in files.iter().enumerate() {
                let t = Instant::now();
                let out = std::process::Command::new(binary())
                    .arg("run")
                    .arg(f)
                    .env("AIRTRUCT_LOG", "warn")
                    .output()
                    .expect("airtruct run");
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                best[i] = best[i].min(t.elapsed());
            }
        }
        println!(
            "\n`airtruct run` of generate ({total} messages) -> mapping -> filter -> drop, best of 3:\n"
        );
        println!("| `pipeline.threads` | messages/s | relative to 1 |");
        println!("|---|---|---|");
        for (i, (threads, _)) in files.iter().enumerate() {
            println!(
                "| {threads} | {:.0}k | {:.2}x |",
                total as f64 / best[i].as_secs_f64() / 1000.0,
                best[0].as_secs_f64() / best[i].as_secs_f64()
            );
        }
    }

    // Latency at a steady rate.
    {
        let (server, base) = standalone(&dir, "data-latency", &[]);
        rt.block_on(latency(&base, rate));
        drop(server);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The share of one core the process used over `over`.
async fn measure(pid: u32, over: Duration) -> f64 {
    let (t0, c0) = (Instant::now(), cpu_time(pid));
    tokio::time::sleep(over).await;
    (cpu_time(pid) - c0).as_secs_f64() / t0.elapsed().as_secs_f64()
}

async fn latency(base: &str, rate: u64) {
    let api = Api::login(base).await;
    let config = json!({
        "input": {"http_server": {}},
        "pipeline": {"processors": [{"mapping": MAPPING}]},
        "output": {"sync_response": {}},
    });
    let s = api
        .call(
            reqwest::Method::POST,
            "/api/v1/streams",
            Some(json!({"name": "latency", "config": config})),
        )
        .await;
    assert!(s["id"].is_string(), "{s}");
    let url = format!("{base}/ingest/latency");
    let body = r#"{"id":1,"name":"n","qty":4,"price":3}"#;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()
        .unwrap();
    first_answer(&http, &url, body).await;
    let seconds = 10;
    let per_ms = (rate / 1000).max(1);
    let latencies = Arc::new(std::sync::Mutex::new(Vec::with_capacity(
        (rate * seconds) as usize,
    )));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for n in 0..seconds * 1000 {
        tick.tick().await;
        // Due now: timed from when it was due, not from when the client got round to it.
        let due = start + Duration::from_millis(n);
        for _ in 0..per_ms {
            let (http, url, latencies, errors) =
                (http.clone(), url.clone(), latencies.clone(), errors.clone());
            tasks.push(tokio::spawn(async move {
                let ok = match http.post(&url).body(body).send().await {
                    Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    latencies.lock().unwrap().push(due.elapsed());
                } else {
                    errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }));
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut l = latencies.lock().unwrap().clone();
    l.sort();
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "\nLatency at a steady {rate} requests a second for {seconds} s (open loop), request to processed answer \
         through http_server -> mapping -> sync_response:\n"
    );
    println!("| answered | errors | p50 | p99 | p99.9 | max |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |",
        l.len(),
        errors.load(std::sync::atomic::Ordering::Relaxed),
        pct(0.5),
        pct(0.99),
        pct(0.999),
        l.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    );
}
