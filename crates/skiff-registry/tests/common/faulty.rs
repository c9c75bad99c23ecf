//! A loopback HTTP server that misbehaves on purpose: wrong bytes for a digest, HTML, a
//! connection dropped mid-body, a huge manifest, an endless body, a trickle, silence. A thread
//! per connection, so one that stalls does not hold up the next.
//!
//! Shared by path with the skiff CLI's tests: std only.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    /// Send only this many bytes of the body (after announcing all of it), then close.
    pub cut_at: Option<usize>,
    /// Send only this many bytes of the body, then say nothing more, keeping the connection
    /// open until the client hangs up.
    pub stall_at: Option<usize>,
    /// After `body`, this many more bytes (`x`), made as they are sent: a huge body the server
    /// never holds.
    pub fill: u64,
    /// Send the body one byte at a time, this long apart.
    pub trickle: Option<Duration>,
    /// Announce no `Content-Length`: the body ends when the connection closes.
    pub no_length: bool,
    /// Read nothing more (not a byte of a request body) and send nothing at all, not even the
    /// head, until the server is dropped.
    pub silent: bool,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply::new(status, "application/json", body)
    }
    pub fn new(status: u16, ct: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            content_type: ct.into(),
            body: body.into(),
            cut_at: None,
            stall_at: None,
            fill: 0,
            trickle: None,
            no_length: false,
            silent: false,
            headers: vec![],
        }
    }
}

/// A request as the server read it: headers with lowercase names.
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// The body, when it declared a `Content-Length` of at most [`BODY_READ`].
    pub body: Vec<u8>,
}

/// Bodies up to this size are read before the handler runs (larger ones are left unread).
const BODY_READ: usize = 1 << 20;

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

pub struct Faulty {
    pub addr: String,
    pub requests: Arc<AtomicUsize>,
    /// Body bytes written to clients (accepted by the kernel), all connections together.
    pub body_bytes_sent: Arc<AtomicU64>,
    /// Every request, in the order they came.
    pub seen: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

/// No reply holds a connection longer than this, whatever the client does.
const HOLD_AT_MOST: Duration = Duration::from_secs(120);

impl Faulty {
    /// `handler(method, path)` answers each request.
    pub fn start(handler: impl Fn(&str, &str) -> Reply + Send + Sync + 'static) -> Faulty {
        Faulty::start_with(move |r| handler(&r.method, &r.path))
    }

    /// `handler(request)` answers each request.
    pub fn start_with(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Faulty {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(AtomicUsize::new(0));
        let body_bytes_sent = Arc::new(AtomicU64::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let (r, b, sn, s) = (
            requests.clone(),
            body_bytes_sent.clone(),
            seen.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (handler, r, b, sn, s) =
                    (handler.clone(), r.clone(), b.clone(), sn.clone(), s.clone());
                std::thread::spawn(move || {
                    let Some(req) = read_request(&conn) else {
                        return;
                    };
                    r.fetch_add(1, Ordering::SeqCst);
                    let reply = handler(&req);
                    let head_only = req.method == "HEAD";
                    sn.lock().unwrap().push(req);
                    if reply.silent {
                        let until = Instant::now() + HOLD_AT_MOST;
                        while !s.load(Ordering::SeqCst) && Instant::now() < until {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        return;
                    }
                    answer(conn, reply, head_only, &b);
                });
            }
        });
        Faulty {
            addr,
            requests,
            body_bytes_sent,
            seen,
            stop,
        }
    }
}

fn read_request(conn: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(conn.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .filter(|n| *n <= BODY_READ)
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        body.clear();
    }
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

/// Wait until the client closes the connection (or [`HOLD_AT_MOST`] passes).
fn hold(mut conn: &TcpStream) {
    let _ = conn.set_read_timeout(Some(HOLD_AT_MOST));
    let mut buf = [0u8; 1024];
    while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
}

fn answer(mut conn: TcpStream, reply: Reply, head_only: bool, sent: &AtomicU64) {
    let len = reply.body.len() as u64 + reply.fill;
    let mut head = format!(
        "HTTP/1.1 {} X\r\nContent-Type: {}\r\nConnection: close\r\n",
        reply.status, reply.content_type
    );
    if !reply.no_length {
        head.push_str(&format!("Content-Length: {len}\r\n"));
    }
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    if conn.write_all(head.as_bytes()).is_err() || head_only {
        return;
    }
    let mut write = |bytes: &[u8]| -> bool {
        let ok = conn.write_all(bytes).is_ok();
        if ok {
            sent.fetch_add(bytes.len() as u64, Ordering::SeqCst);
        }
        ok
    };
    let body = &reply.body[..reply.cut_at.unwrap_or(reply.body.len())];
    let body = &body[..reply.stall_at.unwrap_or(body.len()).min(body.len())];
    if let Some(every) = reply.trickle {
        let until = Instant::now() + HOLD_AT_MOST;
        for byte in body {
            if !write(std::slice::from_ref(byte)) || Instant::now() > until {
                return;
            }
            std::thread::sleep(every);
        }
    } else if !write(body) {
        return;
    }
    let filler = vec![b'x'; 64 << 10];
    let mut left = reply.fill;
    while left > 0 {
        let n = left.min(filler.len() as u64) as usize;
        if !write(&filler[..n]) {
            return;
        }
        left -= n as u64;
    }
    let _ = conn.flush();
    if reply.stall_at.is_some() {
        hold(&conn);
        return;
    }
    let _ = conn.shutdown(std::net::Shutdown::Both);
}

impl Drop for Faulty {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so the thread ends.
        let _ = std::net::TcpStream::connect(&self.addr);
    }
}
