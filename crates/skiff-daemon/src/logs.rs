//! A workload's log: its guest's stdout and stderr, one JSON object per line (Docker's
//! `json-file` fields: `log`, `stream`, `time`), in `logs/<id>.log`, rotated by size into
//! `<id>.log.1` (newest) … `<id>.log.<max_files-1>` (oldest). Files, not a directory per
//! workload: creating a directory cost a task run-to-completion more than its log write (a
//! `mkdir` per task was 6% of the daemon's CPU at 1,000 tasks per second).
//!
//! Paths here are named by the workload's *base* path `logs/<id>`; the files are beside it.
//!
//! Writing never fails towards the guest: a full disk costs lines, not the workload. The error
//! is kept (shown by `inspect` as `state.log_error`, and logged by the daemon once per new
//! error), and when writing works again a line in the log itself says how many were lost.

use skiff_api::{LogLine, Stream};
use skiff_engine::OutputSink;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A partial line is written out once it reaches this many bytes, so a guest that never writes
/// a newline still shows up in its log, in bounded memory.
const MAX_PARTIAL: usize = 16 << 10;

#[derive(Debug, Clone, Copy)]
pub struct LogConfig {
    /// Rotate the current file once it would grow past this.
    pub max_size: u64,
    /// Files kept, the current one included (at least 1).
    pub max_files: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            max_size: 10 << 20,
            max_files: 3,
        }
    }
}

pub struct LogWriter {
    /// `logs/<id>`: the files are `<id>.log`, `<id>.log.1`, … beside it.
    base: PathBuf,
    config: LogConfig,
    inner: Mutex<Inner>,
    /// Bumped after every write; `logs -f` waits on it.
    pub written: tokio::sync::watch::Sender<u64>,
    name: String,
}

struct Inner {
    file: Option<File>,
    size: u64,
    partial: [Vec<u8>; 2],
    error: Option<String>,
    lost: u64,
}

pub fn current(base: &Path) -> PathBuf {
    let mut p = base.as_os_str().to_owned();
    p.push(".log");
    p.into()
}

fn rotated(base: &Path, n: u32) -> PathBuf {
    let mut p = base.as_os_str().to_owned();
    p.push(format!(".log.{n}"));
    p.into()
}

/// The log files of the workload at `base`, oldest first.
pub fn files(base: &Path, max_files: u32) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = (1..max_files.max(1))
        .rev()
        .map(|n| rotated(base, n))
        .filter(|p| p.exists())
        .collect();
    if current(base).exists() {
        out.push(current(base));
    }
    out
}

/// Move logs written by daemons before the flat layout (`logs/<id>/current.log[.N]`) to
/// where this one reads them (`logs/<id>.log[.N]`), so `skiff logs` still finds them after an
/// upgrade. Best effort: what cannot be moved is left where it was, and said.
pub fn migrate_directories(logs_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(logs_dir) else {
        return;
    };
    for dir in entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()) {
        let Ok(files) = std::fs::read_dir(&dir) else {
            continue;
        };
        for old in files.flatten().map(|e| e.path()) {
            let Some(suffix) = old
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("current.log"))
                .map(str::to_string)
            else {
                continue;
            };
            let mut new = dir.as_os_str().to_owned();
            new.push(format!(".log{suffix}"));
            if let Err(e) = std::fs::rename(&old, &new) {
                tracing::warn!("cannot move the old log {}: {e}", old.display());
            }
        }
        // Only an empty directory goes.
        let _ = std::fs::remove_dir(&dir);
    }
}

/// Delete every log file of the workload at `base` (`rm`).
pub fn remove(base: &Path, max_files: u32) {
    for f in files(base, max_files) {
        let _ = std::fs::remove_file(f);
    }
}

impl LogWriter {
    /// `name` only labels the daemon's own warnings.
    pub fn new(base: PathBuf, config: LogConfig, name: String) -> Arc<LogWriter> {
        Arc::new(LogWriter {
            base,
            config,
            inner: Mutex::new(Inner {
                file: None,
                size: 0,
                partial: [Vec::new(), Vec::new()],
                error: None,
                lost: 0,
            }),
            written: tokio::sync::watch::Sender::new(0),
            name,
        })
    }

    /// `logs/<id>`; see [`current`] and [`files`] for the files.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// A sink for one of the guest's streams.
    pub fn sink(self: &Arc<Self>, stream: Stream) -> Arc<dyn OutputSink> {
        Arc::new(StreamSink {
            log: self.clone(),
            stream,
        })
    }

