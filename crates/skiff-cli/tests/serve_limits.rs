//! `skiff serve`: guest failures and limits, one by one and under load. Real binary, real
//! curl and wrk; no timing assertions.

mod common;
use common::guest;
use common::serve::{curl, Served};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

fn g(name: &str) -> String {
    guest(name).to_str().unwrap().to_string()
}

#[test]
fn each_guest_failure_has_its_status_and_a_logged_reason() {
    let s = Served::start(&[
        "--memory",
        "16m",
        "--cpu-time",
        "300ms",
        &format!("web={}", g("http-hello.wasm")),
    ]);

    let r = s.get("/trap");
    assert_eq!(r.status, 500);
    let id = r.header("x-request-id").unwrap();
    assert!(
        r.body.contains(&id),
        "the error page names the request: {}",
        r.body
    );
    let log = s.wait_log(&format!("[web {id}] 500: guest trapped"));
    assert!(log.contains("wasm backtrace:"), "{log}");
    assert!(
        log.contains("/trap requested"),
        "the guest's panic message is logged: {log}"
    );

    let r = s.get("/loop");
    assert_eq!(r.status, 504);
    s.wait_log(&format!(
        "[web {}] 504: cpu time limit",
        r.header("x-request-id").unwrap()
    ));

    let r = s.get("/hog");
    assert_eq!(r.status, 500);
    s.wait_log(&format!(
        "[web {}] 500: memory limit",
        r.header("x-request-id").unwrap()
    ));
    s.wait_log("past 16 MiB");

    let r = s.get("/none");
    assert_eq!(r.status, 502);
    s.wait_log(&format!(
        "[web {}] 502: the guest returned without setting a response",
        r.header("x-request-id").unwrap()
    ));

    // And the app still serves.
    assert_eq!(s.get("/count").body, "1\n");
}

#[test]
fn the_wall_clock_timeout_is_a_504() {
    let s = Served::start(&[
        "--timeout",
        "300ms",
        "--cpu-time",
        "10s",
        &g("http-hello.wasm"),
    ]);
    let r = s.get("/loop");
    assert_eq!(r.status, 504);
    s.wait_log("timeout: the request took longer than 300ms");
}

#[test]
fn request_bodies_are_limited() {
    let s = Served::start(&["--max-body", "1k", &g("http-hello.wasm")]);
    let small = "x".repeat(512);
    let r = curl(&["--data-binary", &small, &s.url("/echo")]);
    assert_eq!((r.status, r.body.len()), (200, 512));
    let big = "x".repeat(2048);
    // Declared length over the limit: refused before the guest runs.
    let r = curl(&["--data-binary", &big, &s.url("/echo")]);
    assert_eq!(r.status, 413, "{r:?}");
    // Chunked, no length: refused when the limit is crossed, not answered with a cut body.
    let r = curl(&[
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &big,
        &s.url("/echo"),
    ]);
    assert_eq!(r.status, 413, "{r:?}");
    s.wait_log("request body larger than the limit of 1 KiB");
}

#[test]
fn oversized_headers_are_431() {
    let s = Served::start(&["--max-header-size", "8k", &g("http-hello.wasm")]);
    let h = format!("x-big: {}", "a".repeat(10_000));
    assert_eq!(curl(&["-H", &h, &s.url("/")]).status, 431);
    assert_eq!(s.get("/").status, 200);
}

#[test]
fn a_slow_client_cannot_hold_a_connection() {
    let s = Served::start(&["--header-timeout", "300ms", &g("http-hello.wasm")]);
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap(); // never finishes its headers
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = Vec::new();
    // The server closes the connection (read ends) instead of waiting forever.
    let r = c.read_to_end(&mut buf);
    assert!(r.is_ok(), "server did not close the connection: {r:?}");
}

#[test]
fn excess_concurrency_waits_then_gets_503_with_retry_after() {
    let s = Served::start(&[
        "--admin-listen",
        "127.0.0.1:0",
        "--max-concurrent",
        "1",
        "--queue-timeout",
        "100ms",
        "--cpu-time",
        "3s",
        &format!("web={}", g("http-hello.wasm")),
    ]);
    let url = s.url("/loop");
    let busy = std::thread::spawn(move || curl(&[&url]));
    s.wait_metric("skiff_instances_live{app=\"web\"} 1");
    let r = s.get("/");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    assert_eq!(busy.join().unwrap().status, 504);
    s.wait_metric("skiff_limit_hits_total{app=\"web\",limit=\"concurrency\"} 1");
    assert_eq!(s.get("/").status, 200);
}

#[test]
fn a_failing_app_does_not_disturb_a_healthy_one_under_load() {
    let bad = format!("bad={}@bad.test/", g("http-hello.wasm"));
    let good = format!("good={}@/", g("http-hello.wasm"));
    let s = Served::start(&[
        "--memory",
        "bad::32m",
        "--cpu-time",
        "bad::200ms",
        &bad,
        &good,
    ]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hammers: Vec<_> = ["/trap", "/loop", "/hog", "/loop"]
        .iter()
        .map(|p| {
            // Host routing: curl sends Host: bad.test to the real address.
            let url = format!("http://bad.test:{}{p}", s.port());
            let resolve = format!("bad.test:{}:127.0.0.1", s.port());
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let r = curl(&["--resolve", &resolve, &url]);
                    assert!(
                        matches!(r.status, 500 | 503 | 504),
                        "bad app answered {r:?}"
                    );
                    n += 1;
                }
                n
            })
        })
        .collect();
    let out = Command::new("wrk")
        .args(["-t2", "-c16", "-d3s", &s.url("/")])
        .output()
        .expect("wrk runs (apt-get install wrk)");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let failed_requests: u32 = hammers.into_iter().map(|h| h.join().unwrap()).sum();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(failed_requests > 0);
    assert!(report.contains("requests in"), "{report}");
    assert!(
        !report.contains("Non-2xx"),
        "the healthy app answered errors under load:\n{report}"
    );
    assert!(
        !report.contains("Socket errors"),
        "the healthy app dropped connections:\n{report}"
    );
    assert!(
        s.stderr().contains("[bad "),
        "the bad app's failures are logged"
    );
    assert!(
        !s.stderr().contains("[good "),
        "nothing went wrong for the good app:\n{}",
        s.stderr()
    );
}
