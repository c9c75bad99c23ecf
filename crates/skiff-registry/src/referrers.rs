//! OCI 1.1 referrers: an attachment as an image manifest whose `subject` names the image and
//! whose `artifactType` says what it is (cosign's: [`SIGNATURE_ARTIFACT`],
//! [`SBOM_ARTIFACT`]), with the spec's empty config. skiff writes one beside each cosign tag
//! (`.sig`, `.sbom`), which it still writes for cosign and containers/image.
//!
//! Where the list lives: a registry with the referrers API keeps it (it says so with an
//! `OCI-Subject` header on the manifest PUT, and answers `GET /v2/<name>/referrers/<digest>`);
//! for one without (distribution 2.8, the test registry here) the client keeps it, under the
//! spec's *referrers tag schema*: an image index tagged `sha256-<hex>`, updated
//! read-modify-write. Reading asks the API first and falls back to the tag when it has no
//! list to give (a 404, as the spec says, or another client error).
//!
//! A registry is not trusted with the list: it is read up to [`MAX_REFERRERS_INDEX`] bytes and
//! [`MAX_REFERRERS`] entries; an entry of a kind skiff reads must be an image manifest, is read
//! up to [`MAX_SIGNATURE_MANIFEST`] bytes by digest and checked against it, and must name this
//! image as its subject and the artifact type its entry declared. Anything else is refused with
//! the reason, not skipped: a registry answering so is not to be trusted with the rest.

use crate::error::{RegistryError, Result};
use crate::session::Session;
use crate::signatures::MAX_SIGNATURE_MANIFEST;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use serde::{Deserialize, Serialize};
use skiff_image::media;
use skiff_image::model::{Descriptor, Index, Manifest};
use skiff_store::Digest;
use std::collections::BTreeMap;

/// `artifactType` of a cosign signature referrer (one simple-signing layer).
pub const SIGNATURE_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// `artifactType` of a cosign SBOM referrer (one layer of the document's own media type).
pub const SBOM_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sbom.v1+json";
/// Largest referrers list read. An entry is 217 bytes (a signature's), so 1 MiB is ~4,800 of
/// them; an image with a few signatures and SBOMs has a handful.
pub const MAX_REFERRERS_INDEX: u64 = 1 << 20;
/// Most entries a referrers list may have.
pub const MAX_REFERRERS: usize = 256;
/// The empty config (`{}`) the spec names for artifacts without one.
const EMPTY_CONFIG: &[u8] = b"{}";

/// An image manifest with the OCI 1.1 `subject` field (the image model has no use for it).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Referrer {
    #[serde(flatten)]
    manifest: Manifest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<Descriptor>,
}

/// A referrer read and checked: its manifest digest and its layers.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub digest: Digest,
    pub layers: Vec<Descriptor>,
}

/// Whether `artifact_type` is one of an SBOM: cosign's, or a document type itself (as ORAS
/// users attach `application/spdx+json`).
pub(crate) fn is_sbom_artifact(artifact_type: &str) -> bool {
    artifact_type == SBOM_ARTIFACT || crate::attachments::format_of(artifact_type).is_some()
}

/// `sha256-<hex>`: the referrers tag of `digest`.
fn referrers_tag(digest: &Digest) -> String {
    digest.to_string().replacen(':', "-", 1)
}

impl Session {
    /// The descriptor of the manifest `digest` (media type and size), for a referrer's subject.
    pub(crate) async fn subject(&self, digest: &Digest) -> Result<Descriptor> {
        let (body, kind, actual) = self.get_manifest(&digest.to_string()).await?;
        if actual != *digest {
            return Err(crate::pull::mismatch("the manifest", digest, &actual));
        }
        Ok(Descriptor::new(&kind, actual, body.len() as u64))
    }

