//! From an OCI runtime spec (the bundle's `config.json`) to what a guest is granted.
//!
//! Deny by default, as `skiff run`: the guest sees the spec's `process.env` (only that),
//! directories the spec bind-mounts (read-only where the mount says `ro`), stdout and stderr. The
//! image's own filesystem, stdin and the network are granted only by the annotations below.
//! Only the fields skiff uses are parsed, so a newer runtime-spec field never breaks a run.

use log::{info, warn};
use serde::{Deserialize, Serialize};
use skiff_spec::{EnvVar, GuestSpec, ImageDefaults, Limits, Mount, DEFAULT_HTTP_PORT};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// `true`: TCP/UDP sockets to any address and name lookup (inside the pod's network namespace).
pub const ANNOTATION_NET: &str = "dev.skiff.net";
/// `true`: the guest reads the container's stdin.
pub const ANNOTATION_STDIN: &str = "dev.skiff.stdin";
/// `ro`: the image's own filesystem is visible read-only at `/`. Default `none`.
pub const ANNOTATION_ROOTFS: &str = "dev.skiff.rootfs";
/// A wall-clock limit such as `30s`, `500ms`, `2m`.
pub const ANNOTATION_TIMEOUT: &str = "dev.skiff.timeout";
/// The port a wasi:http component is served on, on every IPv4 address (`0.0.0.0:PORT`).
pub const ANNOTATION_HTTP_PORT: &str = "dev.skiff.http.port";
/// The address a wasi:http component is served on (`IP:PORT`), instead of a port alone.
pub const ANNOTATION_HTTP_LISTEN: &str = "dev.skiff.http.listen";
/// Where a wasi:http component may send HTTP requests: comma-separated `scheme://host[:port]`
/// patterns (skiff serve's `--allow-outbound`). Nowhere by default.
pub const ANNOTATION_HTTP_ALLOW: &str = "dev.skiff.http.allow";
/// Set by containerd's CRI plugin on the pod sandbox ("pause") container.
pub const ANNOTATION_CRI_CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
/// Set by containerd's CRI plugin on every container of a pod: its name in the pod spec.
pub const ANNOTATION_CRI_CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";
/// Set by containerd's CRI plugin on every container of a pod: the pod's sandbox id.
pub const ANNOTATION_CRI_SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Spec {
    pub process: Option<Process>,
    pub root: Option<Root>,
    pub mounts: Vec<SpecMount>,
    pub annotations: HashMap<String, String>,
    pub linux: Option<Linux>,
    /// Programs the caller (dockerd, podman) runs around the container's life, such as
    /// Docker's `libnetwork-setkey`, which wires its bridge network. `skiff-oci` runs them;
    /// the image cannot set them (an image config has no hooks).
    pub hooks: Hooks,
}

