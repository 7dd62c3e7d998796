//! `redis` input, one of three ways:
//! - `stream`: Redis streams read in a consumer group. Entries are acknowledged (`XACK`) only once the output
//!   confirmed them; the entries another consumer left pending (a worker killed mid-batch) are claimed again
//!   (`XAUTOCLAIM`) once they were idle for `claim_after`. Replicas of a stream share the group.
//! - `list`: a list as a reliable queue. Each item is moved (`LMOVE`) to a processing list and removed from it
//!   once delivered; at start, what the processing list holds (left by a stream that stopped mid-batch) goes back
//!   to the head of the queue.
//! - `pubsub`: channels and patterns. Redis keeps nothing for a subscriber that is away: what is published while
//!   the stream is down is lost, by Redis's design.
//!
//! Metadata: `redis_key` (stream or list), `redis_id` (stream entry), every other field of a stream entry by its
//! name, `redis_channel` (pub/sub).

use ::redis::aio::MultiplexedConnection;
use ::redis::streams::{StreamAutoClaimReply, StreamReadReply};
use ::redis::{AsyncCommands, Value as RedisValue};
use async_trait::async_trait;
use futures_util::StreamExt;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::acks::AckTask;
use crate::inputs::READ_CHUNK;
use crate::inputs::kafka::StartFrom;
use crate::redis::{CREDENTIALS, check_one_way, check_url, client, connect, external};
use airtruct_runtime::kind::{Check, InputKind, Kind};
use airtruct_runtime::{Ack, BuildContext, Error, Input, InputBatch, Metadata, message};

/// Streams read in a consumer group.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RedisStreamInput {
    /// The stream keys.
    pub keys: Vec<String>,
    /// The consumer group (created when missing); replicas share it.
    pub group: String,
    /// Where a new group starts (default `earliest`).
    #[serde(default)]
    pub start_from: StartFrom,
    /// The field that holds the payload (default `body`); the others become metadata.
    #[serde(default = "default_body_key")]
    pub body_key: String,
    /// How long an entry may stay unacknowledged by its consumer before another one takes it (default `30s`).
    #[serde(default = "default_claim_after")]
    pub claim_after: airtruct_model::Duration,
}

/// A list read as a reliable queue.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RedisListInput {
    /// The list; items are taken from its head (push with `RPUSH`).
    pub key: String,
    /// Where items wait for their delivery (default `<key>:processing`).
    #[serde(default)]
    pub processing_key: Option<String>,
}

/// Channels subscribed to.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RedisPubsubInput {
    #[serde(default)]
    pub channels: Vec<String>,
    /// Glob patterns (`orders.*`).
    #[serde(default)]
    pub patterns: Vec<String>,
}

pub fn default_body_key() -> String {
    "body".to_string()
}

fn default_claim_after() -> airtruct_model::Duration {
    airtruct_model::Duration(std::time::Duration::from_secs(30))
}

/// Reads Redis streams, a list or channels.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct RedisInputConfig {
    /// `redis://[user:password@]host:6379[/db]`; write the password as `${secret:NAME}`.
    pub url: String,
    /// Read streams in a consumer group.
    #[serde(default)]
    pub stream: Option<RedisStreamInput>,
    /// Read a list as a queue.
    #[serde(default)]
    pub list: Option<RedisListInput>,
    /// Subscribe to channels (at most once: nothing is kept while the stream is down).
    #[serde(default)]
    pub pubsub: Option<RedisPubsubInput>,
}

