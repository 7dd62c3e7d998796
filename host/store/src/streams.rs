//! Streams and their versions. Every save of a stream's config makes a new version; a status change alone does
//! not. Rolling back saves an old version's config as a new version.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, is_unique_violation, now_ms};

/// The lifecycle of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamStatus {
    Active,
    Paused,
    Completed,
    Failed,
}

impl StreamStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "paused" => Self::Paused,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// A stream as stored: its current version's config and its status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamRecord {
    pub id: String,
    pub name: String,
    pub status: StreamStatus,
    pub version: i64,
    pub config: serde_json::Value,
    pub failure_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One saved version of a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub stream_id: String,
    pub version: i64,
    pub name: String,
    pub status: StreamStatus,
    pub config: serde_json::Value,
    pub created_at: i64,
    /// Who saved it (`None` for versions saved before versions recorded it).
    #[serde(default)]
    pub saved_by: Option<String>,
}

fn status_of(row: &AnyRow, col: &str) -> Result<StreamStatus, StoreError> {
    let s: String = row.try_get(col)?;
    StreamStatus::parse(&s)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown stream status \"{s}\"")))
}

fn json_of(row: &AnyRow, col: &str) -> Result<serde_json::Value, StoreError> {
    let s: String = row.try_get(col)?;
    serde_json::from_str(&s)
        .map_err(|e| StoreError::Corrupt(format!("stream config is not JSON: {e}")))
}

