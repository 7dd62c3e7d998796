//! Coordinators sharing one store: each says it is alive, and one at a time holds the placement lease (it
//! expires unless renewed, so when its holder dies another takes it over).

use crate::{Store, StoreError};

/// A coordinator that said it is alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorRecord {
    pub id: String,
    /// Where it serves the API, as it says.
    pub address: String,
    pub started_at: i64,
    pub last_seen: i64,
}

impl Store {
    /// Takes or renews the lease `name` for `holder` until `now + ttl_ms`; whether `holder` holds it now.
    pub async fn hold_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(holder)
        .bind(now + ttl_ms)
        .execute(&self.pool)
        .await?;
        let done = sqlx::query(
            "UPDATE leases SET holder = $1, expires_at = $2 \
             WHERE name = $3 AND (holder = $1 OR expires_at < $4)",
        )
        .bind(holder)
        .bind(now + ttl_ms)
        .bind(name)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives the lease up, so another coordinator takes it at once.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Who holds the lease `name`, if it has not expired at `now`.
    pub async fn lease_holder(&self, name: &str, now: i64) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT holder FROM leases WHERE name = $1 AND expires_at >= $2")
                .bind(name)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.0))
    }

    /// Says coordinator `id` is alive at `now`.
    pub async fn see_coordinator(
        &self,
        id: &str,
        address: &str,
        started_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO coordinators (id, address, started_at, last_seen) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen",
        )
        .bind(id)
        .bind(address)
        .bind(started_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The coordinators seen at or after `since`, oldest first.
    pub async fn list_coordinators(
        &self,
        since: i64,
    ) -> Result<Vec<CoordinatorRecord>, StoreError> {
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT id, address, started_at, last_seen FROM coordinators WHERE last_seen >= $1 \
             ORDER BY started_at, id",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, address, started_at, last_seen)| CoordinatorRecord {
                id,
                address,
                started_at,
                last_seen,
            })
            .collect())
    }

    /// Forgets the coordinators not seen since `before`.
    pub async fn prune_coordinators(&self, before: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM coordinators WHERE last_seen < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A coordinator shut down.
    pub async fn forget_coordinator(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM coordinators WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
