//! The store's use of [`crate::atomic`], with its errors in the store's terms.

use crate::atomic::{write_atomic, Atomic};
use crate::{io, Result};
use std::path::Path;

/// fsync a directory, so a rename into it survives a power cut.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    crate::atomic::sync_dir(dir).map_err(io(format!("cannot sync {}", dir.display())))
}

/// Write `bytes` to `path` atomically, through a locked temp file in `tmp_dir` (the store's
/// `tmp/`, on the same filesystem, where a crash's leftover is swept like any other).
pub(crate) fn write_atomically(tmp_dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    let how = Atomic {
        mode: 0o600,
        temp_dir: Some(tmp_dir),
    };
    write_atomic(path, how, bytes).map_err(io(format!("cannot write {}", path.display())))
}
