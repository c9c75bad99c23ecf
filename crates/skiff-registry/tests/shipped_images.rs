//! Images as today's tools push them (current Spin, wkg, oras, OCI 1.1 artifacts, indexes that
//! mix Linux and Wasm), byte for byte as each tool writes them (tests/common/shipped.rs), pushed
//! to a real registry with curl and pulled by skiff.

mod common;

use common::shipped::{self, SpinComponent, ToolImage, OCI_INDEX, OCI_MANIFEST};
use common::{guest, pull, read_to_vec, Curl, TestRegistry};
use skiff_registry::{BlobStore, DirStore, Layout, Pulled};

fn push(curl: &Curl, repo: &str, tag: &str, image: &ToolImage) -> skiff_store::Digest {
    for b in &image.blobs {
        curl.put_blob(repo, b);
    }
    curl.put_manifest(repo, tag, OCI_MANIFEST, &image.manifest)
}

fn manifest_json(pulled: &Pulled) -> serde_json::Value {
    serde_json::from_slice(&pulled.manifest).unwrap()
}

/// The pulled image is skiff's layout (wasm config, one application/wasm layer) over `wasm`,
/// then a data layer for each of the component's files, titled with its path.
fn assert_runs_as(store: &DirStore, pulled: &Pulled, wasm: &[u8], layout: Layout) {
    assert_eq!(pulled.layout, layout);
    let m = manifest_json(pulled);
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(m["layers"][0]["mediaType"], "application/wasm");
    assert_eq!(read_to_vec(store.open(&pulled.wasm_digest).unwrap()), wasm);
}

