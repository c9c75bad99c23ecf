//! Serving `wasi:http/incoming-handler` components: one [`HttpApp`] per app, a fresh instance
//! per request.
//!
//! The hot path, per request: a `Store` from the pooling allocator (copy-on-write memory
//! images), a `WasiCtx` built from data prepared at start-up (no file is opened, nothing is
//! compiled), instantiation from a `ProxyPre` resolved once, the guest run on its own task so the
//! response streams while the guest is still writing it. The instance is dropped when the guest
//! returns or a limit stops it. Nothing on this path takes a process-wide lock.

pub(crate) mod app;
mod body;
mod guest_log;
pub(crate) mod outbound;
mod reuse;

pub use crate::epoch::EPOCH_TICK;
pub use app::HttpApp;
pub use body::{BodyError, ResponseBody};
pub use guest_log::{GUEST_STDERR_TARGET, GUEST_STDOUT_TARGET};
pub use outbound::{OutboundPolicy, OutboundRule};

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Everything an app is made of besides its code.
#[derive(Debug, Clone)]
pub struct HttpAppConfig {
    /// Names the app in logs and metrics.
    pub name: String,
    /// What the guest is granted (env, mounts, network, outbound HTTP); nothing by default.
    /// `stdin` is ignored: a request handler reads its request, never the host's stdin.
    pub sandbox: crate::Sandbox,
    pub limits: HttpLimits,
}

/// Per-app limits, on by default. See `Default` for the values and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Bytes per instance of every linear memory plus every table (8 bytes per element),
    /// counted together as one budget (see [`crate::Limits::memory`]).
    pub memory: u64,
    /// Time the guest may spend executing wasm for one request, measured in epoch ticks.
    pub cpu_time: Duration,
    /// Wall-clock time from the request's arrival to the guest's end (waiting on outbound
    /// requests and streaming the body out included).
    pub timeout: Duration,
    /// Instances of this app alive at once; more requests wait for `queue_timeout`, then 503.
    pub max_concurrent: u32,
    pub queue_timeout: Duration,
    /// Largest request body, in bytes (413 beyond).
    pub max_body: u64,
    /// Handles one instance may hold at once (files, sockets, streams, HTTP bodies): see
    /// [`crate::Limits::max_open`].
    pub max_open: usize,
    /// Outbound HTTP requests one instance may have in flight at once; past it the guest's
    /// request fails with `connection-limit-reached`.
    pub max_outbound: u32,
    /// Outbound HTTP requests all instances of the app may have in flight at once; same error.
    pub max_app_outbound: u32,
    /// Requests one instance may serve, one after another (`--reuse`); 1, the default, is a
    /// fresh instance per request. See `reuse.rs` for the rules and what reuse trades away.
    pub reuse: u32,
}

impl HttpLimits {
    /// Fastly's Compute heap.
    pub const DEFAULT_MEMORY: u64 = 128 << 20;
    /// Ten times Fastly's 50 ms: every request starts a fresh instance, and interpreters (the
    /// JavaScript engine of componentize-js) run cold each time. Ticks are 10 ms, so this is
    /// accurate to about 10 ms.
    pub const DEFAULT_CPU_TIME: Duration = Duration::from_millis(500);
    /// Half of Fastly's 2 minutes: long enough for slow upstreams, short enough that a stuck
    /// guest does not hold an instance for long.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
    pub const DEFAULT_MAX_CONCURRENT: u32 = 100;
    pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(1);
    pub const DEFAULT_MAX_BODY: u64 = 10 << 20;
    pub const DEFAULT_MAX_OPEN: usize = crate::Limits::DEFAULT_MAX_OPEN;
    /// Each outbound request in flight holds a connection (a host file descriptor) until the
    /// upstream's response has arrived whole or the guest drops it. 16 covers a handler calling a dozen backends in
    /// parallel (browsers keep 6 per host); the measured attack held 5,000 from one request.
    pub const DEFAULT_MAX_OUTBOUND: u32 = 16;
    /// 256: every one of the default 100 instances may have two or three requests in flight,
    /// and 40 busy apps together still stay under 10,240 descriptors, about half of a
    /// 20,000-descriptor node (the rest is the daemon's reserve: see skiff-daemon's `host`).
    pub const DEFAULT_MAX_APP_OUTBOUND: u32 = 256;
    /// Off: isolation between requests is the default, reuse the operator's choice.
    pub const DEFAULT_REUSE: u32 = 1;
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            memory: Self::DEFAULT_MEMORY,
            cpu_time: Self::DEFAULT_CPU_TIME,
            timeout: Self::DEFAULT_TIMEOUT,
            max_concurrent: Self::DEFAULT_MAX_CONCURRENT,
            queue_timeout: Self::DEFAULT_QUEUE_TIMEOUT,
            max_body: Self::DEFAULT_MAX_BODY,
            max_open: Self::DEFAULT_MAX_OPEN,
            max_outbound: Self::DEFAULT_MAX_OUTBOUND,
            max_app_outbound: Self::DEFAULT_MAX_APP_OUTBOUND,
            reuse: Self::DEFAULT_REUSE,
        }
    }
}

