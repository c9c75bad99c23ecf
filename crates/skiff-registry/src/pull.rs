//! `pull`: manifest (the wasm entry of an index), blobs in parallel and verified, then the image
//! normalised into skiff's layout.

use crate::blobs::BlobRef;
use crate::error::{RegistryError, Result};
use crate::layout::{self, Layout, Plan};
use crate::manifest;
use crate::session::{Access, Req, Session};
use crate::signatures::Trust;
use crate::spin_files::FileSource;
use crate::store::BlobStore;
use crate::Registry;
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use skiff_image::media;
use skiff_image::model::{Descriptor, Index, Manifest};
use skiff_store::Digest;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What to pull.
pub struct PullRequest<'a> {
    pub reference: &'a str,
    pub store: &'a dyn BlobStore,
    /// For an image holding several components (Spin apps): which one.
    pub component: Option<&'a str>,
    /// The policy to check the image against, before any blob is fetched: a denied image
    /// never enters the store. `None`: not checked (`Trust::Unchecked`).
    pub policy: Option<&'a skiff_trust::Policy>,
}

/// A pulled image, in skiff's own layout, its manifest and config in the store.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The reference, fully qualified (`docker.io/library/x:latest`).
    pub reference: String,
    pub layout: Layout,
    /// The digest the registry serves for the reference (an index's, when it was one).
    pub remote_digest: Digest,
    /// skiff's manifest: the remote one for the CNCF layout, else the normalised one.
    pub manifest_digest: Digest,
    pub manifest: Bytes,
    pub wasm_digest: Digest,
    /// When the reference named an index: the platform chosen and those it held
    /// (`wasip1/wasm, of linux/amd64, wasip1/wasm`).
    pub platform: Option<String>,
    /// Blob bytes that crossed the network (0 on a re-pull).
    pub bytes_moved: u64,
    /// What the policy decided.
    pub trust: Trust,
}

