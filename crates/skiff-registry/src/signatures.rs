//! cosign signatures where cosign and containers/image keep them: the manifest tagged
//! `sha256-<hex>.sig` in the image's repository, whose layers are simple-signing payloads
//! (`application/vnd.dev.cosign.simplesigning.v1+json`), each carrying its base64 signature in
//! the `dev.cosignproject.cosign/signature` annotation; and the same layers as OCI 1.1
//! referrers ([`crate::referrers`]), written beside the tag and read with it.
//!
//! A registry is not trusted to be reasonable: the signature manifest is read up to
//! [`MAX_SIGNATURE_MANIFEST`] bytes, at most [`MAX_SIGNATURES`] layers are looked at, and each
//! payload is read up to [`MAX_PAYLOAD`] bytes and checked against its digest. More is refused,
//! not truncated: a genuine signature manifest is ~1 KiB per signature, a payload ~300 bytes.

use crate::error::{RegistryError, Result};
use crate::session::{Access, Purpose, Req, Session};
use crate::Registry;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT};
use reqwest::Method;
use skiff_image::media;
use skiff_image::model::{Descriptor, Manifest};
use skiff_store::Digest;
use skiff_trust::Signed;
use std::collections::BTreeMap;

/// The media type of a signature layer.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation holding a layer's signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Largest signature manifest read (a genuine one is ~1 KiB per signature; with a Rekor
/// bundle and a certificate, ~6 KiB).
pub const MAX_SIGNATURE_MANIFEST: u64 = 256 << 10;
/// Most signatures looked at for one image.
pub const MAX_SIGNATURES: usize = 64;
/// Largest payload read (a simple-signing payload is ~300 bytes).
pub const MAX_PAYLOAD: u64 = 64 << 10;

/// What the policy decided at pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// No policy was given to the pull.
    Unchecked,
    /// Signatures were required and verified.
    Verified(skiff_trust::Accepted),
    /// The rule accepts anything; `signed` says whether a signature tag exists (unverified).
    AcceptedAnything { scope: String, signed: bool },
}

/// A signature or document attached by [`Registry::attach_signature`] or [`Registry::attach`].
#[derive(Debug, Clone)]
pub struct Attached {
    /// `host/repo:sha256-<hex>.sig`.
    pub reference: String,
    /// The signature manifest's digest.
    pub digest: Digest,
    /// Layers now under the tag (for signatures: the new one included).
    pub count: usize,
    /// The OCI 1.1 referrer written beside the tag (see [`crate::referrers`]).
    pub referrer: Digest,
}

