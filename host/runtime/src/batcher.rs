//! Batching between the input and the processors: input batches grouped by size and period (or handed on whole,
//! for a window), each with the acknowledgements it covers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{Ack, Delivery, InputBatch, Message};

/// A batch on its way to the processors, with the acknowledgements it covers.
pub(crate) struct Work {
    pub messages: Vec<Message>,
    pub acks: Vec<Ack>,
    pub formed: Instant,
}

/// Says `NotDelivered` for each.
pub(crate) fn nack(acks: Vec<Ack>) {
    for a in acks {
        a.done(Delivery::NotDelivered);
    }
}

/// Splits one acknowledgement into `parts`: the original fires once every part has, `NotDelivered` if any was.
fn split_ack(ack: Ack, parts: usize) -> Vec<Ack> {
    if parts <= 1 {
        return vec![ack];
    }
    let state = Arc::new(std::sync::Mutex::new((
        Some(ack),
        parts,
        Delivery::Delivered,
    )));
    (0..parts)
        .map(|_| {
            let state = state.clone();
            Ack::new(move |d: Delivery| {
                let mut g = state.lock().unwrap();
                if d == Delivery::NotDelivered {
                    g.2 = Delivery::NotDelivered;
                }
                g.1 -= 1;
                if g.1 == 0 {
                    let (ack, outcome) = (g.0.take(), g.2);
                    drop(g);
                    if let Some(ack) = ack {
                        ack.done(outcome);
                    }
                }
            })
        })
        .collect()
}

/// Hands each input batch on as one batch (a window from `system_window`).
pub(crate) async fn whole(
    mut in_rx: tokio::sync::mpsc::Receiver<InputBatch>,
    work_tx: async_channel::Sender<Work>,
) {
    while let Some(b) = in_rx.recv().await {
        let work = Work {
            messages: b.messages,
            acks: vec![b.ack],
            formed: Instant::now(),
        };
        if let Err(e) = work_tx.send(work).await {
            nack(e.into_inner().acks);
            return;
        }
    }
}

