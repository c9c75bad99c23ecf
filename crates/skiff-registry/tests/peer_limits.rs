//! Peers that lie about size or pace: a registry or token server sending a body far larger than
//! any genuine answer, or trickling one. Each ends quickly in an error naming the peer, having
//! read at most the limit; a slow registry that keeps its pace is still served.

mod common;

use common::faulty::{Faulty, Reply, Request};
use common::images::desc;
use serde_json::json;
use skiff_registry::{
    DirStore, PullRequest, PushFormat, PushRequest, Registry, RegistryConfig, StallRule,
};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// 200 MiB: far more than any limit, streamed by the fake, never held by it.
const HUGE: u64 = 200 << 20;

/// Bytes the fake may have pushed into the socket buffers after the client stopped reading
/// (loopback buffers grow to a few MiB each way): well under [`HUGE`].
const SOCKET_SLACK: u64 = 64 << 20;

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// A quick stall rule, so that a test ends within seconds.
fn quick() -> StallRule {
    StallRule {
        no_data: Duration::from_secs(3),
        min_bytes: 1024,
        window: Duration::from_secs(2),
    }
}

fn client(stall: StallRule) -> Registry {
    Registry::new(RegistryConfig {
        backoff: Duration::from_millis(10),
        retries: 2,
        stall,
        ..Default::default()
    })
}

/// Pull `addr/x/y:1`; the error's text, or "unexpected success".
async fn pull(reg: &Registry, addr: &str) -> (tempfile::TempDir, DirStore, String) {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::new(dir.path());
    let err = reg
        .pull(PullRequest {
            reference: &format!("{addr}/x/y:1"),
            store: &store,
            component: None,
            policy: None,
        })
        .await
        .map(|p| format!("unexpected success: {p:?}"))
        .unwrap_or_else(|e| e.to_string());
    (dir, store, err)
}

/// The process's peak resident memory, for the log (not asserted: the fake shares it).
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("VmHWM: ?")
        .to_string()
}

