//! Every Wasm layout in use, pushed to a real registry by another client (curl), pulled by
//! skiff and normalised into its own layout.

mod common;

use common::images::{desc, gzip, tar};
use common::{guest, pull, read_to_vec, Curl, TestRegistry};
use serde_json::json;
use skiff_registry::{BlobStore, DirStore, Layout};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// The pulled image is skiff's layout: wasm config, one application/wasm layer, the source noted.
fn assert_normalised(store: &DirStore, pulled: &skiff_registry::Pulled, wasm: &[u8], layout: &str) {
    let m: serde_json::Value = serde_json::from_slice(&pulled.manifest).unwrap();
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(m["layers"].as_array().unwrap().len(), 1);
    assert_eq!(m["layers"][0]["mediaType"], "application/wasm");
    assert_eq!(m["annotations"]["dev.skiff.source.layout"], layout);
    assert_eq!(read_to_vec(store.open(&pulled.wasm_digest).unwrap()), wasm);
    let config: serde_json::Value = serde_json::from_reader(
        store
            .open(&m["config"]["digest"].as_str().unwrap().parse().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["layerDigests"][0], pulled.wasm_digest.to_string());
    assert!(store.has(&pulled.manifest_digest));
}

fn spin_config(components: &[(&str, &[u8])]) -> Vec<u8> {
    let comps: Vec<_> = components
        .iter()
        .map(|(id, wasm)| json!({"id": id, "source": {"content_type": "application/wasm", "content": {"digest": common::sha256(wasm)}}}))
        .collect();
    serde_json::to_vec(&json!({"spin_lock_version": 1, "triggers": [], "components": comps}))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn spin_apps_one_component_runs_several_ask_which() {
    let registry = TestRegistry::start();
    let curl = Curl {
        addr: &registry.addr,
        user: None,
    };
    let (hello, p2) = (guest("hello.wasm"), guest("hello-p2.wasm"));
    for (repo, comps) in [
        ("spin/one", vec![("hello", &hello[..])]),
        ("spin/two", vec![("hello", &hello[..]), ("p2", &p2[..])]),
    ] {
        let config = spin_config(&comps);
        curl.put_blob(repo, &config);
        let mut layers = vec![];
        for (_, w) in &comps {
            curl.put_blob(repo, w);
            layers.push(desc("application/vnd.wasm.content.layer.v1+wasm", w));
        }
        let data = b"static file".to_vec();
        curl.put_blob(repo, &data);
        layers.push(desc("application/vnd.wasm.content.layer.v1+data", &data));
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": desc("application/vnd.fermyon.spin.application.v1+config", &config),
            "layers": layers,
        }))
        .unwrap();
        curl.put_manifest(repo, "v1", OCI_MANIFEST, &manifest);
    }

    let (_d, store, pulled) = pull(&format!("{}/spin/one:v1", registry.addr), None).await;
    let pulled = pulled.unwrap();
    assert_eq!(pulled.layout, Layout::Spin);
    assert_normalised(&store, &pulled, &hello, "spin");

    let (_d, _s, err) = pull(&format!("{}/spin/two:v1", registry.addr), None).await;
    let err = err.unwrap_err().to_string();
    assert!(
        err.contains("2 components: hello, p2") && err.contains("--component"),
        "{err}"
    );

    let (_d, store, pulled) = pull(&format!("{}/spin/two:v1", registry.addr), Some("p2")).await;
    let pulled = pulled.unwrap();
    assert_normalised(&store, &pulled, &p2, "spin");
    let config: serde_json::Value = {
        let m: serde_json::Value = serde_json::from_slice(&pulled.manifest).unwrap();
        assert_eq!(m["annotations"]["dev.skiff.source.component"], "p2");
        serde_json::from_reader(
            store
                .open(&m["config"]["digest"].as_str().unwrap().parse().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(config["os"], "wasip2", "a component is wasip2");
    assert!(config["component"]["exports"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e.as_str().unwrap().starts_with("wasi:cli/run")));
}

#[tokio::test(flavor = "multi_thread")]
async fn runwasi_component_layer() {
    let registry = TestRegistry::start();
    let curl = Curl {
        addr: &registry.addr,
        user: None,
    };
    let wasm = guest("hello-p2.wasm");
    let config = serde_json::to_vec(&json!({"architecture": "wasm", "os": "wasip2", "created": "2024-05-01T00:00:00Z", "config": {"Entrypoint": ["/hello.wasm"]}, "rootfs": {"type": "layers", "diff_ids": []}})).unwrap();
    curl.put_blob("rw/hello", &config);
    curl.put_blob("rw/hello", &wasm);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": desc("application/vnd.oci.image.config.v1+json", &config),
        "layers": [desc("application/vnd.bytecodealliance.wasm.component.layer.v0+wasm", &wasm)],
    }))
    .unwrap();
    let remote = curl.put_manifest("rw/hello", "latest", OCI_MANIFEST, &manifest);
    let (_d, store, pulled) = pull(&format!("{}/rw/hello", registry.addr), None).await;
    let pulled = pulled.unwrap();
    assert_eq!(pulled.layout, Layout::Runwasi);
    assert_eq!(pulled.remote_digest, remote);
    assert_normalised(&store, &pulled, &wasm, "runwasi");
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_compat_layout_in_an_index_with_a_linux_image_beside_it() {
    let registry = TestRegistry::start();
    let curl = Curl {
        addr: &registry.addr,
        user: None,
    };
    let wasm = guest("hello.wasm");
    // Docker's layout: gzip tar layers, the .wasm named by the entrypoint, other files around it.
    let base = gzip(&tar(&[
        ("etc/readme", b"hi"),
        ("app/other.wasm", b"\0asm-decoy"),
    ]));
    let top = gzip(&tar(&[("app/hello.wasm", &wasm)]));
    let config = serde_json::to_vec(&json!({"architecture": "wasm", "os": "wasi", "config": {"Entrypoint": ["/app/hello.wasm"]}, "rootfs": {"type": "layers", "diff_ids": []}})).unwrap();
    for b in [&base, &top, &config] {
        curl.put_blob("compat/hello", b);
    }
    let wasm_manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": desc("application/vnd.oci.image.config.v1+json", &config),
        "layers": [desc("application/vnd.oci.image.layer.v1.tar+gzip", &base), desc("application/vnd.oci.image.layer.v1.tar+gzip", &top)],
    }))
    .unwrap();
    let wasm_digest = curl.put_manifest("compat/hello", "wasm-only", OCI_MANIFEST, &wasm_manifest);
    // A linux image beside it in the index (its blobs need not exist for skiff to skip it:
    // the registry checks only that the manifest exists).
    let linux_cfg = serde_json::to_vec(&json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})).unwrap();
    let linux_layer = gzip(&tar(&[("bin/sh", b"#!")]));
    curl.put_blob("compat/hello", &linux_cfg);
    curl.put_blob("compat/hello", &linux_layer);
    let linux_manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": desc("application/vnd.oci.image.config.v1+json", &linux_cfg),
        "layers": [desc("application/vnd.oci.image.layer.v1.tar+gzip", &linux_layer)],
    }))
    .unwrap();
    curl.put_manifest("compat/hello", "linux-only", OCI_MANIFEST, &linux_manifest);
    let entry = |m: &[u8], os: &str, arch: &str| {
        let mut d = desc(OCI_MANIFEST, m);
        d["platform"] = json!({"os": os, "architecture": arch});
        d
    };
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&linux_manifest, "linux", "amd64"), entry(&wasm_manifest, "wasi", "wasm")],
    }))
    .unwrap();
    curl.put_manifest(
        "compat/hello",
        "1.0",
        "application/vnd.oci.image.index.v1+json",
        &index,
    );

    let (_d, store, pulled) = pull(&format!("{}/compat/hello:1.0", registry.addr), None).await;
    let pulled = pulled.unwrap();
    assert_eq!(pulled.layout, Layout::Compat);
    assert_eq!(pulled.remote_digest, common::sha256(&index));
    assert_normalised(&store, &pulled, &wasm, "compat");
    let m: serde_json::Value = serde_json::from_slice(&pulled.manifest).unwrap();
    assert_eq!(
        m["annotations"]["dev.skiff.source.manifest"],
        wasm_digest.to_string()
    );
    // The linux image was never fetched.
    assert!(!store.has(&common::sha256(&linux_layer)));

    // A plain linux image is refused with what it is.
    let (_d, _s, err) = pull(&format!("{}/compat/hello:linux-only", registry.addr), None).await;
    let err = err.unwrap_err().to_string();
    assert!(
        err.contains("linux/amd64") && err.contains("not a Wasm image"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_media_types_are_listed() {
    let registry = TestRegistry::start();
    let curl = Curl {
        addr: &registry.addr,
        user: None,
    };
    let config = b"{}".to_vec();
    let layer = b"helm chart".to_vec();
    curl.put_blob("odd/chart", &config);
    curl.put_blob("odd/chart", &layer);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": desc("application/vnd.cncf.helm.config.v1+json", &config),
        "layers": [desc("application/vnd.cncf.helm.chart.content.v1.tar+gzip", &layer)],
    }))
    .unwrap();
    curl.put_manifest("odd/chart", "1", OCI_MANIFEST, &manifest);
    let (_d, store, err) = pull(&format!("{}/odd/chart:1", registry.addr), None).await;
    let err = err.unwrap_err().to_string();
    assert!(
        err.contains("application/vnd.cncf.helm.config.v1+json")
            && err.contains("application/vnd.cncf.helm.chart.content.v1.tar+gzip"),
        "{err}"
    );
    assert!(!store.has(&common::sha256(&layer)));
}
