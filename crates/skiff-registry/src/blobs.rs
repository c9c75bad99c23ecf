//! Moving blobs: streamed, verified downloads into the store; chunked, retried uploads.

use crate::error::{RegistryError, Result};
use crate::progress::{BlobOutcome, Direction, Progress};
use crate::session::{Req, Session};
use crate::store::{BlobStore, BlobWriter};
use bytes::Bytes;
use reqwest::header::{
    HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE,
};
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};
use skiff_store::Digest;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A blob to move: its digest and size as the manifest states them.
#[derive(Debug, Clone)]
pub struct BlobRef {
    pub digest: Digest,
    pub size: u64,
}

impl Session {
    /// HEAD a blob: true if the registry has it.
    pub(crate) async fn has_blob(&self, digest: &Digest) -> Result<bool> {
        let resp = self
            .send(Req {
                method: Method::HEAD,
                url: self.url(&format!("blobs/{digest}")),
                headers: HeaderMap::new(),
                body: None,
                what: &format!("blob {digest}"),
            })
            .await?;
        Ok(resp.status().is_success())
    }

    /// Download a blob into the store, verifying size and digest before committing it.
    /// Nothing is written under the digest unless every byte matched. Returns bytes moved.
    ///
    /// A connection that breaks mid-body is retried from where it broke (`Range: bytes=N-`,
    /// which distribution and every registry in use serve for blobs), so a large pull on a
    /// flaky link does not start over; a registry that answers the range with the whole blob
    /// gets its bytes written from the start again.
    pub(crate) async fn fetch_blob(
        &self,
        blob: &BlobRef,
        store: &dyn BlobStore,
        progress: &Arc<dyn Progress>,
    ) -> Result<u64> {
        if store.has(&blob.digest) {
            progress.done(&blob.digest, BlobOutcome::Present);
            return Ok(0);
        }
        let attempts = self.config.retries.max(1);
        let mut last = String::new();
        let mut partial = None;
        for attempt in 1..=attempts {
            if attempt > 1 {
                progress.retry(&blob.digest, attempt, &last);
                tokio::time::sleep(self.config.backoff * 2u32.saturating_pow(attempt - 2)).await;
            }
            match self.fetch_once(blob, store, progress, &mut partial).await {
                Ok(n) => {
                    progress.done(&blob.digest, BlobOutcome::Transferred);
                    return Ok(n);
                }
                // The connection broke mid-body: `partial` keeps what arrived.
                Err(Attempt::Retry(msg)) => last = msg,
                Err(Attempt::Fatal(e)) => return Err(e),
            }
        }
        Err(RegistryError::GaveUp {
            what: format!("downloading blob {}", blob.digest),
            attempts,
            detail: last,
        })
    }

