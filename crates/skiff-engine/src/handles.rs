//! The cap on a guest's handles: everything it holds through WASI (open files and directories,
//! sockets, streams, pollables, outgoing HTTP requests and bodies) lives in its store's
//! `ResourceTable`, so capping that table caps the host file descriptors a guest can pin.
//!
//! A WASI p1 module has a descriptor table of its own (`WasiP1Ctx`), but every p1 descriptor
//! is backed by an entry of the p2 `ResourceTable` inside it (p1 `path_open` is p2 `open-at`
//! plus a number), so the same cap holds there too: `WasiP1Ctx` exposes that table through
//! `WasiView::ctx()`.
//!
//! What the guest sees at the cap: wasmtime-wasi 48 turns a full table into a trap (its
//! `From<ResourceTableError>` for filesystem, socket and p1 errors), not an error code, and
//! WASI 0.2's `filesystem/error-code` has no "too many open files" to give. So the guest is
//! stopped with a reason that names the limit, like the memory limit does; the host and every
//! other guest carry on. The handle being opened is closed again by wasmtime before the trap.

use wasmtime::component::{ResourceTable, ResourceTableError};

/// Linux's default soft `RLIMIT_NOFILE`: a guest may hold as many handles as a native program
/// gets file descriptors unless it asks for more. Every handle counts, not only descriptors: a
/// p1 command starts with 4 or 5 (stdio, its preopens), a typical HTTP request uses 10-20
/// (fields, bodies, streams).
pub(crate) const DEFAULT_MAX_OPEN: usize = 1024;

/// A guest needs a few handles before its first line of code (stdio, preopens, the request):
/// a smaller cap would stop every guest at start, so it is raised to this.
pub const MIN_MAX_OPEN: usize = 16;

/// The cap a guest asked to hold `max` handles really gets: at least [`MIN_MAX_OPEN`]. Whoever
/// accounts for a guest's handles (the daemon's descriptor budget) must charge this number.
pub fn effective_max_open(max: usize) -> usize {
    max.max(MIN_MAX_OPEN)
}

/// Why `given` is not a handle cap to accept: callers refuse values below [`MIN_MAX_OPEN`]
/// rather than raise them silently.
pub fn invalid_max_open(given: &str) -> String {
    format!(
        "invalid handle count {given:?}: expected a whole number of at least {MIN_MAX_OPEN} \
         (default {DEFAULT_MAX_OPEN})"
    )
}

/// Cap `table` at `max` handles (at least [`MIN_MAX_OPEN`]).
pub(crate) fn cap(table: &mut ResourceTable, max: usize) {
    table.set_max_capacity(effective_max_open(max));
}

/// Whether `e` is a guest stopped by a full handle table.
pub(crate) fn hit(e: &wasmtime::Error) -> bool {
    matches!(
        e.downcast_ref::<ResourceTableError>(),
        Some(ResourceTableError::Full)
    )
}
