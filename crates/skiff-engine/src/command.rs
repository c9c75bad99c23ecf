//! Running a command program (a WASI p1 `_start` module or a p2 `wasi:cli/run` component) to
//! completion, once.

use crate::engine::{Compiled, Engine, Program};
use crate::error::RunError;
use crate::limits::{Limits, MemoryLimitHit, MemoryLimiter};
use crate::sandbox::Sandbox;
use skiff_wasm::Kind;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use wasmtime::component::{Linker as ComponentLinker, ResourceTable};
use wasmtime::{Linker, Store, Trap};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

/// How a command ended on its own terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The guest returned or called exit with this status.
    Code(i32),
}

pub(crate) struct P1State {
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) limiter: MemoryLimiter,
}

pub(crate) struct P2State {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
}

impl WasiView for P2State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A p1 context whose handles are capped at `limits.max_open` (see `crate::handles`).
pub(crate) fn p1_ctx(builder: &mut wasmtime_wasi::WasiCtxBuilder, limits: &Limits) -> WasiP1Ctx {
    let mut wasi = builder.build_p1();
    crate::handles::cap(wasi.ctx().table, limits.max_open);
    wasi
}

/// A p2 resource table capped at `limits.max_open` (see `crate::handles`).
pub(crate) fn capped_table(limits: &Limits) -> ResourceTable {
    let mut table = ResourceTable::new();
    crate::handles::cap(&mut table, limits.max_open);
    table
}

/// Only commands run to completion; anything else is refused with what to do instead.
pub(crate) fn ensure_command(program: &Program) -> Result<(), RunError> {
    if program.info.kind.is_command() {
        return Ok(());
    }
    Err(RunError::WrongKind {
        kind: program.info.kind,
        advice: program.info.kind.advice(),
    })
}

impl Engine {
    /// Run `program` to completion on this thread.
    ///
    /// A wall-clock timeout interrupts wasm code through an epoch tick. A guest blocked inside a
    /// host call (reading stdin, sleeping) is not interrupted by it; a caller that must end at
    /// the deadline regardless (the CLI) keeps its own watchdog as well.
    pub fn run_command(
        &self,
        program: &Program,
        sandbox: &Sandbox,
        limits: &Limits,
    ) -> Result<Exit, RunError> {
        ensure_command(program)?;
        let timed_out = Arc::new(AtomicBool::new(false));
        if let Some(timeout) = limits.timeout {
            let engine = self.inner.clone();
            let flag = timed_out.clone();
            std::thread::spawn(move || {
                std::thread::sleep(timeout);
                flag.store(true, Ordering::SeqCst);
                engine.increment_epoch();
            });
        }
        let builder = sandbox.builder()?;
        let (result, limit_hit) = match (&program.compiled, program.info.kind) {
            (Compiled::Module(module), Kind::P1Command) => self.run_p1(module, builder, limits),
            (Compiled::Component(component), Kind::P2Command) => {
                self.run_p2(component, builder, limits)
            }
            _ => unreachable!("is_command() kinds are compiled as their encoding says"),
        };
        match result {
            Ok(code) => Ok(Exit::Code(code)),
            Err(e) => Err(self.classify(e, limit_hit, limits, &timed_out)),
        }
    }

