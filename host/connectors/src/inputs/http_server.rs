//! `http_server`: each HTTP request becomes a message. Behind the coordinator the stream is reached at
//! `/ingest/{stream}/...` (see [`crate::ingest`]); with `address` the input listens by itself.
//!
//! The request's body is the payload; metadata holds `http_method`, `http_path`, `http_query`,
//! `http_content_type`, `http_request_id` and each header as `http_header_<name>` (lower case, `-` written `_`; the
//! `authorization`, `cookie` and signature headers are left out). The caller is answered once the message was
//! delivered (see [`crate::ingest`]), or `503` when it was not; a request that fails the token or signature check
//! gets `401` and never becomes a message.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use schemars::JsonSchema;
use serde::Deserialize;
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::inputs::READ_CHUNK;
use airtruct_runtime::ingest::{IngestHub, IngestRequest, IngestResponse, Precheck, Registration};
use airtruct_runtime::kind::{Check, InputKind, Kind};
use airtruct_runtime::tasks::NamedTasks;
use airtruct_runtime::{Ack, BuildContext, Delivery, Error, Input, InputBatch, Metadata, message};

/// An HMAC-SHA256 signature of the body, checked before a request is accepted.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct HmacCheck {
    /// The shared key; write it as `${secret:NAME}`.
    pub secret: String,
    /// The header holding the signature, hex encoded (default `x-signature-256`).
    #[serde(default = "default_signature_header")]
    pub header: String,
    /// A prefix before the hex digits (default `sha256=`, as GitHub sends it).
    #[serde(default = "default_prefix")]
    pub prefix: String,
}

fn default_signature_header() -> String {
    "x-signature-256".into()
}

fn default_prefix() -> String {
    "sha256=".into()
}

/// Takes HTTP requests as messages.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct HttpServerInputConfig {
    /// Methods accepted (default `POST`); others get 405.
    #[serde(default = "default_methods")]
    pub methods: Vec<String>,
    /// Callers must send `Authorization: Bearer TOKEN`; write it as `${secret:NAME}`.
    #[serde(default)]
    pub token: Option<String>,
    /// Callers must sign the body with HMAC-SHA256.
    #[serde(default)]
    pub hmac: Option<HmacCheck>,
    /// Listen on this address (`0.0.0.0:4195`) instead of behind the coordinator's `/ingest/{stream}/...`; for
    /// `airtruct run`.
    #[serde(default)]
    pub address: Option<String>,
    /// Longest a caller waits for its message to be delivered (default 30s); then it gets 504 (the message may
    /// still be delivered).
    #[serde(default = "default_timeout")]
    pub timeout: airtruct_model::Duration,
}

fn default_methods() -> Vec<String> {
    vec!["POST".into()]
}

fn default_timeout() -> airtruct_model::Duration {
    airtruct_model::Duration(HttpServerInputConfig::DEFAULT_TIMEOUT)
}

impl HttpServerInputConfig {
    /// How long a caller waits when `timeout` is not set.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
}

impl Kind for HttpServerInputConfig {
    const NAME: &'static str = "http_server";
    const DESCRIPTION: &'static str = "Takes HTTP requests at the coordinator's /ingest/{stream}/... as messages; the \
         caller is answered once its message is delivered (with the processed message, through a sync_response \
         output)";
    const EXAMPLE: &'static str = r#"{"address": "127.0.0.1:0", "methods": ["POST"], "token": "change-me", "timeout": "10s"}"#;

    const CREDENTIALS: &'static [&'static str] = &["token", "hmac.secret"];

    fn check(&mut self, check: &mut Check<'_>) {
        for (field, message) in self.problems() {
            check.problem(field, message);
        }
        if self.address.is_some() {
            check.listener("address");
        }
    }
}

#[async_trait]
impl InputKind for HttpServerInputConfig {
    async fn build(&self, cx: &BuildContext) -> Result<Box<dyn Input>, Error> {
        if self.address.is_some() && cx.policy.as_ref().is_some_and(|p| !p.listeners) {
            return Err(Error::User(
                "http_server: a stream may not open a listener of its own: the operator's policy (`listeners`)"
                    .into(),
            ));
        }
        Ok(Box::new(
            self.open(cx.stream_id(), &cx.ingest, &cx.tasks).await?,
        ))
    }
}

