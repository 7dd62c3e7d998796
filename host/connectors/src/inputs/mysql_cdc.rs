//! `mysql_cdc` input: row changes from the binary log of MariaDB or MySQL (row format), read as a replica does
//! (`COM_BINLOG_DUMP` through `mysql_async`). The position (binlog file and offset) is kept in the stream's
//! durable checkpoint and moves only past transactions whose every change the output confirmed, in order: a
//! restarted stream, or one moved to another worker, reads on from there, and what was in flight comes again (at
//! least once, in order per row).
//!
//! Each change is a JSON message `{"table", "op": "insert"|"update"|"delete", "new", "old", "position"}` (`old`
//! is the row before an update or a delete, `new` the row after an insert or an update), with `cdc_table`,
//! `cdc_op` and `cdc_position` metadata: the shape of `postgres_cdc`'s. The server needs `log_bin`,
//! `binlog_format = ROW` and `binlog_row_metadata = FULL` (for column names); the user `REPLICATION SLAVE` and
//! `REPLICATION CLIENT`.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use futures_util::StreamExt;
use mysql_async::binlog::events::{EventData, RowsEventData};
use mysql_async::binlog::row::BinlogRow;
use mysql_async::binlog::value::BinlogValue;
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest, Value as MyValue};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::inputs::READ_CHUNK;
use crate::sql::is_identifier;
use airtruct_runtime::checkpoint::{Checkpoint, InOrder};
use airtruct_runtime::kind::{Check, InputKind, Kind};
use airtruct_runtime::{BuildContext, Error, Input, InputBatch, Message, Metadata, message};

/// Where a stream without a checkpoint starts. Serialize: the schema shows the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MysqlStart {
    /// At the end of the binary log: changes from now on (the default).
    #[default]
    Current,
    /// At the start of the oldest binary log the server keeps.
    Earliest,
}

/// Changes from a MariaDB or MySQL binary log.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct MysqlCdcInputConfig {
    /// The connection URL (`mysql://user:${secret:db}@host:3306/db`); the user needs `REPLICATION SLAVE` and
    /// `REPLICATION CLIENT`.
    pub dsn: String,
    /// Only these tables (`shop.orders`); absent: every table.
    #[serde(default)]
    pub tables: Vec<String>,
    /// Where to start when the stream has no checkpoint yet (`current` or `earliest`).
    #[serde(default)]
    pub start_from: MysqlStart,
    /// The replica id this input takes on the server, unique among its replicas (default: one derived from the
    /// stream).
    #[serde(default)]
    pub server_id: Option<u32>,
}

impl Kind for MysqlCdcInputConfig {
    const NAME: &'static str = "mysql_cdc";
    const DESCRIPTION: &'static str = "Row changes (insert, update, delete) from a MariaDB or MySQL binary log in \
         row format; the position is kept durably and moves only past delivered transactions";
    const EXAMPLE: &'static str =
        r#"{"dsn": "mysql://root@127.0.0.1:3306/test", "tables": ["test.orders"]}"#;

    const CREDENTIALS: &'static [&'static str] = &["dsn"];

    fn check(&mut self, check: &mut Check<'_>) {
        crate::sql::check_dsn(check, crate::sql::Driver::Mysql, &self.dsn);
        for (field, message) in self.problems() {
            check.problem(field, message);
        }
    }
}

#[async_trait]
impl InputKind for MysqlCdcInputConfig {
    async fn build(&self, cx: &BuildContext) -> Result<Box<dyn Input>, Error> {
        crate::sql::allow_dsn(cx, "mysql_cdc", crate::sql::Driver::Mysql, &self.dsn)?;
        let checkpoint = cx.checkpoint("binlog");
        let server_id = self
            .server_id
            .unwrap_or_else(|| derived_server_id(checkpoint.key(), cx.stream_id()));
        Ok(Box::new(self.open(checkpoint, server_id).await?))
    }
}

/// A replica id from the stream and the input's place in it, away from the small ids servers usually take.
fn derived_server_id(key: &str, stream: Option<&str>) -> u32 {
    let h = crc32fast::hash(format!("{}:{key}", stream.unwrap_or("")).as_bytes());
    0x4000_0000 | (h & 0x3fff_ffff)
}

/// A place in the binary log: the next event to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub file: String,
    pub pos: u64,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

