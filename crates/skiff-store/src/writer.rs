//! A blob written piece by piece (a download), hashed on the way in and published under its
//! digest only by [`PendingBlob::commit`], once size and digest match.
//!
//! [`Store::put_blob`] pulls bytes from a reader; a network client pushes them as they arrive,
//! so it needs a writer instead. The guarantees are the same: nothing lands under a digest
//! unless every byte matched, and dropping an uncommitted writer deletes its temp file.
//!
//! Two things keep a large download from waiting on this writer (measured with
//! `bench/registry.sh`, 50 MiB): the sha256, the costliest step, runs on a thread of its own
//! when the bytes come as shared buffers ([`PendingBlob::write_bytes`]), beside the copy into
//! the page cache instead of after it; and the kernel is asked to start writing back every few
//! MiB, so the fsync at commit waits for the tail of the file rather than all of it.

use crate::fsutil::sync_dir;
use crate::{io, Digest, Result, Store, StoreError};
use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;
use tempfile::NamedTempFile;

/// How many bytes are written between two writeback requests.
const WRITEBACK_EVERY: u64 = 4 << 20;

/// Blobs smaller than this are hashed inline: a thread costs more than it saves on them.
const HASH_BESIDE_FROM: u64 = 1 << 20;

/// Pieces queued for the hashing thread before a writer waits for it (pieces are what the
/// network hands over, a few hundred KiB each: this bounds memory, not speed).
const HASH_QUEUE: usize = 32;

/// A blob being written. Owns everything it needs, so it may outlive the borrow of the store
/// (the store's lock is held by the `Store` itself, which the caller keeps open).
pub struct PendingBlob {
    tmp: NamedTempFile,
    hash: Hashing,
    written: u64,
    /// Where the next writeback request starts.
    writeback_from: u64,
    expected: Digest,
    size: Option<u64>,
    limit: u64,
    dest: PathBuf,
    blobs_dir: PathBuf,
}

/// Where the sha256 of the written bytes is computed.
enum Hashing {
    /// On the writing thread, as each piece is written.
    Inline(Sha256),
    /// On a thread of its own, fed shared pieces; it hands the hasher back when the queue closes.
    Beside {
        queue: SyncSender<Bytes>,
        hasher: JoinHandle<Sha256>,
    },
}

impl Hashing {
    /// Hash `piece` (a cheap clone of a shared buffer on the hashing thread's path).
    fn update(&mut self, piece: &Bytes) -> std::io::Result<()> {
        match self {
            Hashing::Inline(h) => {
                h.update(piece);
                Ok(())
            }
            Hashing::Beside { queue, .. } => queue
                .send(piece.clone())
                .map_err(|_| std::io::Error::other("the hashing thread stopped")),
        }
    }

    /// Move hashing onto its own thread, carrying over what was hashed so far.
    fn beside(&mut self) -> std::io::Result<()> {
        if let Hashing::Inline(h) = self {
            let mut h = std::mem::take(h);
            let (queue, pieces) = sync_channel::<Bytes>(HASH_QUEUE);
            let hasher = std::thread::Builder::new()
                .name("skiff-blob-hash".into())
                .spawn(move || {
                    for piece in pieces {
                        h.update(&piece);
                    }
                    h
                })?;
            *self = Hashing::Beside { queue, hasher };
        }
        Ok(())
    }

    fn finish(self) -> std::io::Result<Sha256> {
        match self {
            Hashing::Inline(h) => Ok(h),
            Hashing::Beside { queue, hasher } => {
                drop(queue);
                hasher
                    .join()
                    .map_err(|_| std::io::Error::other("the hashing thread panicked"))
            }
        }
    }
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
        let tmp = crate::leftovers::create_file(&dir, ".blob-", "").map_err(io(format!(
            "cannot create a temp file in {}",
            dir.display()
        )))?;
        Ok(PendingBlob {
            tmp,
            hash: Hashing::Inline(Sha256::new()),
            written: 0,
            writeback_from: 0,
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
        self.check_limit(buf.len())?;
        let n = self.tmp.write(buf)?;
        match &mut self.hash {
            Hashing::Inline(h) => h.update(&buf[..n]),
            beside => beside.update(&Bytes::copy_from_slice(&buf[..n]))?,
        }
        self.wrote(n);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tmp.flush()
    }
}

impl PendingBlob {
    /// Write a whole piece that the caller holds as a shared buffer (a network client's
    /// `Bytes`): it is hashed on a thread of its own while this thread writes it, so a large
    /// blob costs the slower of the two, not their sum.
    pub fn write_bytes(&mut self, piece: Bytes) -> std::io::Result<()> {
        self.check_limit(piece.len())?;
        if self.size.is_none_or(|size| size >= HASH_BESIDE_FROM) {
            self.hash.beside()?;
        }
        self.hash.update(&piece)?;
        self.tmp.write_all(&piece)?;
        self.wrote(piece.len());
        Ok(())
    }

