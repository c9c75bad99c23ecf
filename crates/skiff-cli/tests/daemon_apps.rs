//! HTTP apps in the daemon: one data plane (`--http-listen`), routes, scale to zero with an
//! LRU memory budget, zero-downtime redeploy under load (wrk), recovery after kill -9, outbound
//! grants per app, the grace of `stop -t`.

mod common;

use common::daemon::{Daemon, PATIENCE};
use common::guest;
use common::serve::{curl, Reply, Served};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn g(name: &str) -> String {
    guest(name).display().to_string()
}

fn http_addr(d: &Daemon) -> String {
    d.http_addr()
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

    let load = Load::start(&d, "api", "/env", "10s");
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
        load.wait_traffic(&d);
        deploy(&d, file, &format!("v{}", i + 1));
    }
    load.wait_traffic(&d);
    load.finish_clean("a redeploy");
    assert_eq!(get(&d, "x", "/env").body, "NAME=v4\n");
    assert_eq!(app(&d, "api")["version"], 5);
    assert_eq!(d.inspect("api")["spec"]["image_name"], "http-hello-p2.wasm");

    // kill -9: the app comes back with its route and its latest version.
    d.kill9();
    d.restart_after_kill9();
    d.wait_status("api", "running");
    let r = get(&d, "x", "/env");
    assert_eq!((r.status, r.body.as_str()), (200, "NAME=v4\n"), "{r:?}");
    // Its version is the record's: five deploys, across the restart too.
    assert_eq!(app(&d, "api")["version"], 5);
    assert_eq!(d.inspect("api")["version"], 5);
    d.run(&["ps"]).code(0).stdout_has("api").stdout_has(" /");
}

/// The daemon never changes what it was told on its own: restarted without `--http-listen`, it
/// used to mark every app exited and desired-stopped, and the listener's return did not bring
/// them back. Now it refuses to start, naming the apps, and with the listener they all answer.
#[test]
fn apps_stay_deployed_when_the_daemon_restarts_without_its_data_plane() {
    let mut d = Daemon::start(&["--http-listen", "127.0.0.1:0"]);
    for (name, route) in [("api", "/api"), ("shop", "/shop")] {
        d.deploy(name, route, &g("http-hello.wasm"));
    }
    d.kill9();
    d.skiff
        .run(&["daemon"])
        .code(125)
        .stderr_has("api, shop")
        .stderr_has("--http-listen");
    d.restart_with(&["--http-listen", "127.0.0.1:0"]);
    for (name, path) in [("api", "/api/"), ("shop", "/shop/")] {
        d.wait_status(name, "running");
        assert_eq!(get(&d, "x", path).status, 200, "{name}");
        assert_eq!(d.inspect(name)["desired"], "running", "{name}");
    }
}

/// An upstream for the guests' outbound requests. `/x` is answered at once; `/hold` only once
/// the test sends on the returned `release` (never, if it drops it): each arriving `/hold`
/// request is announced on `held` first.
struct Upstream {
    port: u16,
    held: mpsc::Receiver<()>,
    release: mpsc::Sender<()>,
}

fn upstream() -> Upstream {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (held_tx, held) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let release_rx = Arc::new(Mutex::new(release_rx));
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let (held_tx, release_rx) = (held_tx.clone(), release_rx.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let n = c.read(&mut buf).unwrap_or(0);
                if String::from_utf8_lossy(&buf[..n]).starts_with("GET /hold") {
                    let _ = held_tx.send(());
                    if release_rx.lock().unwrap().recv().is_err() {
                        return;
                    }
                }
                let _ = c.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\nconnection: close\r\n\r\nupstream ok\n",
                );
            });
        }
    });
    Upstream {
        port,
        held,
        release,
    }
}

