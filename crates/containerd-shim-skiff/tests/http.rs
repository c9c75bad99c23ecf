//! wasi:http components served by the shim under a real containerd, reached with curl.

#[allow(dead_code)] // each test file uses part of the harness
mod common;

use common::{guest, text, Containerd, RUNTIME};
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "example.com/skiff/http-hello:1.0";

/// A port nothing listens on now (the kernel's pick, released for the container to take).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .output()
        .expect("run curl (apt-get install -y curl)")
}

/// Poll the container's log file until it holds `needle`.
fn wait_log(log: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = std::fs::read_to_string(log).unwrap_or_default();
        if s.contains(needle) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "the log never showed {needle:?}; log:\n{s}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_wasi_http_component_serves_on_the_annotated_port_and_sigterm_stops_it_cleanly() {
    let c = Containerd::start();
    c.import(IMAGE, guest("http-hello.wasm"), &[]);
    let port = free_port();
    // `ctr run` in the foreground: its exit status is the task's, its output the container's.
    let log = c.dir.path().join("web.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut ctr = Command::new("ctr")
        .arg("-a")
        .arg(&c.sock)
        .args([
            "-n",
            common::NS,
            "run",
            "--runtime",
            RUNTIME,
            "--platform",
            "wasi/wasm",
        ])
        // No network namespace in the spec: the guest runner serves on the host's, as a pod's
        // container serves in the pod's.
        .arg("--net-host")
        .args(["--annotation", &format!("dev.skiff.http.port={port}")])
        .args([IMAGE, "web"])
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .expect("run ctr");
    wait_log(&log, &format!("listening on http://0.0.0.0:{port}"));
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");

    let out = curl(&["-f", &url("/")]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from skiff\n",
        "{}",
        text(&out)
    );
    // A fresh instance per request, as `skiff serve`.
    for _ in 0..2 {
        let out = curl(&["-f", &url("/count")]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "1\n",
            "{}",
            text(&out)
        );
    }
    // The guest's output reaches the container's log as lines naming the container.
    let out = curl(&["-f", &url("/stdout")]);
    assert!(out.status.success(), "{}", text(&out));
    let s = wait_log(&log, "] stderr: http-hello: line on stderr");
    assert!(s.contains("[web "), "{s}");
    assert!(s.contains("] stdout: http-hello: line on stdout"), "{s}");

    // A request in flight: the guest is reading its body (hyper answers `100 Continue` when
    // the body is first read), the rest of which is sent only after the shutdown began.
    let mut inflight = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    common::start_echo_awaiting_body(&mut inflight);

    // SIGTERM (ctr's default): stop accepting, let the request finish, exit 0.
    let out = c.ctr(&["task", "kill", "web"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_log(&log, "shutting down: no new connections");
    assert!(
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err(),
        "port {port} still accepts connections after SIGTERM"
    );
    inflight.write_all(b"hello").unwrap();
    let mut response = String::new();
    inflight.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200") && response.ends_with("\r\n\r\nhello"),
        "{response}"
    );
    let status = ctr.wait().unwrap();
    let s = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(0), "the task's exit status; log:\n{s}");
    assert!(s.contains("stopped"), "{s}");
}

#[test]
fn the_containers_memory_limit_caps_each_requests_instance() {
    let c = Containerd::start();
    c.import(IMAGE, guest("http-hello.wasm"), &[]);
    let port = free_port();
    let log = serve_detached(
        &c,
        "hog",
        &[
            "--memory-limit",
            "16777216",
            "--annotation",
            &format!("dev.skiff.http.port={port}"),
        ],
    );
    let out = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://127.0.0.1:{port}/hog"),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "500",
        "{}",
        text(&out)
    );
    let s = wait_log(&log, "memory limit");
    assert!(s.contains("16 MiB"), "{s}");
    // The server carries on after the guest was stopped.
    let out = curl(&["-f", &format!("http://127.0.0.1:{port}/")]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from skiff\n");
    // SIGKILL ends it at once.
    let out = c.ctr(&["task", "kill", "-s", "SIGKILL", "hog"]);
    assert!(out.status.success(), "{}", text(&out));
    c.wait_for_status("hog", "STOPPED");
    let out = c.ctr(&["task", "delete", "hog"]);
    assert!(text(&out).contains("exit code 137"), "{}", text(&out));
}

#[test]
fn a_served_components_tables_count_against_the_containers_memory_limit() {
    let c = Containerd::start();
    c.import(IMAGE, guest("http-hello.wasm"), &[]);
    let hog_image = "example.com/skiff/http-table-hog:1.0";
    c.import(hog_image, guest("http-table-hog.wasm"), &[]);
    let hog_port = free_port();
    let web_port = std::iter::repeat_with(free_port)
        .find(|p| *p != hog_port)
        .unwrap();
    let hog_port_annotation = format!("dev.skiff.http.port={hog_port}");
    let web_port_annotation = format!("dev.skiff.http.port={web_port}");
    let log = serve_image_detached(
        &c,
        hog_image,
        "table-hog",
        &[
            "--memory-limit",
            "16777216",
            "--annotation",
            &hog_port_annotation,
        ],
    );
    serve_detached(
        &c,
        "web",
        &[
            "--memory-limit",
            "16777216",
            "--annotation",
            &web_port_annotation,
        ],
    );
    // Every request of the hog asks for 200M funcrefs (1.6 GB of host memory) in one
    // table.grow, and is stopped at it; the server itself carries on.
    for _ in 0..2 {
        let out = curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://127.0.0.1:{hog_port}/"),
        ]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "500",
            "{}",
            text(&out)
        );
    }
    wait_log(
        &log,
        "memory limit: the guest's linear memories and tables together would go past 16 MiB",
    );
    // A well-behaved component under the same limit, in the same containerd, is served.
    let out = curl(&["-f", &format!("http://127.0.0.1:{web_port}/")]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from skiff\n",
        "{}",
        text(&out)
    );
}

