//! Per-instance limits, on by default.
//!
//! One budget per guest: every linear memory and every table of a guest's `Store` are counted
//! together against [`Limits::memory`]. Counting each memory alone (as wasmtime's own
//! `StoreLimits` does) let a multi-memory module multiply the limit: 20 memories of 15 MiB
//! reached 326 MB RSS under `--memory 16m`, and one `table.grow` of 200M funcrefs (tables were
//! not limited at all) took 1.58 GB.

use std::time::Duration;

/// What one instance may use. `Default` is the documented safe default, not "unlimited".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of every linear memory plus every table of the guest, counted together (a table
    /// at [`TABLE_ELEMENT_BYTES`] per element). A component's adapter and shims count too.
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

/// What one table element is counted at, in bytes. wasmtime 48 stores a funcref slot as one
/// pointer (`Option<SendSyncPtr<VMFuncRef>>`, 8 bytes on 64-bit hosts; measured: 200M funcrefs
/// took 1.58 GB); GC references (4 bytes) and continuations (16) need features skiff does not
/// enable. Tables share the memory budget rather than having one of their own: a host byte is
/// a host byte, whichever instruction asked for it, and one number is what an operator can
/// reason about. Real guests barely notice: StarlingMonkey's table of ~8k functions is 62 KiB.
pub(crate) const TABLE_ELEMENT_BYTES: u64 = 8;

/// Core instances per guest. A component is several core instances (the program, its WASI
/// adapter, the shim and fixup modules wit-component adds: 3 or 4 for every guest in guests/,
/// http-js included); toolchains that link shared libraries as separate core modules
/// (componentize-py) need one per library, so the bound leaves room for dozens. Each instance
/// costs host memory outside the budget (its context, its functions' references).
pub(crate) const MAX_INSTANCES: usize = 64;
/// Linear memories per guest. Components in guests/ have one; multi-memory programs a few.
/// Each memory reserves its own address-space region (4 GiB + guards with the on-demand
/// allocator), so this bounds what one guest takes of the process's mappings.
pub(crate) const MAX_MEMORIES: usize = 16;
/// Tables per guest: components in guests/ have two (the program's and the shim's).
pub(crate) const MAX_TABLES: usize = 64;

/// wasmtime refuses an instance past the counts above with its own words ("resource limit
/// exceeded: memory count too high at 17"); add what the bounds are. The binary cannot run under
/// any `--memory`: the count is fixed in it.
pub(crate) fn explain_count_limit(message: String) -> String {
    if !message.contains("resource limit exceeded") {
        return message;
    }
    format!(
        "{message} (a guest may have at most {MAX_MEMORIES} linear memories, {MAX_TABLES} tables \
         and {MAX_INSTANCES} core instances)"
    )
}

/// A `ResourceLimiter` holding every memory and table of one store to one budget. Growth past
/// it traps, and the limiter remembers the total asked for, so the run can report "memory
/// limit" instead of a bare trap.
///
/// wasmtime never asks a limiter about shared memories; skiff's engine leaves the threads
/// proposal off, so a module declaring one is refused as invalid and every memory stays inside
/// the budget (pinned by a test below).
pub(crate) struct MemoryLimiter {
    limit: u64,
    /// Bytes granted so far, over every memory and table of the store. Memories and tables
    /// never shrink and live as long as the store, so this only grows.
    used: u64,
    /// The total the guest asked for when it was stopped.
    pub(crate) hit: Option<u64>,
    /// The workload's counters, which this store's memory and ticks are added to.
    usage: Option<std::sync::Arc<crate::Usage>>,
}

impl MemoryLimiter {
    pub(crate) fn new(limit: u64) -> Self {
        MemoryLimiter {
            limit,
            used: 0,
            hit: None,
            usage: None,
        }
    }

    /// A limiter whose store counts as one live instance of `usage`, with what it is granted
    /// (until the store, and so this limiter, is dropped).
    pub(crate) fn metered(limit: u64, usage: Option<std::sync::Arc<crate::Usage>>) -> Self {
        if let Some(u) = &usage {
            u.born();
        }
        MemoryLimiter {
            usage,
            ..MemoryLimiter::new(limit)
        }
    }

