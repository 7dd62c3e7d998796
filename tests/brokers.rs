//! End-to-end tests of the broker connectors against the brokers on this machine (Redis on 6379; `scripts/services`
//! starts each one that is down). For each: a stream generates 20,000 messages into the broker and another reads
//! them out into PostgreSQL, both on a worker process killed with `kill -9` mid run; another worker takes both
//! over, and every message arrives at least once.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Api, PgDb, coordinator, eventually, psql, stream, suffix, worker};

const N: u64 = 20_000;

/// Runs a broker's own command line tool (to clean up after a test), best effort.
fn cleanup(program: &str, args: &[&str]) {
    let _ = std::process::Command::new(program).args(args).output();
}

/// Runs `generate -> to` and `from -> PostgreSQL` on a worker killed mid run, then on another; checks that every
/// message arrived. Returns the rows written (duplicates included).
async fn through_a_killed_worker(name: &str, to: Value, from: Value) -> u64 {
    through_a_killed_worker_at(name, to, from, None).await
}

/// The same, generating one message every `interval` (for a broker that drops what a slow subscriber lets pile
/// up, as Mosquitto does past 1000 queued messages by default).
async fn through_a_killed_worker_at(
    name: &str,
    to: Value,
    from: Value,
    interval: Option<&str>,
) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let store = PgDb::new();
    let target = PgDb::new();
    psql(&target.url(), "CREATE TABLE got (id BIGINT NOT NULL)");
    let (_coordinator, base) = coordinator(dir.path(), &store);
    let mut w1 = worker(dir.path(), &base, "w1");
    let api = Api::login(&base).await;
    // The reading stream first, running (its queue declared, its subscription made) before anything is sent.
    let (status, saved) = api
        .post(
            "/api/v1/streams",
            json!({"name": format!("{name}-out"), "config": {
                "input": from,
                "pipeline": {"batch": {"size": 200, "period": "5ms"}},
                "output": {"sql_insert": {"driver": "postgres", "dsn": target.url(), "table": "got",
                                          "columns": ["id"], "args_mapping": "[.id]"}}}}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    let reader = saved["id"].as_str().unwrap().to_string();
    eventually(
        "the reading stream to run",
        Duration::from_secs(60),
        || async {
            let s = stream(&api, &reader).await;
            (s["replicas"][0]["state"] == "running").then_some(())
        },
    )
    .await;
    let (status, saved) = api
        .post(
            "/api/v1/streams",
            json!({"name": format!("{name}-in"), "config": {
                "input": {"generate": {"count": N, "interval": interval,
                                       "payload": "{\"id\":{{seq}}}"}},
                "pipeline": {"batch": {"size": 100, "period": "5ms"}},
                "output": to}}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    let count = |sql: &str| psql(&target.url(), sql).parse::<u64>().unwrap();
    eventually(
        "the first messages through",
        Duration::from_secs(90),
        || async { (count("SELECT count(*) FROM got") >= N / 10).then_some(()) },
    )
    .await;
    w1.kill();
    let before = count("SELECT count(DISTINCT id) FROM got");
    assert!(
        before < N,
        "{name}: killed after everything arrived ({before})"
    );

    let _w2 = worker(dir.path(), &base, "w2");
    eventually(
        &format!("{name}: every message in PostgreSQL"),
        Duration::from_secs(180),
        || async { (count("SELECT count(DISTINCT id) FROM got") == N).then_some(()) },
    )
    .await;
    assert_eq!(count("SELECT min(id) FROM got"), 1);
    assert_eq!(count("SELECT max(id) FROM got"), N);
    let total = count("SELECT count(*) FROM got");
    // Rows twice: read again after the kill, or made again by the generating stream, restarted from 1.
    eprintln!(
        "{name}: {N} messages, {total} rows after kill -9 at {before} ({} twice or more)",
        total - N
    );
    total
}

#[tokio::test]
async fn redis_streams_lose_nothing_when_their_worker_is_killed() {
    let key = format!("orders-{}", suffix());
    through_a_killed_worker(
        "redis-streams",
        json!({"redis": {"url": "redis://127.0.0.1:6379", "stream": {"key": key}}}),
        json!({"redis": {"url": "redis://127.0.0.1:6379",
                         "stream": {"keys": [key], "group": "airtruct", "claim_after": "2s"}}}),
    )
    .await;
    cleanup("redis-cli", &["DEL", &key]);
}

#[tokio::test]
async fn a_redis_list_is_a_reliable_queue_when_its_worker_is_killed() {
    let key = format!("jobs-{}", suffix());
    through_a_killed_worker(
        "redis-list",
        json!({"redis": {"url": "redis://127.0.0.1:6379", "list": key}}),
        json!({"redis": {"url": "redis://127.0.0.1:6379", "list": {"key": key}}}),
    )
    .await;
    cleanup("redis-cli", &["DEL", &key, &format!("{key}:processing")]);
}

#[tokio::test]
async fn rabbitmq_loses_nothing_when_its_worker_is_killed() {
    let queue = format!("orders-{}", suffix());
    // amq.direct is there on every broker: the reading stream binds its queue to it before anything is sent.
    through_a_killed_worker(
        "rabbitmq",
        json!({"amqp_0_9": {"url": "amqp://guest:guest@127.0.0.1:5672/%2f", "exchange": "amq.direct",
                            "key": queue}}),
        json!({"amqp_0_9": {"url": "amqp://guest:guest@127.0.0.1:5672/%2f", "queue": queue,
                            "queue_declare": {"durable": true},
                            "bindings_declare": [{"exchange": "amq.direct", "key": queue}]}}),
    )
    .await;
    cleanup("rabbitmqctl", &["delete_queue", &queue]);
}

#[tokio::test]
async fn nats_jetstream_loses_nothing_when_its_worker_is_killed() {
    let name = format!("ORDERS_{}", suffix());
    let subject = format!("airtruct-test.orders.{}", suffix());
    // The reading stream creates the JetStream stream; the writing one waits for JetStream's acknowledgements.
    through_a_killed_worker(
        "nats-jetstream",
        json!({"nats": {"url": "nats://127.0.0.1:4222", "subject": subject, "jetstream": true}}),
        json!({"nats": {"url": "nats://127.0.0.1:4222", "subject": subject,
                        "jetstream": {"stream": name, "create_stream": true, "durable": "airtruct",
                                      "ack_wait": "3s"}}}),
    )
    .await;
    let js = async_nats::jetstream::new(async_nats::connect("127.0.0.1:4222").await.unwrap());
    js.delete_stream(&name).await.unwrap();
}

#[tokio::test]
async fn mqtt_loses_nothing_when_its_worker_is_killed() {
    let topic = format!("airtruct-test/orders/{}", suffix());
    // QoS 1 both ways; the reading stream's session is persistent (its client id is the stream's), so the worker
    // that takes it over gets what the killed one had not acknowledged. One message every 2 ms: when the new
    // worker starts the generating stream (again from 1) before the reading one, Mosquitto keeps 1,000 messages
    // for the session and drops the rest, so the reading stream has a few seconds to subscribe again (it took more
    // than the 3 s that 1 ms gave it in one CI run, beside the other kill tests).
    through_a_killed_worker_at(
        "mqtt",
        json!({"mqtt": {"url": "mqtt://127.0.0.1:1883", "topic": topic, "qos": 1}}),
        json!({"mqtt": {"url": "mqtt://127.0.0.1:1883", "topics": [topic], "qos": 1}}),
        Some("2ms"),
    )
    .await;
}
