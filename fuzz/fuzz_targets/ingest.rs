//! An ingest request as the coordinator and the `http_server` input read it: the request taken from HTTP with a
//! body limit, the precheck before the body, then the input's checks (bearer token, HMAC signature) and the
//! message made of it. Any request is answered or made a message; credentials never reach its metadata.

#![no_main]

use std::sync::OnceLock;

use airtruct_connectors::inputs::http_server::{HttpServerInputConfig, from_http};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    token_checked: bool,
    with_hmac: bool,
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    })
}

fuzz_target!(|r: Request| {
    let options = if r.with_hmac {
        serde_json::json!({"methods": ["POST", "put"], "hmac": {"secret": "key"}})
    } else {
        serde_json::json!({"token": "let-me-in"})
    };
    let config: HttpServerInputConfig = serde_json::from_value(options).expect("valid options");
    let mut builder = axum::http::Request::builder()
        .method(r.method.as_str())
        .uri(format!("/ingest/s/{}", r.path));
    for (k, v) in &r.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    // What the HTTP layer refuses never reaches us.
    let Ok(req) = builder.body(axum::body::Body::from(r.body)) else {
        return;
    };
    let headers = req.headers().clone();
    let pre = config.precheck().check(req.method().as_str(), |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    });
    let taken = runtime().block_on(from_http(req, String::new(), 1 << 16));
    let Ok((mut request, _reply)) = taken else {
        return;
    };
    request.token_checked = r.token_checked;
    let gate = config.gate();
    if gate.check(&request).is_ok() {
        // A request that passes the input's own checks passed the precheck too, unless the coordinator had
        // checked its token already.
        assert!(pre.is_ok() || r.token_checked, "{request:?}");
        let m = gate.to_message(&request, "id");
        let meta = airtruct_codec::Metadata::from_bytes(m.metadata)
            .expect("the input makes valid metadata");
        for (k, v) in airtruct_codec::to_pairs(&meta) {
            let header = k.strip_prefix("http_header_").unwrap_or_default();
            let secret = [
                "authorization",
                "proxy_authorization",
                "cookie",
                "x_airtruct_forward",
            ];
            assert!(!secret.contains(&header), "{k}={v}");
            assert!(!(r.with_hmac && header == "x_signature_256"), "{k}={v}");
        }
    }
});
