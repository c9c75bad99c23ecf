//! What an accept loop does when `accept` fails: back off, and say so once per interval.
//!
//! Out of file descriptors (EMFILE/ENFILE), `accept` fails at once for as long as the condition
//! lasts: a loop that logs each failure and retries wrote 328 MiB of stderr in 20 s (found by an
//! adversary against the release build). Every accept loop (`skiff serve`'s main and admin
//! listeners, the daemon's Unix socket and TCP API) uses this one helper.

use std::io;
use std::time::{Duration, Instant};

/// The first pause after a failure; doubled after each further failure in a row.
const FIRST_DELAY: Duration = Duration::from_millis(50);
/// The longest pause: a listener is back within a second of the condition clearing.
const MAX_DELAY: Duration = Duration::from_secs(1);
/// At most one log line per listener per interval.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// Failures of one listener's `accept`: call [`AcceptBackoff::failed`] after each error (it
/// logs when due and sleeps) and [`AcceptBackoff::succeeded`] after each accepted connection.
#[derive(Debug)]
pub struct AcceptBackoff {
    /// Names the listener in the log: "the HTTP listener", "the API socket".
    what: String,
    delay: Duration,
    /// Failures not yet reported, the last of them, and when the last report was.
    unreported: u64,
    last_error: String,
    last_report: Option<Instant>,
}

impl AcceptBackoff {
    pub fn new(what: impl Into<String>) -> Self {
        AcceptBackoff {
            what: what.into(),
            delay: FIRST_DELAY,
            unreported: 0,
            last_error: String::new(),
            last_report: None,
        }
    }

    /// After a failed `accept`: log if due, then pause (growing from 50 ms to 1 s while the
    /// failures go on). Errors about one connection only (aborted or reset before it was
    /// accepted, an interrupted call) are counted but not waited on.
    pub async fn failed(&mut self, e: io::Error) {
        if let Some(line) = self.record(&e, Instant::now()) {
            tracing::warn!("{line}");
        }
        if let Some(pause) = self.next_pause(&e) {
            tokio::time::sleep(pause).await;
        }
    }

    fn next_pause(&mut self, e: &io::Error) -> Option<Duration> {
        if matches!(
            e.kind(),
            io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::Interrupted
        ) {
            return None;
        }
        let pause = self.delay;
        self.delay = (pause * 2).min(MAX_DELAY);
        Some(pause)
    }

    /// After an accepted connection: the pause starts small again, and failures not yet
    /// reported are, if their interval is over.
    pub fn succeeded(&mut self) {
        self.delay = FIRST_DELAY;
        if let Some(line) = self.summary(Instant::now()) {
            tracing::warn!("{line}");
        }
    }

    /// Count a failure; the line to log, if one is due.
    fn record(&mut self, e: &io::Error, now: Instant) -> Option<String> {
        self.unreported += 1;
        self.last_error = e.to_string();
        match self.last_report {
            None => {
                self.last_report = Some(now);
                self.unreported = 0;
                Some(format!(
                    "accept on {} failed: {e}; backing off (further failures are reported at most every {} s)",
                    self.what,
                    REPORT_EVERY.as_secs()
                ))
            }
            Some(_) => self.summary(now),
        }
    }

    fn summary(&mut self, now: Instant) -> Option<String> {
        let last = self.last_report?;
        if self.unreported == 0 || now.duration_since(last) < REPORT_EVERY {
            return None;
        }
        let line = format!(
            "accept on {} failed {} times in the last {} s: {}",
            self.what,
            self.unreported,
            now.duration_since(last).as_secs(),
            self.last_error
        );
        self.last_report = Some(now);
        self.unreported = 0;
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emfile() -> io::Error {
        io::Error::from_raw_os_error(24)
    }

    #[test]
    fn a_storm_of_failures_is_one_line_then_one_summary_per_interval() {
        let mut b = AcceptBackoff::new("the HTTP listener");
        let t0 = Instant::now();
        let first = b
            .record(&emfile(), t0)
            .expect("the first failure is reported");
        assert!(
            first.contains("accept on the HTTP listener failed"),
            "{first}"
        );
        // 100,000 failures within the interval: not one more line.
        for i in 0..100_000u64 {
            let t = t0 + Duration::from_micros(i * 50);
            assert_eq!(b.record(&emfile(), t), None);
        }
        let later = b
            .record(&emfile(), t0 + Duration::from_secs(11))
            .expect("a summary once the interval is over");
        assert!(
            later.contains("failed 100001 times in the last 11 s"),
            "{later}"
        );
        assert!(later.contains("Too many open files"), "{later}");
        // Nothing is left to report, so a success says nothing.
        assert_eq!(b.summary(t0 + Duration::from_secs(30)), None);
    }

    #[test]
    fn failures_stopped_by_a_success_are_still_reported() {
        let mut b = AcceptBackoff::new("the API socket");
        let t0 = Instant::now();
        b.record(&emfile(), t0);
        b.record(&emfile(), t0 + Duration::from_secs(1));
        assert_eq!(b.summary(t0 + Duration::from_secs(2)), None, "not due yet");
        let s = b.summary(t0 + Duration::from_secs(12)).expect("due");
        assert!(s.contains("failed 1 times"), "{s}");
    }

    #[test]
    fn the_pause_grows_to_one_second_and_restarts_after_a_success() {
        let mut b = AcceptBackoff::new("x");
        // Per-connection errors are not waited on.
        assert_eq!(b.next_pause(&io::ErrorKind::ConnectionAborted.into()), None);
        let pauses: Vec<u128> = (0..7)
            .map(|_| b.next_pause(&emfile()).unwrap().as_millis())
            .collect();
        assert_eq!(pauses, [50, 100, 200, 400, 800, 1000, 1000]);
        b.succeeded();
        assert_eq!(b.next_pause(&emfile()), Some(FIRST_DELAY));
    }
}
