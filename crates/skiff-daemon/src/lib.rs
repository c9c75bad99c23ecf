//! `skiff daemon`: the node agent.
//!
//! One process holds one wasm engine and runs every workload inside it, as async tasks on a
//! tokio runtime: starting a task costs a future, not a process. Around that: an HTTP/JSON API
//! on a Unix socket (mode 0600; optionally TCP with a bearer token), a state database that
//! survives `kill -9` (redb), a supervisor with restart policies, and a log file per workload
//! with size-based rotation.
//!
//! Layout under `SKIFF_HOME/daemon/` (mode 0700):
//! `skiff.sock`, `lock`, `state.redb`, `token`, `api-addr`, `store/blobs/sha256/<hex>`,
//! `evidence/<hex>` (what came with a binary, for the trust policy), `logs/<id>.log[.N]`.

mod api;
mod apps;
mod blobs;
mod daemon;
mod db;
mod error;
mod events;
mod follow;
mod host;
mod info;
mod logs;
mod metrics;
mod mounts;
mod openapi;
mod programs;
mod project;
mod stats;
mod supervisor;
mod trust;
mod util;

pub use error::DaemonError;
pub use logs::LogConfig;
pub use mounts::MountPolicy;

use error::io;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use skiff_api::ApiInfo;
use skiff_engine::{AllocatorChoice, Engine, EngineConfig};
use skiff_http::{AcceptBackoff, ConnLimiter, ConnLimits, ConnSlot, WriteStall};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How to run the daemon.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// SKIFF_HOME: the daemon keeps its state under `<home>/daemon`.
    pub home: PathBuf,
    /// Also serve the API on this TCP address (bearer token required).
    pub api_listen: Option<SocketAddr>,
    pub log: LogConfig,
    /// Run the HTTP data plane for apps on this address.
    pub http_listen: Option<SocketAddr>,
    /// Memory budget for apps' compiled code; least recently used apps are evicted beyond it.
    pub app_cache_size: u64,
    /// Which host directories API clients may mount (`--allow-mount`).
    pub mounts: MountPolicy,
    /// The data plane's access log (`-`: stderr), with `--http-listen`.
    pub access_log: Option<PathBuf>,
    /// The trust policy every uploaded binary is checked against (`None`: accept anything).
    pub policy: Option<skiff_trust::Policy>,
}

/// The default of [`DaemonConfig::app_cache_size`].
pub const DEFAULT_APP_CACHE_SIZE: u64 = 512 << 20;

/// Facts fixed at start-up, for `system info`.
pub struct InfoStatic {
    pub home: PathBuf,
    pub api: ApiInfo,
    pub worker_threads: usize,
    /// What uploads are checked against (`None`: anything is accepted).
    pub policy: Option<skiff_trust::Policy>,
}

/// Where the API socket of the daemon for `home` is.
pub fn socket_path(home: &Path) -> PathBuf {
    home.join("daemon").join("skiff.sock")
}

/// Where the TCP API's bearer token is kept (mode 0600).
pub fn token_path(home: &Path) -> PathBuf {
    home.join("daemon").join("token")
}

/// Where the daemon writes the TCP address it bound (useful with port 0).
pub fn api_addr_path(home: &Path) -> PathBuf {
    home.join("daemon").join("api-addr")
}

/// Where the daemon writes the address of its HTTP data plane (useful with port 0).
pub fn http_addr_path(home: &Path) -> PathBuf {
    home.join("daemon").join("http-addr")
}

