//! `skiff build`: a skiff.toml and a Wasm binary in, an image in the store out.
//!
//! Reproducible: the manifest is a pure function of the binary, skiff.toml and the `created`
//! time the caller passes (SOURCE_DATE_EPOCH, else the Unix epoch; see docs/images.md).

use crate::annotations::*;
use crate::image::ImageError;
use crate::media;
use crate::model::*;
use crate::reference::Reference;
use crate::skiff_toml::{SkiffToml, TomlError};
use skiff_store::time::format_rfc3339;
use skiff_store::{Digest, Store};
use skiff_wasm::Kind;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildConfig {
    /// The directory relative paths in skiff.toml resolve against.
    pub context: PathBuf,
    /// The skiff.toml to read, or a `.wasm` to build from alone (its name from the file's).
    pub file: PathBuf,
    /// Tags to set; empty means `name:version` from skiff.toml.
    pub tags: Vec<Reference>,
    /// Seconds since the epoch written as `created`.
    pub created: i64,
    /// Run skiff.toml's `build` command first.
    pub run_build_command: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Toml(#[from] TomlError),
    #[error("the build command `{command}` failed ({status}); no image was built")]
    Command { command: String, status: String },
    #[error("cannot run the build command `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("cannot read the wasm file {path}: {source}")]
    Wasm {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("wasm = {path:?}: {reason}")]
    WasmOutside { path: PathBuf, reason: String },
    #[error("{path} is not a usable WebAssembly binary: {reason}")]
    NotWasm { path: PathBuf, reason: String },
    #[error(transparent)]
    Image(#[from] ImageError),
}

/// What was built.
#[derive(Debug, Clone)]
pub struct Built {
    pub digest: Digest,
    pub tags: Vec<Reference>,
    pub kind: Kind,
    pub os: &'static str,
    pub size: u64,
}

/// The bytes of an image, before they are stored.
pub struct ImageBytes {
    pub manifest: Vec<u8>,
    pub config: Vec<u8>,
    pub layer: Vec<u8>,
    pub kind: Kind,
}

pub fn build(store: &Store, config: &BuildConfig) -> Result<Built, BuildError> {
    // A .wasm instead of a skiff.toml: the binary alone (`skiff build app.wasm`).
    let toml = if config.file.extension().is_some_and(|e| e == "wasm") {
        SkiffToml::for_wasm_file(&config.file)?
    } else {
        SkiffToml::read(&config.file)?
    };
    if config.run_build_command {
        if let Some(cmd) = &toml.build {
            run_build_command(cmd, &config.context)?;
        }
    }
    let wasm_path = inside_context(&config.context, &toml.wasm)?;
    let wasm = crate::skiff_toml::read_regular_file(&wasm_path, MAX_WASM_SIZE, "the wasm binary")
        .map_err(|e| match e {
        TomlError::Read { path, source } => BuildError::Wasm { path, source },
        other => BuildError::WasmOutside {
            path: toml.wasm.clone(),
            reason: other.to_string(),
        },
    })?;
    // Named as skiff.toml names it (the layer's title), whatever a symlink points at.
    let shown = config.context.join(&toml.wasm);
    let bytes = image_bytes(&toml, &shown, wasm, config.created)?;
    let err = |e: skiff_store::StoreError| BuildError::Image(e.into());
    store.put_blob_bytes(&bytes.layer).map_err(err)?;
    store.put_blob_bytes(&bytes.config).map_err(err)?;
    let digest = store.put_manifest(&bytes.manifest).map_err(err)?;
    let tags = if config.tags.is_empty() {
        vec![toml.reference()]
    } else {
        config.tags.clone()
    };
    for t in &tags {
        let tag = t.tag_or_latest().unwrap_or("latest");
        store.set_tag(&t.repository(), tag, &digest).map_err(err)?;
    }
    Ok(Built {
        digest,
        tags,
        kind: bytes.kind,
        os: bytes.kind.wasi_os(),
        size: (bytes.manifest.len() + bytes.config.len() + bytes.layer.len()) as u64,
    })
}

/// The largest binary `skiff build` reads (it holds it in memory to hash and inspect it): 14
/// times the largest real guest measured here (componentize-py's ~18 MB), far below memory.
pub const MAX_WASM_SIZE: u64 = 256 << 20;

/// `wasm` resolved in `context`, symlinks followed, and refused unless the file it names is
/// inside the context: a skiff.toml from someone else's repository must not make `skiff build
/// --no-build-command` read (and put in an image, and push) `~/.ssh/id_ed25519` or `/etc/shadow`
/// through a symlink. The type and size are checked when it is read.
fn inside_context(context: &Path, wasm: &Path) -> Result<PathBuf, BuildError> {
    let outside = |reason: String| BuildError::WasmOutside {
        path: wasm.to_path_buf(),
        reason,
    };
    let joined = context.join(wasm);
    let root = std::fs::canonicalize(context).map_err(|source| BuildError::Wasm {
        path: context.to_path_buf(),
        source,
    })?;
    let real = std::fs::canonicalize(&joined).map_err(|source| BuildError::Wasm {
        path: joined.clone(),
        source,
    })?;
    if !real.starts_with(&root) {
        return Err(outside(format!(
            "resolves to {}, outside the build context {}; the binary must be inside it (copy it in)",
            real.display(),
            root.display()
        )));
    }
    Ok(real)
}

/// Compose the manifest and config for `wasm` as skiff.toml describes it.
pub fn image_bytes(
    toml: &SkiffToml,
    wasm_path: &Path,
    wasm: Vec<u8>,
    created: i64,
) -> Result<ImageBytes, BuildError> {
    let info = skiff_wasm::inspect(&wasm).map_err(|e| BuildError::NotWasm {
        path: wasm_path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let layer_digest = info.digest.clone();
    let created = format_rfc3339(created);
    let is_component = matches!(
        info.kind,
        Kind::P2Command | Kind::HttpHandler | Kind::ComponentLibrary | Kind::P3Component
    );
    let config = WasmConfig {
        created: created.clone(),
        author: toml.author.clone(),
        architecture: ARCHITECTURE.into(),
        os: info.kind.wasi_os().into(),
        layer_digests: vec![layer_digest.clone()],
        component: is_component.then(|| Component {
            exports: info.exports.clone(),
            imports: info.imports.clone(),
            target: None,
        }),
    };
    let config_bytes = to_canonical_json(&config);
    let mut annotations = Annotations::new();
    annotations.insert(OCI_CREATED.into(), created);
    annotations.insert(OCI_TITLE.into(), toml.name.clone());
    let optional = [
        (OCI_VERSION, &toml.version),
        (OCI_DESCRIPTION, &toml.description),
        (OCI_AUTHORS, &toml.author),
        (OCI_LICENSES, &toml.license),
        (OCI_SOURCE, &toml.source),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            annotations.insert(key.into(), v.clone());
        }
    }
    toml.defaults().to_annotations(&mut annotations);
    let mut layer_annotations = Annotations::new();
    if let Some(name) = wasm_path.file_name() {
        // What `oras pull` names the file it writes.
        layer_annotations.insert(OCI_TITLE.into(), name.to_string_lossy().into_owned());
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        artifact_type: None,
        config: Descriptor::of(media::WASM_CONFIG, &config_bytes),
        layers: vec![Descriptor {
            annotations: layer_annotations,
            ..Descriptor::new(media::WASM_LAYER, layer_digest, wasm.len() as u64)
        }],
        annotations,
    };
    Ok(ImageBytes {
        manifest: to_canonical_json(&manifest),
        config: config_bytes,
        layer: wasm,
        kind: info.kind,
    })
}

fn run_build_command(cmd: &str, dir: &Path) -> Result<(), BuildError> {
    // The command's output goes to stderr: skiff's stdout carries only the result.
    let status = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .status()
        .map_err(|source| BuildError::Spawn {
            command: cmd.into(),
            source,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(BuildError::Command {
            command: cmd.into(),
            status: status.to_string(),
        })
    }
}
