//! `skiff stats` and `skiff top` against the real daemon: memory, CPU time and requests per
//! workload from the engine's counters, live on a terminal (a pseudo-terminal), one sample with
//! `--no-stream`, and a workload that ends while it is watched.

mod common;

use common::daemon::{Daemon, PATIENCE};
use common::guest;
use common::serve::curl;
use std::time::{Duration, Instant};

fn g(name: &str) -> String {
    guest(name).display().to_string()
}

/// One `--no-stream` sample as JSON: the shown workloads by name.
fn sample(d: &Daemon) -> serde_json::Value {
    let out = d.run(&["stats", "--no-stream", "--format", "json"]);
    out.code(0);
    serde_json::from_str(&out.stdout).unwrap()
}

fn of<'a>(s: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    s.as_array().unwrap().iter().find(|w| w["name"] == name)
}

/// Poll until `pred` holds for workload `name`'s stats.
fn wait_stats(d: &Daemon, name: &str, what: &str, pred: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let s = sample(d);
        if of(&s, name).is_some_and(&pred) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never showed {what}: {s:#}"
        );
    }
}

#[test]
fn stats_and_top_show_memory_cpu_and_requests() {
    let d = Daemon::start(&["--http-listen", "127.0.0.1:0"]);
    // A task that spins (CPU), one that sleeps between ticks, an app that is asked.
    d.run(&["run", "-d", "--name", "spin", &g("loop.wasm")])
        .code(0);
    d.run(&[
        "run",
        "-d",
        "--name",
        "tick",
        "--memory",
        "64m",
        &g("ticker.wasm"),
        "0",
        "100",
    ])
    .code(0);
    d.deploy("api", "/", &g("http-hello.wasm"));
    for _ in 0..3 {
        assert_eq!(curl(&[&format!("http://{}/", d.http_addr())]).status, 200);
    }
    d.wait_status("tick", "running");

    wait_stats(&d, "spin", "CPU time", |w| w["cpu_ms"].as_u64() > Some(0));
    let s = sample(&d);
    let tick = of(&s, "tick").unwrap();
    assert_eq!(tick["kind"], "task");
    assert_eq!(tick["instances"], 1);
    // Its linear memory (at least one 64 KiB page), under the limit it was given.
    assert!(tick["memory_bytes"].as_u64().unwrap() >= 64 << 10, "{tick}");
    assert_eq!(tick["memory_limit_bytes"], 64 << 20);
    let api = of(&s, "api").unwrap();
    assert_eq!(
        (api["kind"].as_str(), api["requests"].as_u64()),
        (Some("app"), Some(3))
    );
    // Between requests an app holds no instance, so no memory.
    wait_stats(&d, "api", "no live instance", |w| {
        w["instances"] == 0 && w["memory_bytes"] == 0
    });

    // The table: Docker's columns, one row per running workload, or only those named.
    let table = d.run(&["stats", "--no-stream", "spin", "api"]);
    table
        .code(0)
        .stdout_has("CPU %")
        .stdout_has("MEM USAGE / LIMIT");
    assert_eq!(table.stdout.lines().count(), 3, "{}", table.stdout);
    d.run(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}={{.Requests}}",
        "api",
    ])
    .code(0)
    .stdout_has("api=3");
    // Docker's own field names work too.
    let docker = "{{.Container}} {{.PIDs}} {{.MemUsage}}";
    d.run(&["stats", "--no-stream", "--format", docker, "spin"])
        .code(0)
        .stdout_has("spin 1 ");
    d.run(&["stats", "--no-stream", "nosuch"])
        .code(125)
        .stderr_has("nosuch: no such running workload");

    // top: what runs in one workload (no processes: its instances).
    d.run(&["top", "tick"])
        .code(0)
        .stdout_has("INSTANCES")
        .stdout_has("ticker.wasm 0 100");
    d.run(&["stop", "tick"]).code(0);
    d.run(&["top", "tick"]).code(125).stderr_has("not running");
}

/// A workload that ends between two samples leaves the table; `stats` carries on.
#[test]
fn a_workload_that_ends_while_watched_leaves_the_table() {
    let d = Daemon::start(&[]);
    d.run(&["run", "-d", "--name", "stay", &g("ticker.wasm")])
        .code(0);
    // 30 ticks of 50 ms: it ends while stats runs.
    d.run(&["run", "-d", "--name", "brief", &g("ticker.wasm"), "30"])
        .code(0);
    d.wait_status("stay", "running");
    let mut watch = d
        .skiff
        .cmd()
        .args(["stats", "--format", "{{.Name}}"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(watch.stdout.take().unwrap());
    d.wait_status("brief", "exited");
    // Frames after the end show `stay` only, and keep coming.
    let mut after_end = 0;
    let deadline = Instant::now() + PATIENCE;
    for line in std::io::BufRead::lines(out).map_while(Result::ok) {
        if line == "stay" {
            after_end += 1;
        }
        if after_end >= 3 {
            break;
        }
        assert!(Instant::now() < deadline);
    }
    let s = sample(&d);
    assert!(of(&s, "brief").is_none(), "{s:#}");
    let _ = watch.kill();
    let _ = watch.wait();
}

/// Live on a terminal: the table is drawn, then redrawn each second, until Ctrl-C.
#[test]
fn stats_is_live_on_a_terminal() {
    use expectrl::Expect;
    let d = Daemon::start(&[]);
    d.run(&["run", "-d", "--name", "spin", &g("loop.wasm")])
        .code(0);
    // Not `skiff.cmd()`: its stdin is /dev/null, and the terminal must be every stream.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_skiff"));
    cmd.env_clear()
        .env("SKIFF_HOME", d.skiff.home.path())
        .env("TERM", "xterm")
        .arg("stats");
    let mut term = expectrl::Session::spawn(cmd).expect("a pseudo-terminal");
    term.set_expect_timeout(Some(Duration::from_secs(60)));
    // Two frames, each starting by clearing the screen.
    for _ in 0..2 {
        term.expect("\x1b[2J\x1b[H").unwrap();
        term.expect("MEM USAGE / LIMIT").unwrap();
        term.expect("spin").unwrap();
    }
    term.send([3u8]).unwrap();
    term.expect(expectrl::Eof).unwrap();
}
