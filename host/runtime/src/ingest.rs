//! HTTP ingest: how a request reaches the `http_server` input of a running stream, and how the answer gets back.
//!
//! The coordinator serves `/ingest/{stream}/...`. When the stream runs in the same process (standalone) it hands
//! the request to the stream's input through this process-wide hub; otherwise it forwards the request to the
//! worker that runs the stream, whose own ingest listener hands it to the hub there. An `http_server` input with
//! an `address` listens by itself instead (for `airtruct run`).
//!
//! The caller is answered once the message was delivered: `200` with the `sync_response` output's messages when
//! the stream has one (else `{"delivered": true}`), or `503` when it could not be delivered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

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
            .find_map(|m| meta_get(m, "http_status")?.parse::<u16>().ok())
            .filter(|s| (200..600).contains(s))
            .unwrap_or(200);
        let content_type = messages
            .iter()
            .find_map(|m| meta_get(m, "http_content_type").map(str::to_string));
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
}

static ROUTES: LazyLock<Mutex<HashMap<String, Route>>> = LazyLock::new(Default::default);
static NEXT: AtomicU64 = AtomicU64::new(1);

/// What `sync_response` outputs wrote, by request id, until the request's input acknowledgement takes it.
static RESPONSES: LazyLock<Mutex<HashMap<String, Vec<Message>>>> = LazyLock::new(Default::default);

/// A stream's place in the hub; dropping it removes the stream (unless a newer run took its place).
pub struct Registration {
    stream: String,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut routes = ROUTES.lock().expect("ingest lock");
        if routes.get(&self.stream).is_some_and(|r| r.id == self.id) {
            routes.remove(&self.stream);
        }
    }
}

/// Routes requests for `stream` to `tx`.
pub fn register(stream: &str, tx: mpsc::Sender<IngestRequest>) -> Registration {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    ROUTES
        .lock()
        .expect("ingest lock")
        .insert(stream.to_string(), Route { id, tx });
    Registration {
        stream: stream.to_string(),
        id,
    }
}

/// Whether a stream of this process takes requests.
pub fn is_local(stream: &str) -> bool {
    ROUTES.lock().expect("ingest lock").contains_key(stream)
}

/// Hands a request to the stream's input in this process; `None` when no stream of this process takes it.
/// The caller waits on the request's `reply`.
pub async fn dispatch(stream: &str, request: IngestRequest) -> Result<(), IngestRequest> {
    let tx = match ROUTES.lock().expect("ingest lock").get(stream) {
        Some(r) => r.tx.clone(),
        None => return Err(request),
    };
    tx.send(request).await.map_err(|e| e.0)
}

/// A new request id.
pub fn request_id() -> String {
    let mut b = [0u8; 12];
    // Unique enough within a process for correlating a request with its response.
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    b[..8].copy_from_slice(&n.to_le_bytes());
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    b[8..].copy_from_slice(&t.to_le_bytes());
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Records messages for a waiting request (the `sync_response` output).
pub fn respond(request_id: &str, message: Message) {
    RESPONSES
        .lock()
        .expect("ingest lock")
        .entry(request_id.to_string())
        .or_default()
        .push(message);
}

/// Takes what was recorded for a request.
pub fn take_response(request_id: &str) -> Vec<Message> {
    RESPONSES
        .lock()
        .expect("ingest lock")
        .remove(request_id)
        .unwrap_or_default()
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
        crate::meta_set(&mut m, "http_status", "422");
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
