//! The process-wide engine: wasmtime configured once, plus the compile cache.

use crate::cache::{CacheOutcome, CompileCache};
use crate::error::LoadError;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use wasmtime::component::Component;
use wasmtime::{Config, Module};

/// How instance memory is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocatorChoice {
    /// mmap per instance. Cheapest for a single run (`skiff run`).
    OnDemand,
    /// Pre-reserved slots with copy-on-write memory images, for many short instances
    /// (`skiff serve`). Falls back to on-demand, with a debug-log notice, where the address
    /// space cannot hold the pool (a low `ulimit -v`, say).
    Pooling {
        max_instances: u32,
        /// The largest linear memory any instance may grow to (the highest per-app memory
        /// limit); each slot reserves this much address space.
        max_memory: u64,
    },
}

/// Everything the engine is configured from. No field is read from the environment here.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The compile cache directory, or `None` to compile every time.
    pub cache_dir: Option<PathBuf>,
    pub allocator: AllocatorChoice,
    /// Largest native stack wasm code may use, in bytes.
    pub max_wasm_stack: usize,
}

impl EngineConfig {
    /// wasmtime's own default: deep enough for ordinary recursion, small enough to catch runaway.
    pub const DEFAULT_STACK: usize = 512 << 10;
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            cache_dir: None,
            allocator: AllocatorChoice::OnDemand,
            max_wasm_stack: Self::DEFAULT_STACK,
        }
    }
}

/// One per process.
pub struct Engine {
    pub(crate) inner: wasmtime::Engine,
    cache: Option<CompileCache>,
    pub(crate) max_wasm_stack: usize,
    pooling: bool,
    /// One permit per pool slot (`None` without a pool): an HTTP request takes one before it
    /// instantiates and gives it back after its store is dropped, so a full pool makes requests
    /// wait for a slot (within their app's queue timeout) instead of failing to instantiate.
    /// The daemon serves any number of apps from one pool of fixed size, so the sum of their
    /// `max_concurrent` can exceed it; `skiff serve` sizes its pool to that sum.
    pub(crate) slots: Option<std::sync::Arc<tokio::sync::Semaphore>>,
    /// The epoch ticker, started by the first command or HTTP app (see `epoch.rs`).
    pub(crate) ticker: std::sync::Once,
    /// Compiled with epoch checks: false only from [`Engine::without_interruption`].
    pub(crate) interruptible: bool,
}

/// Compiled code, ready to instantiate.
pub(crate) enum Compiled {
    Module(Module),
    Component(Component),
}

/// A loaded binary: what it is, and its compiled code.
pub struct Program {
    pub info: skiff_wasm::WasmInfo,
    pub cache: CacheOutcome,
    pub(crate) compiled: Compiled,
    /// An HTTP handler's imports resolved against the host, once per program: every app that
    /// serves this program (the daemon may run thousands of one binary) shares it.
    pub(crate) http_pre: std::sync::OnceLock<crate::http::app::SharedPre>,
    /// A command's imports resolved against WASI, once per program: a daemon runs one binary
    /// as many tasks, and linking WASI anew for each would cost more than instantiating.
    pub(crate) command_pre: std::sync::OnceLock<crate::command::LinkedCommand>,
}

impl Program {
    /// Bytes of compiled code and data this program keeps in memory: what a cache of loaded
    /// programs weighs it by.
    pub fn code_size(&self) -> u64 {
        let r = match &self.compiled {
            Compiled::Module(m) => m.image_range(),
            Compiled::Component(c) => c.image_range(),
        };
        (r.end as usize).saturating_sub(r.start as usize) as u64
    }
}

impl Engine {
    pub fn new(config: &EngineConfig) -> Result<Engine, LoadError> {
        Engine::build(config, true)
    }

    /// An engine whose code has no epoch checks, for a process that runs one guest with no
    /// deadline (`skiff run` without `--timeout`): nothing there needs to stop or pause wasm
    /// code from outside (Ctrl-C ends the process), and the checks cost a CPU-bound guest: a
    /// tight 4-billion-iteration loop took 2.05-2.13 s of CPU with them and 1.26-1.33 s
    /// without (3 runs each, `skiff run --timeout 60s` vs `skiff run`). Its code is cached
    /// apart from interruptible code (the setting is part of wasmtime's compatibility hash, so
    /// of the cache key), and `run_command` refuses a `limits.timeout` it could not enforce.
    pub fn without_interruption(config: &EngineConfig) -> Result<Engine, LoadError> {
        Engine::build(config, false)
    }

