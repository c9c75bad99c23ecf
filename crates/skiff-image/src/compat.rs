//! Docker's Wasm "compat" image layout, as an OCI image-layout tar.
//!
//! An ordinary OCI image whose config says `os: wasi, architecture: wasm`, holding one
//! uncompressed tar layer with the `.wasm` at the root, and an entrypoint naming it. This is the
//! layout containerd 1.6 (Debian 12's) can unpack: it refuses images whose config is
//! `application/vnd.wasm.config.v0+json` ("mismatched image rootfs and manifest layers"), because
//! it unpacks every layer as a tar into a snapshot. The skiff containerd shim then finds the
//! `.wasm` in the container's rootfs through `process.args[0]`.
//!
//! `skiff push --format compat` pushes its blobs (`skiff-registry`); `layout_tar` writes them
//! for `ctr images import` (the shim's tests, `examples/compat-tar.rs`). Reading this layout on
//! pull is the registry client's (`skiff-registry/src/compat.rs`).
//!
//! ```no_run
//! let wasm = std::fs::read("hello.wasm").unwrap();
//! let image = skiff_image::compat::CompatImage::new(skiff_image::compat::CompatConfig {
//!     name: "registry.example.com/team/hello:1.0".into(),
//!     wasm,
//!     ..Default::default()
//! })
//! .unwrap();
//! std::fs::write("hello.tar", image.layout_tar().unwrap()).unwrap(); // ctr images import hello.tar
//! ```
//!
//! Everything is deterministic: the same inputs give the same digests (timestamps are the Unix
//! epoch unless `created` is given), so re-importing an unchanged image is a no-op.

use crate::archive::{append_blob, file_header, name_annotations, write_layout_head, ArchiveError};
use crate::media;
use crate::model::{to_canonical_json, Annotations, Descriptor, Index, Manifest, Platform};
use crate::reference::Reference;
use serde_json::{json, Value};
use skiff_store::Digest;

/// The layer is uncompressed: a Wasm binary gains little from gzip and containerd unpacks it
/// either way.
const LAYER_MEDIA_TYPE: &str = media::OCI_LAYER_TAR;

/// What goes into a compat image.
#[derive(Debug, Clone)]
pub struct CompatConfig {
    /// The full image reference, such as `registry.example.com/team/hello:1.0`; written to
    /// `index.json` so that `ctr images import` names the image.
    pub name: String,
    /// The Wasm binary.
    pub wasm: Vec<u8>,
    /// Its file name at the root of the image's filesystem; the entrypoint is `/<file_name>`.
    pub file_name: String,
    /// Default arguments after the binary (the image's `Cmd`).
    pub args: Vec<String>,
    /// Default environment, `K=V` each (the image's `Env`).
    pub env: Vec<String>,
    /// Ports the image serves on, `PORT/tcp` each (the image's `ExposedPorts`: what `docker run
    /// -P` publishes).
    pub exposed_ports: Vec<String>,
    /// RFC 3339 creation time; `None` writes the Unix epoch so builds are reproducible.
    pub created: Option<String>,
    /// The image's platform, `wasi`/`wasm` by default. Kubernetes' image pulls (containerd's
    /// CRI plugin) only unpack images for the node's own platform, so an image meant for
    /// Kubernetes nodes on containerd 1.x/2.x is published as `linux`/`amd64` (or `arm64`):
    /// the skiff shim reads the binary, never the platform. See docs/containerd.md.
    pub os: String,
    pub architecture: String,
}

impl Default for CompatConfig {
    fn default() -> Self {
        CompatConfig {
            name: String::new(),
            wasm: Vec::new(),
            file_name: "app.wasm".into(),
            args: Vec::new(),
            env: Vec::new(),
            exposed_ports: Vec::new(),
            created: None,
            os: "wasi".into(),
            architecture: "wasm".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CompatError {
    #[error("image name is empty: give a reference such as registry.example.com/team/app:1.0")]
    EmptyName,
    #[error("image name {0:?} has whitespace or control characters")]
    BadName(String),
    #[error(
        "file name {0:?} must be a plain file name such as app.wasm (no `/`, not `.` or `..`)"
    )]
    BadFileName(String),
    #[error("the input is not a WebAssembly binary (it does not start with \\0asm)")]
    NotWasm,
    #[error("the platform needs both an os and an architecture, e.g. wasi/wasm or linux/amd64")]
    BadPlatform,
    #[error("environment entry {0:?} must be K=V with a non-empty K")]
    BadEnv(String),
    #[error("cannot write the layer's tar: {0}")]
    Tar(#[from] std::io::Error),
}

/// One content-addressed blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub media_type: &'static str,
    pub digest: Digest,
    pub bytes: Vec<u8>,
}

impl Blob {
    fn new(media_type: &'static str, bytes: Vec<u8>) -> Blob {
        Blob {
            media_type,
            digest: Digest::of(&bytes),
            bytes,
        }
    }

