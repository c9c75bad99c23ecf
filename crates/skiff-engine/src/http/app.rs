//! One served app: its `ProxyPre`, its grants and limits, and the per-request hot path.

use super::body::{BodyError, LimitedBody, ResponseBody};
use super::guest_log::GuestLog;
use super::outbound::{OutboundHooks, OutboundPolicy};
use super::reuse::{Idle, Instance};
use super::{AppStats, HandleError, HttpAppConfig, HttpLimits, RequestId, Scheme, EPOCH_TICK};
use crate::command::{classify, Instantiation};
use crate::engine::{Compiled, Engine, Program};
use crate::error::RunError;
use crate::limits::{Limits, MemoryLimiter};
use crate::sandbox::Sandbox;
use bytes::Bytes;
use http_body::Body;
use http_body_util::BodyExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::filesystem::WasiFilesystemCtx;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme as WasiScheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The `T` of a request's `Store`.
pub(crate) struct RequestState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    pub(super) table: ResourceTable,
    pub(super) hooks: OutboundHooks,
    limiter: MemoryLimiter,
    /// The id of the request running in this store, as its stdout and stderr lines show it
    /// (one instance serves several under `--reuse`).
    pub(super) request: Arc<AtomicU64>,
    /// Epoch ticks seen while running wasm, and how many are allowed.
    pub(super) cpu_ticks: u32,
    cpu_budget: u32,
    cpu_hit: bool,
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// What every app of one program shares: its imports resolved once (see `Program::http_pre`).
pub(crate) type SharedPre = ProxyPre<RequestState>;

/// A `wasi:http` handler ready to serve: everything that can be done once is done here.
pub struct HttpApp {
    name: Arc<str>,
    max_wasm_stack: usize,
    pre: ProxyPre<RequestState>,
    sandbox: Sandbox,
    /// Preopened directories, opened once at start-up and shared by every request's context.
    fs: WasiFilesystemCtx,
    limits: HttpLimits,
    outbound: Arc<OutboundPolicy>,
    permits: Arc<Semaphore>,
    /// The engine's pool slots, shared by every app of the engine (see `Engine::slots`).
    slots: Option<Arc<Semaphore>>,
    /// Outbound requests in flight across the app's instances (`max_app_outbound`).
    outbound_permits: Arc<Semaphore>,
    stats: Arc<AppStats>,
    /// Set by [`HttpApp::stop`]: every request still running ends at once.
    stopped: tokio::sync::watch::Sender<bool>,
    /// Instances parked between requests; `None` unless the operator turned reuse on.
    idle: Option<Arc<Idle>>,
}

