//! A container's life: `create` starts its process, blocked; `start` lets it run the guest;
//! `state`, `kill`, `delete`. As with runc, the caller (conmon, containerd's runc shim) is the
//! process's subreaper and waits for its exit status; skiff-oci only records the pid.
//!
//! State lives in `ROOT/ID/`: `state.json` (what `state` reports, and the spec's hooks),
//! `plan.json` (the guest plan the process runs, the shim's format) and `exec.fifo`, on which
//! the process waits until `start` (runc's mechanism: its presence means "created").
//!
//! Hooks run where runc runs them (see `hooks.rs`): prestart, createRuntime and createContainer
//! in `create`, once the process (and its network namespace) exists; startContainer in the
//! process, before the guest; poststart in `start`; poststop in `delete`.

use crate::cli::Global;
use crate::hooks::{self, Namespace};
use containerd_shim_skiff::{guest, process, spec};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const STATE: &str = "state.json";
const PLAN: &str = "plan.json";
const FIFO: &str = "exec.fifo";

/// What `create` records.
#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    id: String,
    bundle: PathBuf,
    rootfs: PathBuf,
    pid: i32,
    /// The process's start time (clock ticks since boot, /proc/PID/stat field 22): a pid the
    /// kernel has given to another process since is not mistaken for the container's.
    start_time: u64,
    created: String,
    annotations: HashMap<String, String>,
    /// The spec's, kept for the hooks run after create.
    #[serde(default)]
    hooks: spec::Hooks,
}

fn dir(global: &Global, id: &str) -> PathBuf {
    global.root().join(id)
}

fn load(global: &Global, id: &str) -> Result<Saved, String> {
    load_from(&dir(global, id), id)
}

fn load_from(dir: &Path, id: &str) -> Result<Saved, String> {
    let path = dir.join(STATE);
    let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("container {id} does not exist"),
        _ => format!("cannot read {}: {e}", path.display()),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{} is damaged: {e}", path.display()))
}