impl HttpServerInputConfig {
    /// What is checked before a request's body is read.
    pub fn precheck(&self) -> Precheck {
        Precheck {
            methods: self.upper_methods(),
            token: self.token.clone(),
            signature_header: self.hmac.as_ref().map(|h| h.header.to_ascii_lowercase()),
        }
    }

    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            out.push((
                "token",
                "is empty: it would let anyone in (remove it to mean that)".to_string(),
            ));
        }
        if self.hmac.as_ref().is_some_and(|h| h.secret.is_empty()) {
            out.push(("hmac", "the secret is empty".to_string()));
        }
        if self.methods.is_empty() {
            out.push(("methods", "at least one method is needed".to_string()));
        }
        out
    }

    /// Starts taking requests: for `stream` through the hub, or on `address`.
    pub async fn open(
        &self,
        stream: Option<&str>,
        hub: &IngestHub,
        tasks: &NamedTasks,
    ) -> Result<HttpServerInput, Error> {
        let (tx, rx) = mpsc::channel(1024);
        let mut listener = None;
        let registration = match (&self.address, stream) {
            (Some(address), _) => {
                listener = Some(listen(address, tx, self.timeout.0, self.precheck(), tasks).await?);
                None
            }
            (None, Some(stream)) => Some(hub.register(stream, tx, self.precheck())),
            (None, None) => {
                return Err(Error::User(
                    "http_server: set `address` to listen on (`airtruct run` has no coordinator to receive \
                     requests for it)"
                        .into(),
                ));
            }
        };
        Ok(HttpServerInput {
            rx,
            gate: self.gate(),
            hub: hub.clone(),
            _registration: registration,
            _listener: listener,
        })
    }
}

/// The input of an `mcp_tool` stream: calls of the tool `tool` reach it through the hub, as `POST` requests whose
/// body is the call's arguments. The coordinator checked the caller (an API token with the `mcp` scope).
pub fn tool_input(stream: &str, tool: &str, hub: &IngestHub) -> HttpServerInput {
    let (tx, rx) = mpsc::channel(1024);
    let methods = vec!["POST".to_string()];
    let registration = hub.register(
        stream,
        tx,
        Precheck {
            methods: methods.clone(),
            token: None,
            signature_header: None,
        },
    );
    HttpServerInput {
        rx,
        gate: Gate {
            methods,
            token: None,
            hmac: None,
            tool: Some(tool.to_string()),
        },
        hub: hub.clone(),
        _registration: Some(registration),
        _listener: None,
    }
}

/// Serves every path on `address`, handing requests to the input, until the returned guard drops.
async fn listen(
    address: &str,
    tx: mpsc::Sender<IngestRequest>,
    timeout: Duration,
    check: Precheck,
    tasks: &NamedTasks,
) -> Result<tokio_util::sync::DropGuard, Error> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| Error::User(format!("http_server: listening on {address}: {e}")))?;
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (tx, check) = (tx.clone(), check.clone());
        async move {
            let headers = req.headers().clone();
            if let Err(refused) = check.check(req.method().as_str(), |name| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            }) {
                return to_http(refused);
            }
            let (request, rx) = match from_http(req, String::new(), 16 << 20).await {
                Ok(r) => r,
                Err(resp) => return to_http(resp),
            };
            if let Err(e) = tx.try_send(request) {
                let busy = matches!(e, mpsc::error::TrySendError::Full(_));
                return to_http(IngestResponse::error(
                    503,
                    if busy {
                        "too many requests waiting; send it again later"
                    } else {
                        "the stream is stopping"
                    },
                ));
            }
            to_http(await_reply(rx, timeout).await)
        }
    });
    let stop = tokio_util::sync::CancellationToken::new();
    let until = stop.clone();
    tasks.spawn("listener", async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(until.cancelled_owned())
            .await;
    });
    Ok(stop.drop_guard())
}

/// Reads an HTTP request into an [`IngestRequest`]; `path` is the path to record (the request's own when
/// empty). Bodies over `max_body` bytes get 413.
pub async fn from_http(
    req: axum::extract::Request,
    path: String,
    max_body: usize,
) -> Result<
    (
        IngestRequest,
        tokio::sync::oneshot::Receiver<IngestResponse>,
    ),
    IngestResponse,
