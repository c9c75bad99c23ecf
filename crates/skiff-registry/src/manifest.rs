//! Manifests on the wire. The types are the image model's (`skiff_image::model`): one set of OCI
//! types for what skiff builds, saves and pulls. Unknown fields are ignored on read, and a
//! digest that is not `sha256:<64 lowercase hex>` is refused as the document is parsed; a
//! manifest skiff stores is always the registry's exact bytes, never re-serialised.

use crate::blobs::BlobRef;
use skiff_image::media;
use skiff_image::model::Descriptor;

/// What a descriptor says about the blob it names: what a transfer needs.
pub(crate) fn blob(d: &Descriptor) -> BlobRef {
    BlobRef {
        digest: d.digest.clone(),
        size: d.size,
    }
}

/// What kind of document a manifest body is: from the `Content-Type` the registry sent, else the
/// body's own `mediaType`, else its shape.
pub(crate) fn kind_of(content_type: Option<&str>, body: &[u8]) -> String {
    let declared = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
        .filter(|c| media::MANIFEST_ACCEPT.contains(&c.as_str()));
    if let Some(c) = declared {
        return c;
    }
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    if let Some(m) = v.get("mediaType").and_then(|m| m.as_str()) {
        return m.to_string();
    }
    if v.get("manifests").is_some() {
        media::OCI_INDEX.to_string()
    } else {
        media::OCI_MANIFEST.to_string()
    }
}
