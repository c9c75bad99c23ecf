//! Staging: a batch of blobs that enters the store all together or not at all.
//!
//! `skiff load` reads an archive whose blobs must all be checked before any of them counts:
//! they are verified into a private directory under `tmp/`, the caller validates the images
//! they make up, and only then [`Staging::commit`] renames each into `blobs/sha256/`. Dropping a
//! `Staging` without committing deletes the directory; a crash leaves it, unlocked, for the next
//! sweep (see [`crate::leftovers`]).

use crate::blobs::{open_blob_at, read_limited, write_verified};
use crate::fsutil::sync_dir;
use crate::{io, Digest, Result, Store};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::PathBuf;

pub struct Staging<'a> {
    store: &'a Store,
    dir: crate::leftovers::LockedDir,
    staged: BTreeMap<Digest, u64>,
}

impl Store {
    /// Begin a batch of blob writes.
    pub fn staging(&self) -> Result<Staging<'_>> {
        let dir = crate::leftovers::create_dir(&self.tmp_dir(), "stage-")
            .map_err(io("cannot create a staging directory"))?;
        Ok(Staging {
            store: self,
            dir,
            staged: BTreeMap::new(),
        })
    }
}

impl Staging<'_> {
    /// Verify `reader` into the batch as `expected` (see [`Store::put_blob`]). A blob the store
    /// already has is not read.
    pub fn put_blob(
        &mut self,
        expected: &Digest,
        size: Option<u64>,
        reader: &mut dyn Read,
    ) -> Result<u64> {
        if let Some(&n) = self.staged.get(expected) {
            return Ok(n);
        }
        if let Ok(n) = self.store.blob_size(expected) {
            return Ok(n);
        }
        let (tmp, n) = write_verified(
            self.dir.path(),
            expected,
            size,
            self.store.max_blob_size(),
            reader,
        )?;
        tmp.persist(self.path(expected))
            .map_err(|e| io(format!("cannot stage blob {expected}"))(e.error))?;
        self.staged.insert(expected.clone(), n);
        Ok(n)
    }

    /// Whether the batch or the store has this blob.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.staged.contains_key(digest) || self.store.has_blob(digest)
    }

    pub fn blob_size(&self, digest: &Digest) -> Result<u64> {
        match self.staged.get(digest) {
            Some(&n) => Ok(n),
            None => self.store.blob_size(digest),
        }
    }

    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        if self.staged.contains_key(digest) {
            open_blob_at(&self.path(digest), digest)
        } else {
            self.store.open_blob(digest)
        }
    }

    pub fn read_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        if self.staged.contains_key(digest) {
            read_limited(&self.path(digest), digest, limit)
        } else {
            self.store.read_blob(digest, limit)
        }
    }

    /// Move every staged blob into the store (each rename atomic), then make it durable.
    /// Blobs come before anything that names them, so commit before setting tags.
    pub fn commit(self) -> Result<Vec<Digest>> {
        let blobs = self.store.blobs_dir();
        let mut moved = Vec::new();
        for digest in self.staged.keys() {
            std::fs::rename(self.path(digest), blobs.join(digest.hex()))
                .map_err(io(format!("cannot move blob {digest} into the store")))?;
            moved.push(digest.clone());
        }
        sync_dir(&blobs)?;
        Ok(moved)
    }

    fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.path().join(digest.hex())
    }
}

#[cfg(test)]
mod tests {
    use crate::blobs::tests::store;
    use crate::Digest;

    #[test]
    fn nothing_lands_until_commit() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let d = Digest::of(b"staged");
        {
            let mut st = s.staging().unwrap();
            st.put_blob(&d, None, &mut &b"staged"[..]).unwrap();
            assert!(st.has_blob(&d));
            assert!(!s.has_blob(&d));
            // dropped: discarded
        }
        assert!(!s.has_blob(&d));
        assert!(std::fs::read_dir(s.tmp_dir()).unwrap().next().is_none());
        let mut st = s.staging().unwrap();
        st.put_blob(&d, None, &mut &b"staged"[..]).unwrap();
        assert_eq!(st.commit().unwrap(), vec![d.clone()]);
        assert!(s.has_blob(&d));
        assert!(std::fs::read_dir(s.tmp_dir()).unwrap().next().is_none());
    }
}
