//! Users (with argon2 password hashes made by the caller), API tokens (stored as hashes) and secrets (stored
//! encrypted by the caller; the store never sees a value in clear).

use sqlx::Row;

use crate::{Store, StoreError, is_unique_violation, now_ms};

/// A user who can log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub username: String,
    pub password_hash: String,
    /// `admin`, `editor` or `viewer`.
    pub role: String,
    /// A disabled user cannot log in, and their tokens stop working.
    pub disabled: bool,
    pub created_at: i64,
}

/// One change someone made, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub at: i64,
    pub username: String,
    /// `stream.create`, `secret.set`, ...
    pub action: String,
    /// What it was done to (a stream id, a processor or secret name, a user name).
    pub target: String,
    pub detail: String,
}

/// An API token, known by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub token_hash: String,
    pub username: String,
    pub name: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    /// The role it acts with, at most its owner's (`None`: the owner's).
    pub role: Option<String>,
    /// What it may be used for, comma-separated (`api`: the REST API; `mcp`: the `/mcp` endpoint).
    pub scopes: String,
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
    /// Creates a user with a role; `Conflict` when the name is taken.
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        role: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO users (username, password_hash, role, disabled, created_at) VALUES ($1, $2, $3, 0, $4)",
        )
            .bind(username)
            .bind(password_hash)
            .bind(role)
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
            "SELECT username, password_hash, role, disabled, created_at FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("user \"{username}\"")))?;
        user_of(&row)
    }

    /// Every user, by name.
    pub async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT username, password_hash, role, disabled, created_at FROM users ORDER BY username",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_of).collect()
    }

    /// Changes a user's role, disabled flag or password hash (each when given).
    pub async fn update_user(
        &self,
        username: &str,
        role: Option<&str>,
        disabled: Option<bool>,
        password_hash: Option<&str>,
    ) -> Result<UserRecord, StoreError> {
        let current = self.get_user(username).await?;
        sqlx::query(
            "UPDATE users SET role = $1, disabled = $2, password_hash = $3 WHERE username = $4",
        )
        .bind(role.unwrap_or(&current.role))
        .bind(i64::from(disabled.unwrap_or(current.disabled)))
        .bind(password_hash.unwrap_or(&current.password_hash))
        .bind(username)
        .execute(&self.pool)
        .await?;
        self.get_user(username).await
    }

    /// Records a change in the audit trail.
    pub async fn audit(
        &self,
        username: &str,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit (at, username, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(now_ms())
        .bind(username)
        .bind(action)
        .bind(target)
        .bind(detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The latest changes, newest first.
    pub async fn list_audit(&self, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, username, action, target, detail FROM audit ORDER BY at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditRecord {
                    at: row.try_get("at")?,
                    username: row.try_get("username")?,
                    action: row.try_get("action")?,
                    target: row.try_get("target")?,
                    detail: row.try_get("detail")?,
                })
            })
            .collect()
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
            "INSERT INTO api_tokens (token_hash, username, name, created_at, expires_at, role, scopes) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&token.token_hash)
        .bind(&token.username)
        .bind(&token.name)
        .bind(token.created_at)
        .bind(token.expires_at)
        .bind(token.role.as_deref())
        .bind(&token.scopes)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The token with this hash, if it exists and has not expired.
    pub async fn find_token(&self, token_hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT token_hash, username, name, created_at, expires_at, role, scopes FROM api_tokens WHERE token_hash = $1",
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
            role: row.try_get("role")?,
            scopes: row.try_get("scopes")?,
        };
        Ok(token
            .expires_at
            .is_none_or(|t| t > now_ms())
            .then_some(token))
    }

    /// A user's tokens that have not expired, newest first.
    pub async fn list_tokens(&self, username: &str) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT token_hash, username, name, created_at, expires_at, role, scopes FROM api_tokens \
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
                    role: row.try_get("role")?,
                    scopes: row.try_get("scopes")?,
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

fn user_of(row: &sqlx::any::AnyRow) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        username: row.try_get("username")?,
        password_hash: row.try_get("password_hash")?,
        role: row.try_get("role")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        created_at: row.try_get("created_at")?,
    })
}
