//! The windowing itself, without I/O or clocks: messages in, closed windows out, and the shared
//! acknowledgements that fire once every window holding a message was delivered.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::{Ack, Delivery, Message, meta_set};

use super::WindowKind;

#[derive(Debug, Clone, Copy)]
pub(super) struct Spec {
    pub(super) kind: WindowKind,
    pub(super) size: i64,
    pub(super) slide: i64,
    pub(super) lateness: i64,
}

impl Spec {
    /// The windows holding event time `t`, as `(start, end)`.
    pub(super) fn windows_of(&self, t: i64) -> Vec<(i64, i64)> {
        match self.kind {
            WindowKind::Tumbling => {
                let start = t.div_euclid(self.size) * self.size;
                vec![(start, start + self.size)]
            }
            WindowKind::Hopping => {
                let mut start = t.div_euclid(self.slide) * self.slide;
                let mut out = Vec::new();
                while start > t - self.size {
                    out.push((start, start + self.size));
                    start -= self.slide;
                }
                out.reverse();
                out
            }
            WindowKind::Sliding => vec![(t + 1 - self.size, t + 1)],
        }
    }

    /// The end of the last window that can hold event time `t`.
    pub(super) fn last_end(&self, t: i64) -> i64 {
        match self.kind {
            WindowKind::Tumbling => t.div_euclid(self.size) * self.size + self.size,
            WindowKind::Hopping => t.div_euclid(self.slide) * self.slide + self.size,
            WindowKind::Sliding => t + self.size,
        }
    }
}

/// One upstream batch's acknowledgement, shared by its messages and the windows that hold them: it fires once
/// every reference is released, `NotDelivered` if any release was.
pub(super) struct Share {
    pub(super) upstream: Mutex<Option<Ack>>,
    pub(super) refs: AtomicUsize,
    pub(super) failed: AtomicBool,
}

impl Share {
    pub(super) fn new(ack: Ack) -> Arc<Self> {
        Arc::new(Self {
            upstream: Mutex::new(Some(ack)),
            refs: AtomicUsize::new(1),
            failed: AtomicBool::new(false),
        })
    }

    pub(super) fn acquire(&self) {
        self.refs.fetch_add(1, Ordering::AcqRel);
    }

    pub(super) fn release(&self, d: Delivery) {
        if d == Delivery::NotDelivered {
            self.failed.store(true, Ordering::Release);
        }
        if self.refs.fetch_sub(1, Ordering::AcqRel) == 1 {
            let outcome = if self.failed.load(Ordering::Acquire) {
                Delivery::NotDelivered
            } else {
                Delivery::Delivered
            };
            if let Some(ack) = self.upstream.lock().expect("share lock").take() {
                ack.done(outcome);
            }
        }
    }
}

/// Releases every share it holds once, with the batch's outcome.
pub(super) fn releasing(shares: Vec<Arc<Share>>) -> Ack {
    Ack::new(move |d| {
        for s in shares {
            s.release(d);
        }
    })
}

pub(super) struct Held {
    pub(super) message: Message,
    pub(super) share: Arc<Share>,
    pub(super) seq: u64,
}

/// A closed window: its bounds and its messages, in event-time order.
pub(super) struct Closed {
    pub(super) start: i64,
    pub(super) end: i64,
    pub(super) messages: Vec<Message>,
    pub(super) shares: Vec<Arc<Share>>,
}

/// The windowing itself, without I/O or clocks: messages in, closed windows out.
pub(super) struct Windows {
    pub(super) spec: Spec,
    pub(super) watermark: i64,
    /// Messages that an open window may still need, by (event time, arrival order).
    pub(super) held: BTreeMap<(i64, u64), Held>,
    /// Arrival time of each held message, by arrival order: the first is the oldest.
    pub(super) arrivals: BTreeMap<u64, u64>,
    /// Open windows with at least one message, as (end, start).
    pub(super) pending: BTreeSet<(i64, i64)>,
    pub(super) seq: u64,
}

