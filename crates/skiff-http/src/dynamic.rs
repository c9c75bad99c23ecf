//! A routing table that changes while the server runs (the daemon's apps).
//!
//! The table is one immutable value behind an atomic pointer: a request loads the pointer (no
//! lock) and keeps the app it picked for as long as it runs. A change builds a complete new
//! table and swaps it in, so a request sees either the old table or the new one, never half of
//! each; a redeployed app's old version keeps serving the requests that picked it and is
//! dropped when the last one ends. That is what makes a redeploy lose nothing.

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

/// Something that answers requests routed to it: the daemon's lazily loaded app.
pub trait Backend: Send + Sync + 'static {
    /// Owned: the request keeps this version alive until it ends, whatever the table does.
    fn handle(
        self: Arc<Self>,
        req: http::Request<RequestBody>,
        id: RequestId,
        scheme: Scheme,
    ) -> Reply;
}

/// What a route leads to in the daemon: the app itself.
pub type Table = Router<Arc<dyn Backend>>;

/// The table; shared by the server and whoever changes it.
#[derive(Default)]
pub struct DynamicRoutes {
    table: ArcSwap<Table>,
    /// One change at a time: each starts from the table the previous one stored.
    writer: std::sync::Mutex<()>,
}

impl DynamicRoutes {
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

    /// What `route` leads to now, exactly (not what a request would pick).
    pub fn get(&self, route: &Route) -> Option<Arc<dyn Backend>> {
        self.table.load().get(route).cloned()
    }

    pub(crate) fn pick(&self, host: Option<&str>, path: &str) -> Option<Arc<dyn Backend>> {
        self.table.load().pick(host, path).cloned()
    }
}
