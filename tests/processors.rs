//! End-to-end tests of uploaded processors on `airtruct standalone`: upload checks (each bad upload refused with
//! its own message, nothing stored), versions pinned at save, use in a running stream, misbehaving processors
//! contained while other streams keep running, delete refused while used, download.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use airtruct_builtins::fixtures;
use serde_json::{Value, json};
use support::{Api, eventually, lines, standalone, stream, upload, wait_status};

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn refuses_each_bad_upload_with_its_own_message_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;

    let mut oversized = b"\0asm\x0d\0\x01\0".to_vec();
    oversized.resize(33 << 20, 0);
    let random: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let cases: [(&str, &[u8], u16, &str); 6] = [
        ("core", b"\0asm\x01\0\0\0", 400, "wasm32-wasip2"),
        ("random", &random, 400, "magic bytes"),
        (
            "wrong-world",
            fixtures::WRONG_WORLD,
            400,
            "airtruct:processor world",
        ),
        ("net", fixtures::NET, 400, "no network access"),
        ("huge-file", &oversized, 413, "over the limit"),
        ("empty", b"", 400, "body is empty"),
    ];
    for (name, bytes, status, needle) in cases {
        let (got, body) = upload(&api, name, bytes).await;
        assert_eq!(got, status, "{name}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(needle),
            "{name}: {error:?} does not mention {needle:?}"
        );
    }
    let (status, body) = upload(&api, "Bad Name", fixtures::TEMPLATE).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["details"][0]["path"], "name");
    assert_eq!(
        api.get("/api/v1/processors").await,
        json!([]),
        "nothing was stored"
    );
}