impl HttpApp {
    /// Link `program` against every WASI 0.2 interface plus `wasi:http`, and resolve its
    /// imports once. Linking everything grants nothing: a guest reaches files, variables and
    /// sockets only through what `config.sandbox` grants.
    pub fn new(
        engine: &Engine,
        program: &Program,
        config: HttpAppConfig,
    ) -> Result<HttpApp, RunError> {
        crate::Purpose::Serve.admits(program.info.kind)?;
        let Compiled::Component(component) = &program.compiled else {
            // Never: an HTTP handler is a component, and is compiled as one.
            return Err(RunError::Instantiate("not compiled as a component".into()));
        };
        let pre = match program.http_pre.get() {
            Some(pre) => pre.clone(),
            None => {
                let link = |e: wasmtime::Error| RunError::Instantiate(format!("{e:#}"));
                let mut linker: Linker<RequestState> = Linker::new(&engine.inner);
                wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link)?;
                wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(link)?;
                let pre = linker.instantiate_pre(component).map_err(link)?;
                let pre = ProxyPre::new(pre).map_err(link)?;
                // Two apps racing here build it twice; one copy is kept.
                let _ = program.http_pre.set(pre.clone());
                pre
            }
        };
        // Open the mounts now: the request path must not touch the filesystem.
        let fs = config.sandbox.builder()?.build().filesystem().clone();
        let max = config.limits.max_concurrent.max(1);
        // CPU budgets and fairness yields count ticks of the engine's one ticker.
        engine.ensure_epoch_ticker();
        let outbound = Arc::new(config.sandbox.allow_outbound.clone());
        Ok(HttpApp {
            name: config.name.into(),
            max_wasm_stack: engine.max_wasm_stack,
            pre,
            sandbox: config.sandbox,
            fs,
            limits: config.limits,
            outbound,
            permits: Arc::new(Semaphore::new(max as usize)),
            slots: engine.slots.clone(),
            outbound_permits: Arc::new(Semaphore::new(config.limits.max_app_outbound as usize)),
            stats: Arc::new(AppStats::default()),
            stopped: tokio::sync::watch::Sender::new(false),
            idle: Idle::for_limits(&config.limits),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn limits(&self) -> &HttpLimits {
        &self.limits
    }

    pub fn stats(&self) -> &Arc<AppStats> {
        &self.stats
    }

    /// Count into `stats` instead of counters of its own: an app loaded, evicted and loaded
    /// again (the daemon's scale to zero) keeps one set of counters.
    pub fn with_stats(mut self, stats: Arc<AppStats>) -> HttpApp {
        self.stats = stats;
        self
    }

    /// End every request of this app that still runs (its guest is dropped wherever it is; a
    /// response not yet started is answered 503, one being streamed is cut off), and refuse
    /// new ones with [`HandleError::Stopped`]. For an operator's stop once its grace is over.
    pub fn stop(&self) {
        self.stopped.send_replace(true);
        if let Some(idle) = &self.idle {
            idle.close();
        }
    }

    /// Instantiate the guest in a fresh store, exactly as a request does, and drop it without
    /// calling the handler: the "instantiate to ready" cost the benchmarks measure.
    #[doc(hidden)]
    pub async fn instantiate_only(&self) -> Result<(), RunError> {
        let mut store = self.store(RequestId(0));
        self.pre
            .instantiate_async(&mut store)
            .await
            .map(drop)
            .map_err(|e| RunError::Instantiate(format!("{e:#}")))
    }

    /// Serve one request in a fresh instance (with `--reuse`, maybe one an earlier request of
    /// this app left parked). The response comes back as soon as the guest sets it; its body
    /// streams while the guest keeps writing. Every failure is logged here, with the app and
    /// request id, once.
    pub async fn handle<B>(
        &self,
        req: http::Request<B>,
        id: RequestId,
        scheme: Scheme,
    ) -> Result<http::Response<ResponseBody>, HandleError>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = Instant::now();
        let declared = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.limits.max_body) {
            return Err(self.fail(id, self.body_too_large()));
        }
        let permit = self.permit(id, started).await?;
        let mut stopped = self.stopped.subscribe();
        if *stopped.borrow() {
            return Err(HandleError::Stopped);
        }
        let mut instance = self.instance(id, started).await?;

        let exceeded = Arc::new(AtomicBool::new(false));
        let limit = self.limits.max_body;
        let flag = exceeded.clone();
        let req = req.map(move |b| {
            let b = b.map_err(into_http_error).boxed_unsync();
            LimitedBody::new(b, limit, flag)
        });
        let (tx, rx) = tokio::sync::oneshot::channel();
        let scheme = match scheme {
            Scheme::Http => WasiScheme::Http,
            Scheme::Https => WasiScheme::Https,
        };
        let mut http = instance.store.data_mut().http();
        let request = http
            .new_incoming_request(scheme, req)
            .map_err(|e| HandleError::BadRequest(format!("{e:#}")))?;
        let out = http
            .new_response_outparam(tx)
            .map_err(|e| HandleError::BadRequest(format!("{e:#}")))?;

        let pre = self.pre.clone();
        let idle = self.idle.clone();
        let guest = Guest {
            name: self.name.clone(),
            id,
            limits: self.limits,
            stats: self.stats.clone(),
            max_wasm_stack: self.max_wasm_stack,
            failures: self.failures(),
        };
        // The deadline counts from the request's arrival, queueing included.
        let deadline = self.limits.timeout.saturating_sub(started.elapsed());
        let task = tokio::spawn(async move {
            let run = async {
                let i = &mut instance;
                let proxy = match i.proxy.take() {
                    Some(parked) => parked,
                    None => pre
                        .instantiate_async(&mut i.store)
                        .await
                        .map_err(|e| wasmtime::Error::new(Instantiation(e)))?,
                };
                let ended = proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut i.store, request, out)
                    .await;
                // Kept only by a request that returns; what fails is never parked anyway.
                i.proxy = Some(proxy);
                ended
            };
            // Only `stop()` ends the guest. The app itself may be dropped while this response
            // still streams (a redeploy swaps in a new version and the old one goes once no
            // caller holds it): `wait_for` then fails, and that must not cut the body. It did:
            // wrk saw one broken connection per few redeploys under load.
            let stop = async {
                if stopped.wait_for(|s| *s).await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            let ended = tokio::select! {
                r = tokio::time::timeout(deadline, run) => Some(r),
                () = stop => None,
            };
            let failure = match ended {
                None => Some(HandleError::Stopped),
                Some(Err(_)) => Some(HandleError::Timeout(guest.limits.timeout)),
                Some(Ok(Ok(()))) => None,
                Some(Ok(Err(e))) => Some(guest.classify(e, instance.store.data())),
            };
            if let Some(f) = &failure {
                guest.record(f);
            }
            // Parked for the app's next request only if it ended normally and reuse is on;
            // else dropped (its store, then its pool slot). Either way before the app's permit,
            // so the request that takes the permit finds it parked.
            match (&failure, idle) {
                (None, Some(idle)) => idle.put_back(instance),
                _ => drop(instance),
            }
            drop(permit);
            failure
        });

        let result = match rx.await {
            Ok(Ok(resp)) => Ok(resp.map(|b| {
                b.map_err(|code| BodyError(format!("{code:?}")))
                    .boxed_unsync()
            })),
            Ok(Err(code)) => Err(self.fail(id, HandleError::GuestError(format!("{code:?}")))),
            // The guest dropped the response-outparam, or its instance ended: the task says why.
            Err(_) => match task.await {
                Ok(Some(failure)) => Err(failure),
                Ok(None) => {
                    AppStats::bump(&self.stats.no_response);
                    Err(self.fail(id, HandleError::NoResponse))
                }
                Err(e) => Err(self.fail(
                    id,
                    HandleError::Instantiate(format!("the request's task failed: {e}")),
                )),
            },
        };
        if exceeded.load(Ordering::Acquire) {
            return Err(self.fail(id, self.body_too_large()));
        }
        result
    }

