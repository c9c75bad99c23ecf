//! Where a guest's stdout and stderr go. `skiff run` inherits the host's; a daemon directs each
//! stream to a sink of its own (a workload's log file) instead.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Receives a guest's output as it writes it.
///
/// `write` cannot fail towards the guest on purpose: a full disk under the log directory must
/// not stop the workload. An implementation records its own errors where an operator sees them.
pub trait OutputSink: Send + Sync {
    fn write(&self, bytes: &[u8]);
}

/// One of a guest's output streams.
#[derive(Clone, Default)]
pub enum Output {
    /// The host process's own stream (what `skiff run` does).
    #[default]
    Inherit,
    /// Every byte the guest writes goes to this sink.
    Sink(Arc<dyn OutputSink>),
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Inherit => f.write_str("Inherit"),
            Output::Sink(_) => f.write_str("Sink(..)"),
        }
    }
}

/// Adapts an [`OutputSink`] to both of WASI's views of a stream (p1 and p2 guests).
#[derive(Clone)]
pub(crate) struct SinkStream(pub(crate) Arc<dyn OutputSink>);

impl IsTerminal for SinkStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for SinkStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for SinkStream {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.0.write(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        // Always ready; the sink takes what it is given.
        Ok(64 << 10)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for SinkStream {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for SinkStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0.write(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
