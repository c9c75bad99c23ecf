//! The routing table every embedding of the server fills: `skiff serve` and the shim once at
//! start-up, the daemon at every deploy, redeploy and stop.
//!
//! The table is one immutable value behind an atomic pointer: a request loads the pointer (no
//! lock) and keeps the app it picked for as long as it runs. A change builds a complete new
//! table and swaps it in, so a request sees either the old table or the new one, never half of
//! each; a redeployed app's old version keeps serving the requests that picked it and is
//! dropped when the last one ends. That is what makes a redeploy lose nothing.

use crate::metrics::RequestMetrics;
use crate::RequestBody;
use crate::Route;
use crate::Router;
use arc_swap::ArcSwap;
use skiff_engine::http::{HandleError, RequestId, ResponseBody, Scheme};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub type Reply =
    Pin<Box<dyn Future<Output = Result<http::Response<ResponseBody>, HandleError>> + Send>>;

/// Something that answers requests routed to it: an app of `skiff serve` or of the shim
/// ([`crate::ServedApp`]), or the daemon's lazily loaded app.
pub trait Backend: Send + Sync + 'static {
    /// Owned: the request keeps this version alive until it ends, whatever the table does.
    fn handle(
        self: Arc<Self>,
        req: http::Request<RequestBody>,
        id: RequestId,
        scheme: Scheme,
    ) -> Reply;

    /// The app's name, in log lines about its requests.
    fn name(&self) -> &str;

    /// Where the server counts this app's answered requests, once each, with the status the
    /// client got (an error page's included). The daemon keeps one per app name, so counts
    /// survive redeploys.
    fn requests(&self) -> &RequestMetrics;
}

/// What a route leads to: the app itself.
pub type Table = Router<Arc<dyn Backend>>;

/// The table; shared by the server and whoever changes it.
#[derive(Default)]
pub struct Routes {
    table: ArcSwap<Table>,
    /// One change at a time: each starts from the table the previous one stored.
    writer: std::sync::Mutex<()>,
}

impl Routes {
    /// Change the table with `edit`, applied to a copy that is swapped in whole when `edit`
    /// succeeds (on an error nothing changes). The copy shares every shard `edit` does not
    /// touch, so a deploy costs the same with ten apps or ten thousand.
    pub fn update<R>(
        &self,
        edit: impl FnOnce(&mut Table) -> Result<R, String>,
    ) -> Result<R, String> {
        let _one = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut t = Table::clone(&self.table.load());
        let out = edit(&mut t)?;
        self.table.store(Arc::new(t));
        Ok(out)
    }

    /// Add `route` leading to `app`; the same route twice is an error.
    pub fn add(&self, route: Route, app: Arc<dyn Backend>) -> Result<(), String> {
        self.update(|t| t.add(route, app))
    }

    /// What `route` leads to now, exactly (not what a request would pick).
    pub fn get(&self, route: &Route) -> Option<Arc<dyn Backend>> {
        self.table.load().get(route).cloned()
    }

    /// How many routes there are.
    pub fn len(&self) -> usize {
        self.table.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The app a request for this Host and path goes to.
    pub fn pick(&self, host: Option<&str>, path: &str) -> Option<Arc<dyn Backend>> {
        self.table.load().pick(host, path).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version of an app; requests are not run here (a `RequestBody` needs a connection:
    /// the serve and daemon tests run real ones), only picked, as the server picks them.
    struct Version {
        v: &'static str,
        requests: RequestMetrics,
    }

    impl Backend for Version {
        fn handle(
            self: Arc<Self>,
            _: http::Request<RequestBody>,
            _: RequestId,
            _: Scheme,
        ) -> Reply {
            Box::pin(async { Err(HandleError::NoResponse) })
        }
        fn name(&self) -> &str {
            self.v
        }
        fn requests(&self) -> &RequestMetrics {
            &self.requests
        }
    }

    fn version(v: &'static str) -> Arc<Version> {
        Arc::new(Version {
            v,
            requests: RequestMetrics::default(),
        })
    }

    /// The version a picked backend is (the table holds them as `dyn Backend`).
    fn is(b: &Arc<dyn Backend>, v: &Arc<Version>) -> bool {
        std::ptr::eq(Arc::as_ptr(b) as *const (), Arc::as_ptr(v) as *const ())
    }

    /// A redeploy swaps the route to the new version in one store: a request that picked the
    /// old one keeps it alive until it ends, later requests get the new one, and the old
    /// version is dropped with its last request.
    #[test]
    fn a_redeploy_keeps_the_old_version_for_requests_that_picked_it() {
        let routes = Routes::default();
        let route = Route::parse("/shop").unwrap();
        let v1 = version("v1");
        routes.add(route.clone(), v1.clone()).unwrap();
        let in_flight = routes.pick(None, "/shop/cart").unwrap();
        assert!(is(&in_flight, &v1));
        let old = Arc::downgrade(&v1);
        drop(v1);

        let v2 = version("v2");
        routes
            .update(|t| {
                t.remove(&route);
                t.add(route.clone(), v2.clone())
            })
            .unwrap();
        assert_eq!(routes.len(), 1);
        assert!(is(&routes.pick(None, "/shop").unwrap(), &v2));
        assert_eq!(v2.v, "v2");
        // Still alive: a request holds it.
        assert!(old.upgrade().is_some_and(|o| o.v == "v1"));
        drop(in_flight);
        assert!(
            old.upgrade().is_none(),
            "the old version outlived its last request"
        );
        // A clash leaves the table as it was.
        let err = routes.add(route.clone(), version("v3")).unwrap_err();
        assert!(err.contains("two apps"), "{err}");
        assert!(is(&routes.pick(None, "/shop").unwrap(), &v2));
        // A failed edit changes nothing either.
        let r: Result<(), String> = routes.update(|t| {
            t.remove(&route);
            Err("no".into())
        });
        assert!(r.is_err());
        assert!(is(&routes.get(&route).unwrap(), &v2));
    }
}
