//! skiff built for another architecture: a hello run and a served request, and a compile cache
//! shared between the two builds never executes the other's native code.
//!
//! Built for aarch64 and run under qemu by `scripts/aarch64-test` (which scripts/test runs):
//! `CARGO_BIN_EXE_skiff` is then the aarch64 skiff and `SKIFF_NATIVE_SKIFF` names the x86_64
//! one. Natively both would be the same binary and prove nothing, hence `#[ignore]`.

mod common;
use common::serve::Served;
use common::{cache_entries, guest, Done, Skiff};
use std::fs;
use std::process::{Command, Stdio};

/// `skiff ARGS` with the other architecture's binary, in the same SKIFF_HOME.
fn native(s: &Skiff, args: &[&str]) -> Done {
    let bin = std::env::var("SKIFF_NATIVE_SKIFF")
        .expect("SKIFF_NATIVE_SKIFF names the host's skiff (scripts/aarch64-test sets it)");
    Done::from(
        Command::new(bin)
            .env_clear()
            .env("SKIFF_HOME", s.home.path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("the native skiff runs"),
    )
}

#[test]
#[ignore = "needs a skiff of another architecture: run by scripts/aarch64-test"]
fn cross_arch_hello_serve_and_a_foreign_cache_entry_is_never_executed() {
    // The foreign build runs a command and serves a request.
    let s = Skiff::new();
    let hello = guest("hello.wasm");
    let h = hello.to_str().unwrap();
    s.run(&["--log-level", "debug", "run", h, "edge"])
        .code(0)
        .stdout_has("hello from skiff")
        .stderr_has("compile cache miss");
    let served = Served::start(&[guest("http-hello.wasm").to_str().unwrap()]);
    let r = served.get("/");
    assert_eq!((r.status, r.body.as_str()), (200, "hello from skiff\n"));
    drop(served);

    // The host's build, in the same home, keys its code apart: a miss, not the other's entry.
    let foreign = cache_entries(s.home.path());
    assert_eq!(foreign.len(), 1, "{foreign:?}");
    native(&s, &["--log-level", "debug", "run", h])
        .code(0)
        .stdout_has("hello from skiff")
        .stderr_has("compile cache miss");
    let both = cache_entries(s.home.path());
    assert_eq!(both.len(), 2, "one entry per architecture: {both:?}");
    let host = both.iter().find(|p| **p != foreign[0]).unwrap().clone();
    let foreign = foreign[0].clone();

    // A copied cache (an image of a home moved between boards, say): each build finds the
    // other's code under its own key. Its checksum is intact, so only wasmtime's check of the
    // target stands between it and execution: the entry must be refused and recompiled.
    let host_code = fs::read(&host).unwrap();
    let foreign_code = fs::read(&foreign).unwrap();
    assert_ne!(host_code, foreign_code);
    fs::write(&foreign, &host_code).unwrap();
    s.run(&["run", h])
        .code(0)
        .stdout_has("hello from skiff")
        .stderr_has("unusable");
    s.run(&["--log-level", "debug", "run", h])
        .code(0)
        .stderr_has("compile cache hit");

    fs::write(&host, &foreign_code).unwrap();
    native(&s, &["run", h])
        .code(0)
        .stdout_has("hello from skiff")
        .stderr_has("unusable");
    native(&s, &["--log-level", "debug", "run", h])
        .code(0)
        .stderr_has("compile cache hit");
}
