//! The one place where errors become exit codes. A guest's ending maps to its code next to its
//! type (`skiff_engine::RunError::exit_code`, shared with the daemon and the shim); this file
//! adds the CLI's own errors. Docker's codes where they apply:
//!
//! | code | meaning |
//! |------|---------|
//! | the guest's own | the guest exited (0–255 pass through) |
//! | 1 | a daemon verb failed, or no daemon answered (as Docker) |
//! | 124 | the guest hit its `--timeout` (as GNU `timeout`) |
//! | 125 | skiff itself failed: a bad flag, an unusable grant, an unreadable store |
//! | 126 | the binary cannot be run: not wasm, invalid, the wrong kind, an import skiff lacks; or the trust policy refused the image |
//! | 127 | the file or image was not found (locally, or in the registry when pulling) |
//! | 134 | the guest trapped (128 + SIGABRT), stack overflow included |
//! | 137 | the guest hit its `--memory` limit (128 + SIGKILL, as Docker's OOM kill) |
//! | 141 | skiff's stdout was closed by its reader (`skiff images \| head -1`; 128 + SIGPIPE) |

use skiff_engine::{LimitKind, LoadError, RunError};

pub use skiff_engine::exit::{CANNOT_RUN, NOT_FOUND, SKIFF_FAILED};

/// A daemon verb failed (`ps`, `stop`, …), or no daemon answered.
pub const DAEMON_ERROR: u8 = 1;
/// skiff's stdout was closed by its reader (128 + SIGPIPE).
pub const STDOUT_CLOSED: u8 = 141;

/// A file or image that does not exist.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotFound(pub String);

/// A daemon verb whose failure is skiff's own (125), daemon or not: `run -d`, as Docker's `run`.
/// Printed as the error it wraps.
#[derive(Debug, thiserror::Error)]
#[error("{}", crate::term::chain(.0.as_ref()))]
pub struct SkiffFailed(pub anyhow::Error);

/// A file that exists but is not something skiff can run.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CannotRun(pub String);

pub fn code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.is::<SkiffFailed>() {
            return SKIFF_FAILED;
        }
        // The daemon said no, or is not there: Docker's general error.
        if cause.is::<crate::client::ApiError>() || cause.is::<crate::client::NoDaemon>() {
            return DAEMON_ERROR;
        }
        if cause.is::<NotFound>() {
            return NOT_FOUND;
        }
        if cause.is::<CannotRun>() {
            return CANNOT_RUN;
        }
        if let Some(skiff_image::ImageError::NotFound(_)) = cause.downcast_ref() {
            return NOT_FOUND;
        }
        if let Some(skiff_registry::RegistryError::NotFound { .. }) = cause.downcast_ref() {
            return NOT_FOUND;
        }
        // A denied image cannot be run, as a binary that is not wasm cannot.
        if let Some(skiff_registry::RegistryError::Untrusted(_)) = cause.downcast_ref() {
            return CANNOT_RUN;
        }
        if let Some(e) = cause.downcast_ref::<RunError>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<LoadError>() {
            return e.exit_code();
        }
    }
    SKIFF_FAILED
}

/// The error as printed: its causes on one line, each said once (`term::chain`), with the flag
/// that sets a limit named after the engine's message about it ("past the limit of 16 MiB
/// (--memory)").
pub fn message_for(err: &anyhow::Error) -> String {
    crate::term::chain_with(err.as_ref(), |cause| {
        match cause.downcast_ref::<RunError>() {
            Some(e) => match e.limit() {
                Some(limit) => format!("{e} ({})", flag_for(limit)),
                None => e.to_string(),
            },
            None => cause.to_string(),
        }
    })
}

/// The `skiff run` flag that sets each limit.
fn flag_for(limit: LimitKind) -> &'static str {
    match limit {
        LimitKind::Memory => "--memory",
        LimitKind::Timeout => "--timeout",
        LimitKind::Stack => "--stack",
        LimitKind::OpenHandles => "--max-open",
    }
}

