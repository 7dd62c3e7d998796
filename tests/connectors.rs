//! End-to-end tests of the connectors against the real systems on this machine: Kafka (the tansu broker that
//! `scripts/services` starts on 127.0.0.1:9092) into PostgreSQL through a worker killed mid-run and under a
//! rebalance, and MariaDB through sql_insert and sql_select (change data capture: tests/cdc.rs).

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use support::{
    Api, PgDb, coordinator, eventually, lines, mariadb, psql, standalone, stream, suffix,
    wait_status, worker,
};

const BROKERS: &str = "127.0.0.1:9092";

async fn create_topic(topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", BROKERS)
        .create()
        .unwrap();
    let created = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    for r in created {
        r.unwrap();
    }
}

async fn produce(topic: &str, n: u64) {
    produce_ids(topic, 1..=n).await;
}

/// Produces the messages of `ids` (`{"id": ..., "amount": ...}`, keyed over 17 keys), confirmed by the broker.
async fn produce_ids(topic: &str, ids: std::ops::RangeInclusive<u64>) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", BROKERS)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let mut pending = Vec::new();
    for i in ids {
        let payload = format!("{{\"id\":{i},\"amount\":{}}}", i % 100);
        let key = format!("k{}", i % 17);
        pending.push(
            producer
                .send_result(FutureRecord::to(topic).key(&key).payload(&payload))
                .map_err(|(e, _)| e)
                .unwrap(),
        );
        if pending.len() >= 5000 {
            for f in pending.drain(..) {
                f.await.unwrap().map_err(|(e, _)| e).unwrap();
            }
        }
    }
    for f in pending {
        f.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
}