    /// The last write error, with the number of lines it cost, if writing has ever failed.
    pub fn error(&self) -> Option<String> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .error
            .as_ref()
            .map(|e| format!("{e} ({} lines lost)", inner.lost))
    }

    /// Write out what is left of unfinished lines (the guest ended without a newline).
    pub fn flush_partial(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for (i, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
            if !inner.partial[i].is_empty() {
                let text = std::mem::take(&mut inner.partial[i]);
                self.append(&mut inner, stream, &String::from_utf8_lossy(&text));
            }
        }
        drop(inner);
        self.written.send_modify(|n| *n += 1);
    }

    fn write(&self, stream: Stream, mut bytes: &[u8]) {
        let i = stream as usize;
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(nl) = bytes.iter().position(|&b| b == b'\n') {
            let (line, rest) = bytes.split_at(nl + 1);
            bytes = rest;
            let text = if inner.partial[i].is_empty() {
                String::from_utf8_lossy(line).into_owned()
            } else {
                let mut whole = std::mem::take(&mut inner.partial[i]);
                whole.extend_from_slice(line);
                String::from_utf8_lossy(&whole).into_owned()
            };
            self.append(&mut inner, stream, &text);
        }
        inner.partial[i].extend_from_slice(bytes);
        if inner.partial[i].len() >= MAX_PARTIAL {
            let text = std::mem::take(&mut inner.partial[i]);
            self.append(&mut inner, stream, &String::from_utf8_lossy(&text));
        }
        drop(inner);
        self.written.send_modify(|n| *n += 1);
    }

    fn append(&self, inner: &mut Inner, stream: Stream, text: &str) {
        if inner.lost > 0 && inner.error.is_some() {
            // Try to say what was lost first; if that fails too, the count keeps growing.
            let note = format!(
                "[skiff] {} log lines were lost: {}\n",
                inner.lost,
                inner.error.as_deref().unwrap_or_default()
            );
            if self.append_record(inner, Stream::Stderr, &note).is_ok() {
                inner.lost = 0;
            }
        }
        if let Err(e) = self.append_record(inner, stream, text) {
            inner.lost += 1;
            inner.file = None; // reopen on the next line: the disk may have room again
            let msg = format!("cannot write to {}: {e}", current(&self.base).display());
            if inner.error.as_deref() != Some(msg.as_str()) {
                tracing::warn!("workload {}: {msg}; it keeps running, its output is lost until writing works again", self.name);
                inner.error = Some(msg);
            }
        }
    }

    fn append_record(&self, inner: &mut Inner, stream: Stream, text: &str) -> std::io::Result<()> {
        let line = LogLine {
            log: text.to_string(),
            stream,
            time: crate::util::now(),
        };
        let mut json = serde_json::to_vec(&line).map_err(std::io::Error::other)?;
        json.push(b'\n');
        if inner.file.is_some()
            && inner.size > 0
            && inner.size + json.len() as u64 > self.config.max_size
        {
            inner.file = None;
            self.rotate()?;
        }
        if inner.file.is_none() {
            let f = match self.open() {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // The logs directory itself is gone (or not made yet): make it once.
                    if let Some(parent) = self.base.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    self.open()?
                }
                r => r?,
            };
            inner.size = f.metadata()?.len();
            inner.file = Some(f);
            if inner.size > 0 && inner.size + json.len() as u64 > self.config.max_size {
                inner.file = None;
                self.rotate()?;
                return self.append_record(inner, stream, text);
            }
        }
        let f = inner.file.as_mut().expect("opened above");
        // One write of one whole record: a reader never sees half a line from us, and nothing
        // sits in a buffer to be lost by a crash.
        if let Err(e) = f.write_all(&json) {
            // A short write may have left part of a record: end it so the next one parses.
            let _ = f.write_all(b"\n");
            return Err(e);
        }
        inner.size += json.len() as u64;
        Ok(())
    }

    fn open(&self) -> std::io::Result<File> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(current(&self.base))
    }

    /// current → .1 → .2 …; the oldest beyond `max_files` is deleted.
    fn rotate(&self) -> std::io::Result<()> {
        let b = &self.base;
        let keep = self.config.max_files.max(1);
        if keep == 1 {
            return std::fs::remove_file(current(b));
        }
        let _ = std::fs::remove_file(rotated(b, keep - 1));
        for n in (1..keep - 1).rev() {
            let from = rotated(b, n);
            if from.exists() {
                std::fs::rename(&from, rotated(b, n + 1))?;
            }
        }
        std::fs::rename(current(b), rotated(b, 1))
    }
}

struct StreamSink {
    log: Arc<LogWriter>,
    stream: Stream,
}