impl Registry {
    pub async fn pull(&self, req: PullRequest<'_>) -> Result<Pulled> {
        let reference = crate::parse_reference(req.reference)?;
        let session = Arc::new(Session::open(self.config.clone(), &reference, Access::Pull).await?);
        let tag_or_digest = crate::signatures::tag_or_digest(&reference);
        let (body, kind, remote_digest) = session.get_manifest(&tag_or_digest).await?;
        if let Some(want) = reference.digest() {
            if *want != remote_digest {
                return Err(mismatch("the manifest", want, &remote_digest));
            }
        }
        // The digest the tag names is what signatures sign (an index's, for an index): checked
        // here, before a single blob is fetched.
        let trust = match req.policy {
            Some(policy) => {
                self.gate(&session, &reference, &remote_digest, policy)
                    .await?
            }
            None => Trust::Unchecked,
        };
        let (body, digest, platform) = session
            .platform_manifest(body, &kind, remote_digest.clone())
            .await?;
        let m: Manifest = parse(&body, "image manifest")?;
        // The config is read whole into memory: one declared larger is refused before a byte
        // of it is downloaded.
        if m.config.size > crate::MAX_CONFIG {
            return Err(RegistryError::TooLarge {
                what: format!(
                    "the image config {} (declared in the manifest)",
                    m.config.digest
                ),
                limit: crate::MAX_CONFIG,
            });
        }

        // Spin's locked app (its config, or a layer in current Spin) says which layer is which
        // component, so it comes first. Every other layout is planned from the manifest alone,
        // and its config travels with the layers, in parallel: one round trip less (a blob GET
        // costs distribution ~5 ms before its first byte).
        let locked_app = layout::spin_locked_app(&m);
        let config_fetched = locked_app.is_some_and(|d| d.digest == m.config.digest);
        let config_bytes = || read_small(req.store, &m.config.digest);
        let mut moved = 0;
        let spin_config = match locked_app {
            Some(d) => {
                if d.size > crate::MAX_CONFIG {
                    return Err(RegistryError::TooLarge {
                        what: format!(
                            "the Spin locked app {} (declared in the manifest)",
                            d.digest
                        ),
                        limit: crate::MAX_CONFIG,
                    });
                }
                moved += self
                    .fetch(&session, req.store, std::slice::from_ref(d))
                    .await?;
                Some(read_small(req.store, &d.digest)?)
            }
            None => None,
        };
        let plan = layout::plan(&m, spin_config.as_deref(), req.component)?;
        let with_config = |layers: &[Descriptor]| -> Vec<Descriptor> {
            let config = (!config_fetched).then(|| m.config.clone());
            config.into_iter().chain(layers.iter().cloned()).collect()
        };
        let (layout, manifest_bytes, wasm_digest) = match plan {
            Plan::Cncf { layer } => {
                moved += self
                    .fetch(
                        &session,
                        req.store,
                        &with_config(std::slice::from_ref(&layer)),
                    )
                    .await?;
                (Layout::Cncf, body.clone(), layer.digest)
            }
            Plan::WasmLayer {
                layout,
                layer,
                component,
                files,
            } => {
                // Read whole to be normalised: one declared larger than skiff runs is refused
                // before it is downloaded.
                if layer.size > crate::compat::MAX_WASM {
                    return Err(RegistryError::TooLarge {
                        what: format!("the wasm layer {} (declared in the manifest)", layer.digest),
                        limit: crate::compat::MAX_WASM,
                    });
                }
                // A Spin component's file layers come with it (their count and sizes checked
                // by the plan); files Spin inlined into the locked app are stored from there.
                // Spin's archive form: its archive layers, fetched whole, unpacked below.
                let mut files = files;
                let archives = match files
                    .iter()
                    .any(|f| matches!(f.source, FileSource::Archived(_)))
                {
                    true => crate::spin_files::archives(&m),
                    false => Vec::new(),
                };
                let archived: u64 = archives.iter().map(|a| a.size).sum();
                if archived > skiff_image::files::MAX_FILES_BYTES {
                    return Err(RegistryError::TooLarge {
                        what: "the Spin app's archive layers (declared in the manifest)".into(),
                        limit: skiff_image::files::MAX_FILES_BYTES,
                    });
                }
                let data = files.iter().filter_map(|f| match &f.source {
                    FileSource::Layer(l) => Some(l.clone()),
                    _ => None,
                });
                let wanted: Vec<Descriptor> = std::iter::once(layer.clone())
                    .chain(data)
                    .chain(archives.iter().cloned())
                    .collect();
                moved += self
                    .fetch(&session, req.store, &with_config(&wanted))
                    .await?;
                for f in &files {
                    if let FileSource::Inline(bytes) = &f.source {
                        put(req.store, bytes)?;
                    }
                }
                crate::spin_files::unpack(req.store, &archives, &mut files)?;
                let file_layers: Vec<Descriptor> = files.iter().map(|f| f.descriptor()).collect();
                let wasm = read_all(req.store, &layer.digest)?;
                // Artifacts carry no config to date them (`{}`): oras dates the manifest.
                let created = created(&config_bytes()?).or_else(|| {
                    m.annotations
                        .get(skiff_image::annotations::OCI_CREATED)
                        .cloned()
                });
                let (config, manifest) = layout::normalise(
                    &wasm,
                    &layer.digest,
                    created.as_deref(),
                    &layout::Source {
                        layout,
                        manifest: &digest,
                        component: component.as_deref(),
                        files: &file_layers,
                    },
                    &Default::default(),
                )?;
                put(req.store, &config)?;
                (layout, Bytes::from(manifest), layer.digest)
            }
            Plan::Compat { layers } => {
                moved += self
                    .fetch(&session, req.store, &with_config(&layers))
                    .await?;
                let config = config_bytes()?;
                let entry = crate::compat::entrypoint(&config)?;
                let store = req.store;
                let wasm = crate::compat::extract(&layers, entry.as_deref(), |i| {
                    store
                        .open(&layers[i].digest)
                        .map(|r| Box::new(r) as Box<dyn Read>)
                        .map_err(|e| RegistryError::Store(e.to_string()))
                })?;
                let wasm_digest = put(req.store, &wasm)?;
                let (config, manifest) = layout::normalise(
                    &wasm,
                    &wasm_digest,
                    created(&config).as_deref(),
                    &layout::Source {
                        layout: Layout::Compat,
                        manifest: &digest,
                        component: None,
                        files: &[],
                    },
                    &crate::compat::defaults(&config),
                )?;
                put(req.store, &config)?;
                (Layout::Compat, Bytes::from(manifest), wasm_digest)
            }
        };
        let manifest_digest = put(req.store, &manifest_bytes)?;
        let pulled: Vec<&Digest> = std::iter::once(&m.config)
            .chain(&m.layers)
            .map(|d| &d.digest)
            .collect();
        req.store
            .record_sources(&pulled, &session.registry, &session.repository);
        Ok(Pulled {
            reference: reference.to_string(),
            layout,
            remote_digest,
            manifest_digest,
            manifest: manifest_bytes,
            wasm_digest,
            platform,
            bytes_moved: moved,
            trust,
        })
    }

