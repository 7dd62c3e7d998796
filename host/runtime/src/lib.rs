//! Runs streams: the input task, batching, the wasm processor chain, outputs, acknowledgements, error policies
//! and buffers. What a component kind is ([`kind`]) and what its build gets ([`context`]) are defined here; the
//! connectors and the table of every kind live in `airtruct-connectors`.

pub mod batcher;
pub mod buffers;
pub mod chain;
mod check;
pub mod checkpoint;
pub mod context;
pub mod control;
mod deliver;
mod fused;
pub mod ingest;
pub mod journeys;
pub mod kind;
pub mod metrics;
pub mod policy;
pub mod processors;
mod reads;
pub mod resources;
pub mod retry;
mod spec;
pub mod stream;
pub mod tap;
pub mod tasks;
pub mod validate;
pub mod vrl;

use async_trait::async_trait;

pub use airtruct_codec::Metadata;
pub use airtruct_engine::Message;
pub use context::{BuildContext, StreamRef};
pub use kind::{Registry, Role, Uploaded};
pub use metrics::{ComponentSnapshot, MetricsSnapshot, StreamMetrics};
pub use stream::{BuiltStream, StreamExit, build_stream, run_stream};
pub use tasks::Tasks;
pub use validate::{StreamPlan, validate_stream, validate_stream_under};

/// Reads a metadata value of a message.
pub fn meta_get<'a>(msg: &'a Message, key: &str) -> Option<&'a str> {
    // The packed buffer is read in place; see `airtruct_codec` for the layout.
    airtruct_codec::Metadata::iter_bytes(&msg.metadata)
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Sets a metadata value of a message.
pub fn meta_set(msg: &mut Message, key: &str, value: &str) {
    let mut m = Metadata::from_bytes_unchecked(std::mem::take(&mut msg.metadata));
    m.insert(key, value);
    msg.metadata = m.into_bytes();
}

/// Removes a metadata key of a message.
pub fn meta_remove(msg: &mut Message, key: &str) {
    let mut m = Metadata::from_bytes_unchecked(std::mem::take(&mut msg.metadata));
    m.remove(key);
    msg.metadata = m.into_bytes();
}

/// A new message with this payload and metadata.
pub fn message(payload: Vec<u8>, metadata: Metadata) -> Message {
    Message {
        payload,
        metadata: metadata.into_bytes(),
        error: None,
    }
}

/// How a runtime failure should be handled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The configuration or the data is wrong: retrying will not help.
    #[error("{0}")]
    User(String),
    /// Something outside failed (a broker, a database, a file system): retrying may help.
    #[error("{0}")]
    External(String),
    /// A bug or an invariant broken in Airtruct itself.
    #[error("internal error: {0}")]
    Internal(String),
    /// An output refused these messages (by index in the batch, with why) and confirmed the others: the
    /// stream's error policy handles the refused ones.
    #[error("{} message(s) refused; first: {}", .0.len(), .0.first().map_or("", |r| r.1.as_str()))]
    Rejected(Vec<(usize, String)>),
}

impl Error {
    /// The same error, its message (each refusal's, for `Rejected`) prefixed with where it happened
    /// (`output.switch.cases[1].output`), for a component that holds others.
    pub fn within(self, at: &str) -> Self {
        match self {
            Error::User(m) => Error::User(format!("{at}: {m}")),
            Error::External(m) => Error::External(format!("{at}: {m}")),
            Error::Internal(m) => Error::Internal(format!("{at}: {m}")),
            Error::Rejected(list) => Error::Rejected(
                list.into_iter()
                    .map(|(i, m)| (i, format!("{at}: {m}")))
                    .collect(),
            ),
        }
    }

    /// Whether trying again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::External(_))
    }
}

/// What the output did with the messages an acknowledgement covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Written and confirmed by the output (or handled by the error policy).
    Delivered,
    /// Not delivered: the input must make them available again (redeliver, do not commit).
    NotDelivered,
}

/// Says once what became of the messages of an [`InputBatch`]. Dropped without a word, it says `NotDelivered`,
/// so no path (an error return, a panicked thread) can acknowledge by accident.
pub struct Ack(Option<Box<dyn FnOnce(Delivery) + Send>>);

impl Ack {
    /// An acknowledgement that calls `f`.
    pub fn new(f: impl FnOnce(Delivery) + Send + 'static) -> Self {
        Self(Some(Box::new(f)))
    }

    /// For inputs with nothing to acknowledge (generated data, stdin).
    pub fn none() -> Self {
        Self(None)
    }

    /// Reports the outcome.
    pub fn done(mut self, d: Delivery) {
        if let Some(f) = self.0.take() {
            f(d);
        }
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f(Delivery::NotDelivered);
        }
    }
}

/// Messages read by an input, with the acknowledgement that covers them all.
pub struct InputBatch {
    pub messages: Vec<Message>,
    pub ack: Ack,
}

/// A source of messages. `read` must be cancel-safe enough that dropping its future loses nothing that was
/// acknowledged: unacknowledged messages are read again after a restart.
#[async_trait]
pub trait Input: Send {
    /// The next messages; `Ok(None)` when a finite input is exhausted.
    async fn read(&mut self) -> Result<Option<InputBatch>, Error>;

    /// Called once at the end, after every acknowledgement: commit what was delivered.
    async fn close(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

/// A destination. `write` returns only once the messages are confirmed written.
#[async_trait]
pub trait Output: Send {
    /// Writes the messages; `Ok` means they are confirmed.
    async fn write(&mut self, batch: &[Message]) -> Result<(), Error>;

    /// How the stream retries a write that failed in a way that may pass.
    fn retry_policy(&self) -> retry::RetryPolicy {
        retry::RetryPolicy::OUTPUT
    }

    /// Called once at the end, after the last write.
    async fn close(&mut self) -> Result<(), Error> {
        Ok(())
    }
}
