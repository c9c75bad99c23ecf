//! Bodies in and out of a guest: the request body held to the app's size limit, the response
//! body streamed from the guest as it writes.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

/// A response body as the guest streams it.
pub type ResponseBody = UnsyncBoxBody<Bytes, BodyError>;

/// The guest's response body failed part way (a trap, a limit, an error code).
#[derive(Debug, thiserror::Error)]
#[error("response body from the guest failed: {0}")]
pub struct BodyError(pub String);

/// A request body that fails once more than `limit` bytes have come through, and raises
/// `exceeded` so the request can be answered 413 instead of with what the guest made of a
/// truncated body.
pub(crate) struct LimitedBody {
    inner: UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>,
    remaining: u64,
    limit: u64,
    exceeded: Arc<AtomicBool>,
}

impl LimitedBody {
    pub(crate) fn new(
        inner: UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>,
        limit: u64,
        exceeded: Arc<AtomicBool>,
    ) -> Self {
        LimitedBody {
            inner,
            remaining: limit,
            limit,
            exceeded,
        }
    }
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let n = data.len() as u64;
                    if n > this.remaining {
                        this.exceeded.store(true, Ordering::Release);
                        this.remaining = 0;
                        return Poll::Ready(Some(Err(
                            wasmtime_wasi_http::Error::HttpRequestBodySize(Some(this.limit)),
                        )));
                    }
                    this.remaining -= n;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