    /// An OCI descriptor for this blob.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            self.media_type,
            self.digest.clone(),
            self.bytes.len() as u64,
        )
    }
}

/// A built compat image: its three blobs. The registry code pushes these; `layout_tar` writes
/// them as an OCI image layout for `ctr images import`.
#[derive(Debug, Clone)]
pub struct CompatImage {
    pub name: String,
    pub platform: Platform,
    pub manifest: Blob,
    pub config: Blob,
    pub layer: Blob,
}

impl CompatImage {
    pub fn new(c: CompatConfig) -> Result<CompatImage, CompatError> {
        validate(&c)?;
        let created = c
            .created
            .clone()
            .unwrap_or_else(|| "1970-01-01T00:00:00Z".into());
        let layer = Blob::new(LAYER_MEDIA_TYPE, layer_tar(&c.file_name, &c.wasm)?);
        let entrypoint = format!("/{}", c.file_name);
        let mut image_config = json!({"Entrypoint": [entrypoint]});
        if !c.args.is_empty() {
            image_config["Cmd"] = json!(c.args);
        }
        if !c.env.is_empty() {
            image_config["Env"] = json!(c.env);
        }
        if !c.exposed_ports.is_empty() {
            let ports: serde_json::Map<String, Value> = c
                .exposed_ports
                .iter()
                .map(|p| (p.clone(), json!({})))
                .collect();
            image_config["ExposedPorts"] = Value::Object(ports);
        }
        let config = json!({
            "created": created,
            "architecture": c.architecture,
            "os": c.os,
            "config": image_config,
            // The layer is uncompressed, so its diff ID is its digest.
            "rootfs": {"type": "layers", "diff_ids": [layer.digest.to_string()]},
            "history": [{"created": created, "created_by": format!("skiff: COPY {} /", c.file_name)}],
        });
        let config = Blob::new(media::OCI_CONFIG, to_bytes(&config));
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.into()),
            artifact_type: None,
            config: config.descriptor(),
            layers: vec![layer.descriptor()],
            annotations: Annotations::new(),
        };
        let manifest = Blob::new(media::OCI_MANIFEST, to_canonical_json(&manifest));
        Ok(CompatImage {
            platform: Platform {
                architecture: c.architecture,
                os: c.os,
                variant: None,
            },
            name: c.name,
            manifest,
            config,
            layer,
        })
    }

    /// `index.json` of the image layout: one manifest, platform `wasi/wasm`, named.
    pub fn index_json(&self) -> Vec<u8> {
        to_canonical_json(&self.index())
    }

    fn index(&self) -> Index {
        let desc = Descriptor {
            platform: Some(self.platform.clone()),
            annotations: name_annotations(&self.name, tag_of(&self.name).as_deref()),
            ..self.manifest.descriptor()
        };
        Index {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.into()),
            manifests: vec![desc],
            annotations: Annotations::new(),
        }
    }

    /// The whole OCI image layout as a tar (`oci-layout`, `index.json`, `blobs/sha256/*`).
    pub fn layout_tar(&self) -> Result<Vec<u8>, ArchiveError> {
        let mut b = write_layout_head(Vec::new(), &self.index())?;
        for blob in [&self.manifest, &self.config, &self.layer] {
            let size = blob.bytes.len() as u64;
            append_blob(&mut b, &blob.digest, size, &blob.bytes[..])?;
        }
        b.into_inner().map_err(|source| ArchiveError::Io {
            context: "cannot write the compat layout".into(),
            source,
        })
    }
}

