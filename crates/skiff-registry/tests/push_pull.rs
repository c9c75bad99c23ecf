//! Push and pull against a real registry (Debian's docker-registry), read back by skopeo.

mod common;

use common::images::{cncf, put};
use common::{guest, read_to_vec, Curl, TestRegistry};
use skiff_registry::{
    BlobOutcome, BlobStore, Credentials, DirStore, Layout, PullRequest, PushFormat, PushRequest,
    Registry, RegistryConfig, RegistryError,
};
use skiff_store::Digest;
use std::process::Command;

fn client() -> Registry {
    Registry::new(RegistryConfig::default())
}

fn store() -> (tempfile::TempDir, DirStore) {
    let d = tempfile::tempdir().unwrap();
    let s = DirStore::new(d.path());
    (d, s)
}

async fn push(
    reg: &Registry,
    reference: &str,
    store: &DirStore,
    manifest: &[u8],
    format: PushFormat,
) -> skiff_registry::Pushed {
    try_push(reg, reference, store, manifest, format)
        .await
        .unwrap()
}

/// A push that may fail: the error as the user reads it.
async fn try_push(
    reg: &Registry,
    reference: &str,
    store: &dyn BlobStore,
    manifest: &[u8],
    format: PushFormat,
) -> Result<skiff_registry::Pushed, String> {
    reg.push(PushRequest {
        reference,
        manifest: manifest.to_vec().into(),
        store,
        format,
    })
    .await
    .map_err(|e| e.to_string())
}

