//! The worker protocol: what a worker and the coordinator say to each other. A worker registers, then sends
//! heartbeats that report its streams; each answer carries the streams it should run, which renews its lease.
//! The coordinator holds a heartbeat up to `wait_ms` when nothing changed, so a pause or an update reaches the
//! worker as soon as it is saved.

use airtruct_runtime::MetricsSnapshot;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A worker introduces itself.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// A human name for the worker (its host name by default): 1 to 253 characters, no control characters.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$")
    )]
    pub name: String,
}

/// The coordinator's answer to a registration.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RegisterResponse {
    /// The id the worker uses in its heartbeats.
    pub worker_id: String,
    /// How long a lease lasts after a heartbeat, in milliseconds.
    pub lease_ms: u64,
    /// What the worker sends as `Authorization: Bearer` on every later call, in place of the join token.
    pub credential: String,
    /// What the coordinator's forwarded ingest requests carry (in `x-airtruct-forward`): the worker's ingest
    /// listener takes only those.
    pub forward_token: String,
}

/// Where a replica of a stream is in its life on a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaState {
    /// Validating, resolving secrets, opening its input and output.
    Starting,
    Running,
    /// It failed and waits for its next attempt.
    Retrying,
    /// Asked to stop; draining what is in flight.
    Stopping,
    /// Its finite input was exhausted and everything was delivered.
    Completed,
    /// It failed on every attempt.
    Failed,
}

/// One stream on a worker, as the worker sees it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StreamReport {
    pub stream_id: String,
    /// The version of the config it runs.
    pub version: i64,
    pub state: ReplicaState,
    /// Why it is retrying or failed.
    pub reason: Option<String>,
    /// Attempts so far (1 on the first run).
    pub attempts: u32,
    /// When the worker started this run (ms since the epoch); identifies the run whose counters these are.
    pub started_at: i64,
    /// The assignment this run belongs to (its `assigned_at`): a report of an older assignment of the same
    /// version (before a resume) does not change the stream's status.
    #[serde(default)]
    pub assigned_at: i64,
    /// Counters since this worker started the stream.
    pub metrics: MetricsSnapshot,
}

/// A heartbeat: the worker's streams, and how long it may wait for changes.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    pub worker_id: String,
    pub streams: Vec<StreamReport>,
    /// How long the coordinator may hold the answer when nothing changed (at most 5000).
    #[serde(default)]
    pub wait_ms: u64,
    /// Where the coordinator forwards `/ingest/...` requests for this worker's `http_server` streams.
    #[serde(default)]
    pub ingest_url: Option<String>,
}

/// A secret as stored: only the worker that runs the stream decrypts it, with the shared secret key.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SealedSecret {
    pub name: String,
    pub nonce: String,
    pub ciphertext: String,
}

/// An uploaded component a stream uses; the worker fetches it by hash the first time.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ComponentRef {
    pub name: String,
    pub version: i64,
    pub sha256: String,
}

/// A stream the worker should run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Assignment {
    pub stream_id: String,
    pub name: String,
    pub version: i64,
    /// When the coordinator made this assignment: a new one (after a resume) restarts the stream.
    pub assigned_at: i64,
    /// The stream config, with `${secret:NAME}` references left for the worker to resolve.
    pub config: serde_json::Value,
    /// The secrets the config references.
    pub secrets: Vec<SealedSecret>,
    /// The uploaded components the config names.
    #[serde(default)]
    pub components: Vec<ComponentRef>,
    /// The operator's policy the stream runs under, checked again on the worker before anything is opened.
    #[serde(default)]
    pub policy: Option<airtruct_runtime::policy::Policy>,
}

/// The answer to a heartbeat: the complete set of streams the worker should run now.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct HeartbeatResponse {
    pub assignments: Vec<Assignment>,
    /// How long the lease lasts from now, in milliseconds.
    pub lease_ms: u64,
}

/// A worker leaves (it is shutting down): its streams move at once instead of when its lease expires.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaveRequest {
    pub worker_id: String,
}

/// An input's checkpoint, as the coordinator keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckpointBody {
    /// The position, any JSON the input reads back (`null` in an answer when none was saved).
    pub value: serde_json::Value,
}
