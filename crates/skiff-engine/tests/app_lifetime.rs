//! A response outlives the app that made it: the daemon drops an app's old version when a
//! redeploy swaps in the new one, and requests that picked the old version must finish on it.

use http_body_util::{BodyExt, Full};
use skiff_engine::http::{HttpApp, HttpAppConfig, HttpLimits, RequestId, Scheme};
use skiff_engine::{Engine, EngineConfig, Sandbox};

/// The hello handler as an app named `name`, on an engine of its own.
fn hello(name: &str, limits: HttpLimits) -> HttpApp {
    let engine = Engine::new(&EngineConfig::default()).expect("engine");
    let wasm = format!(
        "{}/../../guests/wasm/http-hello.wasm",
        std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")
    );
    let program = engine
        .load(&std::fs::read(wasm).expect("guests/build.sh built http-hello.wasm"))
        .expect("http-hello loads");
    HttpApp::new(
        &engine,
        &program,
        HttpAppConfig {
            name: name.into(),
            sandbox: Sandbox::default(),
            limits,
        },
    )
    .expect("an HTTP app")
}

/// The response to a POST /echo of `len` bytes, whose body the guest is still writing: /echo
/// sets the response first and writes the body after.
async fn echo(app: &HttpApp, len: usize) -> http::Response<skiff_engine::http::ResponseBody> {
    let req = http::Request::post("http://app/echo")
        .body(Full::new(bytes::Bytes::from(vec![b'x'; len])))
        .expect("a request");
    let resp = app
        .handle(req, RequestId(1), Scheme::Http)
        .await
        .expect("a response");
    assert_eq!(resp.status(), 200);
    resp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_still_streaming_when_its_app_is_dropped_arrives_whole() {
    let app = hello("old-version", HttpLimits::default());
    // 8 MiB take the guest long enough that the app is gone while it writes.
    let resp = echo(&app, 8 << 20).await;
    drop(app);
    let got = resp
        .into_body()
        .collect()
        .await
        .expect("the body is not cut when its app is dropped")
        .to_bytes();
    assert_eq!(got.len(), 8 << 20, "the whole body arrives");
}

/// A client that goes away mid-response must not keep the app's instance: the guest, still
/// writing, is left to end on its own (its writes fail, it traps), and its place is free again.
/// With one place and a long queue, a second request is served only if that happens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_dropped_unread_frees_its_instance() {
    let limits = HttpLimits {
        max_concurrent: 1,
        queue_timeout: std::time::Duration::from_secs(60),
        ..HttpLimits::default()
    };
    let app = hello("gone-client", limits);
    drop(echo(&app, 8 << 20).await);
    let req = http::Request::get("http://app/")
        .body(Full::new(bytes::Bytes::new()))
        .expect("a request");
    let resp = app
        .handle(req, RequestId(2), Scheme::Http)
        .await
        .expect("the only place is free again once the first guest has ended");
    let body = resp.into_body().collect().await.expect("a body").to_bytes();
    assert_eq!(&body[..], b"hello from skiff\n");
}
