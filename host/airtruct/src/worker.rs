//! A worker: registers with the coordinator, heartbeats, and runs the streams it is assigned, each under a
//! supervisor that retries a failing stream with backoff before reporting it failed. A worker that cannot renew
//! its lease stops its streams before the coordinator gives them to another worker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airtruct_auth::SecretKey;
use airtruct_engine::Engine;
use airtruct_runtime::checkpoint::CheckpointStore;
use airtruct_runtime::ingest::IngestHub;
use airtruct_runtime::{
    BuildContext, Error, StreamExit, StreamMetrics, StreamRef, Tasks, Uploaded, build_stream,
    run_stream, validate_stream_under,
};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use crate::client::{Client, ClientError};
use crate::protocol::{Assignment, HeartbeatRequest, RegisterResponse, ReplicaState, StreamReport};

/// Attempts before a failing stream is reported `failed`.
pub const MAX_ATTEMPTS: u32 = 5;
/// The wait before the second attempt; it doubles after each failure, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A run that stayed up this long was healthy: its failure starts the count of attempts again.
const STABLE: Duration = Duration::from_secs(60);
/// How long the coordinator may hold a heartbeat when nothing changed.
const WAIT: Duration = Duration::from_secs(1);
/// How long it may hold one while a stream of this worker is stopping.
const DRAIN_POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
struct Status {
    state: ReplicaState,
    reason: Option<String>,
    attempts: u32,
}

/// A stream this worker runs (or is stopping).
struct Running {
    version: i64,
    assigned_at: i64,
    started_at: i64,
    cancel: CancellationToken,
    status: Arc<Mutex<Status>>,
    metrics: Arc<StreamMetrics>,
    handle: JoinHandle<()>,
}

impl Running {
    fn report(&self, stream_id: &str, stopping: bool) -> StreamReport {
        let s = self.status.lock().expect("status lock").clone();
        StreamReport {
            stream_id: stream_id.to_string(),
            version: self.version,
            state: if stopping && !matches!(s.state, ReplicaState::Completed | ReplicaState::Failed)
            {
                ReplicaState::Stopping
            } else {
                s.state
            },
            reason: s.reason,
            attempts: s.attempts,
            started_at: self.started_at,
            assigned_at: self.assigned_at,
            metrics: self.metrics.snapshot(),
        }
    }
}

/// Checkpoints kept by the coordinator, saved in this worker's name.
struct WorkerCheckpoints {
    client: Client,
    worker_id: String,
}

#[async_trait::async_trait]
impl CheckpointStore for WorkerCheckpoints {
    async fn load(&self, stream: &str, key: &str) -> Result<Option<String>, Error> {
        self.client
            .checkpoint(stream, key)
            .await
            .map_err(|e| Error::External(e.to_string()))
    }

    async fn save(&self, stream: &str, key: &str, value: &str) -> Result<(), Error> {
        self.client
            .save_checkpoint(&self.worker_id, stream, key, value)
            .await
            .map_err(|e| Error::External(e.to_string()))
    }
}

/// A worker and the streams it runs.
pub struct Worker {
    client: Client,
    /// The id the coordinator gave it at its last registration.
    worker_id: String,
    engine: Engine,
    key: Option<Arc<SecretKey>>,
    name: String,
    running: HashMap<String, Running>,
    stopping: Vec<(String, Running)>,
    changed: Arc<Notify>,
    /// Where this worker's ingest listener is reached, sent with each heartbeat.
    pub ingest_url: Option<String>,
    /// Where its streams' `http_server` inputs take requests.
    ingest: IngestHub,
    /// Every task its streams run, by name.
    tasks: Tasks,
}

impl Worker {
    pub fn new(
        client: Client,
        engine: Engine,
        key: Option<Arc<SecretKey>>,
        name: String,
        ingest: IngestHub,
        tasks: Tasks,
    ) -> Self {
        Self {
            ingest,
            tasks,
            client,
            worker_id: String::new(),
            engine,
            key,
            name,
            running: HashMap::new(),
            stopping: Vec::new(),
            changed: Arc::new(Notify::new()),
            ingest_url: None,
        }
    }

