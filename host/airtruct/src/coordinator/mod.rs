//! The coordinator: owns the store, places streams on workers (`schedule`), answers the worker protocol and
//! turns what workers report into stream statuses (`completed`, `failed`) and counters.

pub mod schedule;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airtruct_auth::SecretKey;
use airtruct_engine::Engine;
use airtruct_runtime::MetricsSnapshot;
use airtruct_store::{Store, StoreError, StreamRecord, StreamStatus, WorkerState, new_id, now_ms};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::protocol::{
    Assignment, ComponentRef, HeartbeatRequest, HeartbeatResponse, RegisterResponse, ReplicaState,
    SealedSecret, StreamReport,
};

/// Timing of leases and scheduling.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How long a worker keeps its streams without a heartbeat.
    pub lease: Duration,
    /// How often placement runs when nothing asks for it sooner.
    pub schedule_every: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(5),
            schedule_every: Duration::from_millis(500),
        }
    }
}

/// What a worker last reported.
#[derive(Debug, Clone)]
pub struct WorkerReport {
    pub streams: Vec<StreamReport>,
}

/// Failed logins per user name: after [`LoginThrottle::MAX_FAILURES`] failures in a row, that name is refused for
/// [`LoginThrottle::LOCKOUT`], which makes guessing a password slow without locking a user out for long.
#[derive(Default)]
pub struct LoginThrottle(Mutex<HashMap<String, (u32, std::time::Instant)>>);

impl LoginThrottle {
    pub const MAX_FAILURES: u32 = 5;
    pub const LOCKOUT: Duration = Duration::from_secs(60);

    /// Starts a login attempt: `Err(wait)` when `username` is locked; otherwise the attempt counts as a failure
    /// until [`LoginThrottle::succeeded`], so parallel guesses cannot outrun the count.
    pub fn attempt(&self, username: &str) -> Result<(), Duration> {
        let mut map = self.0.lock().expect("throttle lock");
        if let Some((n, last)) = map.get(username) {
            let elapsed = last.elapsed();
            if *n >= Self::MAX_FAILURES && elapsed < Self::LOCKOUT {
                return Err(Self::LOCKOUT - elapsed);
            }
        }
        if map.len() > 10_000 {
            map.retain(|_, (_, last)| last.elapsed() < Self::LOCKOUT);
        }
        let entry = map
            .entry(username.to_string())
            .or_insert((0, std::time::Instant::now()));
        if entry.1.elapsed() >= Self::LOCKOUT {
            entry.0 = 0;
        }
        entry.0 += 1;
        entry.1 = std::time::Instant::now();
        Ok(())
    }

    pub fn succeeded(&self, username: &str) {
        self.0.lock().expect("throttle lock").remove(username);
    }
}

/// The coordinator's shared state.
pub struct Coordinator {
    pub store: Store,
    pub engine: Engine,
    pub key: Arc<SecretKey>,
    pub timing: Timing,
    pub logins: LoginThrottle,
    worker_token_hash: String,
    worker_token: String,
    /// For forwarding ingest requests to workers.
    pub http: reqwest::Client,
    ingest_turn: std::sync::atomic::AtomicUsize,
    reports: Mutex<HashMap<String, WorkerReport>>,
    /// Per stream, the last counters of runs that ended (stopped, moved, their worker died), so the API's
    /// counters add up over pauses and failovers.
    settled: Mutex<HashMap<String, MetricsSnapshot>>,
    changes: watch::Sender<u64>,
    kick: Notify,
    /// Per stream, its counters sampled every [`HISTORY_EVERY`], oldest first, for the console's charts.
    history: Mutex<HashMap<String, VecDeque<(i64, MetricsSnapshot)>>>,
    /// Where each worker takes forwarded `/ingest/...` requests.
    ingest_urls: Mutex<HashMap<String, String>>,
}

/// How often [`Coordinator::run_sampler`] samples every stream's counters.
pub const HISTORY_EVERY: Duration = Duration::from_secs(5);
/// How many samples it keeps per stream: 15 minutes.
const HISTORY_LEN: usize = 180;

