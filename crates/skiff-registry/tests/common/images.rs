//! Images in each layout, as bytes.

use serde_json::json;
use skiff_registry::{BlobStore, DirStore};

pub fn put(store: &DirStore, bytes: &[u8]) -> skiff_store::Digest {
    let d = super::sha256(bytes);
    let mut w = store.writer(&d, bytes.len() as u64).unwrap();
    w.write_all(bytes).unwrap();
    w.commit().unwrap();
    d
}

use std::io::Write;

pub fn desc(mt: &str, bytes: &[u8]) -> serde_json::Value {
    json!({"mediaType": mt, "digest": super::sha256(bytes), "size": bytes.len()})
}

/// skiff's own layout, blobs put in `store`; returns the manifest bytes.
pub fn cncf(store: &DirStore, wasm: &[u8]) -> Vec<u8> {
    let layer_digest = put(store, wasm);
    let config = serde_json::to_vec(&json!({
        "created": "2024-01-01T00:00:00Z", "architecture": "wasm", "os": "wasip1",
        "layerDigests": [layer_digest],
    }))
    .unwrap();
    put(store, &config);
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.wasm.config.v0+json",
        "config": desc("application/vnd.wasm.config.v0+json", &config),
        "layers": [desc("application/wasm", wasm)],
    }))
    .unwrap()
}

pub fn tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}
