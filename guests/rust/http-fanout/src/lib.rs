//! `http-fanout`: a wasi:http handler that sends many outbound requests at once, for the tests
//! of skiff's outbound caps. See ../../README.md.
//!
//! `/?url=http://HOST:PORT/PATH&n=N` starts N POST requests to the URL, and only once all N
//! are started finishes their (empty, chunked) bodies: no request can complete before the last
//! one is started, so all N are in flight together whatever the timing. Then it waits for each
//! and answers 200 `ok=A failed=B first_error=<wasi:http error code or ->`. Any other request:
//! 200 `hello`.
use std::io::Read as _;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingRequest, IncomingResponse, Method, OutgoingBody,
    OutgoingRequest, OutgoingResponse, ResponseOutparam, Scheme,
};

wasip2::http::proxy::export!(Handler);

struct Handler;

impl wasip2::exports::http::incoming_handler::Guest for Handler {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let pq = request.path_with_query().unwrap_or_default();
        let query = pq.split_once('?').map(|(_, q)| q).unwrap_or("");
        let param = |key: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        };
        let Some(url) = param("url") else {
            return respond(out, 200, b"hello\n");
        };
        let n: u32 = param("n").and_then(|n| n.parse().ok()).unwrap_or(1);
        let Some(rest) = url.strip_prefix("http://") else {
            return respond(out, 400, b"url must start with http://\n");
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        // Start every request first; their bodies are finished only after the last one.
        let mut pending = Vec::new();
        let mut bodies = Vec::new();
        for _ in 0..n {
            let req = OutgoingRequest::new(Fields::new());
            let _ = req.set_method(&Method::Post);
            let _ = req.set_scheme(Some(&Scheme::Http));
            let _ = req.set_authority(Some(authority));
            let _ = req.set_path_with_query(Some(path));
            bodies.push(req.body().expect("outgoing request body"));
            pending.push(outgoing_handler::handle(req, None));
        }
        for body in bodies {
            let _ = OutgoingBody::finish(body, None);
        }
        let mut responses: Vec<IncomingResponse> = Vec::new();
        let mut failed = 0u32;
        let mut first_error: Option<ErrorCode> = None;
        for p in pending {
            let result = p.and_then(|fut| loop {
                match fut.get() {
                    None => fut.subscribe().block(),
                    Some(Err(())) => panic!("outgoing response already taken"),
                    Some(Ok(r)) => break r,
                }
            });
            match result {
                Ok(resp) => responses.push(resp),
                Err(code) => {
                    failed += 1;
                    first_error.get_or_insert(code);
                }
            }
        }
        let ok = responses.len();
        for resp in responses {
            if let Ok(b) = resp.consume() {
                if let Ok(mut s) = b.stream() {
                    let _ = s.read_to_end(&mut Vec::new());
                }
                let _ = IncomingBody::finish(b);
            }
        }
        let first = first_error.map_or("-".to_string(), |c| format!("{c:?}"));
        let text = format!("ok={ok} failed={failed} first_error={first}\n");
        respond(out, 200, text.as_bytes());
    }
}

fn respond(out: ResponseOutparam, status: u16, body: &[u8]) {
    let headers = Fields::new();
    let _ = headers.append("content-type", b"text/plain");
    let resp = OutgoingResponse::new(headers);
    let _ = resp.set_status_code(status);
    let ob = resp.body().expect("outgoing body");
    ResponseOutparam::set(out, Ok(resp));
    {
        let w = ob.write().expect("output stream");
        w.blocking_write_and_flush(body).expect("write body");
    }
    OutgoingBody::finish(ob, None).expect("finish body");
}