    /// Store `layer` (whose blob is already pushed) as a referrer of `subject`; where the
    /// registry keeps no referrers list, add it to the referrers tag. `replace`: entries of
    /// the same artifact type leave the list (an SBOM replaces the last, as cosign's `.sbom`
    /// tag does; signatures accumulate).
    pub(crate) async fn put_referrer(
        &self,
        subject: &Descriptor,
        artifact_type: &str,
        layer: Descriptor,
        replace: bool,
    ) -> Result<Digest> {
        let config = Bytes::from_static(EMPTY_CONFIG);
        let config_d = Descriptor::new(media::OCI_EMPTY, Digest::of(&config), 2);
        let progress = self.config.progress.clone();
        self.put_blob(
            &crate::manifest::blob(&config_d),
            &crate::blobs::BlobSource::Memory(config),
            &[],
            &progress,
        )
        .await?;
        let referrer = Referrer {
            manifest: Manifest {
                schema_version: 2,
                media_type: Some(media::OCI_MANIFEST.into()),
                artifact_type: Some(artifact_type.into()),
                config: config_d,
                layers: vec![layer],
                annotations: BTreeMap::new(),
            },
            subject: Some(subject.clone()),
        };
        let body = Bytes::from(serde_json::to_vec(&referrer).expect("plain JSON"));
        let digest = Digest::of(&body);
        let (_, answer) = self
            .put_manifest_answer(&digest.to_string(), &body, Some(media::OCI_MANIFEST))
            .await?;
        if answer.contains_key("oci-subject") {
            // The registry lists it itself (OCI 1.1 referrers API).
            return Ok(digest);
        }
        let tag = referrers_tag(&subject.digest);
        let mut index = match self.referrers_index(&tag).await? {
            Some(index) => index,
            None => Index {
                schema_version: 2,
                media_type: Some(media::OCI_INDEX.into()),
                manifests: Vec::new(),
                annotations: BTreeMap::new(),
            },
        };
        if replace {
            index
                .manifests
                .retain(|d| d.artifact_type.as_deref() != Some(artifact_type));
        }
        if !index.manifests.iter().any(|d| d.digest == digest) {
            let mut entry = Descriptor::new(media::OCI_MANIFEST, digest.clone(), body.len() as u64);
            entry.artifact_type = Some(artifact_type.into());
            index.manifests.push(entry);
        }
        let index = Bytes::from(serde_json::to_vec(&index).expect("plain JSON"));
        self.put_manifest(&tag, &index, Some(media::OCI_INDEX))
            .await?;
        Ok(digest)
    }

