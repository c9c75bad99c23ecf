//! `http-counter`: a wasi:http handler that shows how long its instance lived. See ../../README.md.
//!
//! Every answer is `instance=<id> count=<n> overlap=<0|1>`: `id` is drawn at random by the
//! instance's first request, `count` counts the requests this instance has served (this one
//! included), `overlap` is 1 if another request was inside this instance when this one began.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wasip2::http::proxy::export!(Handler);

struct Handler;

static COUNT: AtomicU64 = AtomicU64::new(0);
static ID: AtomicU64 = AtomicU64::new(0);
static BUSY: AtomicBool = AtomicBool::new(false);

impl wasip2::exports::http::incoming_handler::Guest for Handler {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let overlap = BUSY.swap(true, Ordering::SeqCst);
        if ID.load(Ordering::SeqCst) == 0 {
            ID.store(wasip2::random::random::get_random_u64() | 1, Ordering::SeqCst);
        }
        let pq = request.path_with_query().unwrap_or_else(|| "/".to_string());
        let (path, query) = pq.split_once('?').unwrap_or((pq.as_str(), ""));
        let number = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("n="))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        match path {
            // Hold the instance for n milliseconds (a wait in a host call, not CPU).
            "/sleep" => wasip2::clocks::monotonic_clock::subscribe_duration(number * 1_000_000).block(),
            // The guest's own state, corrupted on purpose: later requests of this instance see it.
            "/set" => COUNT.store(number, Ordering::SeqCst),
            "/trap" => panic!("http-counter: /trap requested"),
            "/loop" => loop {
                std::hint::black_box(&COUNT);
            },
            // Return without answering and without dropping the response-outparam: a guest
            // that leaks what the host waits on.
            "/forget" => {
                BUSY.store(false, Ordering::SeqCst);
                std::mem::forget(response_out);
                return;
            }
            // Answer, then leak the body unfinished.
            "/forget-body" => {
                BUSY.store(false, Ordering::SeqCst);
                let resp = OutgoingResponse::new(Fields::new());
                let ob = resp.body().expect("outgoing body");
                ResponseOutparam::set(response_out, Ok(resp));
                std::mem::forget(ob);
                return;
            }
            "/hog" => loop {
                let old = core::arch::wasm32::memory_grow(0, 16);
                if old == usize::MAX {
                    break;
                }
                unsafe { core::ptr::write_volatile((old * 65536) as *mut u8, 1) };
            },
            _ => {}
        }
        let count = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
        let body = format!(
            "instance={:016x} count={count} overlap={}\n",
            ID.load(Ordering::SeqCst),
            u8::from(overlap)
        );
        BUSY.store(false, Ordering::SeqCst);
        respond(response_out, body.as_bytes());
    }
}

fn respond(out: ResponseOutparam, body: &[u8]) {
    let headers = Fields::new();
    let _ = headers.append("content-type", b"text/plain");
    let _ = headers.append("content-length", body.len().to_string().as_bytes());
    let resp = OutgoingResponse::new(headers);
    let ob = resp.body().expect("outgoing body");
    ResponseOutparam::set(out, Ok(resp));
    {
        let w = ob.write().expect("output stream");
        w.blocking_write_and_flush(body).expect("write body");
    }
    OutgoingBody::finish(ob, None).expect("finish body");
}
