//! HTTP ingest: how a request reaches the `http_server` input of a running stream, and how the answer gets back.
//!
//! The coordinator serves `/ingest/{stream}/...`. When the stream runs in the same process (standalone) it hands
//! the request to the stream's input through this process's [`IngestHub`]; otherwise it forwards the request to the
//! worker that runs the stream, whose own ingest listener hands it to the hub there. An `http_server` input with
//! an `address` listens by itself instead (for `airtruct run`).
//!
//! The caller is answered once the message was delivered: `200` with the `sync_response` output's messages when
//! the stream has one (else `{"delivered": true}`), or `503` when it could not be delivered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::{Message, meta_get};

/// One HTTP request for a stream.
#[derive(Debug)]
pub struct IngestRequest {
    pub method: String,
    /// The path after `/ingest/{stream}` (`/orders`), or the whole path with an input's own listener.
    pub path: String,
    pub query: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The caller's bearer token was checked by the coordinator, which forwards no caller credentials.
    pub token_checked: bool,
    pub reply: oneshot::Sender<IngestResponse>,
}

/// The answer to an [`IngestRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestResponse {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl IngestResponse {
    /// A JSON error body `{"error": message}`, the API's shape.
    pub fn error(status: u16, message: &str) -> Self {
        Self {
            status,
            content_type: "application/json".into(),
            body: serde_json::to_vec(&serde_json::json!({ "error": message })).unwrap_or_default(),
        }
    }

    fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            content_type: "application/json".into(),
            body: serde_json::to_vec(&body).unwrap_or_default(),
        }
    }

    /// The answer for messages the `sync_response` output got (none: `{"delivered": true}`).
    pub fn from_messages(messages: Vec<Message>) -> Self {
        let status = messages
            .iter()
            .find_map(|m| meta_get(m, "http_response_status")?.parse::<u16>().ok())
            .filter(|s| (200..600).contains(s))
            .unwrap_or(200);
        let content_type = messages
            .iter()
            .find_map(|m| meta_get(m, "http_response_content_type").map(str::to_string));
        match messages.len() {
            0 => Self::json(200, serde_json::json!({ "delivered": true })),
            1 => {
                let m = messages.into_iter().next().expect("one message");
                let content_type = content_type.unwrap_or_else(|| guess_type(&m.payload));
                Self {
                    status,
                    content_type,
                    body: m.payload,
                }
            }
            _ => {
                let all_json: Option<Vec<serde_json::Value>> = messages
                    .iter()
                    .map(|m| serde_json::from_slice(&m.payload).ok())
                    .collect();
                match all_json {
                    Some(values) => Self::json(status, serde_json::Value::Array(values)),
                    None => Self {
                        status,
                        content_type: content_type
                            .unwrap_or_else(|| "text/plain; charset=utf-8".into()),
                        body: messages
                            .into_iter()
                            .map(|m| m.payload)
                            .collect::<Vec<_>>()
                            .join(&b'\n'),
                    },
                }
            }
        }
    }
}

fn guess_type(payload: &[u8]) -> String {
    if serde_json::from_slice::<serde::de::IgnoredAny>(payload).is_ok() {
        "application/json".into()
    } else if std::str::from_utf8(payload).is_ok() {
        "text/plain; charset=utf-8".into()
    } else {
        "application/octet-stream".into()
    }
}

struct Route {
    id: u64,
    tx: mpsc::Sender<IngestRequest>,
    check: Precheck,
}

/// What can be checked of a request before its body is read: a refused caller costs no body and no queue slot.
#[derive(Debug, Clone, Default)]
pub struct Precheck {
    /// Accepted methods, upper case.
    pub methods: Vec<String>,
    /// The bearer token callers must send.
    pub token: Option<String>,
    /// The header that must carry a signature (lower case).
    pub signature_header: Option<String>,
}

impl Precheck {
    /// Checks the method and the credentials the headers carry.
    pub fn check(
        &self,
        method: &str,
        header: impl Fn(&str) -> Option<String>,
    ) -> Result<(), IngestResponse> {
        if !self.methods.iter().any(|m| m == method) {
            return Err(IngestResponse::error(
                405,
                &format!(
                    "method {method} is not accepted here (accepted: {})",
                    self.methods.join(", ")
                ),
            ));
        }
        if let Some(token) = &self.token {
            let given = header("authorization").unwrap_or_default();
            let given = given
                .get(..7)
                .filter(|p| p.eq_ignore_ascii_case("bearer "))
                .map_or("", |_| given[7..].trim());
            if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
                return Err(IngestResponse::error(401, "missing or wrong bearer token"));
            }
        }
        if let Some(h) = &self.signature_header
            && header(h).is_none()
        {
            return Err(IngestResponse::error(
                401,
                &format!("missing {h} signature"),
            ));
        }
        Ok(())
    }
}

/// Compares without leaking where the first difference is.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The hub of one process: which streams take requests here, the answers their `sync_response` outputs
/// recorded, and the live taps of the streams running here. Clones share it; the server makes one and hands it to
/// the API and to every stream it builds.
#[derive(Clone, Default)]
pub struct IngestHub {
    inner: Arc<Hub>,
}

#[derive(Default)]
struct Hub {
    routes: Mutex<HashMap<String, Route>>,
    next: AtomicU64,
    /// What `sync_response` outputs wrote, by request id, until the request's input acknowledgement takes it.
    responses: Mutex<HashMap<String, Vec<Message>>>,
    taps: crate::tap::Taps,
}

