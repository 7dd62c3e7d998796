//! `sql_insert` output: one multi-row `INSERT` per batch, in one transaction, with bound parameters only. The
//! values of each row come from `args_mapping`, a VRL program run in the sandboxed `mapping` component whose value
//! is the array of values (`[.id, .name]`). A message whose mapping fails goes to the error policy; the batch is
//! confirmed once the transaction committed.

use airtruct_runtime::kind::{Check, Kind, OutputKind};
use airtruct_runtime::vrl::{VrlProgram, VrlRunner};
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use sqlx::{AnyPool, AssertSqlSafe};

use crate::sql::{Driver, connect, is_identifier};
use airtruct_runtime::{BuildContext, Error, Message, Output};

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
    /// Set by the check: `args_mapping`, compiled.
    #[serde(skip)]
    #[schemars(skip)]
    program: Option<VrlProgram>,
}

impl Kind for SqlInsertOutputConfig {
    const NAME: &'static str = "sql_insert";
    const DESCRIPTION: &'static str = "Inserts rows into a PostgreSQL, MySQL/MariaDB or SQLite table, one multi-row \
         insert in one transaction per batch, values from a VRL args_mapping";
    const EXAMPLE: &'static str = r#"{"driver": "sqlite", "dsn": "sqlite://orders.db?mode=rwc",
        "table": "orders", "columns": ["id", "name"], "args_mapping": "[.id, .name]",
        "suffix": "ON CONFLICT (id) DO NOTHING"}"#;

    const CREDENTIALS: &'static [&'static str] = &["dsn"];

    fn check(&mut self, check: &mut Check<'_>) {
        crate::sql::check_dsn(check, self.driver, &self.dsn);
        for (field, message) in self.problems() {
            check.problem(field, message);
        }
        self.program = check.value_program("args_mapping", &self.args_mapping);
    }
}

#[async_trait]
impl OutputKind for SqlInsertOutputConfig {
    async fn build(&self, cx: &BuildContext) -> Result<Box<dyn Output>, Error> {
        crate::sql::allow_dsn(cx, "sql_insert", self.driver, &self.dsn)?;
        let program = self.program.as_ref().ok_or_else(|| {
            Error::Internal("sql_insert: args_mapping was not checked before the build".into())
        })?;
        let mapping = program
            .runner()
            .map_err(|e| Error::User(format!("sql_insert: args_mapping: {e}")))?;
        let pool = connect(self.driver, &self.dsn, "sql_insert").await?;
        Ok(Box::new(SqlInsertOutput {
            pool,
            config: self.clone(),
            mapping,
        }))
    }
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
}

/// The running `sql_insert` output.
pub struct SqlInsertOutput {
    pool: AnyPool,
    config: SqlInsertOutputConfig,
    mapping: VrlRunner,
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
        let out = self
            .mapping
            .run(batch)
            .await
            .map_err(|e| Error::User(format!("sql_insert: args_mapping: {e}")))?;
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
