//! How long a connection may live without doing anything, and how many a listener holds.
//!
//! Each connection gets a [`ConnSlot`] when accepted. It ends the connection:
//! - when no complete request head has arrived within the head timeout *from accept*: the TLS
//!   handshake, hyper-util's HTTP/1-or-2 sniff (which waits for up to 24 bytes and has no timer
//!   of its own) and the head itself all count. hyper's `header_read_timeout` starts only once
//!   the sniff is over, so 10,000 connections that never sent a byte were held forever;
//! - when no request has been in progress for the idle timeout (HTTP/1.1 keep-alive, HTTP/2
//!   with no open stream): closed gracefully (HTTP/2 GOAWAY);
//! - at the listener's cap, when a new connection arrives: the oldest connection with no
//!   request in progress (one still to send its first head, or idle between requests) is
//!   closed to make room, so connections that do nothing cannot lock out ones that would.
//!   A client that sends its head promptly is never the oldest idle one for long.
//!
//! A request is "in progress" from its complete head (hyper calls the service only then) to
//! the end of its response body ([`Tracked`]).

use hyper::body::{Body, Frame, SizeHint};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// One listener's connection limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Open connections at most; at the cap, the oldest idle one makes room.
    pub max: usize,
    /// From accept to the first complete request head (TLS and protocol sniffing included).
    pub head_timeout: Duration,
    /// With no request in progress, the connection is closed after this long.
    pub idle_timeout: Duration,
}

/// After an eviction, how long to wait for its slot before evicting another: the evicted
/// connection's task frees the slot within microseconds unless it was busy again.
const EVICT_WAIT: Duration = Duration::from_millis(100);

/// The connections of one listener.
pub struct ConnLimiter {
    limits: ConnLimits,
    permits: Arc<Semaphore>,
    /// Open connections, oldest first, for eviction. Ended ones are pruned as it grows.
    open: Mutex<VecDeque<Weak<Activity>>>,
}

/// What a connection is doing, watched by its own [`ConnSlot::expired`].
#[derive(Debug, Clone, Copy, Default)]
struct State {
    /// Requests whose head was complete, ever.
    requests: u64,
    /// Requests in progress now.
    in_flight: u32,
    /// Asked to make room for a new connection.
    evicted: bool,
}

struct Activity {
    state: watch::Sender<State>,
}

impl Activity {
    /// Mark this connection for closing if it has no request in progress.
    fn try_evict(&self) -> bool {
        self.state.send_if_modified(|s| {
            let idle = s.in_flight == 0 && !s.evicted;
            if idle {
                s.evicted = true;
            }
            idle
        })
    }
}

impl ConnLimiter {
    pub fn new(limits: ConnLimits) -> Self {
        ConnLimiter {
            limits,
            permits: Arc::new(Semaphore::new(limits.max.max(1))),
            open: Mutex::new(VecDeque::new()),
        }
    }

    /// A slot for a connection just accepted. At the cap, closes the oldest connection with no
    /// request in progress and takes its slot; if every connection is busy, waits for one to
    /// end (the kernel's accept queue holds newer ones meanwhile).
    pub async fn admit(&self) -> ConnSlot {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => loop {
                self.evict_one();
                let wait = self.permits.clone().acquire_owned();
                if let Ok(p) = tokio::time::timeout(EVICT_WAIT, wait).await {
                    break p.expect("the semaphore is never closed");
                }
            },
        };
        let activity = Arc::new(Activity {
            state: watch::Sender::new(State::default()),
        });
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        // Amortised pruning: live entries are at most `max`, so this runs once per `max` pushes.
        if open.len() >= 2 * self.limits.max.max(1) {
            open.retain(|w| w.strong_count() > 0);
        }
        open.push_back(Arc::downgrade(&activity));
        drop(open);
        ConnSlot {
            activity,
            limits: self.limits,
            accepted: Instant::now(),
            _permit: permit,
        }
    }

    fn evict_one(&self) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        while open.front().is_some_and(|w| w.strong_count() == 0) {
            open.pop_front();
        }
        open.iter().filter_map(Weak::upgrade).any(|a| a.try_evict())
    }
}

/// Why a connection's time is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No complete request head in time (or evicted before one): close it now.
    NoHead { evicted: bool },
    /// No request in progress for the idle timeout (or evicted while idle): close it
    /// gracefully.
    Idle { evicted: bool },
}

/// One accepted connection's place under its listener's cap, held until it closes.
pub struct ConnSlot {
    activity: Arc<Activity>,
    limits: ConnLimits,
    accepted: Instant,
    _permit: OwnedSemaphorePermit,
}

impl ConnSlot {
    /// Counts the requests of this connection; give it to the service.
    pub fn requests(&self) -> RequestCounter {
        RequestCounter(self.activity.clone())
    }

    /// Resolves when the connection should go. Keep one such future for the connection's
    /// life (the head deadline counts from accept, whenever this is first polled).
    pub async fn expired(&self) -> Expiry {
        let mut rx = self.activity.state.subscribe();
        loop {
            let s = *rx.borrow_and_update();
            let expiry = if s.requests == 0 {
                Expiry::NoHead { evicted: s.evicted }
            } else {
                Expiry::Idle { evicted: s.evicted }
            };
            if s.evicted {
                return expiry;
            }
            if s.in_flight > 0 {
                // The sender lives in `self`: `changed` cannot fail while we run.
                let _ = rx.changed().await;
                continue;
            }
            let until = match expiry {
                Expiry::NoHead { .. } => self.accepted + self.limits.head_timeout,
                Expiry::Idle { .. } => Instant::now() + self.limits.idle_timeout,
            };
            tokio::select! {
                _ = rx.changed() => {}
                () = tokio::time::sleep_until(until) => return expiry,
            }
        }
    }

