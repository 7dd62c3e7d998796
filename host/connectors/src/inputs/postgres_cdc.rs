//! `postgres_cdc` input: row changes from a PostgreSQL logical replication slot (the built-in `test_decoding`
//! plugin), read with `pg_logical_slot_peek_changes` and confirmed with `pg_replication_slot_advance` only up to
//! the last change the output confirmed, in order. A restarted stream resumes where the slot stands: changes that
//! were in flight come again (at least once), in order per row. Needs `wal_level = logical`.
//!
//! Each change is a JSON message `{"table", "op": "insert"|"update"|"delete", "new", "old", "lsn", "xid"}`
//! (`old` holds the key columns, or the whole row with `REPLICA IDENTITY FULL`), with `cdc_table`, `cdc_op` and
//! `cdc_lsn` metadata.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::inputs::READ_CHUNK;
use crate::sql::is_identifier;
use airtruct_runtime::checkpoint::InOrder;
use airtruct_runtime::kind::{Check, InputKind, Kind};
use airtruct_runtime::{BuildContext, Error, Input, InputBatch, Metadata, message};

/// Changes from a PostgreSQL replication slot.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct PostgresCdcInputConfig {
    /// The connection URL (`postgres://user:${secret:pg}@host/db`); the user needs the REPLICATION attribute.
    pub dsn: String,
    /// The replication slot.
    pub slot: String,
    /// Create the slot (with `test_decoding`) when it is missing (default true).
    #[serde(default = "default_true")]
    pub create_slot: bool,
    /// Only these tables (`public.orders`); absent: every table.
    #[serde(default)]
    pub tables: Vec<String>,
    /// How long to wait before looking again when there are no changes (default 200ms).
    #[serde(default = "default_poll")]
    pub poll_interval: airtruct_model::Duration,
}

fn default_true() -> bool {
    true
}
fn default_poll() -> airtruct_model::Duration {
    airtruct_model::Duration(Duration::from_millis(200))
}

impl Kind for PostgresCdcInputConfig {
    const NAME: &'static str = "postgres_cdc";
    const DESCRIPTION: &'static str = "Row changes (insert, update, delete) from a PostgreSQL logical replication \
         slot; the slot advances only past delivered changes";
    const EXAMPLE: &'static str = r#"{"dsn": "postgres://postgres@127.0.0.1:5432/test",
        "slot": "airtruct_example", "tables": ["public.orders"]}"#;

    const CREDENTIALS: &'static [&'static str] = &["dsn"];

    fn check(&mut self, check: &mut Check<'_>) {
        crate::sql::check_dsn(check, crate::sql::Driver::Postgres, &self.dsn);
        for (field, message) in self.problems() {
            check.problem(field, message);
        }
    }
}

#[async_trait]
impl InputKind for PostgresCdcInputConfig {
    async fn build(&self, cx: &BuildContext) -> Result<Box<dyn Input>, Error> {
        crate::sql::allow_dsn(cx, "postgres_cdc", crate::sql::Driver::Postgres, &self.dsn)?;
        Ok(Box::new(self.open().await?))
    }
}

impl PostgresCdcInputConfig {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if !(self.dsn.starts_with("postgres://") || self.dsn.starts_with("postgresql://")) {
            out.push(("dsn", "must be a postgres:// URL".to_string()));
        }
        if !is_identifier(&self.slot) || self.slot.contains('.') {
            out.push(("slot", "letters, digits and _ only".to_string()));
        }
        out
    }

    /// Connects and creates the slot when it is missing.
    pub async fn open(&self) -> Result<PostgresCdcInput, Error> {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&self.dsn)
            .await
            .map_err(|e| Error::External(format!("postgres_cdc: connecting: {e}")))?;
        let exists: Option<String> = sqlx::query_scalar(
            "SELECT plugin::text FROM pg_replication_slots WHERE slot_name = $1",
        )
        .bind(&self.slot)
        .fetch_optional(&pool)
        .await
        .map_err(|e| Error::External(format!("postgres_cdc: {e}")))?;
        match exists.as_deref() {
            Some("test_decoding") => {}
            Some(other) => {
                return Err(Error::User(format!(
                    "postgres_cdc: slot \"{}\" uses the plugin \"{other}\"; it needs test_decoding",
                    self.slot
                )));
            }
            None if self.create_slot => {
                sqlx::query("SELECT pg_create_logical_replication_slot($1, 'test_decoding')")
                    .bind(&self.slot)
                    .execute(&pool)
                    .await
                    .map_err(|e| {
                        Error::User(format!(
                            "postgres_cdc: creating slot \"{}\": {e}",
                            self.slot
                        ))
                    })?;
                tracing::info!(slot = %self.slot, "created a logical replication slot");
            }
            None => {
                return Err(Error::User(format!(
                    "postgres_cdc: no replication slot \"{}\" (set create_slot: true to create it)",
                    self.slot
                )));
            }
        }
        Ok(PostgresCdcInput {
            pool,
            config: self.clone(),
            last_read: None,
            sent: InOrder::new(),
            advanced: None,
        })
    }
}

