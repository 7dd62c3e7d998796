//! How a worker talks to its coordinator: a direct call in `standalone`, the worker protocol over HTTP
//! otherwise: it registers with the worker (join) token and then uses the credential it was given.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::coordinator::{Coordinator, ProtocolError};
use crate::protocol::{
    CheckpointBody, HeartbeatRequest, HeartbeatResponse, LeaveRequest, RegisterRequest,
    RegisterResponse,
};

/// How a worker reaches its coordinator: in the same process (`standalone`) or over HTTP.
#[derive(Clone)]
pub enum Client {
    Local(Arc<Coordinator>),
    Remote {
        http: reqwest::Client,
        /// The coordinators it may talk to.
        bases: Arc<Bases>,
        /// The join token.
        token: String,
        /// What the last registration gave this worker.
        session: Arc<Mutex<Option<Session>>>,
    },
}

/// The coordinators a worker may talk to (all share one store, so any of them answers), and the one it talks
/// to now: after a call that could not reach it, the next.
pub struct Bases {
    urls: Vec<String>,
    current: AtomicUsize,
}

impl Bases {
    fn new(urls: &str) -> Self {
        Self {
            urls: urls
                .split(',')
                .map(|u| u.trim().trim_end_matches('/').to_string())
                .filter(|u| !u.is_empty())
                .collect(),
            current: AtomicUsize::new(0),
        }
    }

    /// The coordinator to call now.
    fn now(&self) -> String {
        self.urls[self.current.load(Ordering::Relaxed) % self.urls.len()].clone()
    }

    /// A call to `tried` did not reach it (or it answered that it is unavailable): the next call goes to the
    /// next coordinator, unless another call moved on already.
    fn failed(&self, tried: &str) {
        if self.urls.len() < 2 {
            return;
        }
        let at = self.current.load(Ordering::Relaxed);
        if self.urls[at % self.urls.len()] == tried
            && self
                .current
                .compare_exchange(at, at + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let next = &self.urls[(at + 1) % self.urls.len()];
            tracing::warn!(from = tried, to = %next, "the coordinator is out of reach: trying the next one");
        }
    }
}

/// A registered worker's own secrets.
#[derive(Debug, Clone)]
pub struct Session {
    pub credential: String,
    pub forward_token: String,
}

/// Why a call to the coordinator failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the coordinator does not know this worker")]
    UnknownWorker,
    #[error("{0}")]
    Other(String),
}

/// An error with its causes (`error sending request: ...: invalid peer certificate: UnknownIssuer`).
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

