//! `system_window`: groups messages into windows of event time and hands each closed window to the processors as
//! one batch, with the window's bounds in every message's metadata (`window_start`, `window_end`: milliseconds
//! since the epoch, the window being `[start, end)`).
//!
//! - `tumbling` windows of `size`, aligned to the epoch; `hopping` windows of `size` starting every `slide`;
//!   `sliding` windows, one per distinct event time `t`, holding what happened in the `size` up to it:
//!   `[t - size + 1ms, t + 1ms)`.
//! - Event time comes from a payload field (`timestamp_field`, a dotted path into JSON), a metadata key
//!   (`timestamp_metadata`), or the arrival time when neither is set. Times are integers of milliseconds since
//!   the epoch or RFC 3339 strings in UTC (`2026-11-26T10:00:00Z`).
//! - The watermark is the latest event time seen (the clock, for arrival time). A window closes once the
//!   watermark reaches its end plus `allowed_lateness`; with event time, the windows still open when a finite
//!   input ends are closed then. Windows with no messages produce nothing.
//! - A message whose windows have all closed is late: it is counted (`late`) and written to `late_output` when
//!   set, else dropped.
//! - A message without a readable time goes on alone, marked failed, so the stream's error policy applies.
//!
//! The input is acknowledged for a message once every window holding it was delivered (late messages: once
//! written to the late output, or dropped), so a crash loses nothing; a restart builds the windows again from
//! what the input delivers again.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use airtruct_model::Duration as HumanDuration;
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{now_ms, pump_into};
use crate::context::BuildContext;
use crate::kind::{BufferKind, Check, Kind, OutputKind, Resolved};
use crate::tasks::NamedTasks;
use crate::{Delivery, Error, Input, InputBatch, Output, StreamMetrics};

mod assign;
mod time;

use assign::*;
use time::*;

/// The most hopping windows one message may fall in (`size / slide`).
pub(super) const MAX_OVERLAP: u128 = 1000;

/// How far ahead of this machine's clock an event time may be: one from further ahead would move the watermark
/// past everything that follows, so it fails instead.
pub(super) const MAX_LEAD_MS: i64 = 3_600_000;

/// The shape of the windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WindowKind {
    /// Back-to-back windows of `size`.
    Tumbling,
    /// Windows of `size` starting every `slide` (they overlap when `slide` < `size`).
    Hopping,
    /// One window per event time, holding the `size` up to it.
    Sliding,
}

/// Time windows.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct WindowConfig {
    /// `tumbling`, `hopping` or `sliding`.
    #[serde(rename = "type")]
    pub kind: WindowKind,
    /// The length of a window.
    pub size: HumanDuration,
    /// How far apart hopping windows start (hopping only).
    #[serde(default)]
    pub slide: Option<HumanDuration>,
    /// A dotted path to the event time in a JSON payload (`ts`, `event.time`).
    #[serde(default)]
    pub timestamp_field: Option<String>,
    /// A metadata key holding the event time.
    #[serde(default)]
    pub timestamp_metadata: Option<String>,
    /// How long after a window's end it still takes messages (default 0s).
    #[serde(default)]
    pub allowed_lateness: HumanDuration,
    /// Where late messages go, as an output (`file: {path: late.jsonl}`); when unset they are dropped and
    /// counted.
    #[serde(default)]
    #[schemars(
        with = "Option<serde_json::Map<String, Value>>",
        extend("x-airtruct-component" = "output")
    )]
    pub late_output: Option<Value>,
    /// Set by the check: the late output, parsed.
    #[serde(skip)]
    #[schemars(skip)]
    late: Resolved<dyn OutputKind>,
}

impl Kind for WindowConfig {
    const NAME: &'static str = "system_window";
    const DESCRIPTION: &'static str = "Groups messages into tumbling, hopping or sliding windows of event time and \
         hands each closed window to the processors as one batch (use the aggregate processor to count or sum per \
         key)";
    const EXAMPLE: &'static str = r#"{"type": "tumbling", "size": "10s", "timestamp_field": "ts",
        "allowed_lateness": "2s", "late_output": {"drop": {}}}"#;
    const NESTED: &'static [(&'static str, crate::Role)] = &[("late_output", crate::Role::Output)];

    fn check(&mut self, check: &mut Check<'_>) {
        for (field, message) in self.problems() {
            check.problem(field, message);
        }
        if let Some(v) = &self.late_output {
            self.late = Resolved(check.output("late_output", v).map(Arc::from));
        }
    }
}

