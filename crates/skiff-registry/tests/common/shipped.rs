//! Images as today's tools push them, byte for byte: the manifest and config each tool's code
//! serialises (field order, nulls and all), built here so a test can push them with curl.
//!
//! - Spin 3.x (`spin registry push`, spinframework/spin crates/oci/src/client.rs): an ordinary
//!   OCI image config (oci-client's `ConfigFile`: architecture, os, config.Labels, rootfs) whose
//!   label `com.fermyon.spin.lockedAppDigest` names the locked app, pushed as the *last layer*
//!   (`application/vnd.fermyon.spin.application.v1+config`); wasm layers before it, each followed
//!   by its component's file layers (`application/vnd.wasm.content.layer.v1+data`). The locked
//!   app names each file `{"digest":…,"path":…}` (its `ContentRef` flattened), the path relative
//!   to the guest's `/`; a file of at most 128 bytes is inlined too (`"inline"`, unpadded
//!   base64) and pushed as no layer.
//! - wkg (bytecodealliance/wasm-pkg-tools, via oci-wasm's `WasmConfig`): the CNCF layout, with
//!   `"author":null` and `"target":null` written out, a title on the layer, the version on the
//!   manifest.
//! - oras 1.x `oras push REF app.wasm:application/wasm`: an OCI 1.1 artifact, `artifactType`
//!   `application/vnd.unknown.artifact.v1`, the empty config (inline as `data`), the creation
//!   time as a manifest annotation; with `--image-spec v1.0`, no artifactType and the config
//!   `application/vnd.unknown.config.v1+json`.
#![allow(dead_code)]

use skiff_store::Digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// An image as bytes: every blob, and the manifest.
pub struct ToolImage {
    pub blobs: Vec<Vec<u8>>,
    pub manifest: Vec<u8>,
}

fn desc(media_type: &str, bytes: &[u8]) -> String {
    format!(
        r#"{{"mediaType":"{media_type}","digest":"{}","size":{}}}"#,
        Digest::of(bytes),
        bytes.len()
    )
}

fn desc_titled(media_type: &str, bytes: &[u8], title: &str) -> String {
    format!(
        r#"{{"mediaType":"{media_type}","digest":"{}","size":{},"annotations":{{"org.opencontainers.image.title":"{title}"}}}}"#,
        Digest::of(bytes),
        bytes.len()
    )
}

/// A component of a Spin app: its id, wasm, the layer media type Spin (or wkg) gave it, the
/// route its HTTP trigger has (None: no trigger names it), and its files (path under the guest's
/// `/`, bytes).
pub struct SpinComponent<'a> {
    pub id: &'a str,
    pub wasm: &'a [u8],
    pub media_type: &'a str,
    pub route: Option<&'a str>,
    pub files: Vec<(&'a str, &'a [u8])>,
}

pub const SPIN_WASM: &str = "application/vnd.wasm.content.layer.v1+wasm";
pub const SPIN_DATA: &str = "application/vnd.wasm.content.layer.v1+data";
pub const SPIN_LOCKED: &str = "application/vnd.fermyon.spin.application.v1+config";

/// Spin inlines a file this small into the locked app (`DEFAULT_CONTENT_REF_INLINE_MAX_SIZE`).
fn is_inlined(bytes: &[u8]) -> bool {
    bytes.len() <= 128
}