> {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, max_body).await.map_err(|_| {
        IngestResponse::error(413, &format!("the body is larger than {max_body} bytes"))
    })?;
    let (reply, rx) = tokio::sync::oneshot::channel();
    let headers = parts
        .headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_ascii_lowercase(),
                v.to_str().ok()?.to_string(),
            ))
        })
        .collect();
    Ok((
        IngestRequest {
            method: parts.method.as_str().to_string(),
            path: if path.is_empty() {
                parts.uri.path().to_string()
            } else {
                path
            },
            query: parts.uri.query().unwrap_or("").to_string(),
            headers,
            body: body.to_vec(),
            token_checked: false,
            reply,
        },
        rx,
    ))
}

/// Waits for a request's answer, up to `timeout`.
pub async fn await_reply(
    rx: tokio::sync::oneshot::Receiver<IngestResponse>,
    timeout: Duration,
) -> IngestResponse {
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => {
            IngestResponse::error(503, "the stream stopped before the message was delivered")
        }
        Err(_) => IngestResponse::error(
            504,
            &format!("the message was not delivered within {timeout:?}; it may still be"),
        ),
    }
}

/// An [`IngestResponse`] as an axum response. The body is whatever the stream made of a caller's input, served
/// from the console's origin: browsers must not sniff it or run it.
pub fn to_http(r: IngestResponse) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    let status = axum::http::StatusCode::from_u16(r.status)
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [
            (header::CONTENT_TYPE, r.content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (header::CONTENT_SECURITY_POLICY, "sandbox".to_string()),
        ],
        r.body,
    )
        .into_response()
}

/// The running `http_server` input.
pub struct HttpServerInput {
    rx: mpsc::Receiver<IngestRequest>,
    gate: Gate,
    hub: IngestHub,
    _registration: Option<Registration>,
    /// Stops the input's own listener (with `address`) when the input goes.
    _listener: Option<tokio_util::sync::DropGuard>,
}

/// The header a coordinator's forwarded request carries the receiving worker's forward token in.
pub const FORWARD_HEADER: &str = "x-airtruct-forward";

/// Headers that carry credentials: never copied into metadata.
fn is_secret_header(name: &str, hmac: Option<&HmacCheck>) -> bool {
    matches!(
        name,
        "authorization" | "cookie" | "proxy-authorization" | FORWARD_HEADER
    ) || hmac.is_some_and(|h| h.header.eq_ignore_ascii_case(name))
}

/// What an `http_server` input checks of every request, and how it makes a message of one.
#[derive(Debug, Clone)]
pub struct Gate {
    methods: Vec<String>,
    token: Option<String>,
    hmac: Option<Arc<HmacCheck>>,
    /// For an `mcp_tool` input: the tool's name. Its messages carry `mcp_tool` and `http_request_id` only.
    tool: Option<String>,
}

impl HttpServerInputConfig {
    fn upper_methods(&self) -> Vec<String> {
        self.methods
            .iter()
            .map(|m| m.to_ascii_uppercase())
            .collect()
    }

    /// The checks of this input's options.
    pub fn gate(&self) -> Gate {
        Gate {
            methods: self.upper_methods(),
            token: self.token.clone(),
            hmac: self.hmac.clone().map(Arc::new),
            tool: None,
        }
    }
}

