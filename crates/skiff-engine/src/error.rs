//! Errors of loading and running, each saying what failed and what to do, and the exit status
//! each one is reported with: here, once, for `skiff run`, the daemon's records and the shim's
//! containers alike. (HTTP requests fail with [`crate::http::HandleError`], which carries its
//! own status.)
//!
//! The messages name no flag: a limit is set by `--memory` on the command line but by the
//! container's memory limit under containerd. Whoever set it adds that as a hint, through
//! [`RunError::limit`].

use std::path::PathBuf;
use std::time::Duration;

/// Exit statuses, Docker's where they apply, so that `skiff run`, `skiff ps` and a container's
/// status mean the same. The guest's own status (0-255) passes through.
pub mod exit {
    /// The guest hit its wall-clock limit (as GNU `timeout`).
    pub const TIMEOUT: u8 = 124;
    /// skiff itself failed: a bad flag, an unusable grant, an unreadable store.
    pub const SKIFF_FAILED: u8 = 125;
    /// The binary cannot be run: not wasm, invalid, the wrong kind, an import skiff lacks.
    pub const CANNOT_RUN: u8 = 126;
    /// The file or image was not found.
    pub const NOT_FOUND: u8 = 127;
    /// The guest trapped (128 + SIGABRT): stack overflow and the open-handle limit included.
    pub const TRAP: u8 = 134;
    /// The guest hit its memory limit (128 + SIGKILL, as Docker's OOM kill).
    pub const MEMORY_LIMIT: u8 = 137;
}

/// A limit that stopped a guest, for the hint that says how it is set (`--memory` for the
/// CLI, the container's memory limit for the shim).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Memory,
    Timeout,
    Stack,
    OpenHandles,
}

/// What the bytes are, said once: skiff-wasm's description of a non-Wasm file already says it
/// is not WebAssembly ("it is a text file, not a WebAssembly binary"); the other parse errors get
/// the prefix.
fn not_wasm(e: &skiff_wasm::ParseError) -> String {
    match e {
        skiff_wasm::ParseError::NotWasm(what) => what.clone(),
        other => format!("not a WebAssembly binary: {other}"),
    }
}

/// Why bytes could not become a runnable [`crate::Program`].
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Not WebAssembly at all, or cut short.
    #[error("{}", not_wasm(.0))]
    NotWasm(#[from] skiff_wasm::ParseError),
    /// Parsed, but wasmtime refused it (a validation error, an unsupported proposal).
    #[error("invalid WebAssembly: {0}")]
    Invalid(String),
    /// Valid, but uses a proposal skiff leaves off (see `skiff_wasm::left_off_proposal`).
    #[error("{0}")]
    Proposal(&'static skiff_wasm::Proposal),
    /// Valid, but not usable as asked (see [`crate::Purpose`]); refused before compiling.
    #[error(transparent)]
    Refused(RunError),
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

impl LoadError {
    pub fn exit_code(&self) -> u8 {
        match self {
            LoadError::NotWasm(_) | LoadError::Invalid(_) | LoadError::Proposal(_) => {
                exit::CANNOT_RUN
            }
            LoadError::Refused(e) => e.exit_code(),
            LoadError::Engine(_) | LoadError::Cache { .. } => exit::SKIFF_FAILED,
        }
    }
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
    /// `--invoke` named no exported function, or an argument does not parse as its type.
    #[error("--invoke: {0}")]
    Invoke(String),
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
    #[error("timeout: the guest ran longer than {}", humantime(*.0))]
    Timeout(Duration),
    /// The guest asked for more memory than its limit. `wanted` is the total the guest would
    /// have held: its linear memories and tables, counted together (see `limits.rs`).
    #[error(
        "memory limit: the guest's linear memories and tables together would need {}, past the limit of {}",
        bytes(*.wanted), bytes(*.limit)
    )]
    MemoryLimit { limit: u64, wanted: u64 },
    /// The guest's call stack outgrew the wasm stack limit.
    #[error("stack limit: the guest exhausted its {} wasm stack; deep or unbounded recursion", bytes(*.0))]
    StackOverflow(u64),
    /// The guest tried to hold more handles than its cap (see `handles.rs`); wasmtime-wasi
    /// stops it with a trap, so it has a backtrace too.
    #[error(
        "open-handle limit: the guest tried to hold more than {max} open files, sockets and \
         other handles at once"
    )]
    HandleLimit { max: usize, backtrace: Vec<String> },
}

