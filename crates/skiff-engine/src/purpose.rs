//! What a caller means to do with a binary, checked against its kind before anything is
//! compiled: the kind is known from the binary's exports, and a compile can take tens of
//! seconds (37 s, and a 68 MB cache entry, for a large reactor refused afterwards).

use crate::error::RunError;
use skiff_wasm::Kind;

/// The use a binary is loaded for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Run to completion as a command (`skiff run`, a daemon task).
    Run,
    /// Answer HTTP requests (`skiff serve`, a daemon app).
    Serve,
    /// Call one exported function (`skiff run --invoke`): any core module or component.
    Invoke,
}

impl Purpose {
    /// `Ok` when a binary of `kind` can be used this way; else the error that says what it is
    /// and what to do with it.
    pub fn admits(self, kind: Kind) -> Result<(), RunError> {
        let ok = match self {
            Purpose::Run => kind.is_command(),
            Purpose::Serve => kind == Kind::HttpHandler,
            // Any module or component: the function is looked up when it is instantiated.
            Purpose::Invoke => true,
        };
        if ok {
            return Ok(());
        }
        Err(RunError::WrongKind {
            kind,
            advice: kind.advice(),
        })
    }
}
