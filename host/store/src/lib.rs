//! The coordinator's store: streams and their versions, workers and assignments, runs and their counters,
//! coordinators and their leases, uploaded processors, users, API tokens and secrets, on SQLite (the default,
//! embedded) or PostgreSQL. Queries are checked at run time and tested on both databases; the schema is created by
//! the migrations in `migrations.rs`, applied in order at connect.

mod checkpoints;
mod leases;
mod migrations;
mod processors;
mod runs;
mod streams;
mod users;
mod workers;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

pub use leases::CoordinatorRecord;
pub use processors::ProcessorRecord;
pub use runs::{FOLDED, RunRecord};
pub use streams::{StreamRecord, StreamStatus, VersionRecord, new_id};
pub use users::{AuditRecord, SecretRecord, TokenRecord, UserRecord};
pub use workers::{AssignmentRecord, WorkerRecord, WorkerState};

/// Why a store call failed; callers branch on `NotFound` and `Conflict`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool to the store's database.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Store {
    /// Connects to `sqlite://PATH` (created when missing) or `postgres://...` and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            let sep = if path.contains('?') { '&' } else { '?' };
            let url = if path.contains("mode=") {
                url.to_string()
            } else {
                format!("{url}{sep}mode=rwc")
            };
            (Backend::Sqlite, url)
        } else {
            return Err(StoreError::Conflict(format!(
                "unsupported database URL \"{url}\": use sqlite://PATH or postgres://USER@HOST/DB"
            )));
        };
        // SQLite allows one writer: one connection avoids "database is locked" under concurrent writes.
        let max = if backend == Backend::Sqlite { 1 } else { 8 };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .connect(&url)
            .await?;
        let store = Self { pool, backend };
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&store.pool)
                .await?;
            sqlx::query("PRAGMA foreign_keys = ON")
                .execute(&store.pool)
                .await?;
        }
        migrations::apply(&store.pool).await?;
        Ok(store)
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.is_unique_violation()
                || d.message().contains("UNIQUE")
                || d.message().contains("duplicate key")
        }
        _ => false,
    }
}