/// Lines printed after the error: what to do when no daemon answered; the wasm backtrace of a
/// trap (its frame names are the binary's, so each is escaped).
pub fn hint_for(err: &anyhow::Error) -> Option<String> {
    let inner = err.chain().find_map(|c| c.downcast_ref::<SkiffFailed>());
    let chain = || {
        err.chain()
            .chain(inner.into_iter().flat_map(|f| f.0.chain()))
    };
    if chain().any(|c| c.is::<crate::client::NoDaemon>()) {
        return Some(crate::client::NoDaemon::HINT.into());
    }
    let in_use = |c: &(dyn std::error::Error + 'static)| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::AddrInUse)
            // The daemon's errors carry their io::Error as text: EADDRINUSE is 98 on Linux.
            || c.to_string().contains("(os error 98)")
    };
    if chain().any(in_use) {
        return Some(
            "another process is listening on that address: stop it, or choose another \
             (port 0 picks a free one; ss -ltnp shows who has it)"
                .into(),
        );
    }
    let backtrace = chain()
        .find_map(|c| c.downcast_ref::<RunError>())?
        .backtrace();
    if backtrace.is_empty() {
        return None;
    }
    let mut out = String::from("wasm backtrace:");
    for (i, frame) in backtrace.iter().enumerate() {
        out.push_str(&format!("\n  {i:>2}: {}", crate::term::for_terminal(frame)));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_error_has_its_code() {
        use skiff_engine::exit::{MEMORY_LIMIT, TIMEOUT, TRAP};
        let in_use = std::io::Error::new(std::io::ErrorKind::AddrInUse, "in use");
        assert!(
            hint_for(&anyhow::Error::new(in_use).context("cannot listen"))
                .unwrap()
                .contains("port 0 picks a free one")
        );
        let cases: Vec<(anyhow::Error, u8)> = vec![
            (NotFound("x".into()).into(), NOT_FOUND),
            (CannotRun("x".into()).into(), CANNOT_RUN),
            (RunError::Timeout(Duration::from_secs(1)).into(), TIMEOUT),
            (
                RunError::MemoryLimit {
                    limit: 1,
                    wanted: 2,
                }
                .into(),
                MEMORY_LIMIT,
            ),
            (RunError::StackOverflow(1).into(), TRAP),
            (
                RunError::HandleLimit {
                    max: 16,
                    backtrace: vec![],
                }
                .into(),
                TRAP,
            ),
            (
                RunError::Trap {
                    message: "x".into(),
                    backtrace: vec![],
                }
                .into(),
                TRAP,
            ),
            (RunError::Grant("x".into()).into(), SKIFF_FAILED),
            (RunError::Instantiate("x".into()).into(), CANNOT_RUN),
            (LoadError::Invalid("x".into()).into(), CANNOT_RUN),
            (anyhow::anyhow!("anything else"), SKIFF_FAILED),
        ];
        for (err, code) in cases {
            assert_eq!(code_for(&err), code, "{err}");
        }
        // Context added on top does not change the code.
        let wrapped = anyhow::Error::from(NotFound("x".into())).context("while running");
        assert_eq!(code_for(&wrapped), NOT_FOUND);
    }

    #[test]
    fn limits_are_named_by_their_flag() {
        let e = anyhow::Error::from(RunError::MemoryLimit {
            limit: 2 << 20,
            wanted: 3 << 20,
        })
        .context("hog.wasm");
        let shown = message_for(&e);
        assert!(shown.starts_with("hog.wasm: memory limit: "), "{shown}");
        assert!(
            shown.ends_with("past the limit of 2 MiB (--memory)"),
            "{shown}"
        );
        let e = anyhow::Error::from(RunError::Timeout(Duration::from_millis(300)));
        assert!(message_for(&e).ends_with("300ms (--timeout)"));
        let e = anyhow::anyhow!("plain").context("outer");
        assert_eq!(message_for(&e), crate::term::chain(e.as_ref()));
    }
}