/// Standard base64 without padding, as Spin's `spin_serde::base64` writes `inline`.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// The locked app as `serde_json::to_vec(&LockedApp)` writes it (Spin's field order).
pub fn spin_locked_app(name: &str, components: &[SpinComponent]) -> Vec<u8> {
    let triggers: Vec<String> = components
        .iter()
        .filter_map(|c| {
            c.route.map(|r| {
                format!(
                    r#"{{"id":"trigger--{id}","trigger_type":"http","trigger_config":{{"component":"{id}","route":"{r}"}}}}"#,
                    id = c.id
                )
            })
        })
        .collect();
    let comps: Vec<String> = components
        .iter()
        .map(|c| {
            let files: Vec<String> = c
                .files
                .iter()
                .map(|(path, bytes)| match is_inlined(bytes) {
                    true => format!(
                        r#"{{"inline":"{}","digest":"{}","path":"{path}"}}"#,
                        base64(bytes),
                        Digest::of(bytes)
                    ),
                    false => format!(r#"{{"digest":"{}","path":"{path}"}}"#, Digest::of(bytes)),
                })
                .collect();
            format!(
                r#"{{"id":"{}","metadata":{{}},"source":{{"content_type":"application/wasm","content":{{"digest":"{}"}}}},"env":{{}},"files":[{}]}}"#,
                c.id,
                Digest::of(c.wasm),
                files.join(",")
            )
        })
        .collect();
    format!(
        r#"{{"spin_lock_version":1,"metadata":{{"name":"{name}","version":"0.1.0","origin":"file:///app/spin.toml","trigger":{{"type":"http"}}}},"variables":{{}},"triggers":[{}],"components":[{}]}}"#,
        triggers.join(","),
        comps.join(",")
    )
    .into_bytes()
}

/// `spin registry push` 3.x.
pub fn spin_current(name: &str, components: &[SpinComponent]) -> ToolImage {
    spin_pushed(name, components, false)
}

/// `spin registry push` 3.x with `SPIN_OCI_ARCHIVE_LAYERS` set (or past 500 layers): instead of
/// data layers, one tar+gzip layer per component holding all its files (`tokio_tar`'s
/// `append_dir_all(".", dir)`: a `.` directory entry, then `./path` entries); the locked app as
/// in [`spin_current`].
pub fn spin_current_archived(name: &str, components: &[SpinComponent]) -> ToolImage {
    spin_pushed(name, components, true)
}

pub const SPIN_ARCHIVE: &str = "application/vnd.wasm.content.bundle.v1.tar+gzip";

fn spin_archive(files: &[(&str, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    tar.append_data(&mut dir, ".", std::io::empty()).unwrap();
    for (path, bytes) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(bytes.len() as u64);
        tar.append_data(&mut h, format!("./{path}"), *bytes)
            .unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

fn spin_pushed(name: &str, components: &[SpinComponent], archived: bool) -> ToolImage {
    let locked = spin_locked_app(name, components);
    let config = format!(
        r#"{{"architecture":"wasm","os":"wasip1","config":{{"Labels":{{"com.fermyon.spin.lockedAppDigest":"{}"}}}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#,
        Digest::of(&locked)
    )
    .into_bytes();
    let mut blobs = vec![config.clone()];
    let mut layers = Vec::new();
    for c in components {
        layers.push(desc(c.media_type, c.wasm));
        blobs.push(c.wasm.to_vec());
        if archived {
            if !c.files.is_empty() {
                let archive = spin_archive(&c.files);
                layers.push(desc(SPIN_ARCHIVE, &archive));
                blobs.push(archive);
            }
            continue;
        }
        for (_, bytes) in c.files.iter().filter(|(_, b)| !is_inlined(b)) {
            layers.push(desc(SPIN_DATA, bytes));
            blobs.push(bytes.to_vec());
        }
    }
    layers.push(desc(SPIN_LOCKED, &locked));
    blobs.push(locked);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{},"layers":[{}],"annotations":{{"org.opencontainers.image.title":"{name}","org.opencontainers.image.version":"0.1.0"}}}}"#,
        desc("application/vnd.oci.image.config.v1+json", &config),
        layers.join(",")
    )
    .into_bytes();
    ToolImage { blobs, manifest }
}

/// `wkg oci push` / `wkg publish` of a component (oci-wasm's `WasmConfig::from_raw_component`).
pub fn wkg(wasm: &[u8], exports: &[&str], imports: &[&str]) -> ToolImage {
    let list = |v: &[&str]| {
        v.iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(",")
    };
    let config = format!(
        r#"{{"created":"2025-06-01T12:34:56.789012345Z","author":null,"architecture":"wasm","os":"wasip2","layerDigests":["{}"],"component":{{"exports":[{}],"imports":[{}],"target":null}}}}"#,
        Digest::of(wasm),
        list(exports),
        list(imports)
    )
    .into_bytes();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{},"layers":[{}],"annotations":{{"org.opencontainers.image.version":"0.1.0"}}}}"#,
        desc("application/vnd.wasm.config.v0+json", &config),
        desc_titled("application/wasm", wasm, "hello.wasm")
    )
    .into_bytes();
    ToolImage {
        blobs: vec![config, wasm.to_vec()],
        manifest,
    }
}

pub const EMPTY: &[u8] = b"{}";

/// An OCI 1.1 artifact: `artifactType`, the empty config inline, one `application/wasm` layer.
/// `oras push` writes `application/vnd.unknown.artifact.v1` unless given `--artifact-type`.
pub fn oci11_artifact(wasm: &[u8], artifact_type: &str) -> ToolImage {
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"{artifact_type}","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{}","size":2,"data":"e30="}},"layers":[{}],"annotations":{{"org.opencontainers.image.created":"2025-06-01T12:00:00Z"}}}}"#,
        Digest::of(EMPTY),
        desc_titled("application/wasm", wasm, "app.wasm")
    )
    .into_bytes();
    ToolImage {
        blobs: vec![EMPTY.to_vec(), wasm.to_vec()],
        manifest,
    }
}

/// `oras push --image-spec v1.0`: no artifactType, oras's own config type for `{}`.
pub fn oras_v1_0(wasm: &[u8]) -> ToolImage {
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{},"layers":[{}],"annotations":{{"org.opencontainers.image.created":"2025-06-01T12:00:00Z"}}}}"#,
        desc("application/vnd.unknown.config.v1+json", EMPTY),
        desc_titled("application/wasm", wasm, "app.wasm")
    )
    .into_bytes();
    ToolImage {
        blobs: vec![EMPTY.to_vec(), wasm.to_vec()],
        manifest,
    }
}

/// An index as `docker buildx imagetools create` writes one that mixes a Linux image and a
/// Wasm one: each entry with its platform.
pub fn mixed_index(entries: &[(&[u8], &str, &str)]) -> Vec<u8> {
    let list: Vec<String> = entries
        .iter()
        .map(|(m, os, arch)| {
            format!(
                r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":{},"platform":{{"architecture":"{arch}","os":"{os}"}}}}"#,
                Digest::of(m),
                m.len()
            )
        })
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
        list.join(",")
    )
    .into_bytes()
}
