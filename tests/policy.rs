//! The operator's policy on `airtruct standalone`, as a user meets it through the API: every refusal names the
//! field and the rule, and nothing is opened, loaded or written. The server runs with `--path-root DIR` (the
//! test's folder) and its data in `DIR/data`.

#[path = "support/mod.rs"]
mod support;

use std::path::Path;

use serde_json::{Value, json};
use support::{Api, WAIT, standalone, wait_status};

/// Saves a stream as active and expects a refusal at `path` whose message contains `words`.
async fn refused(api: &Api, config: Value, path: &str, words: &str) {
    let (status, body) = api
        .post(
            "/api/v1/streams",
            json!({"name": "refused", "config": config}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let found = body["details"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["path"] == path && d["message"].as_str().unwrap().contains(words));
    assert!(found, "no \"{words}\" at {path}: {body}");
}

/// A shared library that writes `marker` when it is loaded.
fn marker_library(dir: &Path, marker: &Path) -> std::path::PathBuf {
    let src = dir.join("marker.c");
    std::fs::write(
        &src,
        format!(
            "#include <stdio.h>\n__attribute__((constructor)) static void loaded(void) {{\n  FILE *f = fopen(\"{}\", \"w\");\n  if (f) {{ fputs(\"loaded\", f); fclose(f); }}\n}}\n",
            marker.display()
        ),
    )
    .unwrap();
    let lib = dir.join("libmarker.so");
    let built = std::process::Command::new("gcc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&src)
        .status()
        .expect("gcc");
    assert!(built.success());
    lib
}

#[tokio::test]
async fn a_kafka_option_that_loads_a_library_is_refused_and_nothing_is_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    let marker = dir.path().join("loaded.txt");
    let lib = marker_library(dir.path(), &marker);
    let config = json!({
        "input": {"kafka": {"brokers": ["127.0.0.1:9092"], "topics": ["t"], "consumer_group": "g",
            "options": {"plugin.library.paths": lib}}},
        "output": {"drop": {}}
    });
    refused(
        &api,
        config.clone(),
        "config.input.kafka.options.plugin.library.paths",
        "loads code",
    )
    .await;
    // Saved as a paused draft (anything may be), then resumed: refused again, and still nothing loaded.
    let (status, saved) = api
        .post(
            "/api/v1/streams",
            json!({"name": "draft", "status": "paused", "config": config}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    let id = saved["id"].as_str().unwrap();
    let (status, body) = api
        .post(
            &format!("/api/v1/streams/{id}/status"),
            json!({"status": "active"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("loads code"), "{body}");
    // A property outside the allowlist is refused with where to allow it.
    refused(
        &api,
        json!({
            "input": {"kafka": {"brokers": ["127.0.0.1:9092"], "topics": ["t"], "consumer_group": "g",
                "options": {"debug": "all"}}},
            "output": {"drop": {}}
        }),
        "config.input.kafka.options.debug",
        "policy.kafka_options",
    )
    .await;
    assert!(!marker.exists(), "the library was loaded");
    // The marker works: loading the library writes it. The refusals above are what kept it out.
    let loaded = std::process::Command::new("python3")
        .args(["-c", "import ctypes, sys; ctypes.CDLL(sys.argv[1])"])
        .arg(&lib)
        .status()
        .unwrap();
    assert!(
        loaded.success() && marker.exists(),
        "the marker library does not work"
    );
}

#[tokio::test]
async fn paths_outside_the_roots_through_dotdot_a_symlink_or_into_the_data_folder_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("escape")).unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{}\n").unwrap();
    let out = |path: &Path| json!({"input": {"file": {"path": input}}, "output": {"file": {"path": path}}});
    let cases = [
        outside.path().join("authorized_keys"),
        dir.path().join("../authorized_keys"),
        dir.path().join("escape/authorized_keys"),
        dir.path().join("data/airtruct.db"),
    ];
    for path in &cases {
        let words = if path.starts_with(dir.path().join("data")) {
            "the server's own files"
        } else {
            "outside the folders streams may use"
        };
        refused(&api, out(path), "config.output.file.path", words).await;
    }
    refused(
        &api,
        json!({"input": {"file": {"path": "/etc/passwd"}}, "output": {"drop": {}}}),
        "config.input.file.path",
        "outside the folders",
    )
    .await;
    refused(
        &api,
        json!({"input": {"file": {"path": input, "checkpoint": outside.path().join("c")}},
               "output": {"drop": {}}}),
        "config.input.file.checkpoint",
        "outside the folders",
    )
    .await;
    refused(
        &api,
        json!({"input": {"file": {"path": input}},
               "buffer": {"sqlite": {"path": dir.path().join("data/buffer.db")}},
               "output": {"drop": {}}}),
        "config.buffer.sqlite.path",
        "the server's own files",
    )
    .await;
    refused(
        &api,
        json!({"input": {"file": {"path": input}},
               "output": {"sql_insert": {"driver": "sqlite", "dsn": format!("sqlite://{}/x.db", outside.path().display()),
                   "table": "t", "columns": ["a"], "args_mapping": "[.a]"}}}),
        "config.output.sql_insert.dsn",
        "outside the folders",
    )
    .await;
    assert!(
        std::fs::read_dir(outside.path()).unwrap().next().is_none(),
        "nothing was written outside the roots"
    );
    assert!(!dir.path().join("data/buffer.db").exists());
    // Inside the root, the same stream runs.
    let inside = dir.path().join("out/copy.jsonl");
    let (status, saved) = api
        .post(
            "/api/v1/streams",
            json!({"name": "ok", "config": out(&inside)}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    wait_status(&api, saved["id"].as_str().unwrap(), "completed", WAIT).await;
    assert!(inside.exists());
}

#[tokio::test]
async fn http_to_metadata_addresses_the_servers_own_api_and_through_a_redirect_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    let output = |url: &str| json!({"input": {"generate": {"count": 1}}, "output": {"http_client": {"url": url}}});
    refused(
        &api,
        output("http://169.254.169.254/latest/meta-data/"),
        "config.output.http_client.url",
        "denied by the operator's egress policy",
    )
    .await;
    refused(
        &api,
        output(&format!("{base}/api/v1/streams")),
        "config.output.http_client.url",
        "the server's own listener",
    )
    .await;
    refused(
        &api,
        json!({"input": {"http_server": {"address": "127.0.0.1:0"}}, "output": {"drop": {}}}),
        "config.input.http_server.address",
        "listener of its own",
    )
    .await;

    // A local server the policy allows, which redirects to the metadata address: the redirect is refused.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = format!("http://{}/status", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/status",
            axum::routing::get(|| async {
                (
                    axum::http::StatusCode::FOUND,
                    [("location", "http://169.254.169.254/latest/meta-data/")],
                )
            }),
        );
        axum::serve(listener, app).await.unwrap()
    });
    let (status, saved) = api
        .post(
            "/api/v1/streams",
            json!({"name": "redirected", "config": {
                "input": {"http_client": {"url": local, "interval": "50ms", "count": 1}},
                "output": {"drop": {}}
            }}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    let id = saved["id"].as_str().unwrap();
    // The redirect is refused before it is followed: the stream fails with the policy's words.
    let failed = wait_status(&api, id, "failed", WAIT).await;
    let reason = failed["failure_reason"].as_str().unwrap();
    assert!(reason.contains("169.254.169.254"), "{reason}");
    assert!(reason.contains("egress policy"), "{reason}");
    assert_eq!(
        failed["received"], 0,
        "nothing came through the redirect: {failed}"
    );
}

#[tokio::test]
async fn a_stream_failing_on_a_wrong_password_in_its_dsn_does_not_show_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    let (status, _) = api
        .put(
            "/api/v1/secrets/db_password",
            json!({"value": "wrong-pass-6f1e"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, saved) = api
        .post(
            "/api/v1/streams",
            json!({"name": "db", "config": {
                "input": {"sql_select": {"driver": "mysql",
                    "dsn": "mysql://root:${secret:db_password}@127.0.0.1:3306/test",
                    "table": "nope", "columns": ["*"]}},
                "output": {"drop": {}}
            }}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    let id = saved["id"].as_str().unwrap();
    let failed = wait_status(&api, id, "failed", std::time::Duration::from_secs(90)).await;
    let reason = failed["failure_reason"].as_str().unwrap();
    assert!(reason.contains("sql_select"), "{reason}");
    assert!(!reason.contains("wrong-pass-6f1e"), "{reason}");
    let all = api.get("/api/v1/streams").await.to_string();
    assert!(!all.contains("wrong-pass-6f1e"), "{all}");
}

#[tokio::test]
async fn a_viewer_may_change_nothing_an_editor_no_users_and_every_change_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let admin = Api::login(&base).await;
    for (name, role) in [("vera", "viewer"), ("ed", "editor")] {
        let (status, body) = admin
            .post(
                "/api/v1/users",
                json!({"username": name, "password": "password-of-".to_string() + name, "role": role}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["role"], role);
    }
    let login = |name: &str| {
        let base = base.clone();
        let name = name.to_string();
        async move {
            let mut api = Api::new(&base);
            let (status, body) = api
                .post(
                    "/api/v1/auth/login",
                    json!({"username": name, "password": format!("password-of-{name}")}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            api.token = Some(body["token"].as_str().unwrap().to_string());
            api
        }
    };
    let viewer = login("vera").await;
    let editor = login("ed").await;
    assert_eq!(viewer.get("/api/v1/auth/me").await["role"], "viewer");

    // Every operation of the API that changes something, as the OpenAPI document lists them.
    let doc = admin.get("/api/v1/openapi.json").await;
    let own = [
        "/api/v1/auth/login",
        "/api/v1/auth/logout",
        "/api/v1/auth/password",
        "/api/v1/tokens",
        "/api/v1/tokens/{id}",
        "/api/v1/streams/validate",
    ];
    let mut writes = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let by_worker = op["security"].to_string().contains("worker");
            if method == "get" || own.contains(&path.as_str()) || by_worker {
                continue;
            }
            let url = path
                .replace("{id}", "x")
                .replace("{name}", "x")
                .replace("{username}", "vera")
                .replace("{version}", "1");
            let (status, body) = viewer
                .call(&method.to_uppercase(), &url, Some(json!({})))
                .await;
            assert_eq!(status, 403, "{method} {path} as a viewer: {body}");
            writes += 1;
            if path.starts_with("/api/v1/users") {
                let (status, body) = editor
                    .call(&method.to_uppercase(), &url, Some(json!({})))
                    .await;
                assert_eq!(status, 403, "{method} {path} as an editor: {body}");
            }
        }
    }
    assert!(writes >= 12, "only {writes} writes found in {doc}");
    let (status, _) = editor.call("GET", "/api/v1/users", None).await;
    assert_eq!(status, 403);
    // A viewer still reads, but no secret value (no route returns one).
    assert!(viewer.get("/api/v1/streams").await.is_array());

    // An editor saves a stream: the version records who saved it, and the audit trail who did what.
    let out = dir.path().join("out.jsonl");
    let (status, saved) = editor
        .post(
            "/api/v1/streams",
            json!({"name": "s", "status": "paused", "config": {
                "input": {"generate": {"count": 1}}, "output": {"file": {"path": out}}}}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    let id = saved["id"].as_str().unwrap();
    let versions = viewer.get(&format!("/api/v1/streams/{id}/versions")).await;
    assert_eq!(versions[0]["saved_by"], "ed", "{versions}");
    let trail = viewer.get("/api/v1/audit").await;
    let actions: Vec<(String, String, String)> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["username"].as_str().unwrap().to_string(),
                a["action"].as_str().unwrap().to_string(),
                a["target"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        actions[0],
        ("ed".into(), "stream.create".into(), id.to_string())
    );
    assert!(
        actions.contains(&("admin".into(), "user.create".into(), "vera".into())),
        "{trail}"
    );

    // A token's role is at most its owner's; a viewer's token for an editor acts as a viewer.
    let (status, body) = viewer
        .post("/api/v1/tokens", json!({"name": "up", "role": "admin"}))
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = editor
        .post(
            "/api/v1/tokens",
            json!({"name": "ci", "role": "viewer", "expires_in": "1d"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let mut limited = Api::new(&base);
    limited.token = Some(body["token"].as_str().unwrap().to_string());
    let (status, _) = limited
        .call("DELETE", &format!("/api/v1/streams/{id}"), None)
        .await;
    assert_eq!(status, 403);

    // A disabled user's sessions stop working; an admin cannot disable themselves.
    let (status, _) = admin
        .call(
            "PATCH",
            "/api/v1/users/vera",
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = viewer.call("GET", "/api/v1/streams", None).await;
    assert_eq!(status, 401);
    let (status, _) = admin
        .call(
            "PATCH",
            "/api/v1/users/admin",
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_server_keeps_its_files_private_and_refuses_oversized_or_non_json_bodies() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let mode = |p: &str| {
        std::fs::metadata(dir.path().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("data"), 0o700);
    for file in ["data/airtruct.db", "data/secret.key", "data/worker-token"] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
    let http = reqwest::Client::new();
    // A 10 KB user name is refused before any password is hashed.
    let resp = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "x".repeat(10_000), "password": "p"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // A body sent as a form is not read as JSON.
    let resp = http
        .post(format!("{base}/api/v1/auth/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=admin&password=x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    assert!(resp.text().await.unwrap().contains("must be JSON"));
    // Each route has its own body limit: small for a login, a megabyte for most, more for configs.
    let api = Api::login(&base).await;
    let big = |n: usize| json!({"value": "v".repeat(n)});
    let (status, body) = api.put("/api/v1/secrets/big", big(2 << 20)).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("larger than this route takes (1048576 bytes)"),
        "{body}"
    );
    let resp = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": "p".repeat(100_000)}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let config =
        json!({"input": {"generate": {"payload": "x".repeat(2 << 20)}}, "output": {"drop": {}}});
    let (status, body) = api
        .post("/api/v1/streams/validate", json!({"config": config}))
        .await;
    assert_eq!(status, 200, "a 2 MiB config is taken: {body}");
}

/// The resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn a_flood_of_logins_is_throttled_per_address_and_the_server_stays_small() {
    let dir = tempfile::tempdir().unwrap();
    let (mut p, base) = standalone(dir.path());
    // What the server grows by compiling its built-in processors in the background is not the logins'.
    p.wait_for_line("built-in processors ready", WAIT);
    let http = reqwest::Client::new();
    let before = rss_kib(p.pid());
    // 600 logins at once, each with a new name: each would cost a 19 MiB password hash.
    let calls = (0..600).map(|i| {
        let http = http.clone();
        let url = format!("{base}/api/v1/auth/login");
        async move {
            http.post(url)
                .json(&json!({"username": format!("nobody-{i}"), "password": "guess"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let statuses = futures_join_all(calls).await;
    let count = |s: u16| statuses.iter().filter(|&&x| x == s).count();
    let (checked, throttled, busy) = (count(401), count(429), count(503));
    assert_eq!(checked + throttled + busy, 600, "{statuses:?}");
    // Only the first failures from this address got as far as a password check.
    assert!(checked <= 20, "{checked} logins were checked");
    assert!(throttled >= 500, "{throttled} throttled");
    // Unbounded, 600 checks would take 11 GiB; bounded, what the connections and the allocator keep is
    // 150-215 MiB on this kind of machine (it passed 200 MiB in one run in six).
    let grown = rss_kib(p.pid()).saturating_sub(before);
    assert!(grown < 256 << 10, "the server grew by {grown} KiB");
    // This address is throttled now, for any name, with a message that says so.
    let resp = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": "guess"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.text().await.unwrap().contains("from this address"));
}

/// Runs futures at once and collects their outputs in order.
async fn futures_join_all<
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
>(
    futures: impl Iterator<Item = F>,
) -> Vec<T> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_yaml_alias_bomb_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    // Nine levels of nine aliases: 9^9 (about 4 * 10^8) values once expanded, from a few hundred bytes.
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
    for i in 1..9 {
        let p = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    text.push_str("input: {stdin: {}}\noutput: {drop: {}}\n");
    let (status, body) = api
        .post("/api/v1/streams/validate", json!({"config": text}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["valid"], false);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("anchors and aliases"),
        "{body}"
    );
    // Saved, it is refused with a 400 at `config`.
    let (status, body) = api
        .post("/api/v1/streams", json!({"name": "bomb", "config": text}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["details"][0]["path"], "config");
}

#[tokio::test]
async fn an_uploaded_file_lands_under_the_root_and_a_stream_reads_it_by_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    let http = reqwest::Client::new();
    let token = api.token.clone().unwrap();
    let put = |name: &str, body: &'static str| {
        http.put(format!("{base}/api/v1/files/{name}"))
            .bearer_auth(&token)
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
    };
    let resp = put("lookup.jsonl", "{\"k\":1}\n{\"k\":2}\n").await.unwrap();
    assert_eq!(resp.status(), 201);
    let file: Value = resp.json().await.unwrap();
    assert_eq!(file["size"], 16);
    let path = file["path"].as_str().unwrap().to_string();
    assert!(Path::new(&path).starts_with(dir.path()), "{path}");
    assert_eq!(
        put("lookup.jsonl", "{\"k\":3}\n").await.unwrap().status(),
        200
    );
    assert_eq!(put("..%2Fescape", "x").await.unwrap().status(), 400);
    let listed = api.get("/api/v1/files").await;
    assert_eq!(listed[0]["name"], "lookup.jsonl", "{listed}");
    // A stream reads it by the path the listing gave.
    let out = dir.path().join("out.jsonl");
    let (status, saved) = api
        .post(
            "/api/v1/streams",
            json!({"name": "lookup", "config": {
                "input": {"file": {"path": path, "codec": "jsonl"}},
                "output": {"file": {"path": out}}
            }}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    wait_status(&api, saved["id"].as_str().unwrap(), "completed", WAIT).await;
    assert_eq!(support::lines(&out), ["{\"k\":3}"]);
    let (status, _) = api.call("DELETE", "/api/v1/files/lookup.jsonl", None).await;
    assert_eq!(status, 204);
    assert!(!Path::new(&path).exists());
}
