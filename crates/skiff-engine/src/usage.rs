//! What a workload uses now, counted by the engine as it runs: the memory its live instances
//! hold, the wasm CPU time it has spent, and how many instances are alive. Read by the daemon's
//! `GET /v1/stats` (`skiff stats`, `skiff top`).
//!
//! Memory is what the guest's limit counts (every linear memory and every table, see
//! [`crate::Limits::memory`]), added as the limiter grants it and given back when the store is
//! dropped, so it is the sum over the instances alive now. CPU time is counted in epoch ticks
//! ([`crate::EPOCH_TICK`], 10 ms) that find the guest running wasm: time in host calls (I/O,
//! sleeps) is not counted, as a process's CPU time does not count its waits.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// One workload's counters; share it (`Arc`) between every run or instance of the workload.
/// Relaxed atomics: each number is independent, and a reader wants a recent value, not a
/// consistent snapshot of all three.
#[derive(Debug, Default)]
pub struct Usage {
    memory: AtomicU64,
    ticks: AtomicU64,
    live: AtomicU64,
}

impl Usage {
    /// Bytes of memories and tables held by the instances alive now.
    pub fn memory_bytes(&self) -> u64 {
        self.memory.load(Relaxed)
    }

    /// Time spent running wasm so far, to the tick.
    pub fn cpu_time(&self) -> Duration {
        crate::EPOCH_TICK
            .saturating_mul(u32::try_from(self.ticks.load(Relaxed)).unwrap_or(u32::MAX))
    }

    /// Instances alive now.
    pub fn instances(&self) -> u64 {
        self.live.load(Relaxed)
    }

    pub(crate) fn tick(&self) {
        self.ticks.fetch_add(1, Relaxed);
    }

    pub(crate) fn grew(&self, bytes: u64) {
        self.memory.fetch_add(bytes, Relaxed);
    }

    /// An instance's store was created (its limiter counts into this).
    pub(crate) fn born(&self) {
        self.live.fetch_add(1, Relaxed);
    }

    /// An instance's store was dropped, with `bytes` of memory.
    pub(crate) fn died(&self, bytes: u64) {
        self.memory.fetch_sub(bytes, Relaxed);
        self.live.fetch_sub(1, Relaxed);
    }
}
