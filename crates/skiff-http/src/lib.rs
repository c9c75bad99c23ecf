//! skiff's HTTP data plane: one listener serving many wasi:http apps.
//!
//! One serving core for `skiff serve`, the containerd shim and the daemon. Each fills a
//! [`Routes`] table (the first two once, through [`AppSet`]; the daemon at every deploy), and
//! [`Server::bind`] takes it with the listeners, TLS and connection limits ([`ServerConfig`]),
//! binding every socket so the caller can print the real addresses before serving;
//! [`Server::run`] serves until the shutdown future resolves (SIGINT/SIGTERM for the first two:
//! [`serve_until_signal`]; the daemon's own shutdown), then drains in-flight requests for the
//! grace period. Per-request work (instances, guest limits) is
//! [`skiff_engine::http::HttpApp`]'s; this crate owns connections, routing, error pages,
//! metrics ([`ServerMetrics`], one renderer for every embedding) and the admin endpoint.

mod accept;
mod access;
mod apps;
mod conn;
mod metrics;
mod pace;
mod route;
mod routes;
mod server;
mod signal;
mod stall;
mod tls;

pub use accept::AcceptBackoff;
pub use access::AccessLog;
pub use apps::{engine_for, pool_for, serve_until_signal, AddError, AppSet, ServedApp};
pub use conn::{
    ConnLimiter, ConnLimits, ConnSlot, Ended, Expiry, InFlight, RequestCounter, Tracked,
};
pub use metrics::{AppSeries, RequestMetrics, ServerMetrics};
pub use pace::{BodyTooSlow, RequestBody, RequestBodyError};
pub use route::{Route, Router};
pub use routes::{Backend, Reply, Routes, Table};
pub use server::{Server, ShutdownReport};
pub use signal::shutdown_signal;
pub use stall::WriteStall;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Limits on connections, on by default. Every peer is bounded: a connection that sends no
/// complete request head, sits idle, or trickles its body is closed, and at the connection cap
/// the oldest connection doing nothing makes room for a new one. See the constants for the
/// values and why.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Open client connections. At the cap, a new connection closes one with no request in
    /// progress: one still to send its first head (oldest first), else the one idle longest
    /// between requests; when all are busy, new ones wait in the kernel's accept queue.
    pub max_connections: usize,
    /// From accept to the first complete request head: the TLS handshake and the HTTP/1-or-2
    /// sniff count. A connection past it is closed without an answer.
    pub header_read_timeout: Duration,
    /// A connection with no request in progress (HTTP/1.1 keep-alive, HTTP/2 with no open
    /// stream) is closed after this long; on HTTP/1.1 it also bounds sending a later head.
    /// A response write that makes no progress for this long (a client that stopped reading)
    /// ends the connection too.
    pub idle_timeout: Duration,
    /// A request body may keep its reader waiting this long, plus one second for every
    /// `min_body_rate` bytes it has delivered; slower, it is cut and the request gets 408.
    pub body_grace: Duration,
    /// In bytes per second; 0 turns the body check off.
    pub min_body_rate: u64,
    /// Largest request head (HTTP/1.1 buffer; HTTP/2 header list), in bytes; at least 8 KiB.
    pub max_header_bytes: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub max_h2_streams: u32,
    /// How long in-flight requests may take to finish after a shutdown signal.
    pub grace: Duration,
}

impl ServerLimits {
    /// Each open connection costs a file descriptor and ~9 KiB of RSS when silent (measured
    /// by bench/silent-conns.sh with 10,000 held); the cap keeps the server inside a
    /// 20,000-descriptor rlimit with room for everything else.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
    /// A real client sends its head within a round trip or two of connecting, TLS included;
    /// 10 s leaves room for a slow mobile link and keeps a flood of silent connections short.
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// Long enough for a browser's or a proxy's next request to reuse the connection (nginx
    /// uses 75 s, Node.js 5 s); idle connections are cheap, and evicted first at the cap.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
    /// A client may stall on its body for 5 s in all (a slow start, a 100-continue round
    /// trip, a mobile hiccup)...
    pub const DEFAULT_BODY_GRACE: Duration = Duration::from_secs(5);
    /// ...plus 1 s per 4 KiB it delivers: 32 kbit/s, below any data link in use; a trickle of
    /// a few bytes a second is cut within about 5 s instead of holding an instance for the
    /// app's 60 s wall clock. (A 10 MiB body needs ~170 KiB/s to fit that wall clock anyway.)
    pub const DEFAULT_MIN_BODY_RATE: u64 = 4 << 10;
    /// Node.js's default; nginx's is 8 KiB per line.
    pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 << 10;
    pub const DEFAULT_MAX_H2_STREAMS: u32 = 100;
    pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

    pub(crate) fn conn_limits(&self) -> ConnLimits {
        ConnLimits {
            max: self.max_connections,
            head_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
        }
    }
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            body_grace: Self::DEFAULT_BODY_GRACE,
            min_body_rate: Self::DEFAULT_MIN_BODY_RATE,
            max_header_bytes: Self::DEFAULT_MAX_HEADER_BYTES,
            max_h2_streams: Self::DEFAULT_MAX_H2_STREAMS,
            grace: Self::DEFAULT_GRACE,
        }
    }
}

pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Metrics and health, on a separate address; none by default.
    pub admin_listen: Option<SocketAddr>,
    pub tls: Option<TlsFiles>,
    /// Where requests go; the caller may change it while serving (the daemon does).
    pub routes: Arc<Routes>,
    /// The apps whose series the admin endpoint's `/metrics` lists (`skiff serve`'s; the daemon
    /// lists its own through [`Server::metrics`]).
    pub apps: Vec<Arc<ServedApp>>,
    pub limits: ServerLimits,
    /// One line per request (see [`AccessLog`]); none by default.
    pub access_log: Option<Arc<AccessLog>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Tls(String),
    #[error("{0}")]
    Io(String),
}
