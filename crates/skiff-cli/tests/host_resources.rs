//! Host resources per workload: a guest's open files and sockets (`--max-open`), its outbound
//! HTTP requests in flight (`--max-outbound`, `--max-app-outbound`), and the daemon's
//! descriptor budget. Each test shows the hostile guest stopped at its cap and the others
//! still served. Real binary, real daemon, a real upstream on loopback; no timing assertions.

mod common;
use common::daemon::Daemon;
use common::guest;
use common::serve::{curl, Reply, Served};
use common::Skiff;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn g(name: &str) -> String {
    guest(name).to_str().unwrap().to_string()
}

/// A host directory to grant as `/d`, and its `-v` argument.
fn volume() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let vol = format!("{}:/d", dir.path().display());
    (dir, vol)
}

/// `skiff run -d --name NAME ARGS…` in daemon `d`.
fn detach(d: &Daemon, name: &str, args: &[&str]) {
    let mut all = vec!["run", "-d", "--name", name];
    all.extend_from_slice(args);
    d.run(&all).code(0);
}

/// A GET through daemon `d`'s data plane, with `Host: host`.
fn get(d: &Daemon, host: &str, path: &str) -> Reply {
    let addr = std::fs::read_to_string(d.skiff.home.path().join("daemon/http-addr")).unwrap();
    curl(&[
        "-H",
        &format!("Host: {host}"),
        &format!("http://{}{path}", addr.trim()),
    ])
}

/// The digest of workload `name`'s binary, to create others from it through the API.
fn image_of(d: &Daemon, name: &str) -> String {
    d.inspect(name)["spec"]["image"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The highest "opened N" line the open-many guest printed.
fn opened(stdout: &str) -> u64 {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("opened ")?.parse().ok())
        .max()
        .unwrap_or(0)
}

#[test]
fn run_stops_a_guest_that_opens_files_at_its_cap() {
    let s = Skiff::new();
    let (_dir, vol) = volume();

    let d = s.run(&[
        "run",
        "--max-open",
        "300",
        "-v",
        &vol,
        &g("open-many.wasm"),
        "/d",
    ]);
    d.code(134)
        .stderr_has("open-handle limit")
        .stderr_has("300");
    assert_eq!(
        opened(&d.stdout),
        200,
        "stopped between 200 and 300 opens: {d}"
    );

    // The default cap is Linux's default descriptor limit: 1024 handles.
    let d = s.run(&["run", "-v", &vol, &g("open-many.wasm"), "/d"]);
    d.code(134).stderr_has("more than 1024");
    assert_eq!(opened(&d.stdout), 1000, "{d}");

    // A guest under its cap is not disturbed.
    s.run(&["run", "-v", &vol, &g("open-many.wasm"), "/d", "500"])
        .code(0)
        .stdout_has("opened all 500");

    // A cap too small for any guest to start is refused up front.
    s.run(&["run", "--max-open", "3", &g("hello.wasm")])
        .code(125)
        .stderr_has("at least 16");
}

#[test]
fn daemon_task_that_opens_files_is_stopped_and_the_api_keeps_answering() {
    let d = Daemon::start(&[]);
    let (_dir, vol) = volume();
    detach(&d, "hog", &["-v", &vol, &g("open-many.wasm"), "/d"]);
    // Beside it, an ordinary task.
    detach(&d, "ticker", &[&g("ticker.wasm"), "0", "20"]);

    let w = d.wait_status("hog", "exited");
    assert_eq!(w["state"]["exit_code"], 134, "{w:#}");
    let error = w["state"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("open-handle limit"), "{w:#}");
    // The guest's own log survived: the daemon had descriptors left to write it.
    let log = d.wait_log("hog", "progress", |l| l.iter().any(|l| l == "opened 1000"));
    assert!(!log.iter().any(|l| l == "opened 1100"), "{log:?}");

    d.run(&["ps", "-a"])
        .code(0)
        .stdout_has("hog")
        .stdout_has("ticker");
    d.wait_status("ticker", "running");
    detach(&d, "after", &[&g("hello.wasm")]);
    assert_eq!(d.wait_status("after", "exited")["state"]["exit_code"], 0);
}

#[test]
fn daemon_refuses_a_task_whose_cap_does_not_fit_its_descriptor_budget() {
    let d = Daemon::start(&[]);
    let (_dir, vol) = volume();
    // More handles than any node's descriptor limit leaves for tasks.
    detach(
        &d,
        "greedy",
        &["--max-open", "4000000000", "-v", &vol, &g("hello.wasm")],
    );
    let w = d.wait_status("greedy", "exited");
    assert_eq!(w["state"]["exit_code"], 125, "{w:#}");
    let error = w["state"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("not enough open-file budget") && error.contains("lower --max-open"),
        "{w:#}"
    );
    // A task with no directory or network can hold no descriptor: not charged, runs.
    detach(&d, "plain", &["--max-open", "4000000000", &g("hello.wasm")]);
    assert_eq!(d.wait_status("plain", "exited")["state"]["exit_code"], 0);
    // And one that fits runs beside them.
    detach(&d, "fits", &["-v", &vol, &g("open-many.wasm"), "/d", "100"]);
    assert_eq!(d.wait_status("fits", "exited")["state"]["exit_code"], 0);
}

#[test]
fn daemon_refuses_max_open_below_the_minimum_through_the_api() {
    let d = Daemon::start(&[]);
    let (dir, _) = volume();
    detach(&d, "first", &[&g("hello.wasm")]);
    let image = image_of(&d, "first");
    let create = |name: &str, max_open: u32| {
        let body = format!(
            r#"{{"name":"{name}","spec":{{"image":"{image}","limits":{{"max_open":{max_open}}},"mounts":[{{"host":"{}","guest":"/d"}}]}}}}"#,
            dir.path().display()
        );
        d.api("POST", "/v1/workloads", Some(&body))
    };
    // Below 16 the engine would raise the cap while the budget charged the raw number (0 was
    // free): refused with the CLI's words, and nothing is created.
    for n in [0, 15] {
        let (status, body) = create(&format!("tiny{n}"), n);
        assert_eq!(status, 400, "{body}");
        assert!(
            body.contains("limits.max_open") && body.contains("at least 16"),
            "{body}"
        );
        assert_eq!(d.api("GET", &format!("/v1/workloads/tiny{n}"), None).0, 404);
    }
    let (status, body) = create("least", 16);
    assert_eq!(status, 201, "{body}");
    assert_eq!(d.wait_status("least", "exited")["state"]["exit_code"], 0);
}

#[test]
fn daemon_refuses_a_directory_or_the_network_for_an_app() {
    let d = Daemon::start(&["--http-listen", "127.0.0.1:0"]);
    let (dir, _) = volume();
    d.deploy("web", "web.test/", &g("http-hello.wasm"));
    let image = image_of(&d, "web");
    let mount = format!(
        r#""mounts":[{{"host":"{}","guest":"/d"}}]"#,
        dir.path().display()
    );
    // Each would let every one of 100 concurrent instances hold 1,024 host descriptors.
    for (name, grant, what) in [
        ("files", mount.as_str(), "a directory"),
        ("net", r#""network":true"#, "the network"),
    ] {
        let body = format!(
            r#"{{"name":"{name}","spec":{{"image":"{image}","route":"{name}.test/",{grant}}}}}"#
        );
        let (status, body) = d.api("POST", "/v1/workloads", Some(&body));
        assert_eq!(status, 400, "{body}");
        assert!(
            body.contains(&format!("an HTTP app cannot be granted {what}"))
                && body.contains("100 concurrent instances could hold 1024")
                && body.contains("skiff run -d"),
            "{body}"
        );
        assert_eq!(d.api("GET", &format!("/v1/workloads/{name}"), None).0, 404);
    }
    // `skiff deploy` asks for neither, and its app serves on.
    let r = get(&d, "web.test", "/");
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "hello from skiff\n"),
        "{r:?}"
    );
}

