//! HTTP apps: the daemon's side of the shared data plane (`skiff-http`'s server and its
//! [`Routes`] table, the one `skiff serve` and the shim fill too).
//!
//! **Scale to zero.** A deployed app is a route and a recipe ([`Deployed`]): no compiled code,
//! no instance. Its first request gets the code (shared with the other loaded apps of the same
//! binary, else loaded from the compile cache that deploy filled: a deserialize, no compile)
//! and builds its `HttpApp`; later requests reuse it through an atomic pointer, without a lock.
//! Loaded apps are weighed by their compiled code, counted once per binary, plus
//! [`APP_OVERHEAD`] each; beyond the memory budget the least recently used ones are dropped
//! again (their next request loads them anew). Requests in flight keep what they hold.
//!
//! **Redeploy.** A new version is a new [`Deployed`]; the routing table is rebuilt with it and
//! swapped in one store. Requests that picked the old version finish on it.

use crate::programs::Programs;
use arc_swap::ArcSwapOption;
use skiff_api::{AppRuntime, HttpInfo};
use skiff_engine::http::{HandleError, HttpApp, HttpAppConfig, RequestId, Scheme};
use skiff_engine::Program;
use skiff_http::{Backend, Reply, RequestBody, RequestMetrics, Route, Routes, ServerMetrics};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

/// What a loaded app costs besides its (shared) compiled code: its `HttpApp` (sandbox, opened
/// mounts, semaphore, counters). Measured by `bench/daemon.sh` as RSS per loaded app.
pub const APP_OVERHEAD: u64 = 16 << 10;

/// The data plane's apps.
pub struct Apps {
    routes: Arc<Routes>,
    /// The data plane's own counters (connections, unrouted requests), for `/metrics`.
    pub server_metrics: Arc<ServerMetrics>,
    /// On the apps' pooling engine (tasks have their own).
    programs: Arc<Programs>,
    pub listen: String,
    budget: u64,
    /// Deployed apps by workload id. Changed by deploy/stop only (never per request).
    deployed: Mutex<BTreeMap<String, Arc<Deployed>>>,
    /// Apps whose code is loaded; the only lock besides `deployed`, taken on load (cold path).
    loaded: Mutex<Vec<Weak<Deployed>>>,
    /// Per workload id, across versions.
    counters: Mutex<BTreeMap<String, Arc<Counters>>>,
    loads: AtomicU64,
    evictions: AtomicU64,
    epoch: Instant,
    /// For the `oom` events of requests.
    events: crate::events::Events,
}

#[derive(Default)]
struct Counters {
    loads: AtomicU64,
    evictions: AtomicU64,
    requests: AtomicU64,
    in_flight: AtomicU64,
    version: AtomicU64,
    /// Answered requests by status class, and their latency: counted by the server.
    http: RequestMetrics,
    /// The engine's counters (traps, limits, outbound denials), kept across loads.
    engine: Arc<skiff_engine::http::AppStats>,
}

/// One app's counters, for `GET /metrics`.
pub struct AppCounters {
    counters: Arc<Counters>,
    loaded: bool,
}

impl AppCounters {
    pub fn in_flight(&self) -> u64 {
        self.counters.in_flight.load(Relaxed)
    }
    pub fn loaded(&self) -> u64 {
        u64::from(self.loaded)
    }
    pub fn loads(&self) -> u64 {
        self.counters.loads.load(Relaxed)
    }
    pub fn evictions(&self) -> u64 {
        self.counters.evictions.load(Relaxed)
    }
    pub fn version(&self) -> u64 {
        self.counters.version.load(Relaxed)
    }
    pub fn engine(&self) -> &skiff_engine::http::AppStats {
        &self.counters.engine
    }

    pub fn http(&self) -> &RequestMetrics {
        &self.counters.http
    }
}

