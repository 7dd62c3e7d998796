//! Uploaded processor components: content-addressed bytes (`component_blobs`, by sha256) and named versions
//! (`processors`), numbered from 1 per name. A blob is deleted with the last version that uses it.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, now_ms};

/// One uploaded version of a processor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessorRecord {
    pub name: String,
    pub version: i64,
    pub sha256: String,
    pub size: i64,
    /// What the uploader said it does.
    pub description: String,
    /// What the component said of itself (`describe()`), as JSON.
    pub info: serde_json::Value,
    pub created_at: i64,
}

impl ProcessorRecord {
    /// A text field of what the component said of itself (`name`, `description`, `version`); empty if absent.
    pub fn described(&self, key: &str) -> &str {
        self.info
            .get(key)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
    }

    /// The JSON Schema of its config, as it described it (`null` when that is not JSON).
    pub fn config_schema(&self) -> serde_json::Value {
        serde_json::from_str(self.described("config_schema")).unwrap_or(serde_json::Value::Null)
    }
}

fn processor_of(row: &AnyRow) -> Result<ProcessorRecord, StoreError> {
    let info: String = row.try_get("info")?;
    Ok(ProcessorRecord {
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        sha256: row.try_get("sha256")?,
        size: row.try_get("size")?,
        description: row.try_get("description")?,
        info: serde_json::from_str(&info)
            .map_err(|e| StoreError::Corrupt(format!("processor info is not JSON: {e}")))?,
        created_at: row.try_get("created_at")?,
    })
}

const SELECT: &str = "SELECT p.name, p.version, p.sha256, b.size, p.description, p.info, p.created_at \
     FROM processors p JOIN component_blobs b ON b.sha256 = p.sha256";

impl Store {
    /// Stores a component (once per content) as the next version of `name`.
    pub async fn add_processor(
        &self,
        name: &str,
        description: &str,
        sha256: &str,
        bytes: &[u8],
        info: &serde_json::Value,
    ) -> Result<ProcessorRecord, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        // The same bytes uploaded twice at once: the second insert does nothing.
        sqlx::query(
            "INSERT INTO component_blobs (sha256, bytes, size, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(sha256)
        .bind(bytes.to_vec())
        .bind(bytes.len() as i64)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let (latest,): (Option<i64>,) =
            sqlx::query_as("SELECT MAX(version) FROM processors WHERE name = $1")
                .bind(name)
                .fetch_one(&mut *tx)
                .await?;
        let version = latest.unwrap_or(0) + 1;
        sqlx::query(
            "INSERT INTO processors (name, version, sha256, description, info, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(name)
        .bind(version)
        .bind(sha256)
        .bind(description)
        .bind(info.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if crate::is_unique_violation(&e) {
                StoreError::Conflict(format!(
                    "processor \"{name}\" was uploaded concurrently: try again"
                ))
            } else {
                e.into()
            }
        })?;
        tx.commit().await?;
        self.get_processor(name, Some(version)).await
    }

    /// A version of a processor, or its latest when `version` is `None`.
    pub async fn get_processor(
        &self,
        name: &str,
        version: Option<i64>,
    ) -> Result<ProcessorRecord, StoreError> {
        let row = match version {
            Some(v) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{SELECT} WHERE p.name = $1 AND p.version = $2"
                )))
                .bind(name)
                .bind(v)
                .fetch_optional(&self.pool)
                .await?
            }
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{SELECT} WHERE p.name = $1 ORDER BY p.version DESC LIMIT 1"
                )))
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
            }
        };
        let what = match version {
            Some(v) => format!("version {v} of processor \"{name}\""),
            None => format!("processor \"{name}\""),
        };
        processor_of(&row.ok_or(StoreError::NotFound(what))?)
    }

    /// Every version of every processor, by name, newest version first.
    pub async fn list_processors(&self) -> Result<Vec<ProcessorRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT} ORDER BY p.name, p.version DESC"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(processor_of).collect()
    }

    /// The bytes of a component.
    pub async fn get_blob(&self, sha256: &str) -> Result<Vec<u8>, StoreError> {
        let row: Option<(Vec<u8>,)> =
            sqlx::query_as("SELECT bytes FROM component_blobs WHERE sha256 = $1")
                .bind(sha256)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(b,)| b)
            .ok_or_else(|| StoreError::NotFound(format!("component {sha256}")))
    }

    /// Deletes every version of a processor, and the blobs no version uses any more.
    pub async fn delete_processor(&self, name: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM processors WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("processor \"{name}\"")));
        }
        sqlx::query(
            "DELETE FROM component_blobs WHERE sha256 NOT IN (SELECT sha256 FROM processors)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