    async fn fetch_once(
        &self,
        blob: &BlobRef,
        store: &dyn BlobStore,
        progress: &Arc<dyn Progress>,
        partial: &mut Option<Partial>,
    ) -> std::result::Result<u64, Attempt> {
        let what = format!("blob {}", blob.digest);
        let mut headers = HeaderMap::new();
        let have = partial.as_ref().map_or(0, |p| p.have);
        if have > 0 {
            let range = HeaderValue::from_str(&format!("bytes={have}-")).expect("ASCII");
            headers.insert(RANGE, range);
        }
        let resp = self
            .send(Req {
                method: Method::GET,
                url: self.url(&format!("blobs/{}", blob.digest)),
                headers,
                body: None,
                what: &what,
            })
            .await
            .map_err(Attempt::Fatal)?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(Attempt::Fatal(RegistryError::NotFound {
                registry: self.registry.clone(),
                what: format!("blob {} of {}", blob.digest, self.repository),
            }));
        }
        if crate::session::is_html(resp.headers()) {
            return Err(Attempt::Fatal(RegistryError::Html {
                url: resp.url().to_string(),
                status: resp.status().as_u16(),
            }));
        }
        // Continue the partial download only if the registry sent exactly the rest; anything
        // else (a 200 with the whole blob) starts over, the partial file dropped with its writer.
        let resumed = partial
            .take()
            .filter(|_| resp.status() == StatusCode::PARTIAL_CONTENT)
            .filter(|p| content_range_from(resp.headers()) == Some(p.have));
        if resumed.is_none() && resp.status() == StatusCode::PARTIAL_CONTENT {
            return Err(Attempt::Fatal(RegistryError::Status {
                url: resp.url().to_string(),
                status: 206,
                detail: format!("{what}: a part of the blob that skiff did not ask for"),
            }));
        }
        progress.start(&blob.digest, blob.size, Direction::Down);
        let Partial {
            writer,
            hasher,
            have: mut seen,
        } = match resumed {
            Some(p) => {
                progress.advance(&blob.digest, p.have);
                p
            }
            None => {
                let writer = store
                    .writer(&blob.digest, blob.size)
                    .map_err(|e| Attempt::Fatal(RegistryError::Store(e.to_string())))?;
                // Hashed here only if the store will not: one sha256 pass per blob, never two.
                let hasher = (!writer.verifies_digest()).then(Sha256::new);
                Partial {
                    writer,
                    hasher,
                    have: 0,
                }
            }
        };
        // The bytes are written (and hashed) on a blocking thread while this task reads the
        // socket: on two cores that overlaps the network with the disk and the hash instead of
        // adding them.
        let (sink, sunk) = spawn_sink(writer, hasher);
        let name = self.peer_name();
        let peer = crate::body::Peer {
            name: &name,
            what: &what,
        };
        let received = async {
            let mut body = resp.bytes_stream();
            // A registry that stops sending, or trickles, is cut like a broken connection:
            // the next attempt continues from `seen`.
            let mut pace = crate::body::Pace::new(self.config.stall);
            loop {
                let piece = match crate::body::next_piece(&mut body, &mut pace, &peer).await {
                    Ok(Some(piece)) => piece,
                    Ok(None) => break,
                    Err(crate::body::Cut::Stalled(e)) => return Err(Attempt::Retry(e.to_string())),
                    Err(crate::body::Cut::Broken(e)) => {
                        return Err(Attempt::Retry(format!(
                            "connection lost after {seen} bytes: {e}"
                        )))
                    }
                };
                seen += piece.len() as u64;
                if seen > blob.size {
                    // More bytes than the manifest promised: stop reading, store nothing.
                    return Err(Attempt::Fatal(RegistryError::DigestMismatch {
                        what: format!("blob {}", blob.digest),
                        expected: format!("{} ({} bytes)", blob.digest, blob.size),
                        actual: format!("more than {} bytes", blob.size),
                    }));
                }
                let n = piece.len() as u64;
                if sink.send(piece).await.is_err() {
                    break; // the writer failed: its error comes from `sunk`
                }
                progress.advance(&blob.digest, n);
            }
            Ok(())
        }
        .await;
        // Whatever happened, wait for the writer: on a failure it is dropped here (or kept in
        // `partial`), before this attempt returns, so no partial file outlives the pull.
        drop(sink);
        let store_err = |e: std::io::Error| Attempt::Fatal(RegistryError::Store(e.to_string()));
        let sunk = sunk
            .await
            .map_err(|e| store_err(std::io::Error::other(e)))?;
        let (writer, hasher) = sunk.map_err(store_err)?;
        let cut = match received {
            Err(Attempt::Retry(msg)) => Some(msg),
            Err(fatal) => return Err(fatal),
            Ok(()) if seen < blob.size => Some(format!(
                "connection closed after {seen} of {} bytes",
                blob.size
            )),
            Ok(()) => None,
        };
        if let Some(msg) = cut {
            *partial = Some(Partial {
                writer,
                hasher,
                have: seen,
            });
            return Err(Attempt::Retry(msg));
        }
        let mismatch = |actual: String| {
            Attempt::Fatal(RegistryError::DigestMismatch {
                what: format!("blob {}", blob.digest),
                expected: blob.digest.to_string(),
                actual,
            })
        };
        if let Some(h) = hasher {
            let actual = Digest::from_sha256(h);
            if actual != blob.digest {
                // `writer` is dropped here, uncommitted: the store is untouched.
                return Err(mismatch(actual.to_string()));
            }
        }
        // A verifying writer refuses a mismatch here, storing nothing. The commit fsyncs: off
        // the async workers.
        tokio::task::spawn_blocking(move || writer.commit())
            .await
            .map_err(|e| store_err(std::io::Error::other(e)))?
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => mismatch(store_mismatch(&e)),
                _ => store_err(e),
            })?;
        Ok(seen)
    }

    /// Ask the registry to mount `digest` from `from` (a repository of the same registry).
    pub(crate) async fn mount(&self, digest: &Digest, from: &str) -> Result<bool> {
        let url = reqwest::Url::parse_with_params(
            &self.url("blobs/uploads/"),
            &[("mount", digest.to_string().as_str()), ("from", from)],
        )
        .map_err(|e| RegistryError::Manifest(e.to_string()))?;
        let resp = self
            .send(Req {
                method: Method::POST,
                url: url.to_string(),
                headers: HeaderMap::new(),
                body: None,
                what: &format!("mount of {digest} from {from}"),
            })
            .await?;
        // 201: mounted. 202: the registry opened an upload instead (no mount); abandon it.
        if resp.status() == StatusCode::ACCEPTED {
            if let Some(loc) = self.location(&resp) {
                let _ = self.raw(Method::DELETE, &loc, HeaderMap::new(), None).await;
            }
        }
        Ok(resp.status() == StatusCode::CREATED)
    }

    /// Upload a blob from the store (or from memory). Skips it if the registry has it, tries a
    /// mount from each candidate repository, else uploads: in one PUT when it fits in a chunk,
    /// in PATCH chunks otherwise. The whole upload is retried from a fresh session on a
    /// transient failure.
    pub(crate) async fn put_blob(
        &self,
        blob: &BlobRef,
        source: &BlobSource<'_>,
        mount_from: &[String],
        progress: &Arc<dyn Progress>,
    ) -> Result<BlobOutcome> {
        if self.has_blob(&blob.digest).await? {
            progress.done(&blob.digest, BlobOutcome::Present);
            return Ok(BlobOutcome::Present);
        }
        for from in mount_from.iter().filter(|f| **f != self.repository) {
            if self.mount(&blob.digest, from).await.unwrap_or(false) {
                progress.done(&blob.digest, BlobOutcome::Mounted);
                return Ok(BlobOutcome::Mounted);
            }
        }
        let attempts = self.config.retries.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            if attempt > 1 {
                progress.retry(&blob.digest, attempt, &last);
                tokio::time::sleep(self.config.backoff * 2u32.saturating_pow(attempt - 2)).await;
            }
            match self.upload_once(blob, source, progress).await {
                Ok(()) => {
                    progress.done(&blob.digest, BlobOutcome::Transferred);
                    return Ok(BlobOutcome::Transferred);
                }
                Err(Attempt::Retry(msg)) => last = msg,
                Err(Attempt::Fatal(e)) => return Err(e),
            }
        }
        Err(RegistryError::GaveUp {
            what: format!("uploading blob {}", blob.digest),
            attempts,
            detail: last,
        })
    }

    fn location(&self, resp: &reqwest::Response) -> Option<String> {
        let loc = resp.headers().get(LOCATION)?.to_str().ok()?;
        // Relative locations are relative to the registry, as the spec allows.
        resp.url().join(loc).ok().map(|u| u.to_string())
    }

    async fn upload_once(
        &self,
        blob: &BlobRef,
        source: &BlobSource<'_>,
        progress: &Arc<dyn Progress>,
    ) -> std::result::Result<(), Attempt> {
        let what = format!("upload of {}", blob.digest);
        let resp = self
            .send(Req {
                method: Method::POST,
                url: self.url("blobs/uploads/"),
                headers: HeaderMap::new(),
                body: None,
                what: &what,
            })
            .await
            .map_err(Attempt::Fatal)?;
        let mut location = self
            .expect(resp, StatusCode::ACCEPTED, &what)
            .await
            .map_err(Attempt::Fatal)?;
        progress.start(&blob.digest, blob.size, Direction::Up);
        // The bytes are streamed from the store as the registry takes them (read and hashed on
        // a blocking thread, 1 MiB at a time), never held whole in memory. A blob that fits in
        // one chunk goes in the closing PUT, like a monolithic upload; a larger one in PATCH
        // chunks, then an empty PUT.
        let mut reader = source.open(blob).map_err(Attempt::Fatal)?;
        let mut hasher = Sha256::new();
        let chunk = self.config.chunk_size.max(1);
        let monolithic = blob.size <= chunk;
        let mut offset: u64 = 0;
        let name = self.peer_name();
        let uploading = format!("the upload of blob {}", blob.digest);
        let peer = crate::body::Peer {
            name: &name,
            what: &uploading,
        };
        let stall = self.config.stall;
        while !monolithic && offset < blob.size {
            let len = chunk.min(blob.size - offset);
            let (body, sent) = stream_part(reader, hasher, len, &blob.digest, progress);
            let taken = sent.taken.clone();
            let mut h = HeaderMap::new();
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            h.insert(
                CONTENT_RANGE,
                header(&format!("{}-{}", offset, offset + len - 1)),
            );
            h.insert(CONTENT_LENGTH, header(&len.to_string()));
            let resp = self.raw(Method::PATCH, &location, h, Some(body));
            let resp = crate::body::upload(resp, &taken, len, stall, &peer)
                .await
                .and_then(|r| r);
            (reader, hasher) = finished(sent, &blob.digest).await?;
            location = self
                .expect(resp.map_err(transient)?, StatusCode::ACCEPTED, &what)
                .await
                .map_err(transient)?;
            offset += len;
        }
        let mut url = reqwest::Url::parse(&location)
            .map_err(|e| Attempt::Fatal(RegistryError::Manifest(e.to_string())))?;
        url.query_pairs_mut()
            .append_pair("digest", &blob.digest.to_string());
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        let len = if monolithic { blob.size } else { 0 };
        h.insert(CONTENT_LENGTH, header(&len.to_string()));
        let (body, sent) = stream_part(reader, hasher, len, &blob.digest, progress);
        let taken = sent.taken.clone();
        let resp = self.raw(Method::PUT, url.as_str(), h, Some(body));
        let resp = crate::body::upload(resp, &taken, len, stall, &peer)
            .await
            .and_then(|r| r);
        let (_, hasher) = finished(sent, &blob.digest).await?;
        // The registry checks the digest too; checking here names the culprit: the local copy.
        // Only once every byte went: a request that failed part way hashed only part.
        let all_read = taken.load(Ordering::Relaxed) == len;
        if all_read && Digest::from_sha256(hasher) != blob.digest {
            return Err(Attempt::Fatal(RegistryError::Store(format!(
                "the local copy of {} does not match its digest; it is corrupt (run an fsck)",
                blob.digest
            ))));
        }
        self.expect(resp.map_err(transient)?, StatusCode::CREATED, &what)
            .await
            .map_err(transient)?;
        Ok(())
    }

    /// Check an upload step's status and return the next `Location`.
    async fn expect(
        &self,
        resp: reqwest::Response,
        want: StatusCode,
        what: &str,
    ) -> Result<String> {
        if resp.status() != want {
            return Err(self.status_error(resp, what).await);
        }
        Ok(self.location(&resp).unwrap_or_default())
    }
}

