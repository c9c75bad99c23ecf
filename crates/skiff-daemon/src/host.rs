//! The host resources the daemon shares out among its workloads: file descriptors and CPU.
//!
//! **Descriptors.** Every guest's handles are capped by the engine (`--max-open`, 1024 by
//! default), but a cap per guest does not bound all guests together: twenty tasks granted a
//! directory could still take every descriptor the API, the log files and the data plane need.
//! So the daemon raises its soft `RLIMIT_NOFILE` to the hard limit at start, keeps a reserve
//! for itself, and gives the rest to tasks as a budget: a task that can open descriptors at all
//! (one granted a directory or the network) reserves its whole `--max-open` from the budget for
//! as long as it runs, and one that does not fit is refused with the arithmetic in the error.
//!
//! The arithmetic, with this machine's limit of 20,000 and a data plane:
//! `rest = nofile - RESERVE - data-plane connections = 20,000 - 1,024 - 10,000 = 8,976`, of
//! which [`MAX_OUTBOUND`] (1,024) go to apps' outbound HTTP requests and 7,952 to tasks, i.e.
//! seven tasks at the default 1,024 (or 124 at `--max-open 64`). The reserve covers the API's
//! connections (at most 2 × 256, Unix socket and TCP), one log file per workload, the state
//! database, the listeners and the compile cache.
//!
//! Apps are not charged per instance because they cannot hold descriptors of their own: the
//! daemon refuses a directory or the network for an app (`Daemon::check`; every request is a
//! fresh instance, up to 100 at once, so a grant of 1,024 handles would pin 102,400). What
//! they can hold is outbound HTTP connections, capped per request (16), per app (256) and, so
//! that many apps together cannot take the reserve, across all apps by [`FdBudget::outbound`].
//!
//! **Instances.** HTTP apps run on an engine of their own with a pool of [`APP_POOL_SLOTS`]
//! instance slots shared by every app; a request takes a slot for as long as its instance
//! lives and waits for one when all are busy (up to its app's queue timeout, then 503). Tasks
//! keep on-demand allocation on the other engine, so no task can take an app's slot or fail
//! for want of one. The pool costs address space, not memory: each slot reserves wasmtime's
//! 4 GiB static-memory window whatever its limit, so [`APP_POOL_MAX_MEMORY`] refuses no limit
//! a wasm32 guest can reach. What stays resident is the warm slots' kept pages (up to 100
//! slots × ~1.1 MiB, see skiff-engine's `build`) beside the code `--app-cache-size` weighs.
//! Slots hold no descriptors of their own (a program's memory image is one per binary), so
//! the descriptor budget below is unchanged: an app's instances reach descriptors only
//! through outbound requests, which [`MAX_OUTBOUND`] caps.
//!
//! **CPU.** Long-running tasks run on a runtime of their own whose threads have the lowest
//! priority (nice [`TASK_NICE`]), so a task that loops cannot take the CPU the data plane and
//! the API need: when both want a core, the kernel gives the task thread 1.5% of it (CFS
//! weights 15 against 1024); an idle node still gives tasks every core. Measured with
//! bench/daemon.sh scenario 5 (an app under wrk beside two looping tasks, against alone): 0.38
//! before, 0.93 with nice 19, one run of 0.76 with nice 10.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Descriptors the daemon keeps for itself besides the data plane's connections.
pub const RESERVE: u64 = 1024;

/// Outbound HTTP requests in flight across all apps, at most: four apps at their own cap.
/// Never more than half of what the reserve and the data plane leave, so tasks keep the rest.
pub const MAX_OUTBOUND: u64 = 1024;

/// Instances all HTTP apps may run at once: ten apps at the default `max_concurrent` of 100.
/// A busy node's apps share them; an app alone is bounded by its own `max_concurrent` first.
pub const APP_POOL_SLOTS: u32 = 1000;

/// Each slot's largest linear memory: all of wasm32's 4 GiB, which the slot reserves anyway
/// (wasmtime's default memory reservation), so an app's own `--memory` is the only bound.
pub const APP_POOL_MAX_MEMORY: u64 = 4 << 30;

/// The nice value of task threads: CFS weight 15, against 1024 for the daemon's own threads.
pub const TASK_NICE: i32 = 19;

/// The descriptor limit after [`raise_nofile`], and what it leaves for tasks.
#[derive(Debug, Clone, Copy)]
pub struct FdBudget {
    pub nofile: u64,
    pub reserved: u64,
    /// Outbound HTTP requests all apps may have in flight together (0 without a data plane).
    pub outbound: u64,
    pub for_tasks: u64,
}

