//! `sql_select` input: reads rows of a table as JSON messages (one object per row, by column name).
//!
//! Without `interval` the query runs once and the stream completes when every row was delivered. With
//! `checkpoint_column` rows are read in its order, in pages, each page after the greatest value already read; with
//! `interval` the input then polls for rows past it, for incremental reads of a growing table. The checkpoint (the
//! greatest value of the column whose row was delivered) is kept durably, by the coordinator for a stream on a
//! worker: a restarted stream, or one moved to another worker, reads on past it. It is kept per table and column:
//! pointing the stream at another table or column starts from the beginning.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use sqlx::any::AnyTypeInfoKind;
use sqlx::{AnyPool, AssertSqlSafe, Column, Row};

use crate::sql::{Driver, connect, is_identifier};
use airtruct_runtime::checkpoint::{Checkpoint, InOrder};
use airtruct_runtime::kind::{Check, InputKind, Kind};
use airtruct_runtime::{Ack, BuildContext, Error, Input, InputBatch, Metadata, message};

/// Reads rows of a table.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SqlSelectInputConfig {
    /// `postgres`, `mysql` (MySQL or MariaDB) or `sqlite`.
    pub driver: Driver,
    /// The connection URL.
    pub dsn: String,
    pub table: String,
    /// The columns to read (`["*"]` for all).
    pub columns: Vec<String>,
    /// A condition (`status = 'new'`), without values from outside: it is SQL you write.
    #[serde(default, rename = "where")]
    pub where_: Option<String>,
    /// A column that only grows (an id, a timestamp): rows are read in its order, past the last one read; the
    /// last one delivered is kept across restarts.
    #[serde(default)]
    pub checkpoint_column: Option<String>,
    /// Poll again this long after the last rows (needs `checkpoint_column`); absent: read once, then complete.
    #[serde(default)]
    pub interval: Option<airtruct_model::Duration>,
    /// Rows per page (default 500).
    #[serde(default = "default_page")]
    pub page_size: u32,
}

fn default_page() -> u32 {
    500
}

impl Kind for SqlSelectInputConfig {
    const NAME: &'static str = "sql_select";
    const DESCRIPTION: &'static str = "Reads rows of a PostgreSQL, MySQL/MariaDB or SQLite table once, or on an \
         interval past a checkpoint column; each row is a JSON message";
    const EXAMPLE: &'static str = r#"{"driver": "postgres", "dsn": "postgres://postgres@127.0.0.1:5432/test",
        "table": "pg_catalog.pg_namespace", "columns": ["oid", "nspname"], "checkpoint_column": "oid",
        "interval": "5s"}"#;

    const CREDENTIALS: &'static [&'static str] = &["dsn"];

    fn check(&mut self, check: &mut Check<'_>) {
        crate::sql::check_dsn(check, self.driver, &self.dsn);
        for (field, message) in self.problems() {
            check.problem(field, message);
        }
    }
}

#[async_trait]
impl InputKind for SqlSelectInputConfig {
    async fn build(&self, cx: &BuildContext) -> Result<Box<dyn Input>, Error> {
        crate::sql::allow_dsn(cx, "sql_select", self.driver, &self.dsn)?;
        let checkpoint = self
            .checkpoint_column
            .as_ref()
            .map(|col| cx.checkpoint(&format!("{}.{col}", self.table)));
        Ok(Box::new(self.open(checkpoint).await?))
    }
}

impl SqlSelectInputConfig {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(p) = self.driver.check_dsn(&self.dsn) {
            out.push(("dsn", p));
        }
        if !is_identifier(&self.table) {
            out.push(("table", format!("\"{}\" is not a table name", self.table)));
        }
        if self.columns.is_empty() || self.columns.iter().any(|c| c != "*" && !is_identifier(c)) {
            out.push(("columns", "column names, or [\"*\"]".to_string()));
        }
        if let Some(c) = &self.checkpoint_column
            && !is_identifier(c)
        {
            out.push(("checkpoint_column", format!("\"{c}\" is not a column name")));
        }
        if self.interval.is_some() && self.checkpoint_column.is_none() {
            out.push((
                "interval",
                "polling needs a checkpoint_column, or it would read the same rows again"
                    .to_string(),
            ));
        }
        if self.where_.as_deref().is_some_and(|w| w.contains(';')) {
            out.push(("where", "must be one condition, without ';'".to_string()));
        }
        out
    }

    /// Connects, and reads the checkpoint.
    pub async fn open(&self, checkpoint: Option<Checkpoint>) -> Result<SqlSelectInput, Error> {
        let pool = connect(self.driver, &self.dsn, "sql_select").await?;
        let after = match &checkpoint {
            Some(c) => c.load().await?,
            None => None,
        };
        if let Some(v) = &after {
            tracing::info!(table = %self.table, after = %v, "sql_select reads on past its checkpoint");
        }
        Ok(SqlSelectInput {
            pool,
            config: self.clone(),
            saved: after.clone(),
            after,
            checkpoint,
            sent: InOrder::new(),
            done: false,
            polled: false,
        })
    }
}