impl Registry {
    /// The manifest digest `reference` names in its registry (for a tag, what it points to now).
    pub async fn resolve(&self, reference: &str) -> Result<(crate::Reference, Digest)> {
        let reference = crate::parse_reference(reference)?;
        let session = Session::open(self.config.clone(), &reference, Access::Pull).await?;
        let (_, _, digest) = session.get_manifest(&tag_or_digest(&reference)).await?;
        if let Some(want) = reference.digest() {
            if *want != digest {
                return Err(RegistryError::DigestMismatch {
                    what: "the manifest".into(),
                    expected: want.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        Ok((reference, digest))
    }

    /// The signatures stored for `digest` in `reference`'s repository, under its `.sig` tag
    /// and as OCI referrers (none: an empty list).
    pub async fn signatures(&self, reference: &str, digest: &Digest) -> Result<Vec<Signed>> {
        let reference = crate::parse_reference(reference)?;
        let session = Session::open(self.config.clone(), &reference, Access::Pull).await?;
        session.all_signatures(digest).await
    }

    /// What a node needs to check a binary of `reference` under its own policy, offline
    /// ([`skiff_trust::Evidence`]): the manifest the reference names, byte for byte (for an
    /// index, then the platform manifest pull chooses from it) and the signatures of its `.sig`
    /// tag. Manifests are read up to [`skiff_trust::evidence::MAX_EVIDENCE`] bytes, signatures
    /// as the pull's gate reads them.
    pub async fn evidence(&self, reference: &str) -> Result<skiff_trust::Evidence> {
        let reference = crate::parse_reference(reference)?;
        let session = Session::open(self.config.clone(), &reference, Access::Pull).await?;
        let limit = skiff_trust::evidence::MAX_EVIDENCE as u64;
        let (body, kind, digest) = session
            .get_manifest_within(&tag_or_digest(&reference), limit)
            .await?;
        if let Some(want) = reference.digest() {
            if *want != digest {
                return Err(crate::pull::mismatch("the manifest", want, &digest));
            }
        }
        let mut manifests = vec![body.to_vec()];
        let (platform, platform_digest, _) = session
            .platform_manifest(body, &kind, digest.clone())
            .await?;
        if platform_digest != digest {
            manifests.push(platform.to_vec());
        }
        let signatures = session.signatures(&digest).await?.1;
        Ok(skiff_trust::Evidence {
            reference,
            manifests,
            signatures,
        })
    }

    /// Add a signature of `digest` to its `.sig` tag, keeping those already there (as cosign
    /// does). Signing the same payload with the same signature again changes nothing.
    pub async fn attach_signature(
        &self,
        reference: &str,
        digest: &Digest,
        payload: Vec<u8>,
        signature: String,
    ) -> Result<Attached> {
        let session = self.push_session(reference).await?;
        let tag = skiff_trust::signature_tag(digest);
        let (existing, _) = session.signatures(digest).await?;
        let payload = Bytes::from(payload);
        let mut layer = Descriptor::new(SIMPLE_SIGNING, Digest::of(&payload), payload.len() as u64);
        layer
            .annotations
            .insert(SIGNATURE_ANNOTATION.into(), signature);
        let mut layers = existing.map(|m| m.layers).unwrap_or_default();
        if !layers.contains(&layer) {
            layers.push(layer.clone());
        }
        if layers.len() > MAX_SIGNATURES {
            return Err(RegistryError::Manifest(format!(
                "{tag} already holds {} signatures, the most skiff reads is {MAX_SIGNATURES}; \
                 delete the tag's old signatures first",
                layers.len() - 1
            )));
        }
        let referrer = (digest, crate::referrers::SIGNATURE_ARTIFACT, false);
        self.put_attachment(&session, &tag, layers, (layer, payload), referrer)
            .await
    }

    /// Attach a document to `digest` as cosign attaches one: the tag `sha256-<hex>.SUFFIX`
    /// (`sbom`) holding one layer of `media_type`, replacing what the tag held; and as an OCI
    /// referrer of cosign's artifact type for it (`application/vnd.dev.cosign.artifact.SUFFIX.v1+json`),
    /// replacing earlier ones of that type in the referrers tag.
    pub async fn attach(
        &self,
        reference: &str,
        digest: &Digest,
        suffix: &str,
        media_type: &str,
        document: Vec<u8>,
    ) -> Result<Attached> {
        let session = self.push_session(reference).await?;
        let tag = format!("{}.{suffix}", digest.to_string().replacen(':', "-", 1));
        let document = Bytes::from(document);
        let layer = Descriptor::new(media_type, Digest::of(&document), document.len() as u64);
        let artifact = format!("application/vnd.dev.cosign.artifact.{suffix}.v1+json");
        let layers = vec![layer.clone()];
        self.put_attachment(
            &session,
            &tag,
            layers,
            (layer, document),
            (digest, &artifact, true),
        )
        .await
    }

    async fn push_session(&self, reference: &str) -> Result<Session> {
        let reference = crate::parse_reference(reference)?;
        let purpose = Purpose {
            access: Access::Push,
            offline: false,
            mount_from: &[],
        };
        Session::open_with(self.config.clone(), &reference, purpose).await
    }

    /// Store an attachment both places clients look. Cosign's: a manifest under `tag` with its
    /// config (an image config whose rootfs lists the layers, as cosign writes), the one new
    /// layer's blob, the manifest. OCI 1.1's: the new layer as a referrer of `subject` of type
    /// `artifact` (`replace`: earlier referrers of that type leave the referrers tag).
    async fn put_attachment(
        &self,
        session: &Session,
        tag: &str,
        layers: Vec<Descriptor>,
        (new, bytes): (Descriptor, Bytes),
        (subject, artifact, replace): (&Digest, &str, bool),
    ) -> Result<Attached> {
        let config = serde_json::json!({
            "architecture": "", "os": "", "config": {},
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.digest.to_string()).collect::<Vec<_>>()},
        });
        let config = Bytes::from(serde_json::to_vec(&config).expect("plain JSON"));
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.into()),
            artifact_type: None,
            config: Descriptor::new(media::OCI_CONFIG, Digest::of(&config), config.len() as u64),
            layers,
            annotations: BTreeMap::new(),
        };
        let progress = self.config.progress.clone();
        let memory = |b: &Bytes| crate::blobs::BlobSource::Memory(b.clone());
        for (d, b) in [(&manifest.config, &config), (&new, &bytes)] {
            session
                .put_blob(&crate::manifest::blob(d), &memory(b), &[], &progress)
                .await?;
        }
        let body = Bytes::from(serde_json::to_vec(&manifest).expect("plain JSON"));
        let digest = session
            .put_manifest(tag, &body, Some(media::OCI_MANIFEST))
            .await?;
        let subject = session.subject(subject).await?;
        let referrer = session
            .put_referrer(&subject, artifact, new, replace)
            .await?;
        Ok(Attached {
            reference: format!("{}/{}:{tag}", session.registry, session.repository),
            digest,
            count: manifest.layers.len(),
            referrer,
        })
    }

