//! `skiff serve`: several apps on one listener, isolation, guests of three toolchains, logs,
//! outbound HTTP, HTTP/2, TLS, admin and graceful shutdown. Real binary, real curl.

mod common;
use common::serve::{curl, Served};
use common::{guest, upstream};

fn g(name: &str) -> String {
    guest(name).to_str().unwrap().to_string()
}

#[test]
fn every_request_gets_a_fresh_instance() {
    let s = Served::start(&[&g("http-hello.wasm")]);
    for _ in 0..5 {
        let r = s.get("/count");
        assert_eq!((r.status, r.body.as_str()), (200, "1\n"), "{}", s.stderr());
    }
    let r = s.get("/");
    assert_eq!(r.body, "hello from skiff\n");
    assert_eq!(r.header("content-type").as_deref(), Some("text/plain"));
    assert!(r.header("x-request-id").is_some_and(|id| id.len() == 16));
}

#[test]
fn routes_by_host_and_longest_prefix() {
    // (The strict-proxy build cannot read variables: the proxy world has no cli/environment.)
    let a = format!("a={}@/", g("http-hello-p2.wasm"));
    let b = format!("b={}@/env", g("http-hello-p2.wasm"));
    let c = format!("c={}@api.example.com/", g("http-hello-p2.wasm"));
    let s = Served::start(&[
        "-e",
        "a::NAME=a",
        "-e",
        "b::NAME=b",
        "-e",
        "c::NAME=c",
        &a,
        &b,
        &c,
    ]);
    // Longest prefix: /env is b's; / is a's.
    assert_eq!(s.get("/env").body, "NAME=b\n");
    assert_eq!(s.get("/count").body, "1\n");
    // Prefixes match whole segments: /envx is not under /env.
    assert_eq!(s.get("/envx").body, "hello from skiff\n");
    // The Host header picks c, port and case ignored, whatever the path.
    let host = curl(&["-H", "Host: API.example.com:8080", &s.url("/env")]);
    assert_eq!(host.body, "NAME=c\n");
}

#[test]
fn nothing_routed_is_404() {
    let c = format!("c={}@api.example.com/", g("http-hello.wasm"));
    let s = Served::start(&[&c]);
    let r = s.get("/");
    assert_eq!(r.status, 404);
    assert!(r.body.contains("no app is routed"), "{}", r.body);
    assert_eq!(
        curl(&["-H", "Host: api.example.com", &s.url("/")]).status,
        200
    );
    // A malformed Host matches no host either: fuzzing found that an unclosed `[` panicked the
    // task serving the request, which dropped the connection without an answer.
    let bad = curl(&["-H", "Host: [x", &s.url("/")]);
    assert_eq!(bad.status, 404, "{}", s.stderr());
    assert!(bad.body.contains("no app is routed"), "{}", bad.body);
}

#[test]
fn a_rust_std_wasip2_guest_links_and_grants_nothing_by_default() {
    let s = Served::start(&[&g("http-hello-p2.wasm")]);
    assert_eq!(s.get("/count").body, "1\n");
    // cli/environment is linked, but empty unless granted.
    assert_eq!(s.get("/env").body, "NAME=(unset)\n");
    let granted = Served::start(&["-e", "NAME=skiff", &g("http-hello-p2.wasm")]);
    assert_eq!(granted.get("/env").body, "NAME=skiff\n");
}

#[test]
fn a_javascript_guest_is_served_when_built() {
    let js = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("../../guests/wasm/http-js.wasm");
    if !js.exists() {
        eprintln!("skipped: guests/wasm/http-js.wasm is not built (guests/build.sh --js)");
        return;
    }
    let s = Served::start(&[js.to_str().unwrap()]);
    let r = s.get("/");
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "hello from js\n"),
        "{}",
        s.stderr()
    );
}

#[test]
fn guest_output_becomes_log_lines_with_app_and_request_id() {
    let s = Served::start(&[&format!("web={}", g("http-hello.wasm"))]);
    let r = s.get("/stdout");
    assert_eq!(r.status, 200);
    let id = r.header("x-request-id").unwrap();
    let log = s.wait_log(&format!("[web {id}] stdout: http-hello: line on stdout"));
    s.wait_log(&format!("[web {id}] stderr: http-hello: line on stderr"));
    // serve's stderr is a log: each line starts with its UTC time, e.g. 2026-12-02T17:35:00.1Z.
    let line = log.lines().find(|l| l.contains("line on stdout")).unwrap();
    let stamp = line.split_whitespace().next().unwrap();
    assert!(
        stamp.len() >= 20 && stamp.as_bytes()[4] == b'-' && stamp.ends_with('Z'),
        "{line}"
    );
}

#[test]
fn outbound_http_is_denied_unless_allowed() {
    let port = upstream();
    let allowed = format!("allowed={}@/", g("http-hello.wasm"));
    let other = format!("other={}@other.test/", g("http-hello.wasm"));
    let pattern = format!("allowed::http://127.0.0.1:{port}");
    let s = Served::start(&["--allow-outbound", &pattern, &allowed, &other]);
    let target = format!("/outbound?url=http://127.0.0.1:{port}/x");
    let r = s.get(&target);
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "200\nupstream ok\n"),
        "{}",
        s.stderr()
    );

    let denied = curl(&["-H", "Host: other.test", &s.url(&target)]);
    assert_eq!(denied.status, 502);
    assert!(denied.body.contains("HttpRequestDenied"), "{}", denied.body);
    s.wait_log(&format!(
        "outbound request to http://127.0.0.1:{port} denied"
    ));
    // Another port on the same host is not covered by the pattern.
    let r = s.get("/outbound?url=http://127.0.0.1:1/");
    assert!(r.body.contains("HttpRequestDenied"), "{}", r.body);
}

