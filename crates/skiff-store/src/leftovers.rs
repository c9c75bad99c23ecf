//! Temp files of writes in flight, and the leftovers of writes a crash interrupted.
//!
//! Every temp file and staging directory skiff writes is created here and held under an
//! exclusive `flock(2)` by its writer for as long as the write runs. The kernel drops a flock
//! when the last descriptor of its file closes, so when the writer's process ends, however it
//! ends (`kill -9` included), the lock goes with it. "Nobody holds the lock" is therefore exactly
//! "no live writer": a sweep takes the lock itself before it removes anything, and never removes
//! the file of a write that is still running, however slow.
//!
//! Why a lock rather than the writer's pid in the name, or an age: a pid is reused (a leftover
//! would then be kept until the new process ends) and means nothing across pid namespaces (a
//! daemon in a container sharing SKIFF_HOME with the host would see live writers as dead); an age
//! limit either deletes the temp file of a slow download (a 4 GiB pull on a slow link runs for
//! hours) or keeps a crash's leftover for as long as the limit.
//!
//! One race is closed explicitly: a sweep could lock and remove a file between its creation and
//! its writer's `flock`. The writer checks, once it holds the lock, that its path still names its
//! file; if not, it starts over with a new name.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use tempfile::{NamedTempFile, TempDir};

/// The name prefixes of every temp file and directory skiff creates. A sweep takes nothing
/// else: `tmp/` is skiff's, but a `SKIFF_HOME` set to a directory that was already in use
/// (`SKIFF_HOME=~` makes it `~/tmp`) must not cost its owner every file in it.
pub const PREFIXES: [&str; 3] = [".blob-", ".tmp-", "stage-"];

/// Attempts at creating a locked temp file before giving up (a sweep can win the race once or
/// twice; a hundred times means something else is wrong).
const ATTEMPTS: usize = 100;

/// A temp file in `dir` whose name starts with `prefix` and ends with `suffix`, locked for its
/// writer until it is persisted or dropped.
pub fn create_file(dir: &Path, prefix: &str, suffix: &str) -> io::Result<NamedTempFile> {
    debug_assert!(PREFIXES.contains(&prefix), "a sweep would not see {prefix}");
    for _ in 0..ATTEMPTS {
        let tmp = tempfile::Builder::new()
            .prefix(prefix)
            .suffix(suffix)
            .tempfile_in(dir)?;
        tmp.as_file().lock()?;
        if still_names(tmp.path(), tmp.as_file())? {
            return Ok(tmp);
        }
        // Swept before we locked it: its name is gone (or about to be); start over.
        let _ = tmp.into_temp_path().keep();
    }
    Err(io::Error::other(format!(
        "cannot create a temp file in {}: it kept disappearing",
        dir.display()
    )))
}

/// A temp directory and the lock that marks it live: dropping it removes the directory, then
/// releases the lock.
pub struct LockedDir {
    dir: TempDir,
    _lock: File,
}

impl LockedDir {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A staging directory in `dir`, locked like [`create_file`]'s files.
pub fn create_dir(dir: &Path, prefix: &str) -> io::Result<LockedDir> {
    debug_assert!(PREFIXES.contains(&prefix), "a sweep would not see {prefix}");
    for _ in 0..ATTEMPTS {
        let tmp = tempfile::Builder::new().prefix(prefix).tempdir_in(dir)?;
        // Unlike a file, a directory is not open when it is created: a sweep may remove it
        // before we open it (seen with four processes loading at once).
        let lock = match File::open(tmp.path()) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let _ = tmp.keep();
                continue;
            }
            Err(e) => return Err(e),
        };
        lock.lock()?;
        if still_names(tmp.path(), &lock)? {
            return Ok(LockedDir {
                dir: tmp,
                _lock: lock,
            });
        }
        let _ = tmp.keep();
    }
    Err(io::Error::other(format!(
        "cannot create a staging directory in {}: it kept disappearing",
        dir.display()
    )))
}

/// Whether `path` still names the file `file` is open on.
fn still_names(path: &Path, file: &File) -> io::Result<bool> {
    let held = file.metadata()?;
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(m.dev() == held.dev() && m.ino() == held.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// A temp file or directory no live writer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    pub path: PathBuf,
    /// Its size (a directory's: the sum of the files in it).
    pub bytes: u64,
}

/// What a look at a temp directory found.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// Left by writers that are gone; removed when the scan was asked to remove.
    pub leftovers: Vec<Leftover>,
    /// Held by live writers: never touched.
    pub in_flight: usize,
}

