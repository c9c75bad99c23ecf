//! `GET /v1/events` (`skiff events`): what happens to workloads, as it happens, one JSON line
//! per event ([`skiff_api::Event`]).
//!
//! Events go out through one broadcast ring of [`RING`] events; each client has a forwarder
//! that moves them into a queue of [`PER_CLIENT`] lines feeding its response. A client that
//! falls behind (its queue full, or the ring lapped it) is cut off: its stream ends, and it can
//! reconnect. So the daemon never waits for a client, and what a client that never reads can
//! cost is bounded: its queue, its socket's buffers, and the ring all clients share (the API's
//! write stall then closes its connection, see `WriteStall`).

use bytes::Bytes;
use skiff_api::{Event, EventAction, Workload, WorkloadKind};
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
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(RING).0,
        }
    }
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
        if self.tx.receiver_count() == 0 {
            return;
        }
        let event = Event {
            time: crate::util::now(),
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
        let _ = self.tx.send(Bytes::from(line));
    }

    /// A client's stream: events from now on, until it falls behind or goes away.
    pub fn subscribe(&self) -> mpsc::Receiver<Bytes> {
        let mut rx = self.tx.subscribe();
        let (out, client) = mpsc::channel(PER_CLIENT);
        tokio::spawn(async move {
            loop {
                let line = tokio::select! {
                    r = rx.recv() => r,
                    // Gone without an event to notice it by.
                    _ = out.closed() => return,
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
        let mut slow = events.subscribe();
        let mut fast = events.subscribe();
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
}
