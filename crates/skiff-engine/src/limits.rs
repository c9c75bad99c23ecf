//! Per-instance limits, on by default.

use std::time::Duration;

/// What one instance may use. `Default` is the documented safe default, not "unlimited".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory per instance, in bytes. (A component's adapter may hold a second, tiny
    /// memory; each memory is held to this limit, and the guest's own is the one that grows.)
    pub memory: u64,
    /// Wall-clock time for the whole run; `None` runs until the guest ends.
    pub timeout: Option<Duration>,
    /// Handles the guest may hold at once: open files and directories, sockets, streams (see
    /// `crate::handles`). Past it the guest is stopped with a clear reason.
    pub max_open: usize,
}

impl Limits {
    /// 128 MiB: the heap Fastly's Compute gives a request, plenty for CLI tools and handlers.
    pub const DEFAULT_MEMORY: u64 = 128 << 20;
    /// Linux's default soft `RLIMIT_NOFILE`: what a native program gets unless it asks.
    pub const DEFAULT_MAX_OPEN: usize = crate::handles::DEFAULT_MAX_OPEN;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: Self::DEFAULT_MEMORY,
            timeout: None,
            max_open: Self::DEFAULT_MAX_OPEN,
        }
    }
}

/// A `ResourceLimiter` that refuses growth past the limit by trapping, and remembers that it
/// did, so the run can report "memory limit" instead of a bare trap.
pub(crate) struct MemoryLimiter {
    limit: u64,
    pub(crate) hit: Option<u64>,
}

impl MemoryLimiter {
    pub(crate) fn new(limit: u64) -> Self {
        MemoryLimiter { limit, hit: None }
    }
}

/// The error returned from the limiter; wasmtime turns it into a trap whose cause we find again.
#[derive(Debug, thiserror::Error)]
#[error("memory limit reached")]
pub(crate) struct MemoryLimitHit;

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Trapping (rather than answering -1 to memory.grow) is deliberate: like the kernel's
        // OOM killer it stops the guest with a reason the operator can see, instead of leaving
        // a guest that ignores malloc failures to misbehave.
        if desired as u64 > self.limit {
            self.hit = Some(desired as u64);
            return Err(wasmtime::Error::new(MemoryLimitHit));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}
