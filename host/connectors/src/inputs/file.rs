//! `file`: one message per line of a file (raw lines or JSON lines). With `checkpoint`, the byte offset up to
//! which every line was delivered is saved, so a restarted stream resumes there instead of at the start.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncSeekExt, BufReader};

use crate::inputs::READ_CHUNK;
use airtruct_runtime::kind::{Check, InputKind, Kind};
use airtruct_runtime::{Ack, BuildContext, Delivery, Error, Input, InputBatch, Message, message};

/// How the file is split into messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileCodec {
    /// Each line is a message, as raw bytes.
    #[default]
    Lines,
    /// Each line is a JSON document; a line that is not JSON becomes a failed message.
    Jsonl,
}

/// Reads a file line by line; the stream completes at the end of the file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct FileInputConfig {
    /// The file to read.
    pub path: PathBuf,
    /// `lines` (default) or `jsonl`.
    #[serde(default)]
    pub codec: FileCodec,
    /// A file where the delivered offset is saved; a restarted stream resumes from it. Without it, every run
    /// reads the whole file.
    #[serde(default)]
    pub checkpoint: Option<PathBuf>,
    /// The longest line taken (default 16MiB); a longer one fails the stream with where it is, rather than
    /// filling memory (`/dev/zero` has no line end).
    #[serde(default = "default_max_line")]
    pub max_line: airtruct_model::ByteSize,
}

fn default_max_line() -> airtruct_model::ByteSize {
    airtruct_model::ByteSize(16 << 20)
}

impl Kind for FileInputConfig {
    const NAME: &'static str = "file";
    const DESCRIPTION: &'static str = "Reads a file, one message per line (raw or JSON lines)";
    const EXAMPLE: &'static str =
        r#"{"path": "in.jsonl", "codec": "jsonl", "checkpoint": "in.jsonl.offset"}"#;

    fn check(&mut self, check: &mut Check<'_>) {
        check.path("path", &self.path);
        if let Some(c) = &self.checkpoint {
            check.path("checkpoint", c);
        }
    }
}

#[async_trait]
impl InputKind for FileInputConfig {
    async fn build(&self, cx: &BuildContext) -> Result<Box<dyn Input>, Error> {
        cx.check_path("file", &self.path)?;
        if let Some(c) = &self.checkpoint {
            cx.check_path("file checkpoint", c)?;
        }
        Ok(Box::new(self.open().await?))
    }
}

impl FileInputConfig {
    /// Opens the file and positions it after what the checkpoint says was delivered.
    pub async fn open(&self) -> Result<FileInput, Error> {
        let file = tokio::fs::File::open(&self.path)
            .await
            .map_err(|e| Error::External(format!("opening \"{}\": {e}", self.path.display())))?;
        let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
        let start = match &self.checkpoint {
            Some(cp) => read_checkpoint(cp)?.min(len),
            None => 0,
        };
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        reader
            .seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| Error::External(e.to_string()))?;
        if start > 0 {
            tracing::info!(path = %self.path.display(), offset = start, "resuming file input from its checkpoint");
        }
        Ok(FileInput {
            max_line: self.max_line.0.max(1),
            reader,
            codec: self.codec,
            path: self.path.display().to_string(),
            pos: start,
            tracker: Arc::new(Mutex::new(Tracker {
                committed: start,
                front_seq: 0,
                inflight: VecDeque::new(),
                checkpoint: self.checkpoint.clone(),
            })),
            next_seq: 0,
            buf: Vec::new(),
        })
    }
}