    fn run_p1(
        &self,
        module: &wasmtime::Module,
        mut builder: wasmtime_wasi::WasiCtxBuilder,
        limits: &Limits,
    ) -> (Result<i32, wasmtime::Error>, Option<u64>) {
        let mut linker: Linker<P1State> = Linker::new(&self.inner);
        let state = P1State {
            wasi: p1_ctx(&mut builder, limits),
            limiter: MemoryLimiter::new(limits.memory),
        };
        let mut store = self.store(state, |s| &mut s.limiter);
        let result = (|| {
            wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut P1State| &mut s.wasi)?;
            let instance = linker
                .instantiate(&mut store, module)
                .map_err(Instantiation)?;
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
            start.call(&mut store, ())?;
            Ok(0)
        })();
        (exit_status(result), store.data().limiter.hit)
    }

    fn run_p2(
        &self,
        component: &wasmtime::component::Component,
        mut builder: wasmtime_wasi::WasiCtxBuilder,
        limits: &Limits,
    ) -> (Result<i32, wasmtime::Error>, Option<u64>) {
        let mut linker: ComponentLinker<P2State> = ComponentLinker::new(&self.inner);
        let state = P2State {
            wasi: builder.build(),
            table: capped_table(limits),
            limiter: MemoryLimiter::new(limits.memory),
        };
        let mut store = self.store(state, |s| &mut s.limiter);
        let result = (|| {
            wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
            let command = wasmtime_wasi::p2::bindings::sync::Command::instantiate(
                &mut store, component, &linker,
            )
            .map_err(Instantiation)?;
            match command.wasi_cli_run().call_run(&mut store)? {
                Ok(()) => Ok(0),
                Err(()) => Ok(1),
            }
        })();
        (exit_status(result), store.data().limiter.hit)
    }

    fn store<T: 'static>(&self, state: T, limiter: fn(&mut T) -> &mut MemoryLimiter) -> Store<T> {
        let mut store = Store::new(&self.inner, state);
        store.limiter(move |s| limiter(s) as &mut dyn wasmtime::ResourceLimiter);
        // Deadline one tick away: the timeout thread (if any) makes that one tick.
        store.set_epoch_deadline(1);
        store.epoch_deadline_trap();
        store
    }

    pub(crate) fn classify(
        &self,
        e: wasmtime::Error,
        limit_hit: Option<u64>,
        limits: &Limits,
        timed_out: &AtomicBool,
    ) -> RunError {
        classify(e, limit_hit, limits, timed_out, self.max_wasm_stack)
    }
}

/// Why a run failed, from wasmtime's error and what the limiter and the deadline recorded.
/// Shared by commands and HTTP requests.
pub(crate) fn classify(
    e: wasmtime::Error,
    limit_hit: Option<u64>,
    limits: &Limits,
    timed_out: &AtomicBool,
    max_wasm_stack: usize,
) -> RunError {
    {
        if e.downcast_ref::<MemoryLimitHit>().is_some() || limit_hit.is_some() {
            return RunError::MemoryLimit {
                limit: limits.memory,
                wanted: limit_hit.unwrap_or(limits.memory),
            };
        }
        let trap = e.downcast_ref::<Trap>().copied();
        if trap == Some(Trap::Interrupt) && timed_out.load(Ordering::SeqCst) {
            return RunError::Timeout(limits.timeout.unwrap_or_default());
        }
        if trap == Some(Trap::StackOverflow) {
            return RunError::StackOverflow(max_wasm_stack as u64);
        }
        // A failure while instantiating is a link error (an import skiff does not provide),
        // unless it is a trap raised by a start function, which is reported as any trap.
        let e = match e.downcast::<Instantiation>() {
            Ok(Instantiation(inner)) if inner.downcast_ref::<Trap>().is_none() => {
                return RunError::Instantiate(crate::limits::explain_count_limit(format!(
                    "{inner:#}"
                )));
            }
            Ok(Instantiation(inner)) => inner,
            Err(e) => e,
        };
        let backtrace = e
            .downcast_ref::<wasmtime::WasmBacktrace>()
            .map(|bt| {
                bt.frames()
                    .iter()
                    .map(|f| {
                        let module = f.module().name().unwrap_or("<module>");
                        let func = f
                            .func_name()
                            .map(str::to_string)
                            .unwrap_or_else(|| format!("<wasm function {}>", f.func_index()));
                        format!("{module}!{func}")
                    })
                    .collect()
            })
            .unwrap_or_default();
        if crate::handles::hit(&e) {
            let max = crate::handles::effective_max_open(limits.max_open);
            return RunError::HandleLimit { max, backtrace };
        }
        let message = match trap {
            Some(t) => t.to_string(),
            None => format!("{:#}", e.root_cause()),
        };
        RunError::Trap { message, backtrace }
    }
}

/// Marks an error as raised while instantiating (a missing import), not while running.
#[derive(Debug)]
pub(crate) struct Instantiation(pub(crate) wasmtime::Error);

impl std::fmt::Display for Instantiation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for Instantiation {}

/// A guest's `exit(n)` arrives as an `I32Exit` error; it is a status, not a failure.
pub(crate) fn exit_status(result: Result<i32, wasmtime::Error>) -> Result<i32, wasmtime::Error> {
    match result {
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(I32Exit(code)) => Ok(*code),
            None => Err(e),
        },
        ok => ok,
    }
}
