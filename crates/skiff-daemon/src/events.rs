//! `GET /v1/events` (`skiff events`): what happens to workloads, as it happens, one JSON line
//! per event ([`skiff_api::Event`]).
//!
//! Events go out through one broadcast ring of [`RING`] events; each client has a forwarder
//! that moves them into a queue of [`PER_CLIENT`] lines feeding its response. The last [`RING`]
//! events are also kept, for `since` (`skiff events --since 10m`) to replay; older ones, and
//! those of an earlier daemon, are gone. A client that
//! falls behind (its queue full, or the ring lapped it) is cut off: its stream ends, and it can
//! reconnect. So the daemon never waits for a client, and what a client that never reads can
//! cost is bounded: its queue, its socket's buffers, and the ring all clients share (the API's
//! write stall then closes its connection, see `WriteStall`).

use bytes::Bytes;
use skiff_api::{Event, EventAction, Workload, WorkloadKind};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc};

/// Events kept for clients still to read them: more than a burst of `up` or `down` of a large
/// file makes (three events per workload).
pub const RING: usize = 256;
/// Lines waiting in one client's response; past it the client is cut off.
pub const PER_CLIENT: usize = 16;

/// The daemon's event stream. Cheap to clone; sending with no client listening costs one
/// serialization.
#[derive(Clone)]
pub struct Events {
    tx: broadcast::Sender<Bytes>,
    /// The last [`RING`] lines with their times (Unix seconds), oldest first. Sending and
    /// subscribing both hold it, so a subscriber's replay and its live stream neither overlap
    /// nor leave a gap.
    recent: Arc<Mutex<VecDeque<(i64, Bytes)>>>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(RING).0,
            recent: Arc::default(),
        }
    }
}

/// Which events a client asks for: those at or after `since` (Unix seconds; kept ones are
/// replayed first), and up to `until` (the stream ends there: at once for a past time).
#[derive(Debug, Default, Clone, Copy)]
pub struct Window {
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// What an event says beyond its action and workload.
#[derive(Default)]
pub struct Detail {
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub version: Option<u64>,
    pub request_id: Option<String>,
}

impl Events {
    /// `action` happened to workload `w`.
    pub fn emit(&self, action: EventAction, w: &Workload, detail: Detail) {
        self.send(action, &w.id, &w.name, w.kind, detail);
    }

    pub fn send(&self, action: EventAction, id: &str, name: &str, kind: WorkloadKind, d: Detail) {
        let now = std::time::SystemTime::now();
        let event = Event {
            time: skiff_store::time::format_rfc3339_nanos(now),
            action,
            id: id.to_string(),
            name: name.to_string(),
            kind,
            exit_code: d.exit_code,
            reason: d.reason,
            version: d.version,
            request_id: d.request_id,
        };
        let mut line = serde_json::to_vec(&event).expect("API types serialize");
        line.push(b'\n');
        let line = Bytes::from(line);
        let secs = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == RING {
            recent.pop_front();
        }
        recent.push_back((secs, line.clone()));
        let _ = self.tx.send(line);
    }

    /// A client's stream: the kept events inside `window`, then new ones until it falls
    /// behind, goes away, or `window.until` passes.
    pub fn subscribe(&self, window: Window) -> mpsc::Receiver<Bytes> {
        // Whole seconds, `until` included: `--until now` takes in this second's events.
        let inside =
            |t: i64| window.since.is_none_or(|s| t >= s) && window.until.is_none_or(|u| t <= u);
        let (mut rx, replay): (_, Vec<Bytes>) = {
            let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            let replay = match window.since {
                Some(_) => recent
                    .iter()
                    .filter(|(t, _)| inside(*t))
                    .map(|(_, l)| l.clone())
                    .collect(),
                None => Vec::new(),
            };
            (self.tx.subscribe(), replay)
        };
        // The replay is at most RING lines: its own queue, so it never counts as falling behind.
        let (out, client) = mpsc::channel(PER_CLIENT + replay.len());
        for line in replay {
            let _ = out.try_send(line);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let end = window.until.map(|u| {
            let left = std::time::Duration::from_secs(u.saturating_sub(now).max(0) as u64);
            tokio::time::Instant::now() + left
        });
        tokio::spawn(async move {
            let ended = async {
                match end {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::pin!(ended);
            loop {
                let line = tokio::select! {
                    r = rx.recv() => r,
                    // Gone without an event to notice it by.
                    _ = out.closed() => return,
                    _ = &mut ended => return,
                };
                match line {
                    Ok(line) => {
                        if out.try_send(line).is_err() {
                            tracing::debug!(
                                "an events client fell {PER_CLIENT} events behind: cut off"
                            );
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::debug!("an events client missed {n} events: cut off");
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_client_that_does_not_read_is_cut_off_and_others_carry_on() {
        let events = Events::default();
        let mut slow = events.subscribe(Window::default());
        let mut fast = events.subscribe(Window::default());
        let start = || Detail::default();
        for _ in 0..PER_CLIENT * 4 {
            events.send(
                EventAction::Start,
                "0123",
                "job",
                WorkloadKind::Task,
                start(),
            );
            // The fast client reads each one as it comes.
            let line = fast.recv().await.unwrap();
            assert!(line.starts_with(b"{\"time\""));
        }
        // The slow one got its queue's worth, then its stream ended.
        let mut got = 0;
        while slow.recv().await.is_some() {
            got += 1;
        }
        assert_eq!(got, PER_CLIENT);
        events.send(
            EventAction::Stop,
            "0123",
            "job",
            WorkloadKind::Task,
            start(),
        );
        let line = fast.recv().await.unwrap();
        assert!(String::from_utf8_lossy(&line).contains("\"action\":\"stop\""));
    }

    #[tokio::test]
    async fn since_replays_the_kept_events_and_a_past_until_ends_the_stream() {
        let events = Events::default();
        for _ in 0..RING + 5 {
            events.send(
                EventAction::Create,
                "0123",
                "job",
                WorkloadKind::Task,
                Detail::default(),
            );
        }
        let window = Window {
            since: Some(0),
            until: Some(i64::MAX / 2),
        };
        let mut all = events.subscribe(window);
        let mut replayed = 0;
        while let Ok(Some(_)) =
            tokio::time::timeout(std::time::Duration::from_millis(100), all.recv()).await
        {
            replayed += 1;
        }
        // Only the last RING were kept.
        assert_eq!(replayed, RING);
        let past = Window {
            since: Some(0),
            until: Some(1),
        };
        // Nothing happened by 1970-01-01T00:00:01Z; the stream ends at once.
        assert!(events.subscribe(past).recv().await.is_none());
    }
}