#[async_trait]
impl BufferKind for WindowConfig {
    async fn wrap(
        &self,
        input: Box<dyn Input>,
        cx: &BuildContext,
    ) -> Result<Box<dyn Input>, Error> {
        let late = match (&self.late.0, &self.late_output) {
            (Some(o), Some(v)) => {
                let kind = v
                    .as_object()
                    .and_then(|m| m.keys().next())
                    .cloned()
                    .unwrap_or_default();
                let late_cx = cx.for_component("buffer.system_window.late_output", &kind);
                Some(o.build(&late_cx).await?)
            }
            _ => None,
        };
        self.start(input, late, cx.stream_metrics.clone(), &cx.tasks)
            .await
    }

    fn keeps_batches(&self) -> bool {
        true
    }
}

impl WindowConfig {
    /// Problems with the options, as `(field, message)`.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.size.0.as_millis() == 0 {
            out.push(("size", "must be at least 1ms".to_string()));
        }
        match (self.kind, self.slide) {
            (WindowKind::Hopping, None) => {
                out.push(("slide", "hopping windows need a slide".to_string()))
            }
            (WindowKind::Hopping, Some(s)) if s.0.as_millis() == 0 || s.0 > self.size.0 => out
                .push((
                    "slide",
                    "must be at least 1ms and at most the size".to_string(),
                )),
            (WindowKind::Hopping, Some(s))
                if self.size.0.as_millis() / s.0.as_millis() > MAX_OVERLAP =>
            {
                out.push((
                    "slide",
                    format!(
                        "puts each message in more than {MAX_OVERLAP} windows: make it at least size / {MAX_OVERLAP}"
                    ),
                ))
            }
            (WindowKind::Tumbling | WindowKind::Sliding, Some(_)) => {
                out.push(("slide", "only hopping windows have a slide".to_string()))
            }
            _ => {}
        }
        if self.timestamp_field.is_some() && self.timestamp_metadata.is_some() {
            out.push((
                "timestamp_metadata",
                "set timestamp_field or timestamp_metadata, not both".to_string(),
            ));
        }
        out
    }

    fn spec(&self) -> Spec {
        let ms = |d: std::time::Duration| d.as_millis().min(i64::MAX as u128) as i64;
        Spec {
            kind: self.kind,
            size: ms(self.size.0).max(1),
            slide: self.slide.map_or(1, |s| ms(s.0).max(1)),
            lateness: ms(self.allowed_lateness.0),
        }
    }

    /// Starts windowing `inner`; late messages go to `late_output` when given.
    pub async fn start(
        &self,
        inner: Box<dyn Input>,
        late_output: Option<Box<dyn Output>>,
        metrics: Arc<StreamMetrics>,
        tasks: &NamedTasks,
    ) -> Result<Box<dyn Input>, Error> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let stop = CancellationToken::new();
        let pump = tasks.spawn("pump", pump_into(inner, tx, stop.clone()));
        let source = match (&self.timestamp_field, &self.timestamp_metadata) {
            (Some(f), _) => TimeSource::Field(f.split('.').map(str::to_string).collect()),
            (None, Some(k)) => TimeSource::Metadata(k.clone()),
            (None, None) => TimeSource::Arrival,
        };
        metrics.set_buffer(0, 0);
        Ok(Box::new(WindowBuffer {
            windows: Windows::new(self.spec()),
            source,
            clock: Arc::new(|| now_ms() as i64),
            rx,
            ready: VecDeque::new(),
            late_output,
            metrics,
            pump: Some(pump),
            stop,
            ended: false,
        }))
    }
}

struct WindowBuffer {
    windows: Windows,
    source: TimeSource,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    rx: tokio::sync::mpsc::Receiver<InputBatch>,
    ready: VecDeque<InputBatch>,
    late_output: Option<Box<dyn Output>>,
    metrics: Arc<StreamMetrics>,
    pump: Option<JoinHandle<Result<bool, Error>>>,
    stop: CancellationToken,
    ended: bool,
}

impl WindowBuffer {
    fn queue(&mut self, closed: Vec<Closed>) {
        for c in closed {
            tracing::debug!(
                start = c.start,
                end = c.end,
                messages = c.messages.len(),
                "window closed"
            );
            self.ready.push_back(InputBatch {
                messages: c.messages,
                ack: releasing(c.shares),
            });
        }
        let (depth, oldest) = self.windows.depth();
        self.metrics.set_buffer(depth, oldest);
    }