/// Every entry of `dir` named like skiff's temp files ([`PREFIXES`]) that no live writer
/// holds; with `remove`, each is removed while this process holds its lock. Other names are
/// not skiff's and are left alone. A missing `dir` holds nothing.
pub fn scan(dir: &Path, remove: bool) -> io::Result<Scan> {
    let mut out = Scan::default();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !PREFIXES.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue; // removed meanwhile
        };
        let is_dir = meta.is_dir();
        if !is_dir && !meta.is_file() {
            // A symlink, FIFO or device: no skiff writer makes one, so nobody's write is in it.
            // Only unlinked, never opened (opening a FIFO would block).
            if remove {
                remove_path(&path, false)?;
            }
            out.leftovers.push(Leftover { path, bytes: 0 });
            continue;
        }
        let Ok(file) = File::open(&path) else {
            continue; // removed meanwhile
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                out.in_flight += 1;
                continue;
            }
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        // Another sweep may have removed it (and a new file taken the name) while we waited.
        if !still_names(&path, &file)? {
            continue;
        }
        let bytes = if is_dir { dir_size(&path) } else { meta.len() };
        if remove {
            remove_path(&path, is_dir)?;
        }
        out.leftovers.push(Leftover { path, bytes });
        // `file` drops here, releasing the lock after the removal.
    }
    out.leftovers.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn remove_path(path: &Path, is_dir: bool) -> io::Result<()> {
    let r = if is_dir {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_file_is_never_swept_a_released_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let live = create_file(dir.path(), ".blob-", "").unwrap();
        let live_dir = create_dir(dir.path(), "stage-").unwrap();
        std::fs::write(live_dir.path().join("x"), b"abc").unwrap();
        let s = scan(dir.path(), true).unwrap();
        assert!(s.leftovers.is_empty(), "{:?}", s.leftovers);
        assert_eq!(s.in_flight, 2);
        assert!(live.path().exists() && live_dir.path().join("x").exists());

        // A writer that died: its lock went with it; the name stays, as after kill -9.
        let dead = live.into_temp_path().keep().unwrap();
        let dead_dir = live_dir.dir.keep();
        drop(live_dir._lock);
        let s = scan(dir.path(), false).unwrap();
        assert_eq!(s.leftovers.len(), 2, "{s:?}");
        assert!(s
            .leftovers
            .iter()
            .any(|l| l.path == dead_dir && l.bytes == 3));
        assert!(dead.exists(), "a scan without remove removes nothing");
        let s = scan(dir.path(), true).unwrap();
        assert_eq!(s.leftovers.len(), 2);
        assert!(!dead.exists() && !dead_dir.exists());
    }

    /// Writers and a sweep racing flat out: no write ever loses its file or directory (before
    /// the create_dir fix, a sweep removed a staging dir between its mkdir and its open).
    #[test]
    fn a_sweep_racing_writers_never_takes_their_files() {
        use std::io::Write;
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let sweepers: Vec<_> = (0..3)
            .map(|_| {
                let (path, stop) = (dir.path().to_path_buf(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        scan(&path, true).unwrap();
                    }
                })
            })
            .collect();
        for _ in 0..500 {
            let d = create_dir(dir.path(), "stage-").unwrap();
            std::fs::write(d.path().join("blob"), b"x").unwrap();
            let mut f = create_file(dir.path(), ".blob-", "").unwrap();
            f.write_all(b"y").unwrap();
            assert!(f.path().exists() && d.path().join("blob").exists());
        }
        stop.store(true, Ordering::Relaxed);
        for s in sweepers {
            s.join().unwrap();
        }
    }

    /// `SKIFF_HOME=~` makes `~/tmp` the store's: what its owner keeps there is not swept.
    #[test]
    fn only_skiffs_names_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let mine = [dir.path().join("notes.txt"), dir.path().join("project")];
        std::fs::write(&mine[0], b"keep me").unwrap();
        std::fs::create_dir(&mine[1]).unwrap();
        let dead = create_file(dir.path(), ".tmp-", "").unwrap();
        let dead = dead.into_temp_path().keep().unwrap();
        let s = scan(dir.path(), true).unwrap();
        assert_eq!(s.leftovers.len(), 1, "{s:?}");
        assert!(!dead.exists());
        assert!(mine.iter().all(|p| p.exists()));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_fifo_is_removed_without_being_opened() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join(".blob-fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a plain syscall on a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let s = scan(dir.path(), true).unwrap();
        assert_eq!(s.leftovers.len(), 1);
        assert!(!fifo.exists());
    }
}