impl Client {
    /// A client for the coordinator at `base` (`http://host:8080` or `https://...`; several, separated by
    /// commas, for coordinators sharing a store); `ca` is a PEM file of certificates to trust besides the
    /// system's (for a coordinator with its own CA).
    pub fn remote(base: &str, token: &str, ca: Option<&std::path::Path>) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let bases = Bases::new(base);
        anyhow::ensure!(!bases.urls.is_empty(), "no coordinator URL in \"{base}\"");
        let mut http = reqwest::Client::builder().connect_timeout(Duration::from_secs(2));
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).with_context(|| format!("reading \"{}\"", ca.display()))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("reading the certificates in \"{}\"", ca.display()))?
            {
                http = http.add_root_certificate(cert);
            }
        }
        Ok(Self::Remote {
            http: http.build().context("building the HTTP client")?,
            bases: Arc::new(bases),
            token: token.to_string(),
            session: Arc::default(),
        })
    }

    /// What the coordinator's forwarded ingest requests carry, once registered.
    pub fn forward_token(&self) -> Option<String> {
        match self {
            Self::Local(_) => None,
            Self::Remote { session, .. } => session
                .lock()
                .expect("session lock")
                .as_ref()
                .map(|s| s.forward_token.clone()),
        }
    }

    /// The bearer for a call: the join token to register, the worker's credential after.
    fn bearer(&self, joining: bool) -> Result<String, ClientError> {
        let Self::Remote { token, session, .. } = self else {
            unreachable!("bearer is only asked of remote clients")
        };
        if joining {
            return Ok(token.clone());
        }
        session
            .lock()
            .expect("session lock")
            .as_ref()
            .map(|s| s.credential.clone())
            .ok_or(ClientError::UnknownWorker)
    }

    async fn post<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &Req,
        timeout: Duration,
    ) -> Result<Resp, ClientError> {
        let Self::Remote { http, bases, .. } = self else {
            unreachable!("post is only called on remote clients")
        };
        let base = &bases.now();
        let joining = path.ends_with("/register");
        let resp = http
            .post(format!("{base}{path}"))
            .bearer_auth(self.bearer(joining)?)
            .json(body)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| {
                bases.failed(base);
                ClientError::Other(format!("calling {base}: {}", causes(&e)))
            })?;
        let status = resp.status();
        if matches!(status.as_u16(), 502..=504) {
            bases.failed(base);
        }
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
            // A credential the coordinator no longer takes (its join token changed): register again.
            401 if !joining => Err(ClientError::UnknownWorker),
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
            Self::Remote { session, .. } => {
                let req = RegisterRequest { name: name.into() };
                let resp: RegisterResponse = self
                    .post("/api/v1/worker/register", &req, Duration::from_secs(5))
                    .await?;
                *session.lock().expect("session lock") = Some(Session {
                    credential: resp.credential.clone(),
                    forward_token: resp.forward_token.clone(),
                });
                Ok(resp)
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
            Self::Remote { http, bases, .. } => {
                let base = &bases.now();
                let resp = http
                    .get(format!("{base}/api/v1/worker/components/{sha256}"))
                    .bearer_auth(self.bearer(false)?)
                    .timeout(Duration::from_secs(120))
                    .send()
                    .await
                    .map_err(|e| {
                        bases.failed(base);
                        ClientError::Other(format!("fetching component {sha256}: {e}"))
                    })?;
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
            Self::Remote { http, bases, .. } => {
                let base = &bases.now();
                let resp = http
                    .post(format!("{base}/api/v1/worker/leave"))
                    .bearer_auth(self.bearer(false)?)
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
            Self::Local(c) => c.heartbeat(req, None).await.map_err(|e| match e {
                ProtocolError::UnknownWorker(_) => ClientError::UnknownWorker,
                other => ClientError::Other(other.to_string()),
            }),
            Self::Remote { .. } => {
                let timeout = Duration::from_millis(req.wait_ms) + Duration::from_secs(2);
                self.post("/api/v1/worker/heartbeat", &req, timeout).await
            }
        }
    }

    /// The URL of a stream's checkpoint, each part percent-encoded.
    fn checkpoint_url(base: &str, stream: &str, key: &str) -> Result<reqwest::Url, ClientError> {
        let mut url = reqwest::Url::parse(base)
            .map_err(|e| ClientError::Other(format!("coordinator URL {base}: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| ClientError::Other(format!("coordinator URL {base}: not a base")))?
            .pop_if_empty()
            .extend(["api", "v1", "worker", "streams", stream, "checkpoints", key]);
        Ok(url)
    }

    /// A stream's checkpoint under `key` (JSON text).
    pub(crate) async fn checkpoint(
        &self,
        stream: &str,
        key: &str,
    ) -> Result<Option<String>, ClientError> {
        match self {
            Self::Local(c) => c
                .store
                .checkpoint(stream, key)
                .await
                .map_err(|e| ClientError::Other(e.to_string())),
            Self::Remote { http, bases, .. } => {
                let base = &bases.now();
                let resp = http
                    .get(Self::checkpoint_url(base, stream, key)?)
                    .bearer_auth(self.bearer(false)?)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await
                    .map_err(|e| {
                        ClientError::Other(format!("reading checkpoint {key}: {}", causes(&e)))
                    })?;
                if !resp.status().is_success() {
                    return Err(ClientError::Other(format!(
                        "reading checkpoint {key}: the coordinator answered {}",
                        resp.status()
                    )));
                }
                let body: CheckpointBody = resp
                    .json()
                    .await
                    .map_err(|e| ClientError::Other(format!("reading checkpoint {key}: {e}")))?;
                Ok((!body.value.is_null()).then(|| body.value.to_string()))
            }
        }
    }

    /// Saves a stream's checkpoint; refused when the stream is not (any more) assigned to `worker`.
    pub(crate) async fn save_checkpoint(
        &self,
        worker: &str,
        stream: &str,
        key: &str,
        value: &str,
    ) -> Result<(), ClientError> {
        match self {
            Self::Local(c) => c
                .store
                .save_checkpoint(stream, worker, key, value)
                .await
                .map_err(|e| ClientError::Other(e.to_string())),
            Self::Remote { http, bases, .. } => {
                let base = &bases.now();
                let resp = http
                    .put(Self::checkpoint_url(base, stream, key)?)
                    .bearer_auth(self.bearer(false)?)
                    .json(&CheckpointBody {
                        value: serde_json::from_str(value).map_err(|e| {
                            ClientError::Other(format!("checkpoint {key} is not JSON: {e}"))
                        })?,
                    })
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await
                    .map_err(|e| {
                        ClientError::Other(format!("saving checkpoint {key}: {}", causes(&e)))
                    })?;
                if resp.status().is_success() {
                    return Ok(());
                }
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                Err(ClientError::Other(format!(
                    "saving checkpoint {key}: the coordinator answered {status}: {text}"
                )))
            }
        }
    }
}
