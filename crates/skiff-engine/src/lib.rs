//! skiff's execution engine: the only crate that names wasmtime types.
//!
//! One [`Engine`] per process, configured once from an [`EngineConfig`]. [`Engine::load`] turns
//! bytes into a [`Program`] (kind detected from the binary, code from the on-disk compile cache
//! when it can be). [`Engine::run_command`] runs a command program inside a [`Sandbox`] (what
//! the guest is granted; nothing by default) under [`Limits`] (on by default), as a future: the
//! daemon runs many at once, a process that runs one drives it with [`block_on`]. Both come from
//! a [`GuestSpec`] (`Sandbox::from_spec`, `Limits::from`), which is where every entry point
//! describes a guest; the engine's defaults for what a spec leaves out are applied here only.
//!
//! wasmtime's API changes monthly; keeping it behind this crate's small surface means an upgrade
//! touches one crate.

mod cache;
mod command;
mod engine;
mod epoch;
mod error;
mod handles;
pub mod http;
mod invoke;
mod limits;
mod output;
mod purpose;
mod sandbox;
mod spec;
mod usage;
mod wave;

pub use cache::CacheOutcome;
pub use command::{block_on, Exit};
pub use engine::{AllocatorChoice, Engine, EngineConfig, Program};
pub use epoch::EPOCH_TICK;
pub use error::{exit, LimitKind, LoadError, RunError};
pub use handles::{effective_max_open, invalid_max_open, MIN_MAX_OPEN};
pub use limits::Limits;
pub use output::{Output, OutputSink};
pub use purpose::Purpose;
pub use sandbox::Sandbox;
pub use skiff_spec::{GuestSpec, Mount};
pub use skiff_wasm::{Kind, WasmInfo};
pub use usage::Usage;

/// The wasmtime version this build embeds, for `skiff version` and cache keys.
pub const WASMTIME_VERSION: &str = "48.0.8";

/// The WASI versions this build runs: preview 1 modules, and components importing any 0.2 release
/// up to the one wasmtime-wasi 48 implements (a component linker accepts older 0.2.x imports).
pub const WASI_VERSIONS: &[&str] = &["preview1", "0.2.0 to 0.2.12"];
