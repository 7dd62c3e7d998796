//! The coordinator: owns the store, places streams on workers (`schedule`), answers the worker protocol
//! (`workers`), turns what workers report into stream statuses (`reports`) and counters (`counters`), and
//! throttles logins (`login`). This file holds the shared state and the placement loop.
//!
//! Several coordinators may share one PostgreSQL store. Every one serves the API and the worker protocol (a
//! worker talks to whichever it reaches); one at a time, the holder of the `placement` lease in the store,
//! places streams, expires workers and samples counters. The lease lasts [`Timing::lease`] and is renewed on
//! every round, so when its holder dies another coordinator leads within that time.

mod counters;
mod login;
mod reports;
pub mod schedule;
mod workers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airtruct_auth::SecretKey;
use airtruct_engine::Engine;
use airtruct_runtime::ingest::IngestHub;
use airtruct_runtime::policy::Policy;
use airtruct_store::{Store, StoreError, StreamStatus, now_ms};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

pub use counters::HISTORY_EVERY;
pub use login::{LoginThrottle, Throttled};
pub use reports::WorkerReport;
pub use workers::ProtocolError;

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
    /// Every run of every stream, as workers report them (here or to another coordinator).
    runs: Mutex<reports::Runs>,
    changes: watch::Sender<u64>,
    kick: Notify,
    /// This coordinator's id among those sharing the store, and where it serves the API.
    pub id: String,
    address: Mutex<String>,
    started_at: i64,
    /// Whether this coordinator holds the placement lease.
    leading: std::sync::atomic::AtomicBool,
    /// Where each worker takes forwarded `/ingest/...` requests.
    ingest_urls: Mutex<HashMap<String, String>>,
    /// This process's ingest hub: the streams of a worker in the same process (standalone) take requests here.
    pub ingest: IngestHub,
    /// What streams saved through the API may touch; sent to workers with their assignments.
    pub policy: Arc<Policy>,
    /// KiB of ingest request bodies being forwarded to workers at once.
    pub ingest_budget: tokio::sync::Semaphore,
    /// The streams `/ingest/{stream}` found lately, by the key it was called with: a request costs no store
    /// query while nothing changed (see [`Coordinator::ingest_stream`]).
    ingest_streams: Mutex<IngestStreams>,
}

/// Streams found by `/ingest` keys, good while the change counter stands and for at most a second (a worker's
/// report of a stream's end does not move the counter).
#[derive(Default)]
struct IngestStreams {
    generation: u64,
    since: Option<std::time::Instant>,
    by_key: HashMap<String, Arc<airtruct_store::StreamRecord>>,
}

/// How long a stream found by an `/ingest` key is used without asking the store again.
const INGEST_STREAM_TTL: Duration = Duration::from_secs(1);

/// The lease the leading coordinator holds.
pub const PLACEMENT: &str = "placement";

/// The most ingest request bodies held at once while being forwarded (64 MiB, in KiB).
pub const INGEST_BUDGET_KIB: usize = 64 << 10;

/// The number of replicas a stored stream config asks for, read through the typed config (1 when the config
/// does not parse: a paused draft is never placed anyway).
pub fn replicas_of(config: &serde_json::Value) -> usize {
    airtruct_model::parse_stream_partial(config)
        .0
        .replicas
        .max(1) as usize
}