impl OutputSink for StreamSink {
    fn write(&self, bytes: &[u8]) {
        self.log.write(self.stream, bytes);
    }
}

/// The last `tail` lines (all when `None`) across the files of `dir`, oldest first.
#[cfg(test)]
pub fn read_tail(dir: &Path, max_files: u32, tail: Option<usize>) -> Vec<String> {
    let mut lines: std::collections::VecDeque<String> = Default::default();
    for f in files(dir, max_files) {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        for l in text.lines().filter(|l| !l.is_empty()) {
            lines.push_back(l.to_string());
            if tail.is_some_and(|n| lines.len() > n) {
                lines.pop_front();
            }
        }
    }
    lines.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(dir: &Path) -> Vec<LogLine> {
        read_tail(dir, 10, None)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn splits_lines_and_keeps_streams_apart() {
        let d = tempfile::tempdir().unwrap();
        let w = LogWriter::new(d.path().join("x"), LogConfig::default(), "t".into());
        let out = w.sink(Stream::Stdout);
        let err = w.sink(Stream::Stderr);
        out.write(b"one\ntw");
        err.write(b"oops\n");
        out.write(b"o\nthree");
        w.flush_partial();
        let got: Vec<(String, Stream)> = lines(&d.path().join("x"))
            .into_iter()
            .map(|l| (l.log, l.stream))
            .collect();
        assert_eq!(
            got,
            vec![
                ("one\n".into(), Stream::Stdout),
                ("oops\n".into(), Stream::Stderr),
                ("two\n".into(), Stream::Stdout),
                ("three".into(), Stream::Stdout),
            ]
        );
    }

    #[test]
    fn rotates_by_size_and_keeps_max_files() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("x");
        let config = LogConfig {
            max_size: 1000,
            max_files: 3,
        };
        let w = LogWriter::new(dir.clone(), config, "t".into());
        let out = w.sink(Stream::Stdout);
        for i in 0..200 {
            out.write(format!("line {i}\n").as_bytes());
        }
        let fs = files(&dir, 3);
        assert_eq!(fs.len(), 3, "{fs:?}");
        for f in &fs {
            assert!(std::fs::metadata(f).unwrap().len() <= 1000);
        }
        assert!(!rotated(&dir, 3).exists());
        // The newest lines survive, in order, and every line parses.
        let all = lines(&dir);
        assert_eq!(all.last().unwrap().log, "line 199\n");
        let nums: Vec<u32> = all
            .iter()
            .map(|l| l.log.trim().strip_prefix("line ").unwrap().parse().unwrap())
            .collect();
        assert!(nums.windows(2).all(|w| w[1] == w[0] + 1));
        assert_eq!(read_tail(&dir, 3, Some(2)).len(), 2);
    }

    #[test]
    fn a_full_disk_costs_lines_not_the_writer() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("x");
        std::fs::create_dir_all(&dir).unwrap();
        // /dev/full answers every write with ENOSPC, like a full file system.
        std::os::unix::fs::symlink("/dev/full", current(&dir)).unwrap();
        let w = LogWriter::new(dir.clone(), LogConfig::default(), "t".into());
        let out = w.sink(Stream::Stdout);
        out.write(b"lost 1\nlost 2\n");
        let e = w.error().expect("the error is kept");
        assert!(e.contains("No space left on device"), "{e}");
        assert!(e.contains("2 lines lost"), "{e}");
        // Room again: writing resumes and says what was lost.
        std::fs::remove_file(current(&dir)).unwrap();
        out.write(b"kept\n");
        let got: Vec<String> = lines(&dir).into_iter().map(|l| l.log).collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].contains("2 log lines were lost"), "{got:?}");
        assert_eq!(got[1], "kept\n");
    }

    #[test]
    fn logs_of_the_directory_layout_are_moved_where_they_are_read() {
        let logs = tempfile::tempdir().unwrap();
        let old = logs.path().join("w1");
        std::fs::create_dir(&old).unwrap();
        std::fs::write(old.join("current.log"), "new\n").unwrap();
        std::fs::write(old.join("current.log.1"), "old\n").unwrap();
        std::fs::write(logs.path().join("w2.log"), "flat\n").unwrap();
        migrate_directories(logs.path());
        let base = logs.path().join("w1");
        assert_eq!(files(&base, 3), vec![rotated(&base, 1), current(&base)]);
        assert_eq!(std::fs::read_to_string(current(&base)).unwrap(), "new\n");
        assert!(!old.is_dir(), "the emptied directory is gone");
        assert_eq!(
            std::fs::read_to_string(logs.path().join("w2.log")).unwrap(),
            "flat\n"
        );
    }
}
