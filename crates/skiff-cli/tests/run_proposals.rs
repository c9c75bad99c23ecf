//! WebAssembly proposals: what wasmtime 48 enables by default runs (exception handling, GC);
//! what skiff leaves off is named, never called invalid.

mod common;
use common::{guest, Skiff};

fn g(name: &str) -> String {
    guest(name).to_str().unwrap().to_string()
}

#[test]
fn exceptions_are_thrown_and_caught() {
    // Exit 2: the tag's 42 arrived in the catch (see guests/wat/exceptions.proposal.wat).
    Skiff::new().run(&["run", &g("exceptions.wasm")]).code(2);
}

#[test]
fn gc_structs_and_arrays_work() {
    // Exit 7: 3 from the struct plus 4 from the array (guests/wat/gc.proposal.wat).
    Skiff::new().run(&["run", &g("gc.wasm")]).code(7);
}

#[test]
fn a_proposal_skiff_leaves_off_is_named_not_called_invalid() {
    let s = Skiff::new();
    let shared = g("shared-memory.wasm");
    s.run(&["run", &shared])
        .code(126)
        .stderr_has("uses the threads (shared memory) proposal, which skiff does not enable")
        .stderr_has("wasi-threads")
        .stderr_lacks("invalid");
    s.run(&["inspect", &shared])
        .code(0)
        .stdout_has("Runs with:  nothing: it uses the threads (shared memory) proposal");
}

#[test]
fn cpp_built_with_this_machines_clang_is_told_how_to_rebuild() {
    // clang 14's -fwasm-exceptions emits the legacy try/catch instructions, which no wasmtime
    // runs (guests/cpp/throw-legacy.cpp): refused before any guest code, named, with the fix.
    let s = Skiff::new();
    let cpp = g("throw-legacy.wasm");
    s.run(&["run", &cpp])
        .code(126)
        .stderr_has("uses the legacy exception handling (try/catch) proposal")
        .stderr_has("try_table")
        .stdout_lacks("caught")
        .stderr_lacks("invalid");
    s.run(&["inspect", &cpp])
        .code(0)
        .stdout_has("it uses the legacy exception handling (try/catch) proposal");
}
