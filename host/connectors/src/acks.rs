//! Acknowledgements sent to a broker by a task of their own, as soon as the output confirmed a batch: not by
//! the input's `read`, which the stream calls only when it wants more (a broker that bounds unacknowledged
//! messages, as MQTT and AMQP prefetch do, would otherwise wait for acknowledgements that wait for a read).

use std::future::Future;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use airtruct_runtime::{Ack, BuildContext, Delivery, Error};

/// The acknowledging task of an input, fed by the [`Ack`]s it hands out.
pub struct AckTask<T> {
    tx: Option<mpsc::UnboundedSender<Vec<T>>>,
    task: Option<JoinHandle<Result<(), Error>>>,
}

impl<T: Send + 'static> AckTask<T> {
    /// Spawns the task: `send` acknowledges the items of one delivered batch. A failure ends it (the broker
    /// delivers those messages again).
    pub fn spawn<F, Fut>(cx: &BuildContext, mut send: F) -> Self
    where
        F: FnMut(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), Error>> + Send,
    {
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<T>>();
        let task = cx.tasks.spawn("acknowledgements", async move {
            while let Some(items) = rx.recv().await {
                if let Err(e) = send(items).await {
                    tracing::warn!(error = %e, "acknowledging failed: the broker delivers those messages again");
                    return Err(e);
                }
            }
            Ok(())
        });
        Self {
            tx: Some(tx),
            task: Some(task),
        }
    }

    /// The acknowledgement of a batch: once delivered, its items go to the task.
    pub fn ack(&self, items: Vec<T>) -> Ack {
        let tx = self.tx.clone();
        Ack::new(move |d| {
            if d == Delivery::Delivered
                && let Some(tx) = tx
            {
                let _ = tx.send(items);
            }
        })
    }

    /// Waits until every acknowledgement said so far was sent (called at close, after every `Ack` was said).
    pub async fn close(&mut self) -> Result<(), Error> {
        self.tx.take();
        match self.task.take() {
            Some(t) => t
                .await
                .map_err(|e| Error::Internal(format!("acknowledging task: {e}")))?,
            None => Ok(()),
        }
    }
}