/// Run the daemon until SIGINT or SIGTERM.
pub fn run(config: DaemonConfig) -> Result<(), DaemonError> {
    let dir = config.home.join("daemon");
    util::private_dir(&dir).map_err(io(format!("cannot create {}", dir.display())))?;
    // One daemon per home: two would run every workload twice.
    let lock_path = dir.join("lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(format!("cannot open {}", lock_path.display())))?;
    if lock.try_lock().is_err() {
        return Err(DaemonError::AlreadyRunning(
            config.home.display().to_string(),
        ));
    }
    let db = db::Db::open(&dir.join("state.redb"))?;
    if config.http_listen.is_none() {
        refuse_apps_without_a_data_plane(&db)?;
    }
    let blobs = blobs::Blobs::open(&dir)?;
    // Two engines. Tasks allocate on demand: a long-running task holds its instance for its
    // whole life, so tasks in a pool of fixed size would fail to start past its count. HTTP
    // apps get a pool of their own (`host::APP_POOL_SLOTS`), where each request's instance is
    // a warm slot, and a request that finds every slot busy waits for one (within its app's
    // queue timeout) rather than failing. On demand, one app served 0.30× what `skiff serve`
    // does with the same binary (bench/daemon.sh, scenario 4; docs/benchmarks.md). A program is
    // compiled for one engine, so each engine has its own `Programs`.
    let cache_dir = Some(config.home.join("cache").join("compiled"));
    let engine = Engine::new(&EngineConfig {
        cache_dir: cache_dir.clone(),
        allocator: AllocatorChoice::OnDemand,
        max_wasm_stack: EngineConfig::DEFAULT_STACK,
    })
    .map_err(|e| DaemonError::Engine(e.to_string()))?;
    let app_engine = match config.http_listen {
        None => None,
        Some(_) => {
            let e = Engine::new(&EngineConfig {
                cache_dir,
                allocator: AllocatorChoice::Pooling {
                    max_instances: host::APP_POOL_SLOTS,
                    max_memory: host::APP_POOL_MAX_MEMORY,
                },
                max_wasm_stack: EngineConfig::DEFAULT_STACK,
            })
            .map_err(|e| DaemonError::Engine(e.to_string()))?;
            if !e.is_pooling() {
                tracing::warn!(
                    "the pooling allocator is unavailable here (a low \
                     ulimit -v?); HTTP apps allocate each instance on demand (slower)"
                );
            }
            Some(Arc::new(e))
        }
    };
    let worker_threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads)
        .thread_name("skiff-daemon")
        .enable_all()
        .build()
        .map_err(io("cannot start the async runtime"))?;
    // Tasks get a runtime of their own, on lower-priority threads (see `host`): on the shared
    // runtime two looping tasks took an app beside them from 5,345 to 12.5 requests/s; with
    // this, its throughput beside them is 0.93 of alone (bench/daemon.sh scenario 5, median of
    // three, debug build, docs/benchmarks.md).
    let tasks_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads)
        .thread_name("skiff-task")
        .on_thread_start(host::lower_thread_priority)
        .enable_all()
        .build()
        .map_err(io("cannot start the tasks' async runtime"))?;
    let nofile = host::raise_nofile();
    let connections = match config.http_listen {
        Some(_) => skiff_http::ServerLimits::default().max_connections as u64,
        None => 0,
    };
    let fds = host::FdBudget::new(nofile, connections);
    if fds.for_tasks < skiff_engine::Limits::DEFAULT_MAX_OPEN as u64 {
        tracing::warn!(
            "the open-file limit ({nofile}) leaves {} descriptors for \
             tasks after {} kept for the API, logs and HTTP connections and {} for apps' \
             outbound requests; raise it (ulimit -n) or tasks granted a directory or the \
             network must use a small --max-open",
            fds.for_tasks,
            fds.reserved,
            fds.outbound
        );
    }
    let host = host::Host::new(tasks_rt.handle().clone(), fds);
    rt.block_on(async move {
        let socket = socket_path(&config.home);
        // We hold the lock, so a socket file left here is from a daemon that died.
        let _ = std::fs::remove_file(&socket);
        let unix = tokio::net::UnixListener::bind(&socket)
            .map_err(io(format!("cannot listen on {}", socket.display())))?;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
            .map_err(io(format!("cannot chmod {}", socket.display())))?;
        let mut tcp_addr = None;
        let tcp = match config.api_listen {
            None => {
                let _ = std::fs::remove_file(api_addr_path(&config.home));
                None
            }
            Some(addr) => {
                let token = load_or_create_token(&config.home)?;
                let l = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(io(format!("cannot listen on {addr}")))?;
                let bound = l.local_addr().map_err(io("local address"))?;
                std::fs::write(api_addr_path(&config.home), format!("{bound}\n"))
                    .map_err(io("cannot write api-addr"))?;
                tcp_addr = Some(bound.to_string());
                Some((l, Arc::new(token)))
            }
        };
        let engine = Arc::new(engine);
        let programs = Arc::new(programs::Programs::new(engine.clone(), blobs.clone()));
        let mut http_addr = None;
        // The data plane drains on the daemon's own shutdown (below), not on a signal of its own.
        let (stop_serving, serving_stopped) = tokio::sync::watch::channel(false);
        let mut data_plane = None;
        let events = events::Events::default();
        let apps = match (config.http_listen, app_engine) {
            (Some(listen), Some(app_engine)) => {
                let routes = Arc::new(skiff_http::Routes::default());
                let server = skiff_http::Server::bind(skiff_http::ServerConfig {
                    listen,
                    admin_listen: None,
                    tls: None,
                    routes: routes.clone(),
                    apps: Vec::new(),
                    limits: skiff_http::ServerLimits::default(),
                    access_log: match &config.access_log {
                        Some(path) => Some(skiff_http::AccessLog::open(path).map_err(io(
                            format!("cannot open the access log {}", path.display()),
                        ))?),
                        None => None,
                    },
                })
                .await
                .map_err(|e| DaemonError::Http(e.to_string()))?;
                let bound = server.local_addr();
                std::fs::write(http_addr_path(&config.home), format!("{bound}\n"))
                    .map_err(io("cannot write http-addr"))?;
                http_addr = Some(bound);
                let metrics = server.metrics();
                let mut stopped = serving_stopped.clone();
                data_plane = Some(tokio::spawn(server.run(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })));
                Some(apps::Apps::new(
                    routes,
                    metrics,
                    Arc::new(programs::Programs::new(app_engine, blobs.clone())),
                    bound.to_string(),
                    config.app_cache_size,
                    events.clone(),
                ))
            }
            _ => None,
        };
        logs::migrate_directories(&dir.join("logs"));
        let d = Arc::new(daemon::Daemon::new(
            engine,
            programs,
            db,
            blobs,
            config.log,
            dir.join("logs"),
            InfoStatic {
                home: config.home.clone(),
                api: ApiInfo {
                    socket: socket.display().to_string(),
                    tcp: tcp_addr.clone(),
                },
                worker_threads,
                policy: config.policy,
            },
            apps,
            config.mounts,
            host,
            events,
        ));
        let resumed = d.recover().await?;
        tracing::info!(
            "skiff daemon {}: listening on unix://{}{}{}; {resumed} workload(s) resumed",
            env!("CARGO_PKG_VERSION"),
            socket.display(),
            http_addr
                .map(|a| format!("; HTTP apps on http://{a}"))
                .unwrap_or_default(),
            tcp_addr
                .map(|a| format!(
                    " and tcp://{a} (bearer token in {})",
                    token_path(&config.home).display()
                ))
                .unwrap_or_default()
        );
        // Each listener has its own cap: strangers filling the TCP API cannot lock out the
        // Unix socket.
        let unix_loop = {
            let d = d.clone();
            async move {
                let limiter = ConnLimiter::new(API_CONN_LIMITS);
                let mut backoff = AcceptBackoff::new("the API socket");
                loop {
                    match unix.accept().await {
                        Ok((s, _)) => {
                            backoff.succeeded();
                            let slot = limiter.admit().await;
                            serve(d.clone(), api::Access::Socket, s, slot)
                        }
                        Err(e) => backoff.failed(e).await,
                    }
                }
            }
        };
        let tcp_loop = async move {
            let Some((l, token)) = tcp else {
                return std::future::pending::<()>().await;
            };
            let limiter = ConnLimiter::new(API_CONN_LIMITS);
            let mut backoff = AcceptBackoff::new("the TCP API");
            loop {
                match l.accept().await {
                    Ok((s, _)) => {
                        backoff.succeeded();
                        let slot = limiter.admit().await;
                        let _ = s.set_nodelay(true);
                        serve(d.clone(), api::Access::Token(token.clone()), s, slot)
                    }
                    Err(e) => backoff.failed(e).await,
                }
            }
        };
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(io("cannot handle SIGTERM"))?;
        tokio::select! {
            _ = unix_loop => {}
            _ = tcp_loop => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        // Workloads are not stopped in the database: the next daemon resumes them, exactly as
        // after a crash.
        let _ = std::fs::remove_file(&socket);
        tracing::info!("skiff daemon: shutting down");
        // Requests in flight finish (up to the data plane's grace), as under `skiff serve`.
        let _ = stop_serving.send(true);
        if let Some(server) = data_plane {
            let _ = server.await;
        }
        Ok::<(), DaemonError>(())
    })?;
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    tasks_rt.shutdown_timeout(std::time::Duration::from_secs(1));
    drop(lock);
    Ok(())
}

