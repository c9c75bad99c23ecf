//! Reading what a registry or token server sends: every body read into memory has a maximum,
//! and every transfer must keep making progress. A peer that lies (a 2 GiB error page, a token
//! answer that never ends, a blob trickled at 1 byte/s) ends in a clear error naming it, not in
//! memory growth or a pull that never ends.

use crate::error::{RegistryError, Result};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use reqwest::header::CONTENT_LENGTH;
use reqwest::Response;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// How much of an error answer is kept for its message: the distribution spec's error JSON is
/// a few hundred bytes; the rest of a larger body is not read, and its connection is dropped.
pub(crate) const MAX_ERROR_BODY: u64 = 8 << 10;

/// When a transfer counts as stalled. Applies to every body skiff reads from a registry or a
/// token server (blobs, manifests, tokens, error answers) and to the wait for an answer's head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StallRule {
    /// No byte at all for this long fails the transfer.
    pub no_data: Duration,
    /// Fewer than `min_bytes` in any `window` (sliding, judged once a whole window has passed)
    /// fails it too: a peer trickling a byte a second never trips `no_data`.
    pub min_bytes: u64,
    pub window: Duration,
}

impl StallRule {
    /// The default minimum rate (64 KiB a minute) judged over `window`, and `no_data` the same
    /// length: for callers that want the rule on a shorter (or longer) clock.
    pub fn over(window: Duration) -> StallRule {
        let d = StallRule::default();
        let min_bytes = (d.min_bytes as f64 * window.as_secs_f64() / d.window.as_secs_f64()) as u64;
        StallRule {
            no_data: window,
            min_bytes: min_bytes.max(1),
            window,
        }
    }
}

impl Default for StallRule {
    fn default() -> Self {
        StallRule {
            // Longer than TCP's own recovery from a few lost segments (retransmits back off
            // 1+2+4+8+16 s): a link that is merely lossy gets through; a dead one is named
            // half a minute after its last byte instead of never.
            no_data: Duration::from_secs(30),
            // 64 KiB a minute is ~1.1 KiB/s (~9 kbit/s), slower than a GSM data call: no real
            // link trips it, while a trickle of a byte a second fails one minute in.
            min_bytes: 64 << 10,
            window: Duration::from_secs(60),
        }
    }
}

/// Progress of one transfer, judged by a [`StallRule`].
pub(crate) struct Pace {
    rule: StallRule,
    /// The peer's side of the transfer, for messages: it "sent" a download, "took" an upload.
    verb: &'static str,
    started: Instant,
    last_byte: Instant,
    total: u64,
    /// (when, bytes received by then), oldest first; one sample per `window / 32` at most,
    /// and only as far back as the window reaches, so this stays small.
    samples: VecDeque<(Instant, u64)>,
}

impl Pace {
    pub(crate) fn new(rule: StallRule) -> Pace {
        Pace::starting(rule, Instant::now())
    }

    fn starting(rule: StallRule, now: Instant) -> Pace {
        Pace {
            rule,
            verb: "sent",
            started: now,
            last_byte: now,
            total: 0,
            samples: VecDeque::new(),
        }
    }

    pub(crate) fn record(&mut self, n: u64) {
        self.record_at(n, Instant::now())
    }

    fn record_at(&mut self, n: u64, now: Instant) {
        if n == 0 {
            return;
        }
        self.last_byte = now;
        self.total += n;
        let grain = self.rule.window / 32;
        match self.samples.back_mut() {
            // Counting bytes a little later than they came only ever delays the verdict.
            Some(last) if now.duration_since(last.0) < grain => last.1 = self.total,
            _ => self.samples.push_back((now, self.total)),
        }
        // Keep one sample at or before the window's start: the count there is the baseline.
        let horizon = now.checked_sub(self.rule.window).unwrap_or(self.started);
        while self.samples.len() > 1 && self.samples[1].0 <= horizon {
            self.samples.pop_front();
        }
    }

    /// When the transfer fails if no further byte arrives.
    pub(crate) fn fail_at(&self) -> Instant {
        let silent = self.last_byte + self.rule.no_data;
        // The window ending at `t` holds the bytes after `t - window`; with nothing more coming
        // that drops below the minimum once `t - window` passes the first sample after which
        // fewer than `min_bytes` arrived.
        let floor = self.total.saturating_sub(self.rule.min_bytes);
        let since = if self.total < self.rule.min_bytes {
            Some(self.started)
        } else {
            self.samples
                .iter()
                .find(|(_, seen)| *seen > floor)
                .map(|(at, _)| *at)
        };
        let slow = since.map(|at| (at + self.rule.window).max(self.started + self.rule.window));
        match slow {
            Some(slow) => silent.min(slow),
            None => silent,
        }
    }

    /// What the rule found, for the message: called once `fail_at` has passed.
    fn verdict(&self) -> String {
        self.verdict_at(Instant::now())
    }