    /// An epoch tick found this store's guest running wasm.
    pub(crate) fn tick(&self) {
        if let Some(u) = &self.usage {
            u.tick();
        }
    }

    /// Grant `current -> desired` of one memory or table (in bytes) if the store's total stays
    /// within the budget. wasmtime asks once per creation (as `current == 0`; with the pooling
    /// allocator too) and once per growth, always about one memory or table, so the delta is
    /// what this request adds to the total.
    fn grant(
        &mut self,
        current: u64,
        desired: u64,
        maximum: Option<u64>,
    ) -> wasmtime::Result<bool> {
        let total = self.used.saturating_add(desired.saturating_sub(current));
        // Trapping (rather than answering -1 to memory.grow) is deliberate: like the kernel's
        // OOM killer it stops the guest with a reason the operator can see, instead of leaving
        // a guest that ignores malloc failures to misbehave. Checked before the maximum, so a
        // guest is stopped at its budget alike whether its table is capped by the pooling
        // allocator's slot (`skiff serve`: 100 000 elements) or unbounded (`run`, the daemon).
        if total > self.limit {
            self.hit = Some(total);
            return Err(wasmtime::Error::new(MemoryLimitHit));
        }
        // Past the memory's or table's own maximum wasmtime fails the growth after asking
        // (memory.grow and table.grow answer -1, as the spec says): refuse it here instead, so
        // it is never counted.
        if maximum.is_some_and(|max| desired > max) {
            return Ok(false);
        }
        if let Some(u) = &self.usage {
            u.grew(total - self.used);
        }
        self.used = total;
        Ok(true)
    }
}

impl Drop for MemoryLimiter {
    fn drop(&mut self) {
        if let Some(u) = &self.usage {
            u.died(self.used);
        }
    }
}

