//! Each broker on this machine, broker -> mapping -> broker through the airtruct runtime, beside the broker
//! client's own consume-and-publish loop with the same guarantees (publish confirmed, then acknowledge), in the
//! same run: Redis streams, RabbitMQ, NATS JetStream and MQTT.

mod mqtt;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airtruct_engine::Engine;
use airtruct_runtime::{BuildContext, StreamMetrics, build_stream, run_stream, validate_stream};
use amqprs::callbacks::ChannelCallback;
use amqprs::channel::{
    BasicAckArguments, BasicConsumeArguments, BasicPublishArguments, BasicQosArguments, Channel,
    ConfirmSelectArguments, QueueDeclareArguments,
};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::{BasicProperties, CloseChannel};
use futures_util::StreamExt;
use redis::AsyncCommands;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// A stream being run by the bench.
pub(crate) struct Running {
    pub metrics: Arc<StreamMetrics>,
    stop: CancellationToken,
    run: tokio::task::JoinHandle<Result<airtruct_runtime::StreamExit, airtruct_runtime::Error>>,
}

/// Validates, builds and starts `config`.
pub(crate) async fn start(engine: &Engine, config: Value) -> Running {
    let plan = validate_stream(
        airtruct_connectors::registry(),
        engine,
        &config,
        &Default::default(),
    )
    .map_err(|e| format!("{e:?}"))
    .unwrap();
    let metrics = Arc::new(StreamMetrics::default());
    let stop = CancellationToken::new();
    let cx = BuildContext::local(engine.clone(), metrics.clone(), stop.clone());
    let built = build_stream(plan, cx).await.unwrap();
    Running {
        metrics,
        stop,
        run: tokio::spawn(run_stream(built)),
    }
}

impl Running {
    /// Waits until it sent `n` messages, then stops it; the time from its first message received.
    pub(crate) async fn until_sent(self, n: u64) -> Duration {
        while self.metrics.snapshot().received == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let t = Instant::now();
        while self.metrics.snapshot().sent < n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let d = t.elapsed();
        self.stop.cancel();
        self.run.await.unwrap().unwrap();
        d
    }
}

/// Runs `config` (its input already filled) until it sent `n` messages; the clock starts at the first received.
pub(crate) async fn stream_through(engine: &Engine, config: Value, n: u64) -> Duration {
    start(engine, config).await.until_sent(n).await
}

fn pipeline() -> Value {
    json!({"batch": {"size": 256, "period": "10ms"}, "threads": 1,
           "processors": [{"mapping": super::MAPPING}]})
}

// Redis streams.

const REDIS: &str = "redis://127.0.0.1:6379";

async fn redis_conn() -> redis::aio::MultiplexedConnection {
    redis::Client::open(REDIS)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn redis_fill(key: &str, n: u64) {
    let mut c = redis_conn().await;
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut pipe = redis::pipe();
        for i in chunk {
            pipe.xadd(key, "*", &[("body", super::record(*i))]).ignore();
        }
        let () = pipe.query_async(&mut c).await.unwrap();
    }
}

/// XREADGROUP 256 at a time, XADD each to `to` in one pipeline, then XACK them.
async fn redis_plain(from: &str, to: &str, n: u64) -> Duration {
    let mut c = redis_conn().await;
    let () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(from)
        .arg("plain")
        .arg("0")
        .query_async(&mut c)
        .await
        .unwrap();
    let opts = redis::streams::StreamReadOptions::default()
        .group("plain", "bench")
        .count(256)
        .block(1000);
    let (mut seen, mut t) = (0, None);
    while seen < n {
        let reply: redis::streams::StreamReadReply =
            c.xread_options(&[from], &[">"], &opts).await.unwrap();
        t.get_or_insert_with(Instant::now);
        let mut pipe = redis::pipe();
        let mut ids = Vec::new();
        for k in reply.keys {
            for id in k.ids {
                let Some(redis::Value::BulkString(body)) = id.map.get("body") else {
                    panic!("an entry without a body");
                };
                pipe.cmd("XADD")
                    .arg(to)
                    .arg("*")
                    .arg("body")
                    .arg(body)
                    .ignore();
                ids.push(id.id);
            }
        }
        seen += ids.len() as u64;
        pipe.xack(from, "plain", &ids).ignore();
        let () = pipe.query_async(&mut c).await.unwrap();
    }
    t.unwrap().elapsed()
}

