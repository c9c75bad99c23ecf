//! An image in the CNCF Wasm layout, checked: the manifest, its config, its defaults.

use crate::annotations::{AnnotationError, Defaults};
use crate::media;
use crate::model::*;
use crate::reference::{Reference, ReferenceError};
use skiff_store::{Digest, Store, StoreError, MANIFEST_MAX};

/// Config blobs larger than this are refused (a config lists imports and exports; 1 MiB is
/// generous).
pub const CONFIG_MAX: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Not the CNCF Wasm layout: says what it saw.
    #[error(
        "unsupported image layout: {saw}; skiff reads the CNCF Wasm layout (config \
         {config}, exactly one {layer} layer, then only {data} layers of files)",
        config = media::WASM_CONFIG,
        layer = media::WASM_LAYER,
        data = media::DATA_LAYER
    )]
    Layout { saw: String },
    #[error("invalid manifest {digest}: {reason}")]
    Manifest { digest: Digest, reason: String },
    #[error("invalid config {digest}: {reason}")]
    Config { digest: Digest, reason: String },
    #[error("image {digest}: {source}")]
    Annotation {
        digest: Digest,
        source: AnnotationError,
    },
}

/// A checked image.
#[derive(Debug, Clone)]
pub struct Image {
    pub digest: Digest,
    pub manifest: Manifest,
    pub manifest_size: u64,
    pub config: WasmConfig,
    pub defaults: Defaults,
}

impl Image {
    /// The one layer: the Wasm binary.
    pub fn layer(&self) -> &Descriptor {
        &self.manifest.layers[0]
    }

    /// The files the guest is given read-only (a Spin component's): (path under `/`, layer).
    pub fn files(&self) -> Vec<(&str, &Descriptor)> {
        crate::files::of_layers(&self.manifest.layers)
    }

    /// Manifest + config + layers, as `docker images` counts SIZE.
    pub fn total_size(&self) -> u64 {
        let layers: u64 = self.manifest.layers.iter().map(|l| l.size).sum();
        self.manifest_size + self.manifest.config.size + layers
    }

    /// Read and check the image `digest` from anything that holds blobs.
    pub fn read(blobs: &dyn BlobSource, digest: &Digest) -> Result<Image, ImageError> {
        let bytes = blobs.read(digest, MANIFEST_MAX)?;
        let manifest = parse_manifest(digest, &bytes)?;
        let config_bytes = blobs.read(&manifest.config.digest, CONFIG_MAX)?;
        let config = parse_config(&manifest, &config_bytes)?;
        let layer = &manifest.layers[0];
        let actual = blobs.size(&layer.digest)?;
        if actual != layer.size {
            return Err(ImageError::Manifest {
                digest: digest.clone(),
                reason: format!(
                    "layer {} is {actual} bytes but the manifest says {}",
                    layer.digest, layer.size
                ),
            });
        }
        let defaults = Defaults::from_annotations(&manifest.annotations).map_err(|source| {
            ImageError::Annotation {
                digest: digest.clone(),
                source,
            }
        })?;
        Ok(Image {
            digest: digest.clone(),
            manifest_size: bytes.len() as u64,
            manifest,
            config,
            defaults,
        })
    }
}

