//! `file`: appends one line per message to a file. A batch is confirmed once it is written and flushed to the
//! operating system (and, with `fsync: true`, to the disk).

use std::path::PathBuf;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use airtruct_runtime::kind::{Check, Kind, OutputKind};
use airtruct_runtime::{BuildContext, Error, Message, Output};

/// Appends each message's payload as a line to a file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct FileOutputConfig {
    /// The file to append to (created when missing).
    pub path: PathBuf,
    /// Sync every batch to disk before confirming it, so a machine crash loses nothing confirmed (slower).
    /// Without it a killed process loses nothing confirmed, a crashed machine may.
    #[serde(default)]
    pub fsync: bool,
    /// Write each message as a JSON envelope `{"payload": ..., "metadata": {...}}` instead of its bare payload
    /// (the payload as JSON when it is JSON, else as a string). Useful for dead letters, whose error is in the
    /// `error` metadata key.
    #[serde(default)]
    pub envelope: bool,
}

impl Kind for FileOutputConfig {
    const NAME: &'static str = "file";
    const DESCRIPTION: &'static str = "Appends one line per message to a file";
    const EXAMPLE: &'static str = r#"{"path": "out.jsonl", "fsync": false}"#;

    fn check(&mut self, check: &mut Check<'_>) {
        check.path("path", &self.path);
    }
}

#[async_trait]
impl OutputKind for FileOutputConfig {
    async fn build(&self, cx: &BuildContext) -> Result<Box<dyn Output>, Error> {
        cx.check_path("file", &self.path)?;
        Ok(Box::new(self.open().await?))
    }
}

impl FileOutputConfig {
    /// Opens the file for appending.
    pub async fn open(&self) -> Result<FileOutput, Error> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| Error::External(format!("creating \"{}\": {e}", dir.display())))?;
        }
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .await
            .map_err(|e| Error::External(format!("opening \"{}\": {e}", self.path.display())))?;
        Ok(FileOutput {
            file,
            fsync: self.fsync,
            envelope: self.envelope,
            path: self.path.display().to_string(),
            buf: Vec::new(),
        })
    }
}

/// The running `file` output.
pub struct FileOutput {
    file: tokio::fs::File,
    fsync: bool,
    envelope: bool,
    path: String,
    buf: Vec<u8>,
}

/// `{"payload": ..., "metadata": {...}}` for one message.
pub fn envelope(m: &Message) -> serde_json::Value {
    let payload = serde_json::from_slice::<serde_json::Value>(&m.payload).unwrap_or_else(|_| {
        serde_json::Value::String(String::from_utf8_lossy(&m.payload).into_owned())
    });
    let metadata: serde_json::Map<String, serde_json::Value> =
        airtruct_codec::Metadata::iter_bytes(&m.metadata)
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
            .collect();
    serde_json::json!({ "payload": payload, "metadata": metadata })
}

#[async_trait]
impl Output for FileOutput {
    async fn write(&mut self, batch: &[Message]) -> Result<(), Error> {
        self.buf.clear();
        for m in batch {
            if self.envelope {
                serde_json::to_writer(&mut self.buf, &envelope(m))
                    .expect("a JSON value serializes");
            } else {
                self.buf.extend_from_slice(&m.payload);
            }
            self.buf.push(b'\n');
        }
        let err = |e: std::io::Error| Error::External(format!("writing \"{}\": {e}", self.path));
        self.file.write_all(&self.buf).await.map_err(err)?;
        self.file.flush().await.map_err(err)?;
        if self.fsync {
            self.file.sync_data().await.map_err(err)?;
        }
        Ok(())
    }
}
