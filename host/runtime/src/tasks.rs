//! Supervised tasks: every task a stream (or the server) spawns is named and tracked, so that a shutdown can
//! say which are still running when its grace period ends, and abort them.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::task::{AbortHandle, JoinHandle};

/// A set of named tasks. Clones share the set.
#[derive(Clone, Default)]
pub struct Tasks {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    next: AtomicU64,
    running: Mutex<BTreeMap<u64, (String, AbortHandle)>>,
}

/// Takes a task out of the set when it ends, however it ends.
struct Leave {
    inner: Arc<Inner>,
    id: u64,
}

impl Drop for Leave {
    fn drop(&mut self) {
        self.inner
            .running
            .lock()
            .expect("tasks lock")
            .remove(&self.id);
    }
}

impl Tasks {
    /// Spawns `fut` on the runtime as a task called `name` (`stream 7: output sql_insert`).
    pub fn spawn<F>(&self, name: impl Into<String>, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let leave = Leave {
            inner: self.inner.clone(),
            id,
        };
        // Holding the lock across the spawn: the task cannot end (and leave) before it is listed.
        let mut running = self.inner.running.lock().expect("tasks lock");
        let handle = tokio::spawn(async move {
            let _leave = leave;
            fut.await
        });
        running.insert(id, (name.into(), handle.abort_handle()));
        handle
    }

    /// A set for a part of this one (a stream's): its tasks are named with `prefix` and tracked here too.
    pub fn named(&self, prefix: impl Into<String>) -> NamedTasks {
        NamedTasks {
            tasks: self.clone(),
            prefix: prefix.into(),
        }
    }

    /// The names of the tasks still running, in the order they were spawned.
    pub fn running(&self) -> Vec<String> {
        let running = self.inner.running.lock().expect("tasks lock");
        running.values().map(|(name, _)| name.clone()).collect()
    }

    /// Aborts every task still running and returns their names.
    pub fn abort_all(&self) -> Vec<String> {
        let running: Vec<(String, AbortHandle)> = {
            let running = self.inner.running.lock().expect("tasks lock");
            running.values().cloned().collect()
        };
        running
            .into_iter()
            .map(|(name, handle)| {
                handle.abort();
                name
            })
            .collect()
    }
}

/// Spawns tasks whose names start with a prefix (`stream 7`).
#[derive(Clone)]
pub struct NamedTasks {
    tasks: Tasks,
    prefix: String,
}

impl NamedTasks {
    /// Spawns a task called `<prefix>: <name>`.
    pub fn spawn<F>(&self, name: &str, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tasks.spawn(format!("{}: {name}", self.prefix), fut)
    }

    /// Tasks of a part of this one: named `<prefix> <name>: ...`.
    pub fn sub(&self, name: &str) -> NamedTasks {
        NamedTasks {
            tasks: self.tasks.clone(),
            prefix: format!("{} {name}", self.prefix),
        }
    }

    /// The set these tasks are tracked in.
    pub fn tasks(&self) -> &Tasks {
        &self.tasks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lists_running_tasks_by_name_and_forgets_ended_ones() {
        let tasks = Tasks::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let waiting = tasks.named("stream a").spawn("output", async move {
            let _ = rx.await;
        });
        let quick = tasks.spawn("quick", async {});
        quick.await.unwrap();
        assert_eq!(tasks.running(), ["stream a: output"]);
        tx.send(()).unwrap();
        waiting.await.unwrap();
        assert!(tasks.running().is_empty());
    }

    #[tokio::test]
    async fn aborting_names_what_was_still_running() {
        let tasks = Tasks::default();
        let hung = tasks.spawn("hung write", std::future::pending::<()>());
        assert_eq!(tasks.abort_all(), ["hung write"]);
        assert!(hung.await.unwrap_err().is_cancelled());
        assert!(tasks.running().is_empty());
    }
}