/// runtime-spec config.md "POSIX-platform Hooks": each list runs in order.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Hooks {
    pub prestart: Vec<Hook>,
    pub create_runtime: Vec<Hook>,
    pub create_container: Vec<Hook>,
    pub start_container: Vec<Hook>,
    pub poststart: Vec<Hook>,
    pub poststop: Vec<Hook>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Hook {
    /// An absolute path, resolved in the runtime's namespaces.
    pub path: String,
    /// argv, `args[0]` included (the path when empty).
    pub args: Vec<String>,
    /// The hook's environment; empty: the runtime's own (as runc does).
    pub env: Vec<String>,
    /// Seconds before the hook is killed and counted as failed; none: no limit (as runc).
    pub timeout: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Process {
    pub terminal: bool,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Root {
    pub path: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SpecMount {
    pub destination: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub source: Option<String>,
    pub options: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Linux {
    pub resources: Option<Resources>,
    pub namespaces: Vec<Namespace>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Resources {
    pub memory: Option<Memory>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Memory {
    pub limit: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Namespace {
    #[serde(rename = "type")]
    pub kind: String,
    pub path: Option<String>,
}

impl Spec {
    pub fn read(bundle: &Path) -> Result<Spec, String> {
        let path = bundle.join("config.json");
        let bytes = std::fs::read(&path)
            .map_err(|e| format!("cannot read the OCI spec {}: {e}", path.display()))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("the OCI spec {} is not valid: {e}", path.display()))
    }

    /// A `dev.skiff.*` setting for this container, trimmed. Pod annotations reach every
    /// container of a pod, so `KEY/NAME` (NAME: the container's name in the pod spec, as the
    /// CRI plugin reports it) is this container's own and comes before `KEY`, the pod's: two
    /// HTTP components in one pod get a port each.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        let own = self
            .annotations
            .get(ANNOTATION_CRI_CONTAINER_NAME)
            .and_then(|name| self.annotations.get(&format!("{key}/{name}")));
        own.or_else(|| self.annotations.get(key)).map(|v| v.trim())
    }

    /// The pod sandbox ("pause") container of a Kubernetes pod.
    pub fn is_pod_sandbox(&self) -> bool {
        self.annotations
            .get(ANNOTATION_CRI_CONTAINER_TYPE)
            .is_some_and(|t| t == "sandbox")
    }

    /// The network namespace the guest lives in, as the spec asks.
    pub fn network_namespace(&self) -> NetNs {
        let ns = self
            .linux
            .as_ref()
            .and_then(|l| l.namespaces.iter().find(|n| n.kind == "network"));
        match ns {
            None => NetNs::Host,
            Some(Namespace {
                path: Some(path), ..
            }) if !path.is_empty() => NetNs::Join(PathBuf::from(path)),
            Some(_) => NetNs::New,
        }
    }

    pub fn rootfs(&self, bundle: &Path) -> PathBuf {
        match self.root.as_ref().map(|r| r.path.as_str()) {
            None | Some("") => bundle.join("rootfs"),
            Some(p) => bundle.join(p), // join keeps an absolute p as is
        }
    }
}

/// Where the guest's sockets live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetNs {
    /// The spec names no network namespace (`ctr run --net-host`).
    Host,
    /// A new, empty one (only loopback), as runc would create.
    New,
    /// An existing one, such as the pod's.
    Join(PathBuf),
}

/// Everything the guest process needs, written by the shim for the guest runner to read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The `.wasm` on the host (inside the mounted rootfs).
    pub wasm: PathBuf,
    /// argv\[0\]: the entrypoint as the image names it.
    pub argv0: String,
    /// What the guest is given and its limits: the description `skiff run`, `serve` and the
    /// daemon use, turned into a sandbox by the same engine function.
    pub guest: GuestSpec,
    /// Mounts the spec asked for that a guest cannot have (files, tmpfs), for the log.
    pub skipped: Vec<String>,
    /// Serve the guest over HTTP (a wasi:http component): set from the annotations, and kept
    /// by the shim only when the binary is one. Its allow-list is `guest.allow_outbound`.
    pub http: Option<HttpPlan>,
}

/// How a wasi:http component is served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpPlan {
    /// Names the app in its log lines: the container's id (set by the shim).
    pub name: String,
    pub listen: SocketAddr,
}

/// Turn a spec into a plan. `rootfs` must already be mounted (the `.wasm` is looked up in it).
pub fn plan(spec: &Spec, rootfs: &Path) -> Result<Plan, String> {
    let process = spec
        .process
        .as_ref()
        .ok_or("the OCI spec has no `process`: nothing to run")?;
    if process.terminal {
        return Err(
            "a WebAssembly guest has no terminal: run it without a TTY (no `-t` / `tty: true`)"
                .into(),
        );
    }
    let Some(arg0) = process.args.first() else {
        return Err(
            "the container has no command: the image's entrypoint (or the command \
                    given) must name the .wasm file, e.g. /app.wasm"
                .into(),
        );
    };
    let wasm = resolve_in_rootfs(rootfs, &process.cwd, arg0)?;
    // containerd has already put the image's env under the container's; should a spec still
    // repeat a name, it keeps its first place and its last value, as everywhere else
    // (`skiff_spec::resolve`).
    let env = process
        .env
        .iter()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| EnvVar::new(k, v))
        .collect();

    let annotation = |key: &str| spec.annotation(key);
    let flag = |key: &str| -> Result<bool, String> {
        match annotation(key) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(format!(
                "annotation {key}={other:?}: expected `true` or `false`"
            )),
        }
    };

    let mut mounts = Vec::new();
    let mut skipped = Vec::new();
    match annotation(ANNOTATION_ROOTFS) {
        None | Some("none") => {}
        Some("ro") => mounts.push(Mount {
            host: rootfs.to_path_buf(),
            guest: "/".into(),
            read_only: true,
        }),
        Some(other) => {
            return Err(format!(
                "annotation {ANNOTATION_ROOTFS}={other:?}: expected `none` or `ro` (the image's \
                 files are never writable; mount a volume for data the guest writes)"
            ))
        }
    }
    for m in &spec.mounts {
        let is_bind = m.kind.as_deref() == Some("bind")
            || m.options.iter().any(|o| o == "bind" || o == "rbind");
        let Some(source) = m.source.as_deref().filter(|_| is_bind) else {
            // proc, sysfs, tmpfs, devpts, mqueue, cgroup: kernel interfaces a guest cannot use.
            continue;
        };
        let guest = &m.destination;
        if !guest.starts_with('/') || guest.split('/').any(|c| c == "..") {
            return Err(format!(
                "mount {source} -> {guest:?}: the destination must be an absolute path without `..`"
            ));
        }
        // WASI preopens are directories. Kubernetes bind-mounts single files (/etc/hosts,
        // /etc/resolv.conf, /dev/termination-log) into every container: leaving those out keeps
        // pods working; the guest has no use for them.
        match std::fs::metadata(source) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                skipped.push(format!("{source} -> {guest} (not a directory)"));
                continue;
            }
            Err(e) => return Err(format!("mount {source} -> {guest}: {e}")),
        }
        mounts.push(Mount {
            host: PathBuf::from(source),
            guest: guest.clone(),
            read_only: m.options.iter().any(|o| o == "ro"),
        });
    }

    let memory = spec
        .linux
        .as_ref()
        .and_then(|l| l.resources.as_ref())
        .and_then(|r| r.memory.as_ref())
        .and_then(|m| m.limit)
        .filter(|&l| l > 0)
        .map(|l| l as u64);
    let timeout_ms = annotation(ANNOTATION_TIMEOUT)
        .map(|v| {
            parse_duration(v).map_err(|e| format!("annotation {ANNOTATION_TIMEOUT}={v:?}: {e}"))
        })
        .transpose()?
        .map(|d| d.as_millis() as u64);

    let (http, allow_outbound) = http_plan(spec)?;
    let grants = GuestSpec {
        args: process.args[1..].to_vec(),
        env,
        mounts,
        network: flag(ANNOTATION_NET)?,
        stdin: flag(ANNOTATION_STDIN)?,
        limits: Limits {
            memory_bytes: memory,
            timeout_ms,
            ..Limits::default()
        },
        route: None,
        allow_outbound,
    };
    Ok(Plan {
        wasm,
        argv0: arg0.clone(),
        guest: skiff_spec::resolve(&ImageDefaults::default(), grants),
        skipped,
        http,
    })
}

