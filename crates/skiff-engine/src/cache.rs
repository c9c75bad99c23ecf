//! The on-disk compile cache.
//!
//! An entry is keyed by (sha256 of the wasm, a hash of everything that makes compiled code
//! compatible: wasmtime version, engine settings, host CPU features). wasmtime computes the
//! second part itself (`Engine::precompile_compatibility_hash`), so a setting that changes code
//! can never be forgotten in the key.
//!
//! File format: `SKIFFCW1` + sha256 of the payload (32 bytes) + wasmtime's serialized artifact.
//! wasmtime checks the artifact's header and engine compatibility when it deserializes, but not
//! the integrity of the code inside; deserializing trusts its bytes. The checksum is what makes a
//! bit-flipped or truncated entry a cache miss instead of native code executed.
//!
//! Entries are written by skiff-store's atomic write through a temp file in `<dir>/tmp/`, locked
//! by its writer (`leftovers`): a compile killed mid-write leaves an unlocked `.tmp-*` there,
//! which the next engine to open the cache sweeps; a compile in flight in another process is
//! never touched.

use sha2::{Digest, Sha256};
use skiff_store::atomic::{write_atomic_with, Atomic};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"SKIFFCW1";
const HEADER: usize = MAGIC.len() + 32;

/// Whether a load compiled or used the cache; `skiff run --log-level debug` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from this entry; nothing was compiled.
    Hit(PathBuf),
    /// Compiled, and stored at this path for next time.
    Stored(PathBuf),
    /// An entry existed but was corrupt or foreign; it was removed and the code recompiled.
    Replaced { path: PathBuf, reason: String },
    /// Compiled; no cache is configured, or storing failed (the reason is logged).
    Compiled,
}

pub(crate) struct CompileCache {
    dir: PathBuf,
    /// Hex of the compatibility hash, part of every file name.
    settings: String,
}

impl CompileCache {
    /// Open the cache at `dir`, sweeping what interrupted writes left (one directory read when
    /// there is nothing to sweep).
    pub(crate) fn new(dir: PathBuf, settings: String) -> Self {
        let cache = CompileCache { dir, settings };
        match skiff_store::leftovers::scan(&cache.tmp_dir(), true) {
            Ok(s) => {
                for l in &s.leftovers {
                    tracing::debug!(
                        "removed {} ({} bytes), left by an interrupted compile",
                        l.path.display(),
                        l.bytes
                    );
                }
            }
            Err(e) => tracing::warn!("cannot sweep {}: {e}", cache.tmp_dir().display()),
        }
        cache
    }

    fn tmp_dir(&self) -> PathBuf {
        self.dir.join(skiff_store::COMPILE_CACHE_TMP)
    }

    pub(crate) fn settings(&self) -> &str {
        &self.settings
    }

    /// Where the entry for this wasm digest (hex, no `sha256:`) lives.
    pub(crate) fn path_for(&self, wasm_hex: &str) -> PathBuf {
        self.dir
            .join(&wasm_hex[..2])
            .join(format!("{wasm_hex}-{}.cwasm", self.settings))
    }

    /// The verified payload of an entry: `Ok(None)` when there is none, `Err(reason)` when one
    /// exists but must not be used.
    pub(crate) fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, String> {
        let mut bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("unreadable: {e}")),
        };
        if bytes.len() < HEADER || &bytes[..MAGIC.len()] != MAGIC {
            return Err("not a skiff cache entry (bad header)".into());
        }
        let sum = Sha256::digest(&bytes[HEADER..]);
        if sum.as_slice() != &bytes[MAGIC.len()..HEADER] {
            return Err("checksum mismatch (corrupt or truncated)".into());
        }
        bytes.drain(..HEADER);
        Ok(Some(bytes))
    }

    /// Store an artifact atomically: a locked temp file in `tmp/` (same filesystem), fsync,
    /// rename, fsync the directory. A reader sees the old entry, no entry, or the whole new one.
    pub(crate) fn write(&self, path: &Path, artifact: &[u8]) -> std::io::Result<()> {
        let tmp_dir = self.tmp_dir();
        let how = Atomic {
            mode: 0o600,
            temp_dir: Some(&tmp_dir),
        };
        write_atomic_with(path, how, |f| {
            f.write_all(MAGIC)?;
            f.write_all(&Sha256::digest(artifact))?;
            f.write_all(artifact)
        })
    }

    pub(crate) fn remove(&self, path: &Path) {
        if let Err(e) = fs::remove_file(path) {
            tracing::warn!("could not remove bad cache entry {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path().to_path_buf(), "abcd".into());
        let path = cache.path_for(&"ab".repeat(32));
        assert_eq!(cache.read(&path), Ok(None));
        cache.write(&path, b"artifact bytes").unwrap();
        assert_eq!(cache.read(&path), Ok(Some(b"artifact bytes".to_vec())));

        let mut raw = fs::read(&path).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        fs::write(&path, &raw).unwrap();
        assert!(cache.read(&path).unwrap_err().contains("checksum"));

        fs::write(&path, b"SKIFF").unwrap();
        assert!(cache.read(&path).unwrap_err().contains("header"));
        // No temp files are left behind by writes.
        let leftovers: Vec<_> = fs::read_dir(cache.tmp_dir()).unwrap().collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn opening_sweeps_a_dead_compiles_temp_file_but_not_a_live_one() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join(skiff_store::COMPILE_CACHE_TMP);
        fs::create_dir_all(&tmp).unwrap();
        // As a compile killed mid-write leaves it: named as the writer names it, unlocked.
        let dead = tmp.join(".tmp-AbCdEf");
        fs::write(&dead, b"SKIFFCW1 half").unwrap();
        let live = skiff_store::leftovers::create_file(&tmp, ".tmp-", "").unwrap();
        let _cache = CompileCache::new(dir.path().to_path_buf(), "abcd".into());
        assert!(!dead.exists(), "the dead compile's temp file is swept");
        assert!(
            live.path().exists(),
            "a compile in flight keeps its temp file"
        );
    }
}