/// One version of one app.
pub struct Deployed {
    /// The workload's id.
    id: String,
    digest: String,
    config: HttpAppConfig,
    route: Route,
    apps: Weak<Apps>,
    counters: Arc<Counters>,
    /// The built app while loaded.
    app: ArcSwapOption<Loaded>,
    /// Milliseconds since the daemon started, at its last request: the LRU order.
    last_used: AtomicU64,
    /// One load at a time per app; requests arriving meanwhile wait for it.
    loading: tokio::sync::Mutex<()>,
    /// Set by [`Deployed::stop`]: never load again.
    stopped: std::sync::atomic::AtomicBool,
}

struct Loaded {
    app: HttpApp,
    /// Shared with every loaded app of the same binary.
    program: Arc<Program>,
    /// The program's code size.
    size: u64,
}

/// What the loaded apps among `apps` weigh: each binary's code once, plus each app's overhead.
fn weight<'a>(apps: impl IntoIterator<Item = &'a Arc<Deployed>>) -> (u64, u64) {
    let mut programs = HashSet::new();
    let (mut n, mut total) = (0, 0);
    for a in apps {
        if let Some(l) = a.app.load().as_ref() {
            n += 1;
            total += APP_OVERHEAD;
            if programs.insert(Arc::as_ptr(&l.program) as usize) {
                total += l.size;
            }
        }
    }
    (n, total)
}

impl Apps {
    pub fn new(
        routes: Arc<Routes>,
        server_metrics: Arc<ServerMetrics>,
        programs: Arc<Programs>,
        listen: String,
        budget: u64,
        events: crate::events::Events,
    ) -> Arc<Apps> {
        Arc::new(Apps {
            routes,
            server_metrics,
            programs,
            listen,
            budget,
            deployed: Mutex::new(BTreeMap::new()),
            loaded: Mutex::new(Vec::new()),
            counters: Mutex::new(BTreeMap::new()),
            loads: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            epoch: Instant::now(),
            events,
        })
    }

    /// Would `route` clash with another app's (other than `id`'s)? One lookup in the table,
    /// whatever the number of apps.
    pub fn check_route(&self, id: Option<&str>, route: &Route) -> Result<(), String> {
        let d = lock(&self.deployed);
        let Some(holder) = self.routes.get(route) else {
            return Ok(());
        };
        let mine = id.and_then(|i| d.get(i));
        match mine.is_some_and(|m| same_app(m, &holder)) {
            true => Ok(()),
            false => Err(format!(
                "route {route} is given to two apps; each route serves one app"
            )),
        }
    }

