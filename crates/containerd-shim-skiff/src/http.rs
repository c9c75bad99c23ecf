//! The guest runner for a wasi:http component: `skiff serve`'s set-up and server (skiff-http's
//! `engine_for`, `AppSet` and `serve_until_signal`) with one app and every path routed to it, in
//! the container's process, and so in the pod's network namespace (see `process::spawn`).
//! Limits are `skiff serve`'s defaults, but for memory (the container's limit, per instance)
//! and the request timeout (annotation `dev.skiff.timeout`).

use crate::guest::{cache_dir, failure, load, SKIFF_FAILED};
use crate::spec::{HttpPlan, Plan};
use skiff_engine::http::{HttpAppConfig, GUEST_STDOUT_TARGET};
use skiff_engine::EngineConfig;
use skiff_http::{AddError, AppSet, Route, ServeError, ServerLimits};
use std::io::{self, Write as _};
use tracing_subscriber::fmt::writer::{EitherWriter, MakeWriter};

/// Serve until SIGTERM (or SIGINT), then drain in-flight requests and exit 0.
pub fn serve(plan: &Plan, http: &HttpPlan, bytes: &[u8]) -> Result<i32, (i32, String)> {
    init_logging();
    // The guest's output becomes log lines tagged with the request (see `init_logging`).
    let config = HttpAppConfig::from_spec(&http.name, &plan.argv0, &plan.guest, None)
        .map_err(|e| (SKIFF_FAILED, e))?;
    let configs = [config];
    let engine = skiff_http::engine_for(&configs, cache_dir(), EngineConfig::DEFAULT_STACK)
        .map_err(|e| (SKIFF_FAILED, e.to_string()))?;
    let [config] = configs;
    let arg0 = &plan.argv0;
    let mut apps = AppSet::new(&engine);
    apps.add(
        arg0,
        |engine| load(engine, bytes, arg0),
        config,
        Route::any(),
    )
    .map_err(|e| match e {
        AddError::Load(e) => e,
        AddError::App(e) => (e.exit_code().into(), format!("{arg0}: {}", failure(&e))),
        AddError::Route(e) => (SKIFF_FAILED, e),
    })?;
    let config = apps.into_config(http.listen, ServerLimits::default());
    skiff_http::serve_until_signal(config, |server| {
        // A container may have no stdout (`ctr run -d` without a log): the line is for the
        // operator's log when there is one, never a reason to stop serving.
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "listening on http://{}", server.local_addr());
        let _ = out.flush();
        Ok(())
    })
    .map_err(|e| match e {
        ServeError::Bind { .. } => (
            SKIFF_FAILED,
            format!(
                "{e}. Choose another port (annotation {})",
                crate::spec::ANNOTATION_HTTP_PORT
            ),
        ),
        e => (SKIFF_FAILED, e.to_string()),
    })?;
    Ok(0)
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