/// Limits of each API listener. API clients are the CLI and scripts: a request a command, a
/// few `logs -f` streams; 256 connections is far beyond that, and at the cap the oldest one
/// doing nothing (a silent stranger first) makes room. A head is one write of a few hundred
/// bytes: 10 s is plenty on any network.
const API_CONN_LIMITS: ConnLimits = ConnLimits {
    max: 256,
    head_timeout: Duration::from_secs(10),
    idle_timeout: Duration::from_secs(30),
};
/// The API's request heads are small; hyper's default buffer is 400 KiB.
const API_MAX_HEAD: usize = 64 << 10;

fn serve<S>(d: Arc<daemon::Daemon>, access: api::Access, stream: S, slot: ConnSlot)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let requests = slot.requests();
        let svc =
            service_fn(move |req| requests.track(api::handle(d.clone(), access.clone(), req)));
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            // A backstop: the slot closes the connection first.
            .header_read_timeout(API_CONN_LIMITS.idle_timeout + API_CONN_LIMITS.head_timeout)
            .max_buf_size(API_MAX_HEAD)
            .serve_connection(
                TokioIo::new(WriteStall::new(stream, API_CONN_LIMITS.idle_timeout)),
                svc,
            );
        let _ = slot
            .drive(conn, |c| c.graceful_shutdown(), std::future::pending())
            .await;
    });
}

