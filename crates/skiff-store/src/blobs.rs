//! Content-addressed blobs: `blobs/sha256/<hex>`.

use crate::fsutil::sync_dir;
use crate::refs::manifest_children;
use crate::{io, Digest, Result, Store, StoreError, MANIFEST_MAX};
use sha2::{Digest as _, Sha256};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

impl Store {
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// The blob's size in bytes.
    pub fn blob_size(&self, digest: &Digest) -> Result<u64> {
        match fs::metadata(self.blob_path(digest)) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::BlobNotFound(digest.clone()))
            }
            Err(e) => Err(io(format!("cannot stat blob {digest}"))(e)),
        }
    }

    /// Open a blob for streaming. Its bytes were checked when they were stored; `skiff system
    /// check` re-checks them.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        open_blob_at(&self.blob_path(digest), digest)
    }

    /// Read a whole blob, refusing one larger than `limit` before reading it.
    pub fn read_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        read_limited(&self.blob_path(digest), digest, limit)
    }

    /// Stream `reader` into the store as the blob `expected`. The bytes are hashed on the way
    /// into a temp file; only if they hash to `expected` (and are `size` long, when given) is the
    /// file fsynced and renamed into place. Returns the blob's size. A blob already present is
    /// not read again.
    pub fn put_blob(
        &self,
        expected: &Digest,
        size: Option<u64>,
        reader: &mut dyn Read,
    ) -> Result<u64> {
        if let Ok(existing) = self.blob_size(expected) {
            return Ok(existing);
        }
        let (tmp, written) =
            write_verified(&self.tmp_dir(), expected, size, self.max_blob_size, reader)?;
        self.publish(tmp, expected)?;
        Ok(written)
    }

    /// Store bytes already in memory; returns their digest.
    pub fn put_blob_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of(bytes);
        self.put_blob(&digest, Some(bytes.len() as u64), &mut &bytes[..])?;
        Ok(digest)
    }

    /// Store a manifest (or index) after checking that every blob it names is present, so that
    /// whatever points at a manifest in this store points at a complete image.
    pub fn put_manifest(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of(bytes);
        if bytes.len() as u64 > MANIFEST_MAX {
            return Err(StoreError::TooLarge {
                what: format!("manifest {digest}"),
                size: bytes.len() as u64,
                limit: MANIFEST_MAX,
            });
        }
        let children = manifest_children(bytes).map_err(|reason| StoreError::InvalidManifest {
            digest: digest.clone(),
            reason,
        })?;
        for blob in children {
            if !self.has_blob(&blob) {
                return Err(StoreError::MissingBlob {
                    manifest: digest,
                    blob,
                });
            }
        }
        self.put_blob_bytes(bytes)
    }

    /// Remove one blob (nothing happens if it is absent).
    pub fn delete_blob(&self, digest: &Digest) -> Result<()> {
        match fs::remove_file(self.blob_path(digest)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(format!("cannot remove blob {digest}"))(e)),
        }
    }

    /// Every file in `blobs/sha256/`, by name (not all names need be valid digests).
    pub(crate) fn blob_names(&self) -> Result<Vec<(String, PathBuf)>> {
        let dir = self.blobs_dir();
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io(format!("cannot list {}", dir.display())))? {
            let entry = entry.map_err(io(format!("cannot list {}", dir.display())))?;
            out.push((
                entry.file_name().to_string_lossy().into_owned(),
                entry.path(),
            ));
        }
        out.sort();
        Ok(out)
    }

    /// Rename a verified temp file to its digest's name and make the rename durable.
    pub(crate) fn publish(&self, tmp: NamedTempFile, digest: &Digest) -> Result<()> {
        let dest = self.blob_path(digest);
        tmp.persist(&dest)
            .map_err(|e| io(format!("cannot store blob {digest}"))(e.error))?;
        sync_dir(&self.blobs_dir())
    }
}

pub(crate) fn open_blob_at(path: &Path, digest: &Digest) -> Result<File> {
    File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            StoreError::BlobNotFound(digest.clone())
        } else {
            io(format!("cannot open blob {digest}"))(e)
        }
    })
}

