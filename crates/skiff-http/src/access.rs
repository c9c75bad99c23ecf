//! The access log: one line per request, written when its response ends (body sent, failed or
//! dropped): `TIME APP METHOD PATH STATUS BYTES DURATION REQUEST-ID`, e.g.
//! `2026-12-07T15:05:19.123456789Z api GET /hello 200 13 0.412ms 6575c2a000000001`.
//! The path is logged without its query (queries carry tokens); an unrouted request's app is `-`.
//!
//! Off unless asked for (`--access-log PATH`, or `-` for stderr). The request path never waits
//! for it: lines go through a queue of [`QUEUE`] to one writer thread, and when a flood outruns
//! the disk the lines that do not fit are dropped and counted (the writer says how many, in the
//! log itself, as soon as it catches up). A file is rotated at [`MAX_BYTES`], keeping [`KEEP`]
//! files (`PATH`, `PATH.1`, …), so a flood of requests costs at most their size on disk.

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use skiff_engine::http::{BodyError, RequestId, ResponseBody};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

/// Lines waiting for the writer: ~1 MiB at ~100 bytes a line.
pub const QUEUE: usize = 8192;
/// A file is rotated past this size.
pub const MAX_BYTES: u64 = 16 << 20;
/// Files kept, the current one included: at most 64 MiB of access log.
pub const KEEP: usize = 4;

/// Where lines go.
pub struct AccessLog {
    tx: SyncSender<String>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessLog")
    }
}

impl AccessLog {
    /// `-` is stderr; anything else a file, created if missing (0600), appended to.
    pub fn open(target: &Path) -> std::io::Result<Arc<AccessLog>> {
        let out = match target.to_str() {
            Some("-") => Out::Stderr,
            _ => Out::File(Rotating::open(target.to_path_buf())?),
        };
        let (tx, rx) = sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let d = dropped.clone();
        std::thread::Builder::new()
            .name("skiff-access-log".into())
            .spawn(move || write_lines(rx, out, d))?;
        Ok(Arc::new(AccessLog { tx, dropped }))
    }

    /// Lines the writer could not keep up with, since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    fn log(&self, line: String) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(line) {
            self.dropped.fetch_add(1, Relaxed);
        }
    }

    /// `resp`, whose end (or drop) writes the request's line.
    pub(crate) fn wrap(
        self: &Arc<Self>,
        resp: http::Response<ResponseBody>,
        entry: Entry,
    ) -> http::Response<ResponseBody> {
        let log = self.clone();
        resp.map(|inner| {
            http_body_util::BodyExt::boxed_unsync(Logged {
                inner,
                bytes: 0,
                entry: Some(entry),
                log,
            })
        })
    }
}

/// What a request's line says besides its bytes and duration.
pub(crate) struct Entry {
    pub app: String,
    pub method: http::Method,
    pub path: String,
    pub status: u16,
    pub id: RequestId,
    pub start: Instant,
}

struct Logged {
    inner: ResponseBody,
    bytes: u64,
    entry: Option<Entry>,
    log: Arc<AccessLog>,
}

impl Logged {
    fn finish(&mut self) {
        if let Some(e) = self.entry.take() {
            let time = skiff_store::time::format_rfc3339_nanos(SystemTime::now());
            let ms = e.start.elapsed().as_secs_f64() * 1000.0;
            self.log.log(format!(
                "{time} {} {} {} {} {} {ms:.3}ms {}\n",
                e.app, e.method, e.path, e.status, self.bytes, e.id
            ));
        }
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Body for Logged {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        match &r {
            Poll::Ready(Some(Ok(f))) => {
                if let Some(d) = f.data_ref() {
                    self.bytes += d.len() as u64;
                }
            }
            Poll::Ready(_) => self.finish(),
            Poll::Pending => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

enum Out {
    Stderr,
    File(Rotating),
}

fn write_lines(rx: Receiver<String>, mut out: Out, dropped: Arc<AtomicU64>) {
    let mut reported = 0;
    while let Ok(first) = rx.recv() {
        let mut batch = first;
        // Whatever else is queued goes out in the same write.
        while let Ok(more) = rx.try_recv() {
            batch.push_str(&more);
            if batch.len() > 64 << 10 {
                break;
            }
        }
        let now = dropped.load(Relaxed);
        if now > reported {
            batch.push_str(&format!(
                "{} - access log: {} line(s) dropped: requests came faster than they could be written\n",
                skiff_store::time::format_rfc3339_nanos(SystemTime::now()),
                now - reported
            ));
            reported = now;
        }
        let result = match &mut out {
            Out::Stderr => std::io::stderr().lock().write_all(batch.as_bytes()),
            Out::File(f) => f.write(batch.as_bytes()),
        };
        if let Err(e) = result {
            tracing::warn!("cannot write the access log: {e}");
        }
    }
}

/// A file rotated at [`MAX_BYTES`]: `PATH` → `PATH.1` → … → `PATH.{KEEP-1}`, the oldest dropped.
struct Rotating {
    path: PathBuf,
    file: std::fs::File,
    size: u64,
    /// [`MAX_BYTES`] but in tests.
    max: u64,
}

impl Rotating {
    fn open(path: PathBuf) -> std::io::Result<Rotating> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)?;
        let size = file.metadata()?.len();
        Ok(Rotating {
            path,
            file,
            size,
            max: MAX_BYTES,
        })
    }

    fn numbered(&self, n: usize) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        p.into()
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.size > 0 && self.size + bytes.len() as u64 > self.max {
            for n in (1..KEEP - 1).rev() {
                let _ = std::fs::rename(self.numbered(n), self.numbered(n + 1));
            }
            std::fs::rename(&self.path, self.numbered(1))?;
            let max = self.max;
            *self = Rotating::open(self.path.clone())?;
            self.max = max;
        }
        self.file.write_all(bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that cannot keep up (here: one that never reads) makes requests drop lines,
    /// counted, instead of waiting or queueing without bound.
    #[test]
    fn a_flood_drops_and_counts_lines_rather_than_waiting() {
        let (tx, _stuck_writer) = sync_channel(QUEUE);
        let log = AccessLog {
            tx,
            dropped: Arc::default(),
        };
        for _ in 0..QUEUE + 10 {
            log.log("x\n".into());
        }
        assert_eq!(log.dropped(), 10);
    }

    #[test]
    fn a_file_is_rotated_and_never_grows_past_its_keep() {
        let dir = std::env::temp_dir().join(format!("skiff-access-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.log");
        let mut r = Rotating::open(path.clone()).unwrap();
        r.max = 64 << 10;
        let line = vec![b'x'; 1 << 10];
        for _ in 0..(KEEP as u64 * 64 + 8) {
            r.write(&line).unwrap();
        }
        let total: u64 = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(total <= KEEP as u64 * (64 << 10), "{total}");
        assert!(r.numbered(KEEP - 1).exists());
        assert!(!r.numbered(KEEP).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
