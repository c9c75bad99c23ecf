//! The workload kind, decided by what a binary exports (never by a flag).

use serde::Serialize;
use std::fmt;

/// What a binary is, and so which skiff verb runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A core module exporting `_start`, or the empty-named `""` (emscripten's convention for
    /// a command; run after `_initialize` if there is one, as wasmtime does): a WASI preview 1
    /// command (`skiff run`).
    P1Command,
    /// A core module exporting `_initialize` but no `_start`: a WASI reactor.
    P1Reactor,
    /// A core module with neither: a library of functions.
    CoreLibrary,
    /// A component exporting `wasi:cli/run@0.2.*` (`skiff run`).
    P2Command,
    /// A component exporting `wasi:http/incoming-handler@0.2.*` (`skiff serve`).
    HttpHandler,
    /// A component exporting a WASI 0.3 world (`wasi:cli/run@0.3.*`, `wasi:http/handler@0.3.*`).
    P3Component,
    /// A component exporting neither.
    ComponentLibrary,
}

impl Kind {
    pub(crate) fn of_module(exports: &[String]) -> Kind {
        if exports.iter().any(|e| e == "_start" || e.is_empty()) {
            Kind::P1Command
        } else if exports.iter().any(|e| e == "_initialize") {
            Kind::P1Reactor
        } else {
            Kind::CoreLibrary
        }
    }

    pub(crate) fn of_component(exports: &[String]) -> Kind {
        let has = |prefix: &str| exports.iter().any(|e| e.starts_with(prefix));
        if has("wasi:http/incoming-handler@0.2") {
            Kind::HttpHandler
        } else if has("wasi:cli/run@0.2") {
            Kind::P2Command
        } else if has("wasi:cli/run@0.3") || has("wasi:http/handler@0.3") {
            Kind::P3Component
        } else {
            Kind::ComponentLibrary
        }
    }

    /// True for components (else a core module).
    pub fn is_component(self) -> bool {
        !matches!(self, Kind::P1Command | Kind::P1Reactor | Kind::CoreLibrary)
    }

    /// True for the kinds `skiff run` executes.
    pub fn is_command(self) -> bool {
        matches!(self, Kind::P1Command | Kind::P2Command)
    }

    /// The WASI target an image of this kind declares as its `os`.
    pub fn wasi_os(self) -> &'static str {
        match self {
            Kind::P1Command | Kind::P1Reactor | Kind::CoreLibrary => "wasip1",
            Kind::P2Command | Kind::HttpHandler | Kind::ComponentLibrary => "wasip2",
            Kind::P3Component => "wasip3",
        }
    }

    /// One sentence a user can act on, for when this kind is not what a verb runs.
    pub fn advice(self) -> &'static str {
        match self {
            Kind::P1Command | Kind::P2Command => "run it with `skiff run`",
            Kind::HttpHandler => {
                "it answers HTTP requests and has no main: serve it with `skiff serve`"
            }
            Kind::P1Reactor => {
                "a reactor exports functions for a host to call and has no `_start`: call one with \
                 `skiff run --invoke NAME FILE [ARGS]` (`skiff inspect` lists them), or build it \
                 as a command (with a `main`)"
            }
            Kind::CoreLibrary => {
                "it exports functions but no entry point (`_start` or `\"\"`): call one with \
                 `skiff run --invoke NAME FILE [ARGS]` (`skiff inspect` lists them), or build it \
                 as a command"
            }
            Kind::ComponentLibrary => {
                "it exports functions but no entry point (`wasi:cli/run` or \
                 `wasi:http/incoming-handler`): call one with `skiff run --invoke 'NAME(ARGS)' \
                 FILE` (`skiff inspect` lists its exports), or build it as a command"
            }
            Kind::P3Component => {
                "WASI 0.3 components are not supported yet: build it for WASI 0.2 (wasm32-wasip2)"
            }
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::P1Command => "WASI preview 1 command (core module)",
            Kind::P1Reactor => "WASI preview 1 reactor (core module)",
            Kind::CoreLibrary => "core Wasm library module",
            Kind::P2Command => "WASI 0.2 command component",
            Kind::HttpHandler => "WASI 0.2 HTTP handler component (wasi:http/incoming-handler)",
            Kind::P3Component => "WASI 0.3 component",
            Kind::ComponentLibrary => "component library",
        })
    }
}
