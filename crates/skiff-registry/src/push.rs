//! `push`: every blob HEADed first (skipped if present), mounted from a sibling repository when
//! the store knows one, uploaded otherwise; then the manifest.

use crate::blobs::BlobSource;
use crate::error::{RegistryError, Result};
use crate::progress::BlobOutcome;
use crate::session::{Access, Purpose, Req, Session};
use crate::store::BlobStore;
use crate::Registry;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use skiff_image::compat::{CompatConfig, CompatImage};
use skiff_image::media;
use skiff_image::model::{Descriptor, Manifest, WasmConfig};
use skiff_store::Digest;
use std::sync::Arc;

/// The layout to push in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PushFormat {
    /// skiff's own: the CNCF Wasm layout, byte for byte as stored.
    #[default]
    Cncf,
    /// Docker's compat layout (a tar layer), for containerd 1.6 and Docker. Its platform is
    /// `wasi/wasm` unless `platform` (os, architecture) names another: Debian's Docker 20.10
    /// refuses to pull an image whose os is `wasi`, and Kubernetes nodes unpack only their own
    /// platform, so such users publish it as `linux/amd64` (skiff reads the binary, never the
    /// platform).
    Compat { platform: Option<(String, String)> },
}

pub struct PushRequest<'a> {
    pub reference: &'a str,
    /// The image's manifest (skiff's layout), its blobs in `store`.
    pub manifest: Bytes,
    pub store: &'a dyn BlobStore,
    pub format: PushFormat,
}

#[derive(Debug, Clone)]
pub struct Pushed {
    pub reference: String,
    /// The digest of the manifest as pushed.
    pub digest: Digest,
    pub bytes_moved: u64,
    pub blobs: Vec<(Digest, BlobOutcome)>,
}

impl Registry {
    pub async fn push(&self, req: PushRequest<'_>) -> Result<Pushed> {
        let reference = crate::parse_reference(req.reference)?;
        if reference.digest().is_some() {
            return Err(RegistryError::Reference {
                reference: req.reference.into(),
                reason: "push to a tag, not a digest".into(),
            });
        }
        let m: Manifest = serde_json::from_slice(&req.manifest).map_err(|e| {
            RegistryError::Manifest(format!("the local manifest is not readable: {e}"))
        })?;
        let (manifest_bytes, blobs): (Bytes, Vec<ToPush>) = match req.format {
            PushFormat::Cncf => (
                req.manifest.clone(),
                std::iter::once(&m.config)
                    .chain(&m.layers)
                    .map(|d| (d.clone(), None))
                    .collect(),
            ),
            PushFormat::Compat { platform } => {
                compat_blobs(&reference, &m, req.store, platform.as_ref())?
            }
        };
        // Repositories of this registry the store knows hold some of these blobs: mount sources,
        // which a token must cover too.
        // Read once per push: the same lists decide each blob's mount attempts below.
        let registry = crate::session::api_host(reference.registry());
        let sources: Vec<Vec<String>> = blobs
            .iter()
            .map(|(d, _)| {
                req.store
                    .sources(&d.digest)
                    .into_iter()
                    .filter(|(r, _)| r == registry)
                    .map(|(_, repo)| repo)
                    .collect()
            })
            .collect();
        let mount_from: Vec<String> = sources.concat();
        let purpose = Purpose {
            access: Access::Push,
            offline: false,
            mount_from: &mount_from,
        };
        let session = Arc::new(Session::open_with(self.config.clone(), &reference, purpose).await?);
        let progress = self.config.progress.clone();
        let store = req.store;
        let outcomes: Vec<(Digest, BlobOutcome, u64)> =
            futures_util::stream::iter(blobs.into_iter().zip(sources))
                .map(|((d, mem), mount_from)| {
                    let session = session.clone();
                    let progress = progress.clone();
                    async move {
                        let source = match mem {
                            Some(b) => BlobSource::Memory(b),
                            None => BlobSource::Store(store),
                        };
                        let outcome = session
                            .put_blob(&crate::manifest::blob(&d), &source, &mount_from, &progress)
                            .await?;
                        let moved = if outcome == BlobOutcome::Transferred {
                            d.size
                        } else {
                            0
                        };
                        Ok::<_, RegistryError>((d.digest, outcome, moved))
                    }
                })
                .buffer_unordered(self.config.max_parallel.max(1))
                .try_collect()
                .await?;
        let digest = session
            .put_manifest(
                reference.tag().unwrap_or("latest"),
                &manifest_bytes,
                m.media_type.as_deref(),
            )
            .await?;
        let pushed: Vec<&Digest> = outcomes.iter().map(|(d, _, _)| d).collect();
        store.record_sources(&pushed, &session.registry, &session.repository);
        Ok(Pushed {
            reference: reference.to_string(),
            digest,
            bytes_moved: outcomes.iter().map(|o| o.2).sum(),
            blobs: outcomes.into_iter().map(|(d, o, _)| (d, o)).collect(),
        })
    }
}