#[test]
fn http2_with_prior_knowledge() {
    let s = Served::start(&[&g("http-hello.wasm")]);
    let r = curl(&["--http2-prior-knowledge", &s.url("/count")]);
    assert_eq!(
        (r.status, r.version.as_str(), r.body.as_str()),
        (200, "2", "1\n")
    );
}

#[test]
fn tls_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&c, cert.cert.pem()).unwrap();
    std::fs::write(&k, cert.signing_key.serialize_pem()).unwrap();
    let s = Served::start(&[
        "--tls-cert",
        c.to_str().unwrap(),
        "--tls-key",
        k.to_str().unwrap(),
        &g("http-hello.wasm"),
    ]);
    assert_eq!(s.scheme, "https");
    let url = format!("https://localhost:{}/count", s.port());
    let resolve = format!("localhost:{}:127.0.0.1", s.port());
    let ca = c.to_str().unwrap();
    let r = curl(&["--cacert", ca, "--resolve", &resolve, &url]);
    assert_eq!((r.status, r.body.as_str()), (200, "1\n"), "{:?}", r);
    // ALPN offers h2.
    let r = curl(&["--http2", "--cacert", ca, "--resolve", &resolve, &url]);
    assert_eq!((r.status, r.version.as_str()), (200, "2"));
    // Without trusting the certificate, curl refuses: it is really TLS.
    assert_eq!(curl(&["--resolve", &resolve, &url]).status, 0);
}

#[test]
fn an_image_is_served_by_reference() {
    let s = common::Skiff::new();
    let p = common::project::Project::new("web", "http-hello.wasm", "version = \"1.0\"\n");
    s.run(&["build", "-q", p.arg()]).code(0);
    // Named after the repository, routed like a file.
    let served = Served::start_in(s.home.path(), &["web:1.0@/web"]);
    let r = served.get("/web/hi");
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "hello from skiff\n"),
        "{}",
        served.stderr()
    );
    assert_eq!(served.get("/other").status, 404);
    drop(served);
    // An image that is nowhere: not in the store, and not pulled when told not to.
    s.run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--pull",
        "never",
        "nothere:1.0",
    ])
    .code(127)
    .stderr_has("nothere");
}

#[test]
fn bad_tls_files_are_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "not pem").unwrap();
    let s = common::Skiff::new();
    let b = bad.to_str().unwrap();
    s.run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        b,
        "--tls-key",
        b,
        &g("http-hello.wasm"),
    ])
    .code(125)
    .stderr_has("--tls-cert");
}

#[test]
fn wrong_kinds_and_bad_specs_are_refused_before_serving() {
    let s = common::Skiff::new();
    s.run(&["serve", "--listen", "127.0.0.1:0", &g("hello-p2.wasm")])
        .code(126)
        .stderr_has("skiff run");
    s.run(&["serve", "--listen", "127.0.0.1:0", "missing.wasm"])
        .code(127);
    s.run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--memory",
        "nope::1m",
        &g("http-hello.wasm"),
    ])
    .code(125)
    .stderr_has("no app named");
    let spec = format!("{}@bad host/", g("http-hello.wasm"));
    s.run(&["serve", "--listen", "127.0.0.1:0", &spec])
        .code(125)
        .stderr_has("route");
}

#[test]
fn admin_metrics_and_health() {
    let s = Served::start(&[
        "--admin-listen",
        "127.0.0.1:0",
        &format!("web={}", g("http-hello.wasm")),
    ]);
    s.get("/");
    s.get("/trap");
    let m = s.metrics();
    for line in [
        "skiff_http_requests_total{app=\"web\",class=\"2xx\"} 1",
        "skiff_http_requests_total{app=\"web\",class=\"5xx\"} 1",
        "skiff_guest_traps_total{app=\"web\"} 1",
        "skiff_http_request_duration_seconds_count{app=\"web\"} 2",
    ] {
        assert!(m.lines().any(|l| l == line), "no {line:?} in\n{m}");
    }
    assert!(m.contains("skiff_instances_live{app=\"web\"}"));
    assert!(m.contains("skiff_limit_hits_total{app=\"web\",limit=\"memory\"} 0"));
    let h = curl(&[&format!("http://{}/healthz", s.admin.as_ref().unwrap())]);
    assert_eq!((h.status, h.body.as_str()), (200, "ok\n"));
}

#[test]
fn sigterm_finishes_in_flight_requests_then_exits() {
    let mut s = Served::start(&[
        "--admin-listen",
        "127.0.0.1:0",
        "--cpu-time",
        "1500ms",
        &format!("web={}", g("http-hello.wasm")),
    ]);
    let url = s.url("/loop");
    let in_flight = std::thread::spawn(move || curl(&[&url]));
    s.wait_metric("skiff_instances_live{app=\"web\"} 1");
    s.signal("TERM");
    // The request that was running is answered (its CPU limit ends it), not cut off.
    let r = in_flight.join().unwrap();
    assert_eq!(r.status, 504, "{}", s.stderr());
    assert_eq!(s.wait_exit(), 0, "{}", s.stderr());
    assert!(s.stderr().contains("shutting down"));
    assert_eq!(s.get("/").status, 0, "still accepting after shutdown");
}
