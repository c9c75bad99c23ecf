//! `skiff events` against the real daemon: what happens to tasks and apps is streamed as it
//! happens (create, start, die with its exit code, stop, deploy, redeploy, oom, destroy), a
//! client that never reads is cut off while the daemon carries on, and the daemon's own stderr
//! lines are timestamped.

mod common;

use common::daemon::{Daemon, PATIENCE};
use common::guest;
use common::serve::curl;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn g(name: &str) -> String {
    guest(name).display().to_string()
}

/// `skiff events --format json` running in the background; its lines as they come.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<serde_json::Value>,
}

impl Watch {
    /// Start watching, and wait until the subscription is live: events made before it would
    /// be missed (without --since). Probe tasks (`--rm`, named `probe-N`) are
    /// run until the watch sees one.
    fn start(d: &Daemon, filters: &[&str]) -> Watch {
        let mut child = d
            .skiff
            .cmd()
            .args(["events", "--format", "json"])
            .args(filters)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in out.lines().map_while(Result::ok) {
                if tx.send(serde_json::from_str(&l).unwrap()).is_err() {
                    return;
                }
            }
        });
        let w = Watch { child, lines };
        let deadline = Instant::now() + PATIENCE;
        for n in 0.. {
            let name = format!("probe-{n}");
            d.run(&["run", "-d", "--rm", "--name", &name, &g("exit-code.wasm")])
                .code(0);
            if let Ok(e) = w.lines.recv_timeout(Duration::from_millis(500)) {
                if e["name"].as_str().is_some_and(|n| n.starts_with("probe-")) {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "events never arrived");
        }
        w
    }

    /// The next event of workload `name` whose action is `action` (others are skipped).
    fn next(&self, action: &str, name: &str) -> serde_json::Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let e = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {action} event for {name}"));
            if e["action"] == action && e["name"] == name {
                return e;
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn tasks_and_apps_are_streamed_as_they_change() {
    let d = Daemon::start(&["--http-listen", "127.0.0.1:0", "--access-log", "-"]);
    // The daemon's log lines carry their time (RFC 3339), at info by default.
    let first = d.stderr();
    let first = first.lines().next().unwrap_or_default().to_string();
    assert!(
        first.len() > 20 && first.as_bytes()[4] == b'-' && first[..20].contains('T'),
        "{first}"
    );
    assert!(d.stderr().contains("INFO"), "{}", d.stderr());

    let w = Watch::start(&d, &[]);
    // A task: created, started, died with its exit code.
    d.run(&["run", "-d", "--name", "job", &g("exit-code.wasm"), "3"])
        .code(0);
    assert_eq!(w.next("create", "job")["kind"], "task");
    w.next("start", "job");
    assert_eq!(w.next("die", "job")["exit_code"], 3);
    d.wait_status("job", "exited");
    d.run(&["rm", "job"]).code(0);
    w.next("destroy", "job");

    // An app: deployed (the URL on stderr), redeployed, an out-of-memory request, stopped.
    let api = g("http-hello.wasm");
    let deploy = || d.run(&["deploy", "--name", "api", "--route", "/api", &api]);
    let out = deploy();
    out.code(0);
    let url = format!("http://{}/api", d.http_addr());
    out.stderr_has(&format!("api (version 1) serving at {url}"));
    let reply = curl(&[&url]);
    assert_eq!(reply.status, 200);
    // The data plane's access log (here on the daemon's stderr): the request's line.
    let id = reply.header("x-request-id").unwrap();
    let deadline = Instant::now() + PATIENCE;
    while !d
        .stderr()
        .contains(&format!(" api GET /api 200 {} ", reply.body.len()))
    {
        assert!(Instant::now() < deadline, "{}", d.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(d.stderr().contains(&format!("ms {id}\n")), "{}", d.stderr());
    assert_eq!(w.next("deploy", "api")["version"], 1);
    deploy().code(0).stderr_has("api (version 2) serving at");
    assert_eq!(w.next("redeploy", "api")["version"], 2);

    d.run(&[
        "deploy",
        "--name",
        "hog",
        "--route",
        "/hog",
        &g("http-table-hog.wasm"),
    ])
    .code(0);
    let hog = curl(&[&format!("http://{}/hog", d.http_addr())]);
    assert_eq!(hog.status, 500);
    let oom = w.next("oom", "hog");
    assert_eq!(oom["kind"], "app");
    assert!(
        oom["reason"].as_str().unwrap().contains("memory limit"),
        "{oom}"
    );
    let id = hog.header("x-request-id").unwrap();
    assert_eq!(oom["request_id"].as_str(), Some(id.as_str()));
    d.run(&["stop", "api"]).code(0);
    w.next("stop", "api");

    // A task at its memory limit: oom, then die with 137, as Docker's OOM kill.
    d.run(&[
        "run",
        "-d",
        "--name",
        "hogtask",
        "--memory",
        "1m",
        &g("table-hog.wasm"),
    ])
    .code(0);
    assert!(w.next("oom", "hogtask")["reason"]
        .as_str()
        .unwrap()
        .contains("memory limit"));
    assert_eq!(w.next("die", "hogtask")["exit_code"], 137);

    // Filters, and the one-line table form.
    let only = Watch::start(&d, &["--filter", "action=die"]);
    d.run(&["run", "-d", "--name", "quiet", &g("exit-code.wasm"), "5"])
        .code(0);
    assert_eq!(only.next("die", "quiet")["exit_code"], 5);
    // Nothing but die events came through the filter.
    while let Ok(e) = only.lines.recv_timeout(Duration::from_millis(200)) {
        assert_eq!(e["action"], "die", "{e}");
    }
    // The kept events, replayed: what happened in the last hour, then the stream ends.
    let past = d.run(&[
        "events", "--since", "1h", "--until", "now", "--filter", "name=job",
    ]);
    past.code(0);
    let actions: Vec<&str> = past
        .stdout
        .lines()
        .map(|l| l.split(' ').nth(2).unwrap_or_default())
        .collect();
    assert_eq!(
        actions,
        ["create", "start", "die", "destroy"],
        "{}",
        past.stdout
    );
    d.run(&["events", "--since", "yesterday"])
        .code(125)
        .stderr_has("an age such as 10m");
    d.run(&["events", "--filter", "colour=red"])
        .code(125)
        .stderr_has("the keys are name, id, kind and action");
}

/// A client that opens the stream and never reads: once it is 16 events behind (beyond what
/// its socket buffers hold) the daemon ends its stream, and everyone else carries on.
#[test]
fn a_client_that_never_reads_is_cut_off() {
    let d = Daemon::start(&["--http-listen", "127.0.0.1:0"]);
    d.run(&[
        "deploy",
        "--name",
        "hog",
        "--route",
        "/",
        &g("http-table-hog.wasm"),
    ])
    .code(0);
    let mut stuck = UnixStream::connect(d.socket()).unwrap();
    write!(stuck, "GET /v1/events HTTP/1.1\r\nHost: skiff\r\n\r\n").unwrap();
    // The subscription is live once the answer's head is there; read only that (a head is
    // small; the events that follow stay unread in the socket).
    let mut head = [0u8; 64];
    stuck.set_read_timeout(Some(PATIENCE)).unwrap();
    let n = stuck.read(&mut head).unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &head[..n]);

    // A flood of events, each ~300 bytes: far more than a Unix socket buffers (~200 KB).
    const FLOOD: usize = 3000;
    let addr = d.http_addr();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    let reader = {
        let mut conn = conn.try_clone().unwrap();
        std::thread::spawn(move || {
            // Every answer is a 500 ending in its request id; count them.
            let mut seen = 0;
            let mut buf = vec![0u8; 1 << 16];
            let mut text = String::new();
            while seen < FLOOD {
                let n = conn.read(&mut buf).unwrap();
                assert!(n > 0, "the data plane closed after {seen} answers");
                text.push_str(&String::from_utf8_lossy(&buf[..n]));
                seen += text.matches("HTTP/1.1 500").count();
                text = text.rsplit("HTTP/1.1 500").next().unwrap_or("").to_string();
            }
        })
    };
    let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    for _ in 0..FLOOD {
        conn.write_all(request.as_bytes()).unwrap();
    }
    reader.join().unwrap();

    // What the stuck client can read now is what was buffered, then the end of the stream.
    let mut rest = head[..n].to_vec();
    let mut buf = vec![0u8; 1 << 16];
    while !rest.ends_with(b"\r\n0\r\n\r\n") {
        let n = stuck.read(&mut buf).expect("the stream ended, not stalled");
        assert!(n > 0, "closed without ending the stream");
        rest.extend_from_slice(&buf[..n]);
    }
    let got = String::from_utf8_lossy(&rest)
        .matches("\"action\":\"oom\"")
        .count();
    eprintln!("{got} of {FLOOD} events reached the client that never reads before it was cut off");
    assert!(
        (16..FLOOD).contains(&got),
        "{got} of {FLOOD} events reached the stuck client"
    );

    // The daemon carries on: a new client gets new events, the API answers.
    let w = Watch::start(&d, &[]);
    assert_eq!(curl(&[&format!("http://{addr}/")]).status, 500);
    w.next("oom", "hog");
    d.run(&["ps"]).code(0).stdout_has("hog");
}