impl MysqlCdcInputConfig {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if !(self.dsn.starts_with("mysql://") || self.dsn.starts_with("mariadb://")) {
            out.push(("dsn", "must be a mysql:// or mariadb:// URL".to_string()));
        }
        for t in &self.tables {
            if !is_identifier(t) || t.split('.').count() != 2 {
                out.push((
                    "tables",
                    format!("\"{t}\" is not a table: write it as database.table"),
                ));
            }
        }
        if self.server_id == Some(0) {
            out.push(("server_id", "0 is not a replica id".to_string()));
        }
        out
    }

    /// Connects, checks the server's settings, and starts reading at the checkpoint (or `start_from`).
    pub async fn open(
        &self,
        checkpoint: Checkpoint,
        server_id: u32,
    ) -> Result<MysqlCdcInput, Error> {
        let url = match self.dsn.strip_prefix("mariadb://") {
            Some(rest) => format!("mysql://{rest}"),
            None => self.dsn.clone(),
        };
        let opts = mysql_async::Opts::from_url(&url)
            .map_err(|e| Error::User(format!("mysql_cdc: the dsn is not valid: {e}")))?;
        let mut conn = tokio::time::timeout(Duration::from_secs(10), mysql_async::Conn::new(opts))
            .await
            .map_err(|_| Error::External("mysql_cdc: connecting timed out after 10 s".into()))?
            .map_err(|e| Error::External(format!("mysql_cdc: connecting: {e}")))?;
        let checksum_len = check_settings(&mut conn).await?;
        let start = match checkpoint.load().await? {
            Some(v) => {
                let p: Position = serde_json::from_value(v).map_err(|e| {
                    Error::Internal(format!("mysql_cdc: the checkpoint is not a position: {e}"))
                })?;
                tracing::info!(position = %p, "mysql_cdc reads on from its checkpoint");
                p
            }
            None => self.first_position(&mut conn).await?,
        };
        let request = BinlogStreamRequest::new(server_id)
            .with_filename(start.file.as_bytes())
            .with_pos(start.pos);
        let stream = conn.get_binlog_stream(request).await.map_err(|e| {
            Error::External(format!(
                "mysql_cdc: reading the binary log from {start} (as replica {server_id}): {e}"
            ))
        })?;
        Ok(MysqlCdcInput {
            stream,
            tables: self.tables.iter().cloned().collect(),
            file: start.file.clone(),
            safe: start.clone(),
            in_transaction: false,
            checksum_len,
            described: false,
            checkpoint,
            saved: Some(start),
            sent: InOrder::new(),
        })
    }

    async fn first_position(&self, conn: &mut mysql_async::Conn) -> Result<Position, Error> {
        let query = |e: mysql_async::Error| Error::External(format!("mysql_cdc: {e}"));
        match self.start_from {
            MysqlStart::Current => {
                // MySQL 8.4 calls it SHOW BINARY LOG STATUS; MariaDB and older MySQL, SHOW MASTER STATUS.
                let row: Option<mysql_async::Row> =
                    match conn.query_first("SHOW BINARY LOG STATUS").await {
                        Ok(r) => r,
                        Err(_) => conn
                            .query_first("SHOW MASTER STATUS")
                            .await
                            .map_err(query)?,
                    };
                let row = row.ok_or_else(|| {
                    Error::User("mysql_cdc: the server has no binary log (log_bin is off)".into())
                })?;
                let file: String = row.get(0).unwrap_or_default();
                let pos: u64 = row.get(1).unwrap_or(4);
                Ok(Position { file, pos })
            }
            MysqlStart::Earliest => {
                let row: Option<mysql_async::Row> =
                    conn.query_first("SHOW BINARY LOGS").await.map_err(query)?;
                let file: String = row.and_then(|r| r.get(0)).ok_or_else(|| {
                    Error::User("mysql_cdc: the server has no binary log (log_bin is off)".into())
                })?;
                Ok(Position { file, pos: 4 })
            }
        }
    }
}

/// Refuses a server whose binary log cannot give row changes with column names, saying what to set. Answers the
/// length of the checksum its events carry.
async fn check_settings(conn: &mut mysql_async::Conn) -> Result<usize, Error> {
    let row: Option<(i64, String, String, String)> = conn
        .query_first("SELECT @@log_bin, @@binlog_format, @@binlog_row_metadata, @@binlog_checksum")
        .await
        .map_err(|e| {
            Error::External(format!(
                "mysql_cdc: reading the server's binary log settings (it needs MySQL 8.0.1 or MariaDB 10.5 \
                 and later): {e}"
            ))
        })?;
    let Some((log_bin, format, metadata, checksum)) = row else {
        return Err(Error::External(
            "mysql_cdc: the server did not say its settings".into(),
        ));
    };
    let mut wrong = Vec::new();
    if log_bin != 1 {
        wrong.push("log_bin is off (start the server with --log-bin)".to_string());
    }
    if !format.eq_ignore_ascii_case("ROW") {
        wrong.push(format!("binlog_format is {format}, not ROW"));
    }
    if !metadata.eq_ignore_ascii_case("FULL") {
        wrong.push(format!(
            "binlog_row_metadata is {metadata}, not FULL (the binary log then has no column names)"
        ));
    }
    if wrong.is_empty() {
        Ok(if checksum.eq_ignore_ascii_case("NONE") {
            0
        } else {
            4
        })
    } else {
        Err(Error::User(format!(
            "mysql_cdc: the server's binary log cannot be read for changes: {}",
            wrong.join("; ")
        )))
    }
}