/// The pulled image's files: (path, bytes), each in the store under its data layer.
fn assert_files(store: &DirStore, pulled: &Pulled, files: &[(&str, &[u8])]) {
    let m = manifest_json(pulled);
    let layers = &m["layers"].as_array().unwrap()[1..];
    assert_eq!(layers.len(), files.len(), "{m}");
    for (l, (path, bytes)) in layers.iter().zip(files) {
        assert_eq!(l["mediaType"], shipped::SPIN_DATA);
        assert_eq!(l["annotations"]["org.opencontainers.image.title"], *path);
        let digest: skiff_store::Digest = l["digest"].as_str().unwrap().parse().unwrap();
        assert_eq!(read_to_vec(store.open(&digest).unwrap()), *bytes);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn current_spin_apps_pick_the_triggered_component_or_ask() {
    let registry = TestRegistry::start();
    let curl = Curl {
        addr: &registry.addr,
        user: None,
    };
    let (hello, p2) = (guest("hello.wasm"), guest("hello-p2.wasm"));
    // One component a trigger names, one only composed in (its layer pushed as wkg's type).
    let one = shipped::spin_current(
        "one",
        &[
            SpinComponent {
                id: "hello",
                wasm: &hello,
                media_type: shipped::SPIN_WASM,
                route: Some("/..."),
                files: vec![("static/index.html", b"<h1>hi</h1>")],
            },
            SpinComponent {
                id: "helper",
                wasm: &p2,
                media_type: "application/wasm",
                route: None,
                files: vec![],
            },
        ],
    );
    push(&curl, "spin/one", "v1", &one);
    let (_d, store, pulled) = pull(&format!("{}/spin/one:v1", registry.addr), None).await;
    let pulled = pulled.unwrap();
    assert_runs_as(&store, &pulled, &hello, Layout::Spin);
    // Inlined into the locked app by Spin (11 bytes), kept as a data layer by skiff.
    assert_files(&store, &pulled, &[("static/index.html", b"<h1>hi</h1>")]);
    assert_eq!(
        manifest_json(&pulled)["annotations"]["dev.skiff.source.component"],
        "hello"
    );

    // Two triggered components: the error says which can run, under which trigger, and how to
    // choose; --component takes one (here the `application/wasm` layer).
    let two = shipped::spin_current(
        "two",
        &[
            SpinComponent {
                id: "api",
                wasm: &hello,
                media_type: shipped::SPIN_WASM,
                route: Some("/api/..."),
                files: vec![],
            },
            SpinComponent {
                id: "web",
                wasm: &p2,
                media_type: "application/wasm",
                route: Some("/..."),
                files: vec![("index.html", b"<p>web</p>")],
            },
        ],
    );
    push(&curl, "spin/two", "v1", &two);
    let reference = format!("{}/spin/two:v1", registry.addr);
    let err = pull(&reference, None).await.2.unwrap_err().to_string();
    assert!(
        err.contains("2 components: api (http /api/...), web (http /...)")
            && err.contains("--component NAME"),
        "{err}"
    );
    let (_d, store, pulled) = pull(&reference, Some("web")).await;
    let pulled = pulled.unwrap();
    assert_runs_as(&store, &pulled, &p2, Layout::Spin);
    assert_files(&store, &pulled, &[("index.html", b"<p>web</p>")]);
}

/// Spin's archive form (past 500 files, or `SPIN_OCI_ARCHIVE_LAYERS`): the files named in the
/// locked app are taken out of the component's tar+gzip layer and kept as data layers like any
/// other; a file named but in no archive is refused.
#[tokio::test(flavor = "multi_thread")]
async fn spin_archive_layers_are_unpacked_into_the_named_files() {
    let registry = TestRegistry::start();
    let curl = Curl {
        addr: &registry.addr,
        user: None,
    };
    let p2 = guest("hello-p2.wasm");
    let big = "spin data ".repeat(20);
    let files: Vec<(&str, &[u8])> = vec![("data/in.txt", big.as_bytes()), ("a/b/small", b"small")];
    let app = |files| {
        shipped::spin_current_archived(
            "app",
            &[SpinComponent {
                id: "hello",
                wasm: &p2,
                media_type: shipped::SPIN_WASM,
                route: Some("/..."),
                files,
            }],
        )
    };
    let image = app(files.clone());
    assert!(!image.manifest.windows(5).any(|w| w == b"+data"));
    push(&curl, "spin/archived", "v1", &image);
    let (_d, store, pulled) = pull(&format!("{}/spin/archived:v1", registry.addr), None).await;
    let pulled = pulled.unwrap();
    assert_runs_as(&store, &pulled, &p2, Layout::Spin);
    assert_files(&store, &pulled, &files);

    // The locked app of one app, the archive of another: a named file is missing.
    let mut lying = app(vec![("data/in.txt", b"other bytes, other digest")]);
    let locked = image.blobs.last().unwrap().clone();
    let manifest = String::from_utf8(lying.manifest.clone()).unwrap().replace(
        &skiff_store::Digest::of(lying.blobs.last().unwrap()).to_string(),
        &skiff_store::Digest::of(&locked).to_string(),
    );
    let manifest = manifest.replace(
        &format!("\"size\":{}}}]", lying.blobs.last().unwrap().len()),
        &format!("\"size\":{}}}]", locked.len()),
    );
    lying.manifest = manifest.into_bytes();
    lying.blobs.push(locked);
    push(&curl, "spin/archived", "lying", &lying);
    let err = pull(&format!("{}/spin/archived:lying", registry.addr), None)
        .await
        .2
        .unwrap_err()
        .to_string();
    assert!(err.contains("is in none of its archive layers"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wkg_images_are_the_cncf_layout_stored_byte_for_byte() {
    let registry = TestRegistry::start();
    let curl = Curl {
        addr: &registry.addr,
        user: None,
    };
    let wasm = guest("hello-p2.wasm");
    let image = shipped::wkg(&wasm, &["wasi:cli/run@0.2.0"], &["wasi:cli/stdout@0.2.0"]);
    let remote = push(&curl, "wkg/hello", "0.1.0", &image);
    let (_d, store, pulled) = pull(&format!("{}/wkg/hello:0.1.0", registry.addr), None).await;
    let pulled = pulled.unwrap();
    assert_eq!(pulled.layout, Layout::Cncf);
    assert_eq!(pulled.manifest_digest, remote);
    assert_eq!(&pulled.manifest[..], &image.manifest[..]);
    assert_eq!(read_to_vec(store.open(&pulled.wasm_digest).unwrap()), wasm);
}

#[tokio::test(flavor = "multi_thread")]
async fn oci_1_1_artifacts_and_oras_defaults_pull_whatever_the_config() {
    let registry = TestRegistry::start();
    let curl = Curl {
        addr: &registry.addr,
        user: None,
    };
    let wasm = guest("hello.wasm");
    let images = [
        (
            "wasm-artifact",
            shipped::oci11_artifact(&wasm, "application/vnd.wasm.config.v0+json"),
        ),
        (
            "oras-default",
            shipped::oci11_artifact(&wasm, "application/vnd.unknown.artifact.v1"),
        ),
        ("oras-v1-0", shipped::oras_v1_0(&wasm)),
    ];
    for (tag, image) in &images {
        push(&curl, "art/hello", tag, image);
        let (_d, store, pulled) = pull(&format!("{}/art/hello:{tag}", registry.addr), None).await;
        let pulled = pulled.unwrap_or_else(|e| panic!("{tag}: {e}"));
        assert_runs_as(&store, &pulled, &wasm, Layout::Artifact);
        // The artifact's config (`{}`) dates nothing: the manifest's creation time does.
        let m = manifest_json(&pulled);
        let config: serde_json::Value = serde_json::from_reader(
            store
                .open(&m["config"]["digest"].as_str().unwrap().parse().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(config["created"], "2025-06-01T12:00:00Z", "{tag}");
        assert_eq!(config["os"], "wasip1", "{tag}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_index_mixing_linux_and_wasm_takes_the_wasm_entry_and_says_so() {
    let registry = TestRegistry::start();
    let curl = Curl {
        addr: &registry.addr,
        user: None,
    };
    let wasm = guest("hello.wasm");
    let app = shipped::spin_current(
        "app",
        &[SpinComponent {
            id: "hello",
            wasm: &wasm,
            media_type: shipped::SPIN_WASM,
            route: Some("/..."),
            files: vec![],
        }],
    );
    push(&curl, "mixed/app", "wasm", &app);
    // The Linux image's blobs are never fetched: the registry needs only its manifest.
    let linux = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},"layers":[]}}"#,
        skiff_store::Digest::of(b"{}")
    )
    .into_bytes();
    curl.put_blob("mixed/app", b"{}");
    curl.put_manifest("mixed/app", "linux", OCI_MANIFEST, &linux);
    let index = shipped::mixed_index(&[
        (&linux, "linux", "amd64"),
        (&app.manifest, "wasip1", "wasm"),
    ]);
    let remote = curl.put_manifest("mixed/app", "1", OCI_INDEX, &index);
    let (_d, store, pulled) = pull(&format!("{}/mixed/app:1", registry.addr), None).await;
    let pulled = pulled.unwrap();
    assert_runs_as(&store, &pulled, &wasm, Layout::Spin);
    assert_eq!(pulled.remote_digest, remote);
    assert_eq!(
        pulled.platform.as_deref(),
        Some("wasip1/wasm, of linux/amd64, wasip1/wasm")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_artifact_skiff_cannot_run_is_named_by_its_types() {
    let registry = TestRegistry::start();
    let curl = Curl {
        addr: &registry.addr,
        user: None,
    };
    let sig = b"not wasm".to_vec();
    curl.put_blob("odd/sig", b"{}");
    curl.put_blob("odd/sig", &sig);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/vnd.dev.cosign.artifact.sig.v1+json","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{}","size":2}},"layers":[{{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","digest":"{}","size":{}}}]}}"#,
        skiff_store::Digest::of(b"{}"),
        skiff_store::Digest::of(&sig),
        sig.len()
    );
    curl.put_manifest("odd/sig", "1", OCI_MANIFEST, manifest.as_bytes());
    let err = pull(&format!("{}/odd/sig:1", registry.addr), None)
        .await
        .2
        .unwrap_err()
        .to_string();
    for part in [
        "artifactType application/vnd.dev.cosign.artifact.sig.v1+json",
        "config application/vnd.oci.empty.v1+json",
        "layers [application/vnd.dev.cosign.simplesigning.v1+json]",
    ] {
        assert!(err.contains(part), "{part} missing from: {err}");
    }
}

/// skopeo as the pushing peer: each tool's image, written as an OCI layout, copied into the
/// registry by `skopeo copy` (which re-reads and re-uploads every blob and the manifest).
#[tokio::test(flavor = "multi_thread")]
async fn images_skopeo_copies_into_the_registry_pull() {
    let registry = TestRegistry::start();
    let (hello, p2) = (guest("hello.wasm"), guest("hello-p2.wasm"));
    let spin = shipped::spin_current(
        "app",
        &[SpinComponent {
            id: "hello",
            wasm: &p2,
            media_type: shipped::SPIN_WASM,
            route: Some("/..."),
            files: vec![("index.html", b"<p>hi</p>")],
        }],
    );
    let artifact = shipped::oci11_artifact(&hello, "application/vnd.wasm.config.v0+json");
    for (name, image, wasm, layout) in [
        ("spin", &spin, &p2, Layout::Spin),
        ("artifact", &artifact, &hello, Layout::Artifact),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let blobs = dir.path().join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        for b in image.blobs.iter().chain([&image.manifest]) {
            std::fs::write(blobs.join(skiff_store::Digest::of(b).hex()), b).unwrap();
        }
        std::fs::write(
            dir.path().join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"1"}}}}]}}"#,
            skiff_store::Digest::of(&image.manifest),
            image.manifest.len()
        );
        std::fs::write(dir.path().join("index.json"), index).unwrap();
        let reference = format!("{}/skopeo/{name}:1", registry.addr);
        common::skopeo(&[
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{}:1", dir.path().display()),
            &format!("docker://{reference}"),
        ]);
        // skopeo sent the tool's manifest unchanged.
        assert_eq!(common::skopeo_raw(&reference), image.manifest, "{name}");
        let (_d, store, pulled) = pull(&reference, None).await;
        let pulled = pulled.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_runs_as(&store, &pulled, wasm, layout);
    }
}
