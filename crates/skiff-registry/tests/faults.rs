//! Faults a real registry will not produce, from a loopback server that misbehaves on purpose.
//! Each ends in a clear error, and the store is left untouched.

mod common;

use common::faulty::{Faulty, Reply};
use common::images::desc;
use serde_json::json;
use skiff_registry::{DirStore, PullRequest, Registry, RegistryConfig};
use std::sync::atomic::Ordering;
use std::time::Duration;

fn manifest_for(layer: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let config = br#"{"architecture":"wasm","os":"wasip1"}"#.to_vec();
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": desc("application/vnd.wasm.config.v0+json", &config),
        "layers": [desc("application/wasm", layer)],
    }))
    .unwrap();
    (m, config)
}

/// A registry serving one image, with `blob` answering for the layer.
fn serve(layer: Vec<u8>, blob: impl Fn() -> Reply + Send + Sync + 'static) -> Faulty {
    let (m, config) = manifest_for(&layer);
    let (cd, ld) = (
        common::sha256(&config).to_string(),
        common::sha256(&layer).to_string(),
    );
    Faulty::start(move |_method, path| {
        if path == "/v2/" {
            Reply::json(200, "{}")
        } else if path.contains("/manifests/") {
            Reply::new(200, "application/vnd.oci.image.manifest.v1+json", m.clone())
        } else if path.ends_with(&cd) {
            Reply::new(200, "application/octet-stream", config.clone())
        } else if path.ends_with(&ld) {
            blob()
        } else {
            Reply::json(
                404,
                r#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}"#,
            )
        }
    })
}

async fn pull(addr: &str) -> (tempfile::TempDir, DirStore, String) {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::new(dir.path());
    let reg = Registry::new(RegistryConfig {
        backoff: Duration::from_millis(10),
        ..Default::default()
    });
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

/// Only the config (fetched first and valid) may be in the store; never the bad layer.
fn assert_no_layer(store: &DirStore, layer: &[u8]) {
    let bad = common::sha256(layer);
    assert!(!store.digests().contains(&bad), "{:?}", store.digests());
    let partials = std::fs::read_dir(store.root().join("blobs/sha256"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(partials, 0, "a partial file was left behind");
}

#[tokio::test(flavor = "multi_thread")]
async fn content_that_does_not_match_its_digest_is_refused() {
    let layer = b"\0asm\x01\0\0\0 the real bytes".to_vec();
    let evil: Vec<u8> = layer.iter().map(|b| b ^ 1).collect();
    let server = serve(layer.clone(), move || {
        Reply::new(200, "application/octet-stream", evil.clone())
    });
    let (_d, store, err) = pull(&server.addr).await;
    assert!(err.contains("digest mismatch"), "{err}");
    assert_no_layer(&store, &layer);
}

#[tokio::test(flavor = "multi_thread")]
async fn skiff_homes_store_refuses_wrong_content_too() {
    // The store under SKIFF_HOME checks the digest as it commits (the client then does not hash
    // a second time): the same refusal, the same message, nothing stored.
    let layer = b"\0asm\x01\0\0\0 the real bytes".to_vec();
    let evil: Vec<u8> = layer.iter().map(|b| b ^ 1).collect();
    let evil_digest = common::sha256(&evil);
    let server = serve(layer.clone(), move || {
        Reply::new(200, "application/octet-stream", evil.clone())
    });
    let dir = tempfile::tempdir().unwrap();
    let store = skiff_store::Store::open(skiff_store::StoreConfig {
        root: dir.path().to_path_buf(),
        max_blob_size: skiff_store::StoreConfig::DEFAULT_MAX_BLOB_SIZE,
    })
    .unwrap();
    let err = Registry::new(RegistryConfig::default())
        .pull(PullRequest {
            reference: &format!("{}/x/y:1", server.addr),
            store: &store,
            component: None,
            policy: None,
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("digest mismatch"), "{err}");
    assert!(
        err.contains(&evil_digest.to_string()),
        "names what came: {err}"
    );
    let d = common::sha256(&layer);
    assert!(!store.has_blob(&d));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_dropped_mid_blob_is_retried_then_reported() {
    let layer = vec![7u8; 256 << 10];
    let l2 = layer.clone();
    let server = serve(layer.clone(), move || Reply {
        cut_at: Some(1000),
        ..Reply::new(200, "application/octet-stream", l2.clone())
    });
    let before = server.requests.load(Ordering::SeqCst);
    let (_d, store, err) = pull(&server.addr).await;
    assert!(
        err.contains("gave up after 4 attempts") && err.contains("connection"),
        "{err}"
    );
    // /v2/, manifest, config, then 4 attempts at the layer.
    assert!(server.requests.load(Ordering::SeqCst) - before >= 7);
    assert_no_layer(&store, &layer);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drop_that_heals_is_invisible() {
    let layer = vec![9u8; 64 << 10];
    let l2 = layer.clone();
    let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let server = serve(layer.clone(), move || {
        let cut = (n.fetch_add(1, Ordering::SeqCst) == 0).then_some(100);
        Reply {
            cut_at: cut,
            ..Reply::new(200, "application/octet-stream", l2.clone())
        }
    });
    let (_d, store, err) = pull(&server.addr).await;
    assert!(err.starts_with("unexpected success"), "{err}");
    assert!(store.digests().contains(&common::sha256(&layer)));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_html_answer_is_named() {
    let server = Faulty::start(|_, _| {
        Reply::new(
            200,
            "text/html",
            "<!DOCTYPE html><html><body>Sign in</body></html>",
        )
    });
    let (_d, store, err) = pull(&server.addr).await;
    assert!(err.contains("HTML page, not the registry API"), "{err}");
    assert!(store.digests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_over_4_mib_is_refused() {
    let huge = vec![b' '; (4 << 20) + 1];
    let server = Faulty::start(move |_, path| {
        if path == "/v2/" {
            Reply::json(200, "{}")
        } else {
            Reply::new(
                200,
                "application/vnd.oci.image.manifest.v1+json",
                huge.clone(),
            )
        }
    });
    let (_d, store, err) = pull(&server.addr).await;
    assert!(
        err.contains("manifest") && err.contains("larger than 4194304 bytes"),
        "{err}"
    );
    assert!(store.digests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_are_retried_then_reported() {
    let server = Faulty::start(|_, _| {
        Reply::json(
            503,
            r#"{"errors":[{"code":"UNAVAILABLE","message":"down for maintenance"}]}"#,
        )
    });
    let (_d, _s, err) = pull(&server.addr).await;
    assert!(
        err.contains("503") && err.contains("down for maintenance"),
        "{err}"
    );
    assert_eq!(server.requests.load(Ordering::SeqCst), 4);
}
