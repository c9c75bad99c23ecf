//! The daemon's API against strangers that hold connections: silent and half-sent heads on the
//! TCP port, past its connection cap. The Unix socket and token holders still get through.
//! Real daemon, real sockets; no timing assertions.

mod common;
use common::daemon::Daemon;
use common::{connect_tcp, read_until_closed};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

fn connect(addr: &str) -> TcpStream {
    connect_tcp(addr, Duration::from_secs(60))
}

/// What the server sent before closing; None if it stayed open 60 s.
fn closed(c: &mut TcpStream) -> Option<String> {
    read_until_closed(c).map(|b| String::from_utf8_lossy(&b).into_owned())
}

#[test]
fn strangers_holding_tcp_connections_lock_out_neither_the_socket_nor_token_holders() {
    let d = Daemon::start(&["--api-listen", "127.0.0.1:0"]);
    let home = d.skiff.home.path();
    let read = |p: &str| {
        std::fs::read_to_string(home.join(p))
            .unwrap()
            .trim()
            .to_string()
    };
    let (addr, token) = (read("daemon/api-addr"), read("daemon/token"));
    // More than the TCP listener's 256 connections: silent ones and half-sent heads.
    let mut strangers: Vec<TcpStream> = (0..400).map(|_| connect(&addr)).collect();
    for c in strangers.iter_mut().skip(1).step_by(2) {
        c.write_all(b"GET /v1/workloads HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
    }
    // The socket has a cap of its own.
    d.run(&["ps"]).code(0);
    // A token holder over TCP gets in: the oldest stranger makes room.
    let out = d
        .skiff
        .cmd()
        .args(["--host", &format!("tcp://{addr}"), "ps"])
        .env("SKIFF_TOKEN", &token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.stderr()
    );
    assert!(closed(&mut strangers[0]).is_some());
    // A stranger is answered on its head alone: the declared 100 MB is never asked for
    // (no 100 Continue) nor read, and the connection closes after the 401.
    let mut c = connect(&addr);
    c.write_all(
        b"POST /v1/blobs HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let answer = closed(&mut c).expect("closed after the 401");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
    // Strangers that never complete a head are closed at the head timeout (10 s).
    for c in strangers.iter_mut().rev().take(2) {
        let got = closed(c).expect("closed within 60 s");
        assert_eq!(got, "", "a stranger's partial head got an answer");
    }
}