pub(crate) fn read_limited(path: &Path, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
    let file = open_blob_at(path, digest)?;
    let size = file
        .metadata()
        .map_err(io(format!("cannot stat blob {digest}")))?
        .len();
    if size > limit {
        return Err(StoreError::TooLarge {
            what: format!("blob {digest}"),
            size,
            limit,
        });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(io(format!("cannot read blob {digest}")))?;
    Ok(bytes)
}

/// Stream `reader` into a new temp file in `dir`, hashing as it goes. Returns the fsynced temp
/// file only if the bytes are what `expected` (and `size`) say; otherwise the temp file is
/// dropped, which deletes it.
pub(crate) fn write_verified(
    dir: &Path,
    expected: &Digest,
    size: Option<u64>,
    max: u64,
    reader: &mut dyn Read,
) -> Result<(NamedTempFile, u64)> {
    if let Some(size) = size {
        if size > max {
            return Err(StoreError::TooLarge {
                what: format!("blob {expected}"),
                size,
                limit: max,
            });
        }
    }
    let mut tmp = crate::leftovers::create_file(dir, ".blob-", "").map_err(io(format!(
        "cannot create a temp file in {}",
        dir.display()
    )))?;
    let mut hasher = Sha256::new();
    // One byte past the limit tells "exactly at the limit" from "over it".
    let cap = size.unwrap_or(max).min(max) + 1;
    let mut limited = reader.take(cap);
    let mut buf = vec![0u8; 256 * 1024];
    let mut written: u64 = 0;
    loop {
        let n = match limited.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(format!("cannot read blob {expected}"))(e)),
        };
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n])
            .map_err(io(format!("cannot write blob {expected}")))?;
        written += n as u64;
    }
    if written > max {
        return Err(StoreError::TooLarge {
            what: format!("blob {expected}"),
            size: written,
            limit: max,
        });
    }
    if let Some(size) = size {
        if written != size {
            return Err(StoreError::SizeMismatch {
                digest: expected.clone(),
                expected: size,
                actual: written,
            });
        }
    }
    let actual = Digest::from_sha256(hasher);
    if &actual != expected {
        return Err(StoreError::DigestMismatch {
            expected: expected.clone(),
            actual,
            size: written,
        });
    }
    tmp.as_file()
        .sync_all()
        .map_err(io(format!("cannot sync blob {expected}")))?;
    Ok((tmp, written))
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::{Digest, Store, StoreConfig, StoreError};
    use std::io::Read as _;

    pub(crate) fn store(dir: &std::path::Path) -> Store {
        Store::open(StoreConfig {
            root: dir.to_path_buf(),
            max_blob_size: 1 << 20,
        })
        .unwrap()
    }

    pub(crate) fn tmp_is_empty(s: &Store) -> bool {
        std::fs::read_dir(s.tmp_dir()).unwrap().next().is_none()
    }

    #[test]
    fn put_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let d = s.put_blob_bytes(b"hello").unwrap();
        assert!(s.has_blob(&d));
        assert_eq!(s.read_blob(&d, 100).unwrap(), b"hello");
        assert_eq!(s.blob_size(&d).unwrap(), 5);
        assert!(tmp_is_empty(&s));
    }

    #[test]
    fn wrong_bytes_are_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let claimed = Digest::of(b"the real thing");
        let err = s.put_blob(&claimed, None, &mut &b"an impostor"[..]);
        assert!(matches!(err, Err(StoreError::DigestMismatch { .. })));
        assert!(!s.has_blob(&claimed));
        assert!(tmp_is_empty(&s), "the temp file is removed");
    }

    #[test]
    fn sizes_are_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let d = Digest::of(b"abc");
        // Declared too large: refused before reading anything.
        let mut never_read = std::io::repeat(0).take(0);
        let err = s.put_blob(&d, Some(10 << 30), &mut never_read).unwrap_err();
        assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
        // Declared size disagrees with the stream.
        let err = s.put_blob(&d, Some(2), &mut &b"abc"[..]).unwrap_err();
        assert!(matches!(err, StoreError::SizeMismatch { .. }), "{err}");
        // An endless stream stops at the limit.
        let err = s.put_blob(&d, None, &mut std::io::repeat(7)).unwrap_err();
        assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
        assert!(tmp_is_empty(&s));
    }

    #[test]
    fn manifests_need_their_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let layer = Digest::of(b"layer");
        let manifest = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{}","size":2}},"layers":[{{"digest":"{layer}","size":5}}]}}"#,
            Digest::of(b"{}")
        );
        let err = s.put_manifest(manifest.as_bytes()).unwrap_err();
        assert!(matches!(err, StoreError::MissingBlob { .. }), "{err}");
        s.put_blob_bytes(b"{}").unwrap();
        s.put_blob_bytes(b"layer").unwrap();
        let d = s.put_manifest(manifest.as_bytes()).unwrap();
        assert!(s.has_blob(&d));
    }
}
