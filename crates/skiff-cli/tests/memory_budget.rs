//! One memory budget per guest — every linear memory plus every table — on the entry points
//! that run guests side by side: the daemon's tasks (`run -d`), its HTTP apps, and `skiff
//! serve`. (`skiff run` is in run_limits.rs.) The attacker is stopped at the limit with the
//! reason; everyone else keeps being served.

mod common;

use common::daemon::Daemon;
use common::guest;
use common::serve::{curl, Reply, Served};

fn g(name: &str) -> String {
    guest(name).display().to_string()
}

#[test]
fn daemon_tasks_over_their_budget_end_137_and_the_others_keep_running() {
    let d = Daemon::start(&[]);
    d.run(&[
        "run",
        "-d",
        "--name",
        "steady",
        &g("ticker.wasm"),
        "0",
        "20",
    ])
    .code(0);
    d.wait_log("steady", "a tick", |l| l.iter().any(|l| l == "tick 1"));
    // 1.6 GB of table in one table.grow, under the default 128 MiB; 16 memories of 15 MiB
    // under 16 MiB.
    d.run(&["run", "-d", "--name", "tables", &g("table-hog.wasm")])
        .code(0);
    d.run(&[
        "run",
        "-d",
        "--name",
        "memories",
        "--memory",
        "16m",
        &g("many-memories.wasm"),
    ])
    .code(0);
    for (name, limit) in [("tables", "128 MiB"), ("memories", "16 MiB")] {
        let w = d.wait_status(name, "exited");
        assert_eq!(w["state"]["exit_code"], 137, "{w:#}");
        let error = w["state"]["error"].as_str().unwrap();
        assert!(
            error.contains("memory limit")
                && error.contains("memories and tables together")
                && error.contains(limit),
            "{error}"
        );
    }
    // The neighbour was not disturbed: still running, still ticking.
    let ticks = |l: &[String]| l.iter().filter(|l| l.starts_with("tick ")).count();
    let seen = ticks(&d.log_lines("steady"));
    d.wait_log("steady", "more ticks", |l| ticks(l) > seen);
    assert_eq!(d.inspect("steady")["state"]["status"], "running");
}

fn get(addr: &str, host: &str, path: &str) -> Reply {
    curl(&[
        "-H",
        &format!("Host: {host}"),
        &format!("http://{addr}{path}"),
    ])
}

#[test]
fn daemon_apps_over_their_budget_answer_500_and_are_counted() {
    let d = Daemon::start(&["--http-listen", "127.0.0.1:0"]);
    let addr = std::fs::read_to_string(d.skiff.home.path().join("daemon/http-addr")).unwrap();
    let addr = addr.trim();
    d.run(&[
        "deploy",
        "--name",
        "hog",
        "--route",
        "hog.test/",
        "--memory",
        "16m",
        &g("http-table-hog.wasm"),
    ])
    .code(0);
    d.deploy("web", "web.test/", &g("http-hello.wasm"));
    // The daemon's apps are on the pooling allocator too: the guest is stopped by the budget,
    // as under `skiff serve`, not answered -1 at the pool's table size.
    for _ in 0..2 {
        let r = get(addr, "hog.test", "/");
        assert_eq!(r.status, 500, "{r:?}\n{}", d.stderr());
        assert_eq!(get(addr, "web.test", "/").status, 200);
    }
    let (status, metrics) = d.api("GET", "/metrics", None);
    assert_eq!(status, 200, "{metrics}");
    let line = "skiff_limit_hits_total{app=\"hog\",limit=\"memory\"} 2";
    assert!(
        metrics.lines().any(|l| l == line),
        "no {line:?} in\n{metrics}"
    );
    assert!(
        d.stderr().contains(
            "memory limit: the guest's linear memories and tables together would go past 16 MiB"
        ),
        "{}",
        d.stderr()
    );
}

#[test]
fn serve_stops_a_table_hog_at_the_budget_too() {
    // The pooling allocator caps each table at its slot (100 000 elements); the guest is still
    // stopped by the budget, as in `run` and the daemon, not answered -1.
    let s = Served::start(&[
        "--admin-listen",
        "127.0.0.1:0",
        "--memory",
        "16m",
        &format!("hog={}@hog.test/", g("http-table-hog.wasm")),
        &format!("web={}@web.test/", g("http-hello.wasm")),
    ]);
    let r = get(&s.addr, "hog.test", "/");
    assert_eq!(r.status, 500, "{r:?}\n{}", s.stderr());
    s.wait_log(&format!(
        "[hog {}] 500: memory limit",
        r.header("x-request-id").unwrap()
    ));
    s.wait_metric("skiff_limit_hits_total{app=\"hog\",limit=\"memory\"} 1");
    assert_eq!(get(&s.addr, "web.test", "/").status, 200);
}
