//! The live tap: a bounded sample of the messages at each step of a running stream (after the input, after each
//! processor, at the output, and the ones that failed), sent to whoever watches, stored nowhere.
//!
//! A stream that nobody watches pays one atomic load per batch and step. A watched one sends at most
//! [`PER_STEP_PER_SECOND`] messages a second from each step, each payload cut at [`MAX_PAYLOAD`] bytes; a
//! watcher that reads too slowly misses events (it is told how many) rather than slowing the stream.
//!
//! With `trace: {sample: F}` the tap also marks that share of the messages and records them in the stream's
//! [`Journeys`] (see [`crate::journeys`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::journeys::{Journeys, TRACE_KEY, new_trace_id};
use crate::{Message, Metadata};

/// The most messages sent from one step in one second.
pub const PER_STEP_PER_SECOND: u32 = 10;
/// The most payload bytes sent for one message.
pub const MAX_PAYLOAD: usize = 4096;
/// Events queued for a slow watcher before it misses some.
const QUEUE: usize = 256;

/// One sampled message at one step.
#[derive(Debug, Clone, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct TapEvent {
    /// The step: 0 the input, 1 to N the processors in order, N + 1 the output.
    pub step: usize,
    /// What the step is (`input (generate)`, `pipeline.processors[0] (mapping)`, `output (file)`).
    pub label: String,
    /// The payload as text (invalid UTF-8 replaced), cut at 4 KiB.
    pub payload: String,
    /// The payload's whole size in bytes.
    pub bytes: usize,
    pub metadata: BTreeMap<String, String>,
    /// Why it failed at this step, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// In a journey: the message was filtered out at this step (the payload is what went into it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub filtered: bool,
    /// When it was sampled (milliseconds since the Unix epoch).
    pub at_ms: u64,
}

/// The tap of one running stream (one replica).
#[derive(Clone, Default)]
pub struct Tap {
    inner: Arc<Inner>,
}

struct Inner {
    watchers: AtomicUsize,
    tx: broadcast::Sender<Arc<TapEvent>>,
    /// Per step: the second being counted and what is left of its budget.
    budget: Mutex<HashMap<usize, (Instant, u32)>>,
    /// The fraction traced, and how much of the next trace the messages so far have earned.
    trace: Mutex<Option<(f64, f64)>>,
    /// Whether `trace` is set (read without the lock on every batch).
    tracing: std::sync::atomic::AtomicBool,
    journeys: Journeys,
    /// Cancelled when the replica stops: its watchers then see the end (each holds the sender too, so the
    /// channel alone would never close).
    stopped: tokio_util::sync::CancellationToken,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            watchers: AtomicUsize::new(0),
            tx: broadcast::channel(QUEUE).0,
            budget: Mutex::new(HashMap::new()),
            trace: Mutex::new(None),
            tracing: std::sync::atomic::AtomicBool::new(false),
            journeys: Journeys::default(),
            stopped: tokio_util::sync::CancellationToken::new(),
        }
    }
}

/// A watcher's end: events as they come; dropping it stops the sampling when it was the last.
pub struct Watch {
    tap: Tap,
    rx: broadcast::Receiver<Arc<TapEvent>>,
}