/// A stream's place in the hub; dropping it removes the stream (unless a newer run took its place).
pub struct Registration {
    hub: IngestHub,
    stream: String,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut routes = self.hub.inner.routes.lock().expect("ingest lock");
        if routes.get(&self.stream).is_some_and(|r| r.id == self.id) {
            routes.remove(&self.stream);
        }
    }
}

impl IngestHub {
    /// The live taps of the streams running in this process.
    pub fn taps(&self) -> &crate::tap::Taps {
        &self.inner.taps
    }

    /// Routes requests for `stream` to `tx`, after `check`.
    pub fn register(
        &self,
        stream: &str,
        tx: mpsc::Sender<IngestRequest>,
        check: Precheck,
    ) -> Registration {
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        self.inner
            .routes
            .lock()
            .expect("ingest lock")
            .insert(stream.to_string(), Route { id, tx, check });
        Registration {
            hub: self.clone(),
            stream: stream.to_string(),
            id,
        }
    }

    /// Whether a stream of this process takes requests.
    pub fn is_local(&self, stream: &str) -> bool {
        self.inner
            .routes
            .lock()
            .expect("ingest lock")
            .contains_key(stream)
    }

    /// Runs the stream's [`Precheck`] (`None`: no stream of this process takes requests for it).
    pub fn precheck(
        &self,
        stream: &str,
        method: &str,
        header: impl Fn(&str) -> Option<String>,
    ) -> Option<Result<(), IngestResponse>> {
        Some(self.check_of(stream)?.check(method, header))
    }

    /// [`IngestHub::precheck`] of a request the coordinator forwarded: it checked the bearer token already and
    /// did not forward it.
    pub fn precheck_forwarded(
        &self,
        stream: &str,
        method: &str,
        header: impl Fn(&str) -> Option<String>,
    ) -> Option<Result<(), IngestResponse>> {
        let mut check = self.check_of(stream)?;
        check.token = None;
        Some(check.check(method, header))
    }

    fn check_of(&self, stream: &str) -> Option<Precheck> {
        Some(
            self.inner
                .routes
                .lock()
                .expect("ingest lock")
                .get(stream)?
                .check
                .clone(),
        )
    }

    /// Hands a request to the stream's input in this process. A full queue answers 503 at once rather than
    /// holding the caller and its body.
    pub fn dispatch(&self, stream: &str, request: IngestRequest) -> Result<(), IngestResponse> {
        let tx = match self.inner.routes.lock().expect("ingest lock").get(stream) {
            Some(r) => r.tx.clone(),
            None => {
                return Err(IngestResponse::error(
                    503,
                    "the stream does not run here now; send it again",
                ));
            }
        };
        tx.try_send(request).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => IngestResponse::error(
                503,
                "the stream has too many requests waiting; send it again later",
            ),
            mpsc::error::TrySendError::Closed(_) => {
                IngestResponse::error(503, "the stream is stopping; send it again")
            }
        })
    }

    /// A new request id.
    pub fn request_id(&self) -> String {
        let mut b = [0u8; 12];
        // Unique enough within a process for correlating a request with its response.
        let n = self.inner.next.fetch_add(1, Ordering::Relaxed);
        b[..8].copy_from_slice(&n.to_le_bytes());
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        b[8..].copy_from_slice(&t.to_le_bytes());
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// Marks a request as waiting for its answer (the input, when it hands the message on).
    pub fn expect_response(&self, request_id: &str) {
        self.inner
            .responses
            .lock()
            .expect("ingest lock")
            .insert(request_id.to_string(), Vec::new());
    }

    /// Records a message for a waiting request (the `sync_response` output); a request already answered (or
    /// from before a restart) is not waiting any more, and its message is dropped.
    pub fn respond(&self, request_id: &str, message: Message) -> bool {
        match self
            .inner
            .responses
            .lock()
            .expect("ingest lock")
            .get_mut(request_id)
        {
            Some(v) => {
                v.push(message);
                true
            }
            None => false,
        }
    }

    /// Takes what was recorded for a request.
    pub fn take_response(&self, request_id: &str) -> Vec<Message> {
        self.inner
            .responses
            .lock()
            .expect("ingest lock")
            .remove(request_id)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_with_one_payload_an_array_or_a_status_set_in_metadata() {
        let one = IngestResponse::from_messages(vec![crate::message(
            br#"{"a":1}"#.to_vec(),
            Default::default(),
        )]);
        assert_eq!(
            (one.status, one.content_type.as_str()),
            (200, "application/json")
        );
        let two = IngestResponse::from_messages(vec![
            crate::message(b"1".to_vec(), Default::default()),
            crate::message(br#"{"b":2}"#.to_vec(), Default::default()),
        ]);
        assert_eq!(two.body, br#"[1,{"b":2}]"#);
        let mut m = crate::message(b"nope".to_vec(), Default::default());
        crate::meta_set(&mut m, "http_response_status", "422");
        let r = IngestResponse::from_messages(vec![m]);
        assert_eq!(
            (r.status, r.content_type.as_str()),
            (422, "text/plain; charset=utf-8")
        );
        assert_eq!(
            IngestResponse::from_messages(vec![]).body,
            br#"{"delivered":true}"#
        );
    }
}
