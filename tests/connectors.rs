//! End-to-end tests of the connectors against the real systems on this machine: Kafka (the tansu broker that
//! `scripts/services` starts on 127.0.0.1:9092) into PostgreSQL through a worker killed mid-run, PostgreSQL change
//! data capture across a restart, and MariaDB through sql_insert and sql_select.

#[path = "support/mod.rs"]
mod support;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use support::{
    Api, PgDb, coordinator, eventually, lines, psql, standalone, stream, suffix, wait_status,
    worker,
};

const BROKERS: &str = "127.0.0.1:9092";

fn mariadb(sql: &str) -> String {
    let out = std::process::Command::new("mariadb")
        .args([
            "-h",
            "127.0.0.1",
            "-u",
            "root",
            "-N",
            "-B",
            "test",
            "-e",
            sql,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mariadb {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

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
async fn mysql_cdc_delivers_every_change_in_order_per_row_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let table = format!("cdc_{}", suffix());
    mariadb(&format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, price DECIMAL(10,2), \
         seen DATETIME, big BIGINT UNSIGNED); CREATE TABLE {table}_other (id INT PRIMARY KEY)"
    ));
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    let out = dir.path().join("changes.jsonl");
    let (status, saved) = api
        .post(
            "/api/v1/streams",
            json!({"name": "mysql-cdc", "config": {
                "input": {"mysql_cdc": {"dsn": "mysql://root@127.0.0.1:3306/test",
                                        "tables": [format!("test.{table}")]}},
                "output": {"file": {"path": out}}
            }}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    let id = saved["id"].as_str().unwrap().to_string();
    eventually(
        "the stream to read the log",
        Duration::from_secs(60),
        || async { (stream(&api, &id).await["replicas"][0]["state"] == "running").then_some(()) },
    )
    .await;

    // What each row goes through, as (op, name) after the change.
    let mut expected: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let mut change = |sql: &str, rows: &[(i64, String)]| {
        mariadb(sql);
        for (id, what) in rows {
            expected.entry(*id).or_default().push(what.clone());
        }
    };
    for i in 1..=30 {
        change(
            &format!(
                "INSERT INTO {table} VALUES ({i}, 'u{i}', {i}.25, '2026-12-03 10:00:0{}', 18446744073709551615)",
                i % 10
            ),
            &[(i, format!("insert u{i}"))],
        );
    }
    // One transaction of several rows, and a table the input leaves out.
    change(
        &format!(
            "BEGIN; UPDATE {table} SET name = CONCAT('v', id) WHERE id % 2 = 1; \
             INSERT INTO {table}_other VALUES (1); COMMIT"
        ),
        &(1..=30)
            .step_by(2)
            .map(|i| (i, format!("update v{i}")))
            .collect::<Vec<_>>(),
    );
    let tested = format!("test.{table}");
    eventually("the first changes", Duration::from_secs(60), || async {
        (changes_by_row(&out, &tested)
            .values()
            .map(Vec::len)
            .sum::<usize>()
            >= 45)
            .then_some(())
    })
    .await;
    // Values keep their types; an update carries the row before it.
    let first: Vec<Value> = lines(&out)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let insert = first.iter().find(|v| v["op"] == "insert").unwrap();
    assert_eq!(insert["new"]["id"], 1, "{insert}");
    assert_eq!(insert["new"]["price"], 1.25, "{insert}");
    assert_eq!(insert["new"]["seen"], "2026-12-03 10:00:01", "{insert}");
    assert_eq!(
        insert["new"]["big"],
        json!(18446744073709551615u64),
        "{insert}"
    );
    assert_eq!(insert["old"], Value::Null);
    let update = first.iter().find(|v| v["op"] == "update").unwrap();
    assert_eq!(update["old"]["name"], "u1", "{update}");
    assert_eq!(update["new"]["name"], "v1", "{update}");

    // Restart the stream (pause, change rows while it is down, resume): it reads on from its checkpoint.
    set_status(&api, &id, "paused").await;
    for i in 1..=10 {
        change(
            &format!("UPDATE {table} SET name = 'w{i}' WHERE id = {i}"),
            &[(i, format!("update w{i}"))],
        );
    }
    change(
        &format!("DELETE FROM {table} WHERE id >= 25"),
        &(25..=30)
            .map(|i| (i, "delete".to_string()))
            .collect::<Vec<_>>(),
    );
    set_status(&api, &id, "active").await;
    let total: usize = expected.values().map(Vec::len).sum();
    let delivered = every_change_in_order(&out, &tested, &expected).await;
    eprintln!("mysql_cdc: {total} changes, {delivered} delivered");
    assert!(
        delivered < total + 45,
        "the restarted stream read from the start instead of its checkpoint ({delivered} of {total})"
    );
    mariadb(&format!("DROP TABLE {table}, {table}_other"));
}

/// The changes a CDC stream wrote to `out` (JSON lines, all of `table`), by row id, each as `insert NAME`,
/// `update NAME` or `delete`.
fn changes_by_row(out: &std::path::Path, table: &str) -> BTreeMap<i64, Vec<String>> {
    let mut by_row: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for l in lines(out) {
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["table"], table, "{v}");
        let op = v["op"].as_str().unwrap();
        let row = if op == "delete" { &v["old"] } else { &v["new"] };
        let name = if op == "delete" {
            String::new()
        } else {
            format!(" {}", row["name"].as_str().unwrap())
        };
        by_row
            .entry(row["id"].as_i64().unwrap())
            .or_default()
            .push(format!("{op}{name}"));
    }
    by_row
}

/// Waits until every row of `table` went through its `expected` changes in order (a change may come twice), and
/// checks that no change came that was not made; answers how many were delivered.
async fn every_change_in_order(
    out: &std::path::Path,
    table: &str,
    expected: &BTreeMap<i64, Vec<String>>,
) -> usize {
    eventually("every change", Duration::from_secs(60), || async {
        let got = changes_by_row(out, table);
        expected
            .iter()
            .all(|(row, want)| got.get(row).is_some_and(|g| in_order(want, g)))
            .then_some(())
    })
    .await;
    let got = changes_by_row(out, table);
    for (row, g) in &got {
        let want: HashSet<&String> = expected[row].iter().collect();
        assert!(
            g.iter().all(|c| want.contains(c)),
            "row {row}: unexpected change in {g:?}"
        );
    }
    got.values().map(Vec::len).sum()
}

/// Pauses (waiting until no replica runs) or resumes a stream.
async fn set_status(api: &Api, id: &str, status: &str) {
    let (code, body) = api
        .post(
            &format!("/api/v1/streams/{id}/status"),
            json!({ "status": status }),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    if status == "paused" {
        eventually("the stream to stop", Duration::from_secs(60), || async {
            let s = stream(api, id).await;
            s["replicas"].as_array().unwrap().is_empty().then_some(())
        })
        .await;
    }
}

/// True when `expected` appears in `got` in order (other items may repeat between them).
fn in_order(expected: &[String], got: &[String]) -> bool {
    let mut it = got.iter();
    expected.iter().all(|e| it.any(|g| g == e))
}

#[tokio::test]
async fn postgres_cdc_delivers_every_change_in_order_per_row_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = PgDb::new();
    let url = db.url();
    psql(
        &url,
        "CREATE TABLE users (id INT PRIMARY KEY, name TEXT NOT NULL); ALTER TABLE users REPLICA IDENTITY FULL",
    );
    let slot = format!("airtruct_{}", suffix());
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    let out = dir.path().join("changes.jsonl");
    let (status, saved) = api
        .post(
            "/api/v1/streams",
            json!({"name": "cdc", "config": {
                "input": {"postgres_cdc": {"dsn": url, "slot": slot, "tables": ["public.users"],
                                           "poll_interval": "50ms"}},
                "output": {"file": {"path": out}}
            }}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    let id = saved["id"].as_str().unwrap().to_string();
    eventually("the slot to exist", Duration::from_secs(60), || async {
        (psql(
            &url,
            &format!("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}'"),
        ) == "1")
            .then_some(())
    })
    .await;

    // What each row goes through, as (op, name) after the change.
    let mut expected: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let mut change = |sql: &str, id: i64, what: &str| {
        psql(&url, sql);
        expected.entry(id).or_default().push(what.to_string());
    };
    for i in 1..=30 {
        change(
            &format!("INSERT INTO users VALUES ({i}, 'u{i}')"),
            i,
            &format!("insert u{i}"),
        );
    }
    for i in (1..=30).step_by(2) {
        change(
            &format!("UPDATE users SET name = 'v{i}' WHERE id = {i}"),
            i,
            &format!("update v{i}"),
        );
    }
    eventually("the first changes", Duration::from_secs(60), || async {
        (changes_by_row(&out, "public.users")
            .values()
            .map(Vec::len)
            .sum::<usize>()
            >= 45)
            .then_some(())
    })
    .await;

    // Restart the stream (pause, change rows while it is down, resume): the slot kept the changes.
    set_status(&api, &id, "paused").await;
    for i in 1..=10 {
        change(
            &format!("UPDATE users SET name = 'w{i}' WHERE id = {i}"),
            i,
            &format!("update w{i}"),
        );
    }
    for i in 25..=30 {
        change(&format!("DELETE FROM users WHERE id = {i}"), i, "delete");
    }
    set_status(&api, &id, "active").await;
    let total: usize = expected.values().map(Vec::len).sum();
    let delivered = every_change_in_order(&out, "public.users", &expected).await;
    eprintln!("postgres_cdc: {total} changes, {delivered} delivered");
    // The slot stands past what was delivered; drop it so the database can go.
    let (status, _) = api
        .call("DELETE", &format!("/api/v1/streams/{id}"), None)
        .await;
    assert_eq!(status, 204);
    eventually("the slot to be free", Duration::from_secs(60), || async {
        let r = std::process::Command::new("psql")
            .args([
                &url,
                "-Atqc",
                &format!("SELECT pg_drop_replication_slot('{slot}')"),
            ])
            .output()
            .unwrap();
        r.status.success().then_some(())
    })
    .await;
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