/// What container `id` runs: the spec's plan, checked against the binary itself (a command, or
/// a wasi:http component, served on the annotated address, else on 0.0.0.0:8080). The shim and
/// `skiff-oci` both decide here, so a bundle means the same under containerd, Docker and podman.
pub fn guest_plan(id: &str, spec: &Spec, rootfs: &Path) -> Result<Plan, String> {
    let mut plan = plan(spec, rootfs)?;
    for s in &plan.skipped {
        info!("{id}: mount {s} is not given to the guest");
    }
    match check_kind(&plan.wasm, &plan.argv0)? {
        skiff_wasm::Kind::HttpHandler => {
            let http = plan.http.get_or_insert_with(|| {
                info!(
                    "{id}: a wasi:http component with no port annotation: serving on \
                     0.0.0.0:{DEFAULT_HTTP_PORT} (annotation {ANNOTATION_HTTP_PORT} or \
                     {ANNOTATION_HTTP_LISTEN} changes it)"
                );
                HttpPlan {
                    name: String::new(),
                    listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, DEFAULT_HTTP_PORT)),
                }
            });
            http.name = id.to_string();
            if spec.network_namespace() == NetNs::New {
                warn!(
                    "{id}: serving on {} in a new network namespace: reachable from outside \
                     only through what the caller wires into it (a bridge and port mapping; \
                     ctr run --net-host serves on the host's)",
                    http.listen
                );
            }
        }
        // Pod annotations reach every container of the pod: a command beside an HTTP
        // component sees the port too, and ignores it.
        _ => {
            if plan.http.take().is_some() {
                info!(
                    "{id}: a command, not a wasi:http component: the HTTP annotations do not apply"
                );
            }
        }
    }
    Ok(plan)
}