impl Kind for RedisInputConfig {
    const NAME: &'static str = "redis";
    const DESCRIPTION: &'static str = "Reads Redis streams in a consumer group (acknowledged once delivered), a \
         list as a reliable queue, or pub/sub channels";
    const EXAMPLE: &'static str = r#"{"url": "redis://127.0.0.1:6379",
        "stream": {"keys": ["orders"], "group": "airtruct", "claim_after": "30s"}}"#;
    const CREDENTIALS: &'static [&'static str] = CREDENTIALS;

    fn check(&mut self, check: &mut Check<'_>) {
        check_url(check, &self.url);
        check_one_way(
            check,
            &[
                ("stream", self.stream.is_some()),
                ("list", self.list.is_some()),
                ("pubsub", self.pubsub.is_some()),
            ],
        );
        if let Some(s) = &self.stream {
            if s.keys.is_empty() || s.keys.iter().any(|k| k.is_empty()) {
                check.problem("stream.keys", "at least one key, none empty");
            }
            if s.group.is_empty() {
                check.problem("stream.group", "must not be empty");
            }
            if s.claim_after.0.is_zero() {
                check.problem("stream.claim_after", "must be more than 0");
            }
        }
        if let Some(l) = &self.list
            && l.key.is_empty()
        {
            check.problem("list.key", "must not be empty");
        }
        if let Some(p) = &self.pubsub
            && p.channels.is_empty()
            && p.patterns.is_empty()
        {
            check.problem("pubsub", "at least one channel or pattern");
        }
    }
}

#[async_trait]
impl InputKind for RedisInputConfig {
    async fn build(&self, cx: &BuildContext) -> Result<Box<dyn Input>, Error> {
        let client = client(cx, &self.url).await?;
        if let Some(s) = &self.stream {
            return Ok(Box::new(StreamInput::open(cx, &client, s).await?));
        }
        if let Some(l) = &self.list {
            return Ok(Box::new(ListInput::open(cx, &client, l).await?));
        }
        let p = self
            .pubsub
            .as_ref()
            .ok_or_else(|| Error::User("redis: one of stream, list and pubsub".into()))?;
        let mut pubsub = client
            .get_async_pubsub()
            .await
            .map_err(external("subscribing"))?;
        for c in &p.channels {
            pubsub.subscribe(c).await.map_err(external("subscribing"))?;
        }
        for c in &p.patterns {
            pubsub
                .psubscribe(c)
                .await
                .map_err(external("subscribing"))?;
        }
        Ok(Box::new(PubsubInput {
            messages: pubsub.into_on_message(),
        }))
    }
}

/// How long a blocking read waits before the input looks at its acknowledgements again.
const BLOCK_MS: usize = 500;

/// Acknowledges delivered stream entries, a pipeline of `XACK`s per batch.
fn stream_acks(
    cx: &BuildContext,
    conn: MultiplexedConnection,
    group: String,
) -> AckTask<(String, String)> {
    AckTask::spawn(cx, move |ids: Vec<(String, String)>| {
        let (mut conn, group) = (conn.clone(), group.clone());
        async move {
            let mut pipe = ::redis::pipe();
            for (key, id) in &ids {
                pipe.xack(key, &group, &[id]).ignore();
            }
            let sent: Result<(), _> = pipe.query_async(&mut conn).await;
            sent.map_err(external("acknowledging"))
        }
    })
}

/// Removes delivered items from the processing list, a pipeline of `LREM`s per batch.
fn list_acks(
    cx: &BuildContext,
    conn: MultiplexedConnection,
    processing: String,
) -> AckTask<Vec<u8>> {
    AckTask::spawn(cx, move |items: Vec<Vec<u8>>| {
        let (mut conn, processing) = (conn.clone(), processing.clone());
        async move {
            let mut pipe = ::redis::pipe();
            for item in &items {
                pipe.lrem(&processing, 1, item).ignore();
            }
            let sent: Result<(), _> = pipe.query_async(&mut conn).await;
            sent.map_err(external("acknowledging"))
        }
    })
}

