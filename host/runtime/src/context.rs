//! The build context handed to every component build: the engine, the stream it serves, the component's
//! counters, the process's ingest hub, the shutdown token and the task set. Nothing a component needs is a
//! global.

use std::sync::Arc;

use airtruct_engine::Engine;
use tokio_util::sync::CancellationToken;

use crate::ingest::IngestHub;
use crate::metrics::{ComponentMetrics, StreamMetrics};
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
            ..self.clone()
        }
    }

    /// The stream's id, when a worker runs it.
    pub fn stream_id(&self) -> Option<&str> {
        self.stream.as_ref().map(|s| s.id.as_str())
    }
}
