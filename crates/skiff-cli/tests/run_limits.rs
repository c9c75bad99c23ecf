//! `skiff run`: limits, traps, and what each exit status means.

mod common;
use common::{guest, Skiff};

fn g(name: &str) -> String {
    guest(name).to_str().unwrap().to_string()
}

#[test]
fn the_guests_exit_code_passes_through() {
    let s = Skiff::new();
    s.run(&["run", &g("exit-code.wasm"), "7"]).code(7);
    s.run(&["run", &g("exit-code.wasm"), "0"]).code(0);
}

#[test]
fn a_tight_loop_stops_at_the_timeout() {
    let s = Skiff::new();
    s.run(&["run", "--timeout", "300ms", &g("loop.wasm")])
        .code(124)
        .stderr_has("timeout")
        .stderr_has("300ms (--timeout)");
}

/// A guest asleep in a host call is not running wasm code, so no epoch check reaches it; the
/// timeout must end the call itself. ticker prints its first tick, then sleeps an hour
/// (`nanosleep`) before the next.
#[test]
fn a_guest_asleep_in_a_host_call_stops_at_the_timeout() {
    let s = Skiff::new();
    s.run(&[
        "run",
        "--timeout",
        "300ms",
        &g("ticker.wasm"),
        "1",
        "3600000",
    ])
    .code(124)
    .stderr_has("timeout: the guest ran longer than 300ms (--timeout)")
    .stdout_has("tick 1")
    .stdout_lacks("tick 2");
}

/// The same for a guest waiting to read stdin (`-i`) that never gets input nor its end.
#[test]
fn a_guest_waiting_for_stdin_stops_at_the_timeout() {
    use std::process::Stdio;
    let s = Skiff::new();
    let mut child = s
        .cmd()
        .args(["run", "-i", "--timeout", "300ms", &g("cat.wasm")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Held open (and never written) until skiff has exited: `wait_with_output` would close it.
    let _stdin = child.stdin.take();
    common::Done::from(child.wait_with_output().unwrap())
        .code(124)
        .stderr_has("timeout: the guest ran longer than 300ms (--timeout)");
}

#[test]
fn memory_growth_past_the_limit_is_stopped() {
    let s = Skiff::new();
    s.run(&["run", "--memory", "2m", &g("memory-hog.wasm")])
        .code(137)
        .stderr_has("memory limit")
        .stderr_has("2 MiB (--memory)");
}

#[test]
fn the_default_memory_limit_is_on() {
    let s = Skiff::new();
    s.run(&["run", &g("memory-hog.wasm")])
        .code(137)
        .stderr_has("128 MiB (--memory)");
}

#[test]
fn every_memory_of_a_guest_counts_against_one_limit() {
    let s = Skiff::new();
    // 16 memories grown to 15 MiB each: every one alone fits under 16 MiB, together they do not.
    s.run(&["run", "--memory", "16m", &g("many-memories.wasm")])
        .code(137)
        .stderr_has("memory limit")
        .stderr_has("memories and tables together")
        .stderr_has("16 MiB (--memory)");
    // Nor under the default (240 MiB in all).
    s.run(&["run", &g("many-memories.wasm")])
        .code(137)
        .stderr_has("128 MiB (--memory)");
    // With room for all of it the guest runs to its end: the limit is what stopped it above.
    s.run(&["run", "--memory", "256m", &g("many-memories.wasm")])
        .code(0);
}

#[test]
fn tables_count_against_the_memory_limit() {
    let s = Skiff::new();
    // One table.grow of 200M funcrefs: 1.6 GB of host memory, asked for in one instruction.
    s.run(&["run", "--memory", "16m", &g("table-hog.wasm")])
        .code(137)
        .stderr_has("memory limit")
        .stderr_has("memories and tables together would need 1.5 GiB")
        .stderr_has("16 MiB (--memory)");
    s.run(&["run", &g("table-hog.wasm")])
        .code(137)
        .stderr_has("128 MiB (--memory)");
}

#[test]
fn ordinary_guests_fit_the_budget_and_its_counts() {
    let s = Skiff::new();
    // A core module, and a component (several core instances, two tables).
    s.run(&["run", "--memory", "16m", &g("hello.wasm")])
        .code(0)
        .stdout_has("hello from skiff");
    s.run(&["run", "--memory", "16m", &g("hello-p2.wasm")])
        .code(0)
        .stdout_has("hello from skiff");
}

#[test]
fn more_memories_than_a_guest_may_have_cannot_run() {
    let s = Skiff::new();
    s.run(&["run", &g("too-many-memories.wasm")])
        .code(126)
        .stderr_has("memory count too high")
        .stderr_has("at most 16 linear memories");
}

#[test]
fn a_trap_prints_the_message_and_backtrace() {
    let s = Skiff::new();
    s.run(&["run", &g("trap.wasm")])
        .code(134)
        .stderr_has("guest trapped")
        .stderr_has("unreachable")
        .stderr_has("wasm backtrace:");
}

#[test]
fn stack_overflow_names_the_stack_limit() {
    let s = Skiff::new();
    s.run(&["run", "--stack", "256k", &g("stack-overflow.wasm")])
        .code(134)
        .stderr_has("stack limit")
        .stderr_has("256 KiB");
}

#[test]
fn a_missing_file_is_127() {
    let s = Skiff::new();
    s.run(&["run", "no-such-file.wasm"])
        .code(127)
        .stderr_has("no-such-file.wasm: no such file");
}

#[test]
fn files_that_are_not_runnable_are_126_with_what_they_are() {
    let s = Skiff::new();
    let text = s.run(&["run", &g("not-wasm.txt")]);
    text.code(126).stderr_has("text file");
    // Said once (it was "not a WebAssembly binary: it is a text file, not a WebAssembly binary").
    assert_eq!(
        text.stderr.matches("not a WebAssembly binary").count(),
        1,
        "{}",
        text.stderr
    );
    s.run(&["run", &g("truncated.wasm")]).code(126);
    s.run(&["run", &g("library.wasm")])
        .code(126)
        .stderr_has("library");
    s.run(&["run", &g("http-hello.wasm")])
        .code(126)
        .stderr_has("skiff serve");
}

#[test]
fn bad_flags_are_125() {
    let s = Skiff::new();
    s.run(&["run", "--memory", "lots", &g("hello.wasm")])
        .code(125)
        .stderr_has("invalid size");
    s.run(&["run", "--no-such-flag", &g("hello.wasm")])
        .code(125);
}

#[test]
fn help_has_examples_and_exits_0() {
    let s = Skiff::new();
    s.run(&["run", "--help"])
        .code(0)
        .stdout_has("Examples:")
        .stdout_has("-v, --volume");
}