/// Without a port annotation a component is served on 0.0.0.0:8080 in the container's network
/// namespace (here a new one of its own: ctr run without --net-host), as under Docker; a bad
/// annotation is refused with what to set.
#[test]
fn a_wasi_http_component_without_a_port_serves_on_8080_in_its_namespace() {
    let c = Containerd::start();
    c.import(IMAGE, guest("http-hello.wasm"), &[]);
    c.run_detached(&[], IMAGE, "default-port");
    let listing = String::from_utf8_lossy(&c.ctr(&["task", "ls"]).stdout).to_string();
    let pid = listing
        .lines()
        .find(|l| l.starts_with("default-port "))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("no pid for the task in:\n{listing}"))
        .to_string();
    // curl inside the task's network namespace, where the guest listens.
    let deadline = Instant::now() + Duration::from_secs(30);
    let out = loop {
        let out = Command::new("nsenter")
            .arg(format!("--net=/proc/{pid}/ns/net"))
            .args(["curl", "-sS", "--max-time", "30", "http://127.0.0.1:8080/"])
            .output()
            .expect("run nsenter (util-linux) and curl");
        if out.status.success() || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from skiff\n",
        "{}",
        text(&out)
    );
    let out = c.ctr(&["task", "kill", "default-port"]);
    assert!(out.status.success(), "{}", text(&out));
    c.wait_for_status("default-port", "STOPPED");

    let out = c.run(
        &["--annotation", "dev.skiff.http.port=http"],
        IMAGE,
        "badport",
        &[],
    );
    let s = text(&out);
    assert!(!out.status.success(), "{s}");
    assert!(s.contains("expected a port number"), "{s}");
}

/// Two HTTP components in one pod: the pod's annotations reach both (as containerd's CRI plugin
/// passes them), and `dev.skiff.http.port/NAME` gives one of them a port of its own, so they do
/// not both bind the pod's.
#[test]
fn two_components_of_a_pod_serve_on_their_own_ports() {
    let c = Containerd::start();
    c.import(IMAGE, guest("http-hello.wasm"), &[]);
    let pod_port = free_port();
    let api_port = std::iter::repeat_with(free_port)
        .find(|p| *p != pod_port)
        .unwrap();
    let annotations = |name: &str| {
        [
            format!("io.kubernetes.cri.container-name={name}"),
            format!("dev.skiff.http.port={pod_port}"),
            format!("dev.skiff.http.port/api={api_port}"),
        ]
    };
    for (name, port) in [("web", pod_port), ("api", api_port)] {
        let [n, pod, own] = annotations(name);
        let log = serve_detached(
            &c,
            name,
            &[
                "--annotation",
                &n,
                "--annotation",
                &pod,
                "--annotation",
                &own,
            ],
        );
        wait_log(&log, &format!("listening on http://0.0.0.0:{port}"));
    }
    for port in [pod_port, api_port] {
        let out = curl(&["-f", &format!("http://127.0.0.1:{port}/")]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "hello from skiff\n",
            "{}",
            text(&out)
        );
    }
    for name in ["web", "api"] {
        let out = c.ctr(&["task", "kill", "-s", "SIGKILL", name]);
        assert!(out.status.success(), "{}", text(&out));
        c.wait_for_status(name, "STOPPED");
    }
}

/// `ctr run -d` of the http-hello image as `name` on the host's network, with `extra` flags
/// (annotations, limits), its output in a log file; returns the log once the guest runner
/// says it is listening.
fn serve_detached(c: &Containerd, name: &str, extra: &[&str]) -> std::path::PathBuf {
    serve_image_detached(c, IMAGE, name, extra)
}

/// `serve_detached` of another image.
fn serve_image_detached(
    c: &Containerd,
    image: &str,
    name: &str,
    extra: &[&str],
) -> std::path::PathBuf {
    let log = c.dir.path().join(format!("{name}.log"));
    let log_uri = format!("file://{}", log.display());
    let mut args = vec!["--net-host", "--log-uri", &log_uri];
    args.extend_from_slice(extra);
    c.run_detached(&args, image, name);
    wait_log(&log, "listening on");
    log
}
