//! The one epoch ticker of an engine, shared by HTTP requests and commands.
//!
//! Both use epochs the same way: a store's deadline is one tick ahead, and its callback either
//! yields (fairness: a busy guest gives its thread back every tick, and a timeout or a stop gets
//! its turn) or, for an HTTP request whose CPU budget is spent, interrupts. Two tickers on one
//! engine would halve every budget, so there is exactly one per engine, started by the first
//! user and ended when the engine is dropped (it holds only a weak reference). No store uses
//! the epoch as a one-shot deadline, so any mix of commands and HTTP apps may share an engine.

use crate::engine::Engine;
use std::time::Duration;

/// How often the epoch advances: the granularity of HTTP CPU budgets and of the fairness yield.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

impl Engine {
    /// Start this engine's ticker if it is not running yet. Idempotent and cheap.
    pub fn ensure_epoch_ticker(&self) {
        self.ticker.call_once(|| {
            let weak = self.inner.weak();
            std::thread::Builder::new()
                .name("skiff-epoch".into())
                .spawn(move || loop {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => return,
                    }
                })
                .expect("spawn the epoch ticker thread");
        });
    }
}
