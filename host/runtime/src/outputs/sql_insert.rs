//! `sql_insert` output: one multi-row `INSERT` per batch, in one transaction, with bound parameters only. The
//! values of each row come from `args_mapping`, a VRL program run in the sandboxed `mapping` component whose value
//! is the array of values (`[.id, .name]`). A message whose mapping fails goes to the error policy; the batch is
//! confirmed once the transaction committed.

use std::sync::Arc;

use airtruct_engine::{Engine, Limits, LoadedComponent, ProcessorInstance};
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, AssertSqlSafe};

use crate::{Error, Message, Output};

/// A SQL database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Driver {
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
    Sqlite,
}

impl Driver {
    /// The `n`th (from 1) bound parameter.
    pub(crate) fn placeholder(self, n: usize) -> String {
        match self {
            Driver::Mysql => "?".into(),
            Driver::Postgres | Driver::Sqlite => format!("${n}"),
        }
    }

    pub(crate) fn check_dsn(self, dsn: &str) -> Option<String> {
        let ok = match self {
            Driver::Postgres => dsn.starts_with("postgres://") || dsn.starts_with("postgresql://"),
            Driver::Mysql => dsn.starts_with("mysql://") || dsn.starts_with("mariadb://"),
            Driver::Sqlite => dsn.starts_with("sqlite:"),
        };
        (!ok).then(|| {
            format!("does not look like a {self:?} URL (postgres://, mysql://, sqlite://)")
                .to_lowercase()
        })
    }

    pub(crate) fn url(self, dsn: &str) -> String {
        match dsn.strip_prefix("mariadb://") {
            Some(rest) => format!("mysql://{rest}"),
            None => dsn.to_string(),
        }
    }
}

/// A table or column name: letters, digits and `_`, optionally `schema.name`. Names are never quoted or
/// interpolated otherwise, so they cannot carry SQL.
pub(crate) fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

pub(crate) async fn connect(driver: Driver, dsn: &str, what: &str) -> Result<AnyPool, Error> {
    install_default_drivers();
    AnyPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect(&driver.url(dsn))
        .await
        .map_err(|e| Error::External(format!("{what}: connecting: {e}")))
}

/// Inserts rows into a table.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SqlInsertOutputConfig {
    /// `postgres`, `mysql` (MySQL or MariaDB) or `sqlite`.
    pub driver: Driver,
    /// The connection URL (`postgres://user:${secret:db_password}@host/db`).
    pub dsn: String,
    /// The table (`orders` or `shop.orders`).
    pub table: String,
    /// The columns, in the order `args_mapping` gives the values.
    pub columns: Vec<String>,
    /// A VRL program whose value is the array of values for the columns (`[.id, .name]`).
    pub args_mapping: String,
    /// SQL put after the values, for upserts: `ON CONFLICT (id) DO NOTHING` (PostgreSQL, SQLite) or
    /// `ON DUPLICATE KEY UPDATE name = VALUES(name)` (MySQL).
    #[serde(default)]
    pub suffix: Option<String>,
}

impl SqlInsertOutputConfig {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(p) = self.driver.check_dsn(&self.dsn) {
            out.push(("dsn", p));
        }
        if !is_identifier(&self.table) {
            out.push((
                "table",
                format!(
                    "\"{}\" is not a table name (letters, digits, _)",
                    self.table
                ),
            ));
        }
        if self.columns.is_empty() {
            out.push(("columns", "at least one column is needed".to_string()));
        }
        if let Some(c) = self.columns.iter().find(|c| !is_identifier(c)) {
            out.push((
                "columns",
                format!("\"{c}\" is not a column name (letters, digits, _)"),
            ));
        }
        if self.suffix.as_deref().is_some_and(|s| s.contains(';')) {
            out.push(("suffix", "must be one clause, without ';'".to_string()));
        }
        out
    }

    /// The program the `mapping` component runs: the values become the payload.
    fn mapping_config(&self) -> String {
        serde_json::to_string(&format!(". = if true {{\n{}\n}}", self.args_mapping)).expect("JSON")
    }

    /// Connects and starts the mapping instance.
    pub async fn build(&self, engine: &Engine) -> Result<SqlInsertOutput, Error> {
        let component = crate::registry::builtin_component(engine, "mapping")
            .map_err(|e| Error::Internal(e.message))?;
        let mapping = instantiate(engine, &component, &self.mapping_config())?;
        let pool = connect(self.driver, &self.dsn, "sql_insert").await?;
        Ok(SqlInsertOutput {
            pool,
            config: self.clone(),
            engine: engine.clone(),
            component,
            mapping: Some(mapping),
        })
    }
}

fn instantiate(
    engine: &Engine,
    component: &Arc<LoadedComponent>,
    config: &str,
) -> Result<ProcessorInstance, Error> {
    engine
        .instantiate(component, config, Limits::default())
        .map_err(|e| Error::User(format!("sql_insert: args_mapping: {e}")))
}

