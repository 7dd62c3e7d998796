//! Workers and the assignment of streams to them. A worker holds its streams under a lease that its heartbeats
//! renew; the coordinator declares a worker `dead` when the lease runs out and moves its streams elsewhere.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, now_ms};

/// Whether a worker takes streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    /// Heartbeating and taking streams.
    Alive,
    /// Heartbeating, but its streams are moved elsewhere and it gets no new ones.
    Draining,
    /// Its lease expired; it owns nothing.
    Dead,
}

impl WorkerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alive => "alive",
            Self::Draining => "draining",
            Self::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "alive" => Self::Alive,
            "draining" => Self::Draining,
            "dead" => Self::Dead,
            _ => return None,
        })
    }
}

/// A registered worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerRecord {
    pub id: String,
    pub name: String,
    pub state: WorkerState,
    pub started_at: i64,
    pub last_heartbeat: i64,
    /// Where it takes forwarded `/ingest/...` requests, as its last heartbeat said.
    pub ingest_url: Option<String>,
}

/// One replica of a stream placed on a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentRecord {
    pub stream_id: String,
    pub worker_id: String,
    pub assigned_at: i64,
}

fn worker_of(row: &AnyRow) -> Result<WorkerRecord, StoreError> {
    let state: String = row.try_get("state")?;
    Ok(WorkerRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        state: WorkerState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown worker state \"{state}\"")))?,
        started_at: row.try_get("started_at")?,
        last_heartbeat: row.try_get("last_heartbeat")?,
        ingest_url: row.try_get("ingest_url")?,
    })
}

impl Store {
    /// Registers a worker as alive.
    pub async fn register_worker(&self, id: &str, name: &str) -> Result<WorkerRecord, StoreError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO workers (id, name, state, started_at, last_heartbeat) VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(id)
        .bind(name)
        .bind(WorkerState::Alive.as_str())
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.get_worker(id).await
    }

    /// The worker with this id.
    pub async fn get_worker(&self, id: &str) -> Result<WorkerRecord, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, state, started_at, last_heartbeat, ingest_url FROM workers WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("worker \"{id}\"")))?;
        worker_of(&row)
    }

    /// Every worker, oldest first.
    pub async fn list_workers(&self) -> Result<Vec<WorkerRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, state, started_at, last_heartbeat, ingest_url FROM workers ORDER BY started_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(worker_of).collect()
    }

    /// Renews a worker's lease and keeps where it takes ingest requests. A `dead` worker that heartbeats again is
    /// alive again (draining, if it was drained), with no streams: they were moved when it died.
    pub async fn heartbeat_worker(
        &self,
        id: &str,
        ingest_url: Option<&str>,
    ) -> Result<WorkerRecord, StoreError> {
        let done = sqlx::query(
            "UPDATE workers SET last_heartbeat = $1, ingest_url = $3, \
             state = CASE WHEN state <> 'dead' THEN state WHEN drained = 1 THEN 'draining' ELSE 'alive' END \
             WHERE id = $2",
        )
        .bind(now_ms())
        .bind(id)
        .bind(ingest_url)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("worker \"{id}\"")));
        }
        self.get_worker(id).await
    }

    /// Sets a worker's state.
    pub async fn set_worker_state(
        &self,
        id: &str,
        state: WorkerState,
    ) -> Result<WorkerRecord, StoreError> {
        // Draining is remembered, so a drained worker that misses its lease and comes back stays drained.
        let drained = i64::from(state == WorkerState::Draining);
        let done = sqlx::query(
            "UPDATE workers SET state = $1, drained = CASE WHEN $2 = 1 THEN 1 WHEN $1 = 'alive' THEN 0 ELSE drained END \
             WHERE id = $3",
        )
        .bind(state.as_str())
        .bind(drained)
        .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("worker \"{id}\"")));
        }
        self.get_worker(id).await
    }

    /// Declares dead every live worker whose last heartbeat is older than `before` (ms), takes its assignments
    /// away and ends its runs; returns the workers declared dead.
    pub async fn expire_workers(&self, before: i64) -> Result<Vec<String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let expired: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM workers WHERE state <> 'dead' AND last_heartbeat < $1 ORDER BY id",
        )
        .bind(before)
        .fetch_all(&mut *tx)
        .await?;
        let mut dead = Vec::new();
        for (id,) in expired {
            // Conditional: a heartbeat that committed since the SELECT keeps the worker alive.
            let done = sqlx::query(
                "UPDATE workers SET state = 'dead' WHERE id = $1 AND state <> 'dead' AND last_heartbeat < $2",
            )
            .bind(&id)
            .bind(before)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                continue;
            }
            sqlx::query("DELETE FROM assignments WHERE worker_id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            // Its runs ended; their last counters stay.
            sqlx::query(
                "UPDATE stream_runs SET live = 0, updated_at = $1 WHERE worker_id = $2 AND live = 1",
            )
            .bind(now_ms())
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            dead.push(id);
        }
        tx.commit().await?;
        Ok(dead)
    }

    /// Forgets workers dead since before `before` (ms).
    pub async fn prune_workers(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM workers WHERE state = 'dead' AND last_heartbeat < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Every assignment.
    pub async fn list_assignments(&self) -> Result<Vec<AssignmentRecord>, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT stream_id, worker_id, assigned_at FROM assignments ORDER BY stream_id, worker_id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(stream_id, worker_id, assigned_at)| AssignmentRecord {
                stream_id,
                worker_id,
                assigned_at,
            })
            .collect())
    }

    /// Applies a scheduling decision in one transaction: removes then adds `(stream_id, worker_id)` pairs.
    pub async fn apply_assignments(
        &self,
        remove: &[(String, String)],
        add: &[(String, String)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (stream, worker) in remove {
            sqlx::query("DELETE FROM assignments WHERE stream_id = $1 AND worker_id = $2")
                .bind(stream)
                .bind(worker)
                .execute(&mut *tx)
                .await?;
        }
        let now = now_ms();
        for (stream, worker) in add {
            sqlx::query(
                "INSERT INTO assignments (stream_id, worker_id, assigned_at) VALUES ($1, $2, $3)",
            )
            .bind(stream)
            .bind(worker)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