    fn verdict_at(&self, now: Instant) -> String {
        let start = now.checked_sub(self.rule.window).unwrap_or(self.started);
        let base = self
            .samples
            .iter()
            .take_while(|(at, _)| *at <= start)
            .last()
            .map_or(0, |(_, seen)| *seen);
        let in_window = self.total - base;
        if now.duration_since(self.last_byte) >= self.rule.no_data {
            return format!("{} no data for {}", self.verb, secs(self.rule.no_data));
        }
        if in_window == 0 {
            return format!("{} no data for {}", self.verb, secs(self.rule.window));
        }
        format!(
            "{} only {in_window} bytes in {} (skiff needs at least {} bytes per {})",
            self.verb,
            secs(self.rule.window),
            self.rule.min_bytes,
            secs(self.rule.window)
        )
    }
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

/// Who sent a body and what it was, for messages.
pub(crate) struct Peer<'a> {
    /// `registry 127.0.0.1:5000`, or `the token server of 127.0.0.1:5000`.
    pub name: &'a str,
    /// What was being read ("the manifest of x/y:1", "blob sha256:…").
    pub what: &'a str,
}

/// Why a body stopped short.
pub(crate) enum Cut {
    /// The peer broke the rule of [`Pace`]: the error, naming the peer.
    Stalled(RegistryError),
    /// The connection broke.
    Broken(String),
}

impl Peer<'_> {
    pub(crate) fn stalled(&self, pace: &Pace) -> RegistryError {
        RegistryError::Stalled {
            peer: self.name.to_string(),
            detail: match pace.verb {
                "sent" => format!("{} while receiving {}", pace.verdict(), self.what),
                _ => format!("{} during {}", pace.verdict(), self.what),
            },
        }
    }
}

/// The next piece of `body`, unless the peer stalls by `pace`'s rule first.
pub(crate) async fn next_piece<S, E>(
    body: &mut S,
    pace: &mut Pace,
    peer: &Peer<'_>,
) -> std::result::Result<Option<Bytes>, Cut>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    match tokio::time::timeout_at(pace.fail_at(), body.next()).await {
        Err(_) => Err(Cut::Stalled(peer.stalled(pace))),
        Ok(None) => Ok(None),
        Ok(Some(Err(e))) => Err(Cut::Broken(e.to_string())),
        Ok(Some(Ok(piece))) => {
            pace.record(piece.len() as u64);
            Ok(Some(piece))
        }
    }
}

/// Up to `limit` bytes of `resp`'s body into `out`; `Ok(true)` if there was more (it is not
/// read: dropping the response drops its connection).
async fn read_up_to(
    resp: Response,
    limit: u64,
    rule: StallRule,
    peer: &Peer<'_>,
    out: &mut BytesMut,
) -> std::result::Result<bool, Cut> {
    out.reserve(declared_length(&resp).unwrap_or(0).min(limit).min(64 << 10) as usize);
    let mut pace = Pace::new(rule);
    let mut body = resp.bytes_stream();
    while let Some(piece) = next_piece(&mut body, &mut pace, peer).await? {
        let room = limit - out.len() as u64;
        if piece.len() as u64 > room {
            out.extend_from_slice(&piece[..room as usize]);
            return Ok(true);
        }
        out.extend_from_slice(&piece);
    }
    Ok(false)
}

