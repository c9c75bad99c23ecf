//! What a manifest or index points at, read tolerantly: the store follows `config`, `layers`
//! and `manifests` of any OCI or Docker manifest, whatever its media types, so prune and check
//! keep everything an image needs.

use crate::Digest;
use serde::Deserialize;

/// Manifests larger than this are refused (the limit registries apply, 4 MiB).
pub const MANIFEST_MAX: u64 = 4 << 20;

#[derive(Deserialize)]
struct Descriptor {
    digest: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnyManifest {
    schema_version: Option<u32>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

/// What one manifest names: blobs (config, layers) and, for an index, child manifests.
pub(crate) struct Refs {
    pub blobs: Vec<Digest>,
    pub manifests: Vec<Digest>,
}

pub(crate) fn parse_refs(bytes: &[u8]) -> Result<Refs, String> {
    let m: AnyManifest =
        serde_json::from_slice(bytes).map_err(|e| format!("not a JSON manifest: {e}"))?;
    if m.schema_version != Some(2) {
        return Err(format!(
            "schemaVersion is {:?}, expected 2",
            m.schema_version
        ));
    }
    let parse = |d: &Descriptor| d.digest.parse::<Digest>().map_err(|e| e.to_string());
    Ok(Refs {
        blobs: m
            .config
            .iter()
            .chain(&m.layers)
            .map(parse)
            .collect::<Result<_, _>>()?,
        manifests: m.manifests.iter().map(parse).collect::<Result<_, _>>()?,
    })
}

/// The digests a manifest or index names (config, layers, child manifests), or why the bytes
/// are not a manifest.
pub fn manifest_children(bytes: &[u8]) -> Result<Vec<Digest>, String> {
    let refs = parse_refs(bytes)?;
    Ok(refs.blobs.into_iter().chain(refs.manifests).collect())
}
