//! skiff's HTTP data plane: one listener serving many wasi:http apps.
//!
//! [`Server::bind`] takes a [`ServerConfig`] (apps with their routes, listeners, TLS, connection
//! limits) and binds every socket, so the caller can print the real addresses before serving;
//! [`Server::run`] serves until the shutdown future resolves, then drains in-flight requests
//! for the grace period. Per-request work (instances, guest limits) is
//! [`skiff_engine::http::HttpApp`]'s; this crate owns connections, routing, error pages,
//! metrics and the admin endpoint.

mod dynamic;
mod metrics;
mod route;
mod server;
mod signal;
mod tls;

pub use dynamic::{Backend, DynamicRoutes, Reply};
pub use metrics::{write_engine_stats, Latency};
pub use route::{Route, Router};
pub use server::{Server, ShutdownReport};
pub use signal::shutdown_signal;

use skiff_engine::http::HttpApp;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// One app and the routes that lead to it.
pub struct AppConfig {
    pub app: HttpApp,
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Limits on connections, on by default. See `Default` for the values.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Open client connections; at the limit, new ones wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Time a client has to send a request's headers (and a TLS handshake), and the longest an
    /// idle HTTP/1.1 keep-alive connection is kept: a slow client cannot hold a connection.
    pub header_read_timeout: Duration,
    /// Largest request head (HTTP/1.1 buffer; HTTP/2 header list), in bytes; at least 8 KiB.
    pub max_header_bytes: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub max_h2_streams: u32,
    /// How long in-flight requests may take to finish after a shutdown signal.
    pub grace: Duration,
}

impl ServerLimits {
    pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// Node.js's default; nginx's is 8 KiB per line.
    pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 << 10;
    pub const DEFAULT_MAX_H2_STREAMS: u32 = 100;
    pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
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
    pub apps: Vec<AppConfig>,
    /// Routes that change while serving (the daemon's apps), consulted after `apps`' routes;
    /// with these, `apps` may be empty.
    pub dynamic: Option<std::sync::Arc<DynamicRoutes>>,
    pub limits: ServerLimits,
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
    Route(String),
    #[error("no app to serve: give at least one .wasm file")]
    NoApps,
}