#[tokio::test]
async fn uploads_pins_and_runs_a_processor_and_refuses_to_delete_it_while_used() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;

    let (status, v1) = upload(&api, "prefixer", fixtures::TEMPLATE).await;
    assert_eq!(status, 201, "{v1}");
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["described_name"], "prefix");
    assert_eq!(v1["config_schema"]["required"], json!(["prefix"]));
    let (_, v2) = upload(&api, "prefixer", fixtures::TEMPLATE).await;
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["sha256"], v1["sha256"], "content-addressed");
    let catalogue = api.get("/api/v1/components").await;
    assert_eq!(catalogue["uploaded"][0]["name"], "prefixer");
    assert_eq!(catalogue["uploaded"][0]["version"], 2);

    // Its config is checked by its own init: a missing `prefix` is refused at its path.
    let out = dir.path().join("out.txt");
    let config = |processor_config: Value| {
        json!({
            "input": {"generate": {"count": 20, "payload": "msg {{seq}}"}},
            "pipeline": {"processors": [{"wasm": {"name": "prefixer", "config": processor_config}}]},
            "output": {"file": {"path": out}}
        })
    };
    let (status, body) = api
        .post(
            "/api/v1/streams",
            json!({"name": "p", "config": config(json!({}))}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["details"][0]["path"]
            .as_str()
            .unwrap()
            .starts_with("config.pipeline.processors[0].wasm.config"),
        "{body}"
    );
    let (status, body) = api
        .post(
            "/api/v1/streams",
            json!({"name": "p", "config": {"input": {"generate": {}}, "output": {"drop": {}},
            "pipeline": {"processors": [{"wasm": {"name": "nope"}}]}}}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["details"][0]["path"],
        "config.pipeline.processors[0].wasm.name"
    );
    assert!(
        body["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("processor \"nope\""),
        "{body}"
    );

    // Saved without a version: the latest (2) is pinned into the saved config; it runs.
    let (status, saved) = api
        .post(
            "/api/v1/streams",
            json!({"name": "p", "config": config(json!({"prefix": ">> "}))}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    assert_eq!(
        saved["config"]["pipeline"]["processors"][0]["wasm"]["version"],
        2
    );
    let id = saved["id"].as_str().unwrap().to_string();
    wait_status(&api, &id, "completed", WAIT).await;
    let written = lines(&out);
    assert_eq!(written.len(), 20);
    assert_eq!(written[0], ">> msg 1");

    // A later upload does not change the saved stream.
    let (_, v3) = upload(&api, "prefixer", fixtures::ECHO).await;
    assert_eq!(v3["version"], 3);
    let s = stream(&api, &id).await;
    assert_eq!(
        s["config"]["pipeline"]["processors"][0]["wasm"]["version"],
        2
    );
    let detail = api.get("/api/v1/processors/prefixer").await;
    assert_eq!(detail["versions"], 3);
    assert_eq!(detail["used_by"][0]["stream_name"], "p");
    let versions = api.get("/api/v1/processors/prefixer/versions").await;
    assert_eq!(versions.as_array().unwrap().len(), 3);

    // Download gives back the bytes.
    let bytes = reqwest::Client::new()
        .get(format!(
            "{base}/api/v1/processors/prefixer/versions/1/download"
        ))
        .bearer_auth(api.token.as_ref().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[..], fixtures::TEMPLATE);

    // Delete is refused while a stream uses it, naming the stream; allowed once the stream is gone.
    let (status, body) = api
        .call("DELETE", "/api/v1/processors/prefixer", None)
        .await;
    assert_eq!(status, 409);
    assert!(body["error"].as_str().unwrap().contains("\"p\""), "{body}");
    let (status, _) = api
        .call("DELETE", &format!("/api/v1/streams/{id}"), None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = api
        .call("DELETE", "/api/v1/processors/prefixer", None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = api.call("GET", "/api/v1/processors/prefixer", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn contains_misbehaving_processors_while_the_worker_keeps_serving_other_streams() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;

    // A healthy stream that runs throughout.
    let (status, _) = upload(&api, "prefixer", fixtures::TEMPLATE).await;
    assert_eq!(status, 201);
    let healthy_out = dir.path().join("healthy.txt");
    let (status, healthy) = api
        .post("/api/v1/streams", json!({"name": "healthy", "config": {
            "input": {"generate": {"interval": "10ms", "payload": "tick {{seq}}"}},
            "pipeline": {"processors": [{"wasm": {"name": "prefixer", "config": {"prefix": "ok "}}}]},
            "output": {"file": {"path": healthy_out}}
        }}))
        .await;
    assert_eq!(status, 201, "{healthy}");

    let cases: [(&str, &[u8], Value, &str); 4] = [
        (
            "loop",
            fixtures::LOOP,
            json!({"timeout": "300ms"}),
            "time limit of 300ms",
        ),
        (
            "membomb",
            fixtures::MEMBOMB,
            json!({"memory_mib": 32}),
            "memory limit of 33554432 bytes",
        ),
        ("panic", fixtures::PANIC, json!({}), "fixture panic"),
        (
            "huge",
            fixtures::HUGE,
            json!({"max_output_mib": 1}),
            "over its output limit of 1048576 bytes",
        ),
    ];
    let mut streams = Vec::new();
    for (name, bytes, limits, needle) in cases {
        let (status, body) = upload(&api, name, bytes).await;
        assert_eq!(status, 201, "{name}: {body}");
        let dead = dir.path().join(format!("{name}-dead.jsonl"));
        let (status, saved) = api
            .post("/api/v1/streams", json!({"name": name, "config": {
                "input": {"generate": {"count": 2, "payload": "boom"}},
                "pipeline": {"batch": {"size": 1}, "processors": [{"wasm": {"name": name, "limits": limits}}]},
                "output": {"drop": {}},
                "on_error": {"dead_letter": {"file": {"path": dead, "envelope": true}}}
            }}))
            .await;
        assert_eq!(status, 201, "{name}: {saved}");
        streams.push((
            name,
            saved["id"].as_str().unwrap().to_string(),
            dead,
            needle,
        ));
    }
    for (name, id, dead, needle) in &streams {
        let done = wait_status(&api, id, "completed", WAIT).await;
        assert_eq!(done["failed"], 2, "{name}: {done}");
        let letters = lines(dead);
        assert_eq!(
            letters.len(),
            2,
            "{name}: both messages reach the dead letter file"
        );
        assert!(
            letters[0].contains(needle),
            "{name}: {} does not say {needle:?}",
            letters[0]
        );
    }
    let id = healthy["id"].as_str().unwrap();
    let before = lines(&healthy_out).len();
    eventually("the healthy stream to keep writing", WAIT, || async {
        (lines(&healthy_out).len() > before + 10).then_some(())
    })
    .await;
    let s = stream(&api, id).await;
    assert_eq!(s["status"], "active");
    assert_eq!(s["failed"], 0);
}

/// `curl -F` as users write it: a processor and a file uploaded as forms, with the name as a form field.
#[tokio::test]
async fn takes_uploads_as_forms_as_curl_f_sends_them() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;
    let token = api.token.clone().unwrap();
    std::fs::write(dir.path().join("prefix.wasm"), fixtures::TEMPLATE).unwrap();
    std::fs::write(dir.path().join("upload-me.csv"), "code,name\n1,one\n").unwrap();
    let curl = |args: &[&str]| {
        let out = std::process::Command::new("curl")
            .current_dir(dir.path())
            .args(["-s", "-w", "\n%{http_code}", "-H"])
            .arg(format!("Authorization: Bearer {token}"))
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap();
        (status.to_string(), body.to_string())
    };

    let (status, body) = curl(&[
        "-F",
        "file=@prefix.wasm",
        "-F",
        "name=prefixer",
        "-F",
        "description=adds a prefix",
        &format!("{base}/api/v1/processors"),
    ]);
    assert_eq!(status, "201", "{body}");
    let p: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (p["name"].as_str(), p["description"].as_str()),
        (Some("prefixer"), Some("adds a prefix"))
    );
    assert_eq!(p["described_name"], "prefix");
    let (status, body) = curl(&["-F", "name=noname", &format!("{base}/api/v1/processors")]);
    assert_eq!(status, "400", "{body}");
    assert!(body.contains("the form has no file"), "{body}");

    let (status, body) = curl(&[
        "-X",
        "PUT",
        "-F",
        "file=@upload-me.csv",
        &format!("{base}/api/v1/files/codes.csv"),
    ]);
    assert_eq!(status, "201", "{body}");
    let (status, body) = curl(&[&format!("{base}/api/v1/files/codes.csv")]);
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("200", "code,name\n1,one\n")
    );
}

const ORDER_AVSC: &str = r#"{"type": "record", "name": "Order", "namespace": "shop", "fields": [
  {"name": "order_id", "type": "long"},
  {"name": "sku", "type": "string"},
  {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
  {"name": "note", "type": ["null", "string"], "default": null}
]}"#;

const MONEY_PROTO: &str = "syntax = \"proto3\";\npackage shop.common;\nmessage Money { string currency = 1; int64 cents = 2; }\n";

const ORDER_PROTO: &str = "syntax = \"proto3\";\npackage shop.v1;\nimport \"common/money.proto\";\n\
    message Order { int64 order_id = 1; string sku = 2; shop.common.Money price = 3; }\n";

/// Avro and Protobuf with their schemas from files: one uploaded through the API, a folder of .proto files the
/// operator put under the root; paths outside the root, and links inside a folder that lead out of it, refused.
#[tokio::test]
async fn converts_avro_and_protobuf_with_schemas_read_from_files_under_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, base) = standalone(dir.path());
    let api = Api::login(&base).await;

    let resp = reqwest::Client::new()
        .put(format!("{base}/api/v1/files/order.avsc"))
        .bearer_auth(api.token.as_ref().unwrap())
        .header("content-type", "application/octet-stream")
        .body(ORDER_AVSC)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let avsc = resp.json::<Value>().await.unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string();
    let protos = dir.path().join("protos");
    std::fs::create_dir_all(protos.join("common")).unwrap();
    std::fs::write(protos.join("common/money.proto"), MONEY_PROTO).unwrap();
    std::fs::write(protos.join("order.proto"), ORDER_PROTO).unwrap();

    // JSON -> Avro -> JSON, reshaped by a mapping, -> Protobuf -> JSON.
    let out = dir.path().join("orders.jsonl");
    let processors = json!([
        {"avro": {"operator": "from_json", "encoding": "confluent", "schema_id": 7, "schema_path": avsc}},
        {"avro": {"operator": "to_json", "encoding": "confluent", "schema_id": 7, "schema_path": avsc}},
        {"mapping": ".price = {\"currency\": \"EUR\", \"cents\": to_int(parse_float!(.price) * 100)}\ndel(.note)"},
        {"protobuf": {"operator": "from_json", "message": "shop.v1.Order", "import_paths": [protos],
            "use_proto_names": true}},
        {"protobuf": {"operator": "to_json", "message": "shop.v1.Order", "import_paths": [protos],
            "use_proto_names": true}},
    ]);
    let config = json!({
        "input": {"generate": {"count": 30,
            "payload": "{\"order_id\": {{seq}}, \"sku\": \"sku-{{seq}}\", \"price\": \"12.50\"}"}},
        "pipeline": {"processors": processors},
        "output": {"file": {"path": out}}
    });
    let (status, saved) = api
        .post(
            "/api/v1/streams",
            json!({"name": "codecs", "config": config}),
        )
        .await;
    assert_eq!(status, 201, "{saved}");
    wait_status(&api, saved["id"].as_str().unwrap(), "completed", WAIT).await;
    let written = lines(&out);
    assert_eq!(written.len(), 30);
    let first: Value = serde_json::from_str(&written[0]).unwrap();
    let seq = first["order_id"].as_str().unwrap().to_string();
    assert_eq!(
        first,
        json!({"order_id": seq, "sku": format!("sku-{seq}"), "price": {"currency": "EUR", "cents": "1250"}})
    );

    // The test panel shows the Avro bytes of the first step in base64: the Confluent header, then the datum.
    let (status, body) = api
        .post(
            "/api/v1/streams/test",
            json!({"config": {"pipeline": {"processors": processors}},
                "messages": [{"payload": {"order_id": 1, "sku": "a", "price": "0.05", "note": "x"}}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let steps = &body["results"][0]["steps"];
    assert_eq!(
        steps[0]["output"][0]["payload_base64"],
        "AAAAAAcCAmECBQICeA=="
    );
    assert_eq!(
        serde_json::from_str::<Value>(steps[1]["output"][0]["payload"].as_str().unwrap()).unwrap(),
        json!({"order_id": 1, "sku": "a", "price": "0.05", "note": "x"})
    );
    assert!(steps[1]["output"][0].get("payload_base64").is_none());
    assert!(steps[3]["output"][0]["payload_base64"].is_string());

    // Outside the root, and a link inside the folder that leads out of it: refused at the option.
    let refused = |processor: Value| {
        let api = api.clone();
        async move {
            let config = json!({"input": {"generate": {}}, "output": {"drop": {}},
                "pipeline": {"processors": [processor]}});
            let (status, body) = api
                .post(
                    "/api/v1/streams",
                    json!({"name": "refused", "config": config}),
                )
                .await;
            assert_eq!(status, 400, "{body}");
            body["details"][0].clone()
        }
    };
    let e = refused(json!({"avro": {"operator": "to_json", "schema_path": "/etc/hostname"}})).await;
    assert_eq!(
        e["path"], "config.pipeline.processors[0].avro.schema_path",
        "{e}"
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("outside the folders streams may use"),
        "{e}"
    );
    std::os::unix::fs::symlink("/etc/hostname", protos.join("common/leak.proto")).unwrap();
    let e = refused(
        json!({"protobuf": {"operator": "to_json", "message": "shop.v1.Order",
        "import_paths": [protos]}}),
    )
    .await;
    assert_eq!(
        e["path"], "config.pipeline.processors[0].protobuf.import_paths[0]",
        "{e}"
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("leak.proto\" is outside the folders"),
        "{e}"
    );
    let e = refused(
        json!({"avro": {"operator": "to_json", "schema_path": dir.path().join("nope.avsc")}}),
    )
    .await;
    assert!(
        e["message"].as_str().unwrap().starts_with("cannot read"),
        "{e}"
    );
    // A type the definitions do not have, found by the component's own check.
    std::fs::remove_file(protos.join("common/leak.proto")).unwrap();
    let e = refused(
        json!({"protobuf": {"operator": "to_json", "message": "shop.v1.Nope",
        "import_paths": [protos]}}),
    )
    .await;
    assert!(
        e["path"]
            .as_str()
            .unwrap()
            .starts_with("config.pipeline.processors[0].protobuf"),
        "{e}"
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("shop.common.Money, shop.v1.Order"),
        "{e}"
    );
}
