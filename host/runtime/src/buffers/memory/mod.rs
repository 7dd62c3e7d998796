//! `memory`: a queue of input batches bounded by bytes, read ahead of the processors.
//!
//! When it holds `limit` bytes the input waits (backpressure), unless `spillover` is on: then what does not fit is
//! appended to segment files in `spill_dir` and read back in order. Nothing is ever dropped.
//!
//! Acknowledgements (`acknowledge`):
//! - `delivered` (default): the upstream input is acknowledged when the output confirmed the messages, as without
//!   a buffer. A crash loses nothing: what the buffer held (in memory or spilled) was never acknowledged, so the
//!   input delivers it again.
//! - `buffered`: the upstream input is acknowledged as soon as a batch is in the buffer, so it can move on (commit
//!   offsets, answer a caller). A crash or a stream restart loses what the buffer held, in memory and in spill
//!   segments (those are scratch files, removed when the buffer opens and closes). Use the `sqlite` buffer when
//!   early acknowledgement must survive a crash.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Pumped, now_ms, pump_read};
use crate::context::BuildContext;
use crate::kind::{BufferKind, Check, Kind};
use crate::tasks::NamedTasks;
use crate::{Ack, Delivery, Error, Input, InputBatch, Message, StreamMetrics};

mod spill;

use spill::*;

/// When the upstream input is acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AckMode {
    /// When the output confirmed the messages: a crash loses nothing.
    #[default]
    Delivered,
    /// As soon as the messages are in the buffer: a crash loses what the buffer held.
    Buffered,
}

/// A bounded in-memory buffer, optionally spilling to disk.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct MemoryBufferConfig {
    /// Most bytes (payloads and metadata) held in memory (default 64MiB).
    #[serde(default = "default_limit")]
    pub limit: airtruct_model::ByteSize,
    /// Write what does not fit to disk segments instead of making the input wait.
    #[serde(default)]
    pub spillover: bool,
    /// Where spill segments go (default: a folder in the system's temporary directory). Scratch space: its
    /// segments are deleted when the buffer opens and closes.
    #[serde(default)]
    pub spill_dir: Option<PathBuf>,
    /// When the upstream input is acknowledged: `delivered` (default) or `buffered`.
    #[serde(default)]
    pub acknowledge: AckMode,
}

impl Kind for MemoryBufferConfig {
    const NAME: &'static str = "memory";
    const DESCRIPTION: &'static str = "A queue in memory bounded by bytes: the input waits when it is full, or with \
         spillover what does not fit goes to disk segments, read back in order";
    const EXAMPLE: &'static str = r#"{"limit": "64MiB", "spillover": true}"#;

    fn check(&mut self, check: &mut Check<'_>) {
        if let (true, Some(dir)) = (self.spillover, &self.spill_dir) {
            check.path("spill_dir", dir);
        }
    }
}

#[async_trait]
impl BufferKind for MemoryBufferConfig {
    async fn wrap(
        &self,
        input: Box<dyn Input>,
        cx: &BuildContext,
    ) -> Result<Box<dyn Input>, Error> {
        let mut config = self.clone();
        if config.spillover {
            // Under a policy the default spill folder is in the first path root, not the shared /tmp.
            if config.spill_dir.is_none() {
                config.spill_dir = cx
                    .policy
                    .as_ref()
                    .and_then(|p| p.paths.first())
                    .map(|root| root.join(".airtruct-spill"));
            }
            if let Some(dir) = &config.spill_dir {
                cx.check_path("memory buffer spill_dir", dir)?;
            }
        }
        config
            .start(input, cx.stream_metrics.clone(), &cx.tasks)
            .await
    }

    fn acknowledges_early(&self) -> bool {
        self.acknowledge == AckMode::Buffered
    }
}

fn default_limit() -> airtruct_model::ByteSize {
    airtruct_model::ByteSize(64 << 20)
}

/// Largest spill segment file before the next one starts.
pub(super) const SEGMENT_BYTES: u64 = 64 << 20;

pub(super) fn size_of(messages: &[Message]) -> usize {
    messages
        .iter()
        .map(|m| m.payload.len() + m.metadata.len() + 16)
        .sum()
}

