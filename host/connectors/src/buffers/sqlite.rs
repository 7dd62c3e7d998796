//! `sqlite`: a persistent queue in a SQLite file. The upstream input is acknowledged once a message is durably
//! written; a record is deleted only after the output confirmed it, so a stream survives `kill -9` with nothing
//! lost (what was confirmed but not yet deleted is delivered again). Each record carries a CRC-32 of its payload
//! and metadata: a corrupt record stops the stream with its id, it is never skipped silently.
//!
//! Writes are group commits: a task reads the input ahead into a channel, and the writer commits whatever batches
//! are waiting there in one transaction (one sync of the file for many batches), with the deletes of delivered
//! records folded into it. Deletes wait a little for a write to ride along with, and go alone when none comes.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteConnection, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use airtruct_runtime::buffers::{now_ms, pump_into};
use airtruct_runtime::kind::{BufferKind, Check, Kind};
use airtruct_runtime::tasks::NamedTasks;
use airtruct_runtime::{
    Ack, BuildContext, Delivery, Error, Input, InputBatch, Message, StreamMetrics,
};

/// Batches read ahead of the writer.
const READ_AHEAD: usize = 64;
/// Most messages one transaction writes.
const GROUP_MESSAGES: usize = 16_384;
/// Rows per INSERT statement.
const ROWS_PER_INSERT: usize = 128;
/// How long deletes wait for a write to be folded into.
const FOLD_WAIT: Duration = Duration::from_millis(20);

/// When a commit counts as written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Synchronous {
    /// On the disk (SQLite `synchronous = FULL`, a sync per commit): nothing acknowledged is lost to `kill -9`,
    /// an operating system crash or a power cut.
    #[default]
    Full,
    /// Handed to the operating system (SQLite `synchronous = NORMAL` in WAL mode; the disk is synced at
    /// checkpoints): nothing acknowledged is lost to `kill -9` of the process, but an operating system crash or
    /// a power cut may take the last commits.
    Normal,
}

/// A persistent buffer in a SQLite file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SqliteBufferConfig {
    /// The SQLite file (created when missing). One stream per file.
    pub path: PathBuf,
    /// When a message counts as written, and so when the input is acknowledged: `full` (on the disk; the
    /// default) or `normal` (handed to the operating system: survives `kill -9`, not a power cut).
    #[serde(default)]
    pub synchronous: Synchronous,
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
    const EXAMPLE: &'static str =
        r#"{"path": "buffer.db", "synchronous": "full", "read_batch": 256}"#;

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
            .synchronous(match self.synchronous {
                Synchronous::Full => SqliteSynchronous::Full,
                Synchronous::Normal => SqliteSynchronous::Normal,
            });
        // Two connections: the writer's (inserts, and the deletes folded into them) and the reader's. In WAL mode
        // a reader does not wait for a writer's transaction, so the processors are fed while a group commits.
        let connect = |options: SqliteConnectOptions| async move {
            SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .map_err(|e| Error::User(format!("{}: {e}", where_())))
        };
        let pool = connect(options.clone()).await?;
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
        let reads = connect(options).await?;
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::channel(READ_AHEAD);
        let reader = tasks.spawn("pump", pump_into(inner, tx, stop.clone()));
        let writer = tasks.spawn(
            "writer",
            write_ahead(
                reader,
                rx,
                pool.clone(),
                shared.clone(),
                where_(),
                metrics.clone(),
            ),
        );
        Ok(Box::new(SqliteBuffer {
            pool,
            reads,
            metrics,
            oldest_checked: None,
            name: where_(),
            read_batch: self.read_batch.max(1),
            cursor: 0,
            shared,
            pump: Some(writer),
            pump_result: None,
            stop,
        }))
    }
}

