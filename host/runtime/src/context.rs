//! The build context handed to every component build: the engine, the stream it serves, the component's
//! counters, the process's ingest hub, the shutdown token and the task set. Nothing a component needs is a
//! global.

use std::sync::Arc;

use airtruct_engine::Engine;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::checkpoint::{Checkpoint, CheckpointStore, MemoryCheckpoints};
use crate::ingest::IngestHub;
use crate::metrics::{ComponentMetrics, StreamMetrics};
use crate::policy::Policy;
use crate::tasks::NamedTasks;
use crate::vrl::Vrl;

/// Which stream a component serves, when a worker runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRef {
    pub id: String,
    pub version: i64,
}

/// What a build gets.
#[derive(Clone)]
pub struct BuildContext {
    pub engine: Engine,
    /// The stream it serves (`None` for `airtruct run`).
    pub stream: Option<StreamRef>,
    /// The stream's counters.
    pub stream_metrics: Arc<StreamMetrics>,
    /// This component's counters.
    pub metrics: Arc<ComponentMetrics>,
    /// Where `http_server` inputs take requests and `sync_response` outputs leave answers.
    pub ingest: IngestHub,
    /// Cancelled when the stream is asked to stop.
    pub shutdown: CancellationToken,
    /// Where the component spawns its tasks (named after the stream and the component).
    pub tasks: NamedTasks,
    /// Compiles VRL programs in the sandbox.
    pub vrl: Vrl,
    /// The operator's policy, checked again before anything is opened (`None` for `airtruct run`).
    pub policy: Option<Arc<Policy>>,
    /// Where inputs keep their checkpoints: the coordinator's store on a worker, memory otherwise.
    pub checkpoints: Arc<dyn CheckpointStore>,
    /// The component's path in the stream (`input`, `output`; empty for the stream itself).
    pub path: String,
    /// The stream's live tap (one nobody watches unless [`BuildContext::with_tap`] gave one).
    pub tap: crate::tap::Tap,
}

impl BuildContext {
    /// The context of a stream's first component.
    pub fn new(
        engine: Engine,
        stream: Option<StreamRef>,
        stream_metrics: Arc<StreamMetrics>,
        ingest: IngestHub,
        shutdown: CancellationToken,
        tasks: NamedTasks,
    ) -> Self {
        // Not listed among the components: each component gets its own through `for_component`.
        let metrics = Arc::new(ComponentMetrics::default());
        Self {
            vrl: Vrl::new(engine.clone()),
            engine,
            stream,
            stream_metrics,
            metrics,
            ingest,
            shutdown,
            tasks,
            policy: None,
            checkpoints: Arc::new(MemoryCheckpoints::default()),
            path: String::new(),
            tap: crate::tap::Tap::default(),
        }
    }

    /// The same, sampling into `tap` for whoever watches the stream.
    pub fn with_tap(mut self, tap: crate::tap::Tap) -> Self {
        self.tap = tap;
        self
    }

    /// The same, keeping checkpoints in `store`.
    pub fn with_checkpoints(mut self, store: Arc<dyn CheckpointStore>) -> Self {
        self.checkpoints = store;
        self
    }

    /// This component's checkpoint for what it reads (`orders.id`): kept under the stream, the component's
    /// path and `what`, so that reading something else starts afresh.
    pub fn checkpoint(&self, what: &str) -> Checkpoint {
        Checkpoint::new(
            self.checkpoints.clone(),
            self.stream_id().unwrap_or(""),
            &format!("{}:{what}", self.path),
        )
    }

    /// The same, under the operator's policy.
    pub fn with_policy(mut self, policy: Option<Arc<Policy>>) -> Self {
        self.policy = policy;
        self
    }

    /// Checks a path option against the policy before it is opened.
    pub fn check_path(&self, what: &str, path: &std::path::Path) -> Result<(), Error> {
        match self.policy.as_deref().map(|p| p.check_path(path)) {
            Some(Err(e)) => Err(Error::User(format!("{what}: {e}"))),
            _ => Ok(()),
        }
    }

    /// Checks an outbound destination against the policy before connecting.
    pub fn check_destination(&self, what: &str, host: &str, port: u16) -> Result<(), Error> {
        match self
            .policy
            .as_deref()
            .map(|p| p.check_destination(host, port))
        {
            Some(Err(e)) => Err(Error::User(format!("{what}: {e}"))),
            _ => Ok(()),
        }
    }

    /// Checks a URL's destination against the policy before connecting.
    pub fn check_url(&self, what: &str, url: &str) -> Result<(), Error> {
        match self.policy.as_deref().map(|p| p.check_url(url)) {
            Some(Err(e)) => Err(Error::User(format!("{what}: {e}"))),
            _ => Ok(()),
        }
    }

    /// The context of a stream run by itself (`airtruct run`, benchmarks): no stream id, an ingest hub and a
    /// task set of its own.
    pub fn local(
        engine: Engine,
        stream_metrics: Arc<StreamMetrics>,
        shutdown: CancellationToken,
    ) -> Self {
        Self::new(
            engine,
            None,
            stream_metrics,
            IngestHub::default(),
            shutdown,
            crate::Tasks::default().named("stream"),
        )
    }

    /// The same context for the component at `path` (`output`, `buffer.system_window.late_output`) of `kind`.
    pub fn for_component(&self, path: &str, kind: &str) -> Self {
        Self {
            metrics: self.stream_metrics.component(path, kind),
            tasks: self.tasks.sub(path),
            path: path.to_string(),
            ..self.clone()
        }
    }

    /// The stream's id, when a worker runs it.
    pub fn stream_id(&self) -> Option<&str> {
        self.stream.as_ref().map(|s| s.id.as_str())
    }
}