#[tokio::test]
async fn kafka_to_postgres_loses_nothing_when_its_worker_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let store = PgDb::new();
    let target = PgDb::new();
    psql(
        &target.url(),
        "CREATE TABLE orders (id BIGINT NOT NULL, amount BIGINT NOT NULL, note TEXT NOT NULL)",
    );
    let topic = format!("orders-{}", suffix());
    create_topic(&topic, 3).await;
    let n = 60_000u64;
    produce(&topic, n).await;

    let (_coordinator, base) = coordinator(dir.path(), &store);
    let mut w1 = worker(dir.path(), &base, "w1");
    let api = Api::login(&base).await;
    let config = json!({
        "input": {"kafka": {"brokers": [BROKERS], "topics": [topic], "consumer_group": format!("g-{topic}")}},
        "pipeline": {"batch": {"size": 200, "period": "5ms"},
                     "processors": [{"mapping": ".note = \"kafka \" + to_string!(%kafka_partition)"}]},
        "output": {"sql_insert": {"driver": "postgres", "dsn": target.url(), "table": "orders",
                                  "columns": ["id", "amount", "note"], "args_mapping": "[.id, .amount, .note]"}}
    });
    let (status, saved) = api
        .post(
            "/api/v1/streams",
            json!({"name": "orders", "config": config}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    let id = saved["id"].as_str().unwrap().to_string();
    let count = |sql: &str| psql(&target.url(), sql).parse::<u64>().unwrap();
    eventually("rows in PostgreSQL", Duration::from_secs(90), || async {
        (count("SELECT count(*) FROM orders") >= 2_000).then_some(())
    })
    .await;
    w1.kill();
    let before = count("SELECT count(*) FROM orders");
    assert!(
        before < n,
        "killed after everything was written ({before}): produce more"
    );

    // Another worker process takes the stream over and reads on from the committed offsets.
    let _w2 = worker(dir.path(), &base, "w2");
    eventually(
        "every message in the table",
        Duration::from_secs(180),
        || async { (count("SELECT count(DISTINCT id) FROM orders") == n).then_some(()) },
    )
    .await;
    assert_eq!(count("SELECT min(id) FROM orders"), 1);
    assert_eq!(count("SELECT max(id) FROM orders"), n);
    assert_eq!(
        count("SELECT count(*) FROM orders WHERE note NOT LIKE 'kafka _'"),
        0
    );
    let total = count("SELECT count(*) FROM orders");
    eprintln!(
        "kafka -> postgres: {n} messages, {total} rows ({} duplicates after kill -9 at {before})",
        total - n
    );
    assert!(
        total < n + n / 2,
        "the second worker started over instead of resuming ({total} rows)"
    );
    let s = stream(&api, &id).await;
    assert_eq!(s["status"], "active");
}

#[tokio::test]
async fn kafka_replicas_lose_nothing_while_a_third_consumer_joins_and_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let store = PgDb::new();
    let target = PgDb::new();
    psql(&target.url(), "CREATE TABLE got (id BIGINT NOT NULL)");
    let topic = format!("rebalance-{}", suffix());
    create_topic(&topic, 6).await;
    let (_coordinator, base) = coordinator(dir.path(), &store);
    let _w1 = worker(dir.path(), &base, "w1");
    let _w2 = worker(dir.path(), &base, "w2");
    let api = Api::login(&base).await;
    // Three replicas wanted, two workers: two consumers share the six partitions until a third worker comes.
    let (status, saved) = api
        .post(
            "/api/v1/streams",
            json!({"name": "rebalance", "config": {
                "input": {"kafka": {"brokers": [BROKERS], "topics": [topic],
                                    "consumer_group": format!("g-{topic}"), "start_from": "earliest"}},
                "replicas": 3,
                "pipeline": {"batch": {"size": 200, "period": "5ms"}},
                "output": {"sql_insert": {"driver": "postgres", "dsn": target.url(), "table": "got",
                                          "columns": ["id"], "args_mapping": "[.id]"}}}}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    let id = saved["id"].as_str().unwrap().to_string();
    let running = |s: &Value| {
        s["replicas"]
            .as_array()
            .map_or(0, |r| r.iter().filter(|r| r["state"] == "running").count())
    };
    eventually("two replicas running", Duration::from_secs(60), || async {
        (running(&stream(&api, &id).await) == 2).then_some(())
    })
    .await;

    // 40,000 messages over about 40 s, so that consumers join and leave while they arrive.
    let n = 40_000u64;
    let producing = {
        let topic = topic.clone();
        tokio::spawn(async move {
            for chunk in 0..80u64 {
                produce_ids(&topic, chunk * 500 + 1..=chunk * 500 + 500).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    let count = |sql: &str| psql(&target.url(), sql).parse::<u64>().unwrap();
    eventually("the first rows", Duration::from_secs(60), || async {
        (count("SELECT count(*) FROM got") >= 3_000).then_some(())
    })
    .await;

    // A third consumer joins: the group rebalances over three.
    let mut w3 = worker(dir.path(), &base, "w3");
    eventually(
        "a third replica running",
        Duration::from_secs(60),
        || async { (running(&stream(&api, &id).await) == 3).then_some(()) },
    )
    .await;
    let joined = count("SELECT count(DISTINCT id) FROM got");
    eventually(
        "rows read by three consumers",
        Duration::from_secs(60),
        || async { (count("SELECT count(DISTINCT id) FROM got") >= joined + 5_000).then_some(()) },
    )
    .await;

    // It leaves (its worker stops): the group rebalances over two again, mid run.
    let left = count("SELECT count(DISTINCT id) FROM got");
    w3.terminate();
    assert!(
        left < n && !producing.is_finished(),
        "the third consumer left after everything was produced ({left} rows): produce for longer"
    );
    eventually("two replicas again", Duration::from_secs(60), || async {
        (running(&stream(&api, &id).await) == 2).then_some(())
    })
    .await;
    producing.await.unwrap();
    eventually(
        "every message in the table",
        Duration::from_secs(120),
        || async { (count("SELECT count(DISTINCT id) FROM got") == n).then_some(()) },
    )
    .await;
    assert_eq!(count("SELECT min(id) FROM got"), 1);
    assert_eq!(count("SELECT max(id) FROM got"), n);
    let total = count("SELECT count(*) FROM got");
    eprintln!(
        "kafka rebalance: {n} messages, {total} rows; a third consumer joined at {joined} and left at {left} \
         ({} read twice)",
        total - n
    );
}

#[tokio::test]
async fn sql_insert_and_sql_select_round_trip_through_mariadb() {
    let dir = tempfile::tempdir().unwrap();
    let table = format!("items_{}", suffix());
    mariadb(&format!(
        "CREATE TABLE {table} (id BIGINT PRIMARY KEY, name VARCHAR(64) NOT NULL, price DOUBLE)"
    ));
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    let dsn = "mysql://root@127.0.0.1:3306/test";
    // 507 messages for 500 ids (ids 1-7 twice): the upsert suffix keeps one row each. The args_mapping fails
    // for id 13: that message alone goes to the dead letter.
    let dead = dir.path().join("dead.jsonl");
    let (status, saved) = api
        .post(
            "/api/v1/streams",
            json!({"name": "load", "config": {
                "input": {"generate": {"count": 507, "payload": "{\"n\":{{seq}}}"}},
                "pipeline": {"processors": [{"mapping": "n = to_int!(.n)\n.id = if n > 500 { n - 500 } else { n }\n.name = \"item \" + to_string(.id)\n.price = to_float(.id) * 1.5"}]},
                "output": {"sql_insert": {"driver": "mysql", "dsn": dsn, "table": table,
                                          "columns": ["id", "name", "price"],
                                          "args_mapping": "assert!(.id != 13, message: \"thirteen is not for sale\")\n[.id, .name, .price]",
                                          "suffix": "ON DUPLICATE KEY UPDATE name = VALUES(name)"}},
                "on_error": {"dead_letter": {"file": {"path": dead}}}
            }}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    let load = saved["id"].as_str().unwrap().to_string();
    wait_status(&api, &load, "completed", Duration::from_secs(60)).await;
    assert_eq!(mariadb(&format!("SELECT count(*) FROM {table}")), "499");
    assert_eq!(
        mariadb(&format!("SELECT name, price FROM {table} WHERE id = 7")),
        "item 7\t10.5"
    );
    assert_eq!(lines(&dead).len(), 1, "id 13 goes to the dead letter");

    // Read them back in pages past a checkpoint column.
    let out = dir.path().join("rows.jsonl");
    let (status, saved) = api
        .post(
            "/api/v1/streams",
            json!({"name": "read", "config": {
                "input": {"sql_select": {"driver": "mysql", "dsn": dsn, "table": table,
                                         "columns": ["id", "name", "price"], "where": "price >= 3",
                                         "checkpoint_column": "id", "page_size": 100}},
                "output": {"file": {"path": out}}
            }}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    let read = saved["id"].as_str().unwrap().to_string();
    wait_status(&api, &read, "completed", Duration::from_secs(60)).await;
    let rows: Vec<Value> = lines(&out)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // price >= 3 leaves out id 1; 13 was never inserted.
    assert_eq!(rows.len(), 498);
    assert_eq!(rows[0], json!({"id": 2, "name": "item 2", "price": 3.0}));
    let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "rows out of order");

    // Run it again after new rows came: it reads on past its checkpoint, kept in the standalone's SQLite store.
    mariadb(&format!(
        "INSERT INTO {table} (id, name, price) VALUES (600, 'item 600', 900), (601, 'item 601', 901.5)"
    ));
    let (status, _) = api
        .post(
            &format!("/api/v1/streams/{read}/status"),
            json!({"status": "active"}),
        )
        .await;
    assert_eq!(status, 200);
    eventually("the two new rows", Duration::from_secs(60), || async {
        (lines(&out).len() >= 500).then_some(())
    })
    .await;
    wait_status(&api, &read, "completed", Duration::from_secs(60)).await;
    let rows = lines(&out);
    assert_eq!(rows.len(), 500, "read from the start again: {}", rows.len());
    assert_eq!(
        serde_json::from_str::<Value>(&rows[499]).unwrap(),
        json!({"id": 601, "name": "item 601", "price": 901.5})
    );
    mariadb(&format!("DROP TABLE {table}"));
}

#[tokio::test]
async fn sql_select_reads_on_from_its_checkpoint_when_its_worker_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let store = PgDb::new();
    let db = PgDb::new();
    let n = 50_000u64;
    psql(
        &db.url(),
        &format!(
            "CREATE TABLE events (id BIGINT PRIMARY KEY, body TEXT NOT NULL);
             INSERT INTO events SELECT i, 'event ' || i FROM generate_series(1, {n}) AS i;
             CREATE TABLE copied (id BIGINT NOT NULL, body TEXT NOT NULL)"
        ),
    );
    let (_coordinator, base) = coordinator(dir.path(), &store);
    let mut w1 = worker(dir.path(), &base, "w1");
    let api = Api::login(&base).await;
    let config = json!({
        "input": {"sql_select": {"driver": "postgres", "dsn": db.url(), "table": "events",
                                 "columns": ["id", "body"], "checkpoint_column": "id", "page_size": 100,
                                 "interval": "200ms"}},
        "output": {"sql_insert": {"driver": "postgres", "dsn": db.url(), "table": "copied",
                                  "columns": ["id", "body"], "args_mapping": "[.id, .body]"}}
    });
    let (status, saved) = api
        .post("/api/v1/streams", json!({"name": "copy", "config": config}))
        .await;
    assert_eq!(status, 201, "{saved}");
    let count = |sql: &str| psql(&db.url(), sql).parse::<u64>().unwrap();
    eventually("rows copied", Duration::from_secs(90), || async {
        (count("SELECT count(*) FROM copied") >= 3_000).then_some(())
    })
    .await;
    w1.kill();
    let before = count("SELECT count(*) FROM copied");
    assert!(
        before < n,
        "killed after the whole table was read ({before}): add rows"
    );

    // Another worker reads on from the checkpoint the coordinator kept, then polls for new rows.
    let _w2 = worker(dir.path(), &base, "w2");
    eventually(
        "the whole table copied",
        Duration::from_secs(120),
        || async { (count("SELECT count(DISTINCT id) FROM copied") == n).then_some(()) },
    )
    .await;
    psql(
        &db.url(),
        &format!(
            "INSERT INTO events SELECT i, 'event ' || i FROM generate_series({}, {}) AS i",
            n + 1,
            n + 500
        ),
    );
    eventually("the new rows copied", Duration::from_secs(60), || async {
        (count("SELECT count(DISTINCT id) FROM copied") == n + 500).then_some(())
    })
    .await;
    let total = count("SELECT count(*) FROM copied");
    eprintln!(
        "sql_select: {} rows, {total} copied ({} again after kill -9 at {before})",
        n + 500,
        total - n - 500
    );
    assert!(
        total < n + 500 + before / 2,
        "the second worker read the table from the start ({total} rows for {})",
        n + 500
    );
    assert_eq!(
        count("SELECT count(*) FROM copied WHERE body <> 'event ' || id"),
        0
    );
}