enum Body {
    Memory(Vec<Message>),
    Spilled { segment: u64, offset: u64, len: u64 },
}

struct Entry {
    body: Body,
    /// Bytes it holds in memory (0 when spilled).
    memory: usize,
    count: u64,
    /// The upstream acknowledgement (`delivered` mode); `Ack::none()` in `buffered` mode.
    ack: Ack,
    arrived_ms: u64,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Entry>,
    /// Bytes of the in-memory entries in `queue`.
    memory: usize,
    /// Messages in `queue`.
    depth: u64,
    /// Entries left to read in each spill segment (none: the entry goes).
    segments: HashMap<u64, usize>,
    /// The segment being written.
    writing: u64,
    /// Set when the pump ended: `Ok(true)` when the upstream input was exhausted.
    ended: Option<Result<bool, Error>>,
}

struct Shared {
    state: Mutex<State>,
    /// Something was queued or the pump ended.
    data: Notify,
    /// Room was made.
    room: Notify,
}

impl MemoryBufferConfig {
    /// Starts reading `inner` into the buffer.
    pub async fn start(
        &self,
        inner: Box<dyn Input>,
        metrics: Arc<StreamMetrics>,
        tasks: &NamedTasks,
    ) -> Result<Box<dyn Input>, Error> {
        let limit = usize::try_from(self.limit.0.max(1)).unwrap_or(usize::MAX);
        let spill = if self.spillover {
            let base = self
                .spill_dir
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join("airtruct-spill"));
            remove_stale(&base).await;
            // A folder of its own: two buffers never share segments, even with the same spill_dir.
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = base.join(format!("{}-{n}", std::process::id()));
            clear_segments(&dir).await?;
            tokio::fs::create_dir_all(&dir).await.map_err(|e| {
                Error::User(format!(
                    "memory buffer: creating spill directory \"{}\": {e}",
                    dir.display()
                ))
            })?;
            // The mark that lets a later run clean this folder up: nothing without it is ever removed.
            tokio::fs::write(dir.join(MARKER), b"").await.map_err(|e| {
                Error::External(format!(
                    "memory buffer: marking spill directory \"{}\": {e}",
                    dir.display()
                ))
            })?;
            Some(dir)
        } else {
            None
        };
        metrics.set_buffer(0, 0);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            data: Notify::new(),
            room: Notify::new(),
        });
        let stop = CancellationToken::new();
        let pump = tasks.spawn(
            "pump",
            Pump {
                inner,
                shared: shared.clone(),
                limit,
                spill: spill.clone().map(Spill::new),
                acknowledge: self.acknowledge,
                metrics: metrics.clone(),
            }
            .run(stop.clone()),
        );
        Ok(Box::new(MemoryBuffer {
            shared,
            spill_dir: spill,
            reader: None,
            metrics,
            pump: Some(pump),
            stop,
        }))
    }
}

/// Removes the folders that buffers of processes no longer running left in `base` (named `PID-N`).
struct Pump {
    inner: Box<dyn Input>,
    shared: Arc<Shared>,
    limit: usize,
    spill: Option<Spill>,
    acknowledge: AckMode,
    metrics: Arc<StreamMetrics>,
}

impl Pump {
    async fn run(mut self, stop: CancellationToken) {
        let result = self.fill(&stop).await;
        let closed = self.inner.close().await;
        let result = result.and_then(|exhausted| closed.map(|()| exhausted));
        self.shared.state.lock().expect("buffer lock").ended = Some(result);
        self.shared.data.notify_one();
    }

