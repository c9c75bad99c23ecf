//! `skiff-oci`: a runc-compatible OCI runtime. dockerd (through containerd's runc shim), podman
//! (through conmon) and CRI-O call it as they call runc; the container's process runs its Wasm
//! guest with skiff's engine, under the same rules as the containerd shim (whose spec reading and
//! guest runner it shares).
//!
//! The CLI is the subset of runc's that those callers use: global `--root`, `--log`,
//! `--log-format`, `--systemd-cgroup`; `create`, `start`, `state`, `kill`, `delete`, `features`,
//! `--version`. What has no meaning for a Wasm guest (exec, checkpoint, pause, update) is refused
//! with the reason.

mod cli;
mod container;
mod detect;
mod hooks;

use cli::Global;
use std::path::Path;

/// The hidden first argument that selects the container's process (see `container::init`).
pub const INIT_ARG: &str = "__skiff-oci-init";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(INIT_ARG) {
        match args.get(1) {
            Some(dir) => container::init(Path::new(dir)),
            None => {
                eprintln!("skiff-oci: {INIT_ARG} needs the container's state directory");
                std::process::exit(containerd_shim_skiff::guest::SKIFF_FAILED)
            }
        }
    }
    let (global, rest) = match cli::global(&args) {
        Ok(g) => g,
        Err(e) => fail(&Global::default(), &e),
    };
    if let Err(e) = dispatch(&global, &rest) {
        fail(&global, &e)
    }
}

fn dispatch(global: &Global, args: &[String]) -> Result<(), String> {
    let Some((command, rest)) = args.split_first() else {
        return Err(format!("no command given.\n{}", cli::USAGE));
    };
    let flags = |values: &[&str], bools: &[&str]| cli::parse(command, rest, values, bools);
    match command.as_str() {
        "create" => {
            let p = flags(
                &["bundle", "b", "pid-file", "console-socket", "preserve-fds"],
                &["no-pivot", "no-new-keyring"],
            )?;
            let id = p.id()?;
            if p.value("console-socket").is_some() {
                return Err(no_terminal());
            }
            let bundle = p
                .value("bundle")
                .or(p.value("b"))
                .map(str::to_string)
                .unwrap_or_else(|| ".".into());
            container::create(global, id, Path::new(&bundle), p.value("pid-file"))
        }
        "start" => container::start(global, flags(&[], &[])?.id()?),
        "state" => {
            let state = container::state(global, flags(&[], &[])?.id()?)?;
            println!("{state}");
            Ok(())
        }
        "kill" => {
            let p = flags(&[], &["all", "a"])?;
            let id = p.id()?;
            let signal = p.positional.get(1).map(String::as_str).unwrap_or("TERM");
            container::kill(global, id, cli::signal(signal)?)
        }
        "delete" => {
            let p = flags(&[], &["force", "f"])?;
            container::delete(global, p.id()?, p.flag("force") || p.flag("f"))
        }
        "features" => {
            println!("{}", container::features());
            Ok(())
        }
        "version" => {
            print!("{}", cli::version());
            Ok(())
        }
        "exec" => Err(
            "exec: a WebAssembly guest is one program with no shell or other binaries to start \
             beside it; skiff-oci cannot exec into it"
                .into(),
        ),
        "checkpoint" | "restore" => Err(format!(
            "{command}: a running Wasm guest cannot be checkpointed or restored by skiff-oci"
        )),
        "pause" | "resume" => Err(format!(
            "{command}: skiff-oci does not freeze guests (it makes no cgroup to freeze)"
        )),
        "update" => Err(
            "update: a guest's limits are fixed when it starts (its memory budget is read from \
             the spec at create); recreate the container to change them"
                .into(),
        ),
        "run" => Err("run: use create and start (the way docker and podman call a runtime)".into()),
        other => Err(format!("unknown command {other:?}.\n{}", cli::USAGE)),
    }
}

fn no_terminal() -> String {
    "a WebAssembly guest has no terminal: run it without a TTY (no `-t`)".into()
}

/// Say what went wrong on stderr and in the caller's log (containerd's runc shim and conmon read
/// the last error from `--log` to report it), then exit 1 as runc does.
fn fail(global: &Global, message: &str) -> ! {
    eprintln!("skiff-oci: {message}");
    global.log_error(message);
    std::process::exit(1)
}
