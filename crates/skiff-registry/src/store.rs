//! The seam toward the local store: where pulled blobs go and where pushed blobs come from.
//!
//! Every byte is checked against its digest before a blob becomes visible under it: by the
//! writer's own [`BlobWriter::commit`] when it says it does ([`BlobWriter::verifies_digest`]),
//! else by the registry client before it calls `commit`. A blob that does not match is dropped
//! (the writer aborted), so the store never holds a wrong blob under a digest. Hashing once, not
//! twice, matters: sha256 was half of a 50 MiB pull's CPU (docs/benchmarks.md).
//!
//! skiff's own store (`skiff_store::Store`, the one under `SKIFF_HOME`) implements [`BlobStore`]
//! here; [`DirStore`] is a minimal content-addressed directory (the same `blobs/sha256/<hex>`
//! layout) for tests and tools. Both verify as they commit.

use sha2::{Digest as _, Sha256};
use skiff_store::Digest;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// A blob being written: bytes in, then `commit`. Dropping it without `commit` must leave
/// nothing behind.
pub trait BlobWriter: Write + Send {
    /// Make the blob visible under its digest (durably: fsync, rename).
    fn commit(self: Box<Self>) -> io::Result<()>;

    /// Write a whole piece held as a shared buffer (what the network hands over). A writer
    /// that can use the buffer beyond this call (to hash it on another thread, say) overrides
    /// this; the default writes it like any slice.
    fn write_bytes(&mut self, piece: bytes::Bytes) -> io::Result<()> {
        self.write_all(&piece)
    }

    /// True if `commit` hashes what was written and refuses a mismatch itself, storing nothing
    /// and failing with [`io::ErrorKind::InvalidData`] (its message saying what was found).
    /// The registry client then does not hash the bytes a second time. Default: false, and the
    /// client checks before it commits.
    fn verifies_digest(&self) -> bool {
        false
    }
}

/// Where blobs live locally.
pub trait BlobStore: Send + Sync {
    /// True if the blob with this digest is present and complete.
    fn has(&self, digest: &Digest) -> bool;
    /// Size of a present blob.
    fn size(&self, digest: &Digest) -> io::Result<u64>;
    /// Read a present blob.
    fn open(&self, digest: &Digest) -> io::Result<Box<dyn Read + Send>>;
    /// Start writing the blob that should have `digest` and `size` bytes.
    fn writer(&self, digest: &Digest, size: u64) -> io::Result<Box<dyn BlobWriter>>;

    /// Repositories (`registry`, `repository`) this blob is known to exist in, for cross-repository
    /// mounts. The default knows none.
    fn sources(&self, _digest: &Digest) -> Vec<(String, String)> {
        Vec::new()
    }
    /// Remember that these blobs exist in `registry/repository` (one write for all of them).
    fn record_sources(&self, _digests: &[&Digest], _registry: &str, _repository: &str) {}
}

/// `ROOT/blobs/sha256/<hex>`, written through temp file + fsync + rename.
#[derive(Debug, Clone)]
pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    pub fn new(root: impl Into<PathBuf>) -> DirStore {
        DirStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path a digest lives at. A [`Digest`] is validated hex, so a digest from the network
    /// can never name a path outside the store.
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    fn sources_file(&self) -> PathBuf {
        self.root.join(SOURCES_FILE)
    }

    /// Every blob digest present.
    pub fn digests(&self) -> Vec<Digest> {
        let mut out: Vec<Digest> = std::fs::read_dir(self.root.join("blobs/sha256"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| Digest::from_hex(&n).ok())
            .collect();
        out.sort();
        out
    }
}

impl BlobStore for DirStore {
    fn has(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    fn size(&self, digest: &Digest) -> io::Result<u64> {
        Ok(std::fs::metadata(self.path(digest))?.len())
    }

    fn open(&self, digest: &Digest) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(std::fs::File::open(self.path(digest))?))
    }

    fn writer(&self, digest: &Digest, _size: u64) -> io::Result<Box<dyn BlobWriter>> {
        let dest = self.path(digest);
        let dir = dest.parent().expect("blob path has a parent");
        std::fs::create_dir_all(dir)?;
        let tmp = tempfile::Builder::new()
            .prefix(".partial-")
            .tempfile_in(dir)?;
        Ok(Box::new(DirWriter {
            tmp,
            dest,
            digest: digest.clone(),
            hasher: Sha256::new(),
        }))
    }

    fn sources(&self, digest: &Digest) -> Vec<(String, String)> {
        sources_of(&self.sources_file(), digest)
    }

    fn record_sources(&self, digests: &[&Digest], registry: &str, repository: &str) {
        record_sources_in(&self.sources_file(), digests, registry, repository)
    }
}

