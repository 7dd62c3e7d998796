//! The memory buffer's spill to disk: segments of length-prefixed, checksummed records in a folder of the
//! buffer's own, read back in order; and removing the folders that buffers of ended processes left behind.

use std::path::PathBuf;

use tokio::io::AsyncWriteExt;

use crate::{Error, Message};

use super::{SEGMENT_BYTES, size_of};

/// The file a buffer puts in each spill folder it makes: only folders carrying it are ever removed.
pub(super) const MARKER: &str = ".airtruct-spill";

pub(super) async fn remove_stale(base: &std::path::Path) {
    let Ok(mut entries) = tokio::fs::read_dir(base).await else {
        return;
    };
    while let Ok(Some(e)) = entries.next_entry().await {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.split_once('-'))
            .map(|(p, _)| p.to_string())
        else {
            continue;
        };
        let alive = pid.parse::<u32>().is_ok_and(|p| {
            p == std::process::id() || std::path::Path::new(&format!("/proc/{p}")).exists()
        });
        let ours = tokio::fs::try_exists(e.path().join(MARKER))
            .await
            .unwrap_or(false);
        if !alive && ours && pid.parse::<u32>().is_ok() {
            let _ = tokio::fs::remove_dir_all(e.path()).await;
        }
    }
}

/// Removes the spill segments a previous run left in `dir`.
pub(super) async fn clear_segments(dir: &std::path::Path) -> Result<(), Error> {
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Error::User(format!(
                "memory buffer: reading spill directory \"{}\": {e}",
                dir.display()
            )));
        }
    };
    while let Ok(Some(e)) = entries.next_entry().await {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("segment-") && name.ends_with(".spill") {
            let _ = tokio::fs::remove_file(e.path()).await;
        }
    }
    Ok(())
}

pub(super) fn segment_path(dir: &std::path::Path, n: u64) -> PathBuf {
    dir.join(format!("segment-{n:08}.spill"))
}

/// Appends batches to segment files.
pub(super) struct Spill {
    pub(super) dir: PathBuf,
    pub(super) file: Option<tokio::fs::File>,
    pub(super) segment: u64,
    pub(super) len: u64,
}

impl Spill {
    pub(super) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            file: None,
            segment: 0,
            len: 0,
        }
    }

    /// Writes a batch; returns where it is.
    pub(super) async fn write(&mut self, messages: &[Message]) -> Result<(u64, u64, u64), Error> {
        let bytes = encode(messages);
        if self.file.is_none() || self.len + bytes.len() as u64 > SEGMENT_BYTES {
            if let Some(mut f) = self.file.take() {
                f.flush().await.map_err(|e| self.error(e))?;
            }
            self.segment += 1;
            self.len = 0;
            let path = segment_path(&self.dir, self.segment);
            self.file = Some(
                tokio::fs::File::create(&path)
                    .await
                    .map_err(|e| self.error(e))?,
            );
        }
        let file = self.file.as_mut().expect("a segment is open");
        file.write_all(&bytes)
            .await
            .map_err(|e| Error::External(format!("memory buffer: writing a spill segment: {e}")))?;
        file.flush()
            .await
            .map_err(|e| Error::External(format!("memory buffer: writing a spill segment: {e}")))?;
        let at = self.len;
        self.len += bytes.len() as u64;
        Ok((self.segment, at, bytes.len() as u64))
    }

    pub(super) fn error(&self, e: std::io::Error) -> Error {
        Error::External(format!(
            "memory buffer: spill segment in \"{}\": {e}",
            self.dir.display()
        ))
    }
}

/// `count`, then per message `payload len, payload, metadata len, metadata`, then a CRC-32 of all that.
pub(super) fn encode(messages: &[Message]) -> Vec<u8> {
    let mut out = Vec::with_capacity(size_of(messages) + 8);
    out.extend_from_slice(&(messages.len() as u32).to_le_bytes());
    for m in messages {
        out.extend_from_slice(&(m.payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&m.payload);
        out.extend_from_slice(&(m.metadata.len() as u32).to_le_bytes());
        out.extend_from_slice(&m.metadata);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

pub(super) fn decode(bytes: &[u8]) -> Option<Vec<Message>> {
    let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    if crc32fast::hash(body).to_le_bytes() != crc {
        return None;
    }
    let mut rest = body;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, tail) = rest.split_at_checked(n)?;
        rest = tail;
        Some(head)
    };
    let len = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize;
    let count = len(take(4)?);
    let mut messages = Vec::with_capacity(count);
    for _ in 0..count {
        let n = len(take(4)?);
        let payload = take(n)?.to_vec();
        let n = len(take(4)?);
        let metadata = take(n)?.to_vec();
        messages.push(Message {
            payload,
            metadata,
            error: None,
        });
    }
    Some(messages)
}
