//! End-to-end tests of the control plane on `airtruct standalone`: login and tokens, every API path behind
//! credentials, saving and validating streams, versions and rollback, running, pausing, completing and failing
//! streams, secrets, and the test endpoint. Each test starts the real binary on its own port and data directory.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Api, WAIT, eventually, lines, standalone, stream, upload, wait_status};

#[tokio::test]
async fn every_api_path_needs_credentials_and_login_gives_them() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let anonymous = Api::new(&base);

    let (status, body) = anonymous
        .post(
            "/api/v1/auth/login",
            json!({"username": "admin", "password": "wrong"}),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "wrong username or password");
    let (status, _) = anonymous
        .post(
            "/api/v1/auth/login",
            json!({"username": "nobody", "password": "x"}),
        )
        .await;
    assert_eq!(status, 401);

    let api = Api::login(&base).await;
    let doc = api.get("/api/v1/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(
        paths.len() >= 20,
        "the document lists every path: {paths:?}"
    );

    // Walk the document: every operation that is not marked public answers 401 without credentials, and with
    // a made-up token.
    let mut forged = Api::new(&base);
    forged.token = Some("at_0000".into());
    let mut public = Vec::new();
    let mut checked = 0;
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            if op["security"] == json!([]) {
                public.push(format!("{} {path}", method.to_uppercase()));
                continue;
            }
            let concrete = path
                .replace("{id}", "x")
                .replace("{version}", "1")
                .replace("{name}", "x");
            for client in [&anonymous, &forged] {
                let (status, body) = client
                    .call(&method.to_uppercase(), &concrete, Some(json!({})))
                    .await;
                assert_eq!(
                    status, 401,
                    "{method} {path} answered {status} without valid credentials: {body}"
                );
                assert!(
                    body["error"].is_string(),
                    "{method} {path}: error envelope: {body}"
                );
            }
            checked += 1;
        }
    }
    public.sort();
    assert_eq!(
        public,
        [
            "GET /healthz",
            "GET /metrics",
            "GET /readyz",
            "POST /api/v1/auth/login"
        ],
        "only health, metrics and login are public"
    );
    assert!(checked >= 20);

    // Public paths answer without credentials.
    let (status, _) = anonymous.call("GET", "/healthz", None).await;
    assert_eq!(status, 200);
    let (status, _) = anonymous.call("GET", "/readyz", None).await;
    assert_eq!(status, 200);
    let (status, metrics) = anonymous.call("GET", "/metrics", None).await;
    assert_eq!(status, 200);
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("airtruct_workers_alive 1"),
        "{metrics}"
    );

    // API tokens for scripts: created once, listed without the token, revoked.
    let (status, created) = api
        .post("/api/v1/tokens", json!({"name": "ci", "expires_in": "1h"}))
        .await;
    assert_eq!(status, 201, "{created}");
    let mut script = Api::new(&base);
    script.token = Some(created["token"].as_str().unwrap().into());
    assert_eq!(script.get("/api/v1/auth/me").await["username"], "admin");
    let listed = api.get("/api/v1/tokens").await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "ci" && t.get("token").is_none())
    );
    let (status, _) = api
        .call(
            "DELETE",
            &format!("/api/v1/tokens/{}", created["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = script.call("GET", "/api/v1/auth/me", None).await;
    assert_eq!(status, 401, "a revoked token no longer works");

    // Logout revokes the session token.
    let (status, _) = api.call("POST", "/api/v1/auth/logout", None).await;
    assert_eq!(status, 204);
    let (status, _) = api.call("GET", "/api/v1/streams", None).await;
    assert_eq!(status, 401);

    // Guessing is throttled: after 5 failures in a row the name is refused for a minute, even with the right
    // password.
    for _ in 0..5 {
        let (status, _) = anonymous
            .post(
                "/api/v1/auth/login",
                json!({"username": "admin", "password": "guess"}),
            )
            .await;
        assert_eq!(status, 401);
    }
    let (status, body) = anonymous
        .post(
            "/api/v1/auth/login",
            json!({"username": "admin", "password": support::ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("too many failed logins"),
        "{body}"
    );
}

fn generate_to_file(out: &std::path::Path, count: u64, interval: &str) -> Value {
    json!({
        "input": {"generate": {"count": count, "interval": interval, "payload": "{\"n\":{{seq}}}"}},
        "pipeline": {"processors": [{"mapping": ".doubled = to_int!(.n) * 2"}]},
        "output": {"file": {"path": out}}
    })
}

#[tokio::test]
async fn refuses_an_invalid_active_save_keeps_versions_and_runs_a_stream_to_completion() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;

    // Active and invalid: 400 with every problem, nothing saved.
    let invalid = json!({
        "input": {"generate": {"count": "many"}},
        "pipeline": {"processors": [{"mapping": ".x = nope("}, {"filtr": "true"}]},
        "output": {"file": {}}
    });
    let (status, body) = api
        .post(
            "/api/v1/streams",
            json!({"name": "orders", "status": "active", "config": invalid}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let paths: Vec<&str> = body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    for expected in [
        "config.input.generate.count",
        "config.pipeline.processors[0].mapping",
        "config.pipeline.processors[1]",
        "config.output.file",
    ] {
        assert!(
            paths.iter().any(|p| p.starts_with(expected)),
            "no error at {expected}: {body}"
        );
    }
    assert_eq!(api.get("/api/v1/streams").await, json!([]));

    // The validate endpoint answers the same problems.
    let (status, report) = api
        .post("/api/v1/streams/validate", json!({"config": invalid}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(report["valid"], false);
    assert_eq!(
        report["errors"].as_array().unwrap().len(),
        body["details"].as_array().unwrap().len()
    );

    // Paused saves anything.
    let (status, saved) = api
        .post(
            "/api/v1/streams",
            json!({"name": "orders", "status": "paused", "config": invalid}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    let id = saved["id"].as_str().unwrap().to_string();
    assert_eq!(saved["version"], 1);
    assert_eq!(saved["status"], "paused");

    // Resuming an invalid stream is refused with its errors.
    let (status, body) = api
        .post(
            &format!("/api/v1/streams/{id}/status"),
            json!({"status": "active"}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(!body["details"].as_array().unwrap().is_empty());

    // A duplicate name is a conflict.
    let (status, _) = api
        .post(
            "/api/v1/streams",
            json!({"name": "orders", "status": "paused", "config": invalid}),
        )
        .await;
    assert_eq!(status, 409);

    // Fix it (as YAML text, as the console's YAML view sends it) and save as active: version 2 runs and
    // completes after its 50 messages.
    let out = dir.path().join("out.jsonl");
    let yaml = format!(
        "input:\n  generate: {{ count: 50, payload: '{{\"n\":{{{{seq}}}}}}' }}\npipeline:\n  processors:\n    - mapping: .doubled = to_int!(.n) * 2\noutput:\n  file: {{ path: {} }}\n",
        out.display()
    );
    let (status, saved) = api
        .put(
            &format!("/api/v1/streams/{id}"),
            json!({"name": "orders", "status": "active", "config": yaml}),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["version"], 2);
    let done = wait_status(&api, &id, "completed", WAIT).await;
    assert_eq!(done["received"], 50, "{done}");
    assert_eq!(done["sent"], 50, "{done}");
    assert_eq!(done["failed"], 0);
    assert_eq!(done["input_kind"], "generate");
    assert_eq!(done["output_kind"], "file");
    let written = lines(&out);
    assert_eq!(written.len(), 50);
    let last: Value = serde_json::from_str(&written[49]).unwrap();
    assert_eq!(last, json!({"n": 50, "doubled": 100}));

    // Versions, and a rollback to version 1 (invalid, so as paused) makes version 3 with version 1's config.
    let versions = api.get(&format!("/api/v1/streams/{id}/versions")).await;
    assert_eq!(
        versions
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [2, 1]
    );
    let (status, _) = api
        .post(
            &format!("/api/v1/streams/{id}/versions/1/rollback"),
            json!({}),
        )
        .await;
    assert_eq!(
        status, 400,
        "rolling back to an invalid config as active is refused"
    );
    let (status, rolled) = api
        .post(
            &format!("/api/v1/streams/{id}/versions/1/rollback"),
            json!({"status": "paused"}),
        )
        .await;
    assert_eq!(status, 200, "{rolled}");
    assert_eq!(rolled["version"], 3);
    assert_eq!(rolled["config"], invalid);
    let v2 = api.get(&format!("/api/v1/streams/{id}/versions/2")).await;
    assert_eq!(v2["config"]["input"]["generate"]["count"], 50);

    // Delete is real: the stream and its versions are gone.
    let (status, _) = api
        .call("DELETE", &format!("/api/v1/streams/{id}"), None)
        .await;
    assert_eq!(status, 204);
    let (status, body) = api
        .call("GET", &format!("/api/v1/streams/{id}"), None)
        .await;
    assert_eq!(status, 404);
    assert!(body["error"].as_str().unwrap().contains("not found"));
    let (status, _) = api
        .call("GET", &format!("/api/v1/streams/{id}/versions"), None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn pauses_and_resumes_a_running_stream_and_fails_one_that_keeps_failing() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    let out = dir.path().join("ticks.jsonl");
    let (status, saved) = api
        .post(
            "/api/v1/streams",
            json!({"name": "ticks", "config": generate_to_file(&out, 0, "10ms")}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    let id = saved["id"].as_str().unwrap().to_string();
    eventually("the stream to run and write", WAIT, || async {
        let s = stream(&api, &id).await;
        (s["replicas"][0]["state"] == "running" && s["sent"].as_u64().unwrap() >= 5).then_some(())
    })
    .await;

    // Pause: the worker stops it (nothing reported for it any more) and the file stops growing.
    let (status, paused) = api
        .post(
            &format!("/api/v1/streams/{id}/status"),
            json!({"status": "paused"}),
        )
        .await;
    assert_eq!(status, 200, "{paused}");
    eventually("the worker to stop the stream", WAIT, || async {
        stream(&api, &id).await["replicas"]
            .as_array()
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
    let n = lines(&out).len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(lines(&out).len(), n, "a paused stream writes nothing");

    // Resume: it runs again (the generate input starts over; the file grows).
    let (status, _) = api
        .post(
            &format!("/api/v1/streams/{id}/status"),
            json!({"status": "active"}),
        )
        .await;
    assert_eq!(status, 200);
    eventually("the resumed stream to write", WAIT, || async {
        (lines(&out).len() > n + 5).then_some(())
    })
    .await;
    let workers = api.get("/api/v1/workers").await;
    assert_eq!(workers[0]["name"], "standalone");
    assert_eq!(workers[0]["state"], "alive");
    assert!(
        workers[0]["streams"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["stream_id"] == id)
    );

    // The metrics carry the stream's counters.
    let (_, metrics) = api.call("GET", "/metrics", None).await;
    let metrics = metrics.as_str().unwrap().to_string();
    assert!(
        metrics.contains(&format!(
            "airtruct_stream_sent_total{{stream=\"{id}\",name=\"ticks\"}}"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("airtruct_worker_streams_running{"),
        "{metrics}"
    );
    // ...and each component's, by stream, component and kind; so does the API, in pipeline order.
    for component in [
        "component=\"input\",kind=\"generate\"",
        "component=\"output\",kind=\"file\"",
    ] {
        let line = format!("airtruct_component_sent_total{{stream=\"{id}\",{component}}}");
        let value: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .unwrap_or_else(|| panic!("no {line} in {metrics}"))
            .trim()
            .parse()
            .unwrap();
        assert!(value > 0, "{line} {value}");
    }
    // The Grafana dashboard in deploy/ queries only metrics the server exports.
    let dashboard: Value =
        serde_json::from_str(include_str!("../deploy/grafana/airtruct.json")).unwrap();
    let exported: std::collections::BTreeSet<&str> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            for name in expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("airtruct_"))
            {
                let family = name
                    .strip_suffix("_sum")
                    .or_else(|| name.strip_suffix("_count"))
                    .unwrap_or(name);
                assert!(
                    exported.contains(family),
                    "the dashboard's panel \"{}\" queries {name}, which /metrics does not export",
                    panel["title"]
                );
                queried += 1;
            }
        }
    }
    assert!(queried >= 20, "the dashboard queries {queried} metrics");
    let s = stream(&api, &id).await;
    let components: Vec<&str> = s["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["component"].as_str().unwrap())
        .collect();
    assert_eq!(
        components,
        ["input", "pipeline.processors[0]", "output"],
        "{s}"
    );
    assert_eq!(s["components"][1]["kind"], "mapping", "{s}");
    assert!(s["components"][2]["sent"].as_u64().unwrap() > 0, "{s}");

    // An output that cannot be opened (its folder is a file): retried with backoff, then failed with the reason
    // kept.
    std::fs::write(dir.path().join("blocker"), "").unwrap();
    let bad = json!({
        "input": {"generate": {"count": 1}},
        "output": {"file": {"path": dir.path().join("blocker/out.jsonl")}}
    });
    let (status, saved) = api
        .post("/api/v1/streams", json!({"name": "broken", "config": bad}))
        .await;
    assert_eq!(status, 201, "{saved}");
    let bad_id = saved["id"].as_str().unwrap().to_string();
    let failed = wait_status(&api, &bad_id, "failed", WAIT).await;
    let reason = failed["failure_reason"].as_str().unwrap();
    assert!(reason.contains("failed 5 times"), "{reason}");
    assert!(reason.contains("blocker"), "{reason}");
    // Saving it again (a new version) clears the failure.
    let fixed = generate_to_file(&dir.path().join("fixed.jsonl"), 3, "1ms");
    let (status, saved) = api
        .put(
            &format!("/api/v1/streams/{bad_id}"),
            json!({"name": "broken", "config": fixed}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(saved["failure_reason"], Value::Null);
    wait_status(&api, &bad_id, "completed", WAIT).await;

    // A config the worker cannot build (librdkafka refuses the value of an allowed property; validation passes
    // values through): a config error, so the stream fails after its first attempt with the problem as its reason.
    let (status, saved) = api
        .post(
            "/api/v1/streams",
            json!({"name": "misconfigured", "config": {
                "input": {"kafka": {"brokers": ["127.0.0.1:9092"], "topics": ["t"],
                    "consumer_group": "g", "options": {"fetch.max.bytes": "lots"}}},
                "output": {"drop": {}}
            }}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    let misconfigured = saved["id"].as_str().unwrap().to_string();
    let failed = wait_status(&api, &misconfigured, "failed", WAIT).await;
    let reason = failed["failure_reason"].as_str().unwrap();
    assert!(reason.contains("fetch.max.bytes"), "{reason}");
    assert!(!reason.contains("times"), "{reason}");
    for r in failed["replicas"].as_array().unwrap() {
        assert_eq!(r["attempts"], 1, "{failed}");
    }
}

#[tokio::test]
async fn secrets_are_never_returned_and_reach_the_stream_that_uses_them() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;

    let (status, body) = api
        .put("/api/v1/secrets/api_key", json!({"value": "s3cr3t-value"}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["reference"], "${secret:api_key}");
    let (status, _) = api
        .put("/api/v1/secrets/api_key", json!({"value": "s3cr3t-v2"}))
        .await;
    assert_eq!(status, 200, "replacing answers 200");
    let (status, _) = api
        .put("/api/v1/secrets/bad%20name", json!({"value": "x"}))
        .await;
    assert_eq!(status, 400);
    let listed = api.get("/api/v1/secrets").await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(
        !listed.to_string().contains("s3cr3t"),
        "values are never returned: {listed}"
    );

    // At rest the value is encrypted: the SQLite file does not contain it.
    let db = std::fs::read(dir.path().join("data/airtruct.db")).unwrap_or_default();
    let wal = std::fs::read(dir.path().join("data/airtruct.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(
            !bytes.windows(9).any(|w| w == b"s3cr3t-v2"),
            "the store holds the secret in clear"
        );
    }

    // A server that answers the `x-key` header it was sent: the stream's input polls it with a secret header.
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_url = format!("http://{}/key", echo.local_addr().unwrap());
    tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/key",
            axum::routing::get(|h: axum::http::HeaderMap| async move {
                h.get("x-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string()
            }),
        );
        axum::serve(echo, app).await.unwrap()
    });

    // A stream that references a missing secret is refused as active, at the path that uses it.
    let out = dir.path().join("out.jsonl");
    let config = |name: &str| {
        json!({
            "input": {"http_client": {"url": echo_url, "interval": "10ms", "count": 2,
                "headers": {"x-key": format!("${{secret:{name}}}")}}},
            "output": {"file": {"path": out}}
        })
    };
    let (status, body) = api
        .post(
            "/api/v1/streams",
            json!({"name": "s", "config": config("missing")}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["details"][0]["path"],
        "config.input.http_client.headers.x-key"
    );
    assert_eq!(
        body["details"][0]["message"],
        "secret \"missing\" does not exist"
    );

    // Anywhere but a credential field (a payload template, a mapping) a secret is refused, at its path.
    let (status, body) = api
        .post(
            "/api/v1/streams",
            json!({"name": "leak", "config": {
                "input": {"generate": {"count": 1, "payload": "${secret:api_key}"}},
                "pipeline": {"processors": [{"mapping": ".k = \"${secret:api_key}\""}]},
                "output": {"file": {"path": out}}
            }}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let details = body["details"].as_array().unwrap();
    for path in [
        "config.input.generate.payload",
        "config.pipeline.processors[0].mapping",
    ] {
        let d = details
            .iter()
            .find(|d| d["path"] == path)
            .unwrap_or_else(|| panic!("no problem at {path}: {body}"));
        assert!(
            d["message"]
                .as_str()
                .unwrap()
                .contains("may only be used in a credential field"),
            "{d}"
        );
    }
    assert!(!out.exists(), "nothing was written");

    // The worker resolves it: the value reaches the output; the API still shows the reference.
    let (status, saved) = api
        .post(
            "/api/v1/streams",
            json!({"name": "s", "config": config("api_key")}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    let id = saved["id"].as_str().unwrap().to_string();
    wait_status(&api, &id, "completed", WAIT).await;
    let written = lines(&out);
    assert_eq!(written.len(), 2);
    assert_eq!(written[0], "s3cr3t-v2", "{written:?}");
    assert!(!stream(&api, &id).await.to_string().contains("s3cr3t"));

    // The test endpoint would show the value in its answer: it refuses secrets.
    let (status, body) = api
        .post(
            "/api/v1/streams/test",
            json!({"config": config("api_key"), "messages": [{"payload": "{}"}]}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(!body.to_string().contains("s3cr3t"), "{body}");
    assert!(
        body["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("does not resolve secrets"),
        "{body}"
    );

    let (status, _) = api.call("DELETE", "/api/v1/secrets/api_key", None).await;
    assert_eq!(status, 204);
    assert_eq!(api.get("/api/v1/secrets").await, json!([]));
}

#[tokio::test]
async fn tests_processors_on_samples_step_by_step_and_cuts_off_a_loop() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;

    let catalogue = api.get("/api/v1/components").await;
    for (role, kind) in [
        ("inputs", "generate"),
        ("outputs", "file"),
        ("processors", "mapping"),
        ("processors", "wasm"),
    ] {
        let entry = catalogue[role]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kind"] == kind);
        let entry = entry.unwrap_or_else(|| panic!("no {kind} in {role}"));
        assert!(entry["config_schema"].is_object(), "{kind} has a schema");
    }

    let config = json!({
        "pipeline": {"processors": [
            {"mapping": ".total = to_int!(.price) * to_int!(.qty)\n%checked = \"yes\""},
            {"filter": ".total > 10"},
        ]}
    });
    let (status, body) = api
        .post(
            "/api/v1/streams/test",
            json!({"config": config, "messages": [
                {"payload": {"price": 3, "qty": 5}},
                {"payload": "{\"price\": 1, \"qty\": 2}", "metadata": {"source": "test"}},
                {"payload": {"price": "abc", "qty": 1}},
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    // First: mapped, then kept.
    let steps = results[0]["steps"].as_array().unwrap();
    assert_eq!(steps[0]["processor"], "pipeline.processors[0] (mapping)");
    let mapped: Value =
        serde_json::from_str(steps[0]["output"][0]["payload"].as_str().unwrap()).unwrap();
    assert_eq!(mapped["total"], 15);
    assert_eq!(steps[0]["output"][0]["metadata"]["checked"], "yes");
    assert_eq!(steps[1]["output"].as_array().unwrap().len(), 1);
    // Second: mapped, then filtered out; its metadata went through.
    let steps = results[1]["steps"].as_array().unwrap();
    assert_eq!(steps[0]["output"][0]["metadata"]["source"], "test");
    assert!(steps[1]["output"].as_array().unwrap().is_empty());
    // Third: fails in the mapping, with the error on the message.
    let steps = results[2]["steps"].as_array().unwrap();
    let error = steps[0]["output"][0]["error"].as_str().unwrap();
    assert!(
        error.starts_with("pipeline.processors[0] (mapping):"),
        "{error}"
    );

    // A processor that loops is cut off by its time limit, and reported on the message.
    let looping = airtruct_builtins::fixtures::LOOP;
    let path = dir.path().join("loop.wasm");
    std::fs::write(&path, looping).unwrap();
    // A file path is for `airtruct run`: through the API, processors are uploaded.
    let (status, body) = api
        .post(
            "/api/v1/streams/test",
            json!({"config": {"pipeline": {"processors": [{"wasm": {"path": path}}]}}, "messages": []}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["details"][0]["path"], "config.pipeline.processors[0].wasm.path",
        "{body}"
    );
    let (status, _) = upload(&api, "looper", looping).await;
    assert_eq!(status, 201);
    let config = json!({"pipeline": {"processors": [
        {"wasm": {"name": "looper", "limits": {"timeout": "200ms"}}}
    ]}});
    let (status, body) = api
        .post(
            "/api/v1/streams/test",
            json!({"config": config, "messages": [{"payload": "boom"}, {"payload": "fine"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let error = body["results"][0]["steps"][0]["output"][0]["error"]
        .as_str()
        .unwrap();
    assert!(error.contains("time limit"), "{error}");
    assert_eq!(
        body["results"][1]["steps"][0]["output"][0]["error"],
        Value::Null,
        "the next message runs"
    );
    assert_eq!(body["stopped"], Value::Null);
    // A request of many looping messages ends at the test's one deadline, with what ran so far.
    let config = json!({"pipeline": {"processors": [
        {"wasm": {"name": "looper", "limits": {"timeout": "3s"}}}
    ]}});
    let boom: Vec<Value> = (0..100).map(|_| json!({"payload": "boom"})).collect();
    let (status, body) = api
        .post(
            "/api/v1/streams/test",
            json!({"config": config, "messages": boom}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let ran = body["results"].as_array().unwrap().len();
    assert!((1..100).contains(&ran), "{ran} messages ran");
    assert!(
        body["stopped"].as_str().unwrap().contains(&format!(
            "after {ran} of 100 messages: it ran past its deadline"
        )),
        "{body}"
    );

    // A processor that is not valid answers 400 with its path.
    let (status, body) = api
        .post(
            "/api/v1/streams/test",
            json!({"config": {"pipeline": {"processors": [{"mapping": ".x = ("}]}}, "messages": []}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["details"][0]["path"]
            .as_str()
            .unwrap()
            .starts_with("config.pipeline.processors[0].mapping"),
        "{body}"
    );
}

/// A local HTTP endpoint for the `http_client` output: it answers 503 to the first request, 400 to a payload
/// containing "poison", and 200 to the rest, and records what it accepted.
async fn endpoint() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let failed_once = std::sync::Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = accepted.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let (seen, failed_once) = (seen.clone(), failed_once.clone());
            async move {
                if !failed_once.swap(true, Ordering::SeqCst) {
                    return (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "busy".to_string(),
                    );
                }
                if body.contains("poison") {
                    return (
                        axum::http::StatusCode::BAD_REQUEST,
                        "no poison here".to_string(),
                    );
                }
                seen.lock().unwrap().push(body);
                (axum::http::StatusCode::OK, "ok".to_string())
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), accepted)
}

#[tokio::test]
async fn ingests_http_requests_answers_with_the_processed_message_and_posts_to_an_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    let (status, _) = api
        .put(
            "/api/v1/secrets/ingest_token",
            json!({"value": "let-me-in"}),
        )
        .await;
    assert_eq!(status, 201);

    // Request and reply: the caller gets the mapped message back.
    let (status, saved) = api
        .post(
            "/api/v1/streams",
            json!({"name": "echo", "config": {
                "input": {"http_server": {"token": "${secret:ingest_token}"}},
                "pipeline": {"processors": [{"mapping":
                    ".total = to_int!(.qty) * to_int!(.price)\n.path = %http_path\n.tenant = %http_header_x_tenant"}]},
                "output": {"sync_response": {}}
            }}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    let id = saved["id"].as_str().unwrap().to_string();
    wait_status(&api, &id, "active", WAIT).await;
    let http = reqwest::Client::new();
    let resp = eventually("the stream to take requests", WAIT, || async {
        let r = http
            .post(format!("{base}/ingest/echo/orders?x=1"))
            .bearer_auth("let-me-in")
            .header("x-tenant", "acme")
            .json(&json!({"qty": 3, "price": 7}))
            .send()
            .await
            .unwrap();
        (r.status() != 503).then_some(r)
    })
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"qty": 3, "price": 7, "total": 21, "path": "/orders", "tenant": "acme"})
    );
    // The token is checked, and the stream is found by id as well as by name.
    let resp = http
        .post(format!("{base}/ingest/{id}"))
        .bearer_auth("wrong")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = http
        .get(format!("{base}/ingest/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    // http_client output: a 503 is retried, a 400 fails only its message (to the dead letter), the rest arrive.
    let (url, accepted) = endpoint().await;
    let dead = dir.path().join("dead.jsonl");
    let (status, saved) = api
        .post(
            "/api/v1/streams",
            json!({"name": "post", "config": {
                "input": {"generate": {"count": 3, "payload": "{\"n\":{{seq}}}"}},
                "pipeline": {"processors": [{"mapping": "if .n == 2 { .kind = \"poison\" }"}]},
                "output": {"http_client": {"url": url, "retry_backoff": "50ms"}},
                "on_error": {"dead_letter": {"file": {"path": dead, "envelope": true}}}
            }}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    let id = saved["id"].as_str().unwrap().to_string();
    wait_status(&api, &id, "completed", WAIT).await;
    assert_eq!(
        *accepted.lock().unwrap(),
        [r#"{"n":1}"#.to_string(), r#"{"n":3}"#.to_string()]
    );
    let dead = lines(&dead);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(
        dead[0].contains("400 Bad Request: no poison here"),
        "{}",
        dead[0]
    );
    let s = stream(&api, &id).await;
    assert_eq!(
        (s["sent"].as_u64(), s["failed"].as_u64()),
        (Some(2), Some(1))
    );
}