    /// Serve `id` (a first deploy, a restart or a new version) at `route`. With `preload`, the
    /// code is loaded before the swap, so the new version's first request does not wait.
    pub async fn deploy(
        self: &Arc<Self>,
        id: &str,
        digest: &str,
        route: Route,
        config: HttpAppConfig,
        preload: bool,
    ) -> Result<(), String> {
        let counters = lock(&self.counters)
            .entry(id.to_string())
            .or_default()
            .clone();
        let new = Arc::new(Deployed {
            id: id.to_string(),
            digest: digest.to_string(),
            config,
            route,
            apps: Arc::downgrade(self),
            counters: counters.clone(),
            app: ArcSwapOption::empty(),
            last_used: AtomicU64::new(self.now_ms()),
            loading: tokio::sync::Mutex::new(()),
            stopped: Default::default(),
        });
        if preload {
            new.load().await.map_err(|e| e.to_string())?;
        }
        let mut d = lock(&self.deployed);
        // The old version's route out and the new one's in, in one swap of the table.
        let old_route = d.get(id).map(|o| o.route.clone());
        let backend = new.clone() as Arc<dyn Backend>;
        self.routes.update(|table| {
            if let Some(r) = &old_route {
                table.remove(r);
            }
            table.add(new.route.clone(), backend)
        })?;
        d.insert(id.to_string(), new);
        counters.version.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Whether the current version of `id` has its code loaded (a redeploy preloads then).
    pub fn is_loaded(&self, id: &str) -> bool {
        lock(&self.deployed)
            .get(id)
            .is_some_and(|a| a.app.load().is_some())
    }

    /// Take `id`'s route away (404 from now on). Requests in flight finish on what they hold;
    /// the caller ends them with [`Deployed::stop`] when their grace is over.
    pub fn undeploy(&self, id: &str) -> Option<Arc<Deployed>> {
        let mut d = lock(&self.deployed);
        let gone = d.remove(id)?;
        let _ = self.routes.update(|table| Ok(table.remove(&gone.route)));
        Some(gone)
    }

    /// Requests of `id` in progress now (every version).
    pub fn in_flight(&self, id: &str) -> u64 {
        lock(&self.counters)
            .get(id)
            .map_or(0, |c| c.in_flight.load(Relaxed))
    }

    /// Forget a removed app's counters.
    pub fn forget(&self, id: &str) {
        lock(&self.counters).remove(id);
    }

    pub fn counters(&self, id: &str) -> Option<AppCounters> {
        let counters = lock(&self.counters).get(id)?.clone();
        let loaded = lock(&self.deployed)
            .get(id)
            .is_some_and(|a| a.app.load().is_some());
        Some(AppCounters { counters, loaded })
    }

    pub fn runtime(&self, id: &str) -> Option<AppRuntime> {
        let c = lock(&self.counters).get(id)?.clone();
        let loaded = lock(&self.deployed).get(id).and_then(|a| a.app.load_full());
        Some(AppRuntime {
            loaded: loaded.is_some(),
            code_bytes: loaded.map_or(0, |l| l.size),
            loads: c.loads.load(Relaxed),
            evictions: c.evictions.load(Relaxed),
            requests: c.requests.load(Relaxed),
            in_flight: c.in_flight.load(Relaxed),
            version: c.version.load(Relaxed),
        })
    }

    /// The apps' engine: pooling, unless the pool could not be reserved.
    pub fn engine(&self) -> &Arc<skiff_engine::Engine> {
        self.programs.engine()
    }

    /// Compile `digest` for the apps' engine once (its kind was learnt on the tasks' engine), so
    /// the compile cache holds its code for this engine too and an app's first request only
    /// deserializes it. Later deploys of the binary find its kind known and load nothing.
    pub async fn prepare(&self, digest: &str) -> Result<(), String> {
        self.programs.kind(digest).await.map(drop)
    }

    /// Programs of the apps' engine in memory now.
    pub fn loaded_programs(&self) -> usize {
        self.programs.count()
    }

    pub fn info(&self) -> HttpInfo {
        let live: Vec<Arc<Deployed>> = lock(&self.loaded)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        let (loaded_apps, loaded_bytes) = weight(&live);
        HttpInfo {
            listen: self.listen.clone(),
            routes: lock(&self.deployed).len() as u64,
            loaded_apps,
            loaded_bytes,
            budget_bytes: self.budget,
            loads: self.loads.load(Relaxed),
            evictions: self.evictions.load(Relaxed),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// `keep` was just loaded: evict least recently used other apps until the loaded ones fit
    /// the budget, or only `keep` is left.
    fn admit(&self, keep: &Arc<Deployed>) {
        let mut loaded = lock(&self.loaded);
        loaded.retain(|w| w.upgrade().is_some_and(|a| a.app.load().is_some()));
        loaded.push(Arc::downgrade(keep));
        let mut live: Vec<Arc<Deployed>> = loaded.iter().filter_map(Weak::upgrade).collect();
        let (_, mut total) = weight(&live);
        if total <= self.budget {
            return;
        }
        // Oldest first: the eviction order.
        live.sort_by_key(|a| a.last_used.load(Relaxed));
        let mut evicted = Vec::new();
        for victim in &live {
            if total <= self.budget {
                break;
            }
            if Arc::ptr_eq(victim, keep) {
                continue;
            }
            victim.app.store(None);
            victim.counters.evictions.fetch_add(1, Relaxed);
            self.evictions.fetch_add(1, Relaxed);
            evicted.push(Arc::as_ptr(victim));
            total = weight(&live).1;
        }
        if !evicted.is_empty() {
            loaded.retain(|w| !evicted.contains(&w.as_ptr()));
        }
    }
}

impl Deployed {
    /// Instances of this version running now (a response being streamed included).
    pub fn live_instances(&self) -> u64 {
        self.app
            .load()
            .as_ref()
            .map_or(0, |l| l.app.stats().live.load(Relaxed))
    }

    /// End this version: requests still running end now, its code is dropped, and it never
    /// loads again.
    pub fn stop(&self) {
        self.stopped.store(true, Relaxed);
        if let Some(l) = self.app.swap(None) {
            l.app.stop();
        }
    }

    /// The built app: loaded already (the hot path: one atomic load), or loaded now.
    async fn get(self: &Arc<Self>) -> Result<Arc<Loaded>, HandleError> {
        if let Some(l) = self.app.load_full() {
            return Ok(l);
        }
        self.load().await
    }

    async fn load(self: &Arc<Self>) -> Result<Arc<Loaded>, HandleError> {
        let _one = self.loading.lock().await;
        if let Some(l) = self.app.load_full() {
            return Ok(l);
        }
        if self.stopped.load(Relaxed) {
            return Err(HandleError::Stopped);
        }
        let apps = self
            .apps
            .upgrade()
            .ok_or_else(|| HandleError::Instantiate("the daemon is shutting down".into()))?;
        let program = apps
            .programs
            .get(&self.digest)
            .await
            .map_err(HandleError::Instantiate)?;
        let engine = apps.programs.engine().clone();
        let config = self.config.clone();
        let stats = self.counters.engine.clone();
        let built = tokio::task::spawn_blocking(move || {
            let size = program.code_size();
            HttpApp::new(&engine, &program, config)
                .map(|app| Loaded {
                    app: app.with_stats(stats),
                    program,
                    size,
                })
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| HandleError::Instantiate(e.to_string()))?
        .map_err(HandleError::Instantiate)?;
        let built = Arc::new(built);
        self.app.store(Some(built.clone()));
        apps.admit(self);
        self.counters.loads.fetch_add(1, Relaxed);
        apps.loads.fetch_add(1, Relaxed);
        tracing::debug!(
            "app {} loaded ({} bytes of code)",
            self.config.name,
            built.size
        );
        Ok(built)
    }
}

/// Counts a request as in flight until dropped.
struct Busy(Arc<Counters>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

impl Backend for Deployed {
    fn handle(
        self: Arc<Self>,
        req: http::Request<RequestBody>,
        id: RequestId,
        scheme: Scheme,
    ) -> Reply {
        self.counters.requests.fetch_add(1, Relaxed);
        self.counters.in_flight.fetch_add(1, Relaxed);
        let busy = Busy(self.counters.clone());
        if let Some(apps) = self.apps.upgrade() {
            self.last_used.store(apps.now_ms(), Relaxed);
        }
        Box::pin(async move {
            let _busy = busy;
            let result = match self.get().await {
                Ok(loaded) => loaded.app.handle(req, id, scheme).await,
                Err(e) => Err(e),
            };
            if let (Err(e @ HandleError::MemoryLimit { .. }), Some(apps)) =
                (&result, self.apps.upgrade())
            {
                let detail = crate::events::Detail {
                    reason: Some(e.to_string()),
                    request_id: Some(id.to_string()),
                    ..Default::default()
                };
                let (action, kind) = (skiff_api::EventAction::Oom, skiff_api::WorkloadKind::App);
                apps.events
                    .send(action, &self.id, &self.config.name, kind, detail);
            }
            result
        })
    }

    fn name(&self) -> &str {
        &self.config.name
    }

    fn requests(&self) -> &RequestMetrics {
        &self.counters.http
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether the table's `holder` is `app` (the same deployed version).
fn same_app(app: &Arc<Deployed>, holder: &Arc<dyn Backend>) -> bool {
    std::ptr::eq(
        Arc::as_ptr(app) as *const (),
        Arc::as_ptr(holder) as *const (),
    )
}
