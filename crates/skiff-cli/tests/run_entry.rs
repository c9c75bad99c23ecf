//! Entry points as `wasmtime run` calls them: `_initialize` then `""` for a module without
//! `_start`, `--invoke NAME ARGS` for any exported function of a core module, and `--invoke
//! 'NAME(ARGS)'` (WAVE) for a component's, arguments and results in wasmtime's syntax.

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

/// The outputs are wasmtime 49.0.3's for the same calls (`wasmtime run --invoke '…'
/// guests/wasm/calc.wasm`), checked by hand: WAVE in, one result a line out.
#[test]
fn invoke_calls_a_components_functions_in_wave_as_wasmtime_does() {
    let s = Skiff::new();
    let calc = g("calc.wasm");
    let call = |text: &str, expected: &str| prints(&s, &["run", "--invoke", text, &calc], expected);
    call("add(1, 2)", "3\n");
    call("is-even(4)", "true\n");
    call("half(3)", "1.5\n");
    call("half(0.1)", "0.05\n");
    call("pick(some(7))", "7\n");
    call("pick(none)", "0\n");
    call("pick(7)", "7\n"); // WAVE's shorthand for some(7)
    call("rank(blue)", "2\n");
    // In an exported interface (local:calc/ops), found by its name as wasmtime finds it.
    call("mul(-3, 4)", "-12\n");
    // A command component's own entry point is a function like any other.
    let hello = s.run(&["run", "--invoke", "run()", &g("hello-p2.wasm")]);
    hello.code(0).stdout_has("hello from skiff");
    assert!(hello.stdout.ends_with("ok\n"), "{hello}");
    s.run(&["inspect", &calc])
        .code(0)
        .stdout_has("skiff run --invoke 'NAME(ARGS)'")
        .stdout_has("add, is-even, half, pick, rank, crash");
}

#[test]
fn component_invoke_mistakes_say_what_is_wrong_and_run_nothing() {
    let s = Skiff::new();
    let calc = g("calc.wasm");
    let fails = |text: &str, says: &str| {
        s.run(&["run", "--invoke", text, &calc])
            .code(125)
            .stdout_lacks("\n")
            .stderr_has(says);
    };
    fails("nope(1)", "the component exports no function `nope`");
    fails(
        "add(1)",
        "`add` takes 2 argument(s) (a: u32, b: u32); fewer were given",
    );
    fails("add(1, 2, 3)", "more were given");
    fails("add(1, x)", "argument `b` of `add`: `x`");
    fails("add(-1, 2)", "argument `a` of `add`");
    fails("rank(purple)", "`purple` is not one of the enum's cases");
    fails("pick(some(x))", "argument `o` of `pick`: `x`");
    // A trap in the function is the guest's, as any trap.
    s.run(&["run", "--invoke", "crash()", &calc])
        .code(134)
        .stderr_has("unreachable");
    // Without --invoke, a component library says how to call it.
    s.run(&["run", &calc])
        .code(126)
        .stderr_has("--invoke 'NAME(ARGS)'");
}
