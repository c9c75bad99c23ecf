//! A blob written piece by piece (a download), hashed on the way in and published under its
//! digest only by [`PendingBlob::commit`], once size and digest match.
//!
//! [`Store::put_blob`] pulls bytes from a reader; a network client pushes them as they arrive,
//! so it needs a writer instead. The guarantees are the same: nothing lands under a digest
//! unless every byte matched, and dropping an uncommitted writer deletes its temp file.

use crate::fsutil::sync_dir;
use crate::{io, Digest, Result, Store, StoreError};
use sha2::{Digest as _, Sha256};
use std::io::Write;
use std::path::PathBuf;
use tempfile::NamedTempFile;

/// A blob being written. Owns everything it needs, so it may outlive the borrow of the store
/// (the store's lock is held by the `Store` itself, which the caller keeps open).
pub struct PendingBlob {
    tmp: NamedTempFile,
    hasher: Sha256,
    written: u64,
    expected: Digest,
    size: Option<u64>,
    limit: u64,
    dest: PathBuf,
    blobs_dir: PathBuf,
}

impl Store {
    /// Start writing the blob `expected` (`size` bytes, when known). A declared size over the
    /// store's limit is refused before anything is written.
    pub fn blob_writer(&self, expected: &Digest, size: Option<u64>) -> Result<PendingBlob> {
        let limit = self.max_blob_size();
        if let Some(size) = size.filter(|&s| s > limit) {
            return Err(StoreError::TooLarge {
                what: format!("blob {expected}"),
                size,
                limit,
            });
        }
        let dir = self.tmp_dir();
        let tmp = tempfile::Builder::new()
            .prefix(".blob-")
            .tempfile_in(&dir)
            .map_err(io(format!(
                "cannot create a temp file in {}",
                dir.display()
            )))?;
        Ok(PendingBlob {
            tmp,
            hasher: Sha256::new(),
            written: 0,
            expected: expected.clone(),
            size,
            limit: size.unwrap_or(limit).min(limit),
            dest: self.blob_path(expected),
            blobs_dir: self.blobs_dir(),
        })
    }
}

impl Write for PendingBlob {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.written + buf.len() as u64 > self.limit {
            return Err(std::io::Error::other(format!(
                "blob {} is longer than {} bytes",
                self.expected, self.limit
            )));
        }
        let n = self.tmp.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tmp.flush()
    }
}

impl PendingBlob {
    /// Check size and digest, fsync, and rename into `blobs/sha256/`. Returns the size. On any
    /// mismatch the temp file is deleted and nothing is stored.
    pub fn commit(self) -> Result<u64> {
        let PendingBlob {
            tmp,
            hasher,
            written,
            expected,
            size,
            dest,
            blobs_dir,
            ..
        } = self;
        if let Some(size) = size.filter(|&s| s != written) {
            return Err(StoreError::SizeMismatch {
                digest: expected,
                expected: size,
                actual: written,
            });
        }
        let actual = Digest::from_sha256(hasher);
        if actual != expected {
            return Err(StoreError::DigestMismatch {
                expected,
                actual,
                size: written,
            });
        }
        tmp.as_file()
            .sync_all()
            .map_err(io(format!("cannot sync blob {expected}")))?;
        tmp.persist(&dest)
            .map_err(|e| io(format!("cannot store blob {expected}"))(e.error))?;
        sync_dir(&blobs_dir)?;
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use crate::blobs::tests::store;
    use crate::{Digest, StoreError};
    use std::io::Write;

    #[test]
    fn written_then_committed() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let d = Digest::of(b"hello world");
        let mut w = s.blob_writer(&d, Some(11)).unwrap();
        w.write_all(b"hello ").unwrap();
        assert!(!s.has_blob(&d), "nothing visible before commit");
        w.write_all(b"world").unwrap();
        assert_eq!(w.commit().unwrap(), 11);
        assert_eq!(s.read_blob(&d, 100).unwrap(), b"hello world");
    }

    #[test]
    fn wrong_bytes_or_dropped_writers_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let d = Digest::of(b"the real thing");
        let mut w = s.blob_writer(&d, None).unwrap();
        w.write_all(b"an impostor").unwrap();
        assert!(matches!(w.commit(), Err(StoreError::DigestMismatch { .. })));
        let mut w = s.blob_writer(&d, Some(3)).unwrap();
        assert!(w.write_all(b"more than three").is_err());
        drop(w);
        assert!(!s.has_blob(&d));
        assert!(std::fs::read_dir(dir.path().join("tmp"))
            .unwrap()
            .next()
            .is_none());
    }
}