/// Groups input batches into batches of at most `size` messages. A batch is sent when full, or as soon as nothing
/// more is ready at the input while no batch waits for a processor (a lone request is processed at once, and an
/// open batch goes on when a processor takes the one before it), or at the latest `period` after its first message
/// arrived: the period is a ceiling, not a wait. A busy input still fills batches, because while a batch waits for
/// the processors what arrives is added to the open one. An input batch larger than the room left is split across
/// batches. `taken` is notified each time a processor takes a batch.
pub(crate) async fn batcher(
    mut in_rx: tokio::sync::mpsc::Receiver<InputBatch>,
    work_tx: async_channel::Sender<Work>,
    size: usize,
    period: Duration,
    taken: Arc<tokio::sync::Notify>,
) {
    enum Event {
        Input(Option<InputBatch>),
        Due,
    }
    let mut messages: Vec<Message> = Vec::new();
    let mut acks: Vec<Ack> = Vec::new();
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let event = match deadline {
            Some(d) => tokio::select! {
                b = in_rx.recv() => Event::Input(b),
                _ = tokio::time::sleep_until(d) => Event::Due,
                // A processor took the batch before: the open one may go on now.
                _ = taken.notified(), if !messages.is_empty() && in_rx.is_empty() => {
                    if work_tx.is_empty() { Event::Due } else { continue }
                }
            },
            None => Event::Input(in_rx.recv().await),
        };
        let closed = matches!(event, Event::Input(None));
        let mut full: Vec<Work> = Vec::new();
        if let Event::Input(Some(b)) = event {
            if messages.is_empty() {
                deadline = Some(tokio::time::Instant::now() + period);
            }
            let room = size - messages.len();
            let parts = if b.messages.len() <= room {
                1
            } else {
                1 + (b.messages.len() - room).div_ceil(size)
            };
            let mut part_acks = split_ack(b.ack, parts).into_iter();
            let mut rest = b.messages.into_iter().peekable();
            while rest.peek().is_some() {
                let room = size - messages.len();
                messages.extend(rest.by_ref().take(room));
                acks.push(part_acks.next().expect("one ack per part"));
                if messages.len() >= size {
                    let formed = Instant::now();
                    full.push(Work {
                        messages: std::mem::take(&mut messages),
                        acks: std::mem::take(&mut acks),
                        formed,
                    });
                    deadline = None;
                }
            }
            if !messages.is_empty() && in_rx.is_empty() && work_tx.is_empty() && full.is_empty() {
                // Nothing more is ready and the processors have nothing queued: waiting would only add latency.
                full.push(Work {
                    messages: std::mem::take(&mut messages),
                    acks: std::mem::take(&mut acks),
                    formed: Instant::now(),
                });
                deadline = None;
            }
            if !messages.is_empty() && deadline.is_none() {
                deadline = Some(tokio::time::Instant::now() + period);
            }
        } else if !acks.is_empty() {
            // The period elapsed, a processor is free, or the input closed: send what there is.
            full.push(Work {
                messages: std::mem::take(&mut messages),
                acks: std::mem::take(&mut acks),
                formed: Instant::now(),
            });
            deadline = None;
        }
        for work in full {
            if let Err(e) = work_tx.send(work).await {
                nack(e.into_inner().acks);
                nack(std::mem::take(&mut acks));
                return;
            }
        }
        if closed {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn recorder() -> (Ack, Arc<Mutex<Vec<Delivery>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        (Ack::new(move |d| s.lock().unwrap().push(d)), seen)
    }

    #[test]
    fn a_split_ack_fires_once_after_every_part() {
        let (ack, seen) = recorder();
        let mut parts = split_ack(ack, 3);
        parts.pop().unwrap().done(Delivery::Delivered);
        parts.pop().unwrap().done(Delivery::Delivered);
        assert!(seen.lock().unwrap().is_empty());
        parts.pop().unwrap().done(Delivery::Delivered);
        assert_eq!(*seen.lock().unwrap(), [Delivery::Delivered]);
    }

    #[test]
    fn a_split_ack_with_one_part_dropped_is_not_delivered() {
        let (ack, seen) = recorder();
        let mut parts = split_ack(ack, 2);
        parts.pop().unwrap().done(Delivery::Delivered);
        drop(parts);
        assert_eq!(*seen.lock().unwrap(), [Delivery::NotDelivered]);
    }

    #[tokio::test]
    async fn the_batcher_splits_input_batches_to_the_batch_size() {
        let (in_tx, in_rx) = tokio::sync::mpsc::channel(4);
        let (work_tx, work_rx) = async_channel::bounded(16);
        let (ack, seen) = recorder();
        let messages = (0..5)
            .map(|i| crate::message(vec![i], Default::default()))
            .collect();
        in_tx.send(InputBatch { messages, ack }).await.unwrap();
        drop(in_tx);
        batcher(
            in_rx,
            work_tx,
            2,
            Duration::from_millis(5),
            Default::default(),
        )
        .await;
        let sizes: Vec<usize> = std::iter::from_fn(|| work_rx.try_recv().ok())
            .map(|w| {
                let n = w.messages.len();
                for a in w.acks {
                    a.done(Delivery::Delivered);
                }
                n
            })
            .collect();
        assert_eq!(sizes, [2, 2, 1]);
        assert_eq!(*seen.lock().unwrap(), [Delivery::Delivered]);
    }

    fn one(i: u8) -> InputBatch {
        InputBatch {
            messages: vec![crate::message(vec![i], Default::default())],
            ack: Ack::new(|_| {}),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_message_goes_on_at_once_and_a_busy_input_still_fills_batches() {
        let (in_tx, in_rx) = tokio::sync::mpsc::channel(16);
        let (work_tx, work_rx) = async_channel::bounded(2);
        let period = Duration::from_secs(3600);
        let taken = Arc::new(tokio::sync::Notify::new());
        let task = tokio::spawn(batcher(in_rx, work_tx, 100, period, taken.clone()));
        let started = tokio::time::Instant::now();

        // Idle processors: one message is handed on without waiting for the period.
        in_tx.send(one(0)).await.unwrap();
        let w = work_rx.recv().await.unwrap();
        assert_eq!(w.messages.len(), 1);
        assert!(started.elapsed() < period, "waited {:?}", started.elapsed());

        // Processors busy (a batch queued): what arrives meanwhile is gathered into one batch.
        in_tx.send(one(1)).await.unwrap();
        tokio::task::yield_now().await;
        assert_eq!(work_rx.len(), 1, "the second message did not go on at once");
        for i in 2..6 {
            in_tx.send(one(i)).await.unwrap();
        }
        tokio::task::yield_now().await;
        assert_eq!(work_rx.len(), 1, "the open batch went on while one waited");
        // A processor takes the waiting batch: the open one goes on, without waiting for the period.
        assert_eq!(work_rx.recv().await.unwrap().messages.len(), 1);
        taken.notify_one();
        let w = work_rx.recv().await.unwrap();
        assert_eq!(
            w.messages.iter().map(|m| m.payload[0]).collect::<Vec<_>>(),
            [2, 3, 4, 5]
        );
        assert!(started.elapsed() < period, "waited {:?}", started.elapsed());
        drop(in_tx);
        task.await.unwrap();
    }
}
