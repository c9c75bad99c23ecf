//! What push and pull report as they go. The CLI draws bars (or prints lines); tests count.

use skiff_store::Digest;

/// How a blob ended up where it should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// Bytes crossed the network.
    Transferred,
    /// Already there (in the local store for a pull, in the registry for a push).
    Present,
    /// Mounted from another repository of the same registry: no bytes sent.
    Mounted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

/// Callbacks from push and pull. Every method has a default that does nothing.
pub trait Progress: Send + Sync {
    fn start(&self, _digest: &Digest, _size: u64, _direction: Direction) {}
    /// `n` more bytes moved. A retry calls `start` again; a download that continues where it
    /// broke then reports the bytes it already has in one `advance`.
    fn advance(&self, _digest: &Digest, _n: u64) {}
    fn done(&self, _digest: &Digest, _outcome: BlobOutcome) {}
    /// A transient failure that is being retried.
    fn retry(&self, _digest: &Digest, _attempt: u32, _reason: &str) {}
}

/// Reports nothing.
pub struct Silent;
impl Progress for Silent {}
