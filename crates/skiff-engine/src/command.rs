//! Running a command program (a WASI p1 `_start` module or a p2 `wasi:cli/run` component) to
//! completion, once: the one run path of `skiff run`, the daemon's tasks and the shim's guest
//! process.
//!
//! A run is a future and nothing in it blocks a thread: wasm code yields to the async executor
//! at every epoch tick, and host calls (sleeping, reading stdin, file I/O) are awaited. So
//! dropping the future stops the guest wherever it is (a tight loop, a sleep, a read), which is
//! how the daemon stops a workload; the wall-clock timeout is the same drop, done by
//! `tokio::time::timeout`. This is how wasmtime's own `run` and Spin's core run a guest. A
//! process that runs one guest drives the future with [`block_on`].

use crate::engine::{Compiled, Engine, Program};
use crate::error::RunError;
use crate::http::outbound::OutboundHooks;
use crate::limits::{Limits, MemoryLimitHit, MemoryLimiter};
use crate::sandbox::Sandbox;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use wasmtime::component::{Linker as ComponentLinker, ResourceTable};
use wasmtime::{InstancePre, Linker, Store, Trap, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

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
    /// `wasi:http` is linked for commands too (componentize-js imports it in every program it
    /// builds); the hooks deny every request the sandbox's allow-list does not name.
    pub(crate) http: WasiHttpCtx,
    pub(crate) hooks: OutboundHooks,
}

impl WasiHttpView for P2State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
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
    crate::Purpose::Run.admits(program.info.kind)
}

/// A command linked against WASI, ready to instantiate (see `Program::command_pre`).
pub(crate) enum LinkedCommand {
    P1(InstancePre<P1State>),
    P2(CommandPre<P2State>),
}

impl Engine {
    /// Run `program` to completion inside the current tokio runtime (one with time and I/O
    /// enabled: WASI sleeps and sockets need both).
    ///
    /// Dropping the returned future stops the guest: wasm code yields every
    /// [`crate::epoch::EPOCH_TICK`] (the engine's one ticker, shared with HTTP apps), and a
    /// guest waiting in a host call is waiting on a future. `limits.timeout` is that drop.
    pub async fn run_command(
        &self,
        program: &Program,
        sandbox: &Sandbox,
        limits: &Limits,
    ) -> Result<Exit, RunError> {
        ensure_command(program)?;
        let (exit, _) = self.run(program, sandbox, limits, None, None).await?;
        Ok(exit)
    }

    /// [`Engine::run_command`], counting the run's memory, CPU time and instance into `usage`
    /// (the daemon's tasks: `skiff stats`).
    pub async fn run_command_metered(
        &self,
        program: &Program,
        sandbox: &Sandbox,
        limits: &Limits,
        usage: std::sync::Arc<crate::Usage>,
    ) -> Result<Exit, RunError> {
        ensure_command(program)?;
        let (exit, _) = self
            .run(program, sandbox, limits, None, Some(usage))
            .await?;
        Ok(exit)
    }

    /// Call the exported function `name` of a core module, as `wasmtime run --invoke` does:
    /// `_initialize` first if the module has one, then the function, its parameters parsed
    /// from `sandbox`'s arguments by their types (see `crate::invoke`). Returns how it ended and
    /// its results, one line each as wasmtime prints them.
    pub async fn invoke(
        &self,
        program: &Program,
        sandbox: &Sandbox,
        limits: &Limits,
        name: &str,
    ) -> Result<(Exit, Vec<String>), RunError> {
        crate::Purpose::Invoke.admits(program.info.kind)?;
        self.run(program, sandbox, limits, Some(name), None).await
    }

    async fn run(
        &self,
        program: &Program,
        sandbox: &Sandbox,
        limits: &Limits,
        invoke: Option<&str>,
        usage: Option<std::sync::Arc<crate::Usage>>,
    ) -> Result<(Exit, Vec<String>), RunError> {
        if !self.interruptible {
            if limits.timeout.is_some() {
                return Err(RunError::Grant(
                    "a timeout needs an engine that can interrupt wasm code; this one was made \
                     without (Engine::without_interruption)"
                        .into(),
                ));
            }
        } else {
            self.ensure_epoch_ticker();
        }
        let builder = sandbox.builder()?;
        let run = async {
            match &program.compiled {
                Compiled::Module(module) => {
                    let call = match invoke {
                        Some(name) => crate::invoke::Call::parse(
                            module,
                            name,
                            sandbox.args.get(1..).unwrap_or(&[]),
                        )?,
                        None => crate::invoke::Call::Main,
                    };
                    let limiter = MemoryLimiter::metered(limits.memory, usage);
                    Ok(self
                        .run_p1(program, module, builder, limits, limiter, call)
                        .await)
                }
                Compiled::Component(component) => {
                    let mut builder = builder;
                    let state = P2State {
                        wasi: builder.build(),
                        table: capped_table(limits),
                        limiter: MemoryLimiter::metered(limits.memory, usage),
                        http: WasiHttpCtx::new(),
                        hooks: OutboundHooks::for_command(
                            sandbox.allow_outbound.clone(),
                            sandbox.args.first().map_or("guest", String::as_str),
                        ),
                    };
                    let call = match invoke {
                        Some(text) => {
                            Some(crate::wave::Call::parse(text).map_err(RunError::Invoke)?)
                        }
                        None => None,
                    };
                    Ok(self.run_p2(program, component, state, call).await)
                }
            }
        };
        let (result, limit_hit) = match limits.timeout {
            Some(t) => match tokio::time::timeout(t, run).await {
                Ok(r) => r?,
                Err(_) => return Err(RunError::Timeout(t)),
            },
            None => run.await?,
        };
        match result {
            Ok((code, lines)) => Ok((Exit::Code(code), lines)),
            Err(e) if e.downcast_ref::<InvokeUsage>().is_some() => {
                Err(RunError::Invoke(e.to_string()))
            }
            // The deadline is a drop, never a trap, so no trap here is a timeout.
            Err(e) => Err(classify(
                e,
                limit_hit,
                limits,
                &AtomicBool::new(false),
                self.max_wasm_stack,
            )),
        }
    }