/// `SKIFF_HOME`'s store. Where blobs came from is kept beside it, in `registry-sources.json`.
impl BlobStore for skiff_store::Store {
    fn has(&self, digest: &Digest) -> bool {
        self.has_blob(digest)
    }

    fn size(&self, digest: &Digest) -> io::Result<u64> {
        self.blob_size(digest).map_err(io::Error::other)
    }

    fn open(&self, digest: &Digest) -> io::Result<Box<dyn Read + Send>> {
        let f = self.open_blob(digest).map_err(io::Error::other)?;
        Ok(Box::new(f))
    }

    fn writer(&self, digest: &Digest, size: u64) -> io::Result<Box<dyn BlobWriter>> {
        let w = self
            .blob_writer(digest, Some(size))
            .map_err(io::Error::other)?;
        Ok(Box::new(StoreWriter(w)))
    }

    fn sources(&self, digest: &Digest) -> Vec<(String, String)> {
        sources_of(&self.root().join(SOURCES_FILE), digest)
    }

    fn record_sources(&self, digests: &[&Digest], registry: &str, repository: &str) {
        record_sources_in(
            &self.root().join(SOURCES_FILE),
            digests,
            registry,
            repository,
        )
    }
}

const SOURCES_FILE: &str = "registry-sources.json";

struct StoreWriter(skiff_store::PendingBlob);

impl Write for StoreWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl BlobWriter for StoreWriter {
    fn write_bytes(&mut self, piece: bytes::Bytes) -> io::Result<()> {
        self.0.write_bytes(piece)
    }

    fn commit(self: Box<Self>) -> io::Result<()> {
        self.0.commit().map(drop).map_err(|e| match e {
            skiff_store::StoreError::DigestMismatch { .. }
            | skiff_store::StoreError::SizeMismatch { .. } => {
                io::Error::new(io::ErrorKind::InvalidData, e)
            }
            other => io::Error::other(other),
        })
    }

    fn verifies_digest(&self) -> bool {
        // `PendingBlob::commit` checks size and sha256 before it renames.
        true
    }
}

fn sources_of(file: &Path, digest: &Digest) -> Vec<(String, String)> {
    read_sources(file)
        .get(&digest.to_string())
        .cloned()
        .unwrap_or_default()
}

fn record_sources_in(file: &Path, digests: &[&Digest], registry: &str, repository: &str) {
    let mut all = read_sources(file);
    let pair = (registry.to_string(), repository.to_string());
    let mut changed = false;
    for digest in digests {
        let entry = all.entry(digest.to_string()).or_default();
        if !entry.contains(&pair) {
            entry.push(pair.clone());
            changed = true;
        }
    }
    if !changed {
        return;
    }
    // Best effort: a lost record only costs a mount later, never correctness.
    if let Ok(text) = serde_json::to_vec(&all) {
        let how = skiff_store::atomic::Atomic {
            mode: 0o644,
            temp_dir: None,
        };
        let _ = skiff_store::atomic::write_atomic(file, how, &text);
    }
}

type Sources = std::collections::BTreeMap<String, Vec<(String, String)>>;

fn read_sources(file: &Path) -> Sources {
    std::fs::read(file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

struct DirWriter {
    tmp: tempfile::NamedTempFile,
    dest: PathBuf,
    digest: Digest,
    hasher: Sha256,
}

impl Write for DirWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.tmp.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

impl BlobWriter for DirWriter {
    fn commit(self: Box<Self>) -> io::Result<()> {
        let DirWriter {
            tmp,
            dest,
            digest,
            hasher,
        } = *self;
        let actual = Digest::from_sha256(hasher);
        if actual != digest {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the bytes written have digest {actual}"),
            ));
        }
        tmp.as_file().sync_all()?;
        tmp.persist(&dest).map_err(|e| e.error)?;
        if let Some(dir) = dest.parent() {
            skiff_store::atomic::sync_dir(dir)?;
        }
        Ok(())
    }

    fn verifies_digest(&self) -> bool {
        true
    }
}