/// The error returned from the limiter; wasmtime turns it into a trap whose cause we find again.
#[derive(Debug, thiserror::Error)]
#[error("memory limit reached")]
pub(crate) struct MemoryLimitHit;

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grant(current as u64, desired as u64, maximum.map(|m| m as u64))
    }

    /// Called when a growth this limiter granted failed anyway (the pooling allocator's slot is
    /// full, mmap failed), and also when wasmtime refused a growth before asking (past what the
    /// memory's index type can address). The two cannot be told apart, so nothing is given
    /// back: a failed growth stays counted, which errs towards the host, never the guest. The
    /// default answer is kept: memory.grow returns -1.
    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        tracing::debug!("memory growth failed: {error:#}");
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let bytes = |n: usize| (n as u64).saturating_mul(TABLE_ELEMENT_BYTES);
        self.grant(bytes(current), bytes(desired), maximum.map(bytes))
    }

    /// Called for a growth refused before asking (a size that overflows) or past the table's
    /// maximum (which `grant` refuses first): nothing was counted for either. table.grow
    /// returns -1.
    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        tracing::debug!("table growth failed: {error:#}");
        Ok(())
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    const MIB: usize = 1 << 20;

    #[test]
    fn memories_and_tables_share_one_budget() {
        let mut l = MemoryLimiter::new(16 << 20);
        // Two memories created at 4 MiB each, then one grown by 6 MiB: 14 MiB in all.
        assert!(l.memory_growing(0, 4 * MIB, None).unwrap());
        assert!(l.memory_growing(0, 4 * MIB, None).unwrap());
        assert!(l.memory_growing(4 * MIB, 10 * MIB, None).unwrap());
        // A table of 128Ki funcrefs is 1 MiB: 15 MiB.
        assert!(l.table_growing(0, 128 << 10, None).unwrap());
        // Each memory alone is far below 16 MiB, but the sum is not.
        let err = l.memory_growing(4 * MIB, 6 * MIB, None).unwrap_err();
        assert!(err.downcast_ref::<MemoryLimitHit>().is_some());
        assert_eq!(l.hit, Some(17 << 20));
        // A refused growth is not counted: 1 MiB is still there to take.
        assert!(l.memory_growing(4 * MIB, 5 * MIB, None).unwrap());
        assert!(l.table_growing(128 << 10, (128 << 10) + 1, None).is_err());
    }

    #[test]
    fn usage_counts_what_live_stores_hold() {
        let usage = std::sync::Arc::new(crate::Usage::default());
        let mut a = MemoryLimiter::metered(16 << 20, Some(usage.clone()));
        let mut b = MemoryLimiter::metered(16 << 20, Some(usage.clone()));
        assert!(a.memory_growing(0, 4 * MIB, None).unwrap());
        assert!(b.memory_growing(0, 2 * MIB, None).unwrap());
        // Refused growth is not counted.
        assert!(b.memory_growing(2 * MIB, 20 * MIB, None).is_err());
        assert_eq!((usage.memory_bytes(), usage.instances()), (6 << 20, 2));
        a.tick();
        drop(a);
        assert_eq!((usage.memory_bytes(), usage.instances()), (2 << 20, 1));
        assert_eq!(usage.cpu_time(), crate::EPOCH_TICK);
        drop(b);
        assert_eq!((usage.memory_bytes(), usage.instances()), (0, 0));
    }

    #[test]
    fn a_huge_table_grow_is_stopped_by_the_memory_budget() {
        let mut l = MemoryLimiter::new(16 << 20);
        assert!(l.table_growing(1, 200_000_001, None).is_err());
        assert_eq!(l.hit, Some(200_000_000 * TABLE_ELEMENT_BYTES));
        // The same under the pooling allocator, whose table slot caps the table: the budget is
        // what the guest is stopped by, as everywhere else.
        let mut l = MemoryLimiter::new(16 << 20);
        assert!(l.table_growing(1, 200_000_001, Some(100_000)).is_err());
    }

    /// The counts are enforced by wasmtime from `instances()`/`memories()`/`tables()`; its
    /// message is matched by `explain_count_limit`, so pin its wording here.
    #[test]
    fn more_memories_than_allowed_fail_instantiation_with_the_bounds_named() {
        let engine = wasmtime::Engine::default();
        let memories = "(memory 0)".repeat(MAX_MEMORIES + 1);
        let module = wasmtime::Module::new(&engine, format!("(module {memories})")).unwrap();
        let mut store = wasmtime::Store::new(&engine, MemoryLimiter::new(1 << 20));
        store.limiter(|l| l as &mut dyn wasmtime::ResourceLimiter);
        let err = wasmtime::Instance::new(&mut store, &module, &[]).unwrap_err();
        let message = explain_count_limit(format!("{err:#}"));
        assert!(message.contains("memory count too high"), "{message}");
        assert!(message.contains("at most 16 linear memories"), "{message}");
        // At the bound, it instantiates.
        let memories = "(memory 0)".repeat(MAX_MEMORIES);
        let module = wasmtime::Module::new(&engine, format!("(module {memories})")).unwrap();
        let mut store = wasmtime::Store::new(&engine, MemoryLimiter::new(1 << 20));
        store.limiter(|l| l as &mut dyn wasmtime::ResourceLimiter);
        wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
    }

    /// Shared memories grow without asking the limiter: they must stay impossible.
    #[test]
    fn shared_memories_are_refused_so_none_escapes_the_budget() {
        let engine = crate::Engine::new(&crate::EngineConfig::default()).unwrap();
        let err = wasmtime::Module::new(&engine.inner, "(module (memory 1 65536 shared))")
            .map(drop)
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("threads must be enabled"),
            "{err:#}"
        );
    }

    #[test]
    fn growth_past_a_declared_maximum_is_refused_and_not_counted() {
        let mut l = MemoryLimiter::new(4 << 20);
        assert!(!l.memory_growing(0, 4 * MIB, Some(MIB)).unwrap());
        assert!(!l.table_growing(0, 1000, Some(10)).unwrap());
        assert!(l.memory_growing(0, 4 * MIB, Some(4 * MIB)).unwrap());
        assert_eq!(l.hit, None);
    }
}