    /// The referrers list of `digest`: the registry's (API), else the referrers tag's; none:
    /// empty. Bounded and checked (see the module doc).
    pub(crate) async fn referrers(&self, digest: &Digest) -> Result<Vec<Descriptor>> {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, HeaderValue::from_static(media::OCI_INDEX));
        let what = format!("the referrers of {}@{digest}", self.repository);
        let from_api = match self
            .get_found(&format!("referrers/{digest}"), h, &what, what.clone())
            .await
        {
            Ok(resp) if resp.status().is_success() => {
                // A registry without the API may answer its catch-all with something else.
                let is_index = resp
                    .headers()
                    .get(CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|c| c.starts_with(media::OCI_INDEX));
                if is_index {
                    let name = self.peer_name();
                    let peer = crate::body::Peer {
                        name: &name,
                        what: &what,
                    };
                    let body =
                        crate::body::read_body(resp, MAX_REFERRERS_INDEX, self.config.stall, &peer)
                            .await?;
                    Some(self.check_index(&body, &what)?)
                } else {
                    None
                }
            }
            Ok(_) => None,
            // The spec's fallback is for a 404; registries without the API answer other
            // client errors too (400, 405). Falling back on them is safe: a registry can
            // always hide an attachment, which only ever denies.
            Err(RegistryError::NotFound { .. }) => None,
            Err(RegistryError::Status { status, .. }) if (400..500).contains(&status) => {
                tracing::debug!("{what}: HTTP {status}; reading the referrers tag");
                None
            }
            Err(e) => return Err(e),
        };
        let index = match from_api {
            Some(index) => Some(index),
            None => self.referrers_index(&referrers_tag(digest)).await?,
        };
        Ok(index.map(|i| i.manifests).unwrap_or_default())
    }

    /// The referrers tag's index, checked; no tag: `None`.
    async fn referrers_index(&self, tag: &str) -> Result<Option<Index>> {
        match self.get_manifest_within(tag, MAX_REFERRERS_INDEX).await {
            Ok((body, _, _)) => {
                let what = format!("the referrers tag {}:{tag}", self.repository);
                Ok(Some(self.check_index(&body, &what)?))
            }
            Err(RegistryError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn check_index(&self, body: &[u8], what: &str) -> Result<Index> {
        let index: Index = crate::pull::parse(body, "referrers list")?;
        if index
            .media_type
            .as_deref()
            .is_some_and(|m| m != media::OCI_INDEX)
        {
            return Err(RegistryError::Manifest(format!(
                "{what} is a {}, not an image index ({}); refused",
                index.media_type.unwrap_or_default(),
                media::OCI_INDEX
            )));
        }
        if index.manifests.len() > MAX_REFERRERS {
            return Err(RegistryError::Manifest(format!(
                "{what} lists {} referrers; at most {MAX_REFERRERS} are read, so it is refused \
                 (a registry serving that many is not to be trusted with the rest)",
                index.manifests.len()
            )));
        }
        Ok(index)
    }

    /// The referrers of `digest` whose artifact type `wanted` accepts, each read and checked
    /// (at most `most` of them).
    pub(crate) async fn referrers_of(
        &self,
        digest: &Digest,
        wanted: impl Fn(&str) -> bool,
        most: usize,
    ) -> Result<Vec<Found>> {
        let entries: Vec<Descriptor> = self
            .referrers(digest)
            .await?
            .into_iter()
            .filter(|d| d.artifact_type.as_deref().is_some_and(&wanted))
            .collect();
        if entries.len() > most {
            return Err(RegistryError::Manifest(format!(
                "the referrers of {}@{digest} list {} of type {}; at most {most} are read, so \
                 they are refused",
                self.repository,
                entries.len(),
                entries[0].artifact_type.as_deref().unwrap_or_default()
            )));
        }
        let mut found = Vec::new();
        for entry in entries {
            found.push(self.referrer(digest, &entry).await?);
        }
        Ok(found)
    }

    /// One referrer, read by digest and checked against its entry and its subject.
    async fn referrer(&self, subject: &Digest, entry: &Descriptor) -> Result<Found> {
        let name = format!("the referrer {}@{}", self.repository, entry.digest);
        let refuse = |why: String| Err(RegistryError::Manifest(format!("{name} {why}; refused")));
        if entry.media_type != media::OCI_MANIFEST {
            return refuse(format!(
                "is listed as a {}, not an image manifest",
                entry.media_type
            ));
        }
        if entry.size > MAX_SIGNATURE_MANIFEST {
            return Err(RegistryError::TooLarge {
                what: name,
                limit: MAX_SIGNATURE_MANIFEST,
            });
        }
        let (body, _, actual) = self
            .get_manifest_within(&entry.digest.to_string(), MAX_SIGNATURE_MANIFEST)
            .await?;
        if actual != entry.digest {
            return Err(crate::pull::mismatch(&name, &entry.digest, &actual));
        }
        let r: Referrer = crate::pull::parse(&body, "referrer manifest")?;
        match &r.subject {
            Some(s) if s.digest == *subject => {}
            Some(s) => {
                return refuse(format!(
                    "names {} as its subject, not {subject}: another image's attachment",
                    s.digest
                ))
            }
            None => return refuse("names no subject".into()),
        }
        // A manifest without an artifactType is listed as its config's media type (the spec).
        let kind = r
            .manifest
            .artifact_type
            .as_deref()
            .unwrap_or(&r.manifest.config.media_type);
        if Some(kind) != entry.artifact_type.as_deref() {
            return refuse(format!(
                "is of type {kind}, but listed as {}",
                entry.artifact_type.as_deref().unwrap_or_default()
            ));
        }
        Ok(Found {
            digest: actual,
            layers: r.manifest.layers,
        })
    }
}