fn stream_of(row: &AnyRow) -> Result<StreamRecord, StoreError> {
    Ok(StreamRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        status: status_of(row, "status")?,
        version: row.try_get("version")?,
        config: json_of(row, "config")?,
        failure_reason: row.try_get("failure_reason")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn version_of(row: &AnyRow) -> Result<VersionRecord, StoreError> {
    Ok(VersionRecord {
        stream_id: row.try_get("stream_id")?,
        version: row.try_get("version")?,
        name: row.try_get("name")?,
        status: status_of(row, "status")?,
        config: json_of(row, "config")?,
        created_at: row.try_get("created_at")?,
        saved_by: row.try_get("saved_by")?,
    })
}

/// A random identifier: 16 bytes from the OS, hex.
pub fn new_id() -> String {
    let mut buf = [0u8; 16];
    getrandom::fill(&mut buf).expect("the OS random source works");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Records the stream's row, just written in `tx`, as a saved version by `saved_by`.
async fn insert_version(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    saved_by: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO stream_versions (stream_id, version, name, status, config, created_at, saved_by) \
         SELECT id, version, name, status, config, updated_at, $2 FROM streams WHERE id = $1",
    )
    .bind(id)
    .bind(saved_by)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Creates a stream at version 1, saved by `saved_by`.
    pub async fn create_stream(
        &self,
        name: &str,
        status: StreamStatus,
        config: &serde_json::Value,
        saved_by: &str,
    ) -> Result<StreamRecord, StoreError> {
        let id = new_id();
        let now = now_ms();
        let config_text = config.to_string();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO streams (id, name, status, version, config, failure_reason, created_at, updated_at) \
             VALUES ($1, $2, $3, 1, $4, NULL, $5, $5)",
        )
        .bind(&id)
        .bind(name)
        .bind(status.as_str())
        .bind(&config_text)
        .bind(now)
        .execute(&mut *tx)
        .await;
        if let Err(e) = inserted {
            return Err(if is_unique_violation(&e) {
                StoreError::Conflict(format!("a stream named \"{name}\" already exists"))
            } else {
                e.into()
            });
        }
        insert_version(&mut tx, &id, saved_by).await?;
        tx.commit().await?;
        self.get_stream(&id).await
    }

    /// The stream with this id.
    pub async fn get_stream(&self, id: &str) -> Result<StreamRecord, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, status, version, config, failure_reason, created_at, updated_at \
             FROM streams WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("stream \"{id}\"")))?;
        stream_of(&row)
    }

    /// Every stream, by name.
    pub async fn list_streams(&self) -> Result<Vec<StreamRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, status, version, config, failure_reason, created_at, updated_at \
             FROM streams ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stream_of).collect()
    }

    /// Saves a new version of a stream (name, status and config) by `saved_by`, clearing any failure reason.
    pub async fn update_stream(
        &self,
        id: &str,
        name: &str,
        status: StreamStatus,
        config: &serde_json::Value,
        saved_by: &str,
    ) -> Result<StreamRecord, StoreError> {
        let now = now_ms();
        let config_text = config.to_string();
        let mut tx = self.pool.begin().await?;
        let current: Option<(i64,)> = sqlx::query_as("SELECT version FROM streams WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let (version,) = current.ok_or_else(|| StoreError::NotFound(format!("stream \"{id}\"")))?;
        let next = version + 1;
        let updated = sqlx::query(
            "UPDATE streams SET name = $1, status = $2, version = $3, config = $4, failure_reason = NULL, \
             updated_at = $5 WHERE id = $6",
        )
        .bind(name)
        .bind(status.as_str())
        .bind(next)
        .bind(&config_text)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await;
        if let Err(e) = updated {
            return Err(if is_unique_violation(&e) {
                StoreError::Conflict(format!("a stream named \"{name}\" already exists"))
            } else {
                e.into()
            });
        }
        insert_version(&mut tx, id, saved_by).await?;
        tx.commit().await?;
        self.get_stream(id).await
    }

    /// Changes a stream's status without a new version; `reason` is kept for `failed`.
    pub async fn set_status(
        &self,
        id: &str,
        status: StreamStatus,
        reason: Option<&str>,
    ) -> Result<StreamRecord, StoreError> {
        let done = sqlx::query(
            "UPDATE streams SET status = $1, failure_reason = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(status.as_str())
        .bind(reason)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("stream \"{id}\"")));
        }
        self.get_stream(id).await
    }

    /// Sets `completed` or `failed` only if the stream is still active at `version` (a save, a pause or a resume
    /// in the meantime wins); returns whether it changed.
    pub async fn finish_stream(
        &self,
        id: &str,
        version: i64,
        status: StreamStatus,
        reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE streams SET status = $1, failure_reason = $2, updated_at = $3 \
             WHERE id = $4 AND version = $5 AND status = 'active'",
        )
        .bind(status.as_str())
        .bind(reason)
        .bind(now_ms())
        .bind(id)
        .bind(version)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a stream and all its versions.
    pub async fn delete_stream(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM assignments WHERE stream_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM stream_versions WHERE stream_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM checkpoints WHERE stream_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for table in ["stream_runs", "stream_history"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE stream_id = $1"
            )))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        let done = sqlx::query("DELETE FROM streams WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("stream \"{id}\"")));
        }
        tx.commit().await?;
        Ok(())
    }

    /// A stream's versions, newest first.
    pub async fn list_versions(&self, id: &str) -> Result<Vec<VersionRecord>, StoreError> {
        self.get_stream(id).await?;
        let rows = sqlx::query(
            "SELECT stream_id, version, name, status, config, created_at, saved_by FROM stream_versions \
             WHERE stream_id = $1 ORDER BY version DESC",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version_of).collect()
    }

    /// One version of a stream.
    pub async fn get_version(&self, id: &str, version: i64) -> Result<VersionRecord, StoreError> {
        let row = sqlx::query(
            "SELECT stream_id, version, name, status, config, created_at, saved_by FROM stream_versions \
             WHERE stream_id = $1 AND version = $2",
        )
        .bind(id)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("version {version} of stream \"{id}\"")))?;
        version_of(&row)
    }

    /// Saves the config of an old version as a new version, with `status`.
    pub async fn rollback(
        &self,
        id: &str,
        version: i64,
        status: StreamStatus,
        saved_by: &str,
    ) -> Result<StreamRecord, StoreError> {
        let old = self.get_version(id, version).await?;
        let current = self.get_stream(id).await?;
        self.update_stream(id, &current.name, status, &old.config, saved_by)
            .await
    }
}