    async fn take(&mut self, batch: InputBatch) -> Result<(), Error> {
        let share = Share::new(batch.ack);
        let now = (self.clock)();
        if matches!(self.source, TimeSource::Arrival) {
            let closed = self.windows.advance(now);
            self.queue(closed);
        }
        let mut late = Vec::new();
        for mut m in batch.messages {
            share.acquire();
            match self.source.time_of(&m, now) {
                Err(e) => {
                    m.error = Some(e);
                    self.ready.push_back(InputBatch {
                        messages: vec![m],
                        ack: releasing(vec![share.clone()]),
                    });
                }
                Ok(t) if t > now.saturating_add(MAX_LEAD_MS) => {
                    m.error = Some(format!(
                        "system_window: event time {t} is more than an hour ahead of this worker's clock ({now}); \
                         is it in milliseconds?"
                    ));
                    self.ready.push_back(InputBatch {
                        messages: vec![m],
                        ack: releasing(vec![share.clone()]),
                    });
                }
                Ok(t) => {
                    if let Err((m, s)) = self.windows.insert(t, m, share.clone(), now as u64) {
                        late.push(m);
                        drop(s);
                        continue;
                    }
                    if !matches!(self.source, TimeSource::Arrival) {
                        let closed = self.windows.advance(t);
                        self.queue(closed);
                    }
                }
            }
        }
        if !late.is_empty() {
            StreamMetrics::add(&self.metrics.late, late.len() as u64);
            let n = late.len();
            let written = match self.late_output.as_mut() {
                Some(out) => out.write(&late).await,
                None => Ok(()),
            };
            for _ in 0..n {
                share.release(if written.is_ok() {
                    Delivery::Delivered
                } else {
                    Delivery::NotDelivered
                });
            }
            written.map_err(|e| Error::External(format!("system_window late_output: {e}")))?;
        }
        share.release(Delivery::Delivered);
        let (depth, oldest) = self.windows.depth();
        self.metrics.set_buffer(depth, oldest);
        Ok(())
    }

    /// How long until the next window closes by the clock (arrival time only).
    fn next_deadline(&self) -> Option<Duration> {
        if !matches!(self.source, TimeSource::Arrival) {
            return None;
        }
        let &(end, _) = self.windows.pending.first()?;
        let due = end.saturating_add(self.windows.spec.lateness);
        Some(Duration::from_millis(
            due.saturating_sub((self.clock)()).max(0) as u64,
        ))
    }
}