impl Watch {
    /// The next event; `Err(n)` when `n` events were missed because this watcher read too slowly; `None` when
    /// the stream stopped.
    pub async fn next(&mut self) -> Option<Result<Arc<TapEvent>, u64>> {
        // What was sampled before the stop is still handed over.
        let next = tokio::select! {
            biased;
            next = self.rx.recv() => next,
            _ = self.tap.inner.stopped.cancelled() => return None,
        };
        match next {
            Ok(e) => Some(Ok(e)),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(Err(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.tap.inner.watchers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Tap {
    /// Whether anyone watches.
    pub fn active(&self) -> bool {
        self.inner.watchers.load(Ordering::Relaxed) > 0
    }

    /// Starts watching.
    pub fn watch(&self) -> Watch {
        let rx = self.inner.tx.subscribe();
        self.inner.watchers.fetch_add(1, Ordering::Relaxed);
        Watch {
            tap: self.clone(),
            rx,
        }
    }

    /// Traces this fraction of the messages from now on (`None`: none).
    pub fn set_trace(&self, sample: Option<f64>) {
        *self.inner.trace.lock().unwrap_or_else(|p| p.into_inner()) = sample.map(|s| (s, 0.0));
        self.inner
            .tracing
            .store(sample.is_some(), Ordering::Relaxed);
    }

    /// Whether the stream traces messages.
    pub fn tracing(&self) -> bool {
        self.inner.tracing.load(Ordering::Relaxed)
    }

    /// Marks the share of `messages` that is traced with a `trace_id`, and records them at `step` (the input).
    pub fn mark(&self, step: usize, label: &dyn Fn() -> String, messages: &mut [Message]) {
        if !self.tracing() {
            return;
        }
        let mut chosen = Vec::new();
        {
            let mut trace = self.inner.trace.lock().unwrap_or_else(|p| p.into_inner());
            let Some((sample, earned)) = trace.as_mut() else {
                return;
            };
            for (i, m) in messages.iter().enumerate() {
                *earned += *sample;
                if *earned >= 1.0 && crate::meta_get(m, TRACE_KEY).is_none() {
                    *earned -= 1.0;
                    chosen.push(i);
                }
            }
        }
        for i in chosen {
            crate::meta_set(&mut messages[i], TRACE_KEY, &new_trace_id());
        }
        self.record(step, label, messages.iter(), false);
    }

    /// Records the traced ones of `messages` at `step` (`filtered`: filtered out there).
    pub fn record<'a>(
        &self,
        step: usize,
        label: &dyn Fn() -> String,
        messages: impl IntoIterator<Item = &'a Message>,
        filtered: bool,
    ) {
        if !self.tracing() {
            return;
        }
        let mut label_once: Option<String> = None;
        for m in messages {
            if let Some(id) = crate::meta_get(m, TRACE_KEY) {
                let label = label_once.get_or_insert_with(label).clone();
                let mut event = event_of(step, label, m, now_ms());
                event.filtered = filtered;
                self.inner.journeys.add(id, event);
            }
        }
    }

    /// The journeys of this stream.
    pub fn journeys(&self) -> &Journeys {
        &self.inner.journeys
    }

    /// Samples messages at a step, within the step's budget; nothing when nobody watches.
    pub fn sample<'a>(
        &self,
        step: usize,
        label: &dyn Fn() -> String,
        messages: impl IntoIterator<Item = &'a Message>,
    ) {
        if !self.active() {
            return;
        }
        let chosen: Vec<&Message> = {
            let mut budget = self.inner.budget.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let (since, left) = budget.entry(step).or_insert((now, PER_STEP_PER_SECOND));
            if now.duration_since(*since).as_secs() >= 1 {
                *since = now;
                *left = PER_STEP_PER_SECOND;
            }
            let chosen: Vec<&Message> = messages.into_iter().take(*left as usize).collect();
            *left -= chosen.len() as u32;
            chosen
        };
        if chosen.is_empty() {
            return;
        }
        let label = label();
        let at_ms = now_ms();
        for m in chosen {
            // No receiver left between the check and now: nothing to do.
            let _ = self
                .inner
                .tx
                .send(Arc::new(event_of(step, label.clone(), m, at_ms)));
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn event_of(step: usize, label: String, m: &Message, at_ms: u64) -> TapEvent {
    let cut = &m.payload[..m.payload.len().min(MAX_PAYLOAD)];
    TapEvent {
        step,
        label,
        payload: String::from_utf8_lossy(cut).into_owned(),
        bytes: m.payload.len(),
        metadata: Metadata::iter_bytes(&m.metadata)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        error: m.error.clone(),
        filtered: false,
        at_ms,
    }
}

/// The taps of the streams running in this process, by stream id (one per replica running here).
#[derive(Clone, Default)]
pub struct Taps {
    inner: Arc<Mutex<HashMap<String, Vec<Tap>>>>,
    /// Each stream's journeys, kept across its runs here.
    journeys: Arc<Mutex<HashMap<String, Journeys>>>,
}

impl Taps {
    /// A new tap for a replica of `stream`, removed when the returned guard drops (the replica stopped).
    pub fn open(&self, stream: &str) -> (Tap, TapGuard) {
        let journeys = self
            .journeys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(stream.to_string())
            .or_default()
            .clone();
        let tap = Tap {
            inner: Arc::new(Inner {
                journeys,
                ..Inner::default()
            }),
        };
        let mut taps = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        taps.entry(stream.to_string())
            .or_default()
            .push(tap.clone());
        let guard = TapGuard {
            taps: self.clone(),
            stream: stream.to_string(),
            tap: tap.clone(),
        };
        (tap, guard)
    }

    /// The journeys of `stream` kept here, when it ran here.
    pub fn journeys(&self, stream: &str) -> Option<Journeys> {
        self.journeys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(stream)
            .cloned()
    }

    /// Watches every replica of `stream` running here; `None` when none runs here.
    pub fn watch(&self, stream: &str) -> Option<Vec<Watch>> {
        let taps = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let running = taps.get(stream).filter(|t| !t.is_empty())?;
        Some(running.iter().map(Tap::watch).collect())
    }
}

/// Removes a replica's tap when it stops; its watchers then see the end.
pub struct TapGuard {
    taps: Taps,
    stream: String,
    tap: Tap,
}

impl Drop for TapGuard {
    fn drop(&mut self) {
        self.tap.inner.stopped.cancel();
        let mut taps = self.taps.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = taps.get_mut(&self.stream) {
            list.retain(|t| !Arc::ptr_eq(&t.inner, &self.tap.inner));
            if list.is_empty() {
                taps.remove(&self.stream);
            }
        }
        drop(taps);
        // A stream that traced nothing leaves nothing behind.
        let mut journeys = self.taps.journeys.lock().unwrap_or_else(|p| p.into_inner());
        if journeys.get(&self.stream).is_some_and(Journeys::is_empty) {
            journeys.remove(&self.stream);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str) -> Message {
        Message {
            payload: text.as_bytes().to_vec(),
            metadata: Vec::new(),
            error: None,
        }
    }

    #[tokio::test]
    async fn samples_only_while_watched_and_within_the_budget() {
        let taps = Taps::default();
        let (tap, guard) = taps.open("s");
        let batch: Vec<Message> = (0..50).map(|i| msg(&format!("m{i}"))).collect();
        tap.sample(0, &|| "input".into(), &batch);
        let mut watch = taps.watch("s").unwrap().pop().unwrap();
        tap.sample(1, &|| "pipeline.processors[0] (mapping)".into(), &batch);
        tap.sample(1, &|| "pipeline.processors[0] (mapping)".into(), &batch);
        let mut seen = Vec::new();
        while let Ok(Some(Ok(e))) =
            tokio::time::timeout(std::time::Duration::from_millis(50), watch.next()).await
        {
            seen.push(e);
        }
        // Nothing from before the watch; ten a second from the step, the first ten.
        assert_eq!(seen.len(), PER_STEP_PER_SECOND as usize);
        assert!(seen.iter().all(|e| e.step == 1));
        assert_eq!(seen[0].payload, "m0");
        assert_eq!(seen[0].bytes, 2);
        drop(watch);
        assert!(!tap.active());
        drop(guard);
        assert!(taps.watch("s").is_none());
    }

    #[tokio::test]
    async fn a_watch_ends_when_its_replica_stops_after_what_was_sampled_before() {
        let taps = Taps::default();
        let (tap, guard) = taps.open("s");
        let mut watch = taps.watch("s").unwrap().pop().unwrap();
        tap.sample(1, &|| "step".into(), &[msg("last")]);
        // The stream's own handles may outlive the replica for a while: the stop alone ends the watch.
        let kept = tap.clone();
        drop(guard);
        let next = tokio::time::timeout(std::time::Duration::from_secs(5), watch.next()).await;
        assert_eq!(next.unwrap().unwrap().unwrap().payload, "last");
        let end = tokio::time::timeout(std::time::Duration::from_secs(5), watch.next()).await;
        assert!(end.expect("the watch ended").is_none());
        drop(kept);
    }

    #[test]
    fn traces_the_share_asked_for_and_keeps_their_journeys_after_the_run() {
        let taps = Taps::default();
        let (tap, guard) = taps.open("s");
        tap.set_trace(Some(0.25));
        let mut batch: Vec<Message> = (0..20).map(|i| msg(&format!("m{i}"))).collect();
        tap.mark(0, &|| "input".into(), &mut batch);
        let traced: Vec<&Message> = batch
            .iter()
            .filter(|m| crate::meta_get(m, TRACE_KEY).is_some())
            .collect();
        assert_eq!(traced.len(), 5, "one in four");
        let id = crate::meta_get(traced[0], TRACE_KEY).unwrap().to_string();
        assert_eq!(id.len(), 16);
        tap.record(1, &|| "filter".into(), [traced[0]], true);
        drop(guard);
        // Found by its id after the run ended, with both steps; by a metadata value too.
        let found = taps.journeys("s").unwrap().find(Some(&id), None, None, 10);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].steps.len(), 2);
        assert_eq!(found[0].steps[0].payload, "m3");
        assert!(found[0].steps[1].filtered);
        let by_value = taps.journeys("s").unwrap().find(None, None, Some(&id), 10);
        assert_eq!(by_value.len(), 1);
        assert_eq!(
            taps.journeys("s").unwrap().find(None, None, None, 10).len(),
            5
        );
    }
}