/// A registry serving one image, with `blob(request)` answering for its layer.
fn serve(layer: Vec<u8>, blob: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Faulty {
    let config = br#"{"architecture":"wasm","os":"wasip1"}"#.to_vec();
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
        "config": desc("application/vnd.wasm.config.v0+json", &config),
        "layers": [desc("application/wasm", &layer)],
    }))
    .unwrap();
    let (cd, ld) = (
        common::sha256(&config).to_string(),
        common::sha256(&layer).to_string(),
    );
    Faulty::start_with(move |r| {
        if r.path == "/v2/" {
            Reply::json(200, "{}")
        } else if r.path.contains("/manifests/") {
            Reply::new(200, MANIFEST_TYPE, m.clone())
        } else if r.path.ends_with(&cd) {
            Reply::new(200, "application/octet-stream", config.clone())
        } else if r.path.ends_with(&ld) {
            blob(r)
        } else {
            Reply::json(404, r#"{"errors":[{"code":"BLOB_UNKNOWN"}]}"#)
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_error_answer_is_cut_to_its_first_kib() {
    let server = Faulty::start(|_, path| {
        if path == "/v2/" {
            return Reply::json(200, "{}");
        }
        Reply {
            fill: HUGE,
            ..Reply::json(400, r#"{"errors":[{"code":"MANIFEST_INVALID","message":""#)
        }
    });
    let (_d, _s, err) = pull(&client(StallRule::default()), &server.addr).await;
    eprintln!("{}", peak_rss());
    assert!(
        err.contains("HTTP 400") && err.contains("MANIFEST_INVALID"),
        "{err}"
    );
    assert!(err.len() < 4096, "the message holds a snippet: {err}");
    let sent = server.body_bytes_sent.load(Ordering::SeqCst);
    assert!(sent < SOCKET_SLACK, "the client read on: {sent} bytes sent");
}

/// A registry that sends 401 pointing at `token`'s address as its token server.
fn behind(token: &Faulty) -> Faulty {
    let realm = format!(
        "Bearer realm=\"http://{}/token\",service=\"fake\"",
        token.addr
    );
    Faulty::start(move |_, _| Reply {
        headers: vec![("WWW-Authenticate".into(), realm.clone())],
        ..Reply::json(401, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_token_answer_is_refused() {
    let token = Faulty::start(|_, _| Reply {
        fill: HUGE,
        no_length: true,
        ..Reply::json(200, r#"{"token":""#)
    });
    let registry = behind(&token);
    let (_d, _s, err) = pull(&client(StallRule::default()), &registry.addr).await;
    eprintln!("{}", peak_rss());
    assert!(
        err.contains(&format!(
            "the token from the token server of {}",
            registry.addr
        )) && err.contains("(/token) is larger than 1048576 bytes"),
        "{err}"
    );
    let sent = token.body_bytes_sent.load(Ordering::SeqCst);
    assert!(sent < SOCKET_SLACK, "the client read on: {sent} bytes sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_token_error_is_cut() {
    let token = Faulty::start(|_, _| Reply {
        fill: HUGE,
        ..Reply::json(400, r#"{"error":"invalid_request","detail":""#)
    });
    let registry = behind(&token);
    let (_d, _s, err) = pull(&client(StallRule::default()), &registry.addr).await;
    assert!(err.contains("the token server answered HTTP 400"), "{err}");
    let sent = token.body_bytes_sent.load(Ordering::SeqCst);
    assert!(sent < SOCKET_SLACK, "the client read on: {sent} bytes sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_over_the_limit_is_refused_declared_or_not() {
    for no_length in [false, true] {
        let server = Faulty::start(move |_, path| {
            if path == "/v2/" {
                return Reply::json(200, "{}");
            }
            Reply {
                fill: HUGE,
                no_length,
                ..Reply::new(200, MANIFEST_TYPE, "{")
            }
        });
        let (_d, store, err) = pull(&client(StallRule::default()), &server.addr).await;
        assert!(
            err.contains(&format!(
                "the manifest of x/y:1 from registry {} (/v2/x/y/manifests/1) is larger than \
                 4194304 bytes",
                server.addr
            )),
            "{err}"
        );
        assert!(store.digests().is_empty());
        let sent = server.body_bytes_sent.load(Ordering::SeqCst);
        assert!(sent < SOCKET_SLACK, "the client read on: {sent} bytes sent");
    }
}

/// The limit is the limit: a manifest of exactly 4 MiB (padded with whitespace) pulls, announced
/// or not.
#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_of_exactly_the_limit_pulls() {
    let layer = b"\0asm\x01\0\0\0".to_vec();
    let config = br#"{"architecture":"wasm","os":"wasip1"}"#.to_vec();
    let mut m = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
        "config": desc("application/vnd.wasm.config.v0+json", &config),
        "layers": [desc("application/wasm", &layer)],
    }))
    .unwrap();
    m.resize(4 << 20, b' ');
    for no_length in [false, true] {
        let (m, config, layer) = (m.clone(), config.clone(), layer.clone());
        let (cd, ld) = (
            common::sha256(&config).to_string(),
            common::sha256(&layer).to_string(),
        );
        let server = Faulty::start(move |_, path| {
            if path == "/v2/" {
                Reply::json(200, "{}")
            } else if path.contains("/manifests/") {
                Reply {
                    no_length,
                    ..Reply::new(200, MANIFEST_TYPE, m.clone())
                }
            } else if path.ends_with(&cd) {
                Reply::new(200, "application/octet-stream", config.clone())
            } else if path.ends_with(&ld) {
                Reply::new(200, "application/octet-stream", layer.clone())
            } else {
                Reply::json(404, "{}")
            }
        });
        let (_d, _s, err) = pull(&client(StallRule::default()), &server.addr).await;
        assert!(err.starts_with("unexpected success"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_trickled_a_byte_a_second_fails() {
    let server = Faulty::start(|_, path| {
        if path == "/v2/" {
            return Reply::json(200, "{}");
        }
        Reply {
            trickle: Some(Duration::from_secs(1)),
            ..Reply::new(200, MANIFEST_TYPE, vec![b' '; 4096])
        }
    });
    let (_d, _s, err) = pull(&client(quick()), &server.addr).await;
    assert!(
        err.starts_with(&format!("registry {} sent only ", server.addr))
            && err.contains("bytes in 2 s (skiff needs at least 1024 bytes per 2 s) while receiving the manifest of x/y:1")
            && err.ends_with("check the network or try again"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blob_trickled_a_byte_a_second_fails_after_its_retries() {
    let layer = vec![3u8; 64 << 10];
    let l2 = layer.clone();
    let server = serve(layer.clone(), move |_| Reply {
        trickle: Some(Duration::from_secs(1)),
        ..Reply::new(200, "application/octet-stream", l2.clone())
    });
    let (_d, store, err) = pull(&client(quick()), &server.addr).await;
    let digest = common::sha256(&layer);
    assert!(
        err.contains(&format!("registry {} sent only ", server.addr))
            && err.contains(&format!("while receiving blob {digest}"))
            && err.contains("gave up after 2 attempts"),
        "{err}"
    );
    assert!(!store.digests().contains(&digest));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_that_never_answers_is_named() {
    let server = Faulty::start(|_, path| {
        if path == "/v2/" {
            return Reply::json(200, "{}");
        }
        Reply {
            silent: true,
            ..Reply::json(200, "")
        }
    });
    let (_d, _s, err) = pull(&client(quick()), &server.addr).await;
    assert!(
        err.contains(&format!(
            "registry {} sent no answer to GET /v2/x/y/manifests/1 for 3 s",
            server.addr
        )),
        "{err}"
    );
}

/// A blob that stops mid-way is continued from where it stopped (`Range`), not started over.
#[tokio::test(flavor = "multi_thread")]
async fn a_blob_that_goes_silent_continues_where_it_stopped() {
    let layer: Vec<u8> = (0..64u32 << 10).map(|i| (i % 251) as u8).collect();
    let l2 = layer.clone();
    let half = layer.len() / 2;
    let server = serve(layer.clone(), move |r| match r.header("range") {
        None => Reply {
            stall_at: Some(half),
            ..Reply::new(200, "application/octet-stream", l2.clone())
        },
        Some(range) => {
            let from: usize = range
                .trim_start_matches("bytes=")
                .trim_end_matches('-')
                .parse()
                .unwrap();
            let end = l2.len() - 1;
            Reply {
                headers: vec![(
                    "Content-Range".into(),
                    format!("bytes {from}-{end}/{}", l2.len()),
                )],
                ..Reply::new(206, "application/octet-stream", l2[from..].to_vec())
            }
        }
    });
    let (_d, store, err) = pull(&client(quick()), &server.addr).await;
    assert!(err.starts_with("unexpected success"), "{err}");
    assert!(store.digests().contains(&common::sha256(&layer)));
    let ranges: Vec<String> = server
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter_map(|r| r.header("range").map(str::to_string))
        .collect();
    assert_eq!(ranges, [format!("bytes={half}-")]);
}

/// Slow is not stalled: a blob sent in pieces, each well within the rule, arrives.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_registry_that_keeps_its_pace_is_served() {
    let layer = vec![5u8; 8 << 10];
    let l2 = layer.clone();
    // 8 KiB at 1 KiB every 250 ms: 4 KiB/s against a rule of 1 KiB per 2 s.
    let server = serve(layer.clone(), move |_| Reply {
        trickle: Some(Duration::from_micros(250_000 / 1024)),
        ..Reply::new(200, "application/octet-stream", l2.clone())
    });
    let (_d, store, err) = pull(&client(quick()), &server.addr).await;
    assert!(err.starts_with("unexpected success"), "{err}");
    assert!(store.digests().contains(&common::sha256(&layer)));
}

/// A registry that stops taking an upload's bytes: the push fails naming it, instead of
/// waiting forever for the socket to drain.
#[tokio::test(flavor = "multi_thread")]
async fn a_registry_that_stops_taking_an_upload_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::new(dir.path());
    // Larger than what the socket buffers absorb on loopback (a few MiB).
    let wasm = vec![1u8; 16 << 20];
    let manifest = common::images::cncf(&store, &wasm);
    let layer = common::sha256(&wasm);
    // The upload's URL carries the digest percent-encoded (`sha256%3A…`): match the hex.
    let hex = layer.hex().to_string();
    let server = Faulty::start(move |method, path| match method {
        "GET" if path == "/v2/" => Reply::json(200, "{}"),
        "HEAD" => Reply::json(404, ""),
        "POST" => Reply {
            headers: vec![("Location".into(), "/v2/x/y/blobs/uploads/1".into())],
            ..Reply::json(202, "")
        },
        "PUT" if path.contains(&hex) => Reply {
            silent: true,
            ..Reply::json(201, "")
        },
        _ => Reply::json(201, ""),
    });
    let err = client(quick())
        .push(PushRequest {
            reference: &format!("{}/x/y:1", server.addr),
            manifest: manifest.into(),
            store: &store,
            format: PushFormat::Cncf,
        })
        .await
        .map(|p| format!("unexpected success: {p:?}"))
        .unwrap_or_else(|e| e.to_string());
    assert!(
        err.contains(&format!("registry {} took no data for ", server.addr))
            && err.contains(&format!("during the upload of blob {layer}"))
            && err.contains("gave up after 2 attempts"),
        "{err}"
    );
}

/// Blobs read whole into memory (a config; a layer to normalise) are refused on the size the
/// manifest declares, before a byte of them is asked for.
#[tokio::test(flavor = "multi_thread")]
async fn a_config_or_layer_declared_too_large_is_not_downloaded() {
    let config = br#"{"architecture":"wasm","os":"wasip2"}"#.to_vec();
    let wasm = b"\0asm\x01\0\0\0".to_vec();
    let sized = |mt: &str, b: &[u8], size: u64| {
        let mut d = desc(mt, b);
        d["size"] = json!(size);
        d
    };
    let cases = [
        (
            sized(
                "application/vnd.wasm.config.v0+json",
                &config,
                (4 << 20) + 1,
            ),
            desc("application/wasm", &wasm),
            "the image config",
            "4194304",
        ),
        (
            desc("application/vnd.oci.image.config.v1+json", &config),
            sized(
                "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
                &wasm,
                (512 << 20) + 1,
            ),
            "the wasm layer",
            "536870912",
        ),
    ];
    for (config_desc, layer_desc, what, limit) in cases {
        let m = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
            "config": config_desc, "layers": [layer_desc],
        }))
        .unwrap();
        let server = Faulty::start(move |_, path| {
            if path == "/v2/" {
                Reply::json(200, "{}")
            } else if path.contains("/manifests/") {
                Reply::new(200, MANIFEST_TYPE, m.clone())
            } else {
                Reply {
                    fill: HUGE,
                    ..Reply::new(200, "application/octet-stream", "")
                }
            }
        });
        let (_d, store, err) = pull(&client(StallRule::default()), &server.addr).await;
        assert!(
            err.contains(what) && err.contains(&format!("is larger than {limit} bytes")),
            "{err}"
        );
        let asked: Vec<String> = server
            .seen
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.path.clone())
            .collect();
        assert!(!asked.iter().any(|p| p.contains("/blobs/")), "{asked:?}");
        assert!(store.digests().is_empty());
    }
}
