//! The guest runner: the shim binary re-executed as the container's process.
//!
//! One process per container, so that `kill` is a real signal (SIGKILL ends a guest blocked in
//! a host call, which epoch interruption cannot), a guest's memory is returned to the kernel the
//! moment it ends, and a crash takes down one container, never the shim serving a pod. Its
//! stdout and stderr are containerd's FIFOs; its exit status is the container's. A command runs
//! here; a wasi:http component is served (`http.rs`).

use crate::spec::Plan;
use skiff_engine::{
    exit, Engine, EngineConfig, Exit, LimitKind, Limits, Program, RunError, Sandbox,
};
use std::path::{Path, PathBuf};

/// The hidden first argument that selects the guest runner.
pub const GUEST_ARG: &str = "__skiff-guest";
/// The hidden first argument that selects the pod-sandbox placeholder.
pub const PAUSE_ARG: &str = "__skiff-pause";

// The exit codes of `skiff run` (`skiff_engine::exit`), so that a container's status means the
// same as the CLI's.
pub const SKIFF_FAILED: i32 = exit::SKIFF_FAILED as i32;
pub const CANNOT_RUN: i32 = exit::CANNOT_RUN as i32;

/// Where compiled code is cached: `$SKIFF_HOME/cache/compiled`, the layout `skiff run` uses, so
/// a node that runs both shares one cache. `SKIFF_HOME` comes from containerd's environment;
/// the default is `/var/lib/skiff`.
pub fn cache_dir() -> Option<PathBuf> {
    if std::env::var_os("SKIFF_SHIM_NO_CACHE").is_some() {
        return None;
    }
    let home = std::env::var_os("SKIFF_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/skiff"));
    Some(home.join("cache").join("compiled"))
}

/// Run the plan at `plan_path`; never returns.
pub fn main(plan_path: &Path) -> ! {
    let code = match run(plan_path) {
        Ok(code) => code,
        Err((code, message)) => {
            eprintln!("skiff: {message}");
            code
        }
    };
    std::process::exit(code)
}

fn run(plan_path: &Path) -> Result<i32, (i32, String)> {
    let plan: Plan = std::fs::read(plan_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        .map_err(|e| {
            (
                SKIFF_FAILED,
                format!("cannot read the run plan {}: {e}", plan_path.display()),
            )
        })?;
    let bytes = std::fs::read(&plan.wasm).map_err(|e| {
        (
            CANNOT_RUN,
            format!("cannot read {}: {e}", plan.wasm.display()),
        )
    })?;
    if let Some(http) = &plan.http {
        return crate::http::serve(&plan, http, &bytes);
    }
    let engine = Engine::new(&EngineConfig {
        cache_dir: cache_dir(),
        ..EngineConfig::default()
    })
    .map_err(|e| (SKIFF_FAILED, e.to_string()))?;
    let program = load(&engine, &bytes, &plan.argv0)?;
    let sandbox = Sandbox::from_spec(&plan.guest, &plan.argv0).map_err(|e| (CANNOT_RUN, e))?;
    let limits = Limits::from(&plan.guest.limits);
    // The one run path, driven on this thread as `skiff run` drives it: the timeout ends the
    // guest wherever it is, a host call (a sleep, a read) included.
    let run =
        skiff_engine::block_on(engine.run_command(&program, &sandbox, &limits)).map_err(|e| {
            (
                SKIFF_FAILED,
                format!("cannot start the guest's runtime: {e}"),
            )
        })?;
    match run {
        Ok(Exit::Code(code)) => Ok(code),
        Err(e) => {
            let mut message = failure(&e);
            for (i, frame) in e.backtrace().iter().enumerate() {
                message.push_str(&format!("\n  {i:>2}: {frame}"));
            }
            Err((e.exit_code().into(), message))
        }
    }
}

/// Why the guest failed, with how a limit that stopped it is set in a container (the CLI
/// names its flags instead).
pub fn failure(e: &RunError) -> String {
    match e.limit() {
        Some(LimitKind::Memory) => format!("{e} (the container's memory limit)"),
        Some(LimitKind::Timeout) => format!("{e} (annotation dev.skiff.timeout)"),
        Some(LimitKind::Stack | LimitKind::OpenHandles) | None => e.to_string(),
    }
}

/// Compile (or fetch from the cache) the guest's code; errors carry the exit status.
pub fn load(engine: &Engine, bytes: &[u8], arg0: &str) -> Result<Program, (i32, String)> {
    engine
        .load(bytes)
        .map_err(|e| (e.exit_code().into(), format!("{arg0}: {e}")))
}

/// The pod sandbox container: holds the pod's place (as Kubernetes' pause image does) until
/// it is killed. A Wasm pod needs no process to own its namespaces; containerd needs a task.
pub fn pause() -> ! {
    loop {
        // SAFETY: pause(2) has no preconditions; SIGTERM/SIGKILL keep their default action.
        unsafe { libc::pause() };
    }
}