/// Writes what the input read ahead, many batches per transaction, acknowledging each batch once it is
/// committed; folds in the deletes of delivered records. Ends with the reader: `Ok(true)` once the input was
/// exhausted and everything it gave is written.
async fn write_ahead(
    reader: JoinHandle<Result<bool, Error>>,
    mut rx: mpsc::Receiver<InputBatch>,
    pool: SqlitePool,
    shared: Arc<Shared>,
    name: String,
    metrics: Arc<StreamMetrics>,
) -> Result<bool, Error> {
    let mut open = true;
    while open {
        let mut batches = Vec::new();
        tokio::select! {
            b = rx.recv() => match b {
                Some(b) => batches.push(b),
                None => open = false,
            },
            _ = shared.confirmed_some.notified() => {
                tokio::select! {
                    b = rx.recv() => match b {
                        Some(b) => batches.push(b),
                        None => open = false,
                    },
                    _ = tokio::time::sleep(FOLD_WAIT) => {}
                }
            }
        }
        let mut n: usize = batches.iter().map(|b| b.messages.len()).sum();
        while open && n < GROUP_MESSAGES {
            match rx.try_recv() {
                Ok(b) => {
                    n += b.messages.len();
                    batches.push(b);
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => open = false,
            }
        }
        let confirmed = shared.take_confirmed();
        if batches.is_empty() && confirmed.is_empty() {
            continue;
        }
        let (messages, acks): (Vec<Vec<Message>>, Vec<Ack>) =
            batches.into_iter().map(|b| (b.messages, b.ack)).unzip();
        if let Err(e) = commit(&pool, &messages, &confirmed).await {
            // What was confirmed is deleted by a later run: it is delivered again, never lost.
            return Err(Error::External(format!("{name}: writing: {e}")));
        }
        StreamMetrics::add(&metrics.buffer_depth, n as u64);
        let deleted: u64 = confirmed.iter().map(|&(_, _, count)| count).sum();
        let _ = metrics.buffer_depth.fetch_update(
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
            |d| Some(d.saturating_sub(deleted)),
        );
        for ack in acks {
            ack.done(Delivery::Delivered);
        }
        shared.written.notify_one();
    }
    let result = reader
        .await
        .unwrap_or_else(|e| Err(Error::Internal(format!("buffer pump: {e}"))));
    shared.written.notify_one();
    result
}

/// One transaction: the deletes of `confirmed` id ranges, then every message of `batches`.
async fn commit(
    pool: &SqlitePool,
    batches: &[Vec<Message>],
    confirmed: &[(i64, i64, u64)],
) -> Result<(), sqlx::Error> {
    let now = now_ms() as i64;
    let mut tx = pool.begin().await?;
    for &(first, last, _) in confirmed {
        sqlx::query("DELETE FROM records WHERE id >= $1 AND id <= $2")
            .bind(first)
            .bind(last)
            .execute(&mut *tx)
            .await?;
    }
    let mut rows: Vec<&Message> = Vec::with_capacity(ROWS_PER_INSERT);
    for m in batches.iter().flatten() {
        rows.push(m);
        if rows.len() == ROWS_PER_INSERT {
            insert(&mut tx, &rows, now).await?;
            rows.clear();
        }
    }
    if !rows.is_empty() {
        insert(&mut tx, &rows, now).await?;
    }
    tx.commit().await
}

/// One multi-row INSERT: a statement per row cost a round trip to SQLite's thread each.
async fn insert(
    conn: &mut SqliteConnection,
    rows: &[&Message],
    now: i64,
) -> Result<(), sqlx::Error> {
    let mut q = QueryBuilder::<Sqlite>::new(
        "INSERT INTO records (payload, metadata, checksum, written_at) ",
    );
    q.push_values(rows, |mut b, m| {
        b.push_bind(m.payload.clone())
            .push_bind(m.metadata.clone())
            .push_bind(checksum(&m.payload, &m.metadata))
            .push_bind(now);
    });
    q.build().execute(conn).await?;
    Ok(())
}

/// What the reader and the writer share.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Ranges were confirmed: the writer deletes them.
    confirmed_some: Notify,
    /// A commit landed, or the writer ended.
    written: Notify,
}

#[derive(Default)]
struct State {
    /// Id ranges the output confirmed, to delete, with how many records each holds.
    confirmed: Vec<(i64, i64, u64)>,
    /// The smallest id handed on and not delivered: read again from there.
    rewind: Option<i64>,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("buffer lock")
    }

    fn take_confirmed(&self) -> Vec<(i64, i64, u64)> {
        std::mem::take(&mut self.state().confirmed)
    }
}

struct SqliteBuffer {
    /// The writer's connection (deletes go through it once the writer has ended).
    pool: SqlitePool,
    /// The reader's connection.
    reads: SqlitePool,
    metrics: Arc<StreamMetrics>,
    /// When the age of the oldest record was last read.
    oldest_checked: Option<std::time::Instant>,
    name: String,
    read_batch: u32,
    cursor: i64,
    shared: Arc<Shared>,
    /// The writer, which ends with the reader of the upstream input.
    pump: Option<JoinHandle<Result<bool, Error>>>,
    pump_result: Option<Result<bool, Error>>,
    stop: CancellationToken,
}

