//! The instance pool is shared by every app of an engine (the daemon serves any number of apps
//! from one pool of fixed size): a request that finds every slot busy waits for one, within its
//! app's queue timeout, instead of failing to instantiate; past the timeout it gets 503.

use bytes::Bytes;
use http_body::Frame;
use skiff_engine::http::{HandleError, HttpApp, HttpAppConfig, HttpLimits, RequestId, Scheme};
use skiff_engine::{AllocatorChoice, Engine, EngineConfig, Sandbox};
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// A request body that arrives when the test sends it, and ends when the sender is dropped.
struct Held(mpsc::Receiver<Bytes>);

impl http_body::Body for Held {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

fn app(engine: &Engine, program: &skiff_engine::Program, name: &str, queue: Duration) -> HttpApp {
    HttpApp::new(
        engine,
        program,
        HttpAppConfig {
            name: name.into(),
            sandbox: Sandbox::default(),
            limits: HttpLimits {
                queue_timeout: queue,
                ..HttpLimits::default()
            },
        },
    )
    .expect("an HTTP app")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waits_for_a_pool_slot_and_gets_503_only_past_its_queue_timeout() {
    // One slot for two apps, each allowed 100 instances: only the pool can make them wait.
    let engine = Engine::new(&EngineConfig {
        allocator: AllocatorChoice::Pooling {
            max_instances: 1,
            max_memory: HttpLimits::DEFAULT_MEMORY,
        },
        ..EngineConfig::default()
    })
    .expect("engine");
    assert!(
        engine.is_pooling(),
        "this machine cannot reserve a pool of one slot"
    );
    let wasm = format!(
        "{}/../../guests/wasm/http-hello.wasm",
        std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")
    );
    let program = engine
        .load(&std::fs::read(wasm).expect("guests/build.sh built http-hello.wasm"))
        .expect("http-hello loads");
    let holder = std::sync::Arc::new(app(&engine, &program, "holder", Duration::from_secs(1)));
    let patient = app(&engine, &program, "patient", Duration::from_secs(60));
    let hasty = app(&engine, &program, "hasty", Duration::from_millis(50));

    // /echo answers once the body has ended: until then its instance holds the only slot.
    let (body, rx) = mpsc::channel(1);
    let held = {
        let holder = holder.clone();
        tokio::spawn(async move {
            let req = http::Request::post("http://app/echo")
                .body(Held(rx))
                .expect("a request");
            holder.handle(req, RequestId(1), Scheme::Http).await
        })
    };
    body.send(Bytes::from_static(b"held ")).await.unwrap();
    while holder.stats().live.load(Relaxed) == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    // Past its queue timeout with the slot still taken: 503, counted as the pool's doing.
    let get = || http::Request::get("http://app/").body(http_body_util::Empty::<Bytes>::new());
    let refused = hasty
        .handle(get().unwrap(), RequestId(2), Scheme::Http)
        .await;
    assert!(
        matches!(refused, Err(HandleError::PoolFull { .. })),
        "{:?}",
        refused.map(|r| r.status())
    );
    assert_eq!(refused.unwrap_err().status(), 503);
    assert_eq!(hasty.stats().pool_full.load(Relaxed), 1);

    // Within its queue timeout, a request waits for the slot rather than failing...
    let waiting = tokio::spawn(async move {
        let resp = patient
            .handle(get().unwrap(), RequestId(3), Scheme::Http)
            .await;
        (resp.map(|r| r.status()), patient)
    });
    // (Given time to fail: without the wait it would try to instantiate at once, and fail.)
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "it did not wait for the slot");
    // ...and gets it when the holder's instance ends.
    drop(body);
    let echoed = held.await.unwrap().expect("the holder's answer");
    assert_eq!(echoed.status(), 200);
    let (status, patient) = waiting.await.unwrap();
    assert_eq!(status.expect("served once the slot was free"), 200);
    assert_eq!(patient.stats().pool_full.load(Relaxed), 0);
    assert_eq!(patient.stats().overloaded.load(Relaxed), 0);
}
