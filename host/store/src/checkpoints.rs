//! Inputs' checkpoints (the position an input reads on from), per stream and key. Only a worker the stream is
//! assigned to may save one, in the same statement that checks it: a worker that lost the stream (its lease ran
//! out while it was cut off) cannot move the position of the worker that took over.

use crate::{Store, StoreError, now_ms};

impl Store {
    /// A stream's checkpoint under `key`, as saved (JSON text).
    pub async fn checkpoint(
        &self,
        stream_id: &str,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT value FROM checkpoints WHERE stream_id = $1 AND key = $2")
                .bind(stream_id)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.0))
    }

    /// Saves a checkpoint for `worker_id`; `Conflict` when the stream is not assigned to that worker.
    pub async fn save_checkpoint(
        &self,
        stream_id: &str,
        worker_id: &str,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        // SQLite needs the WHERE to tell the SELECT's end from the upsert clause.
        let done = sqlx::query(
            "INSERT INTO checkpoints (stream_id, key, value, updated_at) \
             SELECT $1, $2, $3, $4 WHERE EXISTS \
               (SELECT 1 FROM assignments WHERE stream_id = $1 AND worker_id = $5) \
             ON CONFLICT (stream_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(stream_id)
        .bind(key)
        .bind(value)
        .bind(now_ms())
        .bind(worker_id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "stream \"{stream_id}\" is not assigned to worker \"{worker_id}\""
            )));
        }
        Ok(())
    }
}