impl Coordinator {
    pub fn new(
        store: Store,
        engine: Engine,
        key: Arc<SecretKey>,
        worker_token: &str,
        timing: Timing,
        ingest: IngestHub,
        policy: Arc<Policy>,
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
            runs: Mutex::default(),
            changes: watch::channel(0).0,
            kick: Notify::new(),
            id: airtruct_store::new_id(),
            address: Mutex::new(String::new()),
            started_at: now_ms(),
            leading: Default::default(),
            ingest_urls: Mutex::new(HashMap::new()),
            ingest,
            policy,
            ingest_budget: tokio::sync::Semaphore::new(INGEST_BUDGET_KIB),
            ingest_streams: Mutex::new(IngestStreams::default()),
        }
    }

    /// The stream an `/ingest/{key}` request is for: by id, else by its name when one stream has it. Answered from
    /// memory while no stream changed (and for at most a second), from the store otherwise.
    pub async fn ingest_stream(
        &self,
        key: &str,
    ) -> Result<Option<Arc<airtruct_store::StreamRecord>>, airtruct_store::StoreError> {
        let generation = *self.changes.borrow();
        {
            let mut cache = self.ingest_streams.lock().unwrap();
            let fresh = cache.generation == generation
                && cache.since.is_some_and(|t| t.elapsed() < INGEST_STREAM_TTL);
            if !fresh {
                *cache = IngestStreams {
                    generation,
                    since: Some(std::time::Instant::now()),
                    by_key: HashMap::new(),
                };
            } else if let Some(s) = cache.by_key.get(key) {
                return Ok(Some(s.clone()));
            }
        }
        let found = match self.store.get_stream(key).await {
            Ok(s) => Some(s),
            Err(airtruct_store::StoreError::NotFound(_)) => {
                let mut named: Vec<_> = self
                    .store
                    .list_streams()
                    .await?
                    .into_iter()
                    .filter(|s| s.name == key)
                    .collect();
                if named.len() == 1 { named.pop() } else { None }
            }
            Err(e) => return Err(e),
        };
        let Some(found) = found.map(Arc::new) else {
            // Unknown keys are not kept: a caller cannot grow the map with made-up names.
            return Ok(None);
        };
        let mut cache = self.ingest_streams.lock().unwrap();
        if cache.generation == generation {
            cache.by_key.insert(key.to_string(), found.clone());
        }
        Ok(Some(found))
    }

    /// The credential a registered worker sends on every later call: its id and a MAC of it made with the
    /// join token, so it is checked without a lookup and cannot be made for another worker.
    pub fn worker_credential(&self, worker_id: &str) -> String {
        format!(
            "wc.{worker_id}.{}",
            airtruct_auth::derive(&self.worker_token, "worker credential", worker_id)
        )
    }

    /// The worker whose credential this is, if it is one.
    pub fn worker_of(&self, credential: &str) -> Option<String> {
        let (id, _) = credential.strip_prefix("wc.")?.split_once('.')?;
        airtruct_runtime::ingest::constant_time_eq(
            credential.as_bytes(),
            self.worker_credential(id).as_bytes(),
        )
        .then(|| id.to_string())
    }

    /// What the coordinator sends with the requests it forwards to a worker's ingest listener: only that worker
    /// knows it, and it grants nothing else.
    pub fn forward_token(&self, worker_id: &str) -> String {
        airtruct_auth::derive(&self.worker_token, "ingest forward", worker_id)
    }

    /// A counter that spreads ingest requests over replicas.
    pub fn next_ingest(&self) -> usize {
        self.ingest_turn
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether `token` is the worker join token.
    pub fn is_worker_token(&self, token: &str) -> bool {
        airtruct_runtime::ingest::constant_time_eq(
            airtruct_auth::token_hash(token).as_bytes(),
            self.worker_token_hash.as_bytes(),
        )
    }

    /// Something that affects placement or assignments changed: place streams again and wake waiting workers.
    pub fn changed(&self) {
        self.kick.notify_one();
        self.changes.send_modify(|n| *n += 1);
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
                self.end_runs(w);
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

    /// Where this coordinator serves the API (`http://HOST:PORT`), as the coordinators list shows it.
    pub fn set_address(&self, address: String) {
        *self.address.lock().expect("address lock") = address;
    }

    /// Whether this coordinator holds the placement lease.
    pub fn leads(&self) -> bool {
        self.leading.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// One round: says this coordinator is alive, takes or renews the placement lease, reads what other
    /// coordinators wrote, and, while leading, places streams.
    async fn round(&self) -> Result<(), StoreError> {
        let now = now_ms();
        let address = self.address.lock().expect("address lock").clone();
        self.store
            .see_coordinator(&self.id, &address, self.started_at, now)
            .await?;
        let leads = self
            .store
            .hold_lease(
                PLACEMENT,
                &self.id,
                now,
                self.timing.lease.as_millis() as i64,
            )
            .await?;
        let led = self
            .leading
            .swap(leads, std::sync::atomic::Ordering::Relaxed);
        if leads != led {
            if leads {
                tracing::info!(coordinator = %self.id, "this coordinator leads: it places streams now");
            } else {
                tracing::warn!(coordinator = %self.id, "another coordinator leads now");
            }
        }
        self.refresh().await?;
        if leads {
            self.schedule_once().await?;
        }
        Ok(())
    }

    /// Runs a round every `schedule_every`, or sooner when something changed, until `shutdown`; then gives the
    /// lease up, so another coordinator leads at once.
    pub async fn run_scheduler(self: Arc<Self>, shutdown: CancellationToken) {
        let mut last_prune = 0;
        let mut last_fold = 0;
        loop {
            if let Err(e) = self.round().await {
                tracing::error!(error = %e, "placement failed");
            }
            let now = now_ms();
            if self.leads() && now - last_prune > 60_000 {
                last_prune = now;
                let _ = self.store.prune_workers(now - 3_600_000).await;
                let _ = self.store.delete_expired_tokens(now).await;
                let _ = self.store.prune_coordinators(now - 3_600_000).await;
            }
            if self.leads() && now - last_fold > 600_000 {
                last_fold = now;
                if let Err(e) = self.fold_runs().await {
                    tracing::warn!(error = %e, "folding the counters of ended runs failed");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.kick.notified() => {}
                _ = tokio::time::sleep(self.timing.schedule_every) => {}
            }
        }
        let _ = self.store.release_lease(PLACEMENT, &self.id).await;
        let _ = self.store.forget_coordinator(&self.id).await;
    }
}