    fn build(config: &EngineConfig, interruptible: bool) -> Result<Engine, LoadError> {
        let build = |pool| build(config, pool, interruptible);
        let (inner, slots) = match config.allocator {
            AllocatorChoice::OnDemand => (build(None)?, None),
            AllocatorChoice::Pooling {
                max_instances,
                max_memory,
            } => match build(Some((max_instances, max_memory))) {
                Ok(e) => (
                    e,
                    Some(std::sync::Arc::new(tokio::sync::Semaphore::new(
                        max_instances as usize,
                    ))),
                ),
                Err(e) => {
                    tracing::debug!(
                        "pooling allocator unavailable ({e}); using on-demand allocation"
                    );
                    (build(None)?, None)
                }
            },
        };
        let pooling = slots.is_some();
        let cache = config.cache_dir.as_ref().map(|dir| {
            // The compatibility hash covers the wasmtime version, every setting that changes
            // code, and the host CPU features Cranelift targets.
            let mut h = ShaHasher(Sha256::new());
            inner.precompile_compatibility_hash().hash(&mut h);
            crate::WASMTIME_VERSION.hash(&mut h);
            let settings = hex::encode(&h.0.finalize()[..8]);
            CompileCache::new(dir.clone(), settings)
        });
        Ok(Engine {
            inner,
            cache,
            max_wasm_stack: config.max_wasm_stack,
            pooling,
            slots,
            ticker: std::sync::Once::new(),
            interruptible,
        })
    }

    /// True when the pooling allocator is in use.
    pub fn is_pooling(&self) -> bool {
        self.pooling
    }

    /// A short hex string naming the engine settings, for `skiff system info` and cache names.
    pub fn settings_id(&self) -> Option<&str> {
        self.cache.as_ref().map(|c| c.settings())
    }

    /// Detect the kind of `bytes` and get its compiled code, from the cache where possible.
    pub fn load(&self, bytes: &[u8]) -> Result<Program, LoadError> {
        self.load_inspected(bytes, skiff_wasm::inspect(bytes)?)
    }

    /// [`Engine::load`] for one use: a binary that cannot serve it is refused from its kind,
    /// before any compile, and nothing is cached for it.
    pub fn load_for(&self, bytes: &[u8], purpose: crate::Purpose) -> Result<Program, LoadError> {
        let info = skiff_wasm::inspect(bytes)?;
        purpose.admits(info.kind).map_err(LoadError::Refused)?;
        self.load_inspected(bytes, info)
    }

    fn load_inspected(
        &self,
        bytes: &[u8],
        info: skiff_wasm::WasmInfo,
    ) -> Result<Program, LoadError> {
        let is_component = info.kind.is_component();
        let Some(cache) = &self.cache else {
            let compiled = self.compile(bytes, is_component)?;
            return Ok(Program {
                info,
                cache: CacheOutcome::Compiled,
                compiled,
                http_pre: Default::default(),
                command_pre: Default::default(),
            });
        };
        let hex = info.digest.hex();
        let path = cache.path_for(hex);
        let mut replaced = None;
        match cache.read(&path) {
            Ok(Some(artifact)) => match self.deserialize(&artifact, is_component) {
                Ok(compiled) => {
                    tracing::debug!("compile cache hit: {}", path.display());
                    return Ok(Program {
                        info,
                        cache: CacheOutcome::Hit(path),
                        compiled,
                        http_pre: Default::default(),
                        command_pre: Default::default(),
                    });
                }
                Err(reason) => replaced = Some(reason),
            },
            Ok(None) => tracing::debug!("compile cache miss: {}", path.display()),
            Err(reason) => replaced = Some(reason),
        }
        if let Some(reason) = &replaced {
            tracing::warn!(
                "compile cache entry {} is unusable ({reason}); removing it and recompiling",
                path.display()
            );
            cache.remove(&path);
        }
        let compiled = self.compile(bytes, is_component)?;
        let artifact = match &compiled {
            Compiled::Module(m) => m.serialize(),
            Compiled::Component(c) => c.serialize(),
        };
        let outcome = match artifact
            .map_err(|e| e.to_string())
            .and_then(|a| cache.write(&path, &a).map_err(|e| e.to_string()))
        {
            Ok(()) => match replaced {
                Some(reason) => CacheOutcome::Replaced {
                    path: path.clone(),
                    reason,
                },
                None => CacheOutcome::Stored(path.clone()),
            },
            Err(e) => {
                tracing::warn!(
                    "could not store compiled code in {}: {e}; the next run compiles again",
                    path.display()
                );
                CacheOutcome::Compiled
            }
        };
        tracing::debug!("compiled {} ({:?})", info.digest, outcome);
        Ok(Program {
            info,
            cache: outcome,
            compiled,
            http_pre: Default::default(),
            command_pre: Default::default(),
        })
    }

