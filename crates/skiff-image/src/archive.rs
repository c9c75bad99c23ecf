//! `skiff save` / `skiff load`: images as an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) in a tar, the format skopeo, containerd, podman and docker read and write.
//!
//! Names travel in `index.json` as containerd and podman write them: `io.containerd.image.name`
//! holds the full reference, `org.opencontainers.image.ref.name` the tag. On load the first
//! wins; a `ref.name` that is a full reference (skopeo writes what it was given) is used too.
//!
//! Load never trusts the archive: entries are matched by name to digests, never written to the
//! paths they claim, so `..`, absolute paths and links are refused outright; every blob is
//! verified into a staging area and enters the store only when every image in the archive has
//! been checked.

use crate::annotations::{CONTAINERD_IMAGE_NAME, OCI_REF_NAME};
use crate::image::{Image, ImageError};
use crate::media;
use crate::model::*;
use crate::reference::Reference;
use skiff_store::{Digest, Store, StoreError, MANIFEST_MAX};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};

const OCI_LAYOUT: &str = "oci-layout";
const INDEX_JSON: &str = "index.json";
const LAYOUT_VERSION: &str = "1.0.0";
/// Metadata files (`oci-layout`, docker's `manifest.json`) larger than this are refused.
const SMALL_FILE_MAX: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error(
        "the archive is {0}-compressed: decompress it first (e.g. `{1} -dc FILE | skiff load`)"
    )]
    Compressed(&'static str, &'static str),
    #[error("refusing archive entry {path:?}: {reason}; nothing was loaded")]
    UnsafeEntry { path: String, reason: String },
    #[error("{what} is {size} bytes, over the limit of {limit}; refused before reading it")]
    TooLarge { what: String, size: u64, limit: u64 },
    #[error("not an OCI image layout: {0}")]
    NotLayout(String),
    #[error("archive entry {path}: {source}")]
    Blob { path: String, source: StoreError },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] ImageError),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ArchiveError {
    let context = context.into();
    move |source| ArchiveError::Io { context, source }
}

/// One image to save and the names to give it.
pub struct SaveItem {
    pub digest: Digest,
    pub names: Vec<Reference>,
}

/// Write `items` as an OCI layout tar. Deterministic: same images and names, same bytes.
pub fn save(store: &Store, items: &[SaveItem], out: &mut dyn Write) -> Result<(), ArchiveError> {
    let mut index = Index {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.into()),
        manifests: Vec::new(),
        annotations: Annotations::new(),
    };
    let mut blobs = BTreeSet::new();
    for item in items {
        let image = Image::read(store, &item.digest)?;
        blobs.insert(image.digest.clone());
        blobs.insert(image.manifest.config.digest.clone());
        blobs.extend(image.manifest.layers.iter().map(|l| l.digest.clone()));
        let descriptor = |annotations| Descriptor {
            annotations,
            ..Descriptor::new(
                media::OCI_MANIFEST,
                image.digest.clone(),
                image.manifest_size,
            )
        };
        if item.names.is_empty() {
            index.manifests.push(descriptor(Annotations::new()));
        }
        for name in &item.names {
            index
                .manifests
                .push(descriptor(name_annotations(&name.to_string(), name.tag())));
        }
    }
    let mut tar = write_layout_head(out, &index)?;
    for digest in &blobs {
        let file = store.open_blob(digest)?;
        let size = file
            .metadata()
            .map_err(io_err(format!("cannot stat blob {digest}")))?
            .len();
        append_blob(&mut tar, digest, size, file)?;
    }
    tar.into_inner()
        .and_then(|w| w.flush())
        .map_err(io_err("cannot write the archive"))
}

/// The annotations of an index entry that name its image, as containerd and podman write them
/// (and `ctr images import` reads them): the full reference, and the tag.
pub(crate) fn name_annotations(name: &str, tag: Option<&str>) -> Annotations {
    let mut a = Annotations::new();
    a.insert(CONTAINERD_IMAGE_NAME.into(), name.into());
    if let Some(tag) = tag {
        a.insert(OCI_REF_NAME.into(), tag.into());
    }
    a
}

/// The start of an OCI layout tar: `oci-layout`, `index.json` and the blob directories; the
/// blobs follow through [`append_blob`]. (`skiff save`, and the compat layout's tar.)
pub(crate) fn write_layout_head<W: Write>(
    out: W,
    index: &Index,
) -> Result<tar::Builder<W>, ArchiveError> {
    let mut tar = tar::Builder::new(out);
    let layout = format!("{{\"imageLayoutVersion\":\"{LAYOUT_VERSION}\"}}");
    append_bytes(&mut tar, OCI_LAYOUT, layout.as_bytes())?;
    append_bytes(&mut tar, INDEX_JSON, &to_canonical_json(index))?;
    append_dir(&mut tar, "blobs/")?;
    append_dir(&mut tar, "blobs/sha256/")?;
    Ok(tar)
}

