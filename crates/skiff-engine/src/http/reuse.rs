//! An app's instances, and the opt-in reuse of one for several requests (`--reuse N`).
//!
//! By default every request gets a fresh instance: nothing a request leaves in the guest's
//! memory is seen by another. An operator may trade that for speed, app by app, as Fastly's
//! reusable sandboxes do: with `--reuse N` an instance that served a request without failing is
//! parked, and the app's next request runs in it, up to N requests in all. The rules, each
//! tested in `skiff-cli/tests/serve_reuse.rs`:
//!
//! - **One request at a time.** An [`Instance`] owns its `Store`: it is either in one request's
//!   task or parked here, never both, so two requests can never be inside it together.
//! - **A failure ends it.** Only a request that returned normally, with its response complete,
//!   parks its instance: a trap, a memory, CPU or wall-clock limit, a stop, or a guest that
//!   returned holding its response-outparam or an unfinished response body drops it, and the
//!   next request starts fresh. (Held, they would keep the client waiting for as long as the
//!   instance lived: a fresh instance's drop is what ends them.)
//! - **N requests at most**, then it is dropped.
//! - **Never across apps.** The parked instances are the app's own ([`Idle`] lives in its
//!   `HttpApp`); a redeploy is a new `HttpApp`, with none.
//! - **Never by the image.** `reuse` is a limit, and limits come from the operator's grants
//!   only (`skiff_spec::resolve`): an image cannot ask for it.
//!
//! What it trades away: state a request leaves behind (globals, memory, a corrupted heap) is
//! seen by the same app's later requests in that instance, for up to N requests.

use super::app::{Live, RequestState};
use super::{AppStats, HttpLimits, RequestId};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::Proxy;
use wasmtime_wasi_http::p2::body::HostOutgoingBody;
use wasmtime_wasi_http::p2::types::HostResponseOutparam;

/// How long a parked instance is kept without a request. It holds a slot of the engine's pool
/// and its memory: in the daemon, whose 1,000 slots all apps share, an app that had a burst
/// must not keep slots another app needs. Under steady load a second is far longer than the
/// gap between two requests.
const IDLE: Duration = Duration::from_secs(1);

/// A store and, once instantiated, the guest in it.
pub(crate) struct Instance {
    pub(crate) store: Store<RequestState>,
    pub(crate) proxy: Option<Proxy>,
    /// Requests this instance has served to their end.
    served: u32,
    // Dropped in this order: the store (so the pool slot is free again), then the slot's
    // permit; the other way round a request could take the permit and find no slot.
    _slot: Option<OwnedSemaphorePermit>,
    _live: Live,
}

impl Instance {
    pub(crate) fn new(
        store: Store<RequestState>,
        slot: Option<OwnedSemaphorePermit>,
        stats: &Arc<AppStats>,
    ) -> Instance {
        Instance {
            store,
            proxy: None,
            served: 0,
            _slot: slot,
            _live: Live::new(stats),
        }
    }

    /// Whether the guest left its response unsettled: the response-outparam never set, or a
    /// response body never finished, still in its table (a leak, deliberate or not).
    fn holds_a_response(&mut self) -> bool {
        self.store
            .data_mut()
            .table
            .iter_mut()
            .any(|e| e.is::<HostResponseOutparam>() || e.is::<HostOutgoingBody>())
    }

    /// Ready a parked instance for request `id`: that id in its logs, a CPU budget and an
    /// outbound allowance of the request's own, a new epoch deadline.
    fn begin(&mut self, id: RequestId, limits: &HttpLimits) {
        let state = self.store.data_mut();
        state.request.store(id.0, Ordering::Relaxed);
        state.cpu_ticks = 0;
        state.hooks.request_id = Some(id);
        state.hooks.request_permits = Arc::new(Semaphore::new(limits.max_outbound as usize));
        self.store.set_epoch_deadline(1);
    }
}

/// An app's parked instances (reuse on: `limits.reuse` > 1).
pub(crate) struct Idle {
    max: u32,
    parked: Mutex<Parked>,
}

#[derive(Default)]
struct Parked {
    /// Most recently parked last: the warmest is taken first.
    list: Vec<(Instance, Instant)>,
    /// The app was stopped: nothing is parked any more.
    closed: bool,
    /// A sweeper task is running.
    sweeping: bool,
}

impl Idle {
    /// `None` when reuse is off: the request path then never touches a lock.
    pub(crate) fn for_limits(limits: &HttpLimits) -> Option<Arc<Idle>> {
        (limits.reuse > 1).then(|| {
            Arc::new(Idle {
                max: limits.reuse,
                parked: Mutex::new(Parked::default()),
            })
        })
    }

    /// A parked instance, readied for request `id`, if there is one.
    pub(crate) fn take(&self, id: RequestId, limits: &HttpLimits) -> Option<Instance> {
        let (mut instance, _) = self.lock().list.pop()?;
        instance.begin(id, limits);
        Some(instance)
    }

    /// After a request that ended normally: park its instance, unless it has served its N.
    pub(crate) fn put_back(self: &Arc<Self>, mut instance: Instance) {
        instance.served += 1;
        if instance.served >= self.max || instance.holds_a_response() {
            return;
        }
        let mut p = self.lock();
        if p.closed {
            return;
        }
        p.list.push((instance, Instant::now()));
        if !p.sweeping {
            p.sweeping = true;
            tokio::spawn(sweep(Arc::downgrade(self)));
        }
    }

    /// Drop every parked instance and park none from now on (the app is stopping).
    pub(crate) fn close(&self) {
        let list = {
            let mut p = self.lock();
            p.closed = true;
            std::mem::take(&mut p.list)
        };
        drop(list);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Parked> {
        // A panic while holding this lock leaves a list of whole instances: still usable.
        self.parked.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Every [`IDLE`], drop the instances parked longer than that; ends when none is left (or
/// the app is gone), and `put_back` starts another.
async fn sweep(idle: Weak<Idle>) {
    loop {
        tokio::time::sleep(IDLE).await;
        let Some(idle) = idle.upgrade() else { return };
        let old = {
            let mut p = idle.lock();
            let stale = p
                .list
                .iter()
                .position(|(_, at)| at.elapsed() < IDLE)
                .unwrap_or(p.list.len());
            let old: Vec<_> = p.list.drain(..stale).collect();
            if p.list.is_empty() {
                p.sweeping = false;
            }
            (old, p.sweeping)
        };
        // Dropped outside the lock: a store's drop resets its pool slot.
        let (old, sweeping) = old;
        drop(old);
        if !sweeping {
            return;
        }
    }
}