/// A real HTTP server on loopback that answers every request `200 ok` once it has read it
/// whole, one thread per connection, and records how many connections it ever had open at once.
struct Upstream {
    port: u16,
    peak: Arc<AtomicUsize>,
}

impl Upstream {
    fn start() -> Upstream {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let open = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let p = peak.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let (open, peak) = (open.clone(), p.clone());
                std::thread::spawn(move || {
                    let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    // The head, then a chunked body to its last chunk.
                    let mut req = Vec::new();
                    let mut b = [0u8; 1];
                    while !req.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
                        req.push(b[0]);
                    }
                    let chunked = String::from_utf8_lossy(&req)
                        .to_ascii_lowercase()
                        .contains("transfer-encoding: chunked");
                    req.clear();
                    while chunked
                        && !req.ends_with(b"0\r\n\r\n")
                        && s.read(&mut b).unwrap_or(0) == 1
                    {
                        req.push(b[0]);
                    }
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
                    // Held until the client is done with the connection.
                    let _ = s.read(&mut [0u8; 64]);
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Upstream { port, peak }
    }
}

#[test]
fn outbound_requests_in_flight_are_capped_per_request_and_per_app() {
    let up = Upstream::start();
    let s = Served::start(&[
        "--admin-listen",
        "127.0.0.1:0",
        "--allow-outbound",
        "http://127.0.0.1:*",
        "--max-outbound",
        "out::4",
        "--max-app-outbound",
        "capped::3",
        &format!("out={}@/out", g("http-fanout.wasm")),
        &format!("capped={}@/capped", g("http-fanout.wasm")),
    ]);
    let url = format!("http://127.0.0.1:{}/", up.port);

    // Per request: 10 at once, 4 get through, 6 get connection-limit-reached.
    let r = s.get(&format!("/out/?url={url}&n=10"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body.trim(),
        "ok=4 failed=6 first_error=ErrorCode::ConnectionLimitReached"
    );
    assert!(
        up.peak.load(Ordering::SeqCst) <= 4,
        "upstream saw more than 4 at once"
    );
    s.wait_log("refused: 4 outbound requests of this request already in flight");

    // Per app (its per-request cap is the default 16): 3 of 5.
    let r = s.get(&format!("/capped/?url={url}&n=5"));
    assert_eq!(
        r.body.trim(),
        "ok=3 failed=2 first_error=ErrorCode::ConnectionLimitReached"
    );
    s.wait_log("refused: 3 outbound requests of this app already in flight");

    // The slots come back when the requests end: the next request gets its full share.
    let r = s.get(&format!("/out/?url={url}&n=4"));
    assert_eq!(r.body.trim(), "ok=4 failed=0 first_error=-");
    s.wait_metric("skiff_limit_hits_total{app=\"out\",limit=\"outbound_concurrency\"} 6");
    s.wait_metric("skiff_limit_hits_total{app=\"capped\",limit=\"outbound_concurrency\"} 2");
}

#[test]
fn serve_stops_a_request_at_its_handle_cap_and_serves_the_next() {
    let up = Upstream::start();
    let s = Served::start(&[
        "--allow-outbound",
        "http://127.0.0.1:*",
        "--max-open",
        "40",
        "--max-outbound",
        "1000",
        &g("http-fanout.wasm"),
    ]);
    // Each outbound request holds several handles (request, headers, future): 100 cannot fit
    // in 40.
    let r = s.get(&format!("/?url=http://127.0.0.1:{}/&n=100", up.port));
    assert_eq!(r.status, 500, "{}", r.body);
    s.wait_log("open-handle limit");
    let r = s.get("/");
    assert_eq!((r.status, r.body.as_str()), (200, "hello\n"));
}

#[test]
fn daemon_caps_outbound_requests_node_wide_from_its_descriptor_budget() {
    let up = Upstream::start();
    // What the limit leaves after the daemon's reserve (1,024) and the data plane's 10,000
    // connections is 8: half (4) for all apps' outbound requests together, half for tasks.
    let d = Daemon::start_with_nofile(1024 + 10_000 + 8, &["--http-listen", "127.0.0.1:0"]);
    for name in ["a", "b"] {
        d.run(&[
            "deploy",
            "--name",
            name,
            "--route",
            &format!("{name}.test/"),
            "--allow-outbound",
            "http://127.0.0.1:*",
            &g("http-fanout.wasm"),
        ])
        .code(0);
    }
    let fan = |n: u32| format!("/?url=http://127.0.0.1:{}/&n={n}", up.port);
    // Far below its own caps (16 per request, 256 per app), the app meets the node's: 4 of 10.
    let r = get(&d, "a.test", &fan(10));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body.trim(),
        "ok=4 failed=6 first_error=ErrorCode::ConnectionLimitReached"
    );
    assert!(
        up.peak.load(Ordering::SeqCst) <= 4,
        "upstream saw more than 4 at once"
    );
    // The slots come back when the requests end, for any app.
    let r = get(&d, "b.test", &fan(4));
    assert_eq!(r.body.trim(), "ok=4 failed=0 first_error=-", "{r:?}");
}

#[test]
fn a_tasks_outbound_http_goes_through_its_allow_list() {
    // A task is a command like any other: wasi:http is linked, and only the granted host
    // answers (guests/rust/http-get).
    let d = Daemon::start(&[]);
    let port = common::upstream();
    let url = format!("http://127.0.0.1:{port}/x");
    let grant = format!("http://127.0.0.1:{port}");
    let get = g("http-get.wasm");
    d.run(&["run", "-d", "--name", "closed", &get, &url])
        .code(0);
    let w = d.wait_status("closed", "exited");
    assert_eq!(w["state"]["exit_code"], 1, "{w:#}");
    // The guest's stderr, which `skiff logs` writes to its own stderr as `docker logs` does.
    d.run(&["logs", "closed"])
        .code(0)
        .stderr_has("error: ErrorCode::HttpRequestDenied");
    let open = [
        "run",
        "-d",
        "--name",
        "open",
        "--allow-outbound",
        &grant,
        &get,
        &url,
    ];
    d.run(&open).code(0);
    let w = d.wait_status("open", "exited");
    assert_eq!(w["state"]["exit_code"], 0, "{w:#}");
    d.wait_log("open", "the upstream's answer", |l| {
        l.iter().any(|l| l.contains("upstream ok"))
    });
    // A pattern that does not parse is refused when the task is submitted.
    d.run(&[
        "run",
        "-d",
        "--name",
        "bad",
        "--allow-outbound",
        "nope",
        &get,
        &url,
    ])
    .code(125)
    .stderr_has("invalid outbound pattern \"nope\"");
}
