//! Processors that reach out through the capabilities their stream grants, end to end on `airtruct standalone`:
//! HTTP enrichment from a local API (and a host the operator's policy denies), a PostgreSQL lookup, a Redis cache
//! serving a second run, `dedupe` across a restart, grants checked at validation, and an uploaded 0.2.0
//! component beside an uploaded 0.1.0 one. PostgreSQL and Redis on their standard ports (the test command starts
//! them).

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use airtruct_builtins::fixtures;
use serde_json::{Value, json};
use support::{Api, PgDb, lines, psql, standalone, suffix, upload, wait_status};

const WAIT: Duration = Duration::from_secs(90);

fn redis(args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .args(args)
        .output()
        .expect("redis-cli runs");
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A local API: `GET /users/{id}` answers `{"id", "name": "user-<id>", "tier"}`, `POST /audit` takes anything;
/// every request is counted.
struct UsersApi {
    addr: std::net::SocketAddr,
    gets: Arc<AtomicU64>,
    posts: Arc<AtomicU64>,
}

async fn users_api() -> UsersApi {
    let gets = Arc::new(AtomicU64::new(0));
    let posts = Arc::new(AtomicU64::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (g, p) = (gets.clone(), posts.clone());
    let app = axum::Router::new()
        .route(
            "/users/{id}",
            axum::routing::get(move |axum::extract::Path(id): axum::extract::Path<u64>| {
                let g = g.clone();
                async move {
                    g.fetch_add(1, Ordering::SeqCst);
                    axum::Json(json!({"id": id, "name": format!("user-{id}"), "tier": "gold"}))
                }
            }),
        )
        .route(
            "/audit",
            axum::routing::post(move || {
                let p = p.clone();
                async move {
                    p.fetch_add(1, Ordering::SeqCst);
                    "ok"
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    UsersApi { addr, gets, posts }
}

fn json_lines(path: &std::path::Path) -> Vec<Value> {
    lines(path)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

async fn save(api: &Api, name: &str, config: Value) -> String {
    let (status, saved) = api
        .post("/api/v1/streams", json!({"name": name, "config": config}))
        .await;
    assert_eq!(status, 201, "{saved}");
    saved["id"].as_str().unwrap().to_string()
}

/// Every problem of a refused stream, as `(path, message)`.
async fn refusal(api: &Api, config: Value) -> Vec<(String, String)> {
    let (status, body) = api
        .post(
            "/api/v1/streams",
            json!({"name": "refused", "config": config}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["path"].as_str().unwrap().to_string(),
                d["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn has(problems: &[(String, String)], path: &str, words: &str) -> bool {
    problems.iter().any(|(p, m)| p == path && m.contains(words))
}

#[tokio::test]
async fn an_http_enrichment_merges_each_answer_and_a_host_the_policy_denies_fails_each_message_with_its_words()
 {
    let dir = tempfile::tempdir().unwrap();
    let users = users_api().await;
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    let out = dir.path().join("enriched.jsonl");
    let port = users.addr.port();
    let id = save(
        &api,
        "enrich",
        json!({
            "resources": {"http": {"users": {"hosts": [format!("127.0.0.1:{port}")]}}},
            "input": {"generate": {"count": 20, "payload": "{\"id\": {{seq}}}"}},
            "pipeline": {"processors": [
                {"http": {"resource": "users", "url": format!("http://127.0.0.1:{port}/users/{{id}}"), "target": "user"}}
            ]},
            "output": {"file": {"path": out}}
        }),
    )
    .await;
    wait_status(&api, &id, "completed", WAIT).await;
    let got = json_lines(&out);
    assert_eq!(got.len(), 20);
    for m in &got {
        let id = m["id"].as_u64().unwrap();
        assert_eq!(m["user"]["name"], format!("user-{id}"), "{m}");
        assert_eq!(m["user"]["tier"], "gold");
    }
    assert_eq!(users.gets.load(Ordering::SeqCst), 20);

    // The same processor, granted any host, pointed at the cloud metadata address the policy always denies: each
    // message fails with the policy's words, and the stream (and the server) keep going.
    let denied = json!({
        "resources": {"http": {"anywhere": {"hosts": ["*"]}}},
        "input": {"generate": {"count": 10, "payload": "{\"id\": {{seq}}}"}},
        "pipeline": {"processors": [
            {"http": {"resource": "anywhere", "url": "http://169.254.169.254/latest/meta-data/{id}"}}
        ]},
        "output": {"drop": {}}
    });
    let (status, tried) = api
        .post(
            "/api/v1/streams/test",
            json!({"config": denied, "messages": [{"payload": {"id": 1}}, {"payload": {"id": 2}}]}),
        )
        .await;
    assert_eq!(status, 200, "{tried}");
    for r in tried["results"].as_array().unwrap() {
        let error = r["steps"][0]["output"][0]["error"]
            .as_str()
            .unwrap_or_default();
        assert!(error.contains("169.254.169.254"), "{tried}");
        assert!(error.contains("egress policy"), "{tried}");
    }
    let denied_id = save(&api, "denied", denied).await;
    let done = wait_status(&api, &denied_id, "completed", WAIT).await;
    assert_eq!(done["failed"], 10, "{done}");
    assert_eq!(done["sent"], 0, "{done}");
    let (status, _) = api.call("GET", "/healthz", None).await;
    assert_eq!(status, 200);

    // In the test endpoint, a call with a side effect (a POST) is refused unless asked for.
    let audit = json!({
        "resources": {"http": {"users": {"hosts": [format!("127.0.0.1:{port}")], "methods": ["POST"]}}},
        "pipeline": {"processors": [
            {"http": {"resource": "users", "url": format!("http://127.0.0.1:{port}/audit"), "method": "POST"}}
        ]}
    });
    let (_, plain) = api
        .post(
            "/api/v1/streams/test",
            json!({"config": audit, "messages": [{"payload": {"a": 1}}]}),
        )
        .await;
    let error = plain["results"][0]["steps"][0]["output"][0]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("does not allow side effects"), "{plain}");
    assert_eq!(users.posts.load(Ordering::SeqCst), 0);
    let (_, asked) = api
        .post(
            "/api/v1/streams/test",
            json!({"config": audit, "messages": [{"payload": {"a": 1}}], "allow_side_effects": true}),
        )
        .await;
    assert_eq!(
        asked["results"][0]["steps"][0]["output"][0]["payload"], "ok",
        "{asked}"
    );
    assert_eq!(users.posts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_postgres_lookup_enriches_messages_and_its_read_only_connection_refuses_a_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = PgDb::new();
    psql(
        &db.url(),
        "CREATE TABLE users (id int PRIMARY KEY, name text, tier text); \
         INSERT INTO users VALUES (1, 'ann', 'gold'), (2, 'bob', 'silver'), (3, 'cy', 'bronze')",
    );
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    let out = dir.path().join("looked-up.jsonl");
    let resources = json!({"sql": {"db": {"driver": "postgres", "dsn": db.url()}}});
    let id = save(
        &api,
        "lookup",
        json!({
            "resources": resources,
            "input": {"generate": {"count": 4, "payload": "{\"user_id\": {{seq}}}"}},
            "pipeline": {"processors": [
                {"sql": {"resource": "db", "table": "users", "columns": ["name", "tier"],
                         "where": "id = $1", "args": ["user_id"], "result": "first", "target": "user"}}
            ]},
            "output": {"file": {"path": out}}
        }),
    )
    .await;
    wait_status(&api, &id, "completed", WAIT).await;
    let got = json_lines(&out);
    let users: Vec<(u64, Value)> = got
        .iter()
        .map(|m| (m["user_id"].as_u64().unwrap(), m["user"].clone()))
        .collect();
    assert_eq!(
        users,
        vec![
            (1, json!({"name": "ann", "tier": "gold"})),
            (2, json!({"name": "bob", "tier": "silver"})),
            (3, json!({"name": "cy", "tier": "bronze"})),
            (4, Value::Null),
        ]
    );

    // A statement that writes, on a connection that does not allow writes, fails the message; nothing changed.
    let (status, tried) = api
        .post(
            "/api/v1/streams/test",
            json!({"config": {"resources": resources, "pipeline": {"processors": [
                {"sql": {"resource": "db", "query": "INSERT INTO users VALUES (9, 'eve', 'x')"}}
            ]}}, "messages": [{"payload": {}}], "allow_side_effects": true}),
        )
        .await;
    assert_eq!(status, 200, "{tried}");
    let error = tried["results"][0]["steps"][0]["output"][0]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("read-only"), "{tried}");
    assert_eq!(psql(&db.url(), "SELECT count(*) FROM users"), "3");

    // A connection that allows writes: a test writes only when asked to.
    let insert = |allow: bool| {
        json!({"config": {
            "resources": {"sql": {"db": {"driver": "postgres", "dsn": db.url(), "writes": true}}},
            "pipeline": {"processors": [
                {"sql": {"resource": "db", "query": "INSERT INTO users VALUES (9, 'eve', 'x')"}}
            ]}}, "messages": [{"payload": {}}], "allow_side_effects": allow})
    };
    let (_, tried) = api.post("/api/v1/streams/test", insert(false)).await;
    let error = tried["results"][0]["steps"][0]["output"][0]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("does not allow side effects"), "{tried}");
    assert_eq!(psql(&db.url(), "SELECT count(*) FROM users"), "3");
    let (_, tried) = api.post("/api/v1/streams/test", insert(true)).await;
    assert!(
        tried["results"][0]["steps"][0]["output"][0]["error"].is_null(),
        "{tried}"
    );
    assert_eq!(psql(&db.url(), "SELECT count(*) FROM users"), "4");
}

#[tokio::test]
async fn a_redis_cache_serves_the_second_run_from_cache() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_api().await;
    let port = users.addr.port();
    let prefix = format!("enrich-{}:", suffix());
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    // The Benthos shape: a branch asks the cache; what it misses is fetched and stored in a catch.
    let config = |out: &std::path::Path| {
        json!({
            "resources": {
                "caches": {"users": {"redis": {"url": "redis://127.0.0.1:6379", "prefix": prefix, "ttl": "10m"}}},
                "http": {"api": {"hosts": [format!("127.0.0.1:{port}")]}}
            },
            "input": {"generate": {"count": 5, "payload": "{\"id\": {{seq}}, \"order\": \"o{{seq}}\"}"}},
            "pipeline": {"processors": [{"branch": {
                "request_map": "{\"id\": .id}",
                "processors": [
                    {"cache": {"resource": "users", "operator": "get", "key": "{id}"}},
                    {"catch": [
                        {"http": {"resource": "api", "url": format!("http://127.0.0.1:{port}/users/{{id}}")}},
                        {"cache": {"resource": "users", "operator": "set", "key": "{id}"}}
                    ]}
                ],
                "result_map": "{\"user\": {\"name\": .name}}"
            }}]},
            "output": {"file": {"path": out}}
        })
    };
    let first = dir.path().join("first.jsonl");
    let id = save(&api, "cached-1", config(&first)).await;
    wait_status(&api, &id, "completed", WAIT).await;
    assert_eq!(
        users.gets.load(Ordering::SeqCst),
        5,
        "each user fetched once"
    );
    let second = dir.path().join("second.jsonl");
    let id = save(&api, "cached-2", config(&second)).await;
    wait_status(&api, &id, "completed", WAIT).await;
    assert_eq!(
        users.gets.load(Ordering::SeqCst),
        5,
        "the second run was served from the cache"
    );
    for out in [&first, &second] {
        let got = json_lines(out);
        assert_eq!(got.len(), 5);
        for m in got {
            let id = m["id"].as_u64().unwrap();
            assert_eq!(m["user"]["name"], format!("user-{id}"), "{m}");
            assert_eq!(m["order"], format!("o{id}"));
        }
    }
    assert_eq!(
        redis(&["GET", &format!("{prefix}3")]).trim(),
        r#"{"id":3,"name":"user-3","tier":"gold"}"#
    );
    for n in 1..=5 {
        redis(&["DEL", &format!("{prefix}{n}")]);
    }
}

#[tokio::test]
async fn dedupe_drops_a_repeated_key_across_a_restart_of_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("dedupe-{}:", suffix());
    let write = |name: &str, ids: &[u64]| {
        let path = dir.path().join(name);
        let text: String = ids.iter().map(|i| format!("{{\"id\":{i}}}\n")).collect();
        std::fs::write(&path, text).unwrap();
        path
    };
    let config = |input: &std::path::Path, out: &std::path::Path| {
        json!({
            "resources": {"caches": {"seen": {"redis": {"url": "redis://127.0.0.1:6379", "prefix": prefix}}}},
            "input": {"file": {"path": input}},
            "pipeline": {"processors": [{"dedupe": {"resource": "seen", "key": "{id}", "ttl": "1h"}}]},
            "output": {"file": {"path": out}}
        })
    };
    let ids = |path: &std::path::Path| -> Vec<u64> {
        json_lines(path)
            .iter()
            .map(|m| m["id"].as_u64().unwrap())
            .collect()
    };
    let (in1, out1) = (
        write("in1.jsonl", &[1, 2, 2, 3, 1]),
        dir.path().join("out1.jsonl"),
    );
    let (in2, out2) = (
        write("in2.jsonl", &[3, 4, 4, 5]),
        dir.path().join("out2.jsonl"),
    );
    let (mut p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    let id = save(&api, "dedupe", config(&in1, &out1)).await;
    wait_status(&api, &id, "completed", WAIT).await;
    assert_eq!(ids(&out1), vec![1, 2, 3]);

    // The server stops; when it is back, the stream's new version reads more: keys seen before are dropped.
    p.terminate();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    let (status, body) = api
        .put(
            &format!("/api/v1/streams/{id}"),
            json!({"name": "dedupe", "config": config(&in2, &out2)}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_status(&api, &id, "completed", WAIT).await;
    assert_eq!(ids(&out2), vec![4, 5]);
    for n in 1..=5 {
        redis(&["DEL", &format!("{prefix}{n}")]);
    }
}

#[tokio::test]
async fn a_processor_asking_for_a_capability_its_stream_does_not_grant_is_refused_at_validation_with_its_path()
 {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    let (status, body) = upload(&api, "seen", fixtures::SEEN).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["contract"], "0.2.0");
    assert_eq!(body["capabilities"], json!(["cache"]));
    let stream = |resources: Value, processors: Value| {
        json!({"resources": resources, "input": {"generate": {"count": 1}},
               "pipeline": {"processors": processors}, "output": {"drop": {}}})
    };
    let caches =
        json!({"caches": {"mem": {"memory": {}}}, "http": {"api": {"hosts": ["127.0.0.1:9"]}}});

    let problems = refusal(
        &api,
        stream(
            caches.clone(),
            json!([{"wasm": {"name": "seen", "config": {"cache": "mem"}}}]),
        ),
    )
    .await;
    assert!(
        has(
            &problems,
            "config.pipeline.processors[0].wasm.grants",
            "asks for cache (resources.caches)"
        ),
        "{problems:?}"
    );
    let problems = refusal(
        &api,
        stream(
            caches.clone(),
            json!([{"wasm": {"name": "seen", "config": {"cache": "mem"}, "grants": ["api", "nope"]}}]),
        ),
    )
    .await;
    assert!(
        has(
            &problems,
            "config.pipeline.processors[0].wasm.grants[1]",
            "no resource \"nope\""
        ),
        "{problems:?}"
    );
    assert!(
        has(
            &problems,
            "config.pipeline.processors[0].wasm.grants",
            "asks for cache"
        ),
        "{problems:?}"
    );

    // Built-in processors are granted the resource their options name, at any depth.
    let problems = refusal(
        &api,
        stream(
            caches.clone(),
            json!([
                {"dedupe": {"resource": "nope", "key": "{id}"}},
                {"catch": [{"http": {"resource": "mem", "url": "http://127.0.0.1:9/"}}]}
            ]),
        ),
    )
    .await;
    assert!(
        has(
            &problems,
            "config.pipeline.processors[0].dedupe.resource",
            "no cache resource \"nope\""
        ),
        "{problems:?}"
    );
    assert!(
        has(
            &problems,
            "config.pipeline.processors[1].catch[0].http.resource",
            "\"mem\" is a cache resource"
        ),
        "{problems:?}"
    );

    // Resources are checked like any connector's options, under the operator's policy, and secrets only in their
    // credential fields.
    let problems = refusal(
        &api,
        stream(
            json!({"caches": {"c": {"redis": {"url": "redis://169.254.169.254:6379"}}},
                   "http": {"bad name": {"hosts": ["http://x/"]}},
                   "sql": {"db": {"driver": "postgres", "dsn": "mysql://x"}},
                   "rate_limits": {"r": {"local": {"count": 0, "interval": "1s"}}}}),
            json!([]),
        ),
    )
    .await;
    for (path, words) in [
        ("config.resources.caches.c.redis.url", "egress policy"),
        ("config.resources.http.bad name", "letters, digits"),
        ("config.resources.http.bad name.hosts[0]", "write the host"),
        ("config.resources.sql.db.dsn", "postgres"),
        ("config.resources.rate_limits.r.local.count", "at least 1"),
    ] {
        assert!(
            has(&problems, path, words),
            "no \"{words}\" at {path}: {problems:?}"
        );
    }
    // Every broken resource is reported at once; a processor naming one that is declared but broken is not
    // reported again.
    let problems = refusal(
        &api,
        stream(
            json!({"caches": {"a": {"redis": {}}, "s": {"memory": {"capacity": 0}}},
                   "sql": {"b": {"driver": "postgres"}}, "http": {"c": {}}}),
            json!([{"cache": {"resource": "s", "operator": "get", "key": "{id}"}}]),
        ),
    )
    .await;
    for (path, words) in [
        ("config.resources.caches.a.redis", "url"),
        ("config.resources.caches.s.memory.capacity", "at least 1"),
        ("config.resources.sql.b", "dsn"),
        ("config.resources.http.c", "hosts"),
    ] {
        assert!(
            has(&problems, path, words),
            "no \"{words}\" at {path}: {problems:?}"
        );
    }
    assert!(
        !problems
            .iter()
            .any(|(p, _)| p.starts_with("config.pipeline")),
        "{problems:?}"
    );
    let problems = refusal(
        &api,
        stream(json!({"caches": {"c": {"redis": {"url": "redis://127.0.0.1:6379", "prefix": "${secret:x}"}}}}), json!([])),
    )
    .await;
    assert!(
        has(
            &problems,
            "config.resources.caches.c.redis.prefix",
            "credential field"
        ),
        "{problems:?}"
    );
}

#[tokio::test]
async fn an_uploaded_0_2_0_component_and_an_uploaded_0_1_0_component_run_in_one_stream() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    let (status, v1) = upload(&api, "upper", fixtures::V1).await;
    assert_eq!(status, 201, "{v1}");
    assert_eq!(v1["contract"], "0.1.0");
    assert_eq!(v1["capabilities"], json!([]));
    let (status, v2) = upload(&api, "seen", fixtures::SEEN).await;
    assert_eq!(status, 201, "{v2}");
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"k\":\"a\"}\n{\"k\":\"b\"}\n{\"k\":\"a\"}\n").unwrap();
    let out = dir.path().join("out.jsonl");
    let id = save(
        &api,
        "both",
        json!({
            "resources": {"caches": {"mem": {"memory": {"capacity": 100}}}},
            "input": {"file": {"path": input}},
            "pipeline": {"batch": {"size": 10, "period": "500ms"}, "processors": [
                {"wasm": {"name": "upper"}},
                {"wasm": {"name": "seen", "config": {"cache": "mem"}, "grants": ["mem"]}},
                {"mapping": ".seen = %seen"}
            ]},
            "output": {"file": {"path": out}}
        }),
    )
    .await;
    wait_status(&api, &id, "completed", WAIT).await;
    assert_eq!(
        json_lines(&out),
        vec![
            json!({"K": "A", "seen": "false"}),
            json!({"K": "B", "seen": "false"}),
            json!({"K": "A", "seen": "true"}),
        ]
    );
}

/// A JavaScript processor of the 0.2.0 contract, built by `scripts/build-js-processor` (which `scripts/test` runs).
fn js_tokenize() -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../processors-js/dist/tokenize.wasm");
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: run scripts/build-js-processor (scripts/test does)",
            path.display()
        )
    })
}

#[tokio::test]
async fn a_javascript_processor_calls_the_cache_it_is_granted() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    let (status, js) = upload(&api, "tokenize", &js_tokenize()).await;
    assert_eq!(status, 201, "{js}");
    assert_eq!(js["contract"], "0.2.0");
    assert_eq!(js["capabilities"], json!(["cache"]));
    let prefix = format!("tokens-{}:", suffix());
    let out = dir.path().join("tokenized.jsonl");
    let id = save(
        &api,
        "tokenize",
        json!({
            "resources": {"caches": {"tokens": {"redis": {"url": "redis://127.0.0.1:6379", "prefix": prefix}}}},
            "input": {"generate": {"count": 3, "payload": "{\"email\": \"u{{seq}}@example.org\", \"n\": {{seq}}}"}},
            "pipeline": {"processors": [
                {"wasm": {"name": "tokenize", "config": {"fields": ["email"], "cache": "tokens"}, "grants": ["tokens"]}}
            ]},
            "output": {"file": {"path": out}}
        }),
    )
    .await;
    wait_status(&api, &id, "completed", WAIT).await;
    let got = json_lines(&out);
    assert_eq!(got.len(), 3);
    for m in &got {
        let token = m["email"].as_str().unwrap();
        assert!(token.starts_with("tok_"), "{m}");
        let n = m["n"].as_u64().unwrap();
        // The value behind each token is in Redis, where the stream's cache keeps it.
        assert_eq!(
            redis(&["GET", &format!("{prefix}{token}")]).trim(),
            format!("u{n}@example.org")
        );
        redis(&["DEL", &format!("{prefix}{token}")]);
    }
}

#[tokio::test]
async fn a_rate_limit_lets_messages_through_no_faster_than_its_rate() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    let out = dir.path().join("limited.jsonl");
    let started = std::time::Instant::now();
    // 10 at once, then 10 a second: 30 messages take two seconds at least, in one batch whose time limit (5 s by
    // default) does not count the waits.
    let id = save(
        &api,
        "limited",
        json!({
            "resources": {"rate_limits": {"slow": {"local": {"count": 10, "interval": "1s"}}}},
            "input": {"generate": {"count": 30, "payload": "{\"n\": {{seq}}}"}},
            "pipeline": {"processors": [{"rate_limit": {"resource": "slow"}}]},
            "output": {"file": {"path": out}}
        }),
    )
    .await;
    let done = wait_status(&api, &id, "completed", WAIT).await;
    assert_eq!(done["failed"], 0, "{done}");
    assert_eq!(lines(&out).len(), 30);
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "30 messages went through a limit of 10 a second in {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_operators_policy_limits_the_capabilities_streams_may_grant() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("airtruct.yaml");
    std::fs::write(&file, "policy:\n  capabilities: [cache]\n").unwrap();
    let mut cmd = support::airtruct(dir.path());
    cmd.args(["standalone", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--path-root")
        .arg(dir.path())
        .arg("--config")
        .arg(&file)
        .env("AIRTRUCT_ADMIN_PASSWORD", support::ADMIN_PASSWORD);
    let mut p = support::Proc::spawn("standalone", cmd);
    let base = p.wait_for_api();
    let api = Api::login(&base).await;
    let problems = refusal(
        &api,
        json!({
            "resources": {"caches": {"seen": {"memory": {}}}, "http": {"api": {"hosts": ["127.0.0.1:9"]}}},
            "input": {"generate": {"count": 1}},
            "pipeline": {"processors": [{"dedupe": {"resource": "seen", "key": "{id}"}}]},
            "output": {"drop": {}}
        }),
    )
    .await;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        has(
            &problems,
            "config.resources.http.api",
            "does not let streams grant processors the http capability (policy.capabilities: cache)"
        ),
        "{problems:?}"
    );
    // What the policy allows is saved and runs.
    let out = dir.path().join("kept.jsonl");
    let id = save(
        &api,
        "allowed",
        json!({
            "resources": {"caches": {"seen": {"memory": {}}}},
            "input": {"generate": {"count": 3, "payload": "{\"id\": 1}"}},
            "pipeline": {"processors": [{"dedupe": {"resource": "seen", "key": "{id}"}}]},
            "output": {"file": {"path": out}}
        }),
    )
    .await;
    wait_status(&api, &id, "completed", WAIT).await;
    assert_eq!(lines(&out).len(), 1);
}