impl SqliteBuffer {
    /// Deletes what was confirmed, once the writer (which otherwise does it) has ended.
    async fn delete_confirmed(&self) -> Result<(), Error> {
        let ranges = self.shared.take_confirmed();
        if ranges.is_empty() {
            return Ok(());
        }
        commit(&self.pool, &[], &ranges).await.map_err(|e| {
            Error::External(format!("{}: deleting delivered records: {e}", self.name))
        })?;
        let deleted: u64 = ranges.iter().map(|&(_, _, count)| count).sum();
        let _ = self.metrics.buffer_depth.fetch_update(
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
            |d| Some(d.saturating_sub(deleted)),
        );
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
                .fetch_optional(&self.reads)
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
            if self.pump.is_none() {
                self.delete_confirmed().await?;
            }
            self.check_oldest().await?;
            if let Some(from) = self.shared.state().rewind.take() {
                self.cursor = self.cursor.min(from);
            }
            let rows = sqlx::query(
                "SELECT id, payload, metadata, checksum FROM records WHERE id >= $1 ORDER BY id LIMIT $2",
            )
            .bind(self.cursor)
            .bind(i64::from(self.read_batch))
            .fetch_all(&self.reads)
            .await
            .map_err(|e| Error::External(format!("{}: reading: {e}", self.name)))?;
            if let Some(last) = rows.last() {
                let first: i64 = rows[0].get(0);
                let last: i64 = last.get(0);
                let count = rows.len() as u64;
                let mut messages = Vec::with_capacity(rows.len());
                for row in &rows {
                    let id: i64 = row.get(0);
                    let payload: Vec<u8> = row.get(1);
                    let metadata: Vec<u8> = row.get(2);
                    if checksum(&payload, &metadata) != row.get::<i64, _>(3) {
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
                    let mut s = shared.state();
                    match d {
                        Delivery::Delivered => {
                            s.confirmed.push((first, last, count));
                            drop(s);
                            shared.confirmed_some.notify_one();
                        }
                        Delivery::NotDelivered => {
                            s.rewind = Some(s.rewind.map_or(first, |r| r.min(first)))
                        }
                    }
                });
                return Ok(Some(InputBatch { messages, ack }));
            }
            // Nothing buffered: done when the upstream input is exhausted, else wait for the next commit.
            if let Some(pump) = self.pump.as_mut().filter(|p| p.is_finished()) {
                let result = pump
                    .await
                    .unwrap_or_else(|e| Err(Error::Internal(format!("buffer pump: {e}"))));
                self.pump = None;
                self.pump_result = Some(result);
                // It may have committed after the read above: read once more before ending.
                continue;
            }
            match &self.pump_result {
                Some(Ok(true)) => return Ok(None),
                // Final for this run: the pump and its input are gone.
                Some(Err(e)) => return Err(Error::User(format!("the sqlite buffer stopped: {e}"))),
                _ => {
                    tokio::select! {
                        _ = self.shared.written.notified() => {}
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
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
        self.reads.close().await;
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

    /// An input that yields `batches` batches of `size` messages as fast as it is read, counting the batches
    /// acknowledged as delivered.
    struct Many {
        next: u64,
        batches: u64,
        size: u64,
        acked: Arc<std::sync::atomic::AtomicU64>,
    }

    #[async_trait]
    impl Input for Many {
        async fn read(&mut self) -> Result<Option<InputBatch>, Error> {
            if self.next == self.batches * self.size {
                return Ok(None);
            }
            let messages = (self.next..self.next + self.size)
                .map(|i| msg(&i.to_string()))
                .collect();
            self.next += self.size;
            let acked = self.acked.clone();
            Ok(Some(InputBatch {
                messages,
                ack: Ack::new(move |d| {
                    if d == Delivery::Delivered {
                        acked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }),
            }))
        }
    }

    #[tokio::test]
    async fn commits_many_batches_together_and_deletes_what_was_delivered() {
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().unwrap();
        let config: SqliteBufferConfig = serde_json::from_value(serde_json::json!({
            "path": dir.path().join("b.db"), "synchronous": "normal", "read_batch": 100
        }))
        .unwrap();
        assert_eq!(config.synchronous, Synchronous::Normal);
        let acked = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let metrics = Arc::new(StreamMetrics::default());
        let mut buffer = config
            .start(
                Box::new(Many {
                    next: 0,
                    batches: 500,
                    size: 7,
                    acked: acked.clone(),
                }),
                metrics.clone(),
                &airtruct_runtime::Tasks::default().named("test"),
            )
            .await
            .unwrap();
        // Everything comes out once, in order, in batches of up to read_batch; each is delivered.
        let mut seen = 0u64;
        while let Some(batch) = buffer.read().await.unwrap() {
            assert!(batch.messages.len() <= 100);
            for m in &batch.messages {
                assert_eq!(m.payload, seen.to_string().as_bytes());
                seen += 1;
            }
            batch.ack.done(Delivery::Delivered);
        }
        assert_eq!(seen, 3500);
        // Every upstream batch was acknowledged once written, and the delivered records are gone.
        assert_eq!(acked.load(Ordering::Relaxed), 500);
        buffer.close().await.unwrap();
        assert_eq!(metrics.buffer_depth.load(Ordering::Relaxed), 0);
        let pool = SqlitePool::connect(&format!("sqlite://{}", config.path.display()))
            .await
            .unwrap();
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM records")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(left, 0);
        pool.close().await;
    }

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
            synchronous: Synchronous::Full,
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
