//! A SQL connection for processors: each statement runs in a read-only transaction (the database refuses a
//! write) unless the resource allows writes and the run allows side effects.

use airtruct_engine::HostError;
use airtruct_engine::capabilities::{SqlRows, SqlValue};
use airtruct_runtime::kind::Check;
use airtruct_runtime::{BuildContext, Error};
use schemars::JsonSchema;
use serde::Deserialize;
use sqlx::any::{AnyPoolOptions, AnyTypeInfoKind};
use sqlx::{AnyPool, AssertSqlSafe, Column, Row, TypeInfo};

use crate::sql::Driver;

/// A database processors query.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SqlResourceConfig {
    pub driver: Driver,
    /// The connection URL (`postgres://user@host/db`); a credential field.
    pub dsn: String,
    /// Whether statements may write (default false: each runs in a read-only transaction).
    #[serde(default)]
    pub writes: bool,
    /// Connections open at most (default 4).
    #[serde(default = "default_connections")]
    #[schemars(range(min = 1, max = 64))]
    pub max_connections: u32,
}

fn default_connections() -> u32 {
    4
}

impl SqlResourceConfig {
    pub(super) fn check(&self, check: &mut Check<'_>) {
        if let Some(e) = self.driver.check_dsn(&self.dsn) {
            check.problem("dsn", e);
        } else {
            crate::sql::check_dsn(check, self.driver, &self.dsn);
        }
        if self.max_connections == 0 || self.max_connections > 64 {
            check.problem("max_connections", "between 1 and 64");
        }
    }
}

pub(super) struct SqlResource {
    pool: AnyPool,
    driver: Driver,
    writes: bool,
}

impl SqlResource {
    pub(super) fn open(c: &SqlResourceConfig, cx: &BuildContext) -> Result<Self, Error> {
        crate::sql::allow_dsn(cx, "resources: sql", c.driver, &c.dsn)?;
        sqlx::any::install_default_drivers();
        let mut url = c.driver.url(&c.dsn);
        if c.driver == Driver::Sqlite && !c.writes {
            // SQLite has no read-only transaction: the connection itself is read-only.
            url.push_str(if url.contains('?') {
                "&mode=ro"
            } else {
                "?mode=ro"
            });
        }
        // Connected when first used: a database that is down fails the calls, not the stream's start.
        let pool = AnyPoolOptions::new()
            .max_connections(c.max_connections)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_lazy(&url)
            .map_err(|e| Error::User(format!("resources: sql: {e}")))?;
        Ok(Self {
            pool,
            driver: c.driver,
            writes: c.writes,
        })
    }

    pub(super) async fn query(
        &self,
        statement: &str,
        params: Vec<SqlValue>,
        side_effects: bool,
    ) -> Result<SqlRows, HostError> {
        // The statement is the processor's to write: it is bound, never built from message values, and runs
        // with what the connection's user may do, in a read-only transaction unless writes are granted.
        let mut q = sqlx::query(AssertSqlSafe(statement.to_string()));
        for p in params {
            q = match p {
                SqlValue::Null => q.bind(None::<String>),
                SqlValue::Boolean(b) => q.bind(b),
                SqlValue::Integer(i) => q.bind(i),
                SqlValue::Float(f) => q.bind(f),
                SqlValue::Text(s) => q.bind(s),
                SqlValue::Bytes(b) => q.bind(b),
            };
        }
        let rows = if self.writes && side_effects {
            q.fetch_all(&self.pool).await.map_err(failed)?
        } else {
            let begin = match self.driver {
                Driver::Postgres => "BEGIN READ ONLY",
                Driver::Mysql => "START TRANSACTION READ ONLY",
                Driver::Sqlite => "BEGIN",
            };
            let mut tx = self.pool.begin_with(begin).await.map_err(failed)?;
            if self.driver == Driver::Sqlite && self.writes {
                // A connection that may write, in a run without side effects (a test, whose resources are its
                // own): read-only from here on.
                sqlx::query("PRAGMA query_only = ON")
                    .execute(&mut *tx)
                    .await
                    .map_err(failed)?;
            }
            let rows = q.fetch_all(&mut *tx).await;
            // Nothing to keep: a read-only transaction ends the same either way.
            let _ = tx.rollback().await;
            rows.map_err(|e| {
                let text = e.to_string();
                if text.contains("read-only")
                    || text.contains("READ ONLY")
                    || text.contains("readonly")
                {
                    if self.writes {
                        // The resource allows writes; this run does not.
                        super::no_side_effects("a SQL write")
                    } else {
                        HostError::Denied(format!(
                            "this sql resource is read-only (set writes: true to allow writes): {text}"
                        ))
                    }
                } else {
                    failed(e)
                }
            })?
        };
        let columns: Vec<String> = rows
            .first()
            .map(|r| r.columns().iter().map(|c| c.name().to_string()).collect())
            .unwrap_or_default();
        let rows = rows
            .iter()
            .map(|row| (0..row.columns().len()).map(|i| value_of(row, i)).collect())
            .collect::<Result<Vec<Vec<SqlValue>>, HostError>>()?;
        Ok(SqlRows { columns, rows })
    }
}

fn failed(e: sqlx::Error) -> HostError {
    HostError::Failed(e.to_string())
}

fn value_of(row: &sqlx::any::AnyRow, i: usize) -> Result<SqlValue, HostError> {
    let column = &row.columns()[i];
    let kind = column.type_info().kind();
    let got = |e: sqlx::Error| {
        HostError::Failed(format!(
            "column {} ({}): {e}",
            column.name(),
            column.type_info().name()
        ))
    };
    Ok(match kind {
        AnyTypeInfoKind::Null => SqlValue::Null,
        AnyTypeInfoKind::Bool => row
            .try_get::<Option<bool>, _>(i)
            .map_err(got)?
            .map_or(SqlValue::Null, SqlValue::Boolean),
        AnyTypeInfoKind::SmallInt | AnyTypeInfoKind::Integer | AnyTypeInfoKind::BigInt => row
            .try_get::<Option<i64>, _>(i)
            .map_err(got)?
            .map_or(SqlValue::Null, SqlValue::Integer),
        AnyTypeInfoKind::Real | AnyTypeInfoKind::Double => row
            .try_get::<Option<f64>, _>(i)
            .map_err(got)?
            .map_or(SqlValue::Null, SqlValue::Float),
        AnyTypeInfoKind::Text => row
            .try_get::<Option<String>, _>(i)
            .map_err(got)?
            .map_or(SqlValue::Null, SqlValue::Text),
        AnyTypeInfoKind::Blob => row
            .try_get::<Option<Vec<u8>>, _>(i)
            .map_err(got)?
            .map_or(SqlValue::Null, SqlValue::Bytes),
    })
}
