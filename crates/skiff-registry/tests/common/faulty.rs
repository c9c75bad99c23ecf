//! A loopback HTTP server that misbehaves on purpose: wrong bytes for a digest, HTML, a
//! connection dropped mid-body, a huge manifest. One thread, one connection at a time.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    /// Send only this many bytes of the body (after announcing all of it), then close.
    pub cut_at: Option<usize>,
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
            headers: vec![],
        }
    }
}

pub struct Faulty {
    pub addr: String,
    pub requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Faulty {
    /// `handler(method, path)` answers each request.
    pub fn start(handler: impl Fn(&str, &str) -> Reply + Send + 'static) -> Faulty {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let path = parts.next().unwrap_or("").to_string();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                r.fetch_add(1, Ordering::SeqCst);
                let reply = handler(&method, &path);
                let mut head = format!(
                    "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
                    reply.status,
                    reply.content_type,
                    reply.body.len()
                );
                for (k, v) in &reply.headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let _ = conn.write_all(head.as_bytes());
                if method != "HEAD" {
                    let n = reply.cut_at.unwrap_or(reply.body.len());
                    let _ = conn.write_all(&reply.body[..n]);
                }
                let _ = conn.flush();
                let _ = conn.shutdown(std::net::Shutdown::Both);
            }
        });
        Faulty {
            addr,
            requests,
            stop,
        }
    }
}

impl Drop for Faulty {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so the thread ends.
        let _ = std::net::TcpStream::connect(&self.addr);
    }
}
