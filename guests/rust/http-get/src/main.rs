//! `http-get URL`: a command (wasi:cli/run) that sends one GET through wasi:http and prints the
//! response's status and body, for the tests of `skiff run`'s outbound allow-list. See
//! ../../README.md.
//!
//! Exit 0 with `status N` then the body on stdout; exit 1 with `error: CODE` on stderr when the
//! host refuses or fails the request (`HttpRequestDenied` when it is not allowed), or with a
//! usage line for a URL it cannot use. (A WASI 0.2 command's exit is success or failure only.)
use std::io::{Read as _, Write as _};
use std::process::ExitCode;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, IncomingBody, OutgoingBody, OutgoingRequest, Scheme};

fn main() -> ExitCode {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: http-get http://HOST[:PORT]/PATH");
        return ExitCode::FAILURE;
    };
    let Some(rest) = url.strip_prefix("http://") else {
        eprintln!("http-get: only http:// URLs");
        return ExitCode::FAILURE;
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let req = OutgoingRequest::new(Fields::new());
    let _ = req.set_scheme(Some(&Scheme::Http));
    let _ = req.set_authority(Some(authority));
    let _ = req.set_path_with_query(Some(path));
    let body = req.body().expect("outgoing request body");
    let response = outgoing_handler::handle(req, None).and_then(|fut| {
        let _ = OutgoingBody::finish(body, None);
        loop {
            match fut.get() {
                None => fut.subscribe().block(),
                Some(Err(())) => panic!("outgoing response already taken"),
                Some(Ok(r)) => break r,
            }
        }
    });
    let resp = match response {
        Ok(resp) => resp,
        Err(code) => {
            eprintln!("error: {code:?}");
            return ExitCode::FAILURE;
        }
    };
    println!("status {}", resp.status());
    let mut text = Vec::new();
    if let Ok(b) = resp.consume() {
        if let Ok(mut s) = b.stream() {
            let _ = s.read_to_end(&mut text);
        }
        let _ = IncomingBody::finish(b);
    }
    let _ = std::io::stdout().write_all(&text);
    ExitCode::SUCCESS
}
