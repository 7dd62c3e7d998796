//! Durable checkpoints: where an input with a position of its own (the greatest id `sql_select` read, a binlog
//! position) keeps it, so that a restarted stream, or one moved to another worker, reads on rather than from the
//! start. A worker keeps them in the coordinator's store ([`CheckpointStore`]), saved only by a worker the
//! stream is assigned to; `airtruct run` keeps them in memory.
//!
//! [`InOrder`] tracks what an input handed on, in order, so that a checkpoint only ever moves past messages the
//! output confirmed, whatever order their acknowledgements come in.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::Notify;

use crate::{Ack, Delivery, Error};

/// Where checkpoints are kept, per stream and key.
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    async fn load(&self, stream: &str, key: &str) -> Result<Option<String>, Error>;
    async fn save(&self, stream: &str, key: &str, value: &str) -> Result<(), Error>;
}

/// Checkpoints kept in this process only (`airtruct run`, tests).
#[derive(Default)]
pub struct MemoryCheckpoints(Mutex<HashMap<(String, String), String>>);

#[async_trait]
impl CheckpointStore for MemoryCheckpoints {
    async fn load(&self, stream: &str, key: &str) -> Result<Option<String>, Error> {
        let map = self.0.lock().expect("checkpoints lock");
        Ok(map.get(&(stream.to_string(), key.to_string())).cloned())
    }

    async fn save(&self, stream: &str, key: &str, value: &str) -> Result<(), Error> {
        let mut map = self.0.lock().expect("checkpoints lock");
        map.insert((stream.to_string(), key.to_string()), value.to_string());
        Ok(())
    }
}

/// One input's checkpoint: a JSON value under the stream and a key naming the component and what it reads
/// (`input:orders.id`), so that pointing the input at another table starts afresh.
#[derive(Clone)]
pub struct Checkpoint {
    store: Arc<dyn CheckpointStore>,
    stream: String,
    key: String,
}

impl Checkpoint {
    pub fn new(store: Arc<dyn CheckpointStore>, stream: &str, key: &str) -> Self {
        Self {
            store,
            stream: stream.to_string(),
            key: key.to_string(),
        }
    }

    /// The key it is kept under.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value saved last, if any.
    pub async fn load(&self) -> Result<Option<Value>, Error> {
        let Some(text) = self.store.load(&self.stream, &self.key).await? else {
            return Ok(None);
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Internal(format!("checkpoint \"{}\" is not JSON: {e}", self.key)))
    }

    pub async fn save(&self, value: &Value) -> Result<(), Error> {
        self.store
            .save(&self.stream, &self.key, &value.to_string())
            .await
    }
}

struct Sent<T> {
    seq: u64,
    position: T,
    delivered: bool,
}

struct Queue<T> {
    next: u64,
    sent: VecDeque<Sent<T>>,
}

/// What an input handed on, in order: each batch with its position, marked when its acknowledgement says it was
/// delivered. [`InOrder::delivered`] gives the position of the last batch of the delivered prefix: past it,
/// everything was confirmed; a batch not delivered holds every later one back (the stream restarts and reads it
/// again from the checkpoint).
pub struct InOrder<T> {
    queue: Arc<Mutex<Queue<T>>>,
    changed: Arc<Notify>,
}

impl<T> Clone for InOrder<T> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            changed: self.changed.clone(),
        }
    }
}

impl<T: Send + 'static> Default for InOrder<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Send + 'static> InOrder<T> {
    pub fn new() -> Self {
        Self {
            queue: Arc::new(Mutex::new(Queue {
                next: 0,
                sent: VecDeque::new(),
            })),
            changed: Arc::new(Notify::new()),
        }
    }

    /// Records a batch handed on at `position`; its acknowledgement marks it.
    pub fn send(&self, position: T) -> Ack {
        let seq = self.push(position, false);
        let queue = self.queue.clone();
        let changed = self.changed.clone();
        Ack::new(move |d| {
            if d != Delivery::Delivered {
                return;
            }
            let mut q = queue.lock().expect("in-order lock");
            if let Some(s) = q.sent.iter_mut().find(|s| s.seq == seq) {
                s.delivered = true;
            }
            drop(q);
            changed.notify_one();
        })
    }

    /// Records a position that needs no delivery (read past, nothing handed on): it is confirmed with the batches
    /// before it.
    pub fn skip(&self, position: T) {
        self.push(position, true);
        self.changed.notify_one();
    }

    fn push(&self, position: T, delivered: bool) -> u64 {
        let mut q = self.queue.lock().expect("in-order lock");
        let seq = q.next;
        q.next += 1;
        q.sent.push_back(Sent {
            seq,
            position,
            delivered,
        });
        seq
    }

    /// The position of the last batch of the delivered prefix, taken off the queue (`None` when the first batch
    /// in flight is not delivered yet).
    pub fn delivered(&self) -> Option<T> {
        let mut q = self.queue.lock().expect("in-order lock");
        let mut upto = None;
        while q.sent.front().is_some_and(|s| s.delivered) {
            upto = q.sent.pop_front().map(|s| s.position);
        }
        upto
    }

    /// Batches handed on and not yet taken by [`InOrder::delivered`].
    pub fn in_flight(&self) -> usize {
        self.queue.lock().expect("in-order lock").sent.len()
    }

    /// Waits for an acknowledgement (or a skip).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_moves_only_past_the_delivered_prefix() {
        let sent = InOrder::new();
        let a = sent.send(1);
        let b = sent.send(2);
        let c = sent.send(3);
        c.done(Delivery::Delivered);
        assert_eq!(sent.delivered(), None, "batch 1 is still in flight");
        a.done(Delivery::Delivered);
        assert_eq!(sent.delivered(), Some(1));
        drop(b); // dropped unsaid: not delivered
        sent.skip(4);
        assert_eq!(sent.delivered(), None);
        assert_eq!(sent.in_flight(), 3);
    }

    #[tokio::test]
    async fn memory_checkpoints_round_trip_json() {
        let c = Checkpoint::new(Arc::new(MemoryCheckpoints::default()), "s", "input:t.id");
        assert_eq!(c.load().await.unwrap(), None);
        c.save(&serde_json::json!({"id": 7})).await.unwrap();
        assert_eq!(c.load().await.unwrap(), Some(serde_json::json!({"id": 7})));
    }
}