/// Refuse, at create time and with a reason, what the guest runner could not run; otherwise the
/// binary's kind (a command, or a wasi:http component to serve).
fn check_kind(wasm: &Path, arg0: &str) -> Result<skiff_wasm::Kind, String> {
    let bytes = std::fs::read(wasm).map_err(|e| format!("cannot read {arg0}: {e}"))?;
    let info = skiff_wasm::inspect(&bytes).map_err(|e| {
        format!(
            "{arg0} is not WebAssembly ({e}). The skiff runtime runs only WebAssembly; run Linux \
             images with runc (containerd: io.containerd.runc.v2)"
        )
    })?;
    match info.kind {
        k if k.is_command() || k == skiff_wasm::Kind::HttpHandler => Ok(k),
        k => Err(format!("{arg0} is a {k}: {}", k.advice())),
    }
}

/// The HTTP annotations: `None` when neither a port nor an address is given; and the outbound
/// allow-list.
fn http_plan(spec: &Spec) -> Result<(Option<HttpPlan>, Vec<String>), String> {
    let get = |key: &str| spec.annotation(key);
    let allow = match get(ANNOTATION_HTTP_ALLOW) {
        None => Vec::new(),
        Some(v) => v
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                skiff_engine::http::OutboundRule::parse(p)
                    .map(|_| p.to_string())
                    .map_err(|e| format!("annotation {ANNOTATION_HTTP_ALLOW}: {e}"))
            })
            .collect::<Result<_, _>>()?,
    };
    let listen = match (get(ANNOTATION_HTTP_PORT), get(ANNOTATION_HTTP_LISTEN)) {
        (None, None) => return Ok((None, allow)),
        (Some(_), Some(_)) => {
            return Err(format!(
                "annotations {ANNOTATION_HTTP_PORT} and {ANNOTATION_HTTP_LISTEN} are both set: \
                 set one (a port serves on 0.0.0.0; an address such as [::]:8080 names the IP too)"
            ))
        }
        (Some(port), None) => match port.parse::<u16>() {
            Ok(p) if p > 0 => SocketAddr::from((Ipv4Addr::UNSPECIFIED, p)),
            _ => {
                return Err(format!(
                    "annotation {ANNOTATION_HTTP_PORT}={port:?}: expected a port number from 1 \
                     to 65535, e.g. 8080"
                ))
            }
        },
        (None, Some(addr)) => match addr.parse::<SocketAddr>() {
            Ok(a) if a.port() > 0 => a,
            _ => {
                return Err(format!(
                    "annotation {ANNOTATION_HTTP_LISTEN}={addr:?}: expected IP:PORT with a port \
                     from 1 to 65535, e.g. 0.0.0.0:8080 or [::]:8080"
                ))
            }
        },
    };
    Ok((
        Some(HttpPlan {
            name: "app".into(),
            listen,
        }),
        allow,
    ))
}

/// The host path of `arg0` inside `rootfs`. Symlinks are followed, but the result must stay in
/// the rootfs: an image cannot name a host file as its program.
pub fn resolve_in_rootfs(rootfs: &Path, cwd: &str, arg0: &str) -> Result<PathBuf, String> {
    let in_image = if arg0.starts_with('/') {
        PathBuf::from(arg0)
    } else {
        Path::new(if cwd.is_empty() { "/" } else { cwd }).join(arg0)
    };
    let relative: PathBuf = in_image
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    let root = rootfs
        .canonicalize()
        .map_err(|e| format!("the container rootfs {} is unusable: {e}", rootfs.display()))?;
    let candidate = root.join(&relative);
    let resolved = candidate.canonicalize().map_err(|e| {
        format!(
            "{arg0}: not found in the image ({e}); the entrypoint must name the .wasm file in the \
             image, e.g. /app.wasm"
        )
    })?;
    if !resolved.starts_with(&root) {
        return Err(format!(
            "{arg0}: resolves outside the image's filesystem; refused"
        ));
    }
    if !resolved.is_file() {
        return Err(format!("{arg0}: is not a file in the image"));
    }
    Ok(resolved)
}

/// `500ms`, `5s`, `2m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or("a unit is required: ms, s, m or h (e.g. 30s)")?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| "expected a number and a unit, e.g. 30s".to_string())?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("unknown unit {unit:?}: use ms, s, m or h")),
    };
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(d)
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
