//! How a worker talks to its coordinator: a direct call in `standalone`, the worker protocol over HTTP
//! otherwise (with the worker token).

use std::sync::Arc;
use std::time::Duration;

use crate::coordinator::{Coordinator, ProtocolError};
use crate::protocol::{
    HeartbeatRequest, HeartbeatResponse, LeaveRequest, RegisterRequest, RegisterResponse,
};

/// How a worker reaches its coordinator: in the same process (`standalone`) or over HTTP.
#[derive(Clone)]
pub enum Client {
    Local(Arc<Coordinator>),
    Remote {
        http: reqwest::Client,
        base: String,
        token: String,
    },
}

/// Why a call to the coordinator failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the coordinator does not know this worker")]
    UnknownWorker,
    #[error("{0}")]
    Other(String),
}

impl Client {
    /// A client for the coordinator at `base` (`http://host:8080`).
    pub fn remote(base: &str, token: &str) -> Self {
        Self::Remote {
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(2))
                .build()
                .expect("an HTTP client with default TLS settings"),
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
        }
    }

    async fn post<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &Req,
        timeout: Duration,
    ) -> Result<Resp, ClientError> {
        let Self::Remote { http, base, token } = self else {
            unreachable!("post is only called on remote clients")
        };
        let resp = http
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(body)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| ClientError::Other(format!("calling {base}: {e}")))?;
        let status = resp.status();
        if status.is_success() {
            return resp
                .json()
                .await
                .map_err(|e| ClientError::Other(format!("reading the coordinator's answer: {e}")));
        }
        let text = resp.text().await.unwrap_or_default();
        match status.as_u16() {
            // The coordinator answers 410 Gone for a worker id it does not know (any more): register again.
            410 => Err(ClientError::UnknownWorker),
            401 => Err(ClientError::Other(
                "the coordinator refused the worker token (check --worker-token / AIRTRUCT_WORKER_TOKEN)".into(),
            )),
            _ => Err(ClientError::Other(format!("coordinator answered {status}: {text}"))),
        }
    }

    pub(crate) async fn register(&self, name: &str) -> Result<RegisterResponse, ClientError> {
        match self {
            Self::Local(c) => c
                .register(name)
                .await
                .map_err(|e| ClientError::Other(e.to_string())),
            Self::Remote { .. } => {
                let req = RegisterRequest { name: name.into() };
                self.post("/api/v1/worker/register", &req, Duration::from_secs(5))
                    .await
            }
        }
    }

    /// The bytes of an uploaded component, by hash.
    pub(crate) async fn component(&self, sha256: &str) -> Result<Vec<u8>, ClientError> {
        match self {
            Self::Local(c) => c
                .store
                .get_blob(sha256)
                .await
                .map_err(|e| ClientError::Other(e.to_string())),
            Self::Remote { http, base, token } => {
                let resp = http
                    .get(format!("{base}/api/v1/worker/components/{sha256}"))
                    .bearer_auth(token)
                    .timeout(Duration::from_secs(120))
                    .send()
                    .await
                    .map_err(|e| ClientError::Other(format!("fetching component {sha256}: {e}")))?;
                if !resp.status().is_success() {
                    return Err(ClientError::Other(format!(
                        "fetching component {sha256}: the coordinator answered {}",
                        resp.status()
                    )));
                }
                let bytes = resp
                    .bytes()
                    .await
                    .map_err(|e| ClientError::Other(format!("fetching component {sha256}: {e}")))?;
                Ok(bytes.to_vec())
            }
        }
    }

    pub(crate) async fn leave(&self, worker_id: &str) -> Result<(), ClientError> {
        match self {
            Self::Local(c) => c
                .leave(worker_id)
                .await
                .map_err(|e| ClientError::Other(e.to_string())),
            Self::Remote { http, base, token } => {
                let resp = http
                    .post(format!("{base}/api/v1/worker/leave"))
                    .bearer_auth(token)
                    .json(&LeaveRequest {
                        worker_id: worker_id.into(),
                    })
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await
                    .map_err(|e| ClientError::Other(e.to_string()))?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(ClientError::Other(format!(
                        "the coordinator answered {}",
                        resp.status()
                    )))
                }
            }
        }
    }

    pub(crate) async fn heartbeat(
        &self,
        req: HeartbeatRequest,
    ) -> Result<HeartbeatResponse, ClientError> {
        match self {
            Self::Local(c) => c.heartbeat(req).await.map_err(|e| match e {
                ProtocolError::UnknownWorker(_) => ClientError::UnknownWorker,
                other => ClientError::Other(other.to_string()),
            }),
            Self::Remote { .. } => {
                let timeout = Duration::from_millis(req.wait_ms) + Duration::from_secs(2);
                self.post("/api/v1/worker/heartbeat", &req, timeout).await
            }
        }
    }
}