    fn body_too_large(&self) -> HandleError {
        AppStats::bump(&self.stats.body_too_large);
        HandleError::BodyTooLarge {
            limit: self.limits.max_body,
        }
    }

    /// Log a failure that happened outside the guest task, and pass it on.
    fn fail(&self, id: RequestId, e: HandleError) -> HandleError {
        tracing::warn!("[{} {id}] {}: {e}", self.name, e.status());
        // The app's log gets what its guest did (5xx but 503), not what clients did: a flood of
        // oversized bodies or of requests past the queue (4xx, 503) would otherwise write a line
        // per refused request into it, pushing its own output out of the rotation just when the
        // node is busiest.
        if e.status() >= 500 && e.status() != 503 {
            tell(
                &self.failures(),
                &format!("request {id}: {}: {e}", e.status()),
            );
        }
        e
    }

    /// Where the app's failures are also written: its stderr, when that is a sink of its own.
    fn failures(&self) -> Option<Arc<dyn crate::OutputSink>> {
        match &self.sandbox.stderr {
            crate::Output::Sink(s) => Some(s.clone()),
            crate::Output::Inherit => None,
        }
    }

    /// A place under the app's concurrency limit: at once if free (a CAS, no lock), else
    /// waited for until the queue timeout, counted from the request's arrival.
    async fn permit(
        &self,
        id: RequestId,
        arrived: Instant,
    ) -> Result<OwnedSemaphorePermit, HandleError> {
        let wait = self.limits.queue_timeout;
        match acquire(&self.permits, wait, arrived).await {
            Some(p) => Ok(p),
            None => {
                AppStats::bump(&self.stats.overloaded);
                Err(self.fail(
                    id,
                    HandleError::Overloaded {
                        max_concurrent: self.limits.max_concurrent,
                        waited: wait,
                    },
                ))
            }
        }
    }