/// One blob of a layout, at `blobs/sha256/<hex>`.
pub(crate) fn append_blob<W: Write>(
    tar: &mut tar::Builder<W>,
    digest: &Digest,
    size: u64,
    bytes: impl Read,
) -> Result<(), ArchiveError> {
    let mut header = file_header(size);
    tar.append_data(&mut header, format!("blobs/sha256/{}", digest.hex()), bytes)
        .map_err(io_err("cannot write the archive"))
}

pub(crate) fn file_header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    bytes: &[u8],
) -> Result<(), ArchiveError> {
    let mut h = file_header(bytes.len() as u64);
    tar.append_data(&mut h, path, bytes)
        .map_err(io_err("cannot write the archive"))
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> Result<(), ArchiveError> {
    let mut h = file_header(0);
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    tar.append_data(&mut h, path, std::io::empty())
        .map_err(io_err("cannot write the archive"))
}

/// An image `load` brought in.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    pub digest: Digest,
    /// Names it was tagged with; empty when the archive named none.
    pub names: Vec<Reference>,
}

/// Read an OCI layout tar from `input` into the store.
pub fn load(store: &Store, input: &mut dyn Read) -> Result<Vec<LoadedImage>, ArchiveError> {
    let mut input = BufReader::with_capacity(256 * 1024, input);
    let head = input
        .fill_buf()
        .map_err(io_err("cannot read the archive"))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        return Err(ArchiveError::Compressed("gzip", "gzip"));
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(ArchiveError::Compressed("zstd", "zstd"));
    }
    if head.is_empty() {
        return Err(ArchiveError::NotLayout("the archive is empty".into()));
    }
    let mut staging = store.staging()?;
    let mut index_bytes = None;
    let mut layout_bytes = None;
    let mut archive = tar::Archive::new(input);
    let entries = archive
        .entries()
        .map_err(io_err("cannot read the archive as a tar file (is it one?)"))?;
    for entry in entries {
        let mut entry =
            entry.map_err(io_err("cannot read the archive as a tar file (is it one?)"))?;
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = safe_path(&raw_path, entry.header().entry_type())?;
        let size = entry.header().size().map_err(io_err("bad tar header"))?;
        let Some(path) = path else { continue };
        match path.as_str() {
            OCI_LAYOUT => layout_bytes = Some(read_small(&mut entry, &path, size, SMALL_FILE_MAX)?),
            INDEX_JSON => index_bytes = Some(read_small(&mut entry, &path, size, MANIFEST_MAX)?),
            p if p.starts_with("blobs/") => {
                let digest = blob_digest(p)?;
                staging
                    .put_blob(&digest, Some(size), &mut entry)
                    .map_err(|source| ArchiveError::Blob {
                        path: raw_path.clone(),
                        source,
                    })?;
            }
            other => tracing::debug!("load: ignoring {other} (not part of an OCI layout)"),
        }
    }
    let layout = layout_bytes.ok_or_else(|| {
        ArchiveError::NotLayout(
            "no oci-layout file; skiff load reads archives written by skiff save, skopeo \
             (oci-archive:) or docker/podman save in OCI format"
                .into(),
        )
    })?;
    check_layout(&layout)?;
    let index_bytes = index_bytes.ok_or_else(|| ArchiveError::NotLayout("no index.json".into()))?;
    let index: Index = serde_json::from_slice(&index_bytes)
        .map_err(|e| ArchiveError::NotLayout(format!("index.json is not an OCI index: {e}")))?;
    if index.manifests.is_empty() {
        return Err(ArchiveError::NotLayout("index.json lists no images".into()));
    }
    let mut loaded: Vec<LoadedImage> = Vec::new();
    for desc in &index.manifests {
        if desc.size > MANIFEST_MAX {
            return Err(ArchiveError::TooLarge {
                what: format!("manifest {}", desc.digest),
                size: desc.size,
                limit: MANIFEST_MAX,
            });
        }
        if !staging.has_blob(&desc.digest) {
            return Err(ArchiveError::NotLayout(format!(
                "index.json names manifest {}, which the archive does not hold",
                desc.digest
            )));
        }
        if staging.blob_size(&desc.digest)? != desc.size {
            return Err(ArchiveError::NotLayout(format!(
                "index.json gives manifest {} a size of {}, but it has {} bytes",
                desc.digest,
                desc.size,
                staging.blob_size(&desc.digest)?
            )));
        }
        let manifest_bytes = staging.read_blob(&desc.digest, MANIFEST_MAX)?;
        if let Ok(children) = skiff_store::manifest_children(&manifest_bytes) {
            if let Some(missing) = children.iter().find(|d| !staging.has_blob(d)) {
                return Err(ArchiveError::NotLayout(format!(
                    "manifest {} names blob {missing}, which the archive does not hold",
                    desc.digest
                )));
            }
        }
        let image = Image::read(&staging, &desc.digest)?;
        let name = name_of(desc)?;
        match loaded.iter_mut().find(|l| l.digest == image.digest) {
            Some(l) => l.names.extend(name),
            None => loaded.push(LoadedImage {
                digest: image.digest,
                names: name.into_iter().collect(),
            }),
        }
    }
    // Everything checked: blobs first, then the tags that name them.
    staging.commit()?;
    for image in &loaded {
        for name in &image.names {
            let tag = name.tag_or_latest().unwrap_or("latest");
            store.set_tag(&name.repository(), tag, &image.digest)?;
        }
    }
    Ok(loaded)
}

