//! A response outlives the app that made it: the daemon drops an app's old version when a
//! redeploy swaps in the new one, and requests that picked the old version must finish on it.

use http_body_util::{BodyExt, Full};
use skiff_engine::http::{HttpApp, HttpAppConfig, HttpLimits, RequestId, Scheme};
use skiff_engine::{Engine, EngineConfig, Sandbox};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_still_streaming_when_its_app_is_dropped_arrives_whole() {
    let engine = Engine::new(&EngineConfig::default()).expect("engine");
    let wasm = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../guests/wasm/http-hello.wasm"
    );
    let program = engine
        .load(&std::fs::read(wasm).expect("guests/build.sh built http-hello.wasm"))
        .expect("http-hello loads");
    let app = HttpApp::new(
        &engine,
        &program,
        HttpAppConfig {
            name: "old-version".into(),
            sandbox: Sandbox::default(),
            limits: HttpLimits::default(),
        },
    )
    .expect("an HTTP app");
    // /echo sets the response first and writes the body after: 8 MiB take the guest long
    // enough that the app is gone while it writes.
    let sent = bytes::Bytes::from(vec![b'x'; 8 << 20]);
    let req = http::Request::post("http://app/echo")
        .body(Full::new(sent.clone()))
        .expect("a request");
    let resp = app
        .handle(req, RequestId(1), Scheme::Http)
        .await
        .expect("a response");
    assert_eq!(resp.status(), 200);
    drop(app);
    let got = resp
        .into_body()
        .collect()
        .await
        .expect("the body is not cut when its app is dropped")
        .to_bytes();
    assert_eq!(got.len(), sent.len(), "the whole body arrives");
}