    /// The pull's gate: the rule for `reference` checked before any blob is fetched.
    pub(crate) async fn gate(
        &self,
        session: &Session,
        reference: &crate::Reference,
        digest: &Digest,
        policy: &skiff_trust::Policy,
    ) -> Result<Trust> {
        let rule = policy.rule_for(reference);
        if rule.accepts_anything() {
            let signed = session
                .has_manifest(&skiff_trust::signature_tag(digest))
                .await?
                || session.has_signature_referrer(digest).await;
            return Ok(Trust::AcceptedAnything {
                scope: rule.scope_name(),
                signed,
            });
        }
        let signatures = if rule.needs_signatures() {
            session.all_signatures(digest).await?
        } else {
            Vec::new()
        };
        rule.check(reference, digest, &signatures)
            .map(Trust::Verified)
            .map_err(RegistryError::Untrusted)
    }
}

pub(crate) fn tag_or_digest(reference: &crate::Reference) -> String {
    reference
        .digest()
        .map(|d| d.to_string())
        .or(reference.tag().map(str::to_string))
        .unwrap_or_else(|| "latest".into())
}

impl Session {
    /// The signature manifest of `digest` and its signatures, bounded (see the module doc).
    /// No `.sig` tag: `(None, [])`.
    pub(crate) async fn signatures(
        &self,
        digest: &Digest,
    ) -> Result<(Option<Manifest>, Vec<Signed>)> {
        let tag = skiff_trust::signature_tag(digest);
        let body = match self.get_manifest_within(&tag, MAX_SIGNATURE_MANIFEST).await {
            Ok((body, _, _)) => body,
            Err(RegistryError::NotFound { .. }) => return Ok((None, Vec::new())),
            Err(e) => return Err(e),
        };
        let m: Manifest = crate::pull::parse(&body, "signature manifest")?;
        if m.layers.len() > MAX_SIGNATURES {
            return Err(RegistryError::Manifest(format!(
                "the signature manifest {}:{tag} has {} layers; at most {MAX_SIGNATURES} \
                 signatures are read, so it is refused (a registry serving that many is not \
                 to be trusted with the rest)",
                self.repository,
                m.layers.len()
            )));
        }
        let out = self.signed(&m.layers, &tag).await?;
        Ok((Some(m), out))
    }

