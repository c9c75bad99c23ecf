//! Entry points as `wasmtime run` calls them: `_initialize` then `""` for a module without
//! `_start`, and `--invoke NAME ARGS` for any exported function of a core module, arguments
//! and results in wasmtime's syntax.

mod common;
use common::{guest, Skiff};

fn g(name: &str) -> String {
    guest(name).to_str().unwrap().to_string()
}

/// Exit 0 with exactly this on stdout (what `wasmtime run --invoke` prints: results only).
fn prints(s: &Skiff, args: &[&str], expected: &str) {
    let done = s.run(args);
    done.code(0);
    assert_eq!(done.stdout, expected, "{done}");
}

#[test]
fn a_module_with_initialize_and_the_empty_export_runs_both_in_order() {
    let s = Skiff::new();
    s.run(&["run", &g("default-export.wasm")])
        .code(0)
        .stdout_has("main ran after _initialize");
    s.run(&["inspect", &g("default-export.wasm")])
        .code(0)
        .stdout_has("Runs with:  skiff run\n");
}

#[test]
fn invoke_parses_arguments_by_type_and_prints_results_as_wasmtime_does() {
    let s = Skiff::new();
    let r = g("reactor.wasm");
    // `_initialize` ran first: the base is 100. Hexadecimal as wasmtime reads it.
    prints(&s, &["run", "--invoke", "add_base", &r, "0x10"], "116\n");
    prints(
        &s,
        &["run", "--invoke", "wide", &r, "-4611686018427387904"],
        "-9223372036854775808\n",
    );
    prints(&s, &["run", "--invoke", "scale", &r, "3", "0.5"], "1.5\n");
    prints(&s, &["run", "--invoke", "pair", &r], "-7\n0.5\n");
    prints(&s, &["run", "--invoke", "nothing", &r], "");
    // A library with no `_initialize` at all.
    prints(
        &s,
        &["run", "--invoke", "add", &g("library.wasm"), "2", "3"],
        "5\n",
    );
}

#[test]
fn invoke_mistakes_say_what_is_wrong() {
    let s = Skiff::new();
    let r = g("reactor.wasm");
    s.run(&["run", "--invoke", "nope", &r])
        .code(125)
        .stderr_has("no function named `nope`")
        .stderr_has("skiff inspect");
    s.run(&["run", "--invoke", "add_base", &r])
        .code(125)
        .stderr_has("takes 1 arguments, 0 given");
    s.run(&["run", "--invoke", "add_base", &r, "ten"])
        .code(125)
        .stderr_has("argument 1 of `add_base` (i32): `ten`");
    s.run(&["run", "--invoke", "run", &g("hello-p2.wasm")])
        .code(126)
        .stderr_has("core modules");
    // Without --invoke a reactor is still no command, and the error says what to do.
    s.run(&["run", &r]).code(126).stderr_has("--invoke");
}

#[test]
fn inspect_lists_what_can_be_invoked() {
    let s = Skiff::new();
    s.run(&["inspect", &g("reactor.wasm")])
        .code(0)
        .stdout_has("skiff run --invoke")
        .stdout_has("add_base(i32) -> i32")
        .stdout_has("scale(f64, f32) -> f64")
        .stdout_has("pair() -> (i32, f32)");
}
