//! Errors of loading and running, each saying what failed and what to do.

use std::path::PathBuf;
use std::time::Duration;

/// Why bytes could not become a runnable [`crate::Program`].
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Not WebAssembly at all, or cut short.
    #[error("not a WebAssembly binary: {0}")]
    NotWasm(#[from] skiff_wasm::ParseError),
    /// Parsed, but wasmtime refused it (a validation error, an unsupported proposal).
    #[error("invalid WebAssembly: {0}")]
    Invalid(String),
    /// The engine itself could not be set up.
    #[error("could not create the wasm engine: {0}")]
    Engine(String),
    /// The compile cache could not be written. Running still works; the next run compiles again.
    #[error("compile cache at {path}: {source}")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How a run ended when it did not end with an exit status of the guest's own.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The binary is valid but of a kind this verb does not run.
    #[error("this is a {kind}: {advice}")]
    WrongKind {
        kind: skiff_wasm::Kind,
        advice: &'static str,
    },
    /// A grant could not be set up (a host directory that does not exist, say).
    #[error("{0}")]
    Grant(String),
    /// Linking or instantiation failed: an import skiff does not provide, or a start trap.
    #[error("could not instantiate the guest: {0}")]
    Instantiate(String),
    /// The guest executed a trapping instruction.
    #[error("guest trapped: {message}")]
    Trap {
        message: String,
        /// The wasm backtrace, one frame a line, innermost first.
        backtrace: Vec<String>,
    },
    /// The wall-clock limit was reached.
    #[error("timeout: the guest ran longer than {} (--timeout)", humantime(*.0))]
    Timeout(Duration),
    /// The guest asked for more memory than its limit. `wanted` is the total the guest would
    /// have held: its linear memories and tables, counted together (see `limits.rs`).
    #[error(
        "memory limit: the guest's linear memories and tables together would need {}, past the limit of {} (--memory)",
        bytes(*.wanted), bytes(*.limit)
    )]
    MemoryLimit { limit: u64, wanted: u64 },
    /// The guest's call stack outgrew the wasm stack limit.
    #[error("stack limit: the guest exhausted its {} wasm stack (--stack); deep or unbounded recursion", bytes(*.0))]
    StackOverflow(u64),
}

pub(crate) fn bytes(n: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    const GIB: u64 = 1024 * MIB;
    match n {
        n if n >= GIB && n % GIB == 0 => format!("{} GiB", n / GIB),
        n if n >= GIB => format!("{:.1} GiB", n as f64 / GIB as f64),
        n if n >= MIB && n % MIB == 0 => format!("{} MiB", n / MIB),
        n if n >= MIB => format!("{:.1} MiB", n as f64 / MIB as f64),
        n if n >= KIB && n % KIB == 0 => format!("{} KiB", n / KIB),
        n => format!("{n} bytes"),
    }
}

fn humantime(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_messages_name_the_flag() {
        let e = RunError::MemoryLimit {
            limit: 64 << 20,
            wanted: (64 << 20) + 65536,
        };
        assert_eq!(
            e.to_string(),
            "memory limit: the guest's linear memories and tables together would need 64.1 MiB, past the limit of 64 MiB (--memory)"
        );
        let e = RunError::Timeout(Duration::from_millis(1500));
        assert!(e.to_string().contains("1500ms (--timeout)"));
    }
}