#[test]
fn outbound_grants_are_per_app_and_stop_t_bounds_the_grace() {
    let up = upstream();
    let d = Daemon::start(&["--http-listen", "127.0.0.1:0"]);
    let grant = format!("http://127.0.0.1:{}", up.port);
    let deploy = |name: &str, route: &str, grants: &[&str]| {
        let mut args = vec!["deploy", "--name", name, "--route", route];
        for g in grants {
            args.extend(["--allow-outbound", g]);
        }
        let hello = g("http-hello.wasm");
        args.push(&hello);
        d.run(&args).code(0);
    };
    deploy("out", "out.test/", &[&grant]);
    deploy("closed", "closed.test/", &[]);
    let target = format!("/outbound?url=http://127.0.0.1:{}/x", up.port);
    let r = get(&d, "out.test", &target);
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "200\nupstream ok\n"),
        "{r:?}"
    );
    let r = get(&d, "closed.test", &target);
    assert_eq!(r.status, 502, "{r:?}");
    assert!(r.body.contains("HttpRequestDenied"), "{r:?}");
    // Each app has its own metrics.
    let (status, metrics) = d.api("GET", "/metrics", None);
    assert_eq!(status, 200, "{metrics}");
    for line in [
        "skiff_http_requests_total{app=\"out\",class=\"2xx\"} 1",
        "skiff_http_requests_total{app=\"closed\",class=\"5xx\"} 1",
        "skiff_outbound_denied_total{app=\"closed\"} 1",
        "skiff_outbound_denied_total{app=\"out\"} 0",
        "skiff_app_loaded{app=\"out\"} 1",
        "skiff_http_request_duration_seconds_count{app=\"out\"} 1",
        "skiff_workloads{kind=\"app\",status=\"running\"} 2",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in\n{metrics}"
        );
    }
    // The grant is part of the record, and a bad pattern is refused with the reason.
    assert_eq!(
        d.inspect("out")["spec"]["allow_outbound"][0],
        grant.as_str()
    );
    d.run(&[
        "deploy",
        "--name",
        "bad",
        "--route",
        "bad.test/",
        "--allow-outbound",
        "ftp://x",
        &g("http-hello.wasm"),
    ])
    .code(1)
    .stderr_has("allow_outbound");

    // A request in flight during `stop -t 30` finishes inside its grace: 200.
    let held = format!("/outbound?url=http://127.0.0.1:{}/hold", up.port);
    // A request the upstream holds until told to answer, once it has reached the upstream.
    let hold_request = || {
        let url = format!("http://{}{held}", http_addr(&d));
        let in_flight = std::thread::spawn(move || curl(&["-H", "Host: out.test", &url]));
        up.held
            .recv_timeout(PATIENCE)
            .expect("the request reached the upstream");
        in_flight
    };
    let in_flight = hold_request();
    let stop = d
        .skiff
        .cmd()
        .args(["stop", "-t", "30", "out"])
        .spawn()
        .unwrap();
    d.wait_for("out", "stopping (route gone)", |_| {
        get(&d, "out.test", "/").status == 404
    });
    up.release.send(()).unwrap();
    let r = in_flight.join().unwrap();
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "200\nupstream ok\n"),
        "{r:?}"
    );
    assert!(stop.wait_with_output().unwrap().status.success());
    assert_eq!(d.inspect("out")["state"]["status"], "stopped");

    // Past a grace of 1 s, the request still in flight is ended: 503, and stop returns (the
    // upstream would hold it forever).
    d.run(&["start", "out"]).code(0);
    let in_flight = hold_request();
    d.run(&["stop", "-t", "1", "out"]).code(0);
    let r = in_flight.join().unwrap();
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.body.contains("stopped"), "{r:?}");
    assert_eq!(
        get(&d, "closed.test", "/").status,
        200,
        "other apps are untouched"
    );
}

#[test]
fn up_updates_a_changed_app_in_place_under_load() {
    let d = Daemon::start(&["--http-listen", "127.0.0.1:0"]);
    let dir = tempfile::tempdir().unwrap();
    let proj = dir.path().join("site");
    std::fs::create_dir(&proj).unwrap();
    std::fs::copy(guest("http-hello-p2.wasm"), proj.join("api.wasm")).unwrap();
    let file = proj.join("skiff-compose.toml");
    let write = |v: &str| {
        let text = format!(
            "[workloads.api]\nimage = \"api.wasm\"\nroute = \"/\"\nenv = {{ NAME = \"{v}\" }}\n"
        );
        std::fs::write(&file, text).unwrap();
    };
    let f = file.display().to_string();
    write("v1");
    d.run(&["up", "-f", &f])
        .code(0)
        .stdout_has("created    api");
    assert_eq!(get(&d, "x", "/env").body, "NAME=v1\n");
    let id = d.inspect("api")["id"].clone();

    let load = Load::start(&d, "api", "/env", "5s");
    load.wait_traffic(&d);
    write("v2");
    d.run(&["up", "-f", &f])
        .code(0)
        .stdout_has("updated    api");
    load.wait_traffic(&d);
    load.finish_clean("the update");
    // The same app, at its next version.
    assert_eq!(get(&d, "x", "/env").body, "NAME=v2\n");
    assert_eq!(d.inspect("api")["id"], id);
    assert_eq!(app(&d, "api")["version"], 2);
    d.run(&["up", "-f", &f])
        .code(0)
        .stdout_has("unchanged  api");
}

/// wrk keeping 16 connections busy on one app of the daemon, for a change made under load.
struct Load {
    wrk: std::process::Child,
    app: String,
}