/// A request's id, unique within the process: 16 hex digits in logs, headers and error pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Whether the request arrived over TLS; the guest sees it as the request's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// Counters of one app, read by the metrics endpoint. Relaxed atomics: each is independent.
#[derive(Debug, Default)]
pub struct AppStats {
    /// Instances alive now (a request's instance lives until the guest returns; under
    /// `--reuse`, until it has served its last request or been idle a second).
    pub live: AtomicU64,
    /// Requests served by an instance an earlier request of the app had used (`--reuse`).
    pub reused: AtomicU64,
    pub traps: AtomicU64,
    pub memory_limit: AtomicU64,
    pub cpu_limit: AtomicU64,
    pub timeouts: AtomicU64,
    pub overloaded: AtomicU64,
    /// Requests that found no free slot in the engine's instance pool within the queue timeout.
    pub pool_full: AtomicU64,
    pub body_too_large: AtomicU64,
    pub no_response: AtomicU64,
    pub outbound_denied: AtomicU64,
    /// Outbound requests refused by `max_outbound` or `max_app_outbound`.
    pub outbound_limited: AtomicU64,
    /// Memory held by the app's live instances and the wasm CPU time its requests spent.
    pub usage: std::sync::Arc<crate::Usage>,
}

impl AppStats {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Why a request got no response from the guest. Each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error("too many requests: all {max_concurrent} instances busy for {waited:?}")]
    Overloaded {
        max_concurrent: u32,
        waited: Duration,
    },
    #[error("too many requests: every slot of the instance pool was busy for {waited:?}")]
    PoolFull { waited: Duration },
    #[error("request body larger than the limit of {}", crate::error::bytes(*limit))]
    BodyTooLarge { limit: u64 },
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("guest trapped: {message}")]
    Trap {
        message: String,
        backtrace: Vec<String>,
    },
    #[error("memory limit: the guest's linear memories and tables together would go past {}", crate::error::bytes(*limit))]
    MemoryLimit { limit: u64 },
    #[error("cpu time limit: the guest ran wasm for more than {0:?}")]
    CpuLimit(Duration),
    #[error("timeout: the request took longer than {0:?}")]
    Timeout(Duration),
    #[error("the guest returned without setting a response")]
    NoResponse,
    #[error("the guest answered with error code {0}")]
    GuestError(String),
    #[error("could not instantiate the guest: {0}")]
    Instantiate(String),
    #[error("the app was stopped while this request ran")]
    Stopped,
}

impl HandleError {
    /// The HTTP status this failure is answered with.
    pub fn status(&self) -> u16 {
        match self {
            HandleError::Overloaded { .. } | HandleError::PoolFull { .. } => 503,
            HandleError::BodyTooLarge { .. } => 413,
            HandleError::BadRequest(_) => 400,
            HandleError::Trap { .. }
            | HandleError::MemoryLimit { .. }
            | HandleError::Instantiate(_) => 500,
            HandleError::NoResponse | HandleError::GuestError(_) => 502,
            HandleError::CpuLimit(_) | HandleError::Timeout(_) => 504,
            HandleError::Stopped => 503,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HandleError;
    use std::time::Duration;

    /// The statuses docs/architecture.md promises ("Failures"), one per failure.
    #[test]
    fn every_failure_has_its_status() {
        let second = Duration::from_secs(1);
        let cases = [
            (
                HandleError::Overloaded {
                    max_concurrent: 1,
                    waited: second,
                },
                503,
            ),
            (HandleError::BodyTooLarge { limit: 1 }, 413),
            (HandleError::BadRequest("x".into()), 400),
            (
                HandleError::Trap {
                    message: "x".into(),
                    backtrace: vec![],
                },
                500,
            ),
            (HandleError::MemoryLimit { limit: 1 }, 500),
            (HandleError::Instantiate("x".into()), 500),
            (HandleError::NoResponse, 502),
            (HandleError::GuestError("x".into()), 502),
            (HandleError::CpuLimit(second), 504),
            (HandleError::Timeout(second), 504),
            (HandleError::Stopped, 503),
        ];
        for (e, status) in cases {
            assert_eq!(e.status(), status, "{e}");
        }
    }
}
