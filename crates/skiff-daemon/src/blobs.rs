//! The daemon's copy of every binary it runs: a `skiff-store` content store of its own, at
//! `daemon/store/` (`blobs/sha256/<hex>`, `tmp/`, `lock`).
//!
//! A workload names its binary by digest, so the daemon can start it again after a restart
//! even if the user's file moved or changed. The store's blob writer does the writing: the
//! bytes are hashed into a temp file in `tmp/` that its writer holds locked (flock), fsynced and
//! renamed under their digest, so no partial or wrong file ever sits under a digest; a temp file
//! a crash left behind (`kill -9` mid-upload) is unlocked, and swept when the daemon starts.
//!
//! Why a store of its own rather than the CLI's (`SKIFF_HOME/blobs`): `rmi` and `image prune`
//! delete whatever no tag names, and no tag names the daemon's binaries.
//! Why `daemon/store/` rather than the store's root at `daemon/`: the store takes its `lock`
//! shared, and `daemon/lock` is the daemon's own, held exclusively (one daemon per home).
//!
//! Daemons before this one kept `daemon/blobs/sha256/<hex>` themselves; [`Blobs::open`] moves
//! those binaries into the store (one rename each), so the workloads of an existing home start.

use skiff_store::{Digest, Store, StoreConfig, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Clone)]
pub struct Blobs {
    store: Arc<Store>,
    /// `daemon/evidence/<hex>`: what came with each binary to show where it is from (the
    /// upload's `X-Skiff-Evidence`), checked again under the trust policy at every start.
    evidence: PathBuf,
}

/// An evidence file is the header it came in, which hyper bounds (api.rs, `API_MAX_HEAD`).
const MAX_EVIDENCE_FILE: u64 = 64 << 10;

/// Why a binary could not be stored or read back.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("blob {0} is corrupt on disk (its content no longer matches its digest)")]
    Corrupt(Digest),
}

impl Blobs {
    /// Open the store under `daemon_dir` (the daemon holds `daemon_dir/lock`, so no other
    /// daemon writes here), move in the binaries of the old layout, and sweep what interrupted
    /// uploads left.
    pub fn open(daemon_dir: &Path) -> Result<Blobs, StoreError> {
        let store = Store::open(StoreConfig {
            root: daemon_dir.join("store"),
            // The API refuses a larger upload first (api.rs, MAX_BLOB); this is the backstop.
            max_blob_size: StoreConfig::DEFAULT_MAX_BLOB_SIZE,
        })?;
        migrate(&daemon_dir.join("blobs"), &store)?;
        let swept = store.sweep_leftovers()?;
        if !swept.leftovers.is_empty() {
            tracing::info!(
                "removed {} temp file(s) of interrupted uploads ({} bytes)",
                swept.leftovers.len(),
                swept.leftovers.iter().map(|l| l.bytes).sum::<u64>()
            );
        }
        Ok(Blobs {
            store: Arc::new(store),
            evidence: daemon_dir.join("evidence"),
        })
    }

    pub fn has(&self, digest: &Digest) -> bool {
        self.store.has_blob(digest)
    }

    /// Store `bytes`; answers their digest.
    pub fn put(&self, bytes: &[u8]) -> Result<Digest, BlobError> {
        Ok(self.store.put_blob_bytes(bytes)?)
    }

    /// Keep `evidence` for `digest` (replacing what an earlier upload of it left).
    pub fn put_evidence(&self, digest: &Digest, evidence: &[u8]) -> std::io::Result<()> {
        let path = self.evidence.join(digest.hex());
        skiff_store::atomic::write_atomic(&path, skiff_store::atomic::Atomic::PRIVATE, evidence)
    }

    /// The evidence kept for `digest`, if any.
    pub fn evidence(&self, digest: &Digest) -> std::io::Result<Option<Vec<u8>>> {
        let path = self.evidence.join(digest.hex());
        match std::fs::metadata(&path) {
            Ok(m) if m.len() > MAX_EVIDENCE_FILE => Err(std::io::Error::other(format!(
                "{} is larger than any evidence the API accepts",
                path.display()
            ))),
            Ok(_) => std::fs::read(&path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The bytes under `digest`, checked against it (a disk that flipped a bit is an error, not
    /// a different program run).
    pub fn get(&self, digest: &Digest) -> Result<Vec<u8>, BlobError> {
        let bytes = self.store.read_blob(digest, self.store.max_blob_size())?;
        if Digest::of(&bytes) != *digest {
            return Err(BlobError::Corrupt(digest.clone()));
        }
        Ok(bytes)
    }
}

/// Move `old/sha256/<hex>` (the layout of daemons before the store) into `store`. Each move is
/// one rename, so a crash midway leaves every binary in one place or the other, and the next
/// start finishes the move. A `.tmp*` file there is a temp file of the old writer
/// (`tempfile`'s name), which took no lock: the daemon's lock is held, so no writer is running,
/// and it is removed. Anything else is left where it is.
fn migrate(old: &Path, store: &Store) -> Result<(), StoreError> {
    let dir = old.join("sha256");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(format!("cannot list {}", dir.display()), e)),
    };
    let mut moved = 0;
    for entry in entries {
        let path = entry
            .map_err(|e| io(format!("cannot list {}", dir.display()), e))?
            .path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let result = match Digest::from_hex(name) {
            Ok(d) => {
                moved += 1;
                std::fs::rename(&path, store.blob_path(&d))
            }
            Err(_) if name.starts_with(".tmp") && path.is_file() => std::fs::remove_file(&path),
            Err(_) => continue,
        };
        result.map_err(|e| io(format!("cannot move {} into the store", path.display()), e))?;
    }
    if moved > 0 {
        let blobs = store.root().join("blobs").join("sha256");
        skiff_store::atomic::sync_dir(&blobs)
            .map_err(|e| io(format!("cannot sync {}", blobs.display()), e))?;
        tracing::info!(
            "moved {moved} binaries from {} into the store",
            dir.display()
        );
    }
    // Empty now; if something else is there, it stays (and so does the directory).
    let _ = std::fs::remove_dir(&dir).and_then(|()| std::fs::remove_dir(old));
    Ok(())
}

fn io(context: String, source: std::io::Error) -> StoreError {
    StoreError::Io { context, source }
}
