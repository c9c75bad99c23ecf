//! The guest runner for a wasi:http component: `skiff serve`'s server (skiff-http) with one app
//! and every path routed to it, in the container's process, and so in the pod's network
//! namespace (see `process::spawn`). Limits are `skiff serve`'s defaults, but for memory (the
//! container's limit, per instance) and the request timeout (annotation `dev.skiff.timeout`).

use crate::guest::{cache_dir, failure, load, SKIFF_FAILED};
use crate::spec::{HttpPlan, Plan};
use skiff_engine::http::{HttpApp, HttpAppConfig, GUEST_STDOUT_TARGET};
use skiff_engine::{AllocatorChoice, Engine, EngineConfig};
use skiff_http::{AppConfig, Route, Server, ServerConfig, ServerLimits};
use std::io::{self, Write as _};
use std::time::Duration;
use tracing_subscriber::fmt::writer::{EitherWriter, MakeWriter};

/// Serve until SIGTERM (or SIGINT), then drain in-flight requests and exit 0.
pub fn serve(plan: &Plan, http: &HttpPlan, bytes: &[u8]) -> Result<i32, (i32, String)> {
    init_logging();
    let config = HttpAppConfig::from_spec(&http.name, &plan.argv0, &plan.guest, None)
        .map_err(|e| (SKIFF_FAILED, e))?;
    let limits = config.limits;
    let engine = Engine::new(&EngineConfig {
        cache_dir: cache_dir(),
        allocator: AllocatorChoice::Pooling {
            max_instances: limits.max_concurrent,
            max_memory: limits.memory,
        },
        ..EngineConfig::default()
    })
    .map_err(|e| (SKIFF_FAILED, e.to_string()))?;
    let program = load(&engine, bytes, &plan.argv0)?;
    // The guest's output becomes log lines tagged with the request (see `init_logging`).
    let app = HttpApp::new(&engine, &program, config).map_err(|e| {
        (
            e.exit_code().into(),
            format!("{}: {}", plan.argv0, failure(&e)),
        )
    })?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("skiff-serve")
        .build()
        .map_err(|e| (SKIFF_FAILED, format!("cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(async {
        let server = Server::bind(ServerConfig {
            listen: http.listen,
            admin_listen: None,
            tls: None,
            apps: vec![AppConfig {
                app,
                routes: vec![Route::any()],
            }],
            dynamic: None,
            limits: ServerLimits::default(),
        })
        .await
        .map_err(|e| {
            (
                SKIFF_FAILED,
                format!(
                    "{e}. Choose another port (annotation {})",
                    crate::spec::ANNOTATION_HTTP_PORT
                ),
            )
        })?;
        {
            let mut out = io::stdout().lock();
            let _ = writeln!(out, "listening on http://{}", server.local_addr());
            let _ = out.flush();
        }
        let report = server.run(skiff_http::shutdown_signal()).await;
        tracing::info!(
            "stopped ({} connection(s) cut at the end of the grace period)",
            report.cut
        );
        Ok(0)
    });
    // A guest still running past the grace period is not waited for.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// Log lines go to containerd's FIFOs: what the guest writes to stdout to the container's
/// stdout, everything else (its stderr, request failures) to the container's stderr. No time
/// stamps: containerd's CRI log adds its own.
fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(ContainerLog)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .try_init();
}

struct ContainerLog;

impl<'a> MakeWriter<'a> for ContainerLog {
    type Writer = EitherWriter<io::Stdout, io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        EitherWriter::B(io::stderr())
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        if meta.target() == GUEST_STDOUT_TARGET {
            EitherWriter::A(io::stdout())
        } else {
            EitherWriter::B(io::stderr())
        }
    }
}