/// The running `postgres_cdc` input.
pub struct PostgresCdcInput {
    pool: PgPool,
    config: PostgresCdcInputConfig,
    /// The highest LSN handed on.
    last_read: Option<u64>,
    /// Each batch handed on, with its highest LSN.
    sent: InOrder<u64>,
    advanced: Option<u64>,
}

/// `16/B374D848` as a number.
fn parse_lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

fn format_lsn(n: u64) -> String {
    format!("{:X}/{:X}", n >> 32, n & 0xffff_ffff)
}

impl PostgresCdcInput {
    /// Moves the slot to the last LSN of the delivered prefix of what was handed on.
    async fn advance(&mut self) -> Result<(), Error> {
        let Some(lsn) = self.sent.delivered() else {
            return Ok(());
        };
        if self.advanced.is_some_and(|a| a >= lsn) {
            return Ok(());
        }
        sqlx::query("SELECT pg_replication_slot_advance($1, $2::text::pg_lsn)")
            .bind(&self.config.slot)
            .bind(format_lsn(lsn))
            .execute(&self.pool)
            .await
            .map_err(|e| Error::External(format!("postgres_cdc: advancing slot: {e}")))?;
        self.advanced = Some(lsn);
        Ok(())
    }
}

#[async_trait]
impl Input for PostgresCdcInput {
    async fn read(&mut self) -> Result<Option<InputBatch>, Error> {
        loop {
            self.advance().await?;
            // Peek from the slot's confirmed position past what is in flight; skip what was already handed on.
            let ahead = self.sent.in_flight() * READ_CHUNK;
            let rows = sqlx::query(
                "SELECT lsn::text AS lsn, xid::text AS xid, data FROM pg_logical_slot_peek_changes($1, NULL, $2)",
            )
            .bind(&self.config.slot)
            .bind((ahead + READ_CHUNK) as i32)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| Error::External(format!("postgres_cdc: reading slot: {e}")))?;
            // Rows come as whole transactions, BEGIN .. COMMIT. A transaction is new when its COMMIT is past what
            // was handed on (a COMMIT's LSN can equal the next transaction's first one: only COMMITs count).
            let mut messages = Vec::new();
            let mut highest = None;
            let mut txn = Vec::new();
            for row in &rows {
                let lsn_text: String = row.get("lsn");
                let data: String = row.get("data");
                if data.starts_with("BEGIN") {
                    txn.clear();
                    continue;
                }
                if data.starts_with("COMMIT") {
                    let Some(lsn) = parse_lsn(&lsn_text) else {
                        continue;
                    };
                    if self.last_read.is_none_or(|l| lsn > l) {
                        highest = Some(lsn);
                        messages.append(&mut txn);
                    }
                    txn.clear();
                    continue;
                }
                let xid: String = row.get("xid");
                let Some(change) = parse_change(&data) else {
                    continue;
                };
                if !self.config.tables.is_empty() && !self.config.tables.contains(&change.table) {
                    continue;
                }
                let mut meta = Metadata::default();
                meta.insert("cdc_table", &change.table);
                meta.insert("cdc_op", change.op);
                meta.insert("cdc_lsn", &lsn_text);
                let body = json!({
                    "table": change.table, "op": change.op, "new": change.new, "old": change.old,
                    "lsn": lsn_text, "xid": xid.parse::<i64>().ok(),
                });
                txn.push(message(body.to_string().into_bytes(), meta));
            }
            let Some(highest) = highest else {
                tokio::time::sleep(self.config.poll_interval.0).await;
                continue;
            };
            self.last_read = Some(highest);
            if messages.is_empty() {
                // Only transaction markers or other tables: confirm them with the next delivery.
                self.sent.skip(highest);
                continue;
            }
            let ack = self.sent.send(highest);
            return Ok(Some(InputBatch { messages, ack }));
        }
    }

    async fn close(&mut self) -> Result<(), Error> {
        let r = self.advance().await;
        self.pool.close().await;
        r
    }
}

/// One change, parsed from `test_decoding`'s text.
#[derive(Debug, PartialEq)]
struct Change {
    table: String,
    op: &'static str,
    new: Value,
    old: Value,
}

