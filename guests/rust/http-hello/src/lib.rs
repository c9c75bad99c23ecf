//! `http-hello`: a wasi:http incoming-handler used by `skiff serve` tests. See ../../README.md.
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingRequest,
    OutgoingResponse, ResponseOutparam, Scheme,
};

wasip2::http::proxy::export!(Handler);

struct Handler;

/// Incremented on every request: a host that makes a fresh instance per request always sees 1.
static COUNT: AtomicU64 = AtomicU64::new(0);

impl wasip2::exports::http::incoming_handler::Guest for Handler {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let count = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
        let pq = request.path_with_query().unwrap_or_else(|| "/".to_string());
        let (path, query) = match pq.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (pq.clone(), String::new()),
        };
        match path.as_str() {
            "/echo" => {
                let body = read_body(&request);
                respond(response_out, 200, "application/octet-stream", &body);
            }
            "/count" => respond(response_out, 200, "text/plain", format!("{count}\n").as_bytes()),
            "/trap" => panic!("http-hello: /trap requested"),
            "/loop" => loop {
                std::hint::black_box(&COUNT);
            },
            "/hog" => {
                // Allocate the answer first: once memory is exhausted the allocator cannot grow.
                let mut msg = String::with_capacity(128);
                let pages = hog();
                let _ = write!(msg, "hog: memory.grow failed after {pages} pages\n");
                respond(response_out, 500, "text/plain", msg.as_bytes());
            }
            "/none" => drop(response_out),
            "/env" => {
                let v = std::env::var("NAME").unwrap_or_else(|_| "(unset)".to_string());
                respond(response_out, 200, "text/plain", format!("NAME={v}\n").as_bytes());
            }
            "/outbound" => outbound(&query, response_out),
            "/stdout" => {
                println!("http-hello: line on stdout");
                eprintln!("http-hello: line on stderr");
                let _ = std::io::stdout().flush();
                respond(response_out, 200, "text/plain", b"ok\n");
            }
            _ => respond(response_out, 200, "text/plain", b"hello from skiff\n"),
        }
    }
}

fn respond(out: ResponseOutparam, status: u16, content_type: &str, body: &[u8]) {
    let headers = Fields::new();
    let _ = headers.append("content-type", content_type.as_bytes());
    let mut len = [0u8; 20];
    let _ = headers.append("content-length", decimal(body.len(), &mut len));
    let resp = OutgoingResponse::new(headers);
    let _ = resp.set_status_code(status);
    let ob = resp.body().expect("outgoing body");
    ResponseOutparam::set(out, Ok(resp));
    {
        let w = ob.write().expect("output stream");
        for chunk in body.chunks(4096) {
            w.blocking_write_and_flush(chunk).expect("write body");
        }
    }
    OutgoingBody::finish(ob, None).expect("finish body");
}

/// `n` in decimal, formatted without allocating (used after /hog exhausted memory).
fn decimal(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

fn read_body(request: &IncomingRequest) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Ok(body) = request.consume() {
        if let Ok(mut stream) = body.stream() {
            let _ = stream.read_to_end(&mut buf);
        }
        let _ = IncomingBody::finish(body);
    }
    buf
}

/// Grows linear memory one 64 KiB page at a time, touching each new page, until growth fails.
fn hog() -> usize {
    let mut pages = 0usize;
    loop {
        let old = core::arch::wasm32::memory_grow(0, 1);
        if old == usize::MAX {
            return pages;
        }
        pages += 1;
        unsafe { core::ptr::write_volatile((old * 65536) as *mut u8, 1) };
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `/outbound?url=http://host:port/path`: GET via wasi:http/outgoing-handler; answers
/// `<status>\n<body>` (status 200), or 502 `denied: <error code>` if the host refuses.
fn outbound(query: &str, out: ResponseOutparam) {
    let url = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("url="))
        .map(percent_decode);
    let Some(url) = url else {
        return respond(out, 400, "text/plain", b"missing ?url=\n");
    };
    let (scheme, rest) = if let Some(r) = url.strip_prefix("http://") {
        (Scheme::Http, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (Scheme::Https, r)
    } else {
        return respond(out, 400, "text/plain", b"url must start with http:// or https://\n");
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let req = OutgoingRequest::new(Fields::new());
    let _ = req.set_method(&Method::Get);
    let _ = req.set_scheme(Some(&scheme));
    let _ = req.set_authority(Some(authority));
    let _ = req.set_path_with_query(Some(path));
    let result = match outgoing_handler::handle(req, None) {
        Err(code) => Err(code),
        Ok(fut) => loop {
            match fut.get() {
                None => fut.subscribe().block(),
                Some(Err(())) => panic!("outgoing response already taken"),
                Some(Ok(r)) => break r,
            }
        },
    };
    match result {
        Err(code) => respond(out, 502, "text/plain", format!("denied: {code:?}\n").as_bytes()),
        Ok(resp) => {
            let status = resp.status();
            let mut body = Vec::new();
            if let Ok(b) = resp.consume() {
                if let Ok(mut s) = b.stream() {
                    let _ = s.read_to_end(&mut body);
                }
                let _ = IncomingBody::finish(b);
            }
            let mut text = format!("{status}\n").into_bytes();
            text.extend_from_slice(&body);
            respond(out, 200, "text/plain", &text);
        }
    }
}
