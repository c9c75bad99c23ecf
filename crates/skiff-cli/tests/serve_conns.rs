//! `skiff serve` against clients that hold connections without using them: silent ones (plain,
//! after a TLS handshake, stuck in the HTTP/1-or-2 sniff), idle ones (HTTP/1.1 and HTTP/2),
//! bodies trickled a byte at a time, responses never read or never granted HTTP/2 window,
//! silent connections crowding out keep-alive ones at the cap, and accept failing for want of
//! file descriptors. Each test shows the attacker stopped and a normal client still served.
//! Real binary, real sockets, curl and openssl; no timing assertions (waits are generous
//! bounds).

mod common;
use common::serve::{curl, Served};
use common::{connect_tcp, guest, read_until_closed};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn g(name: &str) -> String {
    guest(name).to_str().unwrap().to_string()
}

fn connect(addr: &str) -> TcpStream {
    connect_tcp(addr, Duration::from_secs(30))
}

/// A counter's value in the admin endpoint's metrics.
fn metric(s: &Served, line_start: &str) -> u64 {
    let m = s.metrics();
    m.lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in\n{m}"))
}

#[test]
fn silent_connections_past_the_cap_do_not_keep_a_client_out() {
    // A head timeout longer than the test: only making room at the cap can let curl in.
    let s = Served::start(&[
        "--max-connections",
        "100",
        "--header-timeout",
        "10m",
        "--admin-listen",
        "127.0.0.1:0",
        &g("http-hello.wasm"),
    ]);
    let mut silent: Vec<TcpStream> = (0..200).map(|_| connect(&s.addr)).collect();
    // Half of them stop in the middle of their head.
    for c in silent.iter_mut().skip(1).step_by(2) {
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .unwrap();
    }
    let r = s.get("/");
    assert_eq!(r.status, 200, "{r:?}\n{}", s.stderr());
    // The oldest silent connection was closed to make room.
    assert!(read_until_closed(&mut silent[0]).is_some());
    let evicted = metric(
        &s,
        "skiff_http_connections_closed_total{reason=\"evicted\"}",
    );
    assert!(evicted >= 100, "evicted {evicted}");
    // Only as many are closed as room is needed for: the newest is still open.
    let newest = silent.last_mut().unwrap();
    newest
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut b = [0u8; 1];
    let still_open = matches!(newest.read(&mut b), Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut);
    assert!(
        still_open,
        "the newest silent connection should still be open"
    );
}

#[test]
fn connections_that_send_nothing_stall_or_idle_are_closed() {
    let s = Served::start(&[
        "--header-timeout",
        "1s",
        "--idle-timeout",
        "1s",
        "--admin-listen",
        "127.0.0.1:0",
        &g("http-hello.wasm"),
    ]);
    let mut silent = connect(&s.addr);
    // Fewer than the 24 bytes hyper-util needs to choose HTTP/1 or HTTP/2.
    let mut sniffing = connect(&s.addr);
    sniffing.write_all(b"PRI * HTTP/2.0\r\n").unwrap();
    let mut partial = connect(&s.addr);
    partial.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    // One request answered, then nothing: the keep-alive connection is closed when idle.
    let mut keep_alive = connect(&s.addr);
    keep_alive
        .write_all(b"GET /count HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    for (name, c) in [
        ("silent", &mut silent),
        ("sniffing", &mut sniffing),
        ("partial head", &mut partial),
    ] {
        let got = read_until_closed(c);
        assert_eq!(
            got.as_deref(),
            Some(&b""[..]),
            "{name}: not closed, or answered"
        );
    }
    let answered = read_until_closed(&mut keep_alive).expect("idle keep-alive closed");
    let answered = String::from_utf8_lossy(&answered);
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    assert!(
        metric(
            &s,
            "skiff_http_connections_closed_total{reason=\"head-timeout\"}"
        ) >= 3
    );
    assert!(metric(&s, "skiff_http_connections_closed_total{reason=\"idle\"}") >= 1);
    assert_eq!(s.get("/").status, 200);
}

fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let n = payload.len();
    let mut f = vec![(n >> 16) as u8, (n >> 8) as u8, n as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Reads HTTP/2 frames until the server closes the connection (true) or `patience` is over
/// (false), acknowledging SETTINGS and PING as a live client does; the kinds of the frames read.
fn h2_frames_until_closed(c: &mut TcpStream, patience: Duration) -> (bool, Vec<u8>) {
    let end = Instant::now() + patience;
    let mut frames = Vec::new();
    let closed = loop {
        if Instant::now() > end {
            break false;
        }
        let mut head = [0u8; 9];
        match c.read_exact(&mut head) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
                ) =>
            {
                break true
            }
            Err(_) => break false,
        }
        let len = (head[0] as usize) << 16 | (head[1] as usize) << 8 | head[2] as usize;
        let (kind, flags) = (head[3], head[4]);
        let mut payload = vec![0u8; len];
        if c.read_exact(&mut payload).is_err() {
            break true;
        }
        if kind == 0x4 && flags & 1 == 0 {
            let _ = c.write_all(&h2_frame(0x4, 1, 0, &[]));
        }
        if kind == 0x6 && flags & 1 == 0 {
            let _ = c.write_all(&h2_frame(0x6, 1, 0, &payload));
        }
        frames.push(kind);
    };
    (closed, frames)
}

#[test]
fn an_idle_http2_connection_gets_goaway_and_is_closed() {
    let s = Served::start(&["--idle-timeout", "1s", &g("http-hello.wasm")]);
    let mut c = connect(&s.addr);
    c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    c.write_all(&h2_frame(0x4, 0, 0, &[])).unwrap(); // SETTINGS
                                                     // GET / on stream 1, HPACK: :method GET, :scheme http, :path /, :authority "x".
    let headers = [0x82, 0x86, 0x84, 0x01, 0x01, b'x'];
    c.write_all(&h2_frame(0x1, 0x5, 1, &headers)).unwrap(); // END_STREAM | END_HEADERS
    let (closed, frames) = h2_frames_until_closed(&mut c, Duration::from_secs(60));
    assert!(closed, "the idle HTTP/2 connection stayed open: {frames:?}");
    assert!(frames.contains(&0x1), "no response HEADERS: {frames:?}");
    assert!(frames.contains(&0x7), "closed without GOAWAY: {frames:?}");
}