    /// Fetch blobs in parallel (bounded), each verified before it enters the store.
    ///
    /// When one fails, the blobs not yet started are skipped but those in flight are let
    /// finish rather than dropped mid-write: a dropped download leaves its temp file to a
    /// blocking thread that may outlive the pull, and a finished one is verified and kept, so
    /// the next pull does not fetch it again.
    async fn fetch(
        &self,
        session: &Arc<Session>,
        store: &dyn BlobStore,
        blobs: &[Descriptor],
    ) -> Result<u64> {
        let progress = self.config.progress.clone();
        let sizes: Vec<BlobRef> = blobs.iter().map(manifest::blob).collect();
        let failed = AtomicBool::new(false);
        let results: Vec<Result<u64>> = futures_util::stream::iter(sizes.iter())
            .map(|b| {
                let (progress, failed) = (progress.clone(), &failed);
                async move {
                    if failed.load(Ordering::Relaxed) {
                        return Ok(0);
                    }
                    let fetched = session.fetch_blob(b, store, &progress).await;
                    if fetched.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    fetched
                }
            })
            .buffer_unordered(self.config.max_parallel.max(1))
            .collect()
            .await;
        results.into_iter().sum()
    }
}

impl Session {
    /// For an index (`kind`), the manifest of the platform skiff runs, chosen and fetched,
    /// with the choice described; for a manifest, itself.
    pub(crate) async fn platform_manifest(
        &self,
        body: Bytes,
        kind: &str,
        digest: Digest,
    ) -> Result<(Bytes, Digest, Option<String>)> {
        if kind != media::OCI_INDEX && kind != media::DOCKER_LIST {
            return Ok((body, digest, None));
        }
        let index: Index = parse(&body, "image index")?;
        let entry = layout::choose_from_index(&index.manifests)?;
        let (b, _, d) = self.get_manifest(&entry.digest.to_string()).await?;
        if d != entry.digest {
            return Err(mismatch("the manifest", &entry.digest, &d));
        }
        Ok((b, d, Some(layout::describe_choice(entry, &index.manifests))))
    }

    /// GET a manifest with the Accept headers registries need, at most `max_manifest_size`
    /// bytes. Returns (body, media type, digest of the body).
    pub(crate) async fn get_manifest(
        &self,
        tag_or_digest: &str,
    ) -> Result<(Bytes, String, Digest)> {
        self.get_manifest_within(tag_or_digest, self.config.max_manifest_size)
            .await
    }

