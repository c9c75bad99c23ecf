//! Running a command as a future, for a process that runs many guests at once (the daemon).
//!
//! Unlike [`Engine::run_command`], nothing here blocks a thread: wasm code yields to the async
//! executor at every epoch tick, and host calls (sleeping, file I/O) are awaited. So dropping the
//! future stops the guest wherever it is — a tight loop, a sleep, a read — which is how a
//! supervisor stops a workload. A wall-clock timeout is the same drop, done by `tokio::time`.

use crate::command::{exit_status, Instantiation, P1State, P2State};
use crate::engine::{Compiled, Engine, Program};
use crate::error::RunError;
use crate::limits::{Limits, MemoryLimiter};
use crate::sandbox::Sandbox;
use crate::Exit;
use skiff_wasm::Kind;
use std::sync::atomic::AtomicBool;
use wasmtime::component::Linker as ComponentLinker;
use wasmtime::{InstancePre, Linker, Store, UpdateDeadline};
use wasmtime_wasi::p2::bindings::CommandPre;

/// A command linked against WASI, ready to instantiate (see `Program::task_pre`).
pub(crate) enum TaskPre {
    P1(InstancePre<P1State>),
    P2(CommandPre<P2State>),
}

impl Engine {
    /// Run `program` to completion inside the current tokio runtime.
    ///
    /// Dropping the returned future stops the guest: wasm code yields every
    /// [`crate::epoch::EPOCH_TICK`] (the engine's one ticker, shared with HTTP apps). Do not mix
    /// this with [`Engine::run_command`] on one engine: that one traps at the next epoch tick.
    pub async fn run_command_async(
        &self,
        program: &Program,
        sandbox: &Sandbox,
        limits: &Limits,
    ) -> Result<Exit, RunError> {
        crate::command::ensure_command(program)?;
        self.ensure_epoch_ticker();
        let builder = sandbox.builder()?;
        let run = async {
            match (&program.compiled, program.info.kind) {
                (Compiled::Module(module), Kind::P1Command) => {
                    self.run_p1_async(program, module, builder, limits).await
                }
                (Compiled::Component(component), Kind::P2Command) => {
                    self.run_p2_async(program, component, builder, limits).await
                }
                _ => unreachable!("is_command() kinds are compiled as their encoding says"),
            }
        };
        let (result, limit_hit) = match limits.timeout {
            Some(t) => match tokio::time::timeout(t, run).await {
                Ok(r) => r,
                Err(_) => return Err(RunError::Timeout(t)),
            },
            None => run.await,
        };
        match result {
            Ok(code) => Ok(Exit::Code(code)),
            Err(e) => Err(self.classify(e, limit_hit, limits, &AtomicBool::new(false))),
        }
    }

    fn async_store<T: Send + 'static>(
        &self,
        state: T,
        limiter: fn(&mut T) -> &mut MemoryLimiter,
    ) -> Store<T> {
        let mut store = Store::new(&self.inner, state);
        store.limiter(move |s| limiter(s) as &mut dyn wasmtime::ResourceLimiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
        store
    }

    async fn run_p1_async(
        &self,
        program: &Program,
        module: &wasmtime::Module,
        mut builder: wasmtime_wasi::WasiCtxBuilder,
        limits: &Limits,
    ) -> (Result<i32, wasmtime::Error>, Option<u64>) {
        let state = P1State {
            wasi: crate::command::p1_ctx(&mut builder, limits),
            limiter: MemoryLimiter::new(limits.memory),
        };
        let mut store = self.async_store(state, |s| &mut s.limiter);
        let result = async {
            let pre = match program.task_pre.get() {
                Some(TaskPre::P1(pre)) => pre.clone(),
                _ => {
                    let mut linker: Linker<P1State> = Linker::new(&self.inner);
                    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut P1State| {
                        &mut s.wasi
                    })?;
                    let pre = linker.instantiate_pre(module).map_err(Instantiation)?;
                    let _ = program.task_pre.set(TaskPre::P1(pre.clone()));
                    pre
                }
            };
            let instance = pre
                .instantiate_async(&mut store)
                .await
                .map_err(Instantiation)?;
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
            start.call_async(&mut store, ()).await?;
            Ok(0)
        }
        .await;
        (exit_status(result), store.data().limiter.hit)
    }

    async fn run_p2_async(
        &self,
        program: &Program,
        component: &wasmtime::component::Component,
        mut builder: wasmtime_wasi::WasiCtxBuilder,
        limits: &Limits,
    ) -> (Result<i32, wasmtime::Error>, Option<u64>) {
        let state = P2State {
            wasi: builder.build(),
            table: crate::command::capped_table(limits),
            limiter: MemoryLimiter::new(limits.memory),
        };
        let mut store = self.async_store(state, |s| &mut s.limiter);
        let result = async {
            let pre = match program.task_pre.get() {
                Some(TaskPre::P2(pre)) => pre.clone(),
                _ => {
                    let mut linker: ComponentLinker<P2State> = ComponentLinker::new(&self.inner);
                    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
                    let pre = linker
                        .instantiate_pre(component)
                        .and_then(CommandPre::new)
                        .map_err(Instantiation)?;
                    let _ = program.task_pre.set(TaskPre::P2(pre.clone()));
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
        (exit_status(result), store.data().limiter.hit)
    }
}