/// A blob to push: from the store (`None`), or bytes made for this push.
type ToPush = (Descriptor, Option<Bytes>);

/// The compat image's manifest and its (in-memory) config and layer, built by the image
/// crate's compat writer from the image's one wasm layer.
fn compat_blobs(
    reference: &skiff_image::Reference,
    m: &Manifest,
    store: &dyn BlobStore,
    platform: Option<&(String, String)>,
) -> Result<(Bytes, Vec<ToPush>)> {
    let layer = match m.layers.as_slice() {
        [l] if l.media_type == media::WASM_LAYER => l,
        _ => {
            return Err(RegistryError::Manifest(
                "--format compat needs an image with exactly one application/wasm layer".into(),
            ))
        }
    };
    let mut wasm = Vec::new();
    store
        .open(&layer.digest)
        .and_then(|mut r| std::io::Read::read_to_end(&mut r, &mut wasm))
        .map_err(|e| RegistryError::Store(format!("reading {}: {e}", layer.digest)))?;
    let config: Option<WasmConfig> = store
        .open(&m.config.digest)
        .ok()
        .and_then(|r| serde_json::from_reader(r).ok());
    // The image's defaults (args, env) become the compat config's `Cmd` and `Env`.
    let defaults = skiff_image::annotations::Defaults::from_annotations(&m.annotations)
        .map_err(|e| RegistryError::Manifest(e.to_string()))?;
    let image = CompatImage::new(CompatConfig::of_image(
        reference.to_string(),
        layer,
        wasm,
        config.as_ref(),
        &defaults,
        platform,
    ))
    .map_err(|e| RegistryError::CompatLayer(e.to_string()))?;
    Ok((
        Bytes::from(image.manifest.bytes),
        vec![
            (
                image.config.descriptor(),
                Some(Bytes::from(image.config.bytes)),
            ),
            (
                image.layer.descriptor(),
                Some(Bytes::from(image.layer.bytes)),
            ),
        ],
    ))
}

impl Session {
    /// PUT the manifest under `tag`; returns its digest.
    pub(crate) async fn put_manifest(
        &self,
        tag: &str,
        body: &Bytes,
        media_type: Option<&str>,
    ) -> Result<Digest> {
        Ok(self.put_manifest_answer(tag, body, media_type).await?.0)
    }

    /// [`Session::put_manifest`], with the answer's headers (`OCI-Subject`: the registry
    /// keeps the referrers list itself).
    pub(crate) async fn put_manifest_answer(
        &self,
        tag: &str,
        body: &Bytes,
        media_type: Option<&str>,
    ) -> Result<(Digest, HeaderMap)> {
        let mut h = HeaderMap::new();
        let ct = media_type.unwrap_or(media::OCI_MANIFEST);
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_str(ct)
                .map_err(|_| RegistryError::Manifest(format!("bad media type {ct:?}")))?,
        );
        let what = format!("manifest {}:{tag}", self.repository);
        let resp = self
            .send(Req {
                method: Method::PUT,
                url: self.url(&format!("manifests/{tag}")),
                headers: h,
                body: Some(body.clone()),
                what: &what,
            })
            .await?;
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(self.status_error(resp, &what).await);
        }
        Ok((Digest::of(body), resp.headers().clone()))
    }
}