/// Parses `table public.users: UPDATE: old-key: id[integer]:1 new-tuple: id[integer]:2 name[text]:'x'`;
/// `None` for `BEGIN`/`COMMIT` and anything else.
fn parse_change(data: &str) -> Option<Change> {
    let rest = data.strip_prefix("table ")?;
    let (table, rest) = rest.split_once(": ")?;
    let (op, rest) = rest.split_once(':')?;
    let op = match op {
        "INSERT" => "insert",
        "UPDATE" => "update",
        "DELETE" => "delete",
        _ => return None,
    };
    let rest = rest.trim_start();
    let (old, new) = if let Some(r) = rest.strip_prefix("old-key:") {
        let (old, new) = r.split_once(" new-tuple:").unwrap_or((r, ""));
        (
            Value::Object(parse_columns(old.trim())),
            Value::Object(parse_columns(new.trim())),
        )
    } else if rest.starts_with("(no-tuple-data)") {
        (Value::Null, Value::Null)
    } else {
        let cols = Value::Object(parse_columns(rest));
        if op == "delete" {
            (cols, Value::Null)
        } else {
            (Value::Null, cols)
        }
    };
    Some(Change {
        table: table.to_string(),
        op,
        new,
        old,
    })
}

/// `id[integer]:1 name[character varying]:'o''brien' tags[text[]]:'{a,b}' gone[text]:null`.
fn parse_columns(s: &str) -> Map<String, Value> {
    let mut out = Map::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        // The name: quoted ("my col") or up to '['.
        let name = if b[i] == b'"' {
            let start = i + 1;
            i = start;
            while i < b.len() && !(b[i] == b'"' && b.get(i + 1) != Some(&b'"')) {
                i += if b[i] == b'"' { 2 } else { 1 };
            }
            let n = s[start..i.min(b.len())].replace("\"\"", "\"");
            i += 1;
            n
        } else {
            let start = i;
            while i < b.len() && b[i] != b'[' {
                i += 1;
            }
            s[start..i].to_string()
        };
        // The type, in balanced brackets.
        if i >= b.len() || b[i] != b'[' {
            break;
        }
        let mut depth = 0;
        let tstart = i + 1;
        while i < b.len() {
            match b[i] {
                b'[' => depth += 1,
                b']' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        let ty = s.get(tstart..i).unwrap_or("").to_string();
        i += 1; // ']'
        if b.get(i) != Some(&b':') {
            break;
        }
        i += 1;
        // The value: 'quoted' with '' for a quote, or a bare token.
        let value = if b.get(i) == Some(&b'\'') {
            let mut v = String::new();
            i += 1;
            let start = i;
            let mut seg = start;
            while i < b.len() {
                if b[i] == b'\'' {
                    if b.get(i + 1) == Some(&b'\'') {
                        v.push_str(&s[seg..=i]);
                        i += 2;
                        seg = i;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            v.push_str(&s[seg..i.min(b.len())]);
            i += 1;
            typed(&ty, &v, true)
        } else {
            let start = i;
            while i < b.len() && b[i] != b' ' {
                i += 1;
            }
            typed(&ty, &s[start..i], false)
        };
        out.insert(name, value);
    }
    out
}

fn typed(ty: &str, v: &str, quoted: bool) -> Value {
    if !quoted && v == "null" {
        return Value::Null;
    }
    if ty.ends_with("[]") {
        return Value::String(v.to_string());
    }
    match ty {
        "smallint" | "integer" | "bigint" | "oid" => v
            .parse::<i64>()
            .map_or_else(|_| Value::String(v.into()), Value::from),
        "real" | "double precision" | "numeric" => v
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Value::String(v.into()), Value::Number),
        "boolean" => Value::Bool(v == "true"),
        "json" | "jsonb" => serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.into())),
        _ => Value::String(v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_test_decoding_changes() {
        assert_eq!(parse_change("BEGIN 742"), None);
        let c = parse_change(
            "table public.users: INSERT: id[integer]:1 name[character varying]:'o''brien x' ok[boolean]:true \
             score[numeric]:2.5 doc[jsonb]:'{\"a\": 1}' tags[text[]]:'{a,b}' gone[text]:null",
        )
        .unwrap();
        assert_eq!(c.table, "public.users");
        assert_eq!(c.op, "insert");
        assert_eq!(
            c.new,
            json!({"id": 1, "name": "o'brien x", "ok": true, "score": 2.5, "doc": {"a": 1}, "tags": "{a,b}",
                   "gone": null})
        );
        let u = parse_change("table public.users: UPDATE: old-key: id[integer]:1 new-tuple: id[integer]:2 name[text]:'b'")
            .unwrap();
        assert_eq!(
            (u.old, u.new),
            (json!({"id": 1}), json!({"id": 2, "name": "b"}))
        );
        let d = parse_change("table public.users: DELETE: id[integer]:2").unwrap();
        assert_eq!(
            (d.op, d.old, d.new),
            ("delete", json!({"id": 2}), Value::Null)
        );
        assert_eq!(parse_lsn("16/B374D848"), Some((0x16 << 32) | 0xB374D848));
        assert_eq!(format_lsn(parse_lsn("16/B374D848").unwrap()), "16/B374D848");
    }
}
