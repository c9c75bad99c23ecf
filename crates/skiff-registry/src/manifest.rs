//! The manifest and index JSON, as far as push and pull need it. Unknown fields are ignored on
//! read; a manifest skiff stores is always the registry's exact bytes, never re-serialised.
//! (The image model proper is `skiff-image`'s; these types stay private to the wire.)

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub manifests: Vec<Descriptor>,
}

impl Descriptor {
    pub fn new(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: crate::blobs::sha256(bytes),
            size: bytes.len() as u64,
            platform: None,
            artifact_type: None,
            annotations: None,
        }
    }

    pub(crate) fn blob(&self) -> crate::blobs::BlobRef {
        crate::blobs::BlobRef {
            digest: self.digest.clone(),
            size: self.size,
        }
    }
}

/// What kind of document a manifest body is: from the `Content-Type` the registry sent, else the
/// body's own `mediaType`, else its shape.
pub(crate) fn kind_of(content_type: Option<&str>, body: &[u8]) -> String {
    let declared = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
        .filter(|c| crate::media::MANIFEST_ACCEPT.contains(&c.as_str()));
    if let Some(c) = declared {
        return c;
    }
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    if let Some(m) = v.get("mediaType").and_then(|m| m.as_str()) {
        return m.to_string();
    }
    if v.get("manifests").is_some() {
        crate::media::OCI_INDEX.to_string()
    } else {
        crate::media::OCI_MANIFEST.to_string()
    }
}

/// Serialise JSON the way skiff writes every document it creates: compact, keys in order.
pub(crate) fn to_bytes<T: Serialize>(v: &T) -> Vec<u8> {
    // serde_json::Value's map is a BTreeMap (no preserve_order feature): keys come out sorted.
    let value = serde_json::to_value(v).expect("these types serialise");
    serde_json::to_vec(&value).expect("a Value serialises")
}
