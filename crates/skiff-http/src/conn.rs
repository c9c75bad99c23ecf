//! How long a connection may live without doing anything, and how many a listener holds.
//!
//! Each connection gets a [`ConnSlot`] when accepted. It ends the connection:
//! - when no complete request head has arrived within the head timeout *from accept*: the TLS
//!   handshake, hyper-util's HTTP/1-or-2 sniff (which waits for up to 24 bytes and has no timer
//!   of its own) and the head itself all count. hyper's `header_read_timeout` starts only once
//!   the sniff is over, so 10,000 connections that never sent a byte were held forever;
//! - when no request has been in progress for the idle timeout (HTTP/1.1 keep-alive, HTTP/2
//!   with no open stream): closed gracefully (HTTP/2 GOAWAY);
//! - when an HTTP/2 request is in progress but no response has moved for the idle timeout:
//!   a response body handed a chunk to hyper and was not asked for the next one, as with a
//!   client that grants no flow-control window (hyper 1.12 takes one chunk, then waits for
//!   window). Dropped at once. Keep-alive PINGs cannot tell this from a live client (it
//!   answers them), and nothing is written, so [`crate::WriteStall`] cannot either: two such
//!   clients held `--max-connections 2` for good before this. (An HTTP/1 client that stops
//!   reading is `WriteStall`'s);
//! - at the listener's cap, when a new connection arrives: first the oldest connection that
//!   has never sent a head, else the one idle between requests for longest, is closed to make
//!   room, so connections that do nothing cannot lock out ones that would, and a good
//!   client's keep-alive connection outlives a stream of silent ones. Only one such eviction
//!   is pending at a time: another waits until the evicted connection has ended.
//!
//! A request is "in progress" from its complete head (hyper calls the service only then) to
//! the end of its response body ([`Tracked`]). A request in progress never makes its
//! connection idle out or be evicted; it is bounded by the request limits and by its response
//! moving.

use hyper::body::{Body, Frame, SizeHint};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
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
    /// The connection last evicted: no other is evicted while it is still closing (an HTTP/2
    /// one may take up to the head timeout to end its graceful close).
    evicting: Mutex<Weak<Activity>>,
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
    /// When the last request in progress ended (idle since then if `in_flight` is 0).
    idle_since: Option<Instant>,
}

struct Activity {
    state: watch::Sender<State>,
    /// The connection's accept time: `moved` counts from it.
    born: Instant,
    /// Microseconds from `born` to the last time a response body handed over a chunk or was
    /// asked for the next one. Atomics, not `state`: they change on every chunk, and nobody
    /// needs waking for that.
    moved: AtomicU64,
    /// Response bodies that handed over a chunk and were not asked for the next one yet: they
    /// wait on the client (its flow-control window, or its reading).
    waiting: AtomicU32,
}

impl Activity {
    fn new() -> Self {
        Activity {
            state: watch::Sender::new(State::default()),
            born: Instant::now(),
            moved: AtomicU64::new(0),
            waiting: AtomicU32::new(0),
        }
    }