    /// The request's instance: a parked one if reuse is on and one is free, else a fresh store
    /// in a slot of the engine's pool, waited for within what is left of the queue timeout. A
    /// parked instance keeps its slot, so the app's instances never outnumber its permits.
    async fn instance(&self, id: RequestId, arrived: Instant) -> Result<Instance, HandleError> {
        if let Some(instance) = self.idle.as_ref().and_then(|i| i.take(id, &self.limits)) {
            AppStats::bump(&self.stats.reused);
            return Ok(instance);
        }
        let wait = self.limits.queue_timeout;
        let slot = match &self.slots {
            None => None,
            Some(slots) => match acquire(slots, wait, arrived).await {
                Some(p) => Some(p),
                None => {
                    AppStats::bump(&self.stats.pool_full);
                    return Err(self.fail(id, HandleError::PoolFull { waited: wait }));
                }
            },
        };
        Ok(Instance::new(self.store(id), slot, &self.stats))
    }

    fn store(&self, id: RequestId) -> Store<RequestState> {
        let request = Arc::new(AtomicU64::new(id.0));
        let mut b = WasiCtxBuilder::new();
        b.args(&self.sandbox.args).envs(&self.sandbox.env);
        // A sink (the daemon's log file of the app) if the sandbox names one; else the
        // process's log, tagged with the app and request id (`skiff serve`).
        match &self.sandbox.stdout {
            crate::Output::Sink(s) => b.stdout(crate::output::SinkStream(s.clone())),
            crate::Output::Inherit => b.stdout(GuestLog {
                app: self.name.clone(),
                request: request.clone(),
                stream: "stdout",
            }),
        };
        match &self.sandbox.stderr {
            crate::Output::Sink(s) => b.stderr(crate::output::SinkStream(s.clone())),
            crate::Output::Inherit => b.stderr(GuestLog {
                app: self.name.clone(),
                request: request.clone(),
                stream: "stderr",
            }),
        };
        if self.sandbox.network {
            b.inherit_network()
                .allow_tcp(true)
                .allow_udp(true)
                .allow_ip_name_lookup(true);
        }
        let mut wasi = b.build();
        *wasi.filesystem() = self.fs.clone();
        let ticks = self
            .limits
            .cpu_time
            .as_millis()
            .div_ceil(EPOCH_TICK.as_millis());
        let state = RequestState {
            wasi,
            http: WasiHttpCtx::new(),
            table: crate::command::capped_table(&instance_limits(&self.limits)),
            hooks: OutboundHooks {
                policy: self.outbound.clone(),
                app: self.name.clone(),
                request_id: Some(id),
                stats: self.stats.clone(),
                request_permits: Arc::new(Semaphore::new(self.limits.max_outbound as usize)),
                app_permits: self.outbound_permits.clone(),
                limits: self.limits,
            },
            limiter: MemoryLimiter::metered(self.limits.memory, Some(self.stats.usage.clone())),
            request,
            cpu_ticks: 0,
            cpu_budget: u32::try_from(ticks).unwrap_or(u32::MAX).max(1),
            cpu_hit: false,
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.limiter as &mut dyn wasmtime::ResourceLimiter);
        // Every tick that finds the guest running wasm costs one tick of its CPU budget and
        // yields its thread, so a busy guest cannot starve the other requests on that thread.
        store.epoch_deadline_callback(|mut cx| {
            let s = cx.data_mut();
            s.cpu_ticks += 1;
            s.limiter.tick();
            if s.cpu_ticks >= s.cpu_budget {
                s.cpu_hit = true;
                return Ok(UpdateDeadline::Interrupt);
            }
            Ok(UpdateDeadline::Yield(1))
        });
        store.set_epoch_deadline(1);
        store
    }
}

/// A permit of `s`: at once if one is free, else waited for until `wait` after `arrived`.
async fn acquire(
    s: &Arc<Semaphore>,
    wait: Duration,
    arrived: Instant,
) -> Option<OwnedSemaphorePermit> {
    if let Ok(p) = s.clone().try_acquire_owned() {
        return Some(p);
    }
    let left = wait.saturating_sub(arrived.elapsed());
    match tokio::time::timeout(left, s.clone().acquire_owned()).await {
        Ok(Ok(p)) => Some(p),
        _ => None,
    }
}