    fn compile(&self, bytes: &[u8], is_component: bool) -> Result<Compiled, LoadError> {
        let result = if is_component {
            Component::new(&self.inner, bytes).map(Compiled::Component)
        } else {
            Module::new(&self.inner, bytes).map(Compiled::Module)
        };
        result.map_err(|e| match skiff_wasm::left_off_proposal(bytes) {
            Some(p) => LoadError::Proposal(p),
            None => LoadError::Invalid(format!("{e:#}")),
        })
    }

    fn deserialize(&self, artifact: &[u8], is_component: bool) -> Result<Compiled, String> {
        // SAFETY: `artifact` passed the cache's sha256 check, so these are the exact bytes this
        // process family serialized into the user's own SKIFF_HOME; wasmtime additionally
        // checks that they were produced by a compatible engine.
        let result = unsafe {
            if is_component {
                Component::deserialize(&self.inner, artifact).map(Compiled::Component)
            } else {
                Module::deserialize(&self.inner, artifact).map(Compiled::Module)
            }
        };
        result.map_err(|e| format!("{e}"))
    }
}

fn build(
    config: &EngineConfig,
    pool: Option<(u32, u64)>,
    interruptible: bool,
) -> Result<wasmtime::Engine, LoadError> {
    // One configuration for every use (`skiff run`, `serve`, the daemon, the shim): wasmtime 48
    // needs no async switch (`Config::async_support` is deprecated and does nothing; any engine
    // runs `call_async`), and epochs are on, every store yielding at each tick, except for
    // `Engine::without_interruption`.
    let mut c = Config::new();
    c.epoch_interruption(interruptible)
        .max_wasm_stack(config.max_wasm_stack)
        .wasm_component_model(true)
        .memory_init_cow(true);
    if let Some((max, max_memory)) = pool {
        // A component instance holds several core instances (the program, its adapter, shims)
        // and usually two memories and tables (the program's and the adapter's): size the pool
        // for that, so `max` components fit.
        let mut p = wasmtime::PoolingAllocationConfig::new();
        p.total_component_instances(max)
            .total_core_instances(max.saturating_mul(8))
            .total_memories(max.saturating_mul(2))
            .total_tables(max.saturating_mul(2))
            // Interpreters compiled to wasm (StarlingMonkey) have tables of tens of thousands of
            // functions; wasmtime's default of 20 000 elements is too small for them.
            .table_elements(100_000)
            .max_memory_size(usize::try_from(max_memory.max(1 << 16)).unwrap_or(usize::MAX))
            .max_unused_warm_slots(max.min(100))
            // Resetting a slot for reuse: by default wasmtime `madvise`s memories, tables and
            // stacks away, and the next request faults every page back in. Profiled under wrk
            // (docs/benchmarks.md), that was a third of serve's CPU per request. With
            // PAGEMAP_SCAN (Linux 6.7+; ignored elsewhere) only the pages a request dirtied are
            // reset, by memset, and stay resident: CPU per request went from ~100 us to ~41 us.
            // The cost is resident memory in warm slots: at most these sizes times
            // `max_unused_warm_slots`.
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(64 << 10)
            .async_stack_keep_resident(64 << 10);
        c.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(p));
    }
    wasmtime::Engine::new(&c).map_err(|e| LoadError::Engine(format!("{e:#}")))
}

/// Feeds `Hash` output into sha256, so the key is stable across processes and Rust versions
/// (std's `DefaultHasher` promises neither).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0 // never used: the digest is read from the inner Sha256
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}
