//! skiff's local store under `SKIFF_HOME`: content-addressed blobs, tags, and the upkeep verbs
//! (prune, check).
//!
//! ```text
//! SKIFF_HOME/
//!   lock                                   flock: shared while a process uses the store,
//!                                          exclusive while prune or check --repair runs
//!   blobs/sha256/<hex>                     every blob, named by the sha256 of its bytes
//!   tags/<repository path>/_tags/<tag>     one file per tag: "sha256:<hex>\n"
//!   tmp/                                   temp files and staging dirs of writes in flight
//!   cache/compiled/<aa>/<hex>-<settings>.cwasm   the engine's compile cache (pruned here)
//!   cache/compiled/tmp/                    the compile cache's writes in flight
//! ```
//!
//! Crash safety: a blob is streamed into `tmp/` while it is hashed, compared with the digest it
//! must have, fsynced, renamed to `blobs/sha256/<hex>`, and the directory fsynced. A tag is one
//! file written the same way. A crash at any point leaves either nothing or the complete, right
//! bytes under a name; leftovers in `tmp/` are never read. Each temp file is locked by its writer
//! while it runs ([`leftovers`]), so a leftover is told from a write in flight exactly: the CLI
//! sweeps leftovers whenever it opens the store, `check` lists them, prune and repair remove them. Writes happen
//! in dependency order (layers and config, then the manifest, then the tag), so a tag never
//! names an incomplete image. Two processes writing the same blob or tag each rename a complete
//! file into place: the last rename wins and both are the same bytes.
//!
//! Prune and repair delete things, so they take the lock exclusively: no other process is in
//! the middle of a write (between "blobs stored" and "tag set") while they decide what is
//! unreferenced.

pub mod atomic;
mod blobs;
mod check;
mod digest;
mod fsutil;
mod gc;
pub mod leftovers;
mod refs;
mod staging;
mod tags;
pub mod time;
mod writer;

pub use check::{CheckReport, Problem};
pub use digest::{Digest, DigestError};
pub use gc::{PruneReport, Usage};
pub use refs::{manifest_children, MANIFEST_MAX};
pub use staging::Staging;
pub use tags::TagEntry;
pub use writer::PendingBlob;

use std::fs::{self, File};
use std::path::{Path, PathBuf};

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `SKIFF_HOME`.
    pub root: PathBuf,
    /// The largest blob accepted; anything declared or streamed larger is refused before it
    /// fills the disk.
    pub max_blob_size: u64,
}

/// The compile cache's temp directory, under `cache/compiled/` (shards are two hex digits, so the
/// names never meet). skiff-engine writes there through [`leftovers::create_file`].
pub const COMPILE_CACHE_TMP: &str = "tmp";

impl StoreConfig {
    /// 4 GiB: far above any real Wasm binary, far below a runaway stream.
    pub const DEFAULT_MAX_BLOB_SIZE: u64 = 4 << 30;
}

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("blob {0} is not in the store")]
    BlobNotFound(Digest),
    #[error(
        "content does not match its digest: expected {expected}, got {actual} ({size} bytes); \
         nothing was stored"
    )]
    DigestMismatch {
        expected: Digest,
        actual: Digest,
        size: u64,
    },
    #[error("blob {digest}: declared {expected} bytes but has {actual}; nothing was stored")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("{what} is {size} bytes, over the limit of {limit} bytes; refused")]
    TooLarge { what: String, size: u64, limit: u64 },
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("manifest {digest} is not usable: {reason}")]
    InvalidManifest { digest: Digest, reason: String },
    #[error("manifest {manifest} names blob {blob}, which is not in the store")]
    MissingBlob { manifest: Digest, blob: Digest },
    #[error(transparent)]
    Digest(#[from] DigestError),
}

pub type Result<T> = std::result::Result<T, StoreError>;

pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StoreError {
    let context = context.into();
    move |source| StoreError::Io { context, source }
}

/// An open store. Holding one holds the store's lock shared, so no prune runs underneath it.
pub struct Store {
    root: PathBuf,
    max_blob_size: u64,
    lock: File,
}

impl Store {
    /// Open (creating if needed) the store at `config.root`. Blocks while a prune or repair in
    /// another process holds the lock exclusively.
    pub fn open(config: StoreConfig) -> Result<Store> {
        let root = config.root;
        for dir in ["blobs/sha256", "tags", "tmp"] {
            let p = root.join(dir);
            fs::create_dir_all(&p).map_err(io(format!("cannot create {}", p.display())))?;
        }
        let lock_path = root.join("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(format!("cannot open {}", lock_path.display())))?;
        lock.lock_shared()
            .map_err(io(format!("cannot lock {}", lock_path.display())))?;
        Ok(Store {
            root,
            max_blob_size: config.max_blob_size,
            lock,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn max_blob_size(&self) -> u64 {
        self.max_blob_size
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where the compile cache's temp files are written (see [`leftovers`]).
    pub fn compile_cache_tmp_dir(&self) -> PathBuf {
        self.compile_cache_dir().join(COMPILE_CACHE_TMP)
    }

    /// Remove what interrupted writes left in `tmp/` and in the compile cache's temp directory,
    /// never touching a write in flight (its writer holds its lock). Cheap when there is none
    /// (two directory reads), so the CLI calls it whenever it opens the store.
    pub fn sweep_leftovers(&self) -> Result<leftovers::Scan> {
        self.leftovers(true)
    }

    /// Leftovers of interrupted writes (removed with `remove`), and how many writes are in flight.
    pub(crate) fn leftovers(&self, remove: bool) -> Result<leftovers::Scan> {
        let mut all = leftovers::Scan::default();
        for dir in [self.tmp_dir(), self.compile_cache_tmp_dir()] {
            let s = leftovers::scan(&dir, remove)
                .map_err(io(format!("cannot sweep {}", dir.display())))?;
            all.leftovers.extend(s.leftovers);
            all.in_flight += s.in_flight;
        }
        Ok(all)
    }

    pub(crate) fn tags_dir(&self) -> PathBuf {
        self.root.join("tags")
    }

    /// The engine's compile cache, which prune keeps in step with the blobs.
    pub fn compile_cache_dir(&self) -> PathBuf {
        self.root.join("cache").join("compiled")
    }

    /// Run `f` with the store lock held exclusively (no other skiff process inside the store),
    /// then return to shared.
    pub(crate) fn exclusively<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        match self.lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                eprintln!("waiting for other skiff processes to finish with the store…");
                self.lock.lock().map_err(io("cannot lock the store"))?;
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(io("cannot lock the store")(e));
            }
        }
        let out = f();
        self.lock
            .lock_shared()
            .map_err(io("cannot return the store lock to shared"))?;
        out
    }
}