    async fn fill(&mut self, stop: &CancellationToken) -> Result<bool, Error> {
        loop {
            let batch = match pump_read(self.inner.as_mut(), stop).await? {
                Pumped::Batch(b) => b,
                Pumped::Exhausted => return Ok(true),
                Pumped::Stopped => return Ok(false),
            };
            let size = size_of(&batch.messages);
            // Wait for room, unless the queue is empty (a batch larger than the limit still goes through) or
            // there is a disk to spill to.
            let fits = loop {
                let room = self.shared.room.notified();
                {
                    let s = self.shared.state.lock().expect("buffer lock");
                    if s.memory + size <= self.limit || s.memory == 0 {
                        break true;
                    }
                }
                if self.spill.is_some() {
                    break false;
                }
                tokio::select! {
                    _ = stop.cancelled() => return Ok(false),
                    _ = room => {}
                }
            };
            let count = batch.messages.len() as u64;
            let (body, memory) = if fits {
                (Body::Memory(batch.messages), size)
            } else {
                let spill = self.spill.as_mut().expect("spillover is on");
                let (segment, offset, len) = spill.write(&batch.messages).await?;
                (
                    Body::Spilled {
                        segment,
                        offset,
                        len,
                    },
                    0,
                )
            };
            let ack = match self.acknowledge {
                AckMode::Delivered => batch.ack,
                AckMode::Buffered => {
                    batch.ack.done(Delivery::Delivered);
                    Ack::none()
                }
            };
            let mut finished = None;
            {
                let mut s = self.shared.state.lock().expect("buffer lock");
                if let Body::Spilled { segment, .. } = &body {
                    *s.segments.entry(*segment).or_default() += 1;
                    if *segment != s.writing {
                        // A new segment: the previous one goes once it was read to the end (maybe already).
                        let previous = std::mem::replace(&mut s.writing, *segment);
                        if previous != 0 && !s.segments.contains_key(&previous) {
                            finished = Some(previous);
                        }
                    }
                }
                s.memory += memory;
                s.depth += count;
                let arrived_ms = now_ms();
                s.queue.push_back(Entry {
                    body,
                    memory,
                    count,
                    ack,
                    arrived_ms,
                });
                let oldest = s.queue.front().map_or(0, |e| e.arrived_ms);
                self.metrics.set_buffer(s.depth, oldest);
            }
            if let (Some(n), Some(spill)) = (finished, &self.spill) {
                let _ = tokio::fs::remove_file(segment_path(&spill.dir, n)).await;
            }
            self.shared.data.notify_one();
        }
    }
}

struct MemoryBuffer {
    shared: Arc<Shared>,
    spill_dir: Option<PathBuf>,
    /// The spill segment being read, kept open.
    reader: Option<(u64, tokio::fs::File)>,
    metrics: Arc<StreamMetrics>,
    pump: Option<JoinHandle<()>>,
    stop: CancellationToken,
}

impl MemoryBuffer {
    async fn read_spilled(
        &mut self,
        segment: u64,
        offset: u64,
        len: u64,
    ) -> Result<Vec<Message>, Error> {
        let dir = self
            .spill_dir
            .as_ref()
            .expect("spilled entries have a directory");
        let path = segment_path(dir, segment);
        let failed = |e: std::io::Error| {
            Error::External(format!(
                "memory buffer: reading spill segment \"{}\": {e}",
                path.display()
            ))
        };
        if self.reader.as_ref().is_none_or(|(n, _)| *n != segment) {
            self.reader = Some((segment, tokio::fs::File::open(&path).await.map_err(failed)?));
        }
        let file = &mut self.reader.as_mut().expect("opened above").1;
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(failed)?;
        let mut bytes = vec![0; len as usize];
        file.read_exact(&mut bytes).await.map_err(failed)?;
        let messages = decode(&bytes).ok_or_else(|| {
            Error::Internal(format!(
                "memory buffer: spill segment \"{}\" is corrupt at offset {offset}",
                path.display()
            ))
        })?;
        Ok(messages)
    }
}

