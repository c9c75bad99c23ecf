//! A request body that must keep arriving: a client trickling its body cannot hold a guest
//! instance until the wall-clock limit.
//!
//! The rule (mod_reqtimeout's, in time rather than bytes): the reader may wait on the client
//! for `grace`, plus one second for each `min_rate` bytes received so far. Only time spent
//! *waiting* counts (from a read that found nothing to the next frame), so a guest that reads
//! slowly, or not at all, never makes its client look slow. Beyond the allowance the body
//! fails with [`BodyTooSlow`] and the request is answered 408.

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::body::{Body, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// The request body every app receives.
pub struct RequestBody {
    inner: Incoming,
    grace: Duration,
    /// Bytes per second; 0: no check.
    min_rate: u64,
    received: u64,
    waited: Duration,
    /// Since when the reader has been waiting, if it is.
    pending_since: Option<Instant>,
    /// Created on the first wait only: a body that is already there costs no timer.
    timer: Option<Pin<Box<Sleep>>>,
    too_slow: Arc<AtomicBool>,
    failed: bool,
}

/// Why the body stopped: the client's error, or its slowness.
#[derive(Debug, thiserror::Error)]
pub enum RequestBodyError {
    #[error("reading the request body: {0}")]
    Client(#[from] hyper::Error),
    #[error(transparent)]
    TooSlow(#[from] BodyTooSlow),
}

#[derive(Debug, thiserror::Error)]
#[error("the request body arrived too slowly: {received} bytes while waiting {waited:?} (at least {min_rate} bytes/s after {grace:?} are required)")]
pub struct BodyTooSlow {
    pub received: u64,
    pub waited: Duration,
    pub min_rate: u64,
    pub grace: Duration,
}

impl RequestBody {
    /// `too_slow` is raised when the body fails for slowness, so the server can answer 408.
    pub(crate) fn new(
        inner: Incoming,
        grace: Duration,
        min_rate: u64,
        too_slow: Arc<AtomicBool>,
    ) -> Self {
        RequestBody {
            inner,
            grace,
            min_rate,
            received: 0,
            waited: Duration::ZERO,
            pending_since: None,
            timer: None,
            too_slow,
            failed: false,
        }
    }

    /// When waiting must end: `grace` plus a second per `min_rate` bytes, minus what was waited.
    fn deadline(&self, since: Instant) -> Instant {
        let earned = Duration::from_secs_f64(self.received as f64 / self.min_rate as f64);
        since + (self.grace + earned).saturating_sub(self.waited)
    }

    fn fail(&mut self, since: Instant) -> RequestBodyError {
        self.failed = true;
        self.too_slow.store(true, Ordering::Release);
        BodyTooSlow {
            received: self.received,
            waited: self.waited + since.elapsed(),
            min_rate: self.min_rate,
            grace: self.grace,
        }
        .into()
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RequestBodyError>>> {
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                if let Some(since) = this.pending_since.take() {
                    this.waited += since.elapsed();
                }
                if let Some(Ok(f)) = &frame {
                    this.received += f.data_ref().map_or(0, |d| d.len() as u64);
                }
                Poll::Ready(frame.map(|r| r.map_err(RequestBodyError::from)))
            }
            Poll::Pending if this.min_rate == 0 => Poll::Pending,
            Poll::Pending => {
                let since = *this.pending_since.get_or_insert_with(Instant::now);
                let deadline = this.deadline(since);
                if Instant::now() >= deadline {
                    return Poll::Ready(Some(Err(this.fail(since))));
                }
                let timer = match &mut this.timer {
                    Some(t) => {
                        if t.deadline() != deadline {
                            t.as_mut().reset(deadline);
                        }
                        t
                    }
                    None => this
                        .timer
                        .insert(Box::pin(tokio::time::sleep_until(deadline))),
                };
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(this.fail(since)))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