async fn redis_bench(engine: &Engine, run: &str, n: u64) -> (Duration, Duration) {
    let src = format!("bench-src-{run}");
    redis_fill(&src, n).await;
    let plain = redis_plain(&src, &format!("bench-plain-{run}"), n).await;
    let config = json!({
        "input": {"redis": {"url": REDIS, "stream": {"keys": [src], "group": "stream"}}},
        "pipeline": pipeline(),
        "output": {"redis": {"url": REDIS, "stream": {"key": format!("bench-stream-{run}")}}},
    });
    let ours = stream_through(engine, config, n).await;
    let mut c = redis_conn().await;
    let _: () = c
        .del(&[
            src,
            format!("bench-plain-{run}"),
            format!("bench-stream-{run}"),
        ])
        .await
        .unwrap();
    (plain, ours)
}

// RabbitMQ.

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Publisher confirms: tags published and not yet confirmed.
#[derive(Default)]
struct Confirms {
    pending: Mutex<BTreeSet<u64>>,
    changed: Notify,
}

struct Confirmer(Arc<Confirms>);

#[async_trait::async_trait]
impl ChannelCallback for Confirmer {
    async fn close(&mut self, _: &Channel, _: CloseChannel) -> Result<(), amqprs::error::Error> {
        Ok(())
    }
    async fn cancel(&mut self, _: &Channel, _: amqprs::Cancel) -> Result<(), amqprs::error::Error> {
        Ok(())
    }
    async fn flow(&mut self, _: &Channel, active: bool) -> Result<bool, amqprs::error::Error> {
        Ok(active)
    }
    async fn publish_ack(&mut self, _: &Channel, ack: amqprs::Ack) {
        let mut p = self.0.pending.lock().unwrap();
        if ack.mutiple() {
            *p = p.split_off(&(ack.delivery_tag() + 1));
        } else {
            p.remove(&ack.delivery_tag());
        }
        drop(p);
        self.0.changed.notify_waiters();
    }
    async fn publish_nack(&mut self, _: &Channel, _: amqprs::Nack) {
        panic!("the broker refused a message");
    }
    async fn publish_return(
        &mut self,
        _: &Channel,
        _: amqprs::Return,
        _: BasicProperties,
        _: Vec<u8>,
    ) {
    }
}

async fn amqp_channel() -> (Connection, Channel, Arc<Confirms>) {
    let conn = Connection::open(&OpenConnectionArguments::new(
        "127.0.0.1",
        5672,
        "guest",
        "guest",
    ))
    .await
    .unwrap();
    let ch = conn.open_channel(None).await.unwrap();
    let confirms = Arc::new(Confirms::default());
    ch.register_callback(Confirmer(confirms.clone()))
        .await
        .unwrap();
    ch.confirm_select(ConfirmSelectArguments::default())
        .await
        .unwrap();
    (conn, ch, confirms)
}

async fn amqp_declare(ch: &Channel, queue: &str) {
    ch.queue_declare(QueueDeclareArguments::new(queue).durable(true).finish())
        .await
        .unwrap();
}

/// Publishes `payloads` to `queue` and waits for every confirm.
async fn amqp_publish(
    ch: &Channel,
    confirms: &Confirms,
    next: &mut u64,
    queue: &str,
    payloads: Vec<Vec<u8>>,
) {
    for p in payloads {
        *next += 1;
        confirms.pending.lock().unwrap().insert(*next);
        let mut props = BasicProperties::default();
        props.with_persistence(true);
        ch.basic_publish(props.finish(), p, BasicPublishArguments::new("", queue))
            .await
            .unwrap();
    }
    loop {
        let changed = confirms.changed.notified();
        if confirms.pending.lock().unwrap().is_empty() {
            return;
        }
        changed.await;
    }
}