/// Why a worker-protocol call failed.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("unknown worker \"{0}\": register again")]
    UnknownWorker(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The number of replicas a stream config asks for (1 when unset or invalid).
pub fn replicas_of(config: &serde_json::Value) -> usize {
    config
        .get("replicas")
        .and_then(serde_json::Value::as_u64)
        .map_or(1, |n| n.clamp(1, 1024) as usize)
}

impl Coordinator {
    pub fn new(
        store: Store,
        engine: Engine,
        key: Arc<SecretKey>,
        worker_token: &str,
        timing: Timing,
    ) -> Self {
        Self {
            store,
            engine,
            key,
            timing,
            logins: LoginThrottle::default(),
            worker_token_hash: airtruct_auth::token_hash(worker_token),
            worker_token: worker_token.to_string(),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(2))
                .build()
                .expect("an HTTP client with default TLS settings"),
            ingest_turn: Default::default(),
            reports: Mutex::new(HashMap::new()),
            settled: Mutex::new(HashMap::new()),
            changes: watch::channel(0).0,
            kick: Notify::new(),
            history: Mutex::new(HashMap::new()),
            ingest_urls: Mutex::new(HashMap::new()),
        }
    }

    /// The worker token, for calls the coordinator makes to workers.
    pub fn worker_token(&self) -> &str {
        &self.worker_token
    }

    /// A counter that spreads ingest requests over replicas.
    pub fn next_ingest(&self) -> usize {
        self.ingest_turn
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether `token` is the worker token.
    pub fn is_worker_token(&self, token: &str) -> bool {
        airtruct_auth::token_hash(token) == self.worker_token_hash
    }

    /// Something that affects placement or assignments changed: place streams again and wake waiting workers.
    pub fn changed(&self) {
        self.kick.notify_one();
        self.changes.send_modify(|n| *n += 1);
    }

    pub async fn register(&self, name: &str) -> Result<RegisterResponse, ProtocolError> {
        let id = new_id();
        self.store.register_worker(&id, name).await?;
        tracing::info!(worker = %id, name, "worker registered");
        self.changed();
        Ok(RegisterResponse {
            worker_id: id,
            lease_ms: self.timing.lease.as_millis() as u64,
        })
    }

    /// Renews the worker's lease, records its report, and answers with its assignments, waiting up to
    /// `wait_ms` for a change when they match what it runs.
    pub async fn heartbeat(
        &self,
        req: HeartbeatRequest,
    ) -> Result<HeartbeatResponse, ProtocolError> {
        let before = self.store.get_worker(&req.worker_id).await;
        let worker = match self.store.heartbeat_worker(&req.worker_id).await {
            Err(StoreError::NotFound(_)) => {
                return Err(ProtocolError::UnknownWorker(req.worker_id));
            }
            other => other?,
        };
        if before.is_ok_and(|b| b.state == WorkerState::Dead) {
            tracing::info!(worker = %worker.id, "worker is back after its lease expired: it owns nothing now");
            self.changed();
        }
        let running: BTreeSet<(String, i64, i64)> = req
            .streams
            .iter()
            .filter(|r| r.state != ReplicaState::Stopping)
            .map(|r| (r.stream_id.clone(), r.version, r.assigned_at))
            .collect();
        {
            let mut urls = self.ingest_urls.lock().expect("ingest lock");
            match &req.ingest_url {
                Some(url) => urls.insert(req.worker_id.clone(), url.clone()),
                None => urls.remove(&req.worker_id),
            };
        }
        self.record_report(&req.worker_id, req.streams).await?;

        // Subscribe before reading, so a change made in between is not missed; wake on every change but answer
        // only when this worker's assignments differ from what it runs, or when the wait is over.
        let mut changes = self.changes.subscribe();
        // Never hold a heartbeat for more than a third of the lease, so it cannot expire while waiting.
        let wait = Duration::from_millis(req.wait_ms).min(self.timing.lease / 3);
        let deadline = tokio::time::Instant::now() + wait;
        let assignments = loop {
            changes.borrow_and_update();
            let assignments = self.assignments_for(&req.worker_id).await?;
            let wanted: BTreeSet<(String, i64, i64)> = assignments
                .iter()
                .map(|a| (a.stream_id.clone(), a.version, a.assigned_at))
                .collect();
            if wanted != running {
                break assignments;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => continue,
                _ => break assignments,
            }
        };
        Ok(HeartbeatResponse {
            assignments,
            lease_ms: self.timing.lease.as_millis() as u64,
        })
    }

    /// A worker shut down after stopping its streams: it owns nothing from now on.
    pub async fn leave(&self, worker: &str) -> Result<(), ProtocolError> {
        match self.store.set_worker_state(worker, WorkerState::Dead).await {
            Err(StoreError::NotFound(_)) => {
                return Err(ProtocolError::UnknownWorker(worker.into()));
            }
            other => other?,
        };
        // Expire it now: its assignments go and its last counters are kept.
        self.store
            .apply_assignments(
                &self
                    .store
                    .list_assignments()
                    .await?
                    .into_iter()
                    .filter(|a| a.worker_id == worker)
                    .map(|a| (a.stream_id, a.worker_id))
                    .collect::<Vec<_>>(),
                &[],
            )
            .await?;
        let gone = self.reports.lock().expect("reports lock").remove(worker);
        if let Some(gone) = gone {
            self.settle(gone.streams);
        }
        tracing::info!(worker, "worker left");
        self.changed();
        Ok(())
    }

    /// Keeps a worker's report and applies what it says about finished streams.
    async fn record_report(
        &self,
        worker: &str,
        streams: Vec<StreamReport>,
    ) -> Result<(), StoreError> {
        let finished: Vec<StreamReport> = streams
            .iter()
            .filter(|r| matches!(r.state, ReplicaState::Completed | ReplicaState::Failed))
            .cloned()
            .collect();
        let previous = self.reports.lock().expect("reports lock").insert(
            worker.to_string(),
            WorkerReport {
                streams: streams.clone(),
            },
        );
        if let Some(previous) = previous {
            let ended = previous.streams.into_iter().filter(|p| {
                !streams
                    .iter()
                    .any(|s| s.stream_id == p.stream_id && s.started_at == p.started_at)
            });
            self.settle(ended);
        }
        for r in finished {
            let stream = match self.store.get_stream(&r.stream_id).await {
                Ok(s) => s,
                Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            if stream.status != StreamStatus::Active || stream.version != r.version {
                continue;
            }
            // Only a report of the current assignment counts (not one from before a resume).
            let current = self.store.list_assignments().await?.into_iter().any(|a| {
                a.stream_id == stream.id && a.worker_id == worker && a.assigned_at == r.assigned_at
            });
            if !current {
                continue;
            }
            if r.state == ReplicaState::Failed {
                let reason = r.reason.clone().unwrap_or_else(|| "failed".into());
                tracing::warn!(stream = %stream.id, worker, reason = %reason, "stream failed");
                self.store
                    .finish_stream(
                        &stream.id,
                        stream.version,
                        StreamStatus::Failed,
                        Some(&reason),
                    )
                    .await?;
                self.changed();
            } else if self.all_replicas_completed(&stream).await? {
                tracing::info!(stream = %stream.id, "stream completed");
                self.store
                    .finish_stream(&stream.id, stream.version, StreamStatus::Completed, None)
                    .await?;
                self.changed();
            }
        }
        Ok(())
    }

    async fn all_replicas_completed(&self, stream: &StreamRecord) -> Result<bool, StoreError> {
        let on: Vec<String> = self
            .store
            .list_assignments()
            .await?
            .into_iter()
            .filter(|a| a.stream_id == stream.id)
            .map(|a| a.worker_id)
            .collect();
        let reports = self.reports.lock().expect("reports lock");
        Ok(on.iter().all(|w| {
            reports.get(w).is_some_and(|r| {
                r.streams.iter().any(|s| {
                    s.stream_id == stream.id
                        && s.version == stream.version
                        && s.state == ReplicaState::Completed
                })
            })
        }))
    }

    /// The streams placed on a worker, with their configs and sealed secrets.
    pub async fn assignments_for(&self, worker: &str) -> Result<Vec<Assignment>, StoreError> {
        let mut out = Vec::new();
        for a in self.store.list_assignments().await? {
            if a.worker_id != worker {
                continue;
            }
            let stream = match self.store.get_stream(&a.stream_id).await {
                Ok(s) => s,
                Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            let mut secrets = Vec::new();
            for (name, _) in airtruct_model::secret_refs(&stream.config) {
                match self.store.get_secret(&name).await {
                    Ok(s) => secrets.push(SealedSecret {
                        name: s.name,
                        nonce: s.nonce,
                        ciphertext: s.ciphertext,
                    }),
                    Err(StoreError::NotFound(_)) => {} // the worker reports it missing
                    Err(e) => return Err(e),
                }
            }
            let mut components = Vec::new();
            for r in airtruct_runtime::registry::uploaded_refs(&stream.config) {
                match self.store.get_processor(&r.name, r.version).await {
                    Ok(p) => components.push(ComponentRef {
                        name: p.name,
                        version: p.version,
                        sha256: p.sha256,
                    }),
                    Err(StoreError::NotFound(_)) => {} // the worker reports it missing
                    Err(e) => return Err(e),
                }
            }
            out.push(Assignment {
                stream_id: stream.id,
                name: stream.name,
                version: stream.version,
                assigned_at: a.assigned_at,
                config: stream.config,
                secrets,
                components,
            });
        }
        Ok(out)
    }

    /// Loads an uploaded component: from memory or the compile cache by hash, else from the store's bytes.
    pub async fn load_component(
        &self,
        sha256: &str,
    ) -> Result<Arc<airtruct_engine::LoadedComponent>, String> {
        let engine = self.engine.clone();
        let sha = sha256.to_string();
        if let Some(loaded) = tokio::task::spawn_blocking(move || engine.load_cached(&sha))
            .await
            .map_err(|e| e.to_string())?
        {
            return loaded.map_err(|e| e.to_string());
        }
        let bytes = self
            .store
            .get_blob(sha256)
            .await
            .map_err(|e| e.to_string())?;
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || engine.load(&bytes))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// One round of lease expiry and placement.
    pub async fn schedule_once(&self) -> Result<(), StoreError> {
        let now = now_ms();
        let expired = self
            .store
            .expire_workers(now - self.timing.lease.as_millis() as i64)
            .await?;
        if !expired.is_empty() {
            for w in &expired {
                tracing::warn!(worker = %w, "worker lease expired: moving its streams");
                let gone = self.reports.lock().expect("reports lock").remove(w);
                if let Some(gone) = gone {
                    self.settle(gone.streams);
                }
            }
        }
        let active: Vec<(String, usize)> = self
            .store
            .list_streams()
            .await?
            .into_iter()
            .filter(|s| s.status == StreamStatus::Active)
            .map(|s| {
                let n = replicas_of(&s.config);
                (s.id, n)
            })
            .collect();
        let workers = self.store.list_workers().await?;
        let assignments = self.store.list_assignments().await?;
        let placement = schedule::plan(&active, &workers, &assignments);
        if !placement.is_empty() {
            for (s, w) in &placement.remove {
                tracing::info!(stream = %s, worker = %w, "stream unassigned");
            }
            for (s, w) in &placement.add {
                tracing::info!(stream = %s, worker = %w, "stream assigned");
            }
            self.store
                .apply_assignments(&placement.remove, &placement.add)
                .await?;
        }
        if !expired.is_empty() || !placement.is_empty() {
            self.changes.send_modify(|n| *n += 1);
        }
        Ok(())
    }

    /// Runs placement every `schedule_every`, or sooner when something changed, until `shutdown`.
    pub async fn run_scheduler(self: Arc<Self>, shutdown: CancellationToken) {
        let mut last_prune = 0;
        loop {
            if let Err(e) = self.schedule_once().await {
                tracing::error!(error = %e, "placement failed");
            }
            let now = now_ms();
            if now - last_prune > 60_000 {
                last_prune = now;
                let _ = self.store.prune_workers(now - 3_600_000).await;
                let _ = self.store.delete_expired_tokens(now).await;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.kick.notified() => {}
                _ = tokio::time::sleep(self.timing.schedule_every) => {}
            }
        }
    }

    /// The ingest URLs of the workers that report `stream_id` running.
    pub fn ingest_targets(&self, stream_id: &str) -> Vec<String> {
        let reports = self.reports.lock().expect("reports lock");
        let urls = self.ingest_urls.lock().expect("ingest lock");
        reports
            .iter()
            .filter(|(_, r)| {
                r.streams
                    .iter()
                    .any(|s| s.stream_id == stream_id && s.state == ReplicaState::Running)
            })
            .filter_map(|(w, _)| urls.get(w).cloned())
            .collect()
    }

    /// What each worker last reported.
    pub fn reports(&self) -> HashMap<String, WorkerReport> {
        self.reports.lock().expect("reports lock").clone()
    }

    /// Adds the last counters of runs that ended to their streams' totals.
    fn settle(&self, ended: impl IntoIterator<Item = StreamReport>) {
        let mut settled = self.settled.lock().expect("settled lock");
        for r in ended {
            // A run that ended holds nothing in its buffer any more: only its counters add up.
            let counters = MetricsSnapshot {
                buffer_depth: 0,
                buffer_oldest_age_ms: 0,
                ..r.metrics
            };
            add(settled.entry(r.stream_id).or_default(), &counters);
        }
    }

    /// Forgets a deleted stream's counters.
    pub fn forget(&self, stream_id: &str) {
        self.settled.lock().expect("settled lock").remove(stream_id);
        self.history.lock().expect("history lock").remove(stream_id);
    }

    /// Samples every stream's counters now, keeping the last [`HISTORY_LEN`] samples of each.
    pub async fn sample_history(&self) -> Result<(), StoreError> {
        let now = now_ms();
        let streams = self.store.list_streams().await?;
        let mut history = self.history.lock().expect("history lock");
        history.retain(|id, _| streams.iter().any(|s| &s.id == id));
        for s in &streams {
            let samples = history.entry(s.id.clone()).or_default();
            if samples.len() == HISTORY_LEN {
                samples.pop_front();
            }
            samples.push_back((now, self.stream_metrics(&s.id)));
        }
        Ok(())
    }

    /// Samples counters every [`HISTORY_EVERY`] until `shutdown`.
    pub async fn run_sampler(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(HISTORY_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.sample_history().await {
                tracing::warn!(error = %e, "sampling stream counters failed");
            }
        }
    }

    /// A stream's sampled counters, oldest first: (milliseconds since the epoch, counters).
    pub fn history(&self, stream_id: &str) -> Vec<(i64, MetricsSnapshot)> {
        self.history
            .lock()
            .expect("history lock")
            .get(stream_id)
            .map(|h| h.iter().copied().collect())
            .unwrap_or_default()
    }

    /// A stream's counters since the coordinator started: runs that ended plus the runs workers report now.
    pub fn stream_metrics(&self, stream_id: &str) -> MetricsSnapshot {
        let mut sum = self
            .settled
            .lock()
            .expect("settled lock")
            .get(stream_id)
            .copied()
            .unwrap_or_default();
        let reports = self.reports.lock().expect("reports lock");
        for r in reports.values() {
            for s in r.streams.iter().filter(|s| s.stream_id == stream_id) {
                add(&mut sum, &s.metrics);
            }
        }
        sum
    }
}

fn add(sum: &mut MetricsSnapshot, m: &MetricsSnapshot) {
    sum.received += m.received;
    sum.sent += m.sent;
    sum.filtered += m.filtered;
    sum.dropped += m.dropped;
    sum.failed += m.failed;
    sum.bytes_in += m.bytes_in;
    sum.bytes_out += m.bytes_out;
    sum.batches += m.batches;
    sum.latency_us_sum += m.latency_us_sum;
    sum.processor_restarts += m.processor_restarts;
    sum.late += m.late;
    // Gauges: what the replicas hold adds up; the age is the oldest message's.
    sum.buffer_depth += m.buffer_depth;
    sum.buffer_oldest_age_ms = sum.buffer_oldest_age_ms.max(m.buffer_oldest_age_ms);
}
