//! Reading back what is attached to an image: the bills of materials stored as OCI 1.1
//! referrers ([`crate::referrers`]) and as `cosign attach sbom` stores them (the tag
//! `sha256-<hex>.sbom`, one layer per document), and the number of signatures (for `skiff
//! inspect`; checking them is [`crate::signatures`]' job).
//!
//! Bounded as the signatures are: the `.sbom` manifest is read up to
//! [`MAX_SIGNATURE_MANIFEST`](crate::MAX_SIGNATURE_MANIFEST) bytes and may list at most
//! [`MAX_SBOMS`] documents; a document is read up to [`MAX_SBOM`] bytes, checked against its
//! digest. More is refused, not truncated.

use crate::error::{RegistryError, Result};
use crate::session::{Access, Session};
use crate::signatures::MAX_SIGNATURE_MANIFEST;
use crate::Registry;
use bytes::Bytes;
use skiff_image::model::{Descriptor, Manifest};
use skiff_store::Digest;

/// Largest bill of materials read (it is held in memory). skiff's own, as pushed, for a binary
/// recording 1,000 crates: 579 KB SPDX, 328 KB CycloneDX (measured); 64 MiB leaves room for
/// any real one and bounds the memory a registry can make skiff spend.
pub const MAX_SBOM: u64 = 64 << 20;
/// Most documents looked at under one image's `.sbom` tag (cosign attaches one).
pub const MAX_SBOMS: usize = 16;

/// A document attached to an image, as the registry lists it (not yet read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedSbom {
    /// The document's media type (`text/spdx+json`, `application/vnd.cyclonedx+json`, …).
    pub media_type: String,
    /// The descriptor of the document's blob.
    pub document: Descriptor,
    /// Where it was found: `host/repo:sha256-<hex>.sbom`, or `host/repo@sha256:… (OCI
    /// referrer)`.
    pub source: String,
    /// The digest of the manifest that lists it: what a signature of the SBOM signs (as
    /// `cosign sign --attachment sbom` signs the `.sbom` manifest).
    pub manifest: Digest,
    /// Signatures found for that manifest (counted by [`Registry::attachments`], not
    /// verified; 0 elsewhere).
    pub signatures: usize,
}

impl AttachedSbom {
    /// `spdx` or `cyclonedx` when its media type says so (`text/spdx+json`,
    /// `application/spdx+json`, `application/vnd.cyclonedx+json`).
    pub fn format(&self) -> Option<&'static str> {
        format_of(&self.media_type)
    }
}

/// `spdx` or `cyclonedx` for a JSON SBOM media type, else `None`.
pub(crate) fn format_of(media_type: &str) -> Option<&'static str> {
    let t = media_type;
    if t.contains("spdx") && t.ends_with("json") {
        Some("spdx")
    } else if t.contains("cyclonedx") && t.ends_with("json") {
        Some("cyclonedx")
    } else {
        None
    }
}

/// What is attached to one image in its registry.
#[derive(Debug, Clone)]
pub struct Attachments {
    /// The image's manifest digest the attachments were looked up for.
    pub digest: Digest,
    pub sboms: Vec<AttachedSbom>,
    /// Signature layers found (not verified: that is `skiff verify`'s job).
    pub signatures: usize,
}

impl Registry {
    /// What is attached to the manifest `digest` in `reference`'s repository (see the
    /// module doc; [`Registry::resolve`] gives the digest a tag names).
    pub async fn attachments(&self, reference: &str, digest: &Digest) -> Result<Attachments> {
        let reference = crate::parse_reference(reference)?;
        let session = Session::open(self.config.clone(), &reference, Access::Pull).await?;
        let mut sboms = session.attached_sboms(digest).await?;
        for sbom in &mut sboms {
            sbom.signatures = session.all_signatures(&sbom.manifest).await?.len();
        }
        let signatures = session.all_signatures(digest).await?.len();
        Ok(Attachments {
            digest: digest.clone(),
            sboms,
            signatures,
        })
    }

    /// The bytes of an attached document (at most [`MAX_SBOM`], digest checked).
    pub async fn sbom_document(&self, reference: &str, sbom: &AttachedSbom) -> Result<Bytes> {
        let reference = crate::parse_reference(reference)?;
        let session = Session::open(self.config.clone(), &reference, Access::Pull).await?;
        if sbom.document.size > MAX_SBOM {
            return Err(RegistryError::TooLarge {
                what: format!(
                    "the SBOM {} (declared in {})",
                    sbom.document.digest, sbom.source
                ),
                limit: MAX_SBOM,
            });
        }
        session.get_small_blob(&sbom.document, MAX_SBOM).await
    }
}

impl Session {
    /// The documents attached to `digest` as OCI referrers, then those under its `.sbom` tag
    /// not already listed (skiff writes both); at most [`MAX_SBOMS`] of each.
    pub(crate) async fn attached_sboms(&self, digest: &Digest) -> Result<Vec<AttachedSbom>> {
        let referrers = self
            .referrers_of(digest, crate::referrers::is_sbom_artifact, MAX_SBOMS)
            .await?;
        let mut all = Vec::new();
        for r in referrers {
            let source = format!(
                "{}/{}@{} (OCI referrer)",
                self.registry, self.repository, r.digest
            );
            for layer in r.layers {
                if all.len() == MAX_SBOMS {
                    return Err(RegistryError::Manifest(format!(
                        "the SBOM referrers of {}@{digest} list more than {MAX_SBOMS} \
                         documents; at most {MAX_SBOMS} are read, so they are refused",
                        self.repository
                    )));
                }
                all.push(AttachedSbom {
                    media_type: layer.media_type.clone(),
                    document: layer,
                    source: source.clone(),
                    manifest: r.digest.clone(),
                    signatures: 0,
                });
            }
        }
        for s in self.tagged_sboms(digest).await? {
            if !all.iter().any(|a| a.document.digest == s.document.digest) {
                all.push(s);
            }
        }
        Ok(all)
    }

    /// The documents under `digest`'s `.sbom` tag; no tag: none.
    async fn tagged_sboms(&self, digest: &Digest) -> Result<Vec<AttachedSbom>> {
        let tag = format!("{}.sbom", digest.to_string().replacen(':', "-", 1));
        let (body, manifest) = match self.get_manifest_within(&tag, MAX_SIGNATURE_MANIFEST).await {
            Ok((body, _, digest)) => (body, digest),
            Err(RegistryError::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let m: Manifest = crate::pull::parse(&body, "SBOM manifest")?;
        if m.layers.len() > MAX_SBOMS {
            return Err(RegistryError::Manifest(format!(
                "the SBOM manifest {}:{tag} lists {} documents; at most {MAX_SBOMS} are read, \
                 so it is refused",
                self.repository,
                m.layers.len()
            )));
        }
        let source = format!("{}/{}:{tag}", self.registry, self.repository);
        Ok(m.layers
            .into_iter()
            .map(|layer| AttachedSbom {
                media_type: layer.media_type.clone(),
                document: layer,
                source: source.clone(),
                manifest: manifest.clone(),
                signatures: 0,
            })
            .collect())
    }
}
