//! The WebAssembly proposals skiff's engine leaves off, and which of them a binary uses, so a
//! binary that fails to compile only for that is told so ("uses the threads proposal, which
//! skiff does not enable") rather than called invalid.
//!
//! Everything else wasmtime 48 enables by default is on in skiff too: the Wasm 3.0 set,
//! exception handling and GC included (`skiff-engine`'s wasmtime features).

use wasmparser::{Validator, WasmFeatures};

/// A proposal skiff does not enable, and why.
#[derive(Debug)]
pub struct Proposal {
    pub name: &'static str,
    pub why: &'static str,
    flag: WasmFeatures,
}

impl std::fmt::Display for Proposal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "it uses the {} proposal, which skiff does not enable: {}",
            self.name, self.why
        )
    }
}

const OFF_IN_WASMTIME: &str = "wasmtime 48 leaves it off by default too";

/// What skiff leaves off. Only the first is on by default in wasmtime 48: threads (shared
/// memory), because wasmtime never asks a resource limiter about shared memories, so a guest
/// could not be held to its memory limit (docs/security.md), and skiff has no wasi-threads.
const LEFT_OFF: &[Proposal] = &[
    Proposal {
        name: "threads (shared memory)",
        why: "a shared memory escapes the guest's memory limit, and skiff has no wasi-threads \
              to start a thread with; build without -pthread / shared memory",
        flag: WasmFeatures::THREADS,
    },
    Proposal {
        name: "legacy exception handling (try/catch)",
        why: "rebuild with the standard exception handling (try_table, exnref), which skiff \
              runs; LLVM 19+ and Binaryen's --translate-to-exnref emit it",
        flag: WasmFeatures::LEGACY_EXCEPTIONS,
    },
    Proposal {
        name: "stack switching",
        why: OFF_IN_WASMTIME,
        flag: WasmFeatures::STACK_SWITCHING,
    },
    Proposal {
        name: "wide arithmetic",
        why: OFF_IN_WASMTIME,
        flag: WasmFeatures::WIDE_ARITHMETIC,
    },
    Proposal {
        name: "custom page sizes",
        why: OFF_IN_WASMTIME,
        flag: WasmFeatures::CUSTOM_PAGE_SIZES,
    },
    Proposal {
        name: "shared-everything threads",
        why: OFF_IN_WASMTIME,
        flag: WasmFeatures::SHARED_EVERYTHING_THREADS,
    },
    Proposal {
        name: "component model async (WASI 0.3)",
        why: "build it for WASI 0.2 (wasm32-wasip2)",
        flag: WasmFeatures::CM_ASYNC,
    },
];

/// The proposal skiff leaves off that `bytes` needs, if that is what keeps it from compiling:
/// the binary validates with every proposal on, and fails without this one. `None` for a
/// binary that is invalid whatever is enabled. Validates the whole binary: once for one that
/// needs none of them (as good as every binary), once more per proposal tried for one that
/// does, so it is for error paths and `skiff inspect`, not for every load.
pub fn left_off_proposal(bytes: &[u8]) -> Option<&'static Proposal> {
    let valid_with = |f: WasmFeatures| Validator::new_with_features(f).validate_all(bytes).is_ok();
    let off = LEFT_OFF
        .iter()
        .fold(WasmFeatures::empty(), |all, p| all | p.flag);
    if valid_with(WasmFeatures::all() - off) || !valid_with(WasmFeatures::all()) {
        return None;
    }
    LEFT_OFF
        .iter()
        .find(|p| !valid_with(WasmFeatures::all() - p.flag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_memory_names_threads_and_an_empty_module_nothing() {
        // (module (memory 1 1 shared))
        let shared = b"\0asm\x01\0\0\0\x05\x04\x01\x03\x01\x01";
        let p = left_off_proposal(shared).expect("threads");
        assert!(p.name.starts_with("threads"), "{p}");
        assert!(left_off_proposal(b"\0asm\x01\0\0\0").is_none());
        // Invalid whatever is enabled: a type section cut short.
        assert!(left_off_proposal(b"\0asm\x01\0\0\0\x01\x05\x01").is_none());
    }
}