fn load_or_create_token(home: &Path) -> Result<String, DaemonError> {
    let path = token_path(home);
    if let Ok(t) = std::fs::read_to_string(&path) {
        let t = t.trim().to_string();
        if t.len() >= 32 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(io(format!("cannot chmod {}", path.display())))?;
            return Ok(t);
        }
    }
    let t = util::random_hex(32).map_err(io("cannot read /dev/urandom"))?;
    util::write_private(&path, format!("{t}\n").as_bytes())
        .map_err(io(format!("cannot write {}", path.display())))?;
    Ok(t)
}

/// Apps the operator wants running need the data plane. Started without `--http-listen`, a
/// daemon used to mark each of them exited and desired-stopped: a restart with a missing flag
/// silently undid every deploy, and adding the flag back did not bring them back. The daemon
/// never changes what it was told on its own, so it refuses to start instead, naming the apps.
fn refuse_apps_without_a_data_plane(db: &db::Db) -> Result<(), DaemonError> {
    let mut apps: Vec<String> = db
        .load_all()?
        .into_iter()
        .filter(|w| {
            w.kind == skiff_api::WorkloadKind::App && w.desired == skiff_api::Desired::Running
        })
        .map(|w| w.name)
        .collect();
    apps.sort();
    if apps.is_empty() {
        Ok(())
    } else {
        Err(DaemonError::NoDataPlane(apps.join(", ")))
    }
}