/// Where images are read from: the store, or a load's staging area.
pub trait BlobSource {
    fn read(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, StoreError>;
    fn size(&self, digest: &Digest) -> Result<u64, StoreError>;
}

impl BlobSource for Store {
    fn read(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, StoreError> {
        self.read_blob(digest, limit)
    }
    fn size(&self, digest: &Digest) -> Result<u64, StoreError> {
        self.blob_size(digest)
    }
}

impl BlobSource for skiff_store::Staging<'_> {
    fn read(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, StoreError> {
        self.read_blob(digest, limit)
    }
    fn size(&self, digest: &Digest) -> Result<u64, StoreError> {
        self.blob_size(digest)
    }
}

/// Parse a manifest and check it is the CNCF Wasm layout.
pub fn parse_manifest(digest: &Digest, bytes: &[u8]) -> Result<Manifest, ImageError> {
    let bad = |reason: String| ImageError::Manifest {
        digest: digest.clone(),
        reason,
    };
    // Peek at the media type first, so an index or a Docker manifest gets a precise error.
    let peek: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    let media_type = peek.get("mediaType").and_then(|v| v.as_str());
    match media_type {
        None | Some(media::OCI_MANIFEST) => {}
        Some(media::OCI_INDEX) | Some(media::DOCKER_LIST) => {
            return Err(ImageError::Layout {
                saw: format!(
                    "an image index ({}) rather than one image manifest",
                    media_type.unwrap_or_default()
                ),
            })
        }
        Some(other) => {
            return Err(ImageError::Layout {
                saw: format!("manifest media type {other}"),
            })
        }
    }
    let m: Manifest =
        serde_json::from_value(peek).map_err(|e| bad(format!("not an OCI manifest: {e}")))?;
    if m.schema_version != 2 {
        return Err(bad(format!(
            "schemaVersion {}, expected 2",
            m.schema_version
        )));
    }
    let layers: Vec<&str> = m.layers.iter().map(|l| l.media_type.as_str()).collect();
    // After the wasm layer, only files (what a pull of a Spin app keeps of its component's).
    let layout_ok = m.config.media_type == media::WASM_CONFIG
        && layers.first() == Some(&media::WASM_LAYER)
        && layers[1..].iter().all(|l| *l == media::DATA_LAYER);
    if !layout_ok {
        return Err(ImageError::Layout {
            saw: format!(
                "config {}, {} layer{} [{}]",
                m.config.media_type,
                layers.len(),
                if layers.len() == 1 { "" } else { "s" },
                layers.join(", ")
            ),
        });
    }
    let files = crate::files::of_layers(&m.layers);
    crate::files::check(files.iter().map(|(p, l)| (*p, l.size)))
        .map_err(|e| bad(format!("its files: {e}")))?;
    if m.config.size > CONFIG_MAX {
        return Err(bad(format!(
            "config size {} is over the limit of {CONFIG_MAX}",
            m.config.size
        )));
    }
    Ok(m)
}

/// Parse the config and check it agrees with its manifest.
pub fn parse_config(manifest: &Manifest, bytes: &[u8]) -> Result<WasmConfig, ImageError> {
    let digest = manifest.config.digest.clone();
    let bad = |reason: String| ImageError::Config {
        digest: digest.clone(),
        reason,
    };
    let c: WasmConfig = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    if c.architecture != ARCHITECTURE {
        return Err(bad(format!(
            "architecture is {:?}, expected \"wasm\"",
            c.architecture
        )));
    }
    match c.os.as_str() {
        "wasip1" => {}
        "wasip2" | "wasip3" if c.component.is_none() => {
            return Err(bad(format!("os {} requires a `component` section", c.os)))
        }
        "wasip2" | "wasip3" => {}
        other => {
            return Err(bad(format!(
                "os is {other:?}; expected wasip1, wasip2 or wasip3"
            )))
        }
    }
    let layer_digests: Vec<&Digest> = manifest.layers.iter().map(|l| &l.digest).collect();
    if c.layer_digests.iter().collect::<Vec<_>>() != layer_digests {
        return Err(bad(
            "layerDigests does not list the manifest's layers in order".into(),
        ));
    }
    Ok(c)
}

/// Find an image in the store by reference (`hello:1.0`, `hello@sha256:…`) or by manifest
/// digest (`sha256:…`, or a unique prefix of at least 12 hex digits as `docker images` shows).
/// Returns the reference as parsed, if the user gave a name.
pub fn find(store: &Store, spec: &str) -> Result<(Option<Reference>, Digest), ImageError> {
    let not_found = || {
        ImageError::NotFound(format!(
            "image {spec} not found in the local store (pull it with `skiff pull {spec}`, or \
             build it with `skiff build -t {spec}`)"
        ))
    };
    if let Some(digest) = by_digest(store, spec)? {
        return Ok((None, digest));
    }
    let reference = Reference::parse(spec)?;
    let tag = reference.tag_or_latest();
    match store.resolve(&reference.repository(), tag, reference.digest())? {
        Some(d) => Ok((Some(reference), d)),
        None => Err(not_found()),
    }
}

fn by_digest(store: &Store, spec: &str) -> Result<Option<Digest>, ImageError> {
    if spec.starts_with("sha256:") {
        let d: Digest = spec.parse().map_err(|e: skiff_store::DigestError| {
            ImageError::Reference(ReferenceError {
                input: spec.into(),
                reason: e.to_string(),
            })
        })?;
        return if store.has_blob(&d) {
            Ok(Some(d))
        } else {
            Err(ImageError::NotFound(format!(
                "image {spec} not found in the local store (pull it with `skiff pull`)"
            )))
        };
    }
    // A short ID (12+ hex digits) names the tagged image whose digest it starts.
    let is_hex = spec.len() >= 12
        && spec.len() <= 64
        && spec.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !is_hex {
        return Ok(None);
    }
    let mut hits: Vec<Digest> = store
        .tags()?
        .into_iter()
        .map(|t| t.digest)
        .filter(|d| d.hex().starts_with(spec))
        .collect();
    hits.sort();
    hits.dedup();
    match hits.len() {
        0 => Ok(None),
        1 => Ok(hits.pop()),
        _ => Err(ImageError::NotFound(format!(
            "{spec} is ambiguous: it starts {} image digests; give more digits",
            hits.len()
        ))),
    }
}
