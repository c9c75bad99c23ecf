//! The daemon's copy of every binary it runs, content-addressed: `blobs/sha256/<hex>`.
//!
//! A workload names its binary by digest, so the daemon can start it again after a restart
//! even if the user's file moved or changed. A blob lands through temp file + fsync + rename
//! only after its digest is computed: no partial or wrong file ever sits under a digest.
//! (When `skiff-store` lands this becomes its blob store; the digest-based seam stays.)

use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Clone)]
pub struct Blobs {
    dir: PathBuf,
}

/// `sha256:<64 lowercase hex>` → the hex, or `None` if it is not one.
pub fn parse_digest(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(hex)
}

impl Blobs {
    pub fn new(dir: PathBuf) -> std::io::Result<Blobs> {
        std::fs::create_dir_all(dir.join("sha256"))?;
        Ok(Blobs { dir })
    }

    pub fn path(&self, hex: &str) -> PathBuf {
        self.dir.join("sha256").join(hex)
    }

    pub fn has(&self, digest: &str) -> bool {
        parse_digest(digest).is_some_and(|h| self.path(h).is_file())
    }

    /// Store `bytes`; answers their digest.
    pub fn put(&self, bytes: &[u8]) -> std::io::Result<String> {
        let hex = hex::encode(Sha256::digest(bytes));
        let path = self.path(&hex);
        if !path.exists() {
            let dir = path.parent().unwrap_or(Path::new("."));
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            tmp.write_all(bytes)?;
            tmp.as_file().sync_all()?;
            tmp.persist(&path).map_err(|e| e.error)?;
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(format!("sha256:{hex}"))
    }

    /// The bytes under `digest`, checked against it (a disk that flipped a bit is an error, not
    /// a different program run).
    pub fn get(&self, digest: &str) -> std::io::Result<Vec<u8>> {
        let hex = parse_digest(digest).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("not a digest: {digest}"),
            )
        })?;
        let bytes = std::fs::read(self.path(hex))?;
        if hex::encode(Sha256::digest(&bytes)) != hex {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "blob {digest} is corrupt on disk (its content no longer matches its digest)"
                ),
            ));
        }
        Ok(bytes)
    }
}
