//! What a guest writes to stdout and stderr: captured per instance, forwarded to the log after each call, with the
//! last lines kept to explain a trap (a Rust guest prints its panic message to stderr before it traps).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Most bytes kept between two drains; older output is dropped first.
const CAPACITY: usize = 64 * 1024;

/// A bounded buffer that the guest's stdout and stderr write into. Cloning shares it.
#[derive(Clone, Default)]
pub struct GuestOutput {
    buf: Arc<Mutex<Vec<u8>>>,
}

impl GuestOutput {
    fn push(&self, bytes: &[u8]) {
        let mut buf = self.buf.lock().unwrap();
        buf.extend_from_slice(bytes);
        if buf.len() > CAPACITY {
            let excess = buf.len() - CAPACITY;
            buf.drain(..excess);
        }
    }

    /// Takes what was written since the last drain.
    pub fn drain(&self) -> String {
        let bytes = std::mem::take(&mut *self.buf.lock().unwrap());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(4096)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.push(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// The guest's wall clock: the time its current call began, to the millisecond, standing still while the call
/// runs (the host sets it before each call). A processor can stamp messages (VRL's `now()`) and read dates that
/// omit the year, but cannot time anything it does inside a call.
#[derive(Clone, Default)]
pub struct CallClock(Arc<AtomicU64>);

impl CallClock {
    /// Sets the clock to now (whole milliseconds since the Unix epoch).
    pub fn set_now(&self) {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.0.store(ms, Ordering::Relaxed);
    }
}

impl wasmtime_wasi::HostWallClock for CallClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_millis(1)
    }
    fn now(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0.load(Ordering::Relaxed))
    }
}

/// A monotonic clock at zero: a guest cannot measure time (the contract grants no timer).
pub struct FrozenClock;

impl wasmtime_wasi::HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}