    /// Serve `conn` until it ends or its time is up. `graceful` asks it to finish what is in
    /// progress and close (hyper's `graceful_shutdown`); it is called on idle expiry and when
    /// `drain` resolves (server shutdown). A connection without a complete head is dropped at
    /// once; one that does not finish within the head timeout of a graceful close for idleness
    /// is dropped too (an HTTP/2 peer that never lets GOAWAY complete).
    pub async fn drive<C, E>(
        &self,
        conn: C,
        graceful: impl Fn(Pin<&mut C>),
        drain: impl Future<Output = ()>,
    ) -> Ended<E>
    where
        C: Future<Output = Result<(), E>>,
    {
        tokio::pin!(conn);
        tokio::pin!(drain);
        let expired = self.expired();
        tokio::pin!(expired);
        let linger = tokio::time::sleep(Duration::from_secs(86_400));
        tokio::pin!(linger);
        let mut closing: Option<Expiry> = None;
        let mut draining = false;
        loop {
            tokio::select! {
                r = conn.as_mut() => return match closing {
                    Some(e) => Ended::Expired(e),
                    None => Ended::Closed(r),
                },
                e = &mut expired, if closing.is_none() => match e {
                    Expiry::NoHead { .. } => return Ended::Expired(e),
                    Expiry::Idle { .. } => {
                        graceful(conn.as_mut());
                        closing = Some(e);
                        linger.as_mut().reset(Instant::now() + self.limits.head_timeout);
                    }
                },
                () = &mut drain, if !draining => {
                    graceful(conn.as_mut());
                    draining = true;
                }
                () = &mut linger, if closing.is_some() => {
                    return Ended::Expired(closing.expect("checked"));
                }
            }
        }
    }
}

/// How [`ConnSlot::drive`] ended.
#[derive(Debug)]
pub enum Ended<E> {
    /// The connection ended by itself (the peer closed, an error, a server shutdown).
    Closed(Result<(), E>),
    /// Its time was up.
    Expired(Expiry),
}

/// Marks requests in progress on one connection; cheap to clone into a service.
#[derive(Clone)]
pub struct RequestCounter(Arc<Activity>);

impl RequestCounter {
    /// A request's head is complete: it is in progress until the returned guard is dropped
    /// (hold it in the response body with [`Tracked`]).
    pub fn begin(&self) -> InFlight {
        self.0.state.send_modify(|s| {
            s.requests += 1;
            s.in_flight += 1;
        });
        InFlight(self.0.clone())
    }

    /// One request: in progress from now (its head is complete) until the body of the response
    /// `respond` makes has been sent or dropped.
    pub fn track<B, E>(
        &self,
        respond: impl Future<Output = Result<http::Response<B>, E>>,
    ) -> impl Future<Output = Result<http::Response<Tracked<B>>, E>> {
        let in_flight = self.begin();
        async move { respond.await.map(|r| r.map(|b| Tracked::new(b, in_flight))) }
    }
}

/// One request in progress.
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.state.send_modify(|s| s.in_flight -= 1);
    }
}

/// A response body that keeps its request in progress until it is finished or dropped.
pub struct Tracked<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B> Tracked<B> {
    pub fn new(inner: B, in_flight: InFlight) -> Self {
        Tracked {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn at_the_cap_the_oldest_idle_connection_makes_room_and_busy_ones_stay() {
        let limiter = Arc::new(ConnLimiter::new(ConnLimits {
            max: 2,
            head_timeout: LONG,
            idle_timeout: LONG,
        }));
        let busy = limiter.admit().await;
        let in_flight = busy.requests().begin();
        let silent = limiter.admit().await;
        let l = limiter.clone();
        let newcomer = tokio::spawn(async move { l.admit().await });
        // The busy connection is older, but only the silent one may be closed.
        assert_eq!(silent.expired().await, Expiry::NoHead { evicted: true });
        drop(silent);
        let newcomer = newcomer.await.unwrap();
        // Once its request ends, the busy connection is idle: the next to make room.
        drop(in_flight);
        let l = limiter.clone();
        let last = tokio::spawn(async move { l.admit().await });
        assert_eq!(busy.expired().await, Expiry::Idle { evicted: true });
        drop(busy);
        let _last = last.await.unwrap();
        drop(newcomer);
    }

    #[tokio::test]
    async fn no_head_in_time_and_idle_expire_on_their_own_timers() {
        let limiter = ConnLimiter::new(ConnLimits {
            max: 10,
            head_timeout: Duration::from_millis(50),
            idle_timeout: Duration::from_millis(50),
        });
        let silent = limiter.admit().await;
        assert_eq!(silent.expired().await, Expiry::NoHead { evicted: false });
        let used = limiter.admit().await;
        drop(used.requests().begin());
        assert_eq!(used.expired().await, Expiry::Idle { evicted: false });
    }
}