impl Gate {
    /// Checks a request; `Err` is the answer for a refused one.
    pub fn check(&self, r: &IngestRequest) -> Result<(), IngestResponse> {
        let header = |name: &str| {
            r.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        Precheck {
            methods: self.methods.clone(),
            token: self.token.clone().filter(|_| !r.token_checked),
            signature_header: None,
        }
        .check(&r.method, |n| header(n).map(str::to_string))?;
        if let Some(h) = &self.hmac {
            let name = h.header.to_ascii_lowercase();
            let sig = header(&name)
                .and_then(|v| v.strip_prefix(h.prefix.as_str()))
                .and_then(|hex| decode_hex(hex.trim()))
                .ok_or_else(|| {
                    IngestResponse::error(401, &format!("missing or malformed {name} signature"))
                })?;
            let mut mac = Hmac::<Sha256>::new_from_slice(h.secret.as_bytes())
                .map_err(|_| IngestResponse::error(500, "bad HMAC key"))?;
            mac.update(&r.body);
            mac.verify_slice(&sig).map_err(|_| {
                IngestResponse::error(
                    401,
                    &format!("the {name} signature does not match the body"),
                )
            })?;
        }
        Ok(())
    }

    /// The message of an accepted request, with `id` as its request id.
    pub fn to_message(&self, r: &IngestRequest, id: &str) -> airtruct_runtime::Message {
        let mut meta = Metadata::default();
        if let Some(tool) = &self.tool {
            meta.insert("mcp_tool", tool);
            meta.insert("http_request_id", id);
            return message(r.body.clone(), meta);
        }
        meta.insert("http_method", &r.method);
        meta.insert("http_path", &r.path);
        meta.insert("http_query", &r.query);
        meta.insert("http_request_id", id);
        for (k, v) in &r.headers {
            if k == "content-type" {
                meta.insert("http_content_type", v);
            } else if !is_secret_header(k, self.hmac.as_deref()) {
                meta.insert(&format!("http_header_{}", k.replace('-', "_")), v);
            }
        }
        message(r.body.clone(), meta)
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[async_trait]
impl Input for HttpServerInput {
    async fn read(&mut self) -> Result<Option<InputBatch>, Error> {
        let mut messages = Vec::new();
        let mut waiting = Vec::new();
        while messages.is_empty() {
            let Some(first) = self.rx.recv().await else {
                return Ok(None);
            };
            // Take what else is queued, up to a chunk, into the same batch.
            let mut requests = vec![first];
            while requests.len() < READ_CHUNK {
                match self.rx.try_recv() {
                    Ok(r) => requests.push(r),
                    Err(_) => break,
                }
            }
            for r in requests {
                if let Err(refused) = self.gate.check(&r) {
                    let _ = r.reply.send(refused);
                    continue;
                }
                let id = self.hub.request_id();
                self.hub.expect_response(&id);
                messages.push(self.gate.to_message(&r, &id));
                waiting.push((id, r.reply));
            }
        }
        let hub = self.hub.clone();
        let ack = Ack::new(move |d| {
            for (id, reply) in waiting {
                let answer = match d {
                    Delivery::Delivered => IngestResponse::from_messages(hub.take_response(&id)),
                    Delivery::NotDelivered => {
                        hub.take_response(&id);
                        IngestResponse::error(503, "the message was not delivered; send it again")
                    }
                };
                let _ = reply.send(answer);
            }
        });
        Ok(Some(InputBatch { messages, ack }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(
        body: &[u8],
        headers: Vec<(&str, &str)>,
    ) -> (
        IngestRequest,
        tokio::sync::oneshot::Receiver<IngestResponse>,
    ) {
        let (reply, rx) = tokio::sync::oneshot::channel();
        (
            IngestRequest {
                method: "POST".into(),
                path: "/hook".into(),
                query: "a=1".into(),
                headers: headers
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
                body: body.to_vec(),
                token_checked: false,
                reply,
            },
            rx,
        )
    }

    fn input(token: Option<&str>, hmac: Option<&str>) -> Gate {
        Gate {
            methods: vec!["POST".into()],
            token: token.map(str::to_string),
            hmac: hmac.map(|k| {
                Arc::new(HmacCheck {
                    secret: k.into(),
                    header: default_signature_header(),
                    prefix: default_prefix(),
                })
            }),
            tool: None,
        }
    }

    #[test]
    fn checks_tokens_and_signatures_and_keeps_credentials_out_of_metadata() {
        let i = input(Some("s3cret"), None);
        let (r, _) = request(
            b"x",
            vec![("authorization", "Bearer s3cret"), ("x-tenant", "t1")],
        );
        assert!(i.check(&r).is_ok());
        let m = i.to_message(&r, "id1");
        assert_eq!(
            airtruct_runtime::meta_get(&m, "http_header_x_tenant"),
            Some("t1")
        );
        assert_eq!(
            airtruct_runtime::meta_get(&m, "http_header_authorization"),
            None
        );
        assert_eq!(airtruct_runtime::meta_get(&m, "http_query"), Some("a=1"));
        let (r, _) = request(b"x", vec![("authorization", "Bearer nope")]);
        assert_eq!(i.check(&r).unwrap_err().status, 401);

        let i = input(None, Some("key"));
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"body");
        let sig: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let good = format!("sha256={sig}");
        let (r, _) = request(b"body", vec![("x-signature-256", good.as_str())]);
        assert!(i.check(&r).is_ok());
        let (r, _) = request(b"tampered", vec![("x-signature-256", good.as_str())]);
        let refused = i.check(&r).unwrap_err();
        assert_eq!(refused.status, 401);
        assert!(String::from_utf8_lossy(&refused.body).contains("does not match"));
    }
}