fn bytes_of(v: &RedisValue) -> Option<&[u8]> {
    match v {
        RedisValue::BulkString(b) => Some(b),
        RedisValue::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// The running `redis` input on streams.
pub struct StreamInput {
    config: RedisStreamInput,
    /// For blocking reads.
    reads: MultiplexedConnection,
    /// For acknowledgements and claims.
    conn: MultiplexedConnection,
    consumer: String,
    /// `XACK`s the (key, id) of delivered entries.
    acks: AckTask<(String, String)>,
    /// When the next look for entries other consumers left idle is due.
    next_claim: tokio::time::Instant,
}

impl StreamInput {
    async fn open(
        cx: &BuildContext,
        client: &::redis::Client,
        config: &RedisStreamInput,
    ) -> Result<Self, Error> {
        let mut conn = connect(client).await?;
        let start = match config.start_from {
            StartFrom::Earliest => "0",
            StartFrom::Latest => "$",
        };
        for key in &config.keys {
            let created: Result<(), _> = ::redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(key)
                .arg(&config.group)
                .arg(start)
                .arg("MKSTREAM")
                .query_async(&mut conn)
                .await;
            if let Err(e) = created
                && e.code() != Some("BUSYGROUP")
            {
                return Err(external("creating the consumer group")(e));
            }
        }
        Ok(Self {
            config: config.clone(),
            reads: connect(client).await?,
            acks: stream_acks(cx, conn.clone(), config.group.clone()),
            conn,
            consumer: format!("airtruct-{:016x}", rand_u64()),
            next_claim: tokio::time::Instant::now(),
        })
    }

    fn to_message(&self, key: &str, id: &::redis::streams::StreamId) -> airtruct_runtime::Message {
        let mut meta = Metadata::default();
        meta.insert("redis_key", key);
        meta.insert("redis_id", &id.id);
        let mut payload = Vec::new();
        for (field, v) in &id.map {
            let Some(b) = bytes_of(v) else { continue };
            if *field == self.config.body_key {
                payload = b.to_vec();
            } else {
                meta.insert(field, &String::from_utf8_lossy(b));
            }
        }
        message(payload, meta)
    }

    /// Entries other consumers left idle past `claim_after`, taken over.
    async fn claim(&mut self) -> Result<Vec<(String, ::redis::streams::StreamId)>, Error> {
        let mut out = Vec::new();
        let idle = self.config.claim_after.0.as_millis() as u64;
        for key in self.config.keys.clone() {
            let mut cursor = "0-0".to_string();
            loop {
                let reply: StreamAutoClaimReply = ::redis::cmd("XAUTOCLAIM")
                    .arg(&key)
                    .arg(&self.config.group)
                    .arg(&self.consumer)
                    .arg(idle)
                    .arg(&cursor)
                    .arg("COUNT")
                    .arg(READ_CHUNK)
                    .query_async(&mut self.conn)
                    .await
                    .map_err(external("claiming idle entries"))?;
                out.extend(reply.claimed.into_iter().map(|id| (key.clone(), id)));
                cursor = reply.next_stream_id;
                if cursor == "0-0" || out.len() >= READ_CHUNK {
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// A random number for a consumer's name (no two runs share one).
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

#[async_trait]
impl Input for StreamInput {
    async fn read(&mut self) -> Result<Option<InputBatch>, Error> {
        loop {
            let mut entries = Vec::new();
            if tokio::time::Instant::now() >= self.next_claim {
                entries = self.claim().await?;
                self.next_claim = tokio::time::Instant::now() + self.config.claim_after.0 / 2;
            }
            if entries.is_empty() {
                let opts = ::redis::streams::StreamReadOptions::default()
                    .group(&self.config.group, &self.consumer)
                    .count(READ_CHUNK)
                    .block(BLOCK_MS);
                let ids: Vec<&str> = self.config.keys.iter().map(|_| ">").collect();
                let reply: Option<StreamReadReply> = self
                    .reads
                    .xread_options(&self.config.keys, &ids, &opts)
                    .await
                    .map_err(external("reading"))?;
                for k in reply.map(|r| r.keys).unwrap_or_default() {
                    entries.extend(k.ids.into_iter().map(|id| (k.key.clone(), id)));
                }
            }
            if entries.is_empty() {
                continue;
            }
            let messages = entries
                .iter()
                .map(|(key, id)| self.to_message(key, id))
                .collect();
            let ids = entries.into_iter().map(|(key, id)| (key, id.id)).collect();
            return Ok(Some(InputBatch {
                messages,
                ack: self.acks.ack(ids),
            }));
        }
    }

    async fn close(&mut self) -> Result<(), Error> {
        self.acks.close().await
    }
}

/// The running `redis` input on a list.
pub struct ListInput {
    key: String,
    processing: String,
    reads: MultiplexedConnection,
    /// `LREM`s delivered items from the processing list.
    acks: AckTask<Vec<u8>>,
}

impl ListInput {
    async fn open(
        cx: &BuildContext,
        client: &::redis::Client,
        config: &RedisListInput,
    ) -> Result<Self, Error> {
        let mut conn = connect(client).await?;
        let processing = config
            .processing_key
            .clone()
            .unwrap_or_else(|| format!("{}:processing", config.key));
        // What a stopped run left in flight goes back to the head of the queue, oldest first.
        let mut back = 0u64;
        loop {
            let moved: Option<Vec<u8>> = ::redis::cmd("LMOVE")
                .arg(&processing)
                .arg(&config.key)
                .arg("RIGHT")
                .arg("LEFT")
                .query_async(&mut conn)
                .await
                .map_err(external("requeueing"))?;
            if moved.is_none() {
                break;
            }
            back += 1;
        }
        if back > 0 {
            tracing::info!(key = %config.key, items = back, "redis: requeued items a stopped run left in flight");
        }
        Ok(Self {
            key: config.key.clone(),
            acks: list_acks(cx, conn, processing.clone()),
            processing,
            reads: connect(client).await?,
        })
    }
}

#[async_trait]
impl Input for ListInput {
    async fn read(&mut self) -> Result<Option<InputBatch>, Error> {
        loop {
            let first: Option<Vec<u8>> = ::redis::cmd("BLMOVE")
                .arg(&self.key)
                .arg(&self.processing)
                .arg("LEFT")
                .arg("RIGHT")
                .arg(BLOCK_MS as f64 / 1000.0)
                .query_async(&mut self.reads)
                .await
                .map_err(external("reading"))?;
            let Some(first) = first else { continue };
            let mut items = vec![first];
            // More that are there already, in one round trip.
            let mut pipe = ::redis::pipe();
            for _ in 1..READ_CHUNK {
                pipe.cmd("LMOVE")
                    .arg(&self.key)
                    .arg(&self.processing)
                    .arg("LEFT")
                    .arg("RIGHT");
            }
            let more: Vec<Option<Vec<u8>>> = pipe
                .query_async(&mut self.reads)
                .await
                .map_err(external("reading"))?;
            items.extend(more.into_iter().flatten());
            let messages = items
                .iter()
                .map(|p| {
                    let mut meta = Metadata::default();
                    meta.insert("redis_key", &self.key);
                    message(p.clone(), meta)
                })
                .collect();
            return Ok(Some(InputBatch {
                messages,
                ack: self.acks.ack(items),
            }));
        }
    }

    async fn close(&mut self) -> Result<(), Error> {
        self.acks.close().await
    }
}

/// The running `redis` input on channels.
pub struct PubsubInput {
    messages: ::redis::aio::PubSubStream,
}

#[async_trait]
impl Input for PubsubInput {
    async fn read(&mut self) -> Result<Option<InputBatch>, Error> {
        let Some(first) = self.messages.next().await else {
            return Err(Error::External(
                "redis: the subscription connection closed".into(),
            ));
        };
        let mut messages = vec![first];
        while messages.len() < READ_CHUNK {
            match futures_util::FutureExt::now_or_never(self.messages.next()) {
                Some(Some(m)) => messages.push(m),
                _ => break,
            }
        }
        let messages = messages
            .iter()
            .map(|m| {
                let mut meta = Metadata::default();
                meta.insert("redis_channel", m.get_channel_name());
                message(m.get_payload_bytes().to_vec(), meta)
            })
            .collect();
        Ok(Some(InputBatch {
            messages,
            ack: Ack::none(),
        }))
    }
}