fn declared_length(resp: &Response) -> Option<u64> {
    resp.headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// A whole body, at most `limit` bytes: the one way skiff reads an answer into memory (a
/// manifest, an index, a token). More than that fails, naming the peer, the URL's path and the
/// limit; a declared `Content-Length` over it fails before a byte is read.
pub(crate) async fn read_body(
    resp: Response,
    limit: u64,
    rule: StallRule,
    peer: &Peer<'_>,
) -> Result<Bytes> {
    let path = resp.url().path().to_string();
    let too_large = || RegistryError::BodyTooLarge {
        peer: peer.name.to_string(),
        what: peer.what.to_string(),
        path: path.clone(),
        limit,
    };
    if declared_length(&resp).is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = BytesMut::new();
    match read_up_to(resp, limit, rule, peer, &mut body).await {
        Ok(true) => Err(too_large()),
        Ok(false) => Ok(body.freeze()),
        Err(Cut::Stalled(e)) => Err(e),
        Err(Cut::Broken(detail)) => Err(RegistryError::Unreachable {
            registry: peer.name.to_string(),
            detail: format!("the connection broke while reading {}: {detail}", peer.what),
        }),
    }
}

/// The first [`MAX_ERROR_BODY`] bytes of an error answer, for its message, read for at most
/// `rule.no_data`. Whatever else comes (more bytes, a stall, a broken connection, the time up)
/// ends the read with what arrived so far: the status already says what failed.
pub(crate) async fn error_body(resp: Response, rule: StallRule, peer: &Peer<'_>) -> Bytes {
    let mut body = BytesMut::new();
    let read = read_up_to(resp, MAX_ERROR_BODY, rule, peer, &mut body);
    let _ = tokio::time::timeout(rule.no_data, read).await;
    body.freeze()
}

/// Wait for an answer's head, at most `rule.no_data`: a peer that accepts the connection and
/// says nothing is named like one that stops mid-body. `peer.what` names the request
/// (`GET /v2/…`).
pub(crate) async fn head<F>(send: F, rule: StallRule, peer: &Peer<'_>) -> Result<F::Output>
where
    F: std::future::Future,
{
    tokio::time::timeout(rule.no_data, send)
        .await
        .map_err(|_| RegistryError::Stalled {
            peer: peer.name.to_string(),
            detail: format!("sent no answer to {} for {}", peer.what, secs(rule.no_data)),
        })
}

/// How long a registry may take to answer once a streamed upload's last byte is through: it
/// may read the blob back to check its digest (distribution does when it cannot resume its
/// hash state) or copy it into place (object-store backends). Two minutes is what the whole
/// request was allowed before uploads were paced.
const ANSWER_AFTER_UPLOAD: Duration = Duration::from_secs(120);

/// Send a request whose body is streamed (`len` bytes; `taken` counts those handed to the
/// connection so far): the registry must keep taking it by `rule`, then answer within
/// [`ANSWER_AFTER_UPLOAD`]. `peer.what` names the upload ("the upload of blob sha256:…").
pub(crate) async fn upload<F>(
    send: F,
    taken: &AtomicU64,
    len: u64,
    rule: StallRule,
    peer: &Peer<'_>,
) -> Result<F::Output>
where
    F: std::future::Future,
{
    tokio::pin!(send);
    let mut pace = Pace::new(rule);
    pace.verb = "took";
    let mut counted = 0;
    let mut through: Option<Instant> = None;
    // Bytes are counted on each tick, so the verdict may come up to a tick late.
    let tick = (rule.no_data.min(rule.window) / 16).max(Duration::from_millis(10));
    loop {
        tokio::select! {
            out = &mut send => return Ok(out),
            _ = tokio::time::sleep(tick) => {}
        }
        let now = Instant::now();
        let n = taken.load(Ordering::Relaxed);
        pace.record_at(n - counted, now);
        counted = n;
        if counted >= len {
            let since = *through.get_or_insert(now);
            if now.duration_since(since) >= ANSWER_AFTER_UPLOAD {
                return Err(RegistryError::Stalled {
                    peer: peer.name.to_string(),
                    detail: format!(
                        "took all of {} but sent no answer for {}",
                        peer.what,
                        secs(ANSWER_AFTER_UPLOAD)
                    ),
                });
            }
        } else if now >= pace.fail_at() {
            return Err(peer.stalled(&pace));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> StallRule {
        StallRule {
            no_data: Duration::from_secs(10),
            min_bytes: 1000,
            window: Duration::from_secs(60),
        }
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn silence_fails_after_no_data() {
        let t0 = Instant::now();
        let mut p = Pace::starting(rule(), t0);
        p.record_at(5000, t0 + S);
        assert_eq!(p.fail_at(), t0 + 11 * S);
        assert_eq!(p.verdict_at(t0 + 11 * S), "sent no data for 10 s");
    }

    #[test]
    fn a_trickle_fails_once_a_window_has_passed() {
        let t0 = Instant::now();
        let mut p = Pace::starting(rule(), t0);
        // One byte every 5 s: never silent for 10 s, never 1000 bytes a minute.
        for i in 1..=12 {
            let now = t0 + 5 * i * S;
            p.record_at(1, now);
            assert_eq!(p.fail_at(), (now + 10 * S).min(t0 + 60 * S));
        }
        assert_eq!(
            p.verdict_at(t0 + 60 * S),
            "sent only 12 bytes in 60 s (skiff needs at least 1000 bytes per 60 s)"
        );
    }

    #[test]
    fn a_steady_transfer_never_fails() {
        let t0 = Instant::now();
        let mut p = Pace::starting(rule(), t0);
        for i in 1..=1000 {
            let now = t0 + i * S;
            p.record_at(20, now); // 1200 bytes a minute
            assert!(p.fail_at() > now, "at {i} s");
        }
        assert!(p.samples.len() <= 40, "{}", p.samples.len());
    }

    #[test]
    fn a_burst_then_a_trickle_fails_a_window_after_the_burst() {
        let t0 = Instant::now();
        let mut p = Pace::starting(rule(), t0);
        p.record_at(1 << 20, t0 + S);
        for i in 1..=12 {
            p.record_at(1, t0 + S + 5 * i * S);
        }
        // The burst leaves the window 60 s after it came.
        assert_eq!(p.fail_at(), t0 + 61 * S);
        assert!(p
            .verdict_at(t0 + 61 * S)
            .starts_with("sent only 12 bytes in 60 s"));
    }

    #[test]
    fn the_rule_scales_with_its_window() {
        let r = StallRule::over(Duration::from_secs(2));
        assert_eq!(r.no_data, Duration::from_secs(2));
        assert_eq!(r.window, Duration::from_secs(2));
        assert_eq!(r.min_bytes, (64 << 10) * 2 / 60);
    }
}
