//! HTTP apps: the daemon's side of the shared data plane (`skiff-http`'s server with a
//! [`DynamicRoutes`] table).
//!
//! **Scale to zero.** A deployed app is a route and a recipe ([`Deployed`]): no compiled code,
//! no instance. Its first request loads the code (from the compile cache that deploy filled:
//! a deserialize, no compile) and builds its `HttpApp`; later requests reuse it through an
//! atomic pointer, without a lock. Loaded apps are weighed by their compiled code; beyond the
//! memory budget the least recently used ones are dropped again (their next request loads
//! them anew). Requests in flight keep what they hold.
//!
//! **Redeploy.** A new version is a new [`Deployed`]; the routing table is rebuilt with it and
//! swapped in one store. Requests that picked the old version finish on it.

use crate::blobs::Blobs;
use arc_swap::ArcSwapOption;
use hyper::body::Incoming;
use skiff_api::{AppRuntime, HttpInfo};
use skiff_engine::http::{HandleError, HttpApp, HttpAppConfig, RequestId, Scheme};
use skiff_engine::Engine;
use skiff_http::{Backend, DynamicRoutes, Reply, Route};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

/// The data plane's apps.
pub struct Apps {
    routes: Arc<DynamicRoutes>,
    engine: Arc<Engine>,
    blobs: Blobs,
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
}

#[derive(Default)]
struct Counters {
    loads: AtomicU64,
    evictions: AtomicU64,
    requests: AtomicU64,
    in_flight: AtomicU64,
    version: AtomicU64,
}

/// One version of one app.
pub struct Deployed {
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
}

struct Loaded {
    app: HttpApp,
    size: u64,
}

impl Apps {
    pub fn new(
        routes: Arc<DynamicRoutes>,
        engine: Arc<Engine>,
        blobs: Blobs,
        listen: String,
        budget: u64,
    ) -> Arc<Apps> {
        Arc::new(Apps {
            routes,
            engine,
            blobs,
            listen,
            budget,
            deployed: Mutex::new(BTreeMap::new()),
            loaded: Mutex::new(Vec::new()),
            counters: Mutex::new(BTreeMap::new()),
            loads: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    /// Would `route` clash with another app's (other than `id`'s)?
    pub fn check_route(&self, id: Option<&str>, route: &Route) -> Result<(), String> {
        let d = lock(&self.deployed);
        let mut routes: Vec<Route> = d
            .iter()
            .filter(|(i, _)| Some(i.as_str()) != id)
            .map(|(_, a)| a.route.clone())
            .collect();
        routes.push(route.clone());
        DynamicRoutes::check(&routes)
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
            digest: digest.to_string(),
            config,
            route,
            apps: Arc::downgrade(self),
            counters: counters.clone(),
            app: ArcSwapOption::empty(),
            last_used: AtomicU64::new(self.now_ms()),
            loading: tokio::sync::Mutex::new(()),
        });
        if preload {
            new.load().await.map_err(|e| e.to_string())?;
        }
        let mut d = lock(&self.deployed);
        let old = d.insert(id.to_string(), new);
        if let Err(e) = self.publish(&d) {
            match old {
                Some(o) => d.insert(id.to_string(), o),
                None => d.remove(id),
            };
            return Err(e);
        }
        counters.version.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Whether the current version of `id` has its code loaded (a redeploy preloads then).
    pub fn is_loaded(&self, id: &str) -> bool {
        lock(&self.deployed)
            .get(id)
            .is_some_and(|a| a.app.load().is_some())
    }

    /// Take `id`'s route away (404 from now on) and drop its code; in-flight requests finish
    /// on what they hold (see [`Apps::in_flight`] to wait for them).
    pub fn undeploy(&self, id: &str) -> bool {
        let mut d = lock(&self.deployed);
        let Some(gone) = d.remove(id) else {
            return false;
        };
        if let Err(e) = self.publish(&d) {
            tracing::error!("cannot rebuild the routing table: {e}");
        }
        gone.app.store(None);
        true
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

    fn publish(&self, d: &BTreeMap<String, Arc<Deployed>>) -> Result<(), String> {
        let routes = d
            .values()
            .map(|a| (a.route.clone(), a.clone() as Arc<dyn Backend>))
            .collect();
        self.routes.set(routes)
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

    pub fn info(&self) -> HttpInfo {
        let live: Vec<Arc<Deployed>> = lock(&self.loaded)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        let sizes: Vec<u64> = live
            .iter()
            .filter_map(|a| a.app.load().as_ref().map(|l| l.size))
            .collect();
        HttpInfo {
            listen: self.listen.clone(),
            routes: lock(&self.deployed).len() as u64,
            loaded_apps: sizes.len() as u64,
            loaded_bytes: sizes.iter().sum(),
            budget_bytes: self.budget,
            loads: self.loads.load(Relaxed),
            evictions: self.evictions.load(Relaxed),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Make room for `incoming` bytes: evict least recently used apps (never `keep`) until the
    /// loaded code fits the budget, or only `keep` is left.
    fn admit(&self, keep: &Arc<Deployed>, incoming: u64) {
        let mut loaded = lock(&self.loaded);
        loaded.retain(|w| w.upgrade().is_some_and(|a| a.app.load().is_some()));
        loop {
            let live: Vec<Arc<Deployed>> = loaded.iter().filter_map(Weak::upgrade).collect();
            let total: u64 = live
                .iter()
                .filter_map(|a| a.app.load().as_ref().map(|l| l.size))
                .sum();
            if total + incoming <= self.budget {
                break;
            }
            let Some(victim) = live
                .iter()
                .filter(|a| !Arc::ptr_eq(a, keep))
                .min_by_key(|a| a.last_used.load(Relaxed))
            else {
                break;
            };
            victim.app.store(None);
            victim.counters.evictions.fetch_add(1, Relaxed);
            self.evictions.fetch_add(1, Relaxed);
            loaded.retain(|w| !w.ptr_eq(&Arc::downgrade(victim)));
        }
        loaded.push(Arc::downgrade(keep));
    }
}

impl Deployed {
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
        let apps = self
            .apps
            .upgrade()
            .ok_or_else(|| HandleError::Instantiate("the daemon is shutting down".into()))?;
        let bytes = apps
            .blobs
            .get(&self.digest)
            .map_err(|e| HandleError::Instantiate(format!("image {}: {e}", self.digest)))?;
        let engine = apps.engine.clone();
        let config = self.config.clone();
        let built = tokio::task::spawn_blocking(move || {
            let program = engine.load(&bytes).map_err(|e| e.to_string())?;
            let size = program.code_size().max(bytes.len() as u64);
            HttpApp::new(&engine, &program, config)
                .map(|app| Loaded { app, size })
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| HandleError::Instantiate(e.to_string()))?
        .map_err(HandleError::Instantiate)?;
        apps.admit(self, built.size);
        let built = Arc::new(built);
        self.app.store(Some(built.clone()));
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
        req: http::Request<Incoming>,
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
            let loaded = self.get().await?;
            loaded.app.handle(req, id, scheme).await
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
