//! Serving a fixed set of apps (`skiff serve`, the containerd shim): pool sizing and program
//! loading written once, the apps put in the same [`Routes`] table the daemon fills, and the
//! same server run until SIGINT or SIGTERM.

use crate::metrics::RequestMetrics;
use crate::{Backend, Reply, RequestBody, Route, Routes, ServeError, Server, ServerConfig};
use crate::{ServerLimits, ShutdownReport};
use skiff_engine::http::{HttpApp, HttpAppConfig, HttpLimits, RequestId, Scheme};
use skiff_engine::{AllocatorChoice, Engine, EngineConfig, LoadError, Program, RunError};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// An app fixed at start-up, and its request counters.
pub struct ServedApp {
    app: HttpApp,
    requests: RequestMetrics,
}

impl ServedApp {
    pub fn app(&self) -> &HttpApp {
        &self.app
    }
}

impl Backend for ServedApp {
    fn handle(
        self: Arc<Self>,
        req: http::Request<RequestBody>,
        id: RequestId,
        scheme: Scheme,
    ) -> Reply {
        Box::pin(async move { self.app.handle(req, id, scheme).await })
    }

    fn name(&self) -> &str {
        self.app.name()
    }

    fn requests(&self) -> &RequestMetrics {
        &self.requests
    }
}

/// The pool for a fixed set of apps: a slot for every instance they may run at once (the sum
/// of their `max_concurrent`), each as large as the largest memory limit. The engine's slot
/// permits then never make a request wait beyond its own app's limit.
pub fn pool_for<'a>(limits: impl IntoIterator<Item = &'a HttpLimits>) -> AllocatorChoice {
    let (mut max_instances, mut max_memory) = (0u32, 0u64);
    for l in limits {
        max_instances = max_instances.saturating_add(l.max_concurrent);
        max_memory = max_memory.max(l.memory);
    }
    AllocatorChoice::Pooling {
        max_instances,
        max_memory,
    }
}

/// The engine for `configs`, on [`pool_for`]'s pool; says so when the pool cannot be had.
pub fn engine_for(
    configs: &[HttpAppConfig],
    cache_dir: Option<PathBuf>,
    max_wasm_stack: usize,
) -> Result<Engine, LoadError> {
    let engine = Engine::new(&EngineConfig {
        cache_dir,
        allocator: pool_for(configs.iter().map(|c| &c.limits)),
        max_wasm_stack,
    })?;
    if !engine.is_pooling() {
        tracing::warn!(
            "the pooling allocator is unavailable here; instances use mmap per request (slower)"
        );
    }
    Ok(engine)
}

/// Why an app could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AddError<E> {
    /// Getting its program (the caller's loader) failed.
    #[error("{0}")]
    Load(E),
    /// The program is no HTTP handler, or its imports cannot be resolved.
    #[error("{0}")]
    App(RunError),
    #[error("{0}")]
    Route(String),
}

/// The apps of one server, being put together.
pub struct AppSet<'e> {
    engine: &'e Engine,
    /// Apps of one source share one program: its compiled code and its resolved imports are
    /// loaded once, not once per app (a thousand routes to one binary hold one copy).
    programs: HashMap<String, Program>,
    routes: Arc<Routes>,
    apps: Vec<Arc<ServedApp>>,
}

impl<'e> AppSet<'e> {
    pub fn new(engine: &'e Engine) -> AppSet<'e> {
        AppSet {
            engine,
            programs: HashMap::new(),
            routes: Arc::default(),
            apps: Vec::new(),
        }
    }

    /// Serve `config` at `route`, from the program of `source` (`load` runs for the first app
    /// of each source only).
    pub fn add<E>(
        &mut self,
        source: &str,
        load: impl FnOnce(&Engine) -> Result<Program, E>,
        config: HttpAppConfig,
        route: Route,
    ) -> Result<(), AddError<E>> {
        let program = match self.programs.entry(source.to_string()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(load(self.engine).map_err(AddError::Load)?)
            }
        };
        let name = config.name.clone();
        let app = HttpApp::new(self.engine, program, config).map_err(AddError::App)?;
        let app = Arc::new(ServedApp {
            app,
            requests: RequestMetrics::default(),
        });
        self.routes
            .add(route, app.clone())
            .map_err(|e| AddError::Route(format!("app {name}: {e}")))?;
        self.apps.push(app);
        Ok(())
    }

    /// The server's configuration for these apps.
    pub fn into_config(self, listen: std::net::SocketAddr, limits: ServerLimits) -> ServerConfig {
        ServerConfig {
            listen,
            admin_listen: None,
            tls: None,
            routes: self.routes,
            apps: self.apps,
            limits,
            access_log: None,
        }
    }
}

/// `skiff serve`'s and the shim's whole server: a runtime, the sockets bound, `announce` called
/// with the bound server (to print its addresses), then [`Server::run`] until SIGINT or SIGTERM
/// and the drain. A guest still running a second after the drain is not waited for.
pub fn serve_until_signal(
    config: ServerConfig,
    announce: impl FnOnce(&Server) -> std::io::Result<()>,
) -> Result<ShutdownReport, ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("skiff-serve")
        .build()
        .map_err(|e| ServeError::Io(format!("cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(async {
        let server = Server::bind(config).await?;
        announce(&server).map_err(|e| ServeError::Io(format!("cannot write to stdout: {e}")))?;
        let report = server.run(crate::shutdown_signal()).await;
        tracing::info!(
            "stopped ({} connection(s) cut at the end of the grace period)",
            report.cut
        );
        Ok(report)
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}
