//! The few filesystem moves crash safety rests on.

use crate::{io, Result};
use std::fs::File;
use std::io::Write;
use std::path::Path;

/// fsync a directory, so a rename into it survives a power cut.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("cannot sync {}", dir.display())))
}

/// Write `bytes` to `path` atomically: a locked temp file in `tmp_dir` (the store's `tmp/`, on
/// the same filesystem, where a crash's leftover is swept like any other), fsync, rename, fsync
/// the directory.
pub(crate) fn write_atomically(tmp_dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().expect("atomic writes have a parent");
    std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    let mut tmp = crate::leftovers::create_file(tmp_dir, ".tmp-", "").map_err(io(format!(
        "cannot create a temp file in {}",
        tmp_dir.display()
    )))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(io(format!("cannot write {}", path.display())))?;
    tmp.persist(path)
        .map_err(|e| io(format!("cannot rename into {}", path.display()))(e.error))?;
    sync_dir(dir)
}