#[async_trait]
impl Input for WindowBuffer {
    async fn read(&mut self) -> Result<Option<InputBatch>, Error> {
        loop {
            if let Some(b) = self.ready.pop_front() {
                return Ok(Some(b));
            }
            if self.ended {
                return Ok(None);
            }
            let deadline = self.next_deadline();
            tokio::select! {
                b = self.rx.recv() => match b {
                    Some(batch) => self.take(batch).await?,
                    None => {
                        let result = match self.pump.take() {
                            Some(p) => p.await.unwrap_or_else(|e| Err(Error::Internal(format!("window pump: {e}")))),
                            None => Ok(false),
                        };
                        self.ended = true;
                        if result? {
                            // A finite input ended: its last windows close now.
                            let closed = self.windows.close_all();
                            self.queue(closed);
                        }
                    }
                },
                _ = tokio::time::sleep(deadline.unwrap_or_default()), if deadline.is_some() => {
                    let closed = self.windows.advance((self.clock)());
                    self.queue(closed);
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Error> {
        self.stop.cancel();
        self.rx.close();
        // Batches still in the channel are not delivered: dropping them says so.
        while self.rx.try_recv().is_ok() {}
        let result = match self.pump.take() {
            Some(p) => p
                .await
                .unwrap_or_else(|e| Err(Error::Internal(format!("window pump: {e}")))),
            None => Ok(false),
        };
        self.ready.clear();
        self.windows = Windows::new(self.windows.spec);
        self.metrics.set_buffer(0, 0);
        if let Some(out) = self.late_output.as_mut() {
            out.close().await?;
        }
        result.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Ack, Message, meta_get, meta_set};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn spec(kind: WindowKind, size: i64, slide: i64, lateness: i64) -> Spec {
        Spec {
            kind,
            size,
            slide,
            lateness,
        }
    }

    fn msg(t: i64) -> Message {
        crate::message(format!("{{\"t\":{t}}}").into_bytes(), Default::default())
    }

    /// Feeds event times in order, closing windows as the watermark moves, then closes the rest; returns each
    /// window as `(start, end, [times])` and the late times.
    /// Each closed window as (start, end, its event times), and the late times.
    type Outcome = (Vec<(i64, i64, Vec<i64>)>, Vec<i64>);

    fn run(spec: Spec, times: &[i64]) -> Outcome {
        let mut w = Windows::new(spec);
        let mut out = Vec::new();
        let mut late = Vec::new();
        let acked = Arc::new(AtomicUsize::new(0));
        let record = |closed: Vec<Closed>, out: &mut Vec<(i64, i64, Vec<i64>)>| {
            for c in closed {
                let times = c
                    .messages
                    .iter()
                    .map(|m| {
                        assert_eq!(
                            meta_get(m, "window_start"),
                            Some(c.start.to_string().as_str())
                        );
                        assert_eq!(meta_get(m, "window_end"), Some(c.end.to_string().as_str()));
                        let v: Value = serde_json::from_slice(&m.payload).unwrap();
                        v["t"].as_i64().unwrap()
                    })
                    .collect();
                releasing(c.shares).done(Delivery::Delivered);
                out.push((c.start, c.end, times));
            }
        };
        for &t in times {
            let acked = acked.clone();
            let share = Share::new(Ack::new(move |d| {
                assert_eq!(d, Delivery::Delivered);
                acked.fetch_add(1, Ordering::SeqCst);
            }));
            share.acquire();
            match w.insert(t, msg(t), share.clone(), 0) {
                Ok(()) => {
                    let closed = w.advance(t);
                    record(closed, &mut out);
                }
                Err((_, s)) => {
                    late.push(t);
                    s.release(Delivery::Delivered);
                }
            }
            share.release(Delivery::Delivered);
        }
        let closed = w.close_all();
        record(closed, &mut out);
        assert!(w.held.is_empty());
        // Every message was acknowledged once every window holding it was delivered.
        assert_eq!(acked.load(Ordering::SeqCst), times.len());
        (out, late)
    }

    #[test]
    fn tumbling_windows_skip_empty_ones_and_take_out_of_order_messages_until_they_close() {
        // size 10: [0,10) [10,20) [20,30) is empty [30,40)
        let (windows, late) = run(
            spec(WindowKind::Tumbling, 10, 1, 0),
            &[1, 5, 3, 12, 9, 15, 31, 33, 25],
        );
        assert_eq!(
            windows,
            vec![
                (0, 10, vec![1, 3, 5]),
                (10, 20, vec![12, 15]),
                (30, 40, vec![31, 33]),
            ]
        );
        // 9 came after 12 closed [0,10); 25 after 31 closed [20,30).
        assert_eq!(late, vec![9, 25]);
    }

    #[test]
    fn allowed_lateness_keeps_a_window_open_past_its_end() {
        // lateness 5: [0,10) closes when the watermark reaches 15.
        let (windows, late) = run(spec(WindowKind::Tumbling, 10, 1, 5), &[1, 12, 9, 14, 16, 8]);
        assert_eq!(
            windows,
            vec![(0, 10, vec![1, 9]), (10, 20, vec![12, 14, 16])]
        );
        assert_eq!(late, vec![8]);
    }

    #[test]
    fn hopping_windows_overlap() {
        // size 10, slide 5: t=7 is in [0,10) and [5,15); t=12 in [5,15) and [10,20).
        let (windows, late) = run(spec(WindowKind::Hopping, 10, 5, 0), &[7, 12, 3]);
        assert_eq!(
            windows,
            vec![(0, 10, vec![7]), (5, 15, vec![7, 12]), (10, 20, vec![12])]
        );
        // 3 belongs to [-5,5) and [0,10), both closed once 12 arrived.
        assert_eq!(late, vec![3]);
    }

    #[test]
    fn a_late_message_still_joins_the_windows_that_are_open() {
        // size 10, slide 5. At watermark 12, [0,10) is closed but [5,15) is open: 6 joins [5,15) only.
        let (windows, late) = run(spec(WindowKind::Hopping, 10, 5, 0), &[1, 12, 6]);
        assert_eq!(
            windows,
            vec![
                (-5, 5, vec![1]),
                (0, 10, vec![1]),
                (5, 15, vec![6, 12]),
                (10, 20, vec![12])
            ]
        );
        assert!(late.is_empty());
    }

    #[test]
    fn sliding_windows_end_at_each_message() {
        // size 10: the window of t holds (t-10, t].
        let (windows, late) = run(spec(WindowKind::Sliding, 10, 1, 0), &[1, 5, 11, 30, 30]);
        assert_eq!(
            windows,
            vec![
                (-8, 2, vec![1]),
                (-4, 6, vec![1, 5]),
                (2, 12, vec![5, 11]),
                (21, 31, vec![30, 30]),
            ]
        );
        assert!(late.is_empty());
    }

    #[test]
    fn a_sliding_window_still_takes_an_out_of_order_message_a_later_window_holds() {
        // size 10: 15 arrives after 20; its own window [6,16) has closed, but 20's window [11,21) has not.
        let (windows, late) = run(spec(WindowKind::Sliding, 10, 1, 0), &[5, 20, 15]);
        assert_eq!(windows, vec![(-4, 6, vec![5]), (11, 21, vec![15, 20])]);
        assert!(late.is_empty());
        // And a message no window can hold any more is late.
        let (_, late) = run(spec(WindowKind::Sliding, 10, 1, 0), &[5, 40, 29]);
        assert_eq!(late, vec![29]);
    }

    #[test]
    fn reads_event_times_from_fields_and_metadata() {
        let m = crate::message(
            br#"{"e":{"ts":"2026-11-26T10:00:00Z"},"n":1500}"#.to_vec(),
            Default::default(),
        );
        let field = TimeSource::Field(vec!["e".into(), "ts".into()]);
        assert_eq!(field.time_of(&m, 0), Ok(1_795_687_200_000));
        assert_eq!(TimeSource::Field(vec!["n".into()]).time_of(&m, 0), Ok(1500));
        let err = TimeSource::Field(vec!["x".into()])
            .time_of(&m, 0)
            .unwrap_err();
        assert!(err.contains("no field \"x\""), "{err}");
        let mut m2 = m.clone();
        meta_set(&mut m2, "kafka_timestamp_ms", "42");
        assert_eq!(
            TimeSource::Metadata("kafka_timestamp_ms".into()).time_of(&m2, 0),
            Ok(42)
        );
        assert_eq!(TimeSource::Arrival.time_of(&m, 7), Ok(7));
    }

    #[test]
    fn checks_its_options() {
        let c: WindowConfig =
            serde_json::from_value(serde_json::json!({"type": "hopping", "size": "10s"})).unwrap();
        assert_eq!(c.problems()[0].0, "slide");
        let c: WindowConfig = serde_json::from_value(
            serde_json::json!({"type": "tumbling", "size": "10s", "slide": "5s"}),
        )
        .unwrap();
        assert_eq!(c.problems()[0].1, "only hopping windows have a slide");
        let c: WindowConfig = serde_json::from_value(
            serde_json::json!({"type": "hopping", "size": "10s", "slide": "20s"}),
        )
        .unwrap();
        assert!(c.problems()[0].1.contains("at most the size"));
    }

    /// An input that yields fixed batches, then ends.
    struct Fixed(VecDeque<Vec<Message>>, Arc<AtomicUsize>);

    #[async_trait]
    impl Input for Fixed {
        async fn read(&mut self) -> Result<Option<InputBatch>, Error> {
            let acked = self.1.clone();
            Ok(self.0.pop_front().map(|messages| InputBatch {
                messages,
                ack: Ack::new(move |d| {
                    if d == Delivery::Delivered {
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                }),
            }))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn arrival_time_windows_close_by_the_clock() {
        // A controlled clock: tokio's paused time, from epoch ms 1_000_000.
        let start = tokio::time::Instant::now();
        let clock: Arc<dyn Fn() -> i64 + Send + Sync> =
            Arc::new(move || 1_000_000 + start.elapsed().as_millis() as i64);
        let acked = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let metrics = Arc::new(StreamMetrics::default());
        let mut buffer = WindowBuffer {
            windows: Windows::new(spec(WindowKind::Tumbling, 1000, 1, 0)),
            source: TimeSource::Arrival,
            clock: clock.clone(),
            rx,
            ready: VecDeque::new(),
            late_output: None,
            metrics: metrics.clone(),
            pump: None,
            stop: CancellationToken::new(),
            ended: false,
        };
        let mut input = Fixed(
            VecDeque::from([vec![msg(1), msg(2)], vec![msg(3)]]),
            acked.clone(),
        );
        tx.send(input.read().await.unwrap().unwrap()).await.unwrap();
        // At 1_000_000 + 0: window [1_000_000, 1_001_000), closed by the clock a second later.
        let first = buffer.read().await.unwrap().unwrap();
        assert_eq!(first.messages.len(), 2);
        assert_eq!(
            meta_get(&first.messages[0], "window_start"),
            Some("1000000")
        );
        assert_eq!(meta_get(&first.messages[0], "window_end"), Some("1001000"));
        assert_eq!(clock(), 1_001_000);
        assert_eq!(
            acked.load(Ordering::SeqCst),
            0,
            "acknowledged before delivery"
        );
        first.ack.done(Delivery::Delivered);
        assert_eq!(acked.load(Ordering::SeqCst), 1);
        // Nothing for 2.5 s (empty windows produce nothing), then one message.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        tx.send(input.read().await.unwrap().unwrap()).await.unwrap();
        let second = buffer.read().await.unwrap().unwrap();
        assert_eq!(
            meta_get(&second.messages[0], "window_start"),
            Some("1003000")
        );
        assert_eq!(clock(), 1_004_000);
        second.ack.done(Delivery::Delivered);
        assert_eq!(acked.load(Ordering::SeqCst), 2);
        assert_eq!(metrics.snapshot().buffer_depth, 0);
    }

    proptest::proptest! {
        /// For any shape and any order of event times: each window holds exactly the messages that arrived while
        /// it was open, in event-time order, every window comes out once, late messages are the ones no open
        /// window could hold, and every message is acknowledged once (checked in `run`).
        #[test]
        fn windows_hold_what_arrived_while_they_were_open(
            kind in proptest::sample::select(vec![WindowKind::Tumbling, WindowKind::Hopping, WindowKind::Sliding]),
            size in 1i64..40,
            slide_part in 1i64..40,
            lateness in 0i64..15,
            times in proptest::collection::vec(-60i64..200, 0..50),
        ) {
            let slide = slide_part.min(size);
            let spec = spec(kind, size, slide, lateness);
            // windows_of against a brute force over every start that could hold t.
            for &t in &times {
                let found = spec.windows_of(t);
                let expected: Vec<(i64, i64)> = match kind {
                    WindowKind::Tumbling => (t - size + 1..=t)
                        .filter(|s| s.rem_euclid(size) == 0)
                        .map(|s| (s, s + size))
                        .collect(),
                    WindowKind::Hopping => (t - size + 1..=t)
                        .filter(|s| s.rem_euclid(slide) == 0)
                        .map(|s| (s, s + size))
                        .collect(),
                    WindowKind::Sliding => vec![(t + 1 - size, t + 1)],
                };
                proptest::prop_assert_eq!(&found, &expected, "t = {}", t);
                proptest::prop_assert!(spec.last_end(t) >= found.iter().map(|w| w.1).max().unwrap());
            }
            // The model: the watermark is the largest time seen before each message.
            let mut watermark = i64::MIN;
            let mut expected_late = Vec::new();
            let mut expected: std::collections::BTreeMap<(i64, i64), Vec<i64>> = Default::default();
            for &t in &times {
                let closed = |end: i64| end.saturating_add(lateness) <= watermark;
                let open: Vec<(i64, i64)> =
                    spec.windows_of(t).into_iter().filter(|w| !closed(w.1)).collect();
                let late = match kind {
                    WindowKind::Sliding => closed(spec.last_end(t)),
                    _ => open.is_empty(),
                };
                if late {
                    expected_late.push(t);
                } else {
                    for w in open {
                        expected.entry(w).or_default().push(t);
                    }
                }
                watermark = watermark.max(t);
            }
            let (windows, late) = run(spec, &times);
            proptest::prop_assert_eq!(late, expected_late);
            let mut seen = std::collections::BTreeSet::new();
            for (start, end, held) in &windows {
                proptest::prop_assert!(seen.insert((*start, *end)), "window [{}, {}) came out twice", start, end);
                proptest::prop_assert!(held.windows(2).all(|p| p[0] <= p[1]), "not in event-time order: {:?}", held);
                proptest::prop_assert!(held.iter().all(|t| start <= t && t < end));
                if kind != WindowKind::Sliding {
                    let mut want = expected.get(&(*start, *end)).cloned().unwrap_or_default();
                    want.sort();
                    proptest::prop_assert_eq!(held, &want, "window [{}, {})", start, end);
                }
            }
            if kind != WindowKind::Sliding {
                proptest::prop_assert_eq!(seen.len(), expected.len());
            }
            // Windows close in the order of their ends.
            proptest::prop_assert!(windows.windows(2).all(|p| p[0].1 <= p[1].1));
        }
    }
}