/// The running `mysql_cdc` input.
pub struct MysqlCdcInput {
    stream: BinlogStream,
    /// `database.table` names to keep (empty: all).
    tables: HashSet<String>,
    /// The binary log file being read.
    file: String,
    /// Where reading may start again without losing a change: after the last transaction that ended.
    safe: Position,
    in_transaction: bool,
    /// The checksum each event ends with (4 bytes of CRC32, or none).
    checksum_len: usize,
    /// Whether the log's format description came: until it does, events are read without knowing of the
    /// checksum, which the first (artificial) rotate event's name then ends with.
    described: bool,
    checkpoint: Checkpoint,
    saved: Option<Position>,
    sent: InOrder<Position>,
}

/// How long a batch waits for more events once it has a change.
const LINGER: Duration = Duration::from_millis(5);

#[async_trait]
impl Input for MysqlCdcInput {
    async fn read(&mut self) -> Result<Option<InputBatch>, Error> {
        let mut messages = Vec::new();
        loop {
            self.save().await?;
            let event = if messages.is_empty() {
                tokio::select! {
                    e = self.stream.next() => e,
                    _ = self.sent.changed() => continue,
                }
            } else {
                match tokio::time::timeout(LINGER, self.stream.next()).await {
                    Ok(e) => e,
                    Err(_) => break,
                }
            };
            let Some(event) = event else {
                return Err(Error::External(
                    "mysql_cdc: the server ended the binary log stream".into(),
                ));
            };
            let event = event.map_err(|e| {
                Error::External(format!(
                    "mysql_cdc: reading the binary log at {}: {e}",
                    self.safe
                ))
            })?;
            let before = self.safe.clone();
            self.take(&event, &mut messages)?;
            if messages.is_empty() && self.safe != before {
                // Read past with nothing handed on (another table, a statement): confirmed with what came before.
                self.sent.skip(self.safe.clone());
            }
            if messages.len() >= READ_CHUNK {
                break;
            }
        }
        // Reading again from `safe` repeats the open transaction, if the batch ends inside one.
        let ack = self.sent.send(self.safe.clone());
        Ok(Some(InputBatch { messages, ack }))
    }

    async fn close(&mut self) -> Result<(), Error> {
        self.save().await
    }
}

impl MysqlCdcInput {
    /// Saves the position past the delivered prefix, when it moved.
    async fn save(&mut self) -> Result<(), Error> {
        let Some(p) = self.sent.delivered() else {
            return Ok(());
        };
        if self.saved.as_ref() != Some(&p) {
            self.checkpoint
                .save(&serde_json::to_value(&p).unwrap_or_default())
                .await?;
            self.saved = Some(p);
        }
        Ok(())
    }

