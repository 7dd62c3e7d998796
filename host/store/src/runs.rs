//! Runs and their counters, and the counters' history. A run is one start of a stream on a worker; its row holds
//! what the worker last reported of it (as JSON the coordinator reads), and stays when the run ends, so a
//! stream's counters add up over pauses, failovers and restarts of any coordinator. The leader folds the rows of
//! runs that ended long ago into one row per stream (worker `""`, started at 0).

use sqlx::Row;

use crate::{Store, StoreError, now_ms};

/// A run's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub stream_id: String,
    pub worker_id: String,
    pub started_at: i64,
    /// What the worker last reported of the run (JSON).
    pub report: String,
    /// Whether a worker reports it now.
    pub live: bool,
    pub updated_at: i64,
}

/// The worker id of the row a stream's folded runs add up in.
pub const FOLDED: &str = "";

impl Store {
    /// Records a worker's report: `reported` are the runs it reports now, by stream and start; `changed`
    /// those of them whose report differs from what was stored (JSON). The worker's other live runs ended.
    pub async fn record_runs(
        &self,
        worker_id: &str,
        reported: &[(String, i64)],
        changed: &[(String, i64, String)],
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let live: Vec<(String, i64)> = sqlx::query_as(
            "SELECT stream_id, started_at FROM stream_runs WHERE worker_id = $1 AND live = 1",
        )
        .bind(worker_id)
        .fetch_all(&mut *tx)
        .await?;
        for (stream_id, started_at) in live {
            if reported
                .iter()
                .any(|(s, t)| *s == stream_id && *t == started_at)
            {
                continue;
            }
            sqlx::query(
                "UPDATE stream_runs SET live = 0, updated_at = $1 \
                 WHERE stream_id = $2 AND worker_id = $3 AND started_at = $4",
            )
            .bind(now)
            .bind(&stream_id)
            .bind(worker_id)
            .bind(started_at)
            .execute(&mut *tx)
            .await?;
        }
        for (stream_id, started_at, report) in changed {
            // A report of a stream deleted meanwhile is dropped (SQLite needs the WHERE before the upsert).
            sqlx::query(
                "INSERT INTO stream_runs (stream_id, worker_id, started_at, report, live, updated_at) \
                 SELECT $1, $2, $3, $4, 1, $5 WHERE EXISTS (SELECT 1 FROM streams WHERE id = $1) \
                 ON CONFLICT (stream_id, worker_id, started_at) \
                 DO UPDATE SET report = excluded.report, live = 1, updated_at = excluded.updated_at",
            )
            .bind(stream_id)
            .bind(worker_id)
            .bind(started_at)
            .bind(report)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Ends every live run of a worker (it left, or its lease expired).
    pub async fn end_runs(&self, worker_id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE stream_runs SET live = 0, updated_at = $1 WHERE worker_id = $2 AND live = 1",
        )
        .bind(now_ms())
        .bind(worker_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The runs whose rows changed at or after `since` (ms; `i64::MIN` for all).
    pub async fn runs_since(&self, since: i64) -> Result<Vec<RunRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT stream_id, worker_id, started_at, report, live, updated_at FROM stream_runs \
             WHERE updated_at >= $1",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RunRecord {
                    stream_id: r.try_get("stream_id")?,
                    worker_id: r.try_get("worker_id")?,
                    started_at: r.try_get("started_at")?,
                    report: r.try_get("report")?,
                    live: r.try_get::<i64, _>("live")? != 0,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    /// Folds the runs that ended before `before` (ms) into their stream's folded row, whose report `sum` makes
    /// from the reports it is given (the folded row's own first, when there is one). Returns how many rows went.
    pub async fn fold_runs(
        &self,
        before: i64,
        sum: impl Fn(&str, &[String]) -> String,
    ) -> Result<usize, StoreError> {
        let streams: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT stream_id FROM stream_runs \
             WHERE live = 0 AND worker_id <> $1 AND updated_at < $2",
        )
        .bind(FOLDED)
        .bind(before)
        .fetch_all(&self.pool)
        .await?;
        let mut folded = 0;
        for (stream_id,) in streams {
            let mut tx = self.pool.begin().await?;
            let rows: Vec<(String, i64, String)> = sqlx::query_as(
                "SELECT worker_id, started_at, report FROM stream_runs WHERE stream_id = $1 \
                 AND (worker_id = $2 OR (live = 0 AND updated_at < $3)) ORDER BY worker_id, started_at",
            )
            .bind(&stream_id)
            .bind(FOLDED)
            .bind(before)
            .fetch_all(&mut *tx)
            .await?;
            let reports: Vec<String> = rows.iter().map(|r| r.2.clone()).collect();
            for (worker_id, started_at, _) in &rows {
                sqlx::query(
                    "DELETE FROM stream_runs WHERE stream_id = $1 AND worker_id = $2 AND started_at = $3",
                )
                .bind(&stream_id)
                .bind(worker_id)
                .bind(started_at)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "INSERT INTO stream_runs (stream_id, worker_id, started_at, report, live, updated_at) \
                 VALUES ($1, $2, 0, $3, 0, $4)",
            )
            .bind(&stream_id)
            .bind(FOLDED)
            .bind(sum(&stream_id, &reports))
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            folded += rows.iter().filter(|r| r.0 != FOLDED).count();
        }
        Ok(folded)
    }

    /// Adds one history sample per stream, at `at`, and forgets samples from before `keep_after`.
    pub async fn add_history(
        &self,
        at: i64,
        samples: &[(String, String)],
        keep_after: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (stream_id, counters) in samples {
            sqlx::query(
                "INSERT INTO stream_history (stream_id, at, counters) \
                 SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM streams WHERE id = $1) \
                 ON CONFLICT (stream_id, at) DO NOTHING",
            )
            .bind(stream_id)
            .bind(at)
            .bind(counters)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM stream_history WHERE at < $1")
            .bind(keep_after)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A stream's history samples, oldest first: (ms since the epoch, counters as JSON).
    pub async fn history(&self, stream_id: &str) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT at, counters FROM stream_history WHERE stream_id = $1 ORDER BY at",
        )
        .bind(stream_id)
        .fetch_all(&self.pool)
        .await?)
    }
}