/// The running `sql_select` input.
pub struct SqlSelectInput {
    pool: AnyPool,
    config: SqlSelectInputConfig,
    /// The checkpoint column's greatest value read so far.
    after: Option<Value>,
    /// Where the greatest value delivered is kept, with a checkpoint column.
    checkpoint: Option<Checkpoint>,
    /// The value saved last.
    saved: Option<Value>,
    /// Each page handed on, with its greatest value.
    sent: InOrder<Value>,
    done: bool,
    /// Whether the last page came back short (then wait `interval`).
    polled: bool,
}

fn value_of(row: &sqlx::any::AnyRow, i: usize) -> Value {
    let kind = row.columns()[i].type_info().kind();
    let v: Option<Value> = match kind {
        AnyTypeInfoKind::Null => None,
        AnyTypeInfoKind::Bool => row
            .try_get::<Option<bool>, _>(i)
            .ok()
            .flatten()
            .map(Value::from),
        AnyTypeInfoKind::SmallInt | AnyTypeInfoKind::Integer | AnyTypeInfoKind::BigInt => row
            .try_get::<Option<i64>, _>(i)
            .ok()
            .flatten()
            .map(Value::from),
        AnyTypeInfoKind::Real | AnyTypeInfoKind::Double => row
            .try_get::<Option<f64>, _>(i)
            .ok()
            .flatten()
            .map(Value::from),
        AnyTypeInfoKind::Text => row
            .try_get::<Option<String>, _>(i)
            .ok()
            .flatten()
            .map(Value::from),
        AnyTypeInfoKind::Blob => row
            .try_get::<Option<Vec<u8>>, _>(i)
            .ok()
            .flatten()
            .map(|b| Value::from(String::from_utf8_lossy(&b).into_owned())),
    };
    v.unwrap_or(Value::Null)
}

#[async_trait]
impl Input for SqlSelectInput {
    async fn read(&mut self) -> Result<Option<InputBatch>, Error> {
        loop {
            self.save().await?;
            if self.done {
                return Ok(None);
            }
            if self.polled
                && let Some(i) = self.config.interval
            {
                // Waiting for new rows, the checkpoint follows the acknowledgements.
                let until = tokio::time::Instant::now() + i.0;
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(until) => break,
                        _ = self.sent.changed() => self.save().await?,
                    }
                }
            }
            if let Some(b) = self.page().await? {
                return Ok(Some(b));
            }
        }
    }

    async fn close(&mut self) -> Result<(), Error> {
        let r = self.save().await;
        self.pool.close().await;
        r
    }
}

impl SqlSelectInput {
    /// Saves the greatest value of the delivered pages, when it moved.
    async fn save(&mut self) -> Result<(), Error> {
        let Some(c) = &self.checkpoint else {
            return Ok(());
        };
        let Some(v) = self.sent.delivered() else {
            return Ok(());
        };
        if self.saved.as_ref() != Some(&v) {
            c.save(&v).await?;
            self.saved = Some(v);
        }
        Ok(())
    }

    /// One query; `None` when it found no rows.
    async fn page(&mut self) -> Result<Option<InputBatch>, Error> {
        let c = &self.config;
        let mut sql = format!("SELECT {} FROM {}", c.columns.join(", "), c.table);
        let mut conditions = Vec::new();
        if let Some(w) = &c.where_ {
            conditions.push(format!("({w})"));
        }
        if let (Some(col), Some(_)) = (&c.checkpoint_column, &self.after) {
            conditions.push(format!("{col} > {}", c.driver.placeholder(1)));
        }
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        if let Some(col) = &c.checkpoint_column {
            sql.push_str(&format!(" ORDER BY {col} LIMIT {}", c.page_size.max(1)));
        }
        let mut q = sqlx::query(AssertSqlSafe(sql));
        match &self.after {
            Some(Value::Number(n)) if n.is_i64() => q = q.bind(n.as_i64()),
            Some(Value::Number(n)) => q = q.bind(n.as_f64()),
            Some(Value::String(s)) => q = q.bind(s.clone()),
            _ => {}
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .map_err(|e| Error::External(format!("sql_select from {}: {e}", c.table)))?;
        let mut messages = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut obj = Map::new();
            for (i, col) in row.columns().iter().enumerate() {
                obj.insert(col.name().to_string(), value_of(row, i));
            }
            if let Some(col) = &c.checkpoint_column
                && let Some(v) = obj.get(col)
            {
                self.after = Some(v.clone());
            }
            let mut meta = Metadata::default();
            meta.insert("sql_table", &c.table);
            messages.push(message(Value::Object(obj).to_string().into_bytes(), meta));
        }
        let full_page = c.checkpoint_column.is_some() && rows.len() as u32 >= c.page_size.max(1);
        if !full_page && c.interval.is_none() {
            self.done = true;
        }
        self.polled = !full_page;
        if messages.is_empty() {
            return Ok(None);
        }
        let ack = match (&self.checkpoint, &self.after) {
            (Some(_), Some(after)) => self.sent.send(after.clone()),
            _ => Ack::none(),
        };
        Ok(Some(InputBatch { messages, ack }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_needs_a_checkpoint_column() {
        let c: SqlSelectInputConfig = serde_json::from_value(serde_json::json!({
            "driver": "postgres", "dsn": "postgres://x/y", "table": "t", "columns": ["*"], "interval": "1s"
        }))
        .unwrap();
        assert_eq!(c.problems()[0].0, "interval");
    }
}
