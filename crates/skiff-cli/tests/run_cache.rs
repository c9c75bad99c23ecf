//! The compile cache: the second run compiles nothing; a bad entry is never executed.

mod common;
use common::{cache_entries, guest, Skiff};
use std::fs;
use std::path::PathBuf;

#[test]
fn second_run_is_a_cache_hit() {
    let s = Skiff::new();
    let hello = guest("hello.wasm");
    let h = hello.to_str().unwrap();
    s.run(&["--log-level", "debug", "run", h])
        .code(0)
        .stderr_has("compile cache miss")
        .stderr_lacks("cache hit");
    let files = cache_entries(s.home.path());
    assert_eq!(files.len(), 1, "one entry: {files:?}");
    assert!(!files[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with(".tmp"));
    s.run(&["--log-level", "debug", "run", h])
        .code(0)
        .stderr_has("compile cache hit")
        .stdout_has("hello from skiff");
}

#[test]
fn components_are_cached_too() {
    let s = Skiff::new();
    let p2 = guest("hello-p2.wasm");
    s.run(&["run", p2.to_str().unwrap()]).code(0);
    s.run(&["--log-level", "debug", "run", p2.to_str().unwrap()])
        .code(0)
        .stderr_has("compile cache hit");
}

#[test]
fn a_corrupt_entry_is_removed_and_recompiled() {
    let s = Skiff::new();
    let hello = guest("hello.wasm");
    let h = hello.to_str().unwrap();
    s.run(&["run", h]).code(0);
    let entry = cache_entries(s.home.path()).pop().unwrap();

    // Flip one byte in the middle of the compiled code.
    let mut bytes = fs::read(&entry).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&entry, &bytes).unwrap();
    s.run(&["run", h])
        .code(0)
        .stdout_has("hello from skiff")
        .stderr_has("unusable")
        .stderr_has("checksum");
    // Rewritten whole: the next run hits again.
    s.run(&["--log-level", "debug", "run", h])
        .code(0)
        .stderr_has("compile cache hit");

    // Truncated.
    let bytes = fs::read(&entry).unwrap();
    fs::write(&entry, &bytes[..bytes.len() / 3]).unwrap();
    s.run(&["run", h]).code(0).stderr_has("unusable");
}

#[test]
fn an_entry_wasmtime_rejects_is_replaced() {
    // A foreign entry (another engine's, another version's, or not wasmtime's at all) passes the
    // checksum but must fail wasmtime's own header and compatibility check, and be replaced.
    use sha2::Digest;
    let s = Skiff::new();
    let hello = guest("hello.wasm");
    let h = hello.to_str().unwrap();
    s.run(&["run", h]).code(0);
    let entry = cache_entries(s.home.path()).pop().unwrap();
    let payload = b"this is not an ELF artifact produced by wasmtime".to_vec();
    let mut forged = b"SKIFFCW1".to_vec();
    forged.extend_from_slice(&sha2::Sha256::digest(&payload));
    forged.extend_from_slice(&payload);
    fs::write(&entry, forged).unwrap();
    s.run(&["run", h])
        .code(0)
        .stdout_has("hello from skiff")
        .stderr_has("unusable");
}

#[test]
fn no_cache_leaves_nothing_behind() {
    let s = Skiff::new();
    s.run(&["run", "--no-cache", guest("hello.wasm").to_str().unwrap()])
        .code(0);
    assert!(cache_entries(s.home.path()).is_empty());
}

#[test]
fn a_binary_that_cannot_run_as_asked_is_refused_before_compiling() {
    // The kind is read from the exports; compiling first cost a large reactor 37 s and left a
    // 68 MB entry behind. `--log-level debug` logs every compile ("compiled ...") and cache
    // lookup, so their absence shows nothing was compiled.
    let s = Skiff::new();
    let library = guest("library.wasm");
    s.run(&["--log-level", "debug", "run", library.to_str().unwrap()])
        .code(126)
        .stderr_has("core Wasm library module")
        .stderr_lacks("compile cache")
        .stderr_lacks("compiled");
    let handler = guest("http-hello.wasm");
    s.run(&["--log-level", "debug", "run", handler.to_str().unwrap()])
        .code(126)
        .stderr_has("skiff serve")
        .stderr_lacks("compile cache");
    let command = guest("hello-p2.wasm");
    s.run(&[
        "--log-level",
        "debug",
        "serve",
        "--listen",
        "127.0.0.1:0",
        command.to_str().unwrap(),
    ])
    .code(126)
    .stderr_has("skiff run")
    .stderr_lacks("compile cache");
    assert_eq!(cache_entries(s.home.path()), Vec::<PathBuf>::new());
}

#[test]
fn code_without_epoch_checks_is_cached_apart_from_code_with_them() {
    // Without --timeout `skiff run` compiles without epoch checks; with one, it needs them.
    // Code of one kind must never be loaded for the other: a tight loop under --timeout would
    // never stop (run_limits::a_tight_loop_stops_at_the_timeout covers the stop itself).
    let s = Skiff::new();
    let hello = guest("hello.wasm");
    let h = hello.to_str().unwrap();
    s.run(&["run", h]).code(0);
    assert_eq!(cache_entries(s.home.path()).len(), 1);
    s.run(&["--log-level", "debug", "run", "--timeout", "10s", h])
        .code(0)
        .stderr_has("compile cache miss");
    assert_eq!(cache_entries(s.home.path()).len(), 2);
    s.run(&["--log-level", "debug", "run", h])
        .code(0)
        .stderr_has("compile cache hit");
}