    fn touch(&self) {
        let us = u64::try_from(self.born.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.moved.store(us, Relaxed);
    }

    fn last_moved(&self) -> Instant {
        self.born + Duration::from_micros(self.moved.load(Relaxed))
    }

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
            evicting: Mutex::new(Weak::new()),
        }
    }

    /// A slot for a connection just accepted. At the cap, closes a connection with no request
    /// in progress (see the module's docs for which) and takes its slot; if every connection is
    /// busy, or the one evicted is still closing, waits (the kernel's accept queue holds newer
    /// ones meanwhile).
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
        let activity = Arc::new(Activity::new());
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

    fn evict_one(&self) {
        let mut evicting = self.evicting.lock().unwrap_or_else(|e| e.into_inner());
        if evicting.strong_count() > 0 {
            return;
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        while open.front().is_some_and(|w| w.strong_count() == 0) {
            open.pop_front();
        }
        // A connection may start a request between the choice and `try_evict`: choose again.
        for _ in 0..3 {
            // Never sent a head (`None`, oldest first: `open` is in accept order) before idle
            // between requests (idle longest first).
            let mut pick: Option<(Option<Instant>, Arc<Activity>)> = None;
            for a in open.iter().filter_map(Weak::upgrade) {
                let s = *a.state.borrow();
                if s.in_flight > 0 || s.evicted {
                    continue;
                }
                let key = if s.requests == 0 { None } else { s.idle_since };
                if pick.as_ref().is_none_or(|(k, _)| key < *k) {
                    let silent = key.is_none();
                    pick = Some((key, a));
                    if silent {
                        break;
                    }
                }
            }
            let Some((_, a)) = pick else { return };
            if a.try_evict() {
                *evicting = Arc::downgrade(&a);
                return;
            }
        }
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
    /// A request in progress whose response has waited on the client for the idle timeout:
    /// close it now.
    Stalled,
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
        self.watch(false).await
    }

    /// [`Self::expired`]; once `closing` (a graceful close is under way), only a stalled
    /// response ends it.
    async fn watch(&self, closing: bool) -> Expiry {
        let mut rx = self.activity.state.subscribe();
        let idle = self.limits.idle_timeout;
        // While requests are in progress: when to look whether their responses still move.
        // Kept across state changes, so that starting and resetting streams does not put it off.
        let mut check: Option<Instant> = None;
        loop {
            let s = *rx.borrow_and_update();
            let expiry = if s.requests == 0 {
                Expiry::NoHead { evicted: s.evicted }
            } else {
                Expiry::Idle { evicted: s.evicted }
            };
            if s.evicted && !closing {
                return expiry;
            }
            let until = if s.in_flight > 0 {
                *check.get_or_insert_with(|| Instant::now() + idle)
            } else {
                check = None;
                match expiry {
                    _ if closing => {
                        // The sender lives in `self`: `changed` cannot fail while we run.
                        let _ = rx.changed().await;
                        continue;
                    }
                    Expiry::NoHead { .. } => self.accepted + self.limits.head_timeout,
                    _ => Instant::now() + idle,
                }
            };
            tokio::select! {
                _ = rx.changed() => continue,
                () = tokio::time::sleep_until(until) => {}
            }
            if s.in_flight == 0 {
                return expiry;
            }
            let now = Instant::now();
            if self.activity.waiting.load(Relaxed) == 0 {
                // Every response is the app's to move (or hyper's, about to ask for more).
                check = Some(now + idle);
                continue;
            }
            let last = self.activity.last_moved() + idle;
            if last <= now {
                return Expiry::Stalled;
            }
            check = Some(last);
        }
    }

    /// Serve `conn` until it ends or its time is up. `graceful` asks it to finish what is in
    /// progress and close (hyper's `graceful_shutdown`); it is called on idle expiry and when
    /// `drain` resolves (server shutdown). A connection without a complete head, or with a
    /// stalled response, is dropped at once; one that spends the head timeout with no request
    /// in progress after a graceful close for idleness is dropped too (an HTTP/2 peer that
    /// never lets GOAWAY complete, an HTTP/1 head left half sent). A request that started
    /// during the close (a stream opened just before GOAWAY) is not cut by that timer: the
    /// request limits and the stall check bound it.
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
        let expired = self.watch(false);
        tokio::pin!(expired);
        let mut state = self.activity.state.subscribe();
        let linger = tokio::time::sleep(Duration::from_secs(86_400));
        tokio::pin!(linger);
        let mut lingering = false;
        let mut closing: Option<Expiry> = None;
        let mut draining = false;
        loop {
            if closing.is_some() {
                // The linger timer runs only while no request is in progress.
                let busy = state.borrow_and_update().in_flight > 0;
                if busy {
                    lingering = false;
                } else if !lingering {
                    linger
                        .as_mut()
                        .reset(Instant::now() + self.limits.head_timeout);
                    lingering = true;
                }
            }
            tokio::select! {
                r = conn.as_mut() => return match closing {
                    Some(e) => Ended::Expired(e),
                    None => Ended::Closed(r),
                },
                e = &mut expired => match e {
                    Expiry::Idle { .. } if closing.is_none() => {
                        graceful(conn.as_mut());
                        closing = Some(e);
                        // From now on, only a stalled response ends it early.
                        expired.set(self.watch(true));
                    }
                    _ => return Ended::Expired(e),
                },
                _ = state.changed(), if closing.is_some() => {}
                () = &mut drain, if !draining => {
                    graceful(conn.as_mut());
                    draining = true;
                }
                () = &mut linger, if lingering => {
                    return Ended::Expired(closing.expect("armed only when closing"));
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

    /// One HTTP/1 request: in progress from now (its head is complete) until the body of the
    /// response `respond` makes has been sent or dropped.
    pub fn track<B, E>(
        &self,
        respond: impl Future<Output = Result<http::Response<B>, E>>,
    ) -> impl Future<Output = Result<http::Response<Tracked<B>>, E>> {
        self.track_http(http::Version::HTTP_11, respond)
    }

    /// [`Self::track`] for a request of any `version`. An HTTP/2 response also counts as
    /// stalled when it waits for the client's flow-control window for the idle timeout: hyper
    /// then writes nothing, so [`crate::WriteStall`] cannot see it. An HTTP/1 response waits on
    /// the socket only, and `WriteStall` sees every byte of progress there (a body-level check
    /// would drop a client reading one large chunk slowly but steadily).
    pub fn track_http<B, E>(
        &self,
        version: http::Version,
        respond: impl Future<Output = Result<http::Response<B>, E>>,
    ) -> impl Future<Output = Result<http::Response<Tracked<B>>, E>> {
        let in_flight = self.begin();
        let watched = version >= http::Version::HTTP_2;
        async move {
            respond.await.map(|r| {
                r.map(|b| {
                    let mut t = Tracked::new(b, in_flight);
                    t.watched = watched;
                    t
                })
            })
        }
    }
}

/// One request in progress.
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.state.send_modify(|s| {
            s.in_flight -= 1;
            if s.in_flight == 0 {
                s.idle_since = Some(Instant::now());
            }
        });
    }
}

/// A response body that keeps its request in progress until it is finished or dropped, and
/// tells its connection when it moves.
pub struct Tracked<B> {
    inner: B,
    in_flight: InFlight,
    /// Handed over a chunk and not asked for the next one yet.
    waiting: bool,
    /// Counts in the stall check ([`RequestCounter::track_http`]).
    watched: bool,
}

impl<B> Tracked<B> {
    pub fn new(inner: B, in_flight: InFlight) -> Self {
        Tracked {
            inner,
            in_flight,
            waiting: false,
            watched: false,
        }
    }

    fn set_waiting(&mut self, waiting: bool) {
        let a = &self.in_flight.0;
        if waiting != self.waiting {
            if waiting {
                a.waiting.fetch_add(1, Relaxed);
            } else {
                a.waiting.fetch_sub(1, Relaxed);
            }
            self.waiting = waiting;
        }
        a.touch();
    }
}

impl<B> Drop for Tracked<B> {
    fn drop(&mut self) {
        if self.waiting {
            self.in_flight.0.waiting.fetch_sub(1, Relaxed);
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
        if self.waiting {
            // hyper asks for more: the client took (or made room for) the last chunk.
            self.set_waiting(false);
        }
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        if let (true, Poll::Ready(Some(Ok(_)))) = (self.watched, &r) {
            self.set_waiting(true);
        }
        r
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

    fn limiter(max: usize, head: Duration, idle: Duration) -> Arc<ConnLimiter> {
        Arc::new(ConnLimiter::new(ConnLimits {
            max,
            head_timeout: head,
            idle_timeout: idle,
        }))
    }

    fn evicted(slot: &ConnSlot) -> bool {
        slot.activity.state.borrow().evicted
    }

    #[tokio::test]
    async fn at_the_cap_a_connection_doing_nothing_makes_room_and_busy_ones_stay() {
        let limiter = limiter(2, LONG, LONG);
        let busy = limiter.admit().await;
        let in_flight = busy.requests().begin();
        let silent = limiter.admit().await;
        let l = limiter.clone();
        let newcomer = tokio::spawn(async move { l.admit().await });
        // The busy connection is older, but only the silent one may be closed.
        assert_eq!(silent.expired().await, Expiry::NoHead { evicted: true });
        drop(silent);
        let newcomer = newcomer.await.unwrap();
        // Once its request ends, the busy connection is idle: the longest idle makes room.
        drop(in_flight);
        drop(newcomer.requests().begin());
        let l = limiter.clone();
        let last = tokio::spawn(async move { l.admit().await });
        assert_eq!(busy.expired().await, Expiry::Idle { evicted: true });
        assert!(!evicted(&newcomer));
        drop(busy);
        let _last = last.await.unwrap();
    }

    #[tokio::test]
    async fn silent_connections_go_before_a_keep_alive_one_even_an_older_one() {
        let limiter = limiter(3, LONG, LONG);
        let good = limiter.admit().await;
        drop(good.requests().begin());
        let first = limiter.admit().await;
        let second = limiter.admit().await;
        let l = limiter.clone();
        let newcomer = tokio::spawn(async move { l.admit().await });
        assert_eq!(first.expired().await, Expiry::NoHead { evicted: true });
        drop(first);
        let newcomer = newcomer.await.unwrap();
        assert!(!evicted(&good) && !evicted(&second));
        // Among idle keep-alive connections, the one idle for longest goes first.
        drop(second.requests().begin());
        drop(newcomer.requests().begin());
        drop(good.requests().begin());
        let l = limiter.clone();
        let last = tokio::spawn(async move { l.admit().await });
        assert_eq!(second.expired().await, Expiry::Idle { evicted: true });
        drop(second);
        let _last = last.await.unwrap();
        assert!(!evicted(&good) && !evicted(&newcomer));
    }

    #[tokio::test]
    async fn no_second_eviction_while_the_first_is_still_closing() {
        let limiter = limiter(2, LONG, LONG);
        let a = limiter.admit().await;
        drop(a.requests().begin());
        let b = limiter.admit().await;
        drop(b.requests().begin());
        let l = limiter.clone();
        let newcomer = tokio::spawn(async move { l.admit().await });
        assert_eq!(a.expired().await, Expiry::Idle { evicted: true });
        // `a` lingers in its graceful close: several eviction rounds (100 ms each) pass.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!evicted(&b), "a second connection was evicted");
        assert!(!newcomer.is_finished());
        drop(a);
        let _newcomer = newcomer.await.unwrap();
        assert!(!evicted(&b));
    }

    #[tokio::test]
    async fn a_request_begun_during_a_graceful_close_is_not_cut_by_its_timer() {
        // The linger timer (head timeout) is longer than the idle one, so the request below
        // surely starts before it would fire.
        let limiter = limiter(10, Duration::from_millis(300), Duration::from_millis(50));
        let slot = limiter.admit().await;
        drop(slot.requests().begin());
        let requests = slot.requests();
        let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
        // The connection: ends only when told (the request "finishing" after the close).
        let conn = async move {
            let _ = closed_rx.await;
            Ok::<(), ()>(())
        };
        let (graceful_tx, graceful_rx) = tokio::sync::oneshot::channel::<()>();
        let graceful_tx = std::sync::Mutex::new(Some(graceful_tx));
        let driving = tokio::spawn(async move {
            let graceful = |_: Pin<&mut _>| {
                if let Some(t) = graceful_tx.lock().unwrap().take() {
                    let _ = t.send(());
                }
            };
            matches!(
                slot.drive(conn, graceful, std::future::pending()).await,
                Ended::Expired(Expiry::Idle { evicted: false })
            )
        });
        graceful_rx.await.unwrap();
        // A request starts during the close, e.g. a stream opened just before GOAWAY.
        let in_flight = requests.begin();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!driving.is_finished(), "cut at the linger timer");
        drop(in_flight);
        // Nothing in progress: the timer runs again, and ends it.
        assert!(driving.await.unwrap());
        drop(closed_tx);
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