/// The running `sql_insert` output.
pub struct SqlInsertOutput {
    pool: AnyPool,
    config: SqlInsertOutputConfig,
    engine: Engine,
    component: Arc<LoadedComponent>,
    mapping: Option<ProcessorInstance>,
}

/// A JSON value as a bound parameter.
fn bind<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    v: &Value,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    match v {
        Value::Null => q.bind(Option::<String>::None),
        Value::Bool(b) => q.bind(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => q.bind(i),
            None => q.bind(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => q.bind(s.clone()),
        other => q.bind(other.to_string()),
    }
}

impl SqlInsertOutput {
    /// The values of each message; `Err` per message whose mapping failed or is not an array of the right size.
    async fn rows(&mut self, batch: &[Message]) -> Result<Vec<Result<Vec<Value>, String>>, Error> {
        let mut mapping = match self.mapping.take() {
            Some(m) => m,
            None => instantiate(&self.engine, &self.component, &self.config.mapping_config())?,
        };
        let input = batch.to_vec();
        let (mapping, out) = tokio::task::spawn_blocking(move || {
            let out = mapping.process(&input);
            (mapping, out)
        })
        .await
        .map_err(|e| Error::Internal(format!("sql_insert: args_mapping: {e}")))?;
        self.mapping = Some(mapping);
        let out = out.map_err(|e| Error::User(format!("sql_insert: args_mapping: {e}")))?;
        if out.len() != batch.len() {
            return Err(Error::User(format!(
                "sql_insert: args_mapping gave {} results for {} messages: it must not filter or split",
                out.len(),
                batch.len()
            )));
        }
        let n = self.config.columns.len();
        Ok(out
            .into_iter()
            .map(|m| {
                if let Some(e) = m.error {
                    return Err(format!("sql_insert: args_mapping: {e}"));
                }
                match serde_json::from_slice::<Value>(&m.payload) {
                    Ok(Value::Array(values)) if values.len() == n => Ok(values),
                    Ok(Value::Array(values)) => Err(format!(
                        "sql_insert: args_mapping gave {} values for {n} columns",
                        values.len()
                    )),
                    _ => Err("sql_insert: args_mapping must give an array of values".to_string()),
                }
            })
            .collect())
    }
}

#[async_trait]
impl Output for SqlInsertOutput {
    async fn write(&mut self, batch: &[Message]) -> Result<(), Error> {
        let rows = self.rows(batch).await?;
        let mut refused = Vec::new();
        let mut good = Vec::new();
        let mut good_at = Vec::new();
        for (i, r) in rows.into_iter().enumerate() {
            match r {
                Ok(values) => {
                    good.push(values);
                    good_at.push(i);
                }
                Err(e) => refused.push((i, e)),
            }
        }
        if !good.is_empty() {
            let c = &self.config;
            let mut sql = format!("INSERT INTO {} ({}) VALUES ", c.table, c.columns.join(", "));
            let mut n = 0;
            for (r, _) in good.iter().enumerate() {
                if r > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                for col in 0..c.columns.len() {
                    if col > 0 {
                        sql.push_str(", ");
                    }
                    n += 1;
                    sql.push_str(&c.driver.placeholder(n));
                }
                sql.push(')');
            }
            if let Some(s) = &c.suffix {
                sql.push(' ');
                sql.push_str(s);
            }
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for v in good.iter().flatten() {
                q = bind(q, v);
            }
            let table = &c.table;
            let failed = |e: sqlx::Error| Error::External(format!("sql_insert into {table}: {e}"));
            let mut tx = self.pool.begin().await.map_err(failed)?;
            if let Err(e) = q.execute(&mut *tx).await {
                // A constraint the rows break will not pass by retrying: the error policy takes them.
                if let sqlx::Error::Database(d) = &e
                    && (d.is_unique_violation()
                        || d.is_check_violation()
                        || d.is_foreign_key_violation())
                {
                    let text = format!("sql_insert into {table}: {e}");
                    refused.extend(good_at.iter().map(|&i| (i, text.clone())));
                    return Err(Error::Rejected(refused));
                }
                return Err(failed(e));
            }
            tx.commit().await.map_err(failed)?;
        }
        if refused.is_empty() {
            Ok(())
        } else {
            Err(Error::Rejected(refused))
        }
    }

    async fn close(&mut self) -> Result<(), Error> {
        self.pool.close().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_placeholders_follow_the_driver() {
        assert!(is_identifier("orders"));
        assert!(is_identifier("shop.orders_2"));
        assert!(!is_identifier("orders; drop table x"));
        assert!(!is_identifier("1abc"));
        assert_eq!(Driver::Postgres.placeholder(3), "$3");
        assert_eq!(Driver::Mysql.placeholder(3), "?");
        assert!(Driver::Postgres.check_dsn("mysql://x").is_some());
        assert_eq!(
            Driver::Mysql.url("mariadb://root@h/db"),
            "mysql://root@h/db"
        );
    }
}
