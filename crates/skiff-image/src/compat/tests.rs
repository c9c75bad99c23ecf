use super::*;
use crate::annotations::{CONTAINERD_IMAGE_NAME, OCI_REF_NAME};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;

const WASM: &[u8] = b"\0asm\x01\0\0\0";

fn config() -> CompatConfig {
    CompatConfig {
        name: "registry.example.com/team/hello:1.0".into(),
        wasm: WASM.to_vec(),
        file_name: "hello.wasm".into(),
        args: vec!["world".into()],
        env: vec!["GREETING=hi".into()],
        ..Default::default()
    }
}

fn entries(tar_bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut a = tar::Archive::new(tar_bytes);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (path, data)
        })
        .collect()
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

#[test]
fn layout_holds_every_blob_under_its_digest() {
    let image = CompatImage::new(config()).unwrap();
    let files = entries(&image.layout_tar().unwrap());
    assert_eq!(
        json(&files["oci-layout"]),
        json!({"imageLayoutVersion": "1.0.0"})
    );
    for blob in [&image.manifest, &image.config, &image.layer] {
        let path = format!("blobs/sha256/{}", blob.digest.hex());
        assert_eq!(files[&path], blob.bytes, "{path}");
        assert_eq!(Digest::of(&files[&path]), blob.digest);
    }
    let index = json(&files["index.json"]);
    let desc = &index["manifests"][0];
    assert_eq!(desc["digest"], image.manifest.digest.to_string());
    assert_eq!(
        desc["platform"],
        json!({"architecture": "wasm", "os": "wasi"})
    );
    assert_eq!(
        desc["annotations"][CONTAINERD_IMAGE_NAME],
        "registry.example.com/team/hello:1.0"
    );
    assert_eq!(desc["annotations"][OCI_REF_NAME], "1.0");
}

#[test]
fn config_names_the_wasm_as_entrypoint_on_platform_wasi_wasm() {
    let image = CompatImage::new(config()).unwrap();
    let c = json(&image.config.bytes);
    assert_eq!(c["os"], "wasi");
    assert_eq!(c["architecture"], "wasm");
    assert_eq!(c["config"]["Entrypoint"], json!(["/hello.wasm"]));
    assert_eq!(c["config"]["Cmd"], json!(["world"]));
    assert_eq!(c["config"]["Env"], json!(["GREETING=hi"]));
    assert_eq!(
        c["rootfs"]["diff_ids"],
        json!([image.layer.digest.to_string()])
    );
    let m = json(&image.manifest.bytes);
    assert_eq!(m["config"]["mediaType"], media::OCI_CONFIG);
    assert_eq!(m["layers"][0]["mediaType"], media::OCI_LAYER_TAR);
    assert_eq!(m["layers"][0]["size"], image.layer.bytes.len());
    // The layer is a tar holding exactly the binary.
    let layer = entries(&image.layer.bytes);
    assert_eq!(layer.keys().collect::<Vec<_>>(), ["hello.wasm"]);
    assert_eq!(layer["hello.wasm"], WASM);
}

#[test]
fn builds_are_reproducible() {
    let a = CompatImage::new(config()).unwrap();
    let b = CompatImage::new(config()).unwrap();
    assert_eq!(a.manifest.digest, b.manifest.digest);
    assert_eq!(a.layout_tar().unwrap(), b.layout_tar().unwrap());
    let mut c = config();
    c.args.clear();
    c.env.clear();
    let c = CompatImage::new(c).unwrap();
    assert_ne!(a.manifest.digest, c.manifest.digest);
    assert!(json(&c.config.bytes)["config"].get("Cmd").is_none());
}

#[test]
fn bad_input_is_refused_with_a_reason() {
    let with = |f: fn(&mut CompatConfig)| {
        let mut c = config();
        f(&mut c);
        CompatImage::new(c).unwrap_err().to_string()
    };
    assert!(with(|c| c.name.clear()).contains("image name is empty"));
    assert!(with(|c| c.name = "a b".into()).contains("whitespace"));
    assert!(with(|c| c.file_name = "../x.wasm".into()).contains("plain file name"));
    assert!(with(|c| c.file_name = "..".into()).contains("plain file name"));
    assert!(with(|c| c.wasm = b"#!/bin/sh".to_vec()).contains("not a WebAssembly"));
    assert!(with(|c| c.env = vec!["=x".into()]).contains("K=V"));
    assert!(with(|c| c.env = vec!["NOVALUE".into()]).contains("K=V"));
    assert!(with(|c| c.os.clear()).contains("platform"));
}

#[test]
fn the_platform_can_be_a_linux_one_for_kubernetes_pulls() {
    let mut c = config();
    c.os = "linux".into();
    c.architecture = "amd64".into();
    let image = CompatImage::new(c).unwrap();
    let conf = json(&image.config.bytes);
    assert_eq!(
        (conf["os"].as_str(), conf["architecture"].as_str()),
        (Some("linux"), Some("amd64"))
    );
    let index = json(&image.index_json());
    assert_eq!(index["manifests"][0]["platform"]["os"], "linux");
}

#[test]
fn tags() {
    assert_eq!(tag_of("host:5000/a/b:1.0").as_deref(), Some("1.0"));
    assert_eq!(tag_of("host:5000/a/b"), None);
    let pinned = format!("b:latest@sha256:{}", "0".repeat(64));
    assert_eq!(tag_of(&pinned).as_deref(), Some("latest"));
}

/// `push --format compat` and `save --format docker` carry the image's defaults, so that
/// `docker run IMAGE` alone runs as `skiff run IMAGE`; an HTTP component exposes its port.
#[test]
fn the_compat_form_of_an_image_carries_its_defaults_and_an_http_port() {
    let layer = Descriptor::new(media::WASM_LAYER, Digest::of(WASM), WASM.len() as u64);
    let defaults = crate::annotations::Defaults {
        args: Some(vec!["world".into(), "twice".into()]),
        env: [
            ("A".to_string(), "1".to_string()),
            ("B".into(), "x=y".into()),
        ]
        .into(),
        ..Default::default()
    };
    let of = |wasm: Vec<u8>, defaults: &crate::annotations::Defaults| {
        let c = CompatConfig::of_image("h:1".into(), &layer, wasm, None, defaults, None);
        json(&CompatImage::new(c).unwrap().config.bytes)["config"].clone()
    };
    let c = of(WASM.to_vec(), &defaults);
    assert_eq!(c["Cmd"], json!(["world", "twice"]));
    assert_eq!(c["Env"], json!(["A=1", "B=x=y"]));
    assert_eq!(c.get("ExposedPorts"), None);
    let none = of(WASM.to_vec(), &Default::default());
    assert_eq!(none, json!({"Entrypoint": ["/app.wasm"]}));

    let http = std::fs::read(format!(
        "{}/../../guests/wasm/http-hello.wasm",
        std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")
    ))
    .unwrap();
    let c = of(http, &Default::default());
    assert_eq!(c["ExposedPorts"], json!({"8080/tcp": {}}));
}
