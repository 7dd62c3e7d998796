//! Change data capture end to end: `postgres_cdc` and `mysql_cdc` streams on `airtruct standalone` see every change
//! of a table, in order per row, across a pause and resume with changes made while they were down.

#[path = "support/mod.rs"]
mod support;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Api, PgDb, eventually, lines, mariadb, psql, standalone, stream, suffix};

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