#[test]
fn a_client_silent_after_the_tls_handshake_is_closed() {
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
        "--header-timeout",
        "1s",
        &g("http-hello.wasm"),
    ]);
    // Completes the handshake, then sends nothing: its stdin stays open and empty.
    let mut client = Command::new("openssl")
        .args(["s_client", "-connect", &s.addr, "-servername", "localhost"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl runs");
    let stdin = client.stdin.take();
    let end = Instant::now() + Duration::from_secs(60);
    while client.try_wait().unwrap().is_none() {
        if Instant::now() > end {
            let _ = client.kill();
            panic!("the server kept a silent TLS connection open for 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(stdin);
    let out = client.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("SSL handshake has read"),
        "the handshake did not complete:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A client that never starts the handshake is closed too.
    let mut raw = connect(&s.addr);
    assert_eq!(read_until_closed(&mut raw).as_deref(), Some(&b""[..]));
    let url = format!("https://localhost:{}/", s.port());
    let resolve = format!("localhost:{}:127.0.0.1", s.port());
    let r = curl(&["--cacert", c.to_str().unwrap(), "--resolve", &resolve, &url]);
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn a_trickled_body_is_cut_with_408_and_frees_its_instance() {
    let s = Served::start(&[
        "--max-concurrent",
        "2",
        "--body-grace",
        "1s",
        "--min-body-rate",
        "1k",
        &g("http-hello.wasm"),
    ]);
    // As many tricklers as instances: each sends a byte every 200 ms of a 100 kB body.
    let tricklers: Vec<_> = (0..2)
        .map(|_| {
            let addr = s.addr.clone();
            std::thread::spawn(move || {
                let mut c = connect(&addr);
                c.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
                    .unwrap();
                c.set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                // Up to two minutes: far beyond the 1 s grace, short of the 60 s wall clock x2.
                for _ in 0..600 {
                    if c.write_all(b"x").is_err() {
                        break;
                    }
                    match c.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                        Err(_) => break,
                    }
                }
                String::from_utf8_lossy(&got).into_owned()
            })
        })
        .collect();
    for t in tricklers {
        let answer = t.join().unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "{answer:?}\n{}",
            s.stderr()
        );
    }
    s.wait_log("408: the request body arrived at less than 1024 bytes/s");
    // The instances are free again: a normal upload is echoed.
    let r = curl(&["--data-binary", "hello", &s.url("/echo")]);
    assert_eq!((r.status, r.body.as_str()), (200, "hello"), "{r:?}");
}

#[test]
fn out_of_file_descriptors_accept_backs_off_logs_once_and_recovers() {
    let s = Served::start(&["--header-timeout", "3s", &g("http-hello.wasm")]);
    let pid = s.pid();
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let cap = format!("--nofile={}:{}", open + 8, open + 8);
    let ok = Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &cap])
        .status()
        .expect("prlimit runs (util-linux)")
        .success();
    assert!(ok);
    // More connections than descriptors: the kernel queues them, accept fails with EMFILE
    // until the silent ones reach their head timeout.
    let conns: Vec<TcpStream> = (0..64).map(|_| connect(&s.addr)).collect();
    s.wait_log("Too many open files");
    std::thread::sleep(Duration::from_secs(2));
    let log = s.stderr();
    let lines = log
        .lines()
        .filter(|l| l.contains("Too many open files"))
        .count();
    // Without backoff this was one line per failure: 328 MiB in 20 s.
    assert!(
        (1..=2).contains(&lines),
        "{lines} accept lines in 2 s:\n{log}"
    );
    drop(conns);
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        if s.get("/").status == 200 {
            break;
        }
        assert!(Instant::now() < end, "never recovered:\n{}", s.stderr());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_client_that_stops_reading_its_response_is_dropped() {
    let s = Served::start(&[
        "--idle-timeout",
        "1s",
        "--max-body",
        "64m",
        "--admin-listen",
        "127.0.0.1:0",
        &g("http-hello.wasm"),
    ]);
    // A 24 MiB echo: more than the socket buffers hold (4 MiB to send, a few to receive, as
    // the client never reads), and well inside the guest's 128 MiB.
    let body = vec![b'x'; 24 << 20];
    let mut c = connect(&s.addr);
    write!(
        c,
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    c.write_all(&body).expect("the server reads the whole body");
    // Once the server has given up on it, reading finds less than the whole echo, then the end.
    let end = Instant::now() + Duration::from_secs(60);
    while metric(&s, "skiff_http_connections_open") > 0 {
        assert!(Instant::now() < end, "the stalled connection is still open");
        std::thread::sleep(Duration::from_millis(100));
    }
    let got = read_until_closed(&mut c).expect("closed");
    assert!(
        got.len() < body.len(),
        "the whole echo arrived: not a stall"
    );
    assert_eq!(s.get("/").status, 200);
}

#[test]
fn http2_clients_that_grant_no_window_are_dropped_and_others_served() {
    let s = Served::start(&[
        "--max-connections",
        "2",
        "--idle-timeout",
        "2s",
        "--header-timeout",
        "2s",
        "--admin-listen",
        "127.0.0.1:0",
        &g("http-hello.wasm"),
    ]);
    // As many as the cap: each asks for / with a flow-control window of 0, so not a byte of
    // the body can be sent, and answers PINGs, so it looks alive. hyper writes nothing and waits
    // for window: before the stall check, both held the server for good.
    let stallers: Vec<_> = (0..2)
        .map(|_| {
            let addr = s.addr.clone();
            std::thread::spawn(move || {
                let mut c = connect(&addr);
                c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
                // SETTINGS_INITIAL_WINDOW_SIZE (4) = 0.
                c.write_all(&h2_frame(0x4, 0, 0, &[0, 4, 0, 0, 0, 0]))
                    .unwrap();
                let headers = [0x82, 0x86, 0x84, 0x01, 0x01, b'x'];
                c.write_all(&h2_frame(0x1, 0x5, 1, &headers)).unwrap();
                h2_frames_until_closed(&mut c, Duration::from_secs(40))
            })
        })
        .collect();
    for t in stallers {
        let (closed, frames) = t.join().unwrap();
        assert!(
            closed,
            "a client granting no window held its connection: {frames:?}"
        );
        assert!(frames.contains(&0x1), "no response HEADERS: {frames:?}");
        assert!(
            !frames.contains(&0x0),
            "DATA sent without window: {frames:?}"
        );
    }
    assert!(
        metric(
            &s,
            "skiff_http_connections_closed_total{reason=\"stalled\"}"
        ) >= 2
    );
    assert_eq!(s.get("/").status, 200, "{}", s.stderr());
}

/// One HTTP/1.1 response read from a keep-alive connection (its body has a Content-Length).
fn read_response(c: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .expect("a Content-Length");
            if body.len() >= len {
                return text;
            }
        }
        match c.read(&mut buf) {
            Ok(0) | Err(_) => return text,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn a_keep_alive_client_outlasts_silent_connections_at_the_cap() {
    let s = Served::start(&[
        "--max-connections",
        "2",
        "--header-timeout",
        "10m",
        "--idle-timeout",
        "10m",
        &g("http-hello.wasm"),
    ]);
    let mut good = connect(&s.addr);
    let get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    good.write_all(get).unwrap();
    let first = read_response(&mut good);
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    // Silent connections keep arriving; the good one, idle between requests, is older than
    // all of them. Each newcomer makes room by closing the oldest silent one.
    let mut silent: Vec<TcpStream> = (0..3).map(|_| connect(&s.addr)).collect();
    for (i, c) in silent.iter_mut().take(2).enumerate() {
        assert_eq!(
            read_until_closed(c).as_deref(),
            Some(&b""[..]),
            "silent connection {i} was not the one closed"
        );
    }
    good.write_all(get).unwrap();
    let second = read_response(&mut good);
    assert!(
        second.starts_with("HTTP/1.1 200"),
        "the keep-alive connection was closed for a silent one: {second:?}"
    );
}

#[test]
fn while_an_evicted_http2_connection_is_closing_no_other_is_evicted() {
    // The head timeout is how long an evicted HTTP/2 connection may take to close.
    let s = Served::start(&[
        "--max-connections",
        "2",
        "--header-timeout",
        "5s",
        "--idle-timeout",
        "10m",
        &g("http-hello.wasm"),
    ]);
    // Two HTTP/2 clients get an answer, then read nothing more: neither acknowledges the PING
    // of a graceful close, so an evicted one stays closing until the head timeout.
    let h2_get = |addr: &str| {
        let mut c = connect(addr);
        c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
        c.write_all(&h2_frame(0x4, 0, 0, &[])).unwrap();
        let headers = [0x82, 0x86, 0x84, 0x01, 0x01, b'x'];
        c.write_all(&h2_frame(0x1, 0x5, 1, &headers)).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        c
    };
    let _first = h2_get(&s.addr);
    let mut second = h2_get(&s.addr);
    // A newcomer at the cap: the first (idle for longest) is evicted and lingers.
    let mut newcomer = connect(&s.addr);
    newcomer
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // Before, another idle connection was evicted every 100 ms meanwhile.
    second
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let (_, frames) = h2_frames_until_closed(&mut second, Duration::from_secs(3));
    assert!(frames.contains(&0x1), "no response HEADERS: {frames:?}");
    assert!(
        !frames.contains(&0x7),
        "a second connection was evicted: {frames:?}"
    );
    // Once the first has ended, the newcomer is served.
    let answer = read_response(&mut newcomer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
}