impl FdBudget {
    /// The budget left by `nofile` once the daemon's reserve and `connections` (the data
    /// plane's cap on open connections, 0 without one) are set aside, split between apps'
    /// outbound requests (when there is a data plane) and tasks.
    pub fn new(nofile: u64, connections: u64) -> FdBudget {
        let reserved = RESERVE.saturating_add(connections);
        let rest = nofile.saturating_sub(reserved);
        let outbound = if connections > 0 {
            MAX_OUTBOUND.min(rest / 2)
        } else {
            0
        };
        FdBudget {
            nofile,
            reserved,
            outbound,
            for_tasks: rest - outbound,
        }
    }
}

/// Raise the soft `RLIMIT_NOFILE` to the hard limit (no privilege needed) and return the limit
/// now in force. A failure leaves the soft limit as it was: the daemon still runs, with less.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read or write the struct passed by pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return raised.rlim_cur;
        }
        tracing::warn!(
            "could not raise the open-file limit from {} to {}: {}",
            lim.rlim_cur,
            lim.rlim_max,
            std::io::Error::last_os_error()
        );
    }
    lim.rlim_cur
}

/// Lower the calling thread's priority to [`TASK_NICE`] (Linux nice values are per thread).
/// Lowering needs no privilege; a failure only costs fairness, so it is logged and ignored.
pub fn lower_thread_priority() {
    // SAFETY: gettid has no preconditions; setpriority changes only this thread's nice value.
    let r = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, TASK_NICE)
    };
    if r != 0 {
        tracing::warn!(
            "could not lower a task thread's priority: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// What the supervisor needs to place a task: its runtime, and the descriptor budget.
pub struct Host {
    pub tasks: tokio::runtime::Handle,
    pub fds: FdBudget,
    handles: Arc<Semaphore>,
    /// [`FdBudget::outbound`] permits, shared by every app's outbound requests.
    pub outbound: Arc<Semaphore>,
}

impl Host {
    pub fn new(tasks: tokio::runtime::Handle, fds: FdBudget) -> Host {
        let permits = usize::try_from(fds.for_tasks)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        Host {
            tasks,
            fds,
            handles: Arc::new(Semaphore::new(permits)),
            outbound: Arc::new(Semaphore::new(fds.outbound as usize)),
        }
    }

    /// Reserve `max_open` descriptors for a task until the permit is dropped, or say why not
    /// and what to do.
    pub fn reserve(&self, max_open: u32) -> Result<OwnedSemaphorePermit, String> {
        self.handles
            .clone()
            .try_acquire_many_owned(max_open)
            .map_err(|_| {
                format!(
                    "not enough open-file budget: this task may hold {max_open} open files and \
                     sockets (--max-open) and the daemon has {} of {} left for tasks (its limit \
                     of {} descriptors, less {} kept for the API, logs and HTTP connections and \
                     {} for apps' outbound requests); run it with a lower --max-open, or stop a \
                     task that is granted a directory or the network",
                    self.handles.available_permits(),
                    self.fds.for_tasks,
                    self.fds.nofile,
                    self.fds.reserved,
                    self.fds.outbound
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_leaves_the_reserve_and_the_connections() {
        let b = FdBudget::new(20_000, 10_000);
        assert_eq!((b.outbound, b.for_tasks), (1_024, 7_952));
        // No data plane: no apps, so no outbound share.
        let b = FdBudget::new(20_000, 0);
        assert_eq!((b.outbound, b.for_tasks), (0, 18_976));
        // A small limit: apps' outbound requests get at most half of what is left.
        let b = FdBudget::new(RESERVE + 100 + 8, 100);
        assert_eq!((b.outbound, b.for_tasks), (4, 4));
        // A limit below the reserve leaves nothing rather than wrapping around.
        let b = FdBudget::new(1_000, 10_000);
        assert_eq!((b.outbound, b.for_tasks), (0, 0));
    }

    #[tokio::test]
    async fn tasks_reserve_until_dropped() {
        let host = Host::new(
            tokio::runtime::Handle::current(),
            FdBudget::new(RESERVE + 100, 0),
        );
        let a = host.reserve(64).unwrap();
        let err = host.reserve(64).unwrap_err();
        assert!(err.contains("36 of 100 left"), "{err}");
        drop(a);
        assert!(host.reserve(64).is_ok());
    }
}
