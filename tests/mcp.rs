//! Streams as MCP tools: the official MCP Python SDK (`mcp`, installed by `scripts/setup`) lists the tools of
//! `airtruct standalone` and calls one, and a stream on a worker answers a call forwarded by its coordinator.

#[path = "support/mod.rs"]
mod support;

use serde_json::{Value, json};
use support::{Api, PgDb, WAIT, coordinator, eventually, standalone, wait_status, worker_with};

/// A stream exposing `order_total`: the arguments' quantity times price, answered through `sync_response`.
fn order_total(tool: &str) -> Value {
    json!({
        "input": {"mcp_tool": {
            "name": tool,
            "description": "The total of an order line: quantity times unit price",
            "input_schema": {
                "type": "object",
                "properties": {"qty": {"type": "integer"}, "price": {"type": "integer"}},
                "required": ["qty", "price"]
            }
        }},
        "pipeline": {"processors": [{"mapping": ".total = int!(.qty) * int!(.price)\n.tool = %mcp_tool"}]},
        "output": {"sync_response": {}}
    })
}

/// A token of the admin's with these scopes.
async fn token(api: &Api, scopes: Value) -> String {
    let (status, created) = api
        .post("/api/v1/tokens", json!({"name": "agent", "scopes": scopes}))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["scopes"], scopes);
    created["token"].as_str().unwrap().to_string()
}

/// One JSON-RPC request to `/mcp`: the HTTP status and the body.
async fn rpc(base: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/mcp"))
        .json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn the_python_sdk_lists_and_calls_a_stream_exposed_as_a_tool() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    let (status, saved) = api
        .post(
            "/api/v1/streams",
            json!({"name": "totals", "config": order_total("order_total")}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    let id = saved["id"].as_str().unwrap().to_string();
    wait_status(&api, &id, "active", WAIT).await;

    // A second stream may not take the same tool name.
    let (status, refused) = api
        .post(
            "/api/v1/streams",
            json!({"name": "again", "status": "paused", "config": order_total("order_total")}),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["details"][0]["path"], "config.input.mcp_tool.name");
    assert!(
        refused["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("exposed by stream \"totals\""),
        "{refused}"
    );

    // The console's list.
    let listed = api.get("/api/v1/mcp/tools").await;
    assert_eq!(listed[0]["name"], "order_total");
    assert_eq!(listed[0]["stream_name"], "totals");
    assert_eq!(listed[0]["callable"], true);

    // A token for agents works on /mcp and nowhere in the REST API; an API token does not work on /mcp.
    let agent = token(&api, json!(["mcp"])).await;
    let (status, body) = Api::with_token(&base, &agent)
        .call("GET", "/api/v1/streams", None)
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("scope"), "{body}");
    let (status, body) = rpc(
        &base,
        api.token.as_deref(),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = rpc(
        &base,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    .await;
    assert_eq!(status, 401);

    // The SDK, as an agent runs it. The stream may still be starting: its first call may find no input yet.
    let run = || {
        let out = std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../tests/mcp/client.py"
            ))
            .args([
                &format!("{base}/mcp"),
                &agent,
                "order_total",
                r#"{"qty": 3, "price": 7}"#,
                r#"{"qty": "three"}"#,
            ])
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "the MCP client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let out = eventually("a call of the tool to be answered", WAIT, || async {
        let out = run();
        (out["result"]["is_error"] == false).then_some(out)
    })
    .await;
    assert_eq!(out["tools"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(out["tools"][0]["name"], "order_total");
    assert_eq!(
        out["tools"][0]["description"],
        "The total of an order line: quantity times unit price"
    );
    assert_eq!(
        out["tools"][0]["input_schema"]["required"],
        json!(["qty", "price"])
    );
    assert_eq!(
        out["result"]["structured"],
        json!({"qty": 3, "price": 7, "total": 21, "tool": "order_total"})
    );
    let text: Value = serde_json::from_str(out["result"]["text"][0].as_str().unwrap()).unwrap();
    assert_eq!(text["total"], 21);
    // Arguments that do not match the schema are an error result the agent can read, and reach no stream.
    assert_eq!(out["bad"]["is_error"], true, "{out}");
    let bad = out["bad"]["text"][0].as_str().unwrap();
    assert!(
        bad.contains("/qty") && bad.contains("\"price\" is a required property"),
        "{bad}"
    );
    // Without a token the SDK gets no further than the handshake.
    assert_ne!(out["no_token"], "listed", "{out}");
    // (The SDK asks twice: a `server/discover` probe, then the `initialize` handshake.)
    let statuses = out["no_token_statuses"].as_array().unwrap();
    assert!(
        !statuses.is_empty() && statuses.iter().all(|s| s == 401),
        "{out}"
    );

    // A paused stream's tool is not listed, and a call of it says why.
    let (status, body) = api
        .post(
            &format!("/api/v1/streams/{id}/status"),
            json!({"status": "paused"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, listed) = rpc(
        &base,
        Some(&agent),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await;
    assert_eq!(listed["result"]["tools"], json!([]));
    let (_, called) = rpc(
        &base,
        Some(&agent),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
               "params": {"name": "order_total", "arguments": {"qty": 1, "price": 1}}}),
    )
    .await;
    assert_eq!(called["result"]["isError"], true, "{called}");
    assert!(
        called["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("is paused"),
        "{called}"
    );
    let (_, unknown) = rpc(
        &base,
        Some(&agent),
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "nope"}}),
    )
    .await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
}

#[tokio::test]
async fn a_call_reaches_the_worker_that_runs_the_tool_stream() {
    let dir = tempfile::tempdir().unwrap();
    let db = PgDb::new();
    let (_c, base) = coordinator(dir.path(), &db);
    let _w = worker_with(dir.path(), &base, "w1", &["--ingest-listen", "127.0.0.1:0"]);
    let api = Api::login(&base).await;
    let (status, saved) = api
        .post(
            "/api/v1/streams",
            json!({"name": "totals", "config": order_total("line_total")}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    wait_status(&api, saved["id"].as_str().unwrap(), "active", WAIT).await;
    let agent = token(&api, json!(["api", "mcp"])).await;
    let (status, init) = rpc(
        &base,
        Some(&agent),
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"}}}),
    )
    .await;
    assert_eq!(status, 200, "{init}");
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(init["result"]["serverInfo"]["name"], "airtruct");
    let called = eventually("the worker to answer the call", WAIT, || async {
        let (status, called) = rpc(
            &base,
            Some(&agent),
            json!({"jsonrpc": "2.0", "id": "c1", "method": "tools/call",
                   "params": {"name": "line_total", "arguments": {"qty": 4, "price": 5}}}),
        )
        .await;
        assert_eq!(status, 200, "{called}");
        (called["result"]["isError"] == false).then_some(called)
    })
    .await;
    assert_eq!(called["id"], "c1");
    assert_eq!(
        called["result"]["structuredContent"]["total"], 20,
        "{called}"
    );
    // The API token of the same user works for the API too (it has both scopes).
    let (status, _) = Api::with_token(&base, &agent)
        .call("GET", "/api/v1/streams", None)
        .await;
    assert_eq!(status, 200);
}