fn read_checkpoint(path: &Path) -> Result<u64, Error> {
    match std::fs::read_to_string(path) {
        // Only a crash between create and write leaves it empty: starting over repeats lines, loses none.
        Ok(s) if s.trim().is_empty() => {
            tracing::warn!(path = %path.display(), "empty checkpoint: reading the file from the start");
            Ok(0)
        }
        // Its content is not quoted: a checkpoint pointed at another file must not echo that file.
        Ok(s) => s.trim().parse().map_err(|_| {
            Error::User(format!(
                "checkpoint \"{}\" does not hold a byte offset ({} bytes of something else)",
                path.display(),
                s.len()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(Error::External(format!(
            "reading checkpoint \"{}\": {e}",
            path.display()
        ))),
    }
}

/// Which read batches are delivered; the offset before the first undelivered one is safe to resume from.
struct Tracker {
    committed: u64,
    front_seq: u64,
    /// `(end offset, delivered)` of each batch in flight, oldest first.
    inflight: VecDeque<(u64, bool)>,
    checkpoint: Option<PathBuf>,
}

impl Tracker {
    fn delivered(&mut self, seq: u64) {
        if let Some(slot) = self.inflight.get_mut((seq - self.front_seq) as usize) {
            slot.1 = true;
        }
        let before = self.committed;
        while let Some(&(end, true)) = self.inflight.front() {
            self.committed = end;
            self.inflight.pop_front();
            self.front_seq += 1;
        }
        if self.committed != before {
            self.save();
        }
    }

    fn save(&self) {
        let Some(path) = &self.checkpoint else { return };
        let tmp = path.with_extension("tmp");
        let saved = std::fs::write(&tmp, self.committed.to_string())
            .and_then(|_| std::fs::rename(&tmp, path));
        if let Err(e) = saved {
            tracing::error!(path = %path.display(), error = %e, "could not save file input checkpoint");
        }
    }
}

/// The running `file` input.
pub struct FileInput {
    max_line: u64,
    reader: BufReader<tokio::fs::File>,
    codec: FileCodec,
    path: String,
    pos: u64,
    tracker: Arc<Mutex<Tracker>>,
    next_seq: u64,
    buf: Vec<u8>,
}

impl FileInput {
    fn to_message(&self, mut line: Vec<u8>) -> Message {
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        let mut m = message(line, airtruct_codec::pack([("path", self.path.as_str())]));
        if self.codec == FileCodec::Jsonl
            && serde_json::from_slice::<serde::de::IgnoredAny>(&m.payload).is_err()
        {
            m.error = Some(format!(
                "file input: a line of \"{}\" is not valid JSON",
                self.path
            ));
        }
        m
    }
}

#[async_trait]
impl Input for FileInput {
    async fn read(&mut self) -> Result<Option<InputBatch>, Error> {
        let mut messages = Vec::new();
        while messages.len() < READ_CHUNK {
            self.buf.clear();
            let n = tokio::io::AsyncReadExt::take(&mut self.reader, self.max_line + 1)
                .read_until(b'\n', &mut self.buf)
                .await
                // Not retried in place: the lines read so far in this call are not handed over, so the stream
                // stops and a restart resumes from the checkpoint, which never passes an undelivered line.
                .map_err(|e| Error::External(format!("reading \"{}\": {e}", self.path)))?;
            if n == 0 {
                break;
            }
            if n as u64 > self.max_line && self.buf.last() != Some(&b'\n') {
                return Err(Error::User(format!(
                    "\"{}\": line longer than {} bytes at byte {} (raise the input's max_line)",
                    self.path, self.max_line, self.pos
                )));
            }
            self.pos += n as u64;
            if self.buf.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            messages.push(self.to_message(self.buf.clone()));
        }
        if messages.is_empty() {
            // Lines that were skipped (blank) still count as delivered.
            let mut t = self.tracker.lock().unwrap();
            if t.inflight.is_empty() && t.committed < self.pos {
                t.committed = self.pos;
                t.save();
            }
            return Ok(None);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.tracker
            .lock()
            .unwrap()
            .inflight
            .push_back((self.pos, false));
        let tracker = self.tracker.clone();
        let ack = Ack::new(move |d: Delivery| {
            if d == Delivery::Delivered {
                tracker.lock().unwrap().delivered(seq);
            }
        });
        Ok(Some(InputBatch { messages, ack }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_advances_only_over_delivered_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let cp = dir.path().join("cp");
        let mut t = Tracker {
            committed: 0,
            front_seq: 0,
            inflight: VecDeque::new(),
            checkpoint: Some(cp.clone()),
        };
        t.inflight.extend([(10, false), (20, false), (30, false)]);
        t.delivered(1);
        assert_eq!(t.committed, 0);
        assert!(!cp.exists());
        t.delivered(0);
        assert_eq!(t.committed, 20);
        assert_eq!(read_checkpoint(&cp).unwrap(), 20);
        t.delivered(2);
        assert_eq!(read_checkpoint(&cp).unwrap(), 30);
    }
}