pub fn create(
    global: &Global,
    id: &str,
    bundle: &Path,
    pid_file: Option<&str>,
) -> Result<(), String> {
    let root = global.root();
    std::fs::create_dir_all(&root)
        .map_err(|e| format!("cannot create the state root {}: {e}", root.display()))?;
    let dir = dir(global, id);
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(format!("container {id} already exists"))
        }
        Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
    }
    let result = create_in(&dir, id, bundle, pid_file);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn create_in(dir: &Path, id: &str, bundle: &Path, pid_file: Option<&str>) -> Result<(), String> {
    let bundle = bundle
        .canonicalize()
        .map_err(|e| format!("the bundle {} is unusable: {e}", bundle.display()))?;
    let spec = spec::Spec::read(&bundle)?;
    let rootfs = spec.rootfs(&bundle);
    crate::detect::check(&spec, &rootfs)?;
    // The same decision as the shim's: grants, limits, and the binary's kind.
    let plan = spec::guest_plan(id, &spec, &rootfs)?;
    hooks::check(&spec.hooks)?;
    write(
        &dir.join(PLAN),
        &serde_json::to_vec(&plan).map_err(|e| e.to_string())?,
    )?;
    let fifo = dir.join(FIFO);
    let c = CString::new(fifo.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(format!(
            "cannot make {}: {}",
            fifo.display(),
            std::io::Error::last_os_error()
        ));
    }

    // The container's process: this binary, waiting on the FIFO. Its stdio is ours, as the
    // caller set it up (conmon's pipes, the runc shim's FIFOs).
    let exe = std::env::current_exe().map_err(|e| format!("cannot find skiff-oci itself: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.arg(crate::INIT_ARG).arg(dir);
    process::isolate(&mut cmd, &spec.network_namespace())
        .map_err(|e| format!("cannot prepare the container's process: {e}"))?;
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the container's process: {e}"))?;
    let pid = child.id() as i32;
    let start_time = proc_stat(pid).map(|s| s.start_time).unwrap_or(0);
    let saved = Saved {
        id: id.to_string(),
        bundle,
        rootfs,
        pid,
        start_time,
        created: skiff_store::time::format_rfc3339_nanos(std::time::SystemTime::now()),
        annotations: spec.annotations.clone(),
        hooks: spec.hooks.clone(),
    };
    let made = save_and_hook(dir, &saved, pid_file);
    if made.is_err() {
        // Never started: end it here rather than leave the caller a process to reap.
        let _ = child.kill();
        let _ = child.wait();
    }
    // Otherwise not waited for: the caller reaps it once this process has exited (it is their
    // subreaper).
    made
}

/// Record the container, then run the hooks of create: a failing one fails the create with
/// its output (Docker shows it). The process's network namespace exists by now (made before
/// its exec), for `libnetwork-setkey` to wire.
fn save_and_hook(dir: &Path, saved: &Saved, pid_file: Option<&str>) -> Result<(), String> {
    let json = serde_json::to_vec(saved).map_err(|e| e.to_string())?;
    write(&dir.join(STATE), &json)?;
    let state = state_json(saved, "creating");
    let h = &saved.hooks;
    hooks::run("prestart", &h.prestart, &state, Namespace::Runtime)?;
    hooks::run(
        "createRuntime",
        &h.create_runtime,
        &state,
        Namespace::Runtime,
    )?;
    let ns = Namespace::ContainerOf(saved.pid);
    hooks::run("createContainer", &h.create_container, &state, ns)?;
    if let Some(path) = pid_file {
        write(Path::new(path), saved.pid.to_string().as_bytes())?;
    }
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The container's process (`skiff-oci __skiff-oci-init DIR`): wait for `start`, then run the
/// guest; the exit status is the guest's. Never returns.
pub fn init(dir: &Path) -> ! {
    // Descriptors the caller left open (runc closes them too) must not keep its pipes alive.
    // SAFETY: close_range on descriptors this process does not use; failure is harmless.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    let fifo = dir.join(FIFO);
    // Blocks until `start` opens the FIFO for reading.
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&fifo)
        .and_then(|mut f| f.write_all(b"0"));
    if let Err(e) = opened {
        eprintln!(
            "skiff-oci: cannot wait for start on {}: {e}",
            fifo.display()
        );
        std::process::exit(guest::SKIFF_FAILED)
    }
    // startContainer hooks run here, in the container's namespace, before the guest.
    let id = dir.file_name().unwrap_or_default().to_string_lossy();
    let hooked = load_from(dir, &id).and_then(|saved| {
        let state = state_json(&saved, "created");
        let hooks = &saved.hooks.start_container;
        hooks::run("startContainer", hooks, &state, Namespace::Runtime)
    });
    if let Err(e) = hooked {
        eprintln!("skiff-oci: {e}");
        std::process::exit(guest::SKIFF_FAILED)
    }
    guest::main(&dir.join(PLAN))
}

pub fn start(global: &Global, id: &str) -> Result<(), String> {
    let saved = load(global, id)?;
    let dir = dir(global, id);
    match status(&saved, &dir) {
        Status::Created => {}
        other => {
            return Err(format!(
                "container {id} is {}, not created: it can be started once",
                other.name()
            ))
        }
    }
    let fifo = dir.join(FIFO);
    // Non-blocking, so that a process that died before opening its end cannot hang `start`.
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo)
        .map_err(|e| format!("cannot open {}: {e}", fifo.display()))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut byte = [0u8; 1];
    loop {
        match f.read(&mut byte) {
            Ok(1) => break,
            // 0: the process has not opened its end yet; WouldBlock: not written yet.
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(format!("cannot read {}: {e}", fifo.display())),
        }
        if status(&saved, &dir) == Status::Stopped {
            return Err(format!(
                "container {id}'s process exited before it was started"
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "container {id}'s process did not answer start within 10 s"
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = std::fs::remove_file(&fifo);
    run_after(
        global,
        &saved,
        "poststart",
        &saved.hooks.poststart,
        "running",
    );
    Ok(())
}

/// Poststart and poststop hooks: the runtime-spec makes a failure a warning (the container runs
/// on; the delete goes on).
fn run_after(global: &Global, saved: &Saved, stage: &str, list: &[spec::Hook], status: &str) {
    let state = state_json(saved, status);
    if let Err(e) = hooks::run(stage, list, &state, Namespace::Runtime) {
        global.warn(&e);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Created,
    Running,
    Stopped,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
        }
    }
}

fn status(saved: &Saved, dir: &Path) -> Status {
    match proc_stat(saved.pid) {
        Some(s) if s.start_time == saved.start_time && s.state != 'Z' && s.state != 'X' => {
            if dir.join(FIFO).exists() {
                Status::Created
            } else {
                Status::Running
            }
        }
        _ => Status::Stopped,
    }
}

struct ProcStat {
    state: char,
    start_time: u64,
}

fn proc_stat(pid: i32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// The OCI state JSON (runtime-spec "state"), with runc's extra fields.
pub fn state(global: &Global, id: &str) -> Result<String, String> {
    let saved = load(global, id)?;
    let status = status(&saved, &dir(global, id));
    Ok(state_json(&saved, status.name()))
}

/// What `state` prints and hooks read on their stdin.
fn state_json(saved: &Saved, status: &str) -> String {
    let state = serde_json::json!({
        "ociVersion": "1.0.2",
        "id": saved.id,
        "pid": if status == "stopped" { 0 } else { saved.pid },
        "status": status,
        "bundle": saved.bundle,
        "rootfs": saved.rootfs,
        "created": saved.created,
        "owner": "",
        "annotations": saved.annotations,
    });
    serde_json::to_string_pretty(&state).unwrap_or_default()
}

pub fn kill(global: &Global, id: &str, signal: i32) -> Result<(), String> {
    let saved = load(global, id)?;
    if status(&saved, &dir(global, id)) == Status::Stopped {
        return Err(format!("container {id} is not running"));
    }
    process::signal(saved.pid as u32, signal as u32)
        .map_err(|e| format!("cannot signal container {id}: {e}"))?;
    Ok(())
}

pub fn delete(global: &Global, id: &str, force: bool) -> Result<(), String> {
    let dir = dir(global, id);
    let saved = match load(global, id) {
        Ok(s) => s,
        // runc: `delete --force` of a container that is already gone succeeds.
        Err(_) if force && !dir.join(STATE).exists() => {
            let _ = std::fs::remove_dir_all(&dir);
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let now = status(&saved, &dir);
    if now != Status::Stopped {
        if !force {
            return Err(format!(
                "container {id} is {}: stop it first, or delete it with --force",
                now.name()
            ));
        }
        let _ = process::signal(saved.pid as u32, libc::SIGKILL as u32);
        // The caller reaps it; wait until the kernel has ended it (a zombie, or gone).
        let deadline = Instant::now() + Duration::from_secs(5);
        while status(&saved, &dir) != Status::Stopped && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    run_after(global, &saved, "poststop", &saved.hooks.poststop, "stopped");
    std::fs::remove_dir_all(&dir).map_err(|e| format!("cannot remove {}: {e}", dir.display()))
}

/// `skiff-oci features` (runtime-spec features.md): what this runtime honours.
pub fn features() -> String {
    let annotations: serde_json::Map<String, serde_json::Value> = crate::detect::WASM_ANNOTATIONS
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect();
    let f = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.1.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["bind", "rbind", "ro", "rw"],
        "linux": {
            "namespaces": ["network"],
            "capabilities": [],
            "cgroup": {"v1": false, "v2": false, "systemd": false, "systemdUser": false},
            "seccomp": {"enabled": false},
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
        },
        "annotations": annotations,
    });
    serde_json::to_string_pretty(&f).unwrap_or_default()
}
