//! Compiled programs in memory, one per blob digest, shared by every workload that runs it.
//!
//! Ten thousand apps of one binary hold one compiled `Component` (and one resolved
//! `InstancePre`, kept inside the `Program`), not ten thousand. Commands stay loaded once used
//! (a task's next run, or another task of the same binary, starts without a load). HTTP handlers
//! stay loaded only while an app that serves them is loaded: the map holds them weakly, so scale
//! to zero really drops the code when the last app of a binary is evicted.

use crate::blobs::Blobs;
use skiff_engine::{Engine, Kind, Program};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

pub struct Programs {
    engine: Arc<Engine>,
    blobs: Blobs,
    /// Every program some workload holds now.
    live: Mutex<HashMap<String, Weak<Program>>>,
    /// Commands, kept loaded.
    kept: Mutex<HashMap<String, Arc<Program>>>,
    /// The kind of every binary loaded once (so its compiled code is in the compile cache):
    /// deploying the 10,000th app of a binary must not load its code just to learn its kind.
    kinds: Mutex<HashMap<String, Kind>>,
}

impl Programs {
    pub fn new(engine: Arc<Engine>, blobs: Blobs) -> Programs {
        Programs {
            engine,
            blobs,
            live: Mutex::new(HashMap::new()),
            kept: Mutex::new(HashMap::new()),
            kinds: Mutex::new(HashMap::new()),
        }
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The program in memory, if some workload holds it now (no load).
    pub fn loaded(&self, digest: &str) -> Option<Arc<Program>> {
        lock(&self.live).get(digest).and_then(Weak::upgrade)
    }

    /// Compiled code for a blob: the shared copy if one is in memory, else loaded now (from the
    /// compile cache where it can be; on a blocking thread, since it reads files and may compile).
    pub async fn get(&self, digest: &str) -> Result<Arc<Program>, String> {
        if let Some(p) = self.loaded(digest) {
            return Ok(p);
        }
        let bytes = digest
            .parse()
            .map_err(skiff_store::StoreError::from)
            .map_err(crate::blobs::BlobError::from)
            .and_then(|d| self.blobs.get(&d))
            .map_err(|e| format!("image {digest}: {e}"))?;
        let engine = self.engine.clone();
        let program = tokio::task::spawn_blocking(move || engine.load(&bytes))
            .await
            .map_err(|e| format!("compiling {digest}: {e}"))?
            .map_err(|e| format!("image {digest}: {e}"))?;
        let program = Arc::new(program);
        let mut live = lock(&self.live);
        // Two loads raced: keep the first, so there is still one copy.
        if let Some(first) = live.get(digest).and_then(Weak::upgrade) {
            return Ok(first);
        }
        live.retain(|_, w| w.strong_count() > 0);
        live.insert(digest.to_string(), Arc::downgrade(&program));
        drop(live);
        lock(&self.kinds).insert(digest.to_string(), program.info.kind);
        if program.info.kind.is_command() {
            lock(&self.kept).insert(digest.to_string(), program.clone());
        }
        Ok(program)
    }

    /// What kind of binary `digest` is: known without loading it once it has been loaded.
    pub async fn kind(&self, digest: &str) -> Result<Kind, String> {
        if let Some(k) = lock(&self.kinds).get(digest) {
            return Ok(*k);
        }
        Ok(self.get(digest).await?.info.kind)
    }

    /// Programs in memory now.
    pub fn count(&self) -> usize {
        lock(&self.live)
            .values()
            .filter(|w| w.strong_count() > 0)
            .count()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
