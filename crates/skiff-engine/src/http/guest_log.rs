//! A guest's stdout and stderr become log lines prefixed with the app and the request id, so
//! that output of concurrent requests never interleaves mid-line and each line says whose it is.

use super::RequestId;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line kept before it is logged anyway: a guest printing without newlines cannot make
/// the host buffer without bound.
const MAX_LINE: usize = 16 * 1024;

/// The `tracing` target of the log lines a guest writes to its stdout.
pub const GUEST_STDOUT_TARGET: &str = "skiff::guest::stdout";
/// The `tracing` target of the log lines a guest writes to its stderr.
pub const GUEST_STDERR_TARGET: &str = "skiff::guest::stderr";

#[derive(Clone)]
pub(crate) struct GuestLog {
    pub(crate) app: Arc<str>,
    /// The request's id ([`RequestId`]); one instance serves several under `--reuse`.
    pub(crate) request: Arc<AtomicU64>,
    pub(crate) stream: &'static str,
}

impl wasmtime_wasi::cli::IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for GuestLog {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineWriter {
            log: self.clone(),
            buf: Vec::new(),
        })
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            log: self.clone(),
            buf: Vec::new(),
        })
    }
}

/// Buffers up to a newline, then logs the line. What is left at drop is logged too.
struct LineWriter {
    log: GuestLog,
    buf: Vec<u8>,
}

impl LineWriter {
    fn write_all(&mut self, mut bytes: &[u8]) {
        while let Some(i) = bytes.iter().position(|b| *b == b'\n') {
            self.buf.extend_from_slice(&bytes[..i]);
            self.emit();
            bytes = &bytes[i + 1..];
        }
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= MAX_LINE {
            self.emit();
        }
    }

    fn emit(&mut self) {
        let line = String::from_utf8_lossy(&self.buf);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        let id = RequestId(self.log.request.load(Ordering::Relaxed));
        let (app, stream) = (&self.log.app, self.log.stream);
        // One target per stream, so that an embedder (the containerd shim) can send the guest's
        // stdout lines to its own stdout and the rest to stderr.
        if stream == "stdout" {
            tracing::info!(target: GUEST_STDOUT_TARGET, "[{app} {id}] {stream}: {line}");
        } else {
            tracing::info!(target: GUEST_STDERR_TARGET, "[{app} {id}] {stream}: {line}");
        }
        self.buf.clear();
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.emit();
        }
    }
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.write_all(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write_all(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