    /// [`Session::get_manifest`] with a limit of its own (signature manifests are smaller).
    pub(crate) async fn get_manifest_within(
        &self,
        tag_or_digest: &str,
        limit: u64,
    ) -> Result<(Bytes, String, Digest)> {
        let mut h = HeaderMap::new();
        h.insert(
            ACCEPT,
            HeaderValue::from_str(&media::MANIFEST_ACCEPT.join(", ")).expect("ASCII"),
        );
        let what = format!("manifest {}:{tag_or_digest}", self.repository);
        let missing = format!("{}:{tag_or_digest}", self.repository);
        let resp = self
            .get_found(&format!("manifests/{tag_or_digest}"), h, &what, missing)
            .await?;
        if crate::session::is_html(resp.headers()) {
            return Err(RegistryError::Html {
                url: resp.url().to_string(),
                status: resp.status().as_u16(),
            });
        }
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let name = self.peer_name();
        let peer = crate::body::Peer {
            name: &name,
            what: &format!("the manifest of {}:{tag_or_digest}", self.repository),
        };
        let body = crate::body::read_body(resp, limit, self.config.stall, &peer).await?;
        if crate::session::looks_like_html(&body) {
            return Err(RegistryError::Html {
                url: self.url(&format!("manifests/{tag_or_digest}")),
                status: 200,
            });
        }
        let kind = manifest::kind_of(content_type.as_deref(), &body);
        let digest = Digest::of(&body);
        Ok((body, kind, digest))
    }
}

impl Session {
    /// GET `path` under the repository; a 404 is [`RegistryError::NotFound`] naming `missing`.
    pub(crate) async fn get_found(
        &self,
        path: &str,
        headers: HeaderMap,
        what: &str,
        missing: String,
    ) -> Result<reqwest::Response> {
        let resp = self
            .send(Req {
                method: Method::GET,
                url: self.url(path),
                headers,
                body: None,
                what,
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(RegistryError::NotFound {
                registry: self.registry.clone(),
                what: missing,
            });
        }
        Ok(resp)
    }
}

pub(crate) fn mismatch(what: &str, expected: &Digest, actual: &Digest) -> RegistryError {
    RegistryError::DigestMismatch {
        what: what.to_string(),
        expected: expected.to_string(),
        actual: actual.to_string(),
    }
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| {
        RegistryError::Manifest(format!(
            "the registry sent an {what} skiff cannot read: {e}"
        ))
    })
}

pub(crate) fn created(config: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(config).ok()?;
    v.get("created")?.as_str().map(str::to_string)
}

fn read_all(store: &dyn BlobStore, digest: &Digest) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    store
        .open(digest)
        .and_then(|mut r| r.read_to_end(&mut out))
        .map_err(|e| RegistryError::Store(format!("reading {digest}: {e}")))?;
    Ok(out)
}

/// Configs are small; a config larger than a manifest may be is refused, not read.
fn read_small(store: &dyn BlobStore, digest: &Digest) -> Result<Vec<u8>> {
    let size = store
        .size(digest)
        .map_err(|e| RegistryError::Store(e.to_string()))?;
    if size > crate::MAX_CONFIG {
        return Err(RegistryError::TooLarge {
            what: format!("the image config {digest}"),
            limit: crate::MAX_CONFIG,
        });
    }
    read_all(store, digest)
}

/// Put bytes skiff made itself (normalised manifests and configs, extracted .wasm).
pub(crate) fn put(store: &dyn BlobStore, bytes: &[u8]) -> Result<Digest> {
    let digest = Digest::of(bytes);
    if store.has(&digest) {
        return Ok(digest);
    }
    let err = |e: std::io::Error| RegistryError::Store(format!("writing {digest}: {e}"));
    let mut w = store.writer(&digest, bytes.len() as u64).map_err(err)?;
    std::io::Write::write_all(&mut w, bytes).map_err(err)?;
    w.commit().map_err(err)?;
    Ok(digest)
}
