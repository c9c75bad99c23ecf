//! `containerd-shim-skiff-v1`: containerd's runtime `io.containerd.skiff.v1`.
//!
//! containerd runs this binary to start a shim (`start`), to clean up after one (`delete`), and
//! as the long-running shim that serves the task API over ttrpc. The shim runs each container's
//! guest in a process of its own: this same binary, re-executed with a hidden first argument
//! (see `guest.rs`), so there is one file to install on a node.

use containerd_shim::{api, publisher::RemotePublisher, Config, ExitSignal, Flags, StartOpts};
use containerd_shim_skiff::{guest, service, spec};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const RUNTIME_ID: &str = "io.containerd.skiff.v1";

struct Shim {
    namespace: String,
    /// containerd's gRPC socket.
    address: String,
    bundle: PathBuf,
    /// `unix:///run/containerd/s/<hash>`, derived from namespace and id (or pod).
    socket: String,
    exit: Arc<ExitSignal>,
}

impl containerd_shim::Shim for Shim {
    type T = service::TaskService;

    fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        let bundle = if args.bundle.is_empty() {
            std::env::current_dir().unwrap_or_default()
        } else {
            PathBuf::from(&args.bundle)
        };
        Shim {
            namespace: args.namespace.clone(),
            address: args.address.clone(),
            bundle,
            socket: args.socket.clone(),
            exit: Arc::new(ExitSignal::default()),
        }
    }

    fn start_shim(&mut self, opts: StartOpts) -> containerd_shim::Result<String> {
        // Every container of a Kubernetes pod shares the pod's shim, as with runc.
        let grouping = spec::Spec::read(&self.bundle)
            .ok()
            .and_then(|s| s.annotations.get(spec::ANNOTATION_CRI_SANDBOX_ID).cloned())
            .unwrap_or_else(|| opts.id.clone());
        let (_pid, address) = containerd_shim::spawn(opts, &grouping, Vec::new())?;
        Ok(address)
    }

    fn delete_shim(&mut self) -> containerd_shim::Result<api::DeleteResponse> {
        service::cleanup_bundle(&self.bundle);
        Ok(api::DeleteResponse {
            exit_status: 128 + libc::SIGKILL as u32,
            exited_at: containerd_shim::protos::protobuf::MessageField::some(
                containerd_shim::util::timestamp()?,
            ),
            ..Default::default()
        })
    }

    fn wait(&mut self) {
        self.exit.wait();
        // Remove the socket file now. The library removes it after this returns, but finds its
        // path in the bundle, which containerd has deleted by then: a stale socket would make
        // the next shim for the same id (`ctr run --rm` twice) wait a second for it.
        if let Some(path) = self.socket.strip_prefix("unix://") {
            let _ = std::fs::remove_file(path);
        }
    }

    fn create_task_service(&self, publisher: RemotePublisher) -> Self::T {
        service::TaskService::new(
            self.namespace.clone(),
            self.address.clone(),
            publisher,
            self.exit.clone(),
        )
    }
}

fn main() {
    let mut args = std::env::args_os().skip(1);
    match args.next().as_deref().and_then(|a| a.to_str()) {
        Some(guest::GUEST_ARG) => match args.next() {
            Some(plan) => guest::main(Path::new(&plan)),
            None => {
                eprintln!("skiff: {} needs the path of a run plan", guest::GUEST_ARG);
                std::process::exit(guest::SKIFF_FAILED)
            }
        },
        Some(guest::PAUSE_ARG) => guest::pause(),
        _ => containerd_shim::run::<Shim>(
            RUNTIME_ID,
            Some(Config {
                // Each guest is reaped by its own watcher thread (process::wait_exit); the
                // library's reaper would race it for the exit status.
                no_reaper: true,
                ..Default::default()
            }),
        ),
    }
}