    /// The signatures of `digest` under its `.sig` tag and as OCI referrers, each once; at most
    /// [`MAX_SIGNATURES`] in all.
    pub(crate) async fn all_signatures(&self, digest: &Digest) -> Result<Vec<Signed>> {
        let mut all = self.signatures(digest).await?.1;
        let referrers = self
            .referrers_of(
                digest,
                |t| t == crate::referrers::SIGNATURE_ARTIFACT,
                MAX_SIGNATURES,
            )
            .await?;
        let too_many = |n: usize| {
            RegistryError::Manifest(format!(
                "{}@{digest} has {n} signatures under its .sig tag and as referrers; at most \
                 {MAX_SIGNATURES} are read, so they are refused",
                self.repository
            ))
        };
        for r in referrers {
            if r.layers.len() > MAX_SIGNATURES {
                return Err(too_many(r.layers.len()));
            }
            for s in self.signed(&r.layers, &r.digest.to_string()).await? {
                if !all
                    .iter()
                    .any(|a| a.payload == s.payload && a.signature == s.signature)
                {
                    all.push(s);
                }
            }
            if all.len() > MAX_SIGNATURES {
                return Err(too_many(all.len()));
            }
        }
        Ok(all)
    }

    /// Whether a signature referrer of `digest` is listed (for the unsigned note: a list that
    /// cannot be read counts as none, and is refused where signatures are required).
    async fn has_signature_referrer(&self, digest: &Digest) -> bool {
        match self.referrers(digest).await {
            Ok(list) => list
                .iter()
                .any(|d| d.artifact_type.as_deref() == Some(crate::referrers::SIGNATURE_ARTIFACT)),
            Err(e) => {
                tracing::debug!("the referrers of {digest}: {e}");
                false
            }
        }
    }

    /// The signatures among `layers` (of the manifest `from`), their payloads read bounded.
    async fn signed(&self, layers: &[Descriptor], from: &str) -> Result<Vec<Signed>> {
        let mut out = Vec::new();
        for layer in layers {
            let Some(signature) = layer.annotations.get(SIGNATURE_ANNOTATION) else {
                continue;
            };
            if layer.media_type != SIMPLE_SIGNING {
                continue;
            }
            if layer.size > MAX_PAYLOAD {
                return Err(RegistryError::TooLarge {
                    what: format!(
                        "the signature payload {} (declared in {from})",
                        layer.digest
                    ),
                    limit: MAX_PAYLOAD,
                });
            }
            let payload = self.get_small_blob(layer, MAX_PAYLOAD).await?;
            out.push(Signed {
                payload: payload.to_vec(),
                signature: signature.clone(),
            });
        }
        Ok(out)
    }

    /// HEAD a manifest: true if the tag or digest exists.
    pub(crate) async fn has_manifest(&self, tag: &str) -> Result<bool> {
        let mut h = HeaderMap::new();
        h.insert(
            ACCEPT,
            HeaderValue::from_str(&media::MANIFEST_ACCEPT.join(", ")).expect("ASCII"),
        );
        let resp = self
            .send(Req {
                method: Method::HEAD,
                url: self.url(&format!("manifests/{tag}")),
                headers: h,
                body: None,
                what: &format!("manifest {}:{tag}", self.repository),
            })
            .await?;
        Ok(resp.status().is_success())
    }

    /// A small blob read into memory (at most `limit` bytes), its digest checked.
    pub(crate) async fn get_small_blob(&self, d: &Descriptor, limit: u64) -> Result<Bytes> {
        let what = format!("blob {}", d.digest);
        let missing = format!("blob {} of {}", d.digest, self.repository);
        let resp = self
            .get_found(
                &format!("blobs/{}", d.digest),
                HeaderMap::new(),
                &what,
                missing,
            )
            .await?;
        let name = self.peer_name();
        let peer = crate::body::Peer {
            name: &name,
            what: &what,
        };
        let body =
            crate::body::read_body(resp, limit.min(d.size), self.config.stall, &peer).await?;
        let actual = Digest::of(&body);
        if actual != d.digest {
            return Err(crate::pull::mismatch(&what, &d.digest, &actual));
        }
        Ok(body)
    }
}