/// Where an uploaded blob's bytes come from.
pub enum BlobSource<'a> {
    Store(&'a dyn BlobStore),
    Memory(Bytes),
}

impl BlobSource<'_> {
    fn open(&self, blob: &BlobRef) -> Result<Box<dyn Read + Send>> {
        match self {
            BlobSource::Store(s) => s.open(&blob.digest).map_err(|e| {
                RegistryError::Store(format!("cannot read blob {}: {e}", blob.digest))
            }),
            BlobSource::Memory(b) => Ok(Box::new(std::io::Cursor::new(b.clone()))),
        }
    }
}

fn header(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).expect("ASCII digits are a valid header")
}

/// A [`stream_part`] under way.
struct Sent {
    /// The reader and hasher back, once it has read its part (or stopped).
    reader: tokio::task::JoinHandle<std::io::Result<(Box<dyn Read + Send>, Sha256)>>,
    /// Bytes the connection has taken so far.
    taken: Arc<AtomicU64>,
    /// Tells the reader to stop: the request ended before taking everything.
    stop: Arc<tokio::sync::Notify>,
}

/// A request body of the next `len` bytes of `reader`: read on a blocking thread in 1 MiB
/// pieces (a few ahead of the socket), hashed and reported to `progress` as they are read.
fn stream_part(
    mut reader: Box<dyn Read + Send>,
    mut hasher: Sha256,
    len: u64,
    digest: &Digest,
    progress: &Arc<dyn Progress>,
) -> (reqwest::Body, Sent) {
    const PIECE: u64 = 1 << 20;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    let (d, p) = (digest.clone(), progress.clone());
    let stop = Arc::new(tokio::sync::Notify::new());
    let stopped = stop.clone();
    let rt = tokio::runtime::Handle::current();
    let reading = tokio::task::spawn_blocking(move || {
        // Waits for room in the channel, or for the word to stop: a request that failed may
        // leave the body with a connection that no longer writes (a registry that stopped
        // reading), which would hold this thread until that connection dies.
        let pass = |piece| {
            rt.block_on(async {
                tokio::select! {
                    sent = tx.send(piece) => sent.is_ok(),
                    _ = stopped.notified() => false,
                }
            })
        };
        let mut left = len;
        while left > 0 {
            let mut buf = vec![0u8; PIECE.min(left) as usize];
            if let Err(e) = reader.read_exact(&mut buf) {
                let msg = format!("reading a local blob: {e}");
                pass(Err(std::io::Error::other(msg.clone())));
                return Err(std::io::Error::other(msg));
            }
            hasher.update(&buf);
            left -= buf.len() as u64;
            p.advance(&d, buf.len() as u64);
            // The request ended (it failed, or the registry answered early): stop reading.
            if !pass(Ok(Bytes::from(buf))) {
                break;
            }
        }
        Ok((reader, hasher))
    });
    let taken = Arc::new(AtomicU64::new(0));
    let counter = taken.clone();
    let stream = futures_util::stream::unfold(rx, move |mut rx| {
        let counter = counter.clone();
        async move {
            let piece = rx.recv().await?;
            if let Ok(bytes) = &piece {
                counter.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
            Some((piece, rx))
        }
    });
    let sent = Sent {
        reader: reading,
        taken,
        stop,
    };
    (reqwest::Body::wrap_stream(stream), sent)
}

/// Wait for a [`stream_part`]'s reader, once its request has ended (telling it to stop if it
/// has not read everything): a local read error is fatal, not worth a retry.
async fn finished(
    sent: Sent,
    digest: &Digest,
) -> std::result::Result<(Box<dyn Read + Send>, Sha256), Attempt> {
    sent.stop.notify_one();
    match sent.reader.await {
        Ok(Ok(back)) => Ok(back),
        Ok(Err(e)) => Err(Attempt::Fatal(RegistryError::Store(format!(
            "blob {digest}: {e}"
        )))),
        Err(e) => Err(Attempt::Fatal(RegistryError::Store(format!(
            "blob {digest}: the reading thread failed: {e}"
        )))),
    }
}

/// A download cut off part way: the writer holding what arrived (uncommitted), the client's
/// hasher when the writer does not verify by itself, and how many bytes that is.
pub(crate) struct Partial {
    writer: Box<dyn BlobWriter>,
    hasher: Option<Sha256>,
    have: u64,
}

/// The first byte of a `206`'s `Content-Range: bytes FIRST-LAST/TOTAL`.
fn content_range_from(headers: &HeaderMap) -> Option<u64> {
    let v = headers.get(CONTENT_RANGE)?.to_str().ok()?;
    let (first, _) = v.strip_prefix("bytes ")?.split_once('-')?;
    first.trim().parse().ok()
}

/// The writer of [`spawn_sink`], and the hasher when the writer does not verify by itself.
type Sunk = std::io::Result<(Box<dyn BlobWriter>, Option<Sha256>)>;

/// A blocking thread that writes (and, with `hasher`, hashes) the pieces sent to it, a few
/// pieces behind the network; it ends when the sender is dropped or a write fails, and hands
/// the writer and hasher back (uncommitted).
fn spawn_sink(
    mut writer: Box<dyn BlobWriter>,
    mut hasher: Option<Sha256>,
) -> (
    tokio::sync::mpsc::Sender<Bytes>,
    tokio::task::JoinHandle<Sunk>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let sunk = tokio::task::spawn_blocking(move || {
        while let Some(piece) = rx.blocking_recv() {
            match hasher.as_mut() {
                Some(h) => {
                    h.update(&piece);
                    writer.write_all(&piece)?;
                }
                None => writer.write_bytes(piece)?,
            }
        }
        Ok((writer, hasher))
    });
    (tx, sunk)
}

/// What a verifying store found instead of the expected digest.
fn store_mismatch(e: &std::io::Error) -> String {
    match e
        .get_ref()
        .and_then(|i| i.downcast_ref::<skiff_store::StoreError>())
    {
        Some(skiff_store::StoreError::DigestMismatch { actual, .. }) => actual.to_string(),
        _ => e.to_string(),
    }
}

/// The end of one attempt that did not succeed.
pub(crate) enum Attempt {
    /// Worth trying again (a dropped connection, a 5xx mid-upload).
    Retry(String),
    /// Retrying cannot help (a digest mismatch, a 404, a full disk).
    Fatal(RegistryError),
}

fn transient(e: RegistryError) -> Attempt {
    match e {
        RegistryError::Status { status, .. } if status >= 500 => Attempt::Retry(e.to_string()),
        RegistryError::Unreachable { .. } | RegistryError::Stalled { .. } => {
            Attempt::Retry(e.to_string())
        }
        // The token expired mid-upload: the next attempt carries a fresh one.
        RegistryError::TokenRejected { .. } => Attempt::Retry(e.to_string()),
        other => Attempt::Fatal(other),
    }
}