#[async_trait]
impl Input for MemoryBuffer {
    async fn read(&mut self) -> Result<Option<InputBatch>, Error> {
        let shared = self.shared.clone();
        loop {
            let data = shared.data.notified();
            // Look at the front first: an entry leaves the queue only once its messages are in hand, so a failed
            // read of a spill segment loses nothing.
            let front = {
                let s = shared.state.lock().expect("buffer lock");
                match s.queue.front() {
                    Some(e) => Ok(Some(match e.body {
                        Body::Memory(_) => None,
                        Body::Spilled {
                            segment,
                            offset,
                            len,
                        } => Some((segment, offset, len)),
                    })),
                    None => match &s.ended {
                        Some(Ok(true)) => return Ok(None),
                        Some(Ok(false)) => Ok(None),
                        // Final for this run: the pump and its input are gone.
                        Some(Err(e)) => Err(Error::User(format!("the memory buffer stopped: {e}"))),
                        None => Ok(None),
                    },
                }
            };
            match front? {
                Some(spilled) => {
                    let read = match spilled {
                        Some((segment, offset, len)) => {
                            Some(self.read_spilled(segment, offset, len).await?)
                        }
                        None => None,
                    };
                    let (entry, gone) = {
                        let mut s = shared.state.lock().expect("buffer lock");
                        let e = s.queue.pop_front().expect("only the reader takes entries");
                        s.memory -= e.memory;
                        s.depth -= e.count;
                        let oldest = s.queue.front().map_or(0, |e| e.arrived_ms);
                        self.metrics.set_buffer(s.depth, oldest);
                        // A segment whose entries were all read goes, unless it is still being written.
                        let mut gone = None;
                        if let Some((segment, _, _)) = spilled {
                            let left = s.segments.entry(segment).or_insert(1);
                            *left -= 1;
                            if *left == 0 {
                                s.segments.remove(&segment);
                                if segment != s.writing {
                                    gone = Some(segment);
                                }
                            }
                        }
                        (e, gone)
                    };
                    if let (Some(segment), Some(dir)) = (gone, &self.spill_dir) {
                        self.reader = None;
                        let _ = tokio::fs::remove_file(segment_path(dir, segment)).await;
                    }
                    self.shared.room.notify_one();
                    let messages = match (entry.body, read) {
                        (Body::Memory(m), _) => m,
                        (Body::Spilled { .. }, Some(m)) => m,
                        (Body::Spilled { .. }, None) => {
                            unreachable!("spilled entries are read above")
                        }
                    };
                    return Ok(Some(InputBatch {
                        messages,
                        ack: entry.ack,
                    }));
                }
                // Stopped: nothing more will come.
                None if self.stop.is_cancelled() => return Ok(None),
                None => data.await,
            }
        }
    }