    /// A store whose deadline is one tick away and that yields at every tick (fairness: a busy
    /// guest gives its thread back to the executor, which is also where a timeout or a stop
    /// gets its turn).
    fn store<T: Send + 'static>(
        &self,
        state: T,
        limiter: fn(&mut T) -> &mut MemoryLimiter,
    ) -> Store<T> {
        let mut store = Store::new(&self.inner, state);
        store.limiter(move |s| limiter(s) as &mut dyn wasmtime::ResourceLimiter);
        if self.interruptible {
            store.set_epoch_deadline(1);
            store.epoch_deadline_callback(move |mut cx| {
                limiter(cx.data_mut()).tick();
                Ok(UpdateDeadline::Yield(1))
            });
        }
        store
    }

    async fn run_p1(
        &self,
        program: &Program,
        module: &wasmtime::Module,
        mut builder: wasmtime_wasi::WasiCtxBuilder,
        limits: &Limits,
        limiter: MemoryLimiter,
        call: crate::invoke::Call,
    ) -> (Result<(i32, Vec<String>), wasmtime::Error>, Option<u64>) {
        let state = P1State {
            wasi: p1_ctx(&mut builder, limits),
            limiter,
        };
        let mut store = self.store(state, |s| &mut s.limiter);
        let result = async {
            let pre = match program.command_pre.get() {
                Some(LinkedCommand::P1(pre)) => pre.clone(),
                _ => {
                    let mut linker: Linker<P1State> = Linker::new(&self.inner);
                    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut P1State| {
                        &mut s.wasi
                    })?;
                    let pre = linker.instantiate_pre(module).map_err(Instantiation)?;
                    let _ = program.command_pre.set(LinkedCommand::P1(pre.clone()));
                    pre
                }
            };
            let instance = pre
                .instantiate_async(&mut store)
                .await
                .map_err(Instantiation)?;
            call.call(&mut store, &instance).await
        }
        .await;
        let result = match result {
            Ok(lines) => Ok((0, lines)),
            Err(e) => exit_status(Err(e)).map(|code| (code, Vec::new())),
        };
        (result, store.data().limiter.hit)
    }

    async fn run_p2(
        &self,
        program: &Program,
        component: &wasmtime::component::Component,
        state: P2State,
        invoke: Option<crate::wave::Call>,
    ) -> (Result<(i32, Vec<String>), wasmtime::Error>, Option<u64>) {
        let mut store = self.store(state, |s| &mut s.limiter);
        let linker = || -> wasmtime::Result<ComponentLinker<P2State>> {
            let mut linker: ComponentLinker<P2State> = ComponentLinker::new(&self.inner);
            // Every WASI 0.2 interface and wasi:http, as `serve` links them: linking grants
            // nothing, the sandbox does (no outbound host unless allowed).
            wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
            wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
            Ok(linker)
        };
        if let Some(call) = invoke {
            let result = async {
                let pre = linker()?
                    .instantiate_pre(component)
                    .map_err(Instantiation)?;
                let instance = pre
                    .instantiate_async(&mut store)
                    .await
                    .map_err(Instantiation)?;
                match call.call(&mut store, component, &instance).await {
                    Ok(lines) => Ok((0, lines)),
                    Err(crate::wave::CallError::Usage(u)) => Err(InvokeUsage(u).into()),
                    Err(crate::wave::CallError::Guest(e)) => Err(e),
                }
            }
            .await;
            let result = match result {
                Err(e) => exit_status(Err(e)).map(|code| (code, Vec::new())),
                ok => ok,
            };
            return (result, store.data().limiter.hit);
        }
        let result = async {
            let pre = match program.command_pre.get() {
                Some(LinkedCommand::P2(pre)) => pre.clone(),
                _ => {
                    let pre = linker()?
                        .instantiate_pre(component)
                        .and_then(CommandPre::new)
                        .map_err(Instantiation)?;
                    let _ = program.command_pre.set(LinkedCommand::P2(pre.clone()));
                    pre
                }
            };
            let command = pre
                .instantiate_async(&mut store)
                .await
                .map_err(Instantiation)?;
            match command.wasi_cli_run().call_run(&mut store).await? {
                Ok(()) => Ok(0),
                Err(()) => Ok(1),
            }
        }
        .await;
        (
            exit_status(result).map(|c| (c, Vec::new())),
            store.data().limiter.hit,
        )
    }
}

/// Drive `run` (an [`Engine::run_command`]) to its end on this thread, for a process that runs
/// one guest (`skiff run`, the shim's guest process), as wasmtime's `run` does: a
/// current-thread tokio runtime, with time and I/O for WASI's sleeps and sockets. Fails only if
/// the runtime cannot be created (no descriptor left for its epoll instance).
pub fn block_on<F: Future>(run: F) -> std::io::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let output = runtime.block_on(run);
    // A guest stopped at its timeout may leave a blocking host call behind on tokio's blocking
    // pool (a read from a FIFO under a mount, say). Dropping the runtime would wait for it;
    // this does not, and the process is about to exit anyway.
    runtime.shutdown_background();
    Ok(output)
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

/// `--invoke` named no function of the component, or an argument does not read as its type.
#[derive(Debug)]
pub(crate) struct InvokeUsage(String);

impl std::fmt::Display for InvokeUsage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvokeUsage {}

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
