//! Journeys: a stream with `trace: {sample: F}` marks that fraction of the messages its input reads with a
//! `trace_id` metadata value (see [`crate::tap::Tap::mark`]), and keeps each traced message's payload and metadata
//! at every step (where it was filtered out or failed too) here: the newest [`MAX_JOURNEYS`] of the stream in this
//! process, for [`JOURNEY_TTL`], shared by its replicas here and outliving a run, found by the id or by a metadata
//! value.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

use crate::tap::TapEvent;

/// The metadata key of a traced message's id.
pub const TRACE_KEY: &str = "trace_id";
/// The most journeys kept per stream and process.
pub const MAX_JOURNEYS: usize = 1000;
/// How long a journey is kept after it began.
pub const JOURNEY_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// The most steps kept in one journey (a message split in many keeps the first ones).
const MAX_STEPS: usize = 64;

/// 16 hex digits, unique enough to find one message among a stream's recent ones.
pub(crate) fn new_trace_id() -> String {
    use std::sync::atomic::AtomicU64;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut x = crate::tap::now_ms()
        ^ (NEXT.fetch_add(1, Ordering::Relaxed) << 40)
        ^ u64::from(std::process::id()) << 20;
    // splitmix64
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    format!("{:016x}", x ^ (x >> 31))
}

/// One traced message's path through the steps.
#[derive(Debug, Clone, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Journey {
    pub trace_id: String,
    /// When it was read (milliseconds since the Unix epoch).
    pub started_ms: u64,
    /// What it was at each step, in order (several at one step when a processor split it).
    pub steps: Vec<TapEvent>,
}

/// The recent journeys of one stream.
#[derive(Clone, Default)]
pub struct Journeys {
    inner: Arc<Mutex<JourneyStore>>,
}

#[derive(Default)]
struct JourneyStore {
    by_id: HashMap<String, Journey>,
    /// Ids, oldest first, with when they began.
    order: std::collections::VecDeque<(Instant, String)>,
}

impl Journeys {
    pub(crate) fn is_empty(&self) -> bool {
        let mut store = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        store.expire();
        store.order.is_empty()
    }

    pub(crate) fn add(&self, id: &str, event: TapEvent) {
        let mut store = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        store.expire();
        if let Some(j) = store.by_id.get_mut(id) {
            if j.steps.len() < MAX_STEPS {
                j.steps.push(event);
            }
            return;
        }
        if store.order.len() >= MAX_JOURNEYS
            && let Some((_, old)) = store.order.pop_front()
        {
            store.by_id.remove(&old);
        }
        store.order.push_back((Instant::now(), id.to_string()));
        store.by_id.insert(
            id.to_string(),
            Journey {
                trace_id: id.to_string(),
                started_ms: event.at_ms,
                steps: vec![event],
            },
        );
    }

    /// The journeys with this trace id, or with a step whose metadata has `key` (any key when `None`) set to
    /// `value`; newest first, at most `limit`.
    pub fn find(
        &self,
        trace_id: Option<&str>,
        key: Option<&str>,
        value: Option<&str>,
        limit: usize,
    ) -> Vec<Journey> {
        let mut store = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        store.expire();
        let matches = |j: &Journey| match (trace_id, value) {
            (Some(id), _) => j.trace_id == id,
            (None, Some(value)) => j.steps.iter().any(|s| {
                s.metadata
                    .iter()
                    .any(|(k, v)| v == value && key.is_none_or(|key| key == k))
            }),
            (None, None) => true,
        };
        store
            .order
            .iter()
            .rev()
            .filter_map(|(_, id)| store.by_id.get(id))
            .filter(|j| matches(j))
            .take(limit)
            .cloned()
            .collect()
    }
}

impl JourneyStore {
    fn expire(&mut self) {
        while let Some((at, _)) = self.order.front() {
            if at.elapsed() < JOURNEY_TTL {
                break;
            }
            if let Some((_, id)) = self.order.pop_front() {
                self.by_id.remove(&id);
            }
        }
    }
}