/// Consumes with manual acknowledgements (prefetch 500), publishes each batch of up to 256 with confirms, then
/// acknowledges the batch.
async fn amqp_plain(from: &str, to: &str, n: u64) -> Duration {
    let (_conn, ch, confirms) = amqp_channel().await;
    amqp_declare(&ch, to).await;
    ch.basic_qos(BasicQosArguments::new(0, 500, false))
        .await
        .unwrap();
    let (_tag, mut rx) = ch
        .basic_consume_rx(
            BasicConsumeArguments::new(from, "")
                .manual_ack(true)
                .finish(),
        )
        .await
        .unwrap();
    let (mut seen, mut t, mut next) = (0, None, 0);
    while seen < n {
        let first = rx.recv().await.unwrap();
        t.get_or_insert_with(Instant::now);
        let mut batch = vec![first];
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        seen += batch.len() as u64;
        let last = batch
            .last()
            .unwrap()
            .deliver
            .as_ref()
            .unwrap()
            .delivery_tag();
        let payloads = batch.into_iter().map(|m| m.content.unwrap()).collect();
        amqp_publish(&ch, &confirms, &mut next, to, payloads).await;
        ch.basic_ack(BasicAckArguments::new(last, true))
            .await
            .unwrap();
    }
    t.unwrap().elapsed()
}

async fn amqp_bench(engine: &Engine, run: &str, n: u64) -> (Duration, Duration) {
    let (src_plain, src_stream) = (
        format!("bench-src-plain-{run}"),
        format!("bench-src-stream-{run}"),
    );
    let (_conn, ch, confirms) = amqp_channel().await;
    let mut next = 0;
    for q in [&src_plain, &src_stream] {
        amqp_declare(&ch, q).await;
        for chunk in (0..n).collect::<Vec<_>>().chunks(5000) {
            let payloads = chunk.iter().map(|i| super::record(*i)).collect();
            amqp_publish(&ch, &confirms, &mut next, q, payloads).await;
        }
    }
    let plain = amqp_plain(&src_plain, &format!("bench-plain-{run}"), n).await;
    let out = format!("bench-stream-{run}");
    amqp_declare(&ch, &out).await;
    let config = json!({
        "input": {"amqp_0_9": {"url": AMQP, "queue": src_stream}},
        "pipeline": pipeline(),
        "output": {"amqp_0_9": {"url": AMQP, "key": out}},
    });
    let ours = stream_through(engine, config, n).await;
    for q in [src_plain, src_stream, format!("bench-plain-{run}"), out] {
        let _ = ch
            .queue_delete(amqprs::channel::QueueDeleteArguments::new(&q))
            .await;
    }
    (plain, ours)
}

// NATS JetStream.

async fn js() -> async_nats::jetstream::Context {
    async_nats::jetstream::new(async_nats::connect("127.0.0.1:4222").await.unwrap())
}

async fn js_stream(js: &async_nats::jetstream::Context, name: &str, subject: &str) {
    js.get_or_create_stream(async_nats::jetstream::stream::Config {
        name: name.to_string(),
        subjects: vec![subject.to_string()],
        ..Default::default()
    })
    .await
    .unwrap();
}

/// Publishes and waits for JetStream's acknowledgements, 256 at a time.
async fn js_publish(
    js: &async_nats::jetstream::Context,
    subject: &str,
    payloads: Vec<bytes::Bytes>,
) {
    let mut acks = Vec::with_capacity(payloads.len());
    for p in payloads {
        acks.push(js.publish(subject.to_string(), p).await.unwrap());
    }
    for a in acks {
        a.await.unwrap();
    }
}