async fn pull(
    reg: &Registry,
    reference: &str,
    store: &DirStore,
) -> Result<skiff_registry::Pulled, RegistryError> {
    reg.pull(PullRequest {
        reference,
        store,
        component: None,
        policy: None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn what_skiff_pushes_skopeo_reads_byte_identical_and_a_repull_moves_nothing() {
    let registry = TestRegistry::start();
    let (_d, local) = store();
    let wasm = guest("hello.wasm");
    let manifest = cncf(&local, &wasm);
    let reference = format!("{}/team/hello:1.0", registry.addr);

    let pushed = push(&client(), &reference, &local, &manifest, PushFormat::Cncf).await;
    assert_eq!(pushed.digest, common::sha256(&manifest));
    assert!(pushed
        .blobs
        .iter()
        .all(|(_, o)| *o == BlobOutcome::Transferred));

    // skopeo sees exactly the bytes skiff pushed, and can copy the image out.
    assert_eq!(common::skopeo_raw(&reference), manifest);
    let out = tempfile::tempdir().unwrap();
    common::skopeo_copy_to_layout(&reference, &out.path().join("layout"));
    let hex = common::sha256(&wasm).hex().to_string();
    assert_eq!(
        std::fs::read(out.path().join("layout/blobs/sha256").join(hex)).unwrap(),
        wasm
    );

    // Pull into a fresh store: same manifest bytes, same wasm.
    let (_d2, fresh) = store();
    let pulled = pull(&client(), &reference, &fresh).await.unwrap();
    assert_eq!(pulled.layout, Layout::Cncf);
    assert_eq!(pulled.manifest, manifest);
    assert_eq!(pulled.manifest_digest, pushed.digest);
    assert_eq!(read_to_vec(fresh.open(&pulled.wasm_digest).unwrap()), wasm);
    assert!(pulled.bytes_moved > 0);

    // Re-pull: nothing crosses the network but the manifest.
    let again = pull(&client(), &reference, &fresh).await.unwrap();
    assert_eq!(again.bytes_moved, 0);

    // Re-push: every blob HEADed and skipped.
    let again = push(&client(), &reference, &local, &manifest, PushFormat::Cncf).await;
    assert!(
        again.blobs.iter().all(|(_, o)| *o == BlobOutcome::Present),
        "{:?}",
        again.blobs
    );
    assert_eq!(again.bytes_moved, 0);

    // By digest too.
    let by_digest = format!("{}/team/hello@{}", registry.addr, pushed.digest);
    assert_eq!(
        pull(&client(), &by_digest, &fresh).await.unwrap().manifest,
        manifest
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn large_blobs_go_in_chunks_and_siblings_are_mounted() {
    let registry = TestRegistry::start();
    let (_d, local) = store();
    // 5 MiB + a bit, in 1 MiB chunks: several PATCHes and a closing PUT.
    let blob: Vec<u8> = (0..(5 << 20) + 123).map(|i| (i * 7 % 251) as u8).collect();
    let manifest = cncf(&local, &blob);
    let reg = Registry::new(RegistryConfig {
        chunk_size: 1 << 20,
        ..Default::default()
    });
    let a = format!("{}/team/a:1", registry.addr);
    push(&reg, &a, &local, &manifest, PushFormat::Cncf).await;

    // The store remembers where the blobs live: pushing to a sibling repository mounts them.
    let b = format!("{}/team/b:1", registry.addr);
    let pushed = push(&reg, &b, &local, &manifest, PushFormat::Cncf).await;
    assert!(
        pushed.blobs.iter().all(|(_, o)| *o == BlobOutcome::Mounted),
        "{:?}",
        pushed.blobs
    );
    assert_eq!(pushed.bytes_moved, 0);

    let (_d2, fresh) = store();
    let pulled = pull(&client(), &b, &fresh).await.unwrap();
    assert_eq!(read_to_vec(fresh.open(&pulled.wasm_digest).unwrap()), blob);
}

/// A download whose connection breaks part way continues from where it broke: the retry asks
/// the real registry for the rest (`Range`), and the bytes that crossed add up to one blob.
#[tokio::test(flavor = "multi_thread")]
async fn a_download_cut_mid_blob_resumes_where_it_broke() {
    let registry = TestRegistry::start();
    let (_d, local) = store();
    let blob: Vec<u8> = (0..(4 << 20) + 77).map(|i| (i * 31 % 253) as u8).collect();
    let manifest = cncf(&local, &blob);
    push(
        &client(),
        &format!("{}/team/big:1", registry.addr),
        &local,
        &manifest,
        PushFormat::Cncf,
    )
    .await;

    let proxy = common::cutting_proxy::CuttingProxy::start(&registry.addr, 1 << 20);
    let reg = Registry::new(RegistryConfig {
        backoff: std::time::Duration::from_millis(10),
        ..Default::default()
    });
    let (_d2, fresh) = store();
    let pulled = pull(&reg, &format!("{}/team/big:1", proxy.addr), &fresh)
        .await
        .unwrap();
    assert_eq!(read_to_vec(fresh.open(&pulled.wasm_digest).unwrap()), blob);
    let sent = proxy.sent.lock().unwrap().to_ascii_lowercase();
    assert!(sent.contains("range: bytes="), "no range request:\n{sent}");
    let returned = proxy.returned.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        returned < blob.len() as u64 + (256 << 10),
        "{returned} bytes came back for a {}-byte blob: the download started over",
        blob.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_login_required_wrong_password_and_success() {
    let registry = TestRegistry::with_auth("me", "s3cret");
    let (_d, local) = store();
    let manifest = cncf(&local, &guest("hello.wasm"));
    let reference = format!("{}/team/hello:1.0", registry.addr);

    let err = try_push(&client(), &reference, &local, &manifest, PushFormat::Cncf)
        .await
        .unwrap_err();
    assert!(
        err.contains(&format!("login required for {}", registry.addr)),
        "{err}"
    );

    let with = |secret: &str| {
        Registry::new(RegistryConfig {
            credentials: Some(Credentials::password("me", secret)),
            ..Default::default()
        })
    };
    let err = with("wrong").login(&registry.addr).await.unwrap_err();
    assert!(matches!(err, RegistryError::LoginFailed { .. }), "{err}");
    assert!(
        !err.to_string().contains("wrong"),
        "the secret leaked: {err}"
    );
    assert!(
        with("s3cret")
            .login(&registry.addr)
            .await
            .unwrap()
            .challenged
    );

    push(
        &with("s3cret"),
        &reference,
        &local,
        &manifest,
        PushFormat::Cncf,
    )
    .await;
    let (_d2, fresh) = store();
    let err = pull(&client(), &reference, &fresh)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("login required"), "{err}");
    assert!(fresh.digests().is_empty());
    pull(&with("s3cret"), &reference, &fresh).await.unwrap();

    // curl agrees with what skiff pushed.
    let curl = Curl {
        addr: &registry.addr,
        user: Some(("me", "s3cret")),
    };
    let got = curl.get(
        "/v2/team/hello/manifests/1.0",
        "application/vnd.oci.image.manifest.v1+json",
    );
    assert_eq!(got, manifest);
}

#[tokio::test(flavor = "multi_thread")]
async fn push_format_compat_is_an_ordinary_image_that_pulls_back() {
    let registry = TestRegistry::start();
    let (_d, local) = store();
    let wasm = guest("hello.wasm");
    let manifest = cncf(&local, &wasm);
    let reference = format!("{}/team/hello:compat", registry.addr);
    push(
        &client(),
        &reference,
        &local,
        &manifest,
        PushFormat::Compat { platform: None },
    )
    .await;

    let curl = Curl {
        addr: &registry.addr,
        user: None,
    };
    let m: serde_json::Value = serde_json::from_slice(&curl.get(
        "/v2/team/hello/manifests/compat",
        "application/vnd.oci.image.manifest.v1+json",
    ))
    .unwrap();
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
    let config: serde_json::Value = serde_json::from_slice(&curl.get(
        &format!(
            "/v2/team/hello/blobs/{}",
            m["config"]["digest"].as_str().unwrap()
        ),
        "*/*",
    ))
    .unwrap();
    assert_eq!(
        (config["os"].as_str(), config["architecture"].as_str()),
        (Some("wasi"), Some("wasm"))
    );

    // skopeo (containers/image) copies it like any image.
    let out = tempfile::tempdir().unwrap();
    common::skopeo_copy_to_layout(&reference, &out.path().join("l"));

    let (_d2, fresh) = store();
    let pulled = pull(&client(), &reference, &fresh).await.unwrap();
    assert_eq!(pulled.layout, Layout::Compat);
    assert_eq!(read_to_vec(fresh.open(&pulled.wasm_digest).unwrap()), wasm);
    let _ = put; // shared helper
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_local_blob_is_named_and_not_committed_in_the_registry() {
    let registry = TestRegistry::start();
    for chunk_size in [1 << 20, 64 << 20] {
        let (_d, local) = store();
        let blob: Vec<u8> = (0..(2 << 20) + 5).map(|i| (i * 3 % 253) as u8).collect();
        let manifest = cncf(&local, &blob);
        // Flip one byte of the stored copy: same size, wrong content.
        let digest = common::sha256(&blob);
        let path = local.path(&digest);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[1 << 20] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();

        let reg = Registry::new(RegistryConfig {
            chunk_size,
            ..Default::default()
        });
        let reference = format!("{}/team/c{chunk_size}:1", registry.addr);
        let err = try_push(&reg, &reference, &local, &manifest, PushFormat::Cncf)
            .await
            .unwrap_err();
        assert!(
            err.contains("local copy") && err.contains("corrupt"),
            "{err}"
        );
        let code = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-I"])
            .arg(format!(
                "http://{}/v2/team/c{chunk_size}/blobs/{digest}",
                registry.addr
            ))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&code.stdout), "404");
    }
}

/// A store whose layer cannot be read the first time: a push interrupted after its config.
struct FailsOnce {
    inner: DirStore,
    layer: Digest,
    failed: std::sync::atomic::AtomicBool,
}

impl BlobStore for FailsOnce {
    fn has(&self, digest: &Digest) -> bool {
        self.inner.has(digest)
    }
    fn size(&self, digest: &Digest) -> std::io::Result<u64> {
        self.inner.size(digest)
    }
    fn open(&self, digest: &Digest) -> std::io::Result<Box<dyn std::io::Read + Send>> {
        if *digest == self.layer && !self.failed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Err(std::io::Error::other("the disk went away"));
        }
        self.inner.open(digest)
    }
    fn writer(
        &self,
        digest: &Digest,
        size: u64,
    ) -> std::io::Result<Box<dyn skiff_registry::BlobWriter>> {
        self.inner.writer(digest, size)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_push_sends_only_what_is_missing_the_next_time() {
    let registry = TestRegistry::start();
    let (_d, local) = store();
    let wasm = guest("hello.wasm");
    let manifest = cncf(&local, &wasm);
    let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let config: Digest = m["config"]["digest"].as_str().unwrap().parse().unwrap();
    let layer: Digest = m["layers"][0]["digest"].as_str().unwrap().parse().unwrap();
    let store = FailsOnce {
        inner: local,
        layer: layer.clone(),
        failed: Default::default(),
    };
    let reference = format!("{}/team/hello:1.0", registry.addr);
    // One blob at a time, config first: the config is in the registry when the layer fails.
    let reg = Registry::new(RegistryConfig {
        max_parallel: 1,
        ..Default::default()
    });
    let push_once = || try_push(&reg, &reference, &store, &manifest, PushFormat::Cncf);
    let err = push_once().await.unwrap_err();
    assert!(err.contains("the disk went away"), "{err}");

    let pushed = push_once().await.unwrap();
    let outcome = |d: &Digest| pushed.blobs.iter().find(|(b, _)| b == d).unwrap().1;
    assert_eq!(outcome(&config), BlobOutcome::Present);
    assert_eq!(outcome(&layer), BlobOutcome::Transferred);
    assert_eq!(pushed.bytes_moved, wasm.len() as u64);
}
