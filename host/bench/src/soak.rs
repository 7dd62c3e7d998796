//! A soak run: `airtruct standalone` (the binary next to this bench, or `AIRTRUCT_BIN`) with three streams under
//! a steady load for `SOAK_SECONDS` (600 by default):
//!
//! - `soak-ingest`: HTTP requests to `/ingest/soak-ingest` -> mapping -> PostgreSQL (`soak_ingest`);
//! - `soak-kafka`: Kafka `soak-in` -> mapping -> Kafka `soak-out`;
//! - `soak-gen`: generate -> mapping -> PostgreSQL (`soak_gen`).
//!
//! Every 30 s it prints the server's resident memory and each stream's counters; at the end it pauses the streams
//! (which drains them) and checks that everything acknowledged arrived: each accepted request's row, each
//! produced Kafka record on the output topic, each delivered generated message's row.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};

use crate::control::{Api, first_answer, standalone};

const DSN: &str = "postgres://postgres@127.0.0.1/test";
const BROKERS: &str = "127.0.0.1:9092";
/// Requests a second to the ingest stream, records a second to Kafka; the generator makes 250 a second.
const INGEST_RATE: u64 = 200;
const KAFKA_RATE: u64 = 1000;

fn psql(sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-tAqc",
            sql,
        ])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn distinct_ns(table: &str) -> BTreeSet<u64> {
    psql(&format!("SELECT DISTINCT n FROM {table}"))
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

pub(crate) fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Each stream's `(received, sent)`.
async fn counters(api: &Api, ids: &[(&str, String)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for (_, id) in ids {
        let s = api
            .call(reqwest::Method::GET, &format!("/api/v1/streams/{id}"), None)
            .await;
        let m = &s; // the counters are flattened into the stream
        out.push((
            m["received"].as_u64().unwrap_or(0),
            m["sent"].as_u64().unwrap_or(0),
        ));
    }
    out
}

pub fn soak() {
    let seconds: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    println!("\n## Soak: three streams for {seconds} s (`airtruct-bench soak`)\n");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(run(seconds));
}

async fn run(seconds: u64) {
    let dir = std::env::temp_dir().join(format!("airtruct-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for table in ["soak_ingest", "soak_gen"] {
        psql(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (n BIGINT NOT NULL, body TEXT)"
        ));
    }
    let suffix = std::process::id();
    let (topic_in, topic_out) = (format!("soak-in-{suffix}"), format!("soak-out-{suffix}"));
    crate::kafka::create(&[&topic_in, &topic_out]).await;

    let (server, base) = standalone(&dir, "data", &["--path-root", dir.to_str().unwrap()]);
    let pid = server.0.id();
    let api = Api::login(&base).await;
    let http = api.http.clone();
    let to_pg = |table: &str| {
        json!({"sql_insert": {"driver": "postgres", "dsn": DSN, "table": table, "columns": ["n", "body"],
            "args_mapping": "[.n, .body]"}})
    };
    let mapping = json!({"mapping": ".body = \"seen \" + to_string!(.n)"});
    let streams = [
        (
            "soak-ingest",
            json!({"input": {"http_server": {}}, "pipeline": {"processors": [mapping]},
                "output": to_pg("soak_ingest")}),
        ),
        (
            "soak-kafka",
            json!({"input": {"kafka": {"brokers": [BROKERS], "topics": [topic_in],
                    "consumer_group": format!("soak-{suffix}"), "start_from": "earliest"}},
                "pipeline": {"processors": [mapping]},
                "output": {"kafka": {"brokers": [BROKERS], "topic": topic_out}}}),
        ),
        (
            "soak-gen",
            json!({"input": {"generate": {"interval": "4ms", "payload": "{\"n\":{{seq}}}"}},
                "pipeline": {"processors": [mapping]}, "output": to_pg("soak_gen")}),
        ),
    ];
    let mut ids = Vec::new();
    for (name, config) in &streams {
        let s = api
            .call(
                reqwest::Method::POST,
                "/api/v1/streams",
                Some(json!({"name": name, "config": config})),
            )
            .await;
        let id = s["id"]
            .as_str()
            .unwrap_or_else(|| panic!("creating {name}: {s}"));
        ids.push((*name, id.to_string()));
    }
    // The ingest stream takes requests once it runs.
    first_answer(&http, &format!("{base}/ingest/soak-ingest"), "{\"n\":0}").await;
    let accepted = Arc::new(std::sync::Mutex::new(vec![0u64]));
    let refused = Arc::new(AtomicU64::new(0));
    let produced = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));

    // The HTTP load: INGEST_RATE requests a second, each answered once its row is written.
    let ingest = {
        let (http, base, accepted, refused, stop) = (
            http.clone(),
            base.clone(),
            accepted.clone(),
            refused.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / INGEST_RATE));
            let mut n = 1u64;
            let mut running = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let (http, base, accepted, refused) = (
                    http.clone(),
                    base.clone(),
                    accepted.clone(),
                    refused.clone(),
                );
                running.push(tokio::spawn(async move {
                    let ok = http
                        .post(format!("{base}/ingest/soak-ingest"))
                        .body(format!("{{\"n\":{n}}}"))
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == 200);
                    if ok {
                        accepted.lock().unwrap().push(n);
                    } else {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }));
                running.retain(|t| !t.is_finished());
                n += 1;
            }
            for t in running {
                let _ = t.await;
            }
        })
    };
    // The Kafka load: KAFKA_RATE records a second, counted once the broker acknowledged them.
    let kafka = {
        let (topic, produced, stop) = (topic_in.clone(), produced.clone(), stop.clone());
        tokio::spawn(async move {
            let p: FutureProducer = ClientConfig::new()
                .set("bootstrap.servers", BROKERS)
                .set("acks", "all")
                .set("linger.ms", "5")
                .create()
                .unwrap();
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let mut pending = Vec::new();
                for _ in 0..KAFKA_RATE / 100 {
                    let payload = format!("{{\"n\":{n}}}");
                    n += 1;
                    if let Ok(f) =
                        p.send_result(FutureRecord::<str, str>::to(&topic).payload(&payload))
                    {
                        pending.push(f);
                    }
                }
                for f in pending {
                    if matches!(f.await, Ok(Ok(_))) {
                        produced.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };

    println!("| time | resident memory | ingest in / out | kafka in / out | generate in / out |");
    println!("|---|---|---|---|---|");
    let mut rss = Vec::new();
    let every = Duration::from_secs(30).min(Duration::from_secs(seconds.max(1)));
    let begun = Instant::now();
    while begun.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(every).await;
        let mib = rss_mib(pid);
        rss.push(mib);
        let c = counters(&api, &ids).await;
        println!(
            "| {} s | {mib:.0} MiB | {} / {} | {} / {} | {} / {} |",
            begun.elapsed().as_secs(),
            c[0].0,
            c[0].1,
            c[1].0,
            c[1].1,
            c[2].0,
            c[2].1
        );
    }
    stop.store(true, Ordering::Relaxed);
    let _ = ingest.await;
    let _ = kafka.await;
    // Let the Kafka stream catch up, then pause every stream: pausing drains what is in flight.
    let want = produced.load(Ordering::Relaxed);
    let caught_up = Instant::now();
    while counters(&api, &ids).await[1].1 < want && caught_up.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for (_, id) in &ids {
        api.call(
            reqwest::Method::POST,
            &format!("/api/v1/streams/{id}/status"),
            Some(json!({"status": "paused"})),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let final_counts = counters(&api, &ids).await;

    // What was acknowledged, and what arrived.
    let accepted: BTreeSet<u64> = accepted.lock().unwrap().iter().copied().collect();
    let rows = distinct_ns("soak_ingest");
    let ingest_lost = accepted.difference(&rows).count();
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", BROKERS)
        .set("group.id", format!("soak-check-{suffix}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[&topic_out]).unwrap();
    let mut seen = BTreeSet::new();
    let reading = Instant::now();
    while (seen.len() as u64) < want && reading.elapsed() < Duration::from_secs(120) {
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(5), consumer.recv()).await
            && let Some(v) = m
                .payload()
                .and_then(|p| serde_json::from_slice::<Value>(p).ok())
            && let Some(n) = v["n"].as_u64()
        {
            seen.insert(n);
        }
    }
    let kafka_lost = want.saturating_sub(seen.len() as u64);
    let gen_rows = distinct_ns("soak_gen").len() as u64;
    let gen_sent = final_counts[2].1;
    let gen_lost = gen_sent.saturating_sub(gen_rows);
    let (low, high) = rss
        .iter()
        .fold((f64::MAX, 0.0f64), |(l, h), &m| (l.min(m), h.max(m)));
    println!();
    println!("| stream | acknowledged to the sender | arrived | lost |");
    println!("|---|---|---|---|");
    println!(
        "| ingest -> PostgreSQL | {} requests answered 200 ({} refused with 503) | {} distinct rows | {ingest_lost} |",
        accepted.len(),
        refused.load(Ordering::Relaxed),
        rows.len()
    );
    println!(
        "| Kafka -> Kafka | {want} records produced | {} distinct records | {kafka_lost} |",
        seen.len()
    );
    println!(
        "| generate -> PostgreSQL | {gen_sent} delivered | {gen_rows} distinct rows | {gen_lost} |"
    );
    println!(
        "\nResident memory of the server: {low:.0} MiB at least, {high:.0} MiB at most, {:.0} MiB at the end.",
        rss.last().copied().unwrap_or(0.0)
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    for table in ["soak_ingest", "soak_gen"] {
        psql(&format!("DROP TABLE IF EXISTS {table}"));
    }
    assert_eq!(
        (ingest_lost, kafka_lost, gen_lost),
        (0, 0, 0),
        "acknowledged data was lost"
    );
}