    async fn close(&mut self) -> Result<(), Error> {
        self.stop.cancel();
        self.shared.room.notify_one();
        if let Some(pump) = self.pump.take() {
            let _ = pump.await;
        }
        let ended = {
            let mut s = self.shared.state.lock().expect("buffer lock");
            // What was never read is not delivered: its acknowledgements say so as they drop.
            s.queue.clear();
            s.ended.take()
        };
        self.metrics.set_buffer(0, 0);
        self.reader = None;
        if let Some(dir) = &self.spill_dir {
            clear_segments(dir).await?;
            let _ = tokio::fs::remove_file(dir.join(MARKER)).await;
            let _ = tokio::fs::remove_dir(dir).await;
        }
        match ended {
            Some(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;
    use std::sync::atomic::Ordering::Relaxed;

    /// An input that yields `n` one-message batches of `size` bytes, numbered, and records acknowledgements.
    struct Numbered {
        next: u64,
        n: u64,
        size: usize,
        acked: Arc<AtomicU64>,
    }

    #[async_trait]
    impl Input for Numbered {
        async fn read(&mut self) -> Result<Option<InputBatch>, Error> {
            if self.next == self.n {
                return Ok(None);
            }
            let i = self.next;
            self.next += 1;
            let mut payload = format!("{i:08}").into_bytes();
            payload.resize(self.size, b'.');
            let acked = self.acked.clone();
            Ok(Some(InputBatch {
                messages: vec![crate::message(payload, Default::default())],
                ack: Ack::new(move |d| {
                    if d == Delivery::Delivered {
                        acked.fetch_add(1, Relaxed);
                    }
                }),
            }))
        }
    }

    fn config(
        limit: u64,
        spillover: bool,
        dir: &std::path::Path,
        acknowledge: AckMode,
    ) -> MemoryBufferConfig {
        MemoryBufferConfig {
            limit: airtruct_model::ByteSize(limit),
            spillover,
            spill_dir: Some(dir.join("spill")),
            acknowledge,
        }
    }

    #[tokio::test]
    async fn spills_past_its_limit_and_gives_everything_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let acked = Arc::new(AtomicU64::new(0));
        let input = Numbered {
            next: 0,
            n: 2000,
            size: 1000,
            acked: acked.clone(),
        };
        let metrics = Arc::new(StreamMetrics::default());
        // 20 KB of room for 2 MB of input: nearly everything spills while nobody reads.
        let mut buffer = config(20_000, true, dir.path(), AckMode::Buffered)
            .start(
                Box::new(input),
                metrics.clone(),
                &crate::Tasks::default().named("test"),
            )
            .await
            .unwrap();
        // Buffered: the input is acknowledged as soon as the batches are in; let it all arrive.
        for _ in 0..500 {
            if acked.load(Relaxed) == 2000 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(acked.load(Relaxed), 2000, "the input was not drained");
        assert_eq!(metrics.snapshot().buffer_depth, 2000);
        let own = std::fs::read_dir(dir.path().join("spill"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let segments = std::fs::read_dir(own).unwrap().count();
        assert!(segments >= 1, "nothing was spilled");
        let mut seen = Vec::new();
        while let Some(b) = buffer.read().await.unwrap() {
            for m in &b.messages {
                seen.push(
                    String::from_utf8_lossy(&m.payload[..8])
                        .parse::<u64>()
                        .unwrap(),
                );
            }
            b.ack.done(Delivery::Delivered);
        }
        assert_eq!(seen, (0..2000).collect::<Vec<_>>());
        assert_eq!(metrics.snapshot().buffer_depth, 0);
        buffer.close().await.unwrap();
        let left = std::fs::read_dir(dir.path().join("spill")).unwrap().count();
        assert_eq!(left, 0, "spill segments were left behind");
    }

    #[tokio::test]
    async fn only_folders_a_buffer_marked_as_its_own_are_removed() {
        let base = tempfile::tempdir().unwrap();
        // Both look like a dead process's folders (pid 0 never runs a buffer); only one carries the mark.
        for name in ["0-1", "0-2"] {
            std::fs::create_dir_all(base.path().join(name)).unwrap();
            std::fs::write(base.path().join(name).join("data"), b"keep?").unwrap();
        }
        std::fs::write(base.path().join("0-1").join(MARKER), b"").unwrap();
        remove_stale(base.path()).await;
        assert!(
            !base.path().join("0-1").exists(),
            "the marked folder is cleaned up"
        );
        assert!(
            base.path().join("0-2/data").exists(),
            "an unmarked folder is left alone"
        );
    }

    #[tokio::test]
    async fn without_spillover_the_input_waits_and_is_acknowledged_on_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let acked = Arc::new(AtomicU64::new(0));
        let input = Numbered {
            next: 0,
            n: 100,
            size: 1000,
            acked: acked.clone(),
        };
        let metrics = Arc::new(StreamMetrics::default());
        let mut buffer = config(10_000, false, dir.path(), AckMode::Delivered)
            .start(
                Box::new(input),
                metrics.clone(),
                &crate::Tasks::default().named("test"),
            )
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        // Full at about 10 KB: the input waits; nothing is acknowledged before delivery.
        let held = metrics.snapshot().buffer_depth;
        assert!((9..=10).contains(&held), "held {held}");
        assert_eq!(acked.load(Relaxed), 0);
        let mut n = 0;
        while let Some(b) = buffer.read().await.unwrap() {
            n += b.messages.len();
            if n % 2 == 0 {
                b.ack.done(Delivery::Delivered);
            }
            // Odd ones dropped: not delivered, so never acknowledged upstream.
        }
        assert_eq!(n, 100);
        assert_eq!(acked.load(Relaxed), 50);
        buffer.close().await.unwrap();
    }

    #[test]
    fn a_corrupt_spilled_batch_is_detected() {
        let m = vec![crate::message(b"abc".to_vec(), Default::default())];
        let mut bytes = encode(&m);
        assert_eq!(decode(&bytes).unwrap()[0].payload, b"abc");
        bytes[6] ^= 1;
        assert!(decode(&bytes).is_none());
    }
}
