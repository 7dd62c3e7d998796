//! Users (with argon2 password hashes made by the caller), API tokens (stored as hashes) and secrets (stored
//! encrypted by the caller; the store never sees a value in clear).

use sqlx::Row;

use crate::{Store, StoreError, is_unique_violation, now_ms};

/// A user who can log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub username: String,
    pub password_hash: String,
    pub created_at: i64,
}

/// An API token, known by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub token_hash: String,
    pub username: String,
    pub name: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// A secret, encrypted (base64 nonce and ciphertext).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRecord {
    pub name: String,
    pub nonce: String,
    pub ciphertext: String,
    pub updated_at: i64,
}

impl Store {
    /// Creates a user; `Conflict` when the name is taken.
    pub async fn create_user(&self, username: &str, password_hash: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO users (username, password_hash, created_at) VALUES ($1, $2, $3)")
            .bind(username)
            .bind(password_hash)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!("user \"{username}\" already exists"))
                } else {
                    e.into()
                }
            })?;
        Ok(())
    }

    /// The user of this name.
    pub async fn get_user(&self, username: &str) -> Result<UserRecord, StoreError> {
        let row = sqlx::query(
            "SELECT username, password_hash, created_at FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("user \"{username}\"")))?;
        Ok(UserRecord {
            username: row.try_get("username")?,
            password_hash: row.try_get("password_hash")?,
            created_at: row.try_get("created_at")?,
        })
    }

    /// How many users exist (0 means the admin must be bootstrapped).
    pub async fn count_users(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    /// Records a token by its hash.
    pub async fn create_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens (token_hash, username, name, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&token.token_hash)
        .bind(&token.username)
        .bind(&token.name)
        .bind(token.created_at)
        .bind(token.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The token with this hash, if it exists and has not expired.
    pub async fn find_token(&self, token_hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT token_hash, username, name, created_at, expires_at FROM api_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let token = TokenRecord {
            token_hash: row.try_get("token_hash")?,
            username: row.try_get("username")?,
            name: row.try_get("name")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
        };
        Ok(token
            .expires_at
            .is_none_or(|t| t > now_ms())
            .then_some(token))
    }

    /// A user's tokens that have not expired, newest first.
    pub async fn list_tokens(&self, username: &str) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT token_hash, username, name, created_at, expires_at FROM api_tokens \
             WHERE username = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at DESC, name",
        )
        .bind(username)
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TokenRecord {
                    token_hash: row.try_get("token_hash")?,
                    username: row.try_get("username")?,
                    name: row.try_get("name")?,
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                })
            })
            .collect()
    }

    /// Revokes one of a user's tokens.
    pub async fn delete_token(&self, username: &str, token_hash: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE username = $1 AND token_hash = $2")
            .bind(username)
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("token \"{token_hash}\"")));
        }
        Ok(())
    }

    /// Deletes tokens that expired before `now` (ms); returns how many.
    pub async fn delete_expired_tokens(&self, now: i64) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM api_tokens WHERE expires_at IS NOT NULL AND expires_at <= $1")
                .bind(now)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }

    /// Creates or replaces a secret; returns whether it existed.
    pub async fn put_secret(&self, secret: &SecretRecord) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let existed = sqlx::query("DELETE FROM secrets WHERE name = $1")
            .bind(&secret.name)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        sqlx::query(
            "INSERT INTO secrets (name, nonce, ciphertext, updated_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&secret.name)
        .bind(&secret.nonce)
        .bind(&secret.ciphertext)
        .bind(secret.updated_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(existed)
    }

    /// The secret of this name.
    pub async fn get_secret(&self, name: &str) -> Result<SecretRecord, StoreError> {
        let row =
            sqlx::query("SELECT name, nonce, ciphertext, updated_at FROM secrets WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("secret \"{name}\"")))?;
        Ok(SecretRecord {
            name: row.try_get("name")?,
            nonce: row.try_get("nonce")?,
            ciphertext: row.try_get("ciphertext")?,
            updated_at: row.try_get("updated_at")?,
        })
    }

    /// Secret names with when they were last set; never values.
    pub async fn list_secrets(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT name, updated_at FROM secrets ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows)
    }

    /// Deletes a secret.
    pub async fn delete_secret(&self, name: &str) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM secrets WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("secret \"{name}\"")));
        }
        Ok(())
    }
}
