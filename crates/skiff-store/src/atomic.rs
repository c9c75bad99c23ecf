//! The one way skiff replaces a file: write a temp file on the same filesystem, fsync it, rename
//! it over the target, fsync the directory. A reader sees the old content, none, or all of the
//! new; after a power cut the file is one or the other, never a mix or a zero-length stub
//! (rename alone is not durable until its directory is synced). Tags, the compile cache,
//! credentials, the daemon's token and `skiff save -o` all write through here.

use std::fs::File;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// How an atomic write makes its temp file.
#[derive(Debug, Clone, Copy)]
pub struct Atomic<'a> {
    /// The file's permissions, set on the temp file before any byte is written, so a secret is
    /// never readable by others, not even for a moment.
    pub mode: u32,
    /// `None`: the temp file sits beside the target (`.skiff-tmp-*`). `Some(dir)`: a temp file
    /// locked for its writer in `dir` (a store's `tmp/`, on the same filesystem as the target),
    /// whose leftover after a crash [`crate::leftovers::scan`] finds and sweeps.
    pub temp_dir: Option<&'a Path>,
}

impl Atomic<'_> {
    /// Owner-only, temp file beside the target.
    pub const PRIVATE: Atomic<'static> = Atomic {
        mode: 0o600,
        temp_dir: None,
    };
}

/// Write `bytes` to `path` atomically (see the module doc).
pub fn write_atomic(path: &Path, how: Atomic<'_>, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, how, |f| io::Write::write_all(f, bytes))
}

/// Write `path` atomically with what `fill` writes into the temp file (streamed: a large file is
/// never held in memory). If `fill` fails, nothing is renamed and the temp file is removed.
pub fn write_atomic_with<E: From<io::Error>>(
    path: &Path,
    how: Atomic<'_>,
    fill: impl FnOnce(&mut File) -> Result<(), E>,
) -> Result<(), E> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut tmp = match how.temp_dir {
        Some(tmp_dir) => {
            std::fs::create_dir_all(tmp_dir)?;
            crate::leftovers::create_file(tmp_dir, ".tmp-", "")?
        }
        None => tempfile::Builder::new()
            .prefix(".skiff-tmp-")
            .tempfile_in(dir)?,
    };
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(how.mode))?;
    fill(tmp.as_file_mut())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)?;
    Ok(())
}

/// fsync a directory, so a rename into it survives a power cut.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_with_the_mode_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("secret");
        write_atomic(&path, Atomic::PRIVATE, b"one").unwrap();
        write_atomic(&path, Atomic::PRIVATE, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["secret"], "no temp file is left beside it");
    }

    #[test]
    fn a_failed_fill_leaves_the_old_file_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        let path = dir.path().join("tag");
        let how = Atomic {
            mode: 0o644,
            temp_dir: Some(&tmp),
        };
        write_atomic(&path, how, b"old").unwrap();
        let failed = write_atomic_with(&path, how, |f| {
            io::Write::write_all(f, b"half")?;
            Err(io::Error::other("the writer gave up"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }
}
