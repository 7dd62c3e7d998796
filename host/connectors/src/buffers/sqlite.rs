//! `sqlite`: a persistent queue in a SQLite file. The upstream input is acknowledged once a message is durably
//! written (a transaction with `synchronous = FULL`); a record is deleted only after the output confirmed it, so a
//! stream survives `kill -9` with nothing lost (what was confirmed but not yet deleted is delivered again). Each
//! record carries a CRC-32 of its payload and metadata: a corrupt record stops the stream with its id, it is never
//! skipped silently.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use airtruct_runtime::buffers::{Pumped, now_ms, pump_read};
use airtruct_runtime::kind::{BufferKind, Check, Kind};
use airtruct_runtime::tasks::NamedTasks;
use airtruct_runtime::{
    Ack, BuildContext, Delivery, Error, Input, InputBatch, Message, StreamMetrics,
};

/// A persistent buffer in a SQLite file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SqliteBufferConfig {
    /// The SQLite file (created when missing). One stream per file.
    pub path: PathBuf,
    /// Most messages handed on at a time (default 256).
    #[serde(default = "default_read_batch")]
    pub read_batch: u32,
}

fn default_read_batch() -> u32 {
    256
}

fn checksum(payload: &[u8], metadata: &[u8]) -> i64 {
    let mut h = crc32fast::Hasher::new();
    h.update(&(payload.len() as u64).to_le_bytes());
    h.update(payload);
    h.update(metadata);
    i64::from(h.finalize())
}

impl Kind for SqliteBufferConfig {
    const NAME: &'static str = "sqlite";
    const DESCRIPTION: &'static str = "A persistent queue in a SQLite file: the input is acknowledged once a message \
         is on disk, and a stream survives kill -9 with nothing lost";
    const EXAMPLE: &'static str = r#"{"path": "buffer.db", "read_batch": 256}"#;

    fn check(&mut self, check: &mut Check<'_>) {
        check.path("path", &self.path);
    }
}

#[async_trait]
impl BufferKind for SqliteBufferConfig {
    async fn wrap(
        &self,
        input: Box<dyn Input>,
        cx: &BuildContext,
    ) -> Result<Box<dyn Input>, Error> {
        cx.check_path("sqlite buffer", &self.path)?;
        self.start(input, cx.stream_metrics.clone(), &cx.tasks)
            .await
    }

    fn acknowledges_early(&self) -> bool {
        true
    }
}

impl SqliteBufferConfig {
    /// Opens the file and starts reading `inner` into it.
    pub async fn start(
        &self,
        inner: Box<dyn Input>,
        metrics: Arc<StreamMetrics>,
        tasks: &NamedTasks,
    ) -> Result<Box<dyn Input>, Error> {
        let where_ = || format!("sqlite buffer \"{}\"", self.path.display());
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| Error::User(format!("{}: creating its directory: {e}", where_())))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(&self.path)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        // One connection: with a second one, the reader's deletes wait on the pump's write locks (measured: 30x
        // slower).
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|e| Error::User(format!("{}: {e}", where_())))?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS records (id INTEGER PRIMARY KEY AUTOINCREMENT, payload BLOB NOT NULL, \
             metadata BLOB NOT NULL, checksum INTEGER NOT NULL, written_at INTEGER NOT NULL)",
        )
        .execute(&pool)
        .await
        .map_err(|e| Error::User(format!("{}: {e}", where_())))?;
        let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM records")
            .fetch_one(&pool)
            .await
            .map_err(|e| Error::User(format!("{}: {e}", where_())))?;
        metrics.set_buffer(held as u64, 0);
        let stop = CancellationToken::new();
        let pump = tasks.spawn(
            "pump",
            pump(inner, pool.clone(), stop.clone(), where_(), metrics.clone()),
        );
        Ok(Box::new(SqliteBuffer {
            pool,
            metrics,
            oldest_checked: None,
            name: where_(),
            read_batch: self.read_batch.max(1),
            cursor: 0,
            shared: Arc::new(Mutex::new(Shared::default())),
            pump: Some(pump),
            pump_result: None,
            stop,
        }))
    }
}