    /// Takes one event: its changes go to `messages`; a transaction's end moves the safe position.
    fn take(
        &mut self,
        event: &mysql_async::binlog::events::Event,
        messages: &mut Vec<Message>,
    ) -> Result<(), Error> {
        let next = u64::from(event.header().log_pos());
        let data = event
            .read_data()
            .map_err(|e| Error::External(format!("mysql_cdc: a binary log event: {e}")))?;
        match data {
            Some(EventData::FormatDescriptionEvent(_)) => self.described = true,
            Some(EventData::RotateEvent(r)) => {
                let mut name = r.name_raw();
                if !self.described {
                    name = &name[..name.len().saturating_sub(self.checksum_len)];
                }
                self.file = String::from_utf8_lossy(name).into_owned();
                if !self.in_transaction {
                    self.safe = Position {
                        file: self.file.clone(),
                        pos: r.position(),
                    };
                }
            }
            Some(EventData::QueryEvent(q)) => {
                if q.query().trim().eq_ignore_ascii_case("BEGIN") {
                    self.in_transaction = true;
                } else {
                    // COMMIT, or a statement of its own (DDL): a transaction's end.
                    self.end_transaction(next);
                }
            }
            Some(EventData::XidEvent(_)) => self.end_transaction(next),
            Some(EventData::RowsEvent(rows)) => {
                let Some(tme) = self.stream.get_tme(rows.table_id()) else {
                    return Err(Error::External(format!(
                        "mysql_cdc: a row event at {}:{next} for a table the log did not map",
                        self.file
                    )));
                };
                let table = format!("{}.{}", tme.database_name(), tme.table_name());
                if !self.tables.is_empty() && !self.tables.contains(&table) {
                    return Ok(());
                }
                let op = match &rows {
                    RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => {
                        "insert"
                    }
                    RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => {
                        "delete"
                    }
                    _ => "update",
                };
                let position = format!("{}:{next}", self.file);
                for row in rows.rows(tme) {
                    let (old, new) = row.map_err(|e| {
                        Error::External(format!("mysql_cdc: a row of {table} at {position}: {e}"))
                    })?;
                    let change = json!({
                        "table": table,
                        "op": op,
                        "new": new.as_ref().map_or(Value::Null, row_json),
                        "old": old.as_ref().map_or(Value::Null, row_json),
                        "position": position,
                    });
                    let mut meta = Metadata::default();
                    meta.insert("cdc_table", &table);
                    meta.insert("cdc_op", op);
                    meta.insert("cdc_position", &position);
                    messages.push(message(change.to_string().into_bytes(), meta));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn end_transaction(&mut self, next: u64) {
        self.in_transaction = false;
        if next > 0 {
            self.safe = Position {
                file: self.file.clone(),
                pos: next,
            };
        }
    }
}

/// A row as a JSON object of its columns.
fn row_json(row: &BinlogRow) -> Value {
    let mut obj = Map::new();
    for (i, col) in row.columns_ref().iter().enumerate() {
        let v = match row.as_ref(i) {
            Some(BinlogValue::Value(v)) => value_json(v, col),
            Some(BinlogValue::Jsonb(j)) => {
                serde_json::Value::try_from(j.clone()).unwrap_or(Value::Null)
            }
            Some(BinlogValue::JsonDiff(_)) | None => Value::Null,
        };
        obj.insert(col.name_str().into_owned(), v);
    }
    Value::Object(obj)
}

/// The character set of binary strings.
const BINARY: u16 = 63;

/// A column's value: numbers as JSON numbers, dates and times as text, binary strings in base64.
fn value_json(v: &MyValue, col: &mysql_async::Column) -> Value {
    match v {
        MyValue::NULL => Value::Null,
        MyValue::Int(i) if col.flags().contains(ColumnFlags::UNSIGNED_FLAG) && *i < 0 => {
            // A value the log wrote signed, of an unsigned column.
            let bits = match col.column_type() {
                ColumnType::MYSQL_TYPE_TINY => 8,
                ColumnType::MYSQL_TYPE_SHORT => 16,
                ColumnType::MYSQL_TYPE_INT24 => 24,
                ColumnType::MYSQL_TYPE_LONG => 32,
                _ => 64,
            };
            Value::from((*i as u64) & (u64::MAX >> (64 - bits)))
        }
        MyValue::Int(i) => Value::from(*i),
        MyValue::UInt(u) => Value::from(*u),
        MyValue::Float(f) => {
            serde_json::Number::from_f64(f64::from(*f)).map_or(Value::Null, Value::Number)
        }
        MyValue::Double(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        MyValue::Bytes(b) => match col.column_type() {
            ColumnType::MYSQL_TYPE_NEWDECIMAL | ColumnType::MYSQL_TYPE_DECIMAL => {
                let text = String::from_utf8_lossy(b);
                serde_json::from_str::<serde_json::Number>(&text)
                    .map_or_else(|_| Value::from(text.into_owned()), Value::Number)
            }
            _ if col.character_set() == BINARY => {
                Value::from(base64::engine::general_purpose::STANDARD.encode(b))
            }
            _ => Value::from(String::from_utf8_lossy(b).into_owned()),
        },
        MyValue::Date(y, mo, d, h, mi, s, us) => {
            if matches!(
                col.column_type(),
                ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE
            ) {
                Value::from(format!("{y:04}-{mo:02}-{d:02}"))
            } else if *us > 0 {
                Value::from(format!(
                    "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}"
                ))
            } else {
                Value::from(format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"))
            }
        }
        MyValue::Time(neg, d, h, mi, s, us) => {
            let sign = if *neg { "-" } else { "" };
            let hours = u64::from(*d) * 24 + u64::from(*h);
            if *us > 0 {
                Value::from(format!("{sign}{hours:02}:{mi:02}:{s:02}.{us:06}"))
            } else {
                Value::from(format!("{sign}{hours:02}:{mi:02}:{s:02}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_database_dot_table_and_the_dsn_is_mysql() {
        let c: MysqlCdcInputConfig = serde_json::from_value(json!({
            "dsn": "postgres://x", "tables": ["orders", "shop.orders"], "server_id": 0
        }))
        .unwrap();
        let fields: Vec<&str> = c.problems().iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["dsn", "tables", "server_id"]);
    }

    #[test]
    fn server_ids_are_stable_and_stay_clear_of_small_ones() {
        let a = derived_server_id("input:binlog", Some("s1"));
        assert_eq!(a, derived_server_id("input:binlog", Some("s1")));
        assert_ne!(a, derived_server_id("input:binlog", Some("s2")));
        assert!(a >= 0x4000_0000);
    }
}
