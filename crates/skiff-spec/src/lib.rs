//! One description of a guest, shared by every way skiff runs one: `skiff run`, `run -d`,
//! `serve`, `deploy`, `up`, the daemon's API and state, and the containerd shim.
//!
//! [`GuestSpec`] is plain, serializable data: what the guest is given (args, env, mounts,
//! network, stdin), under which limits, and (for an HTTP handler) where it is routed and where
//! it may send requests. [`resolve`] is the one rule that puts an image's defaults under the
//! operator's grants. `skiff-engine` turns a spec into a sandbox (`Sandbox::from_spec`); no other
//! crate assembles one.
//!
//! This crate holds data and that rule only: no wasmtime, no I/O but reading an env file.

mod env;
mod mount;
mod resolve;

pub use env::{parse_env, read_env_file};
pub use mount::Mount;
pub use resolve::{resolve, set_env, ImageDefaults};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The port a wasi:http component is served on when nothing names another: `skiff serve`'s and
/// `wasmtime serve`'s, and the usual port of web images. The containerd shim and `skiff-oci`
/// listen on it (every address of the container's network namespace) when no annotation names
/// one; compat images declare it (`ExposedPorts`), for `docker run -P`.
pub const DEFAULT_HTTP_PORT: u16 = 8080;

/// Everything a guest is given, whichever verb runs it. Absent limits take the engine's
/// defaults; `Default` grants nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GuestSpec {
    /// Arguments after argv\[0\] (commands only; argv\[0\] is the runner's: the file or image
    /// name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment variables, in order; the guest sees exactly these. Names are unique.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Host directories preopened in the guest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    /// TCP/UDP sockets to any address, and name lookup.
    #[serde(default)]
    pub network: bool,
    /// The guest reads the host's stdin (`skiff run -i`; never in the daemon).
    #[serde(default, skip_serializing_if = "is_false")]
    pub stdin: bool,
    #[serde(default)]
    pub limits: Limits,
    /// HTTP handlers only: `host/path-prefix` to serve, e.g. `api.example.com/` or `/shop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// HTTP handlers only: where the guest may send HTTP requests, as `scheme://host[:port]`
    /// patterns (`*` wildcards, as Spin's `allowed_outbound_hosts`). Empty: nowhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_outbound: Vec<String>,
}

impl GuestSpec {
    /// The JSON names of every field, for readers that embed a spec by flattening it (serde's
    /// `deny_unknown_fields` cannot see through `#[serde(flatten)]`).
    pub const FIELDS: &'static [&'static str] = &[
        "args",
        "env",
        "mounts",
        "network",
        "stdin",
        "limits",
        "route",
        "allow_outbound",
    ];

    /// The value the guest sees for `name`, if any.
    pub fn env_value(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.value.as_str())
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// An environment variable given to the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

impl EnvVar {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// Limits of one guest. An absent field takes the engine's default (128 MiB, 1024 handles; for
/// HTTP handlers 500 ms CPU and 60 s per request, 100 instances, 1 s queue, 10 MiB bodies,
/// 16 outbound requests per request and 256 per app, a fresh instance per request; a command
/// has no timeout by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Memory per instance, in bytes: every linear memory plus every table (8 bytes per
    /// element), together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// Wall-clock limit, in milliseconds: of a command's whole run, or of one HTTP request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Open files, sockets and other handles an instance may hold at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_open: Option<u32>,
    /// HTTP handlers: time one request may spend executing wasm, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_time_ms: Option<u64>,
    /// HTTP handlers: instances alive at once; more requests wait for `queue_timeout_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u32>,
    /// HTTP handlers: how long a request waits for a free instance, in milliseconds (then 503).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_timeout_ms: Option<u64>,
    /// HTTP handlers: the largest request body, in bytes (413 beyond).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<u64>,
    /// HTTP handlers: outbound requests one request may have in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_outbound: Option<u32>,
    /// HTTP handlers: outbound requests all of an app's instances may have in flight together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_app_outbound: Option<u32>,
    /// HTTP handlers: requests one instance may serve in sequence, never two at once; a trap
    /// or a limit ends it early. Absent or 1: a fresh instance per request. The operator's
    /// choice only: an image's defaults never set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reuse: Option<u32>,
}

/// A duration as the spec stores it: whole milliseconds, rounded up so that a limit given in
/// microseconds never becomes "none" or zero.
pub fn millis(d: std::time::Duration) -> u64 {
    let ms = d.as_nanos().div_ceil(1_000_000);
    u64::try_from(ms).unwrap_or(u64::MAX)
}