/// Reads the upstream input into the file, acknowledging each batch once it is committed.
async fn pump(
    mut inner: Box<dyn Input>,
    pool: SqlitePool,
    stop: CancellationToken,
    name: String,
    metrics: Arc<StreamMetrics>,
) -> Result<bool, Error> {
    let result = loop {
        match pump_read(inner.as_mut(), &stop).await {
            Ok(Pumped::Batch(batch)) => {
                if let Err(e) = write(&pool, &batch.messages).await {
                    break Err(Error::External(format!("{name}: writing: {e}")));
                }
                StreamMetrics::add(&metrics.buffer_depth, batch.messages.len() as u64);
                batch.ack.done(Delivery::Delivered);
            }
            Ok(Pumped::Exhausted) => break Ok(true),
            Ok(Pumped::Stopped) => break Ok(false),
            Err(e) => break Err(e),
        }
    };
    let closed = inner.close().await;
    result.and_then(|exhausted| closed.map(|()| exhausted))
}

async fn write(pool: &SqlitePool, messages: &[Message]) -> Result<(), sqlx::Error> {
    let now = now_ms() as i64;
    let mut tx = pool.begin().await?;
    for m in messages {
        sqlx::query(
            "INSERT INTO records (payload, metadata, checksum, written_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&m.payload)
        .bind(&m.metadata)
        .bind(checksum(&m.payload, &m.metadata))
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

#[derive(Default)]
struct Shared {
    /// Id ranges the output confirmed, to delete, with how many records each holds.
    confirmed: Vec<(i64, i64, u64)>,
    /// The smallest id handed on and not delivered: read again from there.
    rewind: Option<i64>,
}

struct SqliteBuffer {
    pool: SqlitePool,
    metrics: Arc<StreamMetrics>,
    /// When the age of the oldest record was last read.
    oldest_checked: Option<std::time::Instant>,
    name: String,
    read_batch: u32,
    cursor: i64,
    shared: Arc<Mutex<Shared>>,
    pump: Option<JoinHandle<Result<bool, Error>>>,
    pump_result: Option<Result<bool, Error>>,
    stop: CancellationToken,
}

impl SqliteBuffer {
    async fn delete_confirmed(&self) -> Result<(), Error> {
        let ranges = std::mem::take(&mut self.shared.lock().expect("buffer lock").confirmed);
        for (first, last, count) in ranges {
            sqlx::query("DELETE FROM records WHERE id >= $1 AND id <= $2")
                .bind(first)
                .bind(last)
                .execute(&self.pool)
                .await
                .map_err(|e| {
                    Error::External(format!("{}: deleting delivered records: {e}", self.name))
                })?;
            let _ = self.metrics.buffer_depth.fetch_update(
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
                |d| Some(d.saturating_sub(count)),
            );
        }
        Ok(())
    }

    /// Updates the age gauge of the oldest record, at most twice a second.
    async fn check_oldest(&mut self) -> Result<(), Error> {
        if self
            .oldest_checked
            .is_some_and(|t| t.elapsed() < Duration::from_millis(500))
        {
            return Ok(());
        }
        self.oldest_checked = Some(std::time::Instant::now());
        let oldest: Option<i64> =
            sqlx::query_scalar("SELECT written_at FROM records ORDER BY id LIMIT 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| Error::External(format!("{}: reading: {e}", self.name)))?;
        self.metrics.buffer_oldest_at_ms.store(
            oldest.map_or(0, |t| t.max(1) as u64),
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(())
    }
}

#[async_trait]
impl Input for SqliteBuffer {
    async fn read(&mut self) -> Result<Option<InputBatch>, Error> {
        loop {
            self.delete_confirmed().await?;
            self.check_oldest().await?;
            if let Some(from) = self.shared.lock().expect("buffer lock").rewind.take() {
                self.cursor = self.cursor.min(from);
            }
            let rows = sqlx::query(
                "SELECT id, payload, metadata, checksum FROM records WHERE id >= $1 ORDER BY id LIMIT $2",
            )
            .bind(self.cursor)
            .bind(i64::from(self.read_batch))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| Error::External(format!("{}: reading: {e}", self.name)))?;
            if let Some(last) = rows.last() {
                let first: i64 = rows[0].get("id");
                let last: i64 = last.get("id");
                let count = rows.len() as u64;
                let mut messages = Vec::with_capacity(rows.len());
                for row in &rows {
                    let id: i64 = row.get("id");
                    let payload: Vec<u8> = row.get("payload");
                    let metadata: Vec<u8> = row.get("metadata");
                    if checksum(&payload, &metadata) != row.get::<i64, _>("checksum") {
                        return Err(Error::Internal(format!(
                            "{}: record {id} is corrupt (its checksum does not match); the stream stops so \
                             that nothing is skipped: delete or repair the record to go on",
                            self.name
                        )));
                    }
                    messages.push(Message {
                        payload,
                        metadata,
                        error: None,
                    });
                }
                self.cursor = last + 1;
                let shared = self.shared.clone();
                let ack = Ack::new(move |d| {
                    let mut s = shared.lock().expect("buffer lock");
                    match d {
                        Delivery::Delivered => s.confirmed.push((first, last, count)),
                        Delivery::NotDelivered => {
                            s.rewind = Some(s.rewind.map_or(first, |r| r.min(first)))
                        }
                    }
                });
                return Ok(Some(InputBatch { messages, ack }));
            }
            // Nothing buffered: done when the upstream input is exhausted, else wait for more.
            if let Some(pump) = self.pump.as_mut().filter(|p| p.is_finished()) {
                let result = pump
                    .await
                    .unwrap_or_else(|e| Err(Error::Internal(format!("buffer pump: {e}"))));
                self.pump = None;
                self.pump_result = Some(result);
            }
            match &self.pump_result {
                Some(Ok(true)) => return Ok(None),
                // Final for this run: the pump and its input are gone.
                Some(Err(e)) => return Err(Error::User(format!("the sqlite buffer stopped: {e}"))),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    async fn close(&mut self) -> Result<(), Error> {
        self.stop.cancel();
        if let Some(pump) = self.pump.take() {
            let result = pump
                .await
                .unwrap_or_else(|e| Err(Error::Internal(format!("buffer pump: {e}"))));
            self.pump_result = Some(result);
        }
        self.delete_confirmed().await?;
        self.pool.close().await;
        match self.pump_result.take() {
            Some(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An input that yields its messages once, then ends.
    struct Fixed(Option<Vec<Message>>);

    #[async_trait]
    impl Input for Fixed {
        async fn read(&mut self) -> Result<Option<InputBatch>, Error> {
            Ok(self.0.take().map(|messages| InputBatch {
                messages,
                ack: Ack::none(),
            }))
        }
    }

    fn msg(p: &str) -> Message {
        airtruct_runtime::message(p.as_bytes().to_vec(), Default::default())
    }

    #[tokio::test]
    async fn keeps_unconfirmed_records_and_reports_a_corrupt_one() {
        let dir = tempfile::tempdir().unwrap();
        let config = SqliteBufferConfig {
            path: dir.path().join("b.db"),
            read_batch: 2,
        };
        let mut buffer = config
            .start(
                Box::new(Fixed(Some(vec![msg("a"), msg("b"), msg("c")]))),
                Default::default(),
                &airtruct_runtime::Tasks::default().named("test"),
            )
            .await
            .unwrap();
        // Two batches; only the first is confirmed.
        let first = buffer.read().await.unwrap().unwrap();
        assert_eq!(first.messages.len(), 2);
        first.ack.done(Delivery::Delivered);
        let second = buffer.read().await.unwrap().unwrap();
        assert_eq!(second.messages[0].payload, b"c");
        second.ack.done(Delivery::NotDelivered);
        // Not delivered: read again.
        let again = buffer.read().await.unwrap().unwrap();
        assert_eq!(again.messages[0].payload, b"c");
        drop(again); // dropped: not delivered
        buffer.close().await.unwrap();

        // A restart finds only the unconfirmed record; then a corrupted record stops the stream with its id.
        let mut buffer = config
            .start(
                Box::new(Fixed(None)),
                Default::default(),
                &airtruct_runtime::Tasks::default().named("test"),
            )
            .await
            .unwrap();
        let left = buffer.read().await.unwrap().unwrap();
        assert_eq!(left.messages.len(), 1);
        assert_eq!(left.messages[0].payload, b"c");
        drop(left);
        buffer.close().await.unwrap();
        let pool = SqlitePool::connect(&format!("sqlite://{}", config.path.display()))
            .await
            .unwrap();
        sqlx::query("UPDATE records SET payload = x'7a'")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let mut buffer = config
            .start(
                Box::new(Fixed(None)),
                Default::default(),
                &airtruct_runtime::Tasks::default().named("test"),
            )
            .await
            .unwrap();
        let err = buffer.read().await.err().unwrap();
        assert!(err.to_string().contains("is corrupt"), "{err}");
        assert!(err.to_string().contains("record 3"), "{err}");
    }
}