/// What the guest task needs to report on its request.
struct Guest {
    name: Arc<str>,
    id: RequestId,
    limits: HttpLimits,
    stats: Arc<AppStats>,
    max_wasm_stack: usize,
    failures: Option<Arc<dyn crate::OutputSink>>,
}

/// A failure's line into the app's own log too (the daemon's `skiff logs APP`), beside the
/// host's log: the operator of an app sees why its requests fail where its output is.
fn tell(sink: &Option<Arc<dyn crate::OutputSink>>, line: &str) {
    if let Some(s) = sink {
        s.write(format!("skiff: {line}\n").as_bytes());
    }
}

impl Guest {
    fn classify(&self, e: wasmtime::Error, state: &RequestState) -> HandleError {
        let limits = instance_limits(&self.limits);
        let cpu_hit = AtomicBool::new(state.cpu_hit);
        match classify(e, state.limiter.hit, &limits, &cpu_hit, self.max_wasm_stack) {
            RunError::MemoryLimit { limit, .. } => HandleError::MemoryLimit { limit },
            RunError::Timeout(_) => HandleError::CpuLimit(self.limits.cpu_time),
            RunError::Trap { message, backtrace } => HandleError::Trap { message, backtrace },
            e @ RunError::StackOverflow(_) => HandleError::Trap {
                message: e.to_string(),
                backtrace: Vec::new(),
            },
            e @ RunError::HandleLimit { .. } => HandleError::Trap {
                message: e.to_string(),
                backtrace: e.backtrace().to_vec(),
            },
            RunError::Instantiate(m) => HandleError::Instantiate(m),
            e => HandleError::Instantiate(e.to_string()),
        }
    }

    /// Count and log a failure of the guest, whether or not its response had started.
    fn record(&self, f: &HandleError) {
        if matches!(f, HandleError::Stopped) {
            // The operator's doing, not the guest's: not a failure to count.
            tracing::debug!("[{} {}] ended: the app was stopped", self.name, self.id);
            return;
        }
        let counter = match f {
            HandleError::MemoryLimit { .. } => &self.stats.memory_limit,
            HandleError::CpuLimit(_) => &self.stats.cpu_limit,
            HandleError::Timeout(_) => &self.stats.timeouts,
            _ => &self.stats.traps,
        };
        AppStats::bump(counter);
        match f {
            HandleError::Trap { backtrace, .. } if !backtrace.is_empty() => {
                let mut bt = String::new();
                for (i, frame) in backtrace.iter().enumerate() {
                    bt.push_str(&format!("\n  {i:>2}: {frame}"));
                }
                tracing::error!(
                    "[{} {}] {}: {f}\nwasm backtrace:{bt}",
                    self.name,
                    self.id,
                    f.status()
                );
                tell(
                    &self.failures,
                    &format!(
                        "request {}: {}: {f}\nwasm backtrace:{bt}",
                        self.id,
                        f.status()
                    ),
                );
            }
            _ => {
                tracing::error!("[{} {}] {}: {f}", self.name, self.id, f.status());
                tell(
                    &self.failures,
                    &format!("request {}: {}: {f}", self.id, f.status()),
                );
            }
        }
    }
}

/// One instance's limits in the terms of a command's; the CPU budget stands for the timeout.
fn instance_limits(l: &HttpLimits) -> Limits {
    Limits {
        memory: l.memory,
        timeout: Some(l.cpu_time),
        max_open: l.max_open,
    }
}

/// Counts an instance as live from creation to drop.
pub(super) struct Live(Arc<AppStats>);

impl Live {
    pub(super) fn new(stats: &Arc<AppStats>) -> Live {
        stats.live.fetch_add(1, Ordering::Relaxed);
        Live(stats.clone())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::Relaxed);
    }
}

fn into_http_error(
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> wasmtime_wasi_http::Error {
    let e = e.into();
    match e.downcast::<hyper::Error>() {
        Ok(h) => wasmtime_wasi_http::Error::Hyper(*h),
        Err(e) => wasmtime_wasi_http::Error::InternalError(Some(e.to_string())),
    }
}