/// A durable pull consumer: each batch published (JetStream-acknowledged), then each message acknowledged.
async fn js_plain(js: &async_nats::jetstream::Context, stream: &str, to: &str, n: u64) -> Duration {
    let consumer: async_nats::jetstream::consumer::PullConsumer = js
        .get_stream(stream)
        .await
        .unwrap()
        .get_or_create_consumer(
            "plain",
            async_nats::jetstream::consumer::pull::Config {
                durable_name: Some("plain".into()),
                ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(256)
        .messages()
        .await
        .unwrap();
    let (mut seen, mut t) = (0, None);
    while seen < n {
        let first = messages.next().await.unwrap().unwrap();
        t.get_or_insert_with(Instant::now);
        let mut batch = vec![first];
        while batch.len() < 256 {
            match futures_util::FutureExt::now_or_never(messages.next()) {
                Some(Some(Ok(m))) => batch.push(m),
                _ => break,
            }
        }
        seen += batch.len() as u64;
        js_publish(js, to, batch.iter().map(|m| m.payload.clone()).collect()).await;
        for m in batch {
            m.ack().await.unwrap();
        }
    }
    t.unwrap().elapsed()
}

async fn nats_bench(engine: &Engine, run: &str, n: u64) -> (Duration, Duration) {
    let js = js().await;
    let names = ["SRC", "PLAIN", "OUT"].map(|s| format!("BENCH_{s}_{run}"));
    let subjects = ["src", "plain", "out"].map(|s| format!("bench.{run}.{s}"));
    for (name, subject) in names.iter().zip(&subjects) {
        js_stream(&js, name, subject).await;
    }
    for chunk in (0..n).collect::<Vec<_>>().chunks(5000) {
        let payloads = chunk.iter().map(|i| super::record(*i).into()).collect();
        js_publish(&js, &subjects[0], payloads).await;
    }
    let plain = js_plain(&js, &names[0], &subjects[1], n).await;
    let config = json!({
        "input": {"nats": {"url": "nats://127.0.0.1:4222", "subject": subjects[0],
                           "jetstream": {"stream": names[0], "durable": "stream"}}},
        "pipeline": pipeline(),
        "output": {"nats": {"url": "nats://127.0.0.1:4222", "subject": subjects[2], "jetstream": true}},
    });
    let ours = stream_through(engine, config, n).await;
    for name in &names {
        js.delete_stream(name).await.unwrap();
    }
    (plain, ours)
}

pub fn brokers(engine: &Engine) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let run = format!("{:x}", std::process::id());
    let n = 50_000;
    println!(
        "\n## broker -> mapping -> broker, {n} messages of 200 bytes, each broker on this machine\n"
    );
    println!(
        "The plain loop is the broker's own Rust client: consume up to 256, publish them with the broker's"
    );
    println!(
        "confirmation, then acknowledge them. The stream is the airtruct input, the bench's VRL mapping in"
    );
    println!(
        "wasm, and the airtruct output. The clock starts at the first message each receives.\n"
    );
    println!("| broker | plain client loop | airtruct stream | relative |");
    println!("|---|---|---|---|");
    let row = |name: &str, n: u64, (plain, ours): (Duration, Duration)| {
        println!(
            "| {name} | {} | {} | {:.2}x |",
            super::rate(n, plain),
            super::rate(n, ours),
            plain.as_secs_f64() / ours.as_secs_f64()
        );
    };
    // BENCH_BROKERS=redis,nats runs only those.
    let only = std::env::var("BENCH_BROKERS").unwrap_or_default();
    let wanted = |b: &str| only.is_empty() || only.split(',').any(|o| o == b);
    if wanted("redis") {
        let r = rt.block_on(redis_bench(engine, &run, n));
        row("Redis 7 streams (consumer group, XADD)", n, r);
    }
    if wanted("rabbitmq") {
        let r = rt.block_on(amqp_bench(engine, &run, n));
        row(
            "RabbitMQ (manual acks, publisher confirms, persistent)",
            n,
            r,
        );
    }
    if wanted("nats") {
        let r = rt.block_on(nats_bench(engine, &run, n));
        row(
            "NATS JetStream (pull consumer, JetStream publish acks)",
            n,
            r,
        );
    }
    if wanted("mqtt") {
        let r = rt.block_on(mqtt::mqtt_bench(engine, &run, n));
        row(
            "MQTT 3.1.1 on Mosquitto 2 (QoS 1 in and out, persistent session)",
            n,
            r,
        );
    }
}