impl Load {
    fn start(d: &Daemon, app: &str, path: &str, duration: &str) -> Load {
        let url = format!("http://{}{path}", http_addr(d));
        let wrk = Command::new("wrk")
            // wrk counts a request slower than its timeout (2 s by default) as a socket error:
            // on two cores running other tests that is load, not a redeploy. 10 s is a stall.
            .args([
                "-t",
                "2",
                "-c",
                "16",
                "-d",
                duration,
                "--timeout",
                "10s",
                &url,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("wrk runs (apt-get install wrk)");
        Load {
            wrk,
            app: app.to_string(),
        }
    }

    /// Until the app has answered 50 more requests.
    fn wait_traffic(&self, d: &Daemon) {
        let requests = |d: &Daemon| app(d, &self.app)["requests"].as_u64().unwrap();
        let before = requests(d);
        let deadline = Instant::now() + PATIENCE;
        while requests(d) < before + 50 {
            assert!(Instant::now() < deadline, "no traffic reached the app");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// wrk, still running when `change` was done, ends with every request a 2xx and no
    /// connection broken.
    fn finish_clean(mut self, change: &str) {
        assert!(
            self.wrk.try_wait().unwrap().is_none(),
            "wrk ended before {change} did: the test did not test anything"
        );
        let out = self.wrk.wait_with_output().unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{report}");
        assert!(
            !report.contains("Non-2xx"),
            "{change} failed requests:\n{report}"
        );
        assert!(
            !report.contains("Socket errors"),
            "{change} broke connections:\n{report}"
        );
    }
}

/// Family name → (type, the label names its samples carry).
fn families(text: &str) -> BTreeMap<String, (String, BTreeSet<String>)> {
    let mut out: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    for l in text.lines() {
        if let Some(t) = l.strip_prefix("# TYPE ") {
            let (name, kind) = t.split_once(' ').unwrap();
            out.insert(name.into(), (kind.into(), BTreeSet::new()));
        } else if !l.starts_with('#') && !l.is_empty() {
            let (name, rest) = l.split_once(['{', ' ']).unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| out.contains_key(*f)))
                .unwrap_or(name);
            let labels = out
                .get_mut(family)
                .unwrap_or_else(|| panic!("{l:?} has no # TYPE before it in\n{text}"));
            if l.contains('{') {
                let inside = rest.split_once('}').unwrap().0;
                for kv in inside.split(',') {
                    labels.1.insert(kv.split_once('=').unwrap().0.to_string());
                }
            }
        }
    }
    out
}

/// One metrics model: every family `skiff serve`'s admin endpoint has, the daemon's `/metrics`
/// has too, with the same type and label names; and the same requests count the same.
#[test]
fn metrics_are_named_and_labelled_alike_under_serve_and_the_daemon() {
    let s = Served::start(&[
        "--admin-listen",
        "127.0.0.1:0",
        &format!("web={}", g("http-hello.wasm")),
    ]);
    let d = Daemon::start(&["--http-listen", "127.0.0.1:0"]);
    d.deploy("web", "web.test/", &g("http-hello.wasm"));
    for (path, status) in [("/", 200), ("/trap", 500)] {
        assert_eq!(s.get(path).status, status);
        assert_eq!(get(&d, "web.test", path).status, status);
    }
    let served = s.metrics();
    let (status, daemon) = d.api("GET", "/metrics", None);
    assert_eq!(status, 200, "{daemon}");
    let (serve_families, daemon_families) = (families(&served), families(&daemon));
    assert!(serve_families.len() >= 10, "{served}");
    for (name, kind_labels) in &serve_families {
        assert_eq!(
            daemon_families.get(name),
            Some(kind_labels),
            "{name} differs\nserve:\n{served}\ndaemon:\n{daemon}"
        );
    }
    for line in [
        "skiff_http_requests_total{app=\"web\",class=\"2xx\"} 1",
        "skiff_http_requests_total{app=\"web\",class=\"5xx\"} 1",
        "skiff_http_request_duration_seconds_count{app=\"web\"} 2",
        "skiff_guest_traps_total{app=\"web\"} 1",
    ] {
        assert!(
            served.lines().any(|l| l == line),
            "serve: no {line:?} in\n{served}"
        );
        assert!(
            daemon.lines().any(|l| l == line),
            "daemon: no {line:?} in\n{daemon}"
        );
    }
}

/// Why an app's request failed is in the app's own log (`skiff logs APP`), with the request id
/// the client got, not only in the daemon's stderr.
#[test]
fn an_apps_failures_are_in_its_logs() {
    let d = Daemon::start(&["--http-listen", "127.0.0.1:0"]);
    d.run(&[
        "deploy",
        "--name",
        "web",
        "--route",
        "web.test/",
        "--max-body",
        "1k",
        &g("http-hello.wasm"),
    ])
    .code(0);
    // A client's own failure (413) is not the app's: it stays out of the app's log, so a flood
    // of them cannot push the app's output out of the rotation.
    let big = "x".repeat(4096);
    let url = format!("http://{}/echo", http_addr(&d));
    let r = curl(&["-H", "Host: web.test", "--data-binary", &big, &url]);
    assert_eq!(r.status, 413, "{r:?}");
    let r = get(&d, "web.test", "/trap");
    assert_eq!(r.status, 500, "{r:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let logs = d.run(&["logs", "-t", "web"]).code(0).stderr.clone();
        if logs.contains("skiff: request ") {
            assert!(logs.contains(": 500: guest trapped"), "{logs}");
            assert!(logs.contains("wasm backtrace:"), "{logs}");
            // Matched as the status field, not as digits: a timestamp's nanoseconds can hold
            // "413" (CI failed once on "18:38:55.680413387Z").
            assert!(
                !logs.contains(": 413:"),
                "a client's failure in the app's log: {logs}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no failure in the app's log:\n{logs}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