impl Windows {
    pub(super) fn new(spec: Spec) -> Self {
        Self {
            spec,
            watermark: i64::MIN,
            held: BTreeMap::new(),
            arrivals: BTreeMap::new(),
            pending: BTreeSet::new(),
            seq: 0,
        }
    }

    pub(super) fn is_closed(&self, end: i64) -> bool {
        end.saturating_add(self.spec.lateness) <= self.watermark
    }

    /// Adds a message at event time `t`; gives it back when it is late (every window holding it has closed).
    pub(super) fn insert(
        &mut self,
        t: i64,
        message: Message,
        share: Arc<Share>,
        arrived_ms: u64,
    ) -> Result<(), (Message, Arc<Share>)> {
        let open: Vec<(i64, i64)> = self
            .spec
            .windows_of(t)
            .into_iter()
            .filter(|&(_, end)| !self.is_closed(end))
            .collect();
        // A sliding window belongs to later messages too: a message is late only once no window that can still
        // come could hold it.
        let late = match self.spec.kind {
            WindowKind::Sliding => self.is_closed(self.spec.last_end(t)),
            _ => open.is_empty(),
        };
        if late {
            return Err((message, share));
        }
        self.seq += 1;
        self.pending.extend(open.into_iter().map(|(s, e)| (e, s)));
        self.arrivals.insert(self.seq, arrived_ms);
        self.held.insert(
            (t, self.seq),
            Held {
                message,
                share,
                seq: self.seq,
            },
        );
        Ok(())
    }

    /// Moves the watermark to `to` (it never goes back) and returns the windows that closed, oldest end first.
    pub(super) fn advance(&mut self, to: i64) -> Vec<Closed> {
        self.watermark = self.watermark.max(to);
        let mut closed = Vec::new();
        while let Some(&(end, start)) = self.pending.first() {
            if !self.is_closed(end) {
                break;
            }
            self.pending.pop_first();
            let mut messages = Vec::new();
            let mut shares = Vec::new();
            let (start_text, end_text) = (start.to_string(), end.to_string());
            // A message whose last window this is moves into it, taking its hold on the acknowledgement along
            // (every message of a tumbling window); one that a later window holds too is copied.
            let spec = self.spec;
            let last = |t: i64| spec.last_end(t) == end;
            let keys: Vec<(i64, u64)> = self
                .held
                .range((start, 0)..(end, 0))
                .map(|(&k, _)| k)
                .collect();
            messages.reserve(keys.len());
            shares.reserve(keys.len());
            for key in keys {
                let (mut m, share) = if last(key.0) {
                    let h = self.held.remove(&key).expect("a held key");
                    self.arrivals.remove(&h.seq);
                    (h.message, h.share)
                } else {
                    let h = &self.held[&key];
                    h.share.acquire();
                    (h.message.clone(), h.share.clone())
                };
                meta_set(&mut m, "window_start", &start_text);
                meta_set(&mut m, "window_end", &end_text);
                messages.push(m);
                shares.push(share);
            }
            closed.push(Closed {
                start,
                end,
                messages,
                shares,
            });
        }
        // Let go of messages no open window can hold any more.
        let spec = self.spec;
        let watermark = self.watermark;
        let gone: Vec<(i64, u64)> = self
            .held
            .keys()
            .take_while(|&&(t, _)| spec.last_end(t).saturating_add(spec.lateness) <= watermark)
            .copied()
            .collect();
        for key in gone {
            if let Some(h) = self.held.remove(&key) {
                self.arrivals.remove(&h.seq);
                h.share.release(Delivery::Delivered);
            }
        }
        closed
    }

    /// Closes every open window (the input ended).
    pub(super) fn close_all(&mut self) -> Vec<Closed> {
        self.advance(i64::MAX)
    }

    pub(super) fn depth(&self) -> (u64, u64) {
        (
            self.held.len() as u64,
            self.arrivals.first_key_value().map_or(0, |(_, &a)| a),
        )
    }
}