impl RunError {
    /// The exit status this ending is reported with (see [`exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::WrongKind { .. } | RunError::Instantiate(_) => exit::CANNOT_RUN,
            RunError::Grant(_) | RunError::Invoke(_) => exit::SKIFF_FAILED,
            RunError::Trap { .. } | RunError::StackOverflow(_) | RunError::HandleLimit { .. } => {
                exit::TRAP
            }
            RunError::Timeout(_) => exit::TIMEOUT,
            RunError::MemoryLimit { .. } => exit::MEMORY_LIMIT,
        }
    }

    /// Trying again cannot help: the binary is not a command, or needs an import skiff lacks.
    /// (A grant may work next time: a directory created meanwhile.)
    pub fn is_permanent(&self) -> bool {
        matches!(self, RunError::WrongKind { .. } | RunError::Instantiate(_))
    }

    /// The limit that stopped the guest, if one did.
    pub fn limit(&self) -> Option<LimitKind> {
        match self {
            RunError::Timeout(_) => Some(LimitKind::Timeout),
            RunError::MemoryLimit { .. } => Some(LimitKind::Memory),
            RunError::StackOverflow(_) => Some(LimitKind::Stack),
            RunError::HandleLimit { .. } => Some(LimitKind::OpenHandles),
            _ => None,
        }
    }

    /// The wasm backtrace of a guest that trapped, innermost frame first; empty otherwise.
    pub fn backtrace(&self) -> &[String] {
        match self {
            RunError::Trap { backtrace, .. } | RunError::HandleLimit { backtrace, .. } => backtrace,
            _ => &[],
        }
    }
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
    fn limit_messages_say_the_limit_and_name_no_flag() {
        let e = RunError::MemoryLimit {
            limit: 64 << 20,
            wanted: (64 << 20) + 65536,
        };
        assert_eq!(
            e.to_string(),
            "memory limit: the guest's linear memories and tables together would need 64.1 MiB, past the limit of 64 MiB"
        );
        assert_eq!(e.limit(), Some(LimitKind::Memory));
        let e = RunError::Timeout(Duration::from_millis(1500));
        assert!(e.to_string().ends_with("ran longer than 1500ms"), "{e}");
        assert_eq!(e.limit(), Some(LimitKind::Timeout));
        assert_eq!(RunError::Grant("x".into()).limit(), None);
    }

    #[test]
    fn every_ending_has_its_exit_code() {
        let trap = RunError::Trap {
            message: "unreachable".into(),
            backtrace: vec![],
        };
        let kind = RunError::WrongKind {
            kind: skiff_wasm::Kind::P1Reactor,
            advice: "x",
        };
        let cases = [
            (RunError::Timeout(Duration::from_secs(1)), 124, false),
            (RunError::Grant("x".into()), 125, false),
            (RunError::Invoke("x".into()), 125, false),
            (kind, 126, true),
            (RunError::Instantiate("x".into()), 126, true),
            (trap, 134, false),
            (RunError::StackOverflow(1), 134, false),
            (
                RunError::HandleLimit {
                    max: 16,
                    backtrace: vec![],
                },
                134,
                false,
            ),
            (
                RunError::MemoryLimit {
                    limit: 1,
                    wanted: 2,
                },
                137,
                false,
            ),
        ];
        for (e, code, permanent) in cases {
            assert_eq!((e.exit_code(), e.is_permanent()), (code, permanent), "{e}");
        }
        assert_eq!(LoadError::Invalid("x".into()).exit_code(), 126);
        assert_eq!(LoadError::Engine("x".into()).exit_code(), 125);
    }
}