    async fn register(&self, shutdown: &CancellationToken) -> Option<RegisterResponse> {
        let mut delay = Duration::from_millis(200);
        loop {
            match self.client.register(&self.name).await {
                Ok(r) => {
                    tracing::info!(worker = %r.worker_id, name = %self.name, "registered with the coordinator");
                    return Some(r);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot register with the coordinator: retrying")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// Runs until `shutdown`, then stops every stream (each drains what is in flight).
    pub async fn run(mut self, shutdown: CancellationToken) {
        let Some(mut reg) = self.register(&shutdown).await else {
            return;
        };
        self.worker_id = reg.worker_id.clone();
        // The lease is renewed when the coordinator receives a heartbeat; stop everything a little before it
        // would expire, so that no stream runs on two workers because of a partition.
        let mut renewed = Instant::now();
        while !shutdown.is_cancelled() {
            // Runs that finished stopping are reported once more, with their final counters, then forgotten.
            let finished: Vec<(String, i64)> = self
                .stopping
                .iter()
                .filter(|(_, r)| r.handle.is_finished())
                .map(|(id, r)| (id.clone(), r.started_at))
                .collect();
            let req = HeartbeatRequest {
                worker_id: reg.worker_id.clone(),
                streams: self.reports(),
                ingest_url: self.ingest_url.clone(),
                // A finished run is reported at once, and a draining one polled for.
                wait_ms: if !finished.is_empty() {
                    Duration::ZERO
                } else if !self.stopping.is_empty() {
                    DRAIN_POLL
                } else {
                    WAIT
                }
                .as_millis() as u64,
            };
            let sent = Instant::now();
            let changed = self.changed.clone();
            let answer = tokio::select! {
                r = self.client.heartbeat(req) => Some(r),
                // A stream finished or failed: report it now rather than after the wait.
                _ = changed.notified() => None,
                _ = shutdown.cancelled() => None,
            };
            match answer {
                None => continue,
                Some(Ok(resp)) => {
                    renewed = sent;
                    self.stopping
                        .retain(|(id, r)| !finished.contains(&(id.clone(), r.started_at)));
                    self.reconcile(resp.assignments);
                }
                Some(Err(ClientError::UnknownWorker)) => {
                    tracing::warn!(
                        "the coordinator forgot this worker: stopping its streams and registering again"
                    );
                    self.stop_all();
                    match self.register(&shutdown).await {
                        Some(r) => reg = r,
                        None => break,
                    }
                    self.worker_id = reg.worker_id.clone();
                    renewed = Instant::now();
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "heartbeat failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        _ = tokio::time::sleep(Duration::from_millis(300)) => {}
                    }
                }
            }
            let fence = Duration::from_millis(reg.lease_ms) * 4 / 5;
            if renewed.elapsed() > fence && !self.running.is_empty() {
                tracing::warn!(
                    since = ?renewed.elapsed(),
                    "lease not renewed: stopping every stream until the coordinator answers"
                );
                self.stop_all();
            }
        }
        self.stop_all();
        for (id, r) in self.stopping.drain(..) {
            if let Err(e) = r.handle.await {
                tracing::error!(stream = %id, error = %e, "stream task panicked");
            }
        }
        // Everything is drained: give the streams up now rather than when the lease expires.
        if let Err(e) = self.client.leave(&reg.worker_id).await {
            tracing::warn!(error = %e, "could not tell the coordinator that this worker leaves");
        }
        tracing::info!("worker stopped");
    }

    fn reports(&self) -> Vec<StreamReport> {
        let mut out: Vec<StreamReport> = self
            .running
            .iter()
            .map(|(id, r)| r.report(id, false))
            .collect();
        out.extend(self.stopping.iter().map(|(id, r)| r.report(id, true)));
        out
    }

    fn stop(&mut self, id: &str) {
        if let Some(r) = self.running.remove(id) {
            tracing::info!(stream = %id, version = r.version, "stopping stream");
            r.cancel.cancel();
            self.stopping.push((id.to_string(), r));
        }
    }

    fn stop_all(&mut self) {
        let ids: Vec<String> = self.running.keys().cloned().collect();
        for id in ids {
            self.stop(&id);
        }
    }

    /// Brings what runs to exactly `assignments`.
    fn reconcile(&mut self, assignments: Vec<Assignment>) {
        let wanted: HashMap<&str, (i64, i64)> = assignments
            .iter()
            .map(|a| (a.stream_id.as_str(), (a.version, a.assigned_at)))
            .collect();
        let stale: Vec<String> = self
            .running
            .iter()
            .filter(|(id, r)| wanted.get(id.as_str()) != Some(&(r.version, r.assigned_at)))
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            self.stop(&id);
        }
        for a in assignments {
            if !self.running.contains_key(&a.stream_id) {
                self.start(a);
            }
        }
    }

    fn start(&mut self, a: Assignment) {
        tracing::info!(stream = %a.stream_id, name = %a.name, version = a.version, "starting stream");
        let cancel = CancellationToken::new();
        let status = Arc::new(Mutex::new(Status {
            state: ReplicaState::Starting,
            reason: None,
            attempts: 0,
        }));
        let metrics = Arc::new(StreamMetrics::default());
        let handle = self.tasks.spawn(
            format!("stream {}: supervisor", a.stream_id),
            supervise(Supervised {
                ingest: self.ingest.clone(),
                tasks: self.tasks.clone(),
                client: self.client.clone(),
                checkpoints: Arc::new(WorkerCheckpoints {
                    client: self.client.clone(),
                    worker_id: self.worker_id.clone(),
                }),
                engine: self.engine.clone(),
                key: self.key.clone(),
                assignment: a.clone(),
                status: status.clone(),
                metrics: metrics.clone(),
                cancel: cancel.clone(),
                changed: self.changed.clone(),
            }),
        );
        self.running.insert(
            a.stream_id,
            Running {
                version: a.version,
                assigned_at: a.assigned_at,
                started_at: airtruct_store::now_ms(),
                cancel,
                status,
                metrics,
                handle,
            },
        );
    }
}

struct Supervised {
    ingest: IngestHub,
    tasks: Tasks,
    client: Client,
    checkpoints: Arc<dyn CheckpointStore>,
    engine: Engine,
    key: Option<Arc<SecretKey>>,
    assignment: Assignment,
    status: Arc<Mutex<Status>>,
    metrics: Arc<StreamMetrics>,
    cancel: CancellationToken,
    changed: Arc<Notify>,
}

impl Supervised {
    fn set(&self, state: ReplicaState, reason: Option<String>) {
        let mut s = self.status.lock().expect("status lock");
        s.state = state;
        s.reason = reason;
    }

    /// Decrypts the stream's secrets and puts them into its config.
    fn resolve(&self) -> Result<serde_json::Value, Error> {
        let a = &self.assignment;
        let mut values = HashMap::new();
        for s in &a.secrets {
            let key = self.key.as_ref().ok_or_else(|| {
                Error::User(format!(
                    "the stream uses secret \"{}\" but this worker has no secret key \
                     (set AIRTRUCT_SECRET_KEY or --secret-key-file to the coordinator's key)",
                    s.name
                ))
            })?;
            let v = key
                .decrypt(&s.name, &s.nonce, &s.ciphertext)
                .map_err(|e| Error::User(format!("secret \"{}\": {e}", s.name)))?;
            values.insert(s.name.clone(), v);
        }
        airtruct_model::resolve_secrets(&a.config, |n| values.get(n).cloned())
            .map_err(|e| Error::User(join_errors(e)))
    }

    /// The uploaded components of the stream: from this worker's compile cache by hash, or fetched from the
    /// coordinator once, checked against their hash, compiled and cached.
    async fn fetch_components(&self) -> Result<Uploaded, Error> {
        let mut uploaded = Uploaded::default();
        for c in &self.assignment.components {
            let engine = self.engine.clone();
            let sha = c.sha256.clone();
            let cached = tokio::task::spawn_blocking(move || engine.load_cached(&sha))
                .await
                .map_err(|e| Error::Internal(e.to_string()))?;
            let invalid = |e: airtruct_engine::LoadError| {
                Error::User(format!("processor \"{}\": {e}", c.name))
            };
            let loaded = match cached {
                Some(loaded) => loaded.map_err(invalid)?,
                None => {
                    let bytes = self
                        .client
                        .component(&c.sha256)
                        .await
                        .map_err(|e| Error::External(e.to_string()))?;
                    let engine = self.engine.clone();
                    let loaded = tokio::task::spawn_blocking(move || engine.load(&bytes))
                        .await
                        .map_err(|e| Error::Internal(e.to_string()))?
                        .map_err(invalid)?;
                    if loaded.sha256() != c.sha256 {
                        return Err(Error::External(format!(
                            "processor \"{}\" version {}: the bytes received do not match hash {}",
                            c.name, c.version, c.sha256
                        )));
                    }
                    tracing::info!(processor = %c.name, version = c.version, sha256 = %c.sha256, "fetched and compiled an uploaded processor");
                    loaded
                }
            };
            uploaded.insert(&c.name, c.version, loaded);
        }
        Ok(uploaded)
    }

    async fn attempt(&self) -> Result<StreamExit, Error> {
        let a = &self.assignment;
        // Whoever taps the stream here sees this run until it ends.
        let (tap, _tap) = self.ingest.taps().open(&a.stream_id);
        let cx = BuildContext::new(
            self.engine.clone(),
            Some(StreamRef {
                id: a.stream_id.clone(),
                version: a.version,
            }),
            self.metrics.clone(),
            self.ingest.clone(),
            self.cancel.clone(),
            self.tasks.named(format!("stream {}", a.stream_id)),
        )
        .with_policy(a.policy.clone().map(Arc::new))
        .with_checkpoints(self.checkpoints.clone())
        .with_tap(tap);
        let start = async {
            let config = self.resolve()?;
            let uploaded = self.fetch_components().await?;
            let engine = self.engine.clone();
            let policy = a.policy.clone();
            // A config that does not validate here (a secret that changed it, a component that cannot load) is
            // the user's to fix: no retry makes it valid.
            let plan = tokio::task::spawn_blocking(move || {
                validate_stream_under(
                    airtruct_connectors::registry(),
                    &engine,
                    &config,
                    &uploaded,
                    policy.as_ref(),
                )
            })
            .await
            .map_err(|e| Error::Internal(format!("validation crashed: {e}")))?
            .map_err(|e| Error::User(format!("the config is not valid: {}", join_errors(e))))?;
            build_stream(plan, cx).await
        };
        // Stopped while starting: nothing was read yet, so nothing needs draining.
        let built = tokio::select! {
            built = start => built?,
            _ = self.cancel.cancelled() => return Ok(StreamExit::Stopped),
        };
        self.set(ReplicaState::Running, None);
        self.changed.notify_one();
        run_stream(built).await
    }
}

fn join_errors(errors: Vec<airtruct_model::ValidationError>) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Runs a stream until it completes, is stopped, or fails [`MAX_ATTEMPTS`] times in a row.
async fn supervise(s: Supervised) {
    let id = s.assignment.stream_id.clone();
    let mut backoff = FIRST_BACKOFF;
    loop {
        s.status.lock().expect("status lock").attempts += 1;
        let started = Instant::now();
        let result = s.attempt().await;
        let was_running = s.status.lock().expect("status lock").state == ReplicaState::Running;
        if result.is_err() && was_running && started.elapsed() >= STABLE {
            // It failed after a long healthy run: this is its first failure, not its next one.
            s.status.lock().expect("status lock").attempts = 1;
            backoff = FIRST_BACKOFF;
        }
        let attempt = s.status.lock().expect("status lock").attempts;
        match result {
            Ok(StreamExit::Completed) => {
                tracing::info!(stream = %id, "stream completed");
                s.set(ReplicaState::Completed, None);
                break;
            }
            Ok(StreamExit::Stopped) => {
                tracing::info!(stream = %id, "stream stopped");
                break;
            }
            Err(e) if s.cancel.is_cancelled() => {
                let reason = e.to_string();
                tracing::warn!(stream = %id, reason = %reason, "stream stopped with an error");
                break;
            }
            // A config or data error: retrying cannot help, so the stream fails now with the problem.
            Err(Error::User(reason)) => {
                tracing::error!(stream = %id, reason = %reason, "stream failed: its config or data is wrong");
                s.set(ReplicaState::Failed, Some(reason));
                break;
            }
            Err(e) if attempt >= MAX_ATTEMPTS => {
                let reason = e.to_string();
                tracing::error!(stream = %id, attempts = attempt, reason = %reason, "stream failed");
                s.set(
                    ReplicaState::Failed,
                    Some(format!("failed {attempt} times; last error: {reason}")),
                );
                break;
            }
            Err(e) => {
                let reason = e.to_string();
                tracing::warn!(stream = %id, attempt, retry_in = ?backoff, reason = %reason, "stream failed: retrying");
                s.set(ReplicaState::Retrying, Some(reason));
                s.changed.notify_one();
                tokio::select! {
                    _ = s.cancel.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                s.set(ReplicaState::Starting, None);
            }
        }
    }
    s.changed.notify_one();
}
