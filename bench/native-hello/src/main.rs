//! `native-hello ADDR`: answers every request with `hello from skiff\n`, as http-hello does,
//! with the same server stack skiff uses (hyper 1 + hyper-util auto, multi-thread tokio).
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;

#[tokio::main]
async fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8081".into());
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    println!("listening on http://{}", listener.local_addr().unwrap());
    loop {
        let (tcp, _) = listener.accept().await.expect("accept");
        let _ = tcp.set_nodelay(true);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(|_req: Request<hyper::body::Incoming>| async {
                let mut r = Response::new(Full::new(Bytes::from_static(b"hello from skiff\n")));
                r.headers_mut()
                    .insert("content-type", "text/plain".parse().unwrap());
                Ok::<_, Infallible>(r)
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}