impl CompatConfig {
    /// The compat form of a stored image in skiff's layout (its one `application/wasm` layer's
    /// bytes, the layer's descriptor for its file name, its config for os and creation time, its
    /// defaults), for `push --format compat` and `save --format docker` alike. `platform` (os,
    /// architecture) replaces `wasi/wasm` when given.
    ///
    /// The image's default args and env become `Cmd` and `Env`, so that `docker run IMAGE` with
    /// nothing more runs as `skiff run IMAGE` does (Docker's rules are skiff's: args given
    /// replace `Cmd`, `-e` overrides one variable). A wasi:http component exposes the port the
    /// runtimes serve it on by default.
    pub fn of_image(
        name: String,
        layer: &Descriptor,
        wasm: Vec<u8>,
        config: Option<&crate::model::WasmConfig>,
        defaults: &crate::annotations::Defaults,
        platform: Option<&(String, String)>,
    ) -> CompatConfig {
        let file_name = layer
            .annotations
            .get(crate::annotations::OCI_TITLE)
            .cloned()
            .unwrap_or_else(|| "app.wasm".into());
        let serves_http =
            skiff_wasm::inspect(&wasm).is_ok_and(|info| info.kind == skiff_wasm::Kind::HttpHandler);
        CompatConfig {
            name,
            wasm,
            file_name,
            args: defaults.args.clone().unwrap_or_default(),
            env: defaults
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
            exposed_ports: if serves_http {
                vec![format!("{}/tcp", skiff_spec::DEFAULT_HTTP_PORT)]
            } else {
                Vec::new()
            },
            // Docker names wasm platforms `wasi/wasm`; containerd 1.6 matches on it.
            os: match (platform, config.map(|c| c.os.as_str())) {
                (Some((os, _)), _) => os.clone(),
                (None, None | Some("wasip1" | "wasip2")) => "wasi".into(),
                (None, Some(other)) => other.into(),
            },
            architecture: platform.map_or_else(|| "wasm".into(), |(_, arch)| arch.clone()),
            created: config.map(|c| c.created.clone()),
        }
    }
}

/// Images in the tar `docker load` reads (Docker's own archive: `manifest.json`, each config as
/// `<hex>.json`, each layer as `<hex>/layer.tar`), which Docker 20.10 needs: it loads no OCI
/// layout.
pub fn docker_archive(images: &[CompatImage]) -> Result<Vec<u8>, ArchiveError> {
    let io = |source| ArchiveError::Io {
        context: "cannot write the docker archive".into(),
        source,
    };
    let mut b = tar::Builder::new(Vec::new());
    let mut manifest = Vec::new();
    let mut written = std::collections::BTreeSet::new();
    for image in images {
        let config = format!("{}.json", image.config.digest.hex());
        let layer = format!("{}/layer.tar", image.layer.digest.hex());
        for (path, bytes) in [(&config, &image.config.bytes), (&layer, &image.layer.bytes)] {
            if written.insert(path.clone()) {
                let mut h = file_header(bytes.len() as u64);
                b.append_data(&mut h, path, &bytes[..]).map_err(io)?;
            }
        }
        manifest.push(json!({"Config": config, "RepoTags": [image.name], "Layers": [layer]}));
    }
    let manifest = to_bytes(&json!(manifest));
    let mut h = file_header(manifest.len() as u64);
    b.append_data(&mut h, "manifest.json", &manifest[..])
        .map_err(io)?;
    b.into_inner().map_err(io)
}

fn validate(c: &CompatConfig) -> Result<(), CompatError> {
    if c.name.is_empty() {
        return Err(CompatError::EmptyName);
    }
    if c.name
        .chars()
        .any(|ch| ch.is_whitespace() || ch.is_control())
    {
        return Err(CompatError::BadName(c.name.clone()));
    }
    let f = &c.file_name;
    if f.is_empty() || f.contains('/') || f == "." || f == ".." || f.contains('\0') {
        return Err(CompatError::BadFileName(f.clone()));
    }
    if !c.wasm.starts_with(b"\0asm") {
        return Err(CompatError::NotWasm);
    }
    if c.os.is_empty() || c.architecture.is_empty() {
        return Err(CompatError::BadPlatform);
    }
    if let Some(bad) = c
        .env
        .iter()
        .find(|e| !matches!(e.find('='), Some(i) if i > 0))
    {
        return Err(CompatError::BadEnv(bad.clone()));
    }
    Ok(())
}

/// The tag of a reference (`host:5000/a/b:1.0` → `1.0`), if it is one and has one.
fn tag_of(name: &str) -> Option<String> {
    Reference::parse(name).ok()?.tag().map(str::to_string)
}

fn layer_tar(file_name: &str, wasm: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = file_header(wasm.len() as u64);
    // Executable like Docker's own compat images; the shim does not care, other tools might.
    h.set_mode(0o755);
    b.append_data(&mut h, file_name, wasm)?;
    b.into_inner()
}

fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("a JSON value always serializes")
}

#[cfg(test)]
mod tests;