/// The name an index entry gives its image, if any.
fn name_of(desc: &Descriptor) -> Result<Option<Reference>, ArchiveError> {
    let parse = |key: &str, value: &str| {
        Reference::parse(value).map_err(|e| {
            ArchiveError::NotLayout(format!("index.json: {key} {value:?}: {}", e.reason))
        })
    };
    if let Some(name) = desc.annotations.get(CONTAINERD_IMAGE_NAME) {
        return parse(CONTAINERD_IMAGE_NAME, name).map(Some);
    }
    match desc.annotations.get(OCI_REF_NAME) {
        // A bare tag ("1.0") names no repository; only a full reference is a name.
        Some(r) if r.contains(['/', ':']) => parse(OCI_REF_NAME, r).map(Some),
        _ => Ok(None),
    }
}

/// The entry's path if it is to be read, `None` for a directory; an error for anything unsafe.
fn safe_path(raw: &str, kind: tar::EntryType) -> Result<Option<String>, ArchiveError> {
    let unsafe_entry = |reason: &str| ArchiveError::UnsafeEntry {
        path: raw.to_string(),
        reason: reason.to_string(),
    };
    if raw.starts_with('/') {
        return Err(unsafe_entry("an absolute path"));
    }
    if raw.split('/').any(|c| c == "..") {
        return Err(unsafe_entry("a path with `..`"));
    }
    let path = raw
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/");
    match kind {
        tar::EntryType::Regular | tar::EntryType::Continuous => Ok(Some(path)),
        tar::EntryType::Directory => Ok(None),
        tar::EntryType::Symlink => Err(unsafe_entry("a symbolic link")),
        tar::EntryType::Link => Err(unsafe_entry("a hard link")),
        other => Err(unsafe_entry(&format!(
            "a {other:?} entry (only regular files and directories belong in an image layout)"
        ))),
    }
}

fn blob_digest(path: &str) -> Result<Digest, ArchiveError> {
    let bad = |reason: String| ArchiveError::NotLayout(format!("{path}: {reason}"));
    let rest = path.strip_prefix("blobs/").unwrap_or(path);
    let (alg, hex) = rest
        .split_once('/')
        .ok_or_else(|| bad("expected blobs/<algorithm>/<hex>".into()))?;
    if alg != "sha256" {
        return Err(bad(format!(
            "digest algorithm {alg} is not supported (skiff stores sha256)"
        )));
    }
    Digest::from_hex(hex).map_err(|_| bad("the file name is not a sha256 digest".into()))
}

fn read_small(
    entry: &mut dyn Read,
    path: &str,
    size: u64,
    limit: u64,
) -> Result<Vec<u8>, ArchiveError> {
    if size > limit {
        return Err(ArchiveError::TooLarge {
            what: path.to_string(),
            size,
            limit,
        });
    }
    // The header's size is a claim: reserve at most 8 MiB up front (a small tar may declare
    // entries up to the limit), and let the vector grow with what actually arrives.
    let mut buf = Vec::with_capacity(size.min(8 << 20) as usize);
    entry
        .take(limit)
        .read_to_end(&mut buf)
        .map_err(io_err(format!("cannot read {path} from the archive")))?;
    Ok(buf)
}

fn check_layout(bytes: &[u8]) -> Result<(), ArchiveError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Layout {
        image_layout_version: String,
    }
    let l: Layout = serde_json::from_slice(bytes)
        .map_err(|e| ArchiveError::NotLayout(format!("oci-layout: {e}")))?;
    if !l.image_layout_version.starts_with("1.") {
        return Err(ArchiveError::NotLayout(format!(
            "imageLayoutVersion {} is not supported (skiff reads 1.x)",
            l.image_layout_version
        )));
    }
    Ok(())
}
