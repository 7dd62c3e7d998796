//! Kafka -> mapping -> Kafka through the airtruct runtime, against a plain rdkafka consume-and-produce loop (the
//! ceiling on this machine), in the same run, on the broker at 127.0.0.1:9092 (`scripts/services` starts one).

use std::time::{Duration, Instant};

use airtruct_engine::Engine;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};

const BROKERS: &str = "127.0.0.1:9092";

pub(crate) async fn create(topics: &[&str]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", BROKERS)
        .create()
        .unwrap();
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| NewTopic::new(t, 1, TopicReplication::Fixed(1)))
        .collect();
    for r in admin
        .create_topics(&new, &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap();
    }
}

fn producer() -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", BROKERS)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .unwrap()
}

async fn fill(topic: &str, n: u64) {
    let p = producer();
    let mut pending = Vec::new();
    for i in 0..n {
        let payload = super::record(i);
        pending.push(
            p.send_result(FutureRecord::<str, [u8]>::to(topic).payload(&payload))
                .map_err(|(e, _)| e)
                .unwrap(),
        );
        if pending.len() >= 10_000 {
            for f in pending.drain(..) {
                f.await.unwrap().map_err(|(e, _)| e).unwrap();
            }
        }
    }
    for f in pending {
        f.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
}

/// Consumes `n` messages and produces each to `to`, waiting for every acknowledgement, committing at the end.
async fn plain_loop(from: &str, to: &str, group: &str, n: u64) -> Duration {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", BROKERS)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        .create()
        .unwrap();
    consumer.subscribe(&[from]).unwrap();
    let p = producer();
    let mut pending = Vec::with_capacity(256);
    let mut t = None;
    let mut seen = 0;
    while seen < n {
        let m = consumer.recv().await.unwrap();
        t.get_or_insert_with(Instant::now);
        let payload = m.payload().unwrap_or_default().to_vec();
        drop(m);
        pending.push(
            p.send_result(FutureRecord::<str, [u8]>::to(to).payload(&payload))
                .map_err(|(e, _)| e)
                .unwrap(),
        );
        seen += 1;
        if pending.len() == 256 {
            for f in pending.drain(..) {
                f.await.unwrap().map_err(|(e, _)| e).unwrap();
            }
        }
    }
    for f in pending {
        f.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
    consumer
        .commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
        .unwrap();
    t.unwrap().elapsed()
}

/// The same through a stream: kafka input, the bench mapping, kafka output.
async fn stream(engine: &Engine, from: &str, to: &str, group: &str, n: u64) -> Duration {
    let config = serde_json::json!({
        "input": {"kafka": {"brokers": [BROKERS], "topics": [from], "consumer_group": group}},
        "pipeline": {"batch": {"size": 256, "period": "10ms"}, "threads": 1,
                     "processors": [{"mapping": super::MAPPING}]},
        "output": {"kafka": {"brokers": [BROKERS], "topic": to}},
    });
    // The clock starts at the first message received, as for the plain loop (group joins are not measured).
    super::brokers::stream_through(engine, config, n).await
}

pub fn kafka(engine: &Engine) {
    let n: u64 = 100_000;
    let rounds = 3;
    println!(
        "\n## kafka -> mapping -> kafka, {n} messages of 200 bytes, one partition, broker tansu 0.6 in memory\n"
    );
    println!(
        "The plain loop is rdkafka alone: consume, produce (acks=all, idempotent), wait for the"
    );
    println!("acknowledgements every 256 messages, commit. The best of {rounds} rounds of each.\n");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let run = format!("{:x}", std::process::id());
    let src = format!("bench-src-{run}");
    let (mut plain, mut ours) = (Duration::MAX, Duration::MAX);
    rt.block_on(async {
        let mut topics = vec![src.clone()];
        for r in 0..rounds {
            topics.push(format!("bench-plain-{run}-{r}"));
            topics.push(format!("bench-stream-{run}-{r}"));
        }
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        create(&refs).await;
        fill(&src, n).await;
        for r in 0..rounds {
            plain = plain.min(
                plain_loop(
                    &src,
                    &format!("bench-plain-{run}-{r}"),
                    &format!("bench-plain-{run}-{r}"),
                    n,
                )
                .await,
            );
            ours = ours.min(
                stream(
                    engine,
                    &src,
                    &format!("bench-stream-{run}-{r}"),
                    &format!("bench-stream-{run}-{r}"),
                    n,
                )
                .await,
            );
        }
    });
    println!("| variant | messages/s | relative to the plain loop |");
    println!("|---|---|---|");
    println!(
        "| plain rdkafka loop (no processing) | {} | 1.00x |",
        super::rate(n, plain)
    );
    println!(
        "| airtruct stream (kafka input, wasm mapping, kafka output) | {} | {:.2}x |",
        super::rate(n, ours),
        plain.as_secs_f64() / ours.as_secs_f64()
    );
}
