//! HTTP apps in the daemon: one data plane (`--http-listen`), routes, scale to zero with an
//! LRU memory budget, zero-downtime redeploy under load (wrk), recovery after kill -9.

mod common;

use common::daemon::{Daemon, PATIENCE};
use common::guest;
use common::serve::{curl, Reply};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn g(name: &str) -> String {
    guest(name).display().to_string()
}

fn http_addr(d: &Daemon) -> String {
    std::fs::read_to_string(d.skiff.home.path().join("daemon/http-addr"))
        .unwrap()
        .trim()
        .to_string()
}

fn get(d: &Daemon, host: &str, path: &str) -> Reply {
    let url = format!("http://{}{path}", http_addr(d));
    curl(&["-H", &format!("Host: {host}"), &url])
}

fn app(d: &Daemon, name: &str) -> serde_json::Value {
    d.inspect(name)["app"].clone()
}

#[test]
fn apps_route_scale_to_zero_evict_under_the_budget_and_stop_removes_the_route() {
    // A budget smaller than one app's code: loading one evicts the other.
    let d = Daemon::start(&["--http-listen", "127.0.0.1:0", "--app-cache-size", "1k"]);
    d.run(&[
        "deploy",
        "--name",
        "a",
        "--route",
        "a.test/",
        "-e",
        "NAME=a",
        &g("http-hello-p2.wasm"),
    ])
    .code(0);
    d.run(&[
        "deploy",
        "--name",
        "b",
        "--route",
        "b.test/",
        "-e",
        "NAME=b",
        &g("http-hello-p2.wasm"),
    ])
    .code(0);
    d.run(&["ps"])
        .code(0)
        .stdout_has("a.test/")
        .stdout_has("b.test/")
        .stdout_has("app");

    // Deployed, never requested: nothing loaded.
    assert_eq!(app(&d, "a")["loaded"], false);
    assert_eq!(app(&d, "a")["loads"], 0);

    let r = get(&d, "a.test", "/env");
    assert_eq!((r.status, r.body.as_str()), (200, "NAME=a\n"), "{r:?}");
    assert_eq!(app(&d, "a")["loaded"], true);
    assert_eq!(app(&d, "a")["loads"], 1);

    let r = get(&d, "b.test", "/env");
    assert_eq!((r.status, r.body.as_str()), (200, "NAME=b\n"), "{r:?}");
    assert_eq!(app(&d, "b")["loaded"], true);
    assert_eq!(app(&d, "a")["loaded"], false, "b's load evicted a");
    assert_eq!(app(&d, "a")["evictions"], 1);

    // Evicted apps load again on their next request.
    assert_eq!(get(&d, "a.test", "/env").status, 200);
    assert_eq!(app(&d, "a")["loads"], 2);
    let info: serde_json::Value =
        serde_json::from_str(&d.run(&["system", "info", "--format", "json"]).stdout).unwrap();
    assert!(info["http"]["loads"].as_u64().unwrap() >= 3, "{info}");
    assert!(info["http"]["evictions"].as_u64().unwrap() >= 2, "{info}");
    assert_eq!(info["http"]["loaded_apps"], 1, "{info}");
    assert_eq!(info["workloads"]["apps"], 2);

    // The guest's output goes to the app's log.
    assert_eq!(get(&d, "a.test", "/stdout").status, 200);
    d.wait_log("a", "the guest's stdout", |l| {
        l.iter().any(|l| l.contains("line on stdout"))
    });

    // No route, no app: 404.
    assert_eq!(get(&d, "c.test", "/env").status, 404);
    d.run(&["stop", "a"]).code(0);
    assert_eq!(get(&d, "a.test", "/env").status, 404);
    assert_eq!(get(&d, "b.test", "/env").status, 200, "b is untouched");
    d.run(&["start", "a"]).code(0);
    assert_eq!(get(&d, "a.test", "/env").status, 200);
    d.run(&["rm", "-f", "a"]).code(0);
    assert_eq!(get(&d, "a.test", "/env").status, 404);

    // One route, one app; a task cannot take a route; a handler needs one.
    d.run(&[
        "deploy",
        "--name",
        "c",
        "--route",
        "b.test/",
        &g("http-hello.wasm"),
    ])
    .code(1)
    .stderr_has("two apps");
    d.run(&["deploy", "--name", "t", "--route", "/t", &g("hello.wasm")])
        .code(1)
        .stderr_has("only for HTTP apps");
}

#[test]
fn apps_need_a_data_plane() {
    let d = Daemon::start(&[]);
    d.run(&[
        "deploy",
        "--name",
        "a",
        "--route",
        "/",
        &g("http-hello.wasm"),
    ])
    .code(1)
    .stderr_has("--http-listen");
}

#[test]
fn redeploy_under_load_drops_nothing_and_apps_survive_kill9() {
    let mut d = Daemon::start(&["--http-listen", "127.0.0.1:0"]);
    let deploy = |d: &Daemon, file: &str, v: &str| {
        d.run(&[
            "deploy",
            "--name",
            "api",
            "--route",
            "/",
            "-e",
            &format!("NAME={v}"),
            &g(file),
        ])
        .code(0);
    };
    deploy(&d, "http-hello-p2.wasm", "v0");
    assert_eq!(get(&d, "x", "/env").body, "NAME=v0\n");

    let url = format!("http://{}/env", http_addr(&d));
    let mut wrk = Command::new("wrk")
        .args(["-t", "2", "-c", "16", "-d", "10s", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wrk runs (apt-get install wrk)");
    let requests = |d: &Daemon| app(d, "api")["requests"].as_u64().unwrap();
    let wait_traffic = |d: &Daemon| {
        let before = requests(d);
        let deadline = Instant::now() + PATIENCE;
        while requests(d) < before + 50 {
            assert!(Instant::now() < deadline, "no traffic reached the app");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    // Several new versions, each a new binary or new env, while wrk keeps every connection busy.
    for (i, file) in [
        "http-hello.wasm",
        "http-hello-p2.wasm",
        "http-hello.wasm",
        "http-hello-p2.wasm",
    ]
    .iter()
    .enumerate()
    {
        wait_traffic(&d);
        deploy(&d, file, &format!("v{}", i + 1));
    }
    wait_traffic(&d);
    assert!(
        wrk.try_wait().unwrap().is_none(),
        "wrk ended before the redeploys did: the test did not test anything"
    );
    let out = wrk.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(
        !report.contains("Non-2xx"),
        "a redeploy failed requests:\n{report}"
    );
    assert!(
        !report.contains("Socket errors"),
        "a redeploy broke connections:\n{report}"
    );
    assert_eq!(get(&d, "x", "/env").body, "NAME=v4\n");
    assert_eq!(app(&d, "api")["version"], 5);
    assert_eq!(d.inspect("api")["spec"]["image_name"], "http-hello-p2.wasm");

    // kill -9: the app comes back with its route and its latest version.
    d.kill9();
    d.restart_after_kill9();
    d.wait_status("api", "running");
    let r = get(&d, "x", "/env");
    assert_eq!((r.status, r.body.as_str()), (200, "NAME=v4\n"), "{r:?}");
    d.run(&["ps"]).code(0).stdout_has("api").stdout_has(" /");
}