    fn check_limit(&self, more: usize) -> std::io::Result<()> {
        if self.written + more as u64 > self.limit {
            return Err(std::io::Error::other(format!(
                "blob {} is longer than {} bytes",
                self.expected, self.limit
            )));
        }
        Ok(())
    }

    fn wrote(&mut self, n: usize) {
        self.written += n as u64;
        if self.written - self.writeback_from >= WRITEBACK_EVERY {
            start_writeback(self.tmp.as_file(), self.writeback_from, self.written);
            self.writeback_from = self.written;
        }
    }
}

/// Ask the kernel to start writing `from..to` of `file` to disk now, without waiting for it.
/// Only a head start for the fsync at commit, which stays the guarantee: a failure is ignored.
#[cfg(target_os = "linux")]
fn start_writeback(file: &std::fs::File, from: u64, to: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(from), i64::try_from(to - from)) else {
        return;
    };
    // SAFETY: a plain syscall on a descriptor this writer owns; no memory is passed.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &std::fs::File, _from: u64, _to: u64) {}

impl PendingBlob {
    /// Check size and digest, fsync, and rename into `blobs/sha256/`. Returns the size. On any
    /// mismatch the temp file is deleted and nothing is stored.
    pub fn commit(self) -> Result<u64> {
        let PendingBlob {
            tmp,
            hash,
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
        let hasher = hash
            .finish()
            .map_err(io(format!("cannot hash blob {expected}")))?;
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
    use crate::blobs::tests::{store, tmp_is_empty};
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
        assert!(tmp_is_empty(&s), "the temp file went with the writer");
    }

    /// A store that takes blobs of a few MiB, the size at which hashing moves to its own thread
    /// and writeback is requested.
    fn roomy_store(dir: &std::path::Path) -> crate::Store {
        crate::Store::open(crate::StoreConfig {
            root: dir.to_path_buf(),
            max_blob_size: 16 << 20,
        })
        .unwrap()
    }

    /// A download's path: shared pieces hashed on their own thread, a few MiB so writeback
    /// requests are made too, with a plain `write` in between that must join the same hash.
    #[test]
    fn shared_pieces_hashed_beside_are_verified_like_slices() {
        let dir = tempfile::tempdir().unwrap();
        let s = roomy_store(dir.path());
        let bytes: Vec<u8> = (0..6u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let d = Digest::of(&bytes);
        let mut w = s.blob_writer(&d, Some(bytes.len() as u64)).unwrap();
        let (head, tail) = bytes.split_at(300 << 10);
        w.write_all(head).unwrap();
        let (middle, last) = tail.split_at(tail.len() - 1000);
        for piece in middle.chunks(400 << 10) {
            w.write_bytes(bytes::Bytes::copy_from_slice(piece)).unwrap();
        }
        w.write_all(last).unwrap();
        assert!(!s.has_blob(&d), "nothing visible before commit");
        assert_eq!(w.commit().unwrap(), bytes.len() as u64);
        assert_eq!(s.read_blob(&d, 7 << 20).unwrap(), bytes);
    }

    #[test]
    fn shared_pieces_that_do_not_match_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = roomy_store(dir.path());
        let real = vec![7u8; 3 << 20];
        let d = Digest::of(&real);
        let mut w = s.blob_writer(&d, Some(real.len() as u64)).unwrap();
        let mut forged = real.clone();
        forged[2 << 20] = 8;
        for piece in forged.chunks(512 << 10) {
            w.write_bytes(bytes::Bytes::copy_from_slice(piece)).unwrap();
        }
        assert!(matches!(w.commit(), Err(StoreError::DigestMismatch { .. })));
        let mut w = s.blob_writer(&d, Some(real.len() as u64)).unwrap();
        w.write_bytes(bytes::Bytes::from(real.clone())).unwrap();
        assert!(
            w.write_bytes(bytes::Bytes::from_static(b"x")).is_err(),
            "past the declared size"
        );
        drop(w);
        assert!(!s.has_blob(&d));
        assert!(tmp_is_empty(&s), "the temp file went with the writer");
    }
}
