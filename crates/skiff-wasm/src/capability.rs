//! Which capability an import could use. `inspect` shows these so an operator knows what a binary
//! *could* do before granting anything; the sandbox grants none of them by default.

use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// Directories and files (granted with `-v`).
    Files,
    /// Environment variables (granted with `-e`, `--env-file`).
    Env,
    /// Command-line arguments.
    Args,
    /// TCP/UDP sockets and name lookup (granted with `--net`).
    Sockets,
    /// Outgoing HTTP requests (granted with `--allow-outbound`).
    OutboundHttp,
    /// Standard input, output and error, and terminals (stdin granted with `-i`).
    Stdio,
    /// Wall and monotonic clocks, timers.
    Clocks,
    /// Random numbers.
    Random,
    /// Incoming HTTP request and response types.
    Http,
    /// Exiting with a status.
    Exit,
    /// An import skiff does not recognise (a non-WASI host function); linking fails unless provided.
    Other,
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Capability::Files => "files",
            Capability::Env => "env",
            Capability::Args => "args",
            Capability::Sockets => "sockets",
            Capability::OutboundHttp => "outbound-http",
            Capability::Stdio => "stdio",
            Capability::Clocks => "clocks",
            Capability::Random => "random",
            Capability::Http => "http",
            Capability::Exit => "exit",
            Capability::Other => "other",
        })
    }
}

/// The capability an import name belongs to; `None` for plumbing that grants nothing by itself
/// (`wasi:io/*` streams and polls, memory and table imports of adapters).
pub fn classify(import: &str) -> Option<Capability> {
    if let Some(func) = import
        .strip_prefix("wasi_snapshot_preview1::")
        .or_else(|| import.strip_prefix("wasi_unstable::"))
    {
        return Some(classify_p1(func));
    }
    let (interface, _version) = import.split_once('@').unwrap_or((import, ""));
    let cap = match interface {
        i if i.starts_with("wasi:filesystem/") => Capability::Files,
        "wasi:cli/environment" => Capability::Env,
        "wasi:cli/exit" => Capability::Exit,
        i if i.starts_with("wasi:cli/") => Capability::Stdio,
        i if i.starts_with("wasi:sockets/") => Capability::Sockets,
        "wasi:http/outgoing-handler" | "wasi:http/client" => Capability::OutboundHttp,
        i if i.starts_with("wasi:http/") => Capability::Http,
        i if i.starts_with("wasi:clocks/") => Capability::Clocks,
        i if i.starts_with("wasi:random/") => Capability::Random,
        i if i.starts_with("wasi:io/") => return None,
        _ => Capability::Other,
    };
    Some(cap)
}

fn classify_p1(func: &str) -> Capability {
    match func {
        f if f.starts_with("path_") || f.starts_with("fd_prestat") || f == "fd_readdir" => {
            Capability::Files
        }
        f if f.starts_with("environ_") => Capability::Env,
        f if f.starts_with("args_") => Capability::Args,
        f if f.starts_with("sock_") => Capability::Sockets,
        f if f.starts_with("clock_") || f == "poll_oneoff" || f == "sched_yield" => {
            Capability::Clocks
        }
        "random_get" => Capability::Random,
        "proc_exit" | "proc_raise" => Capability::Exit,
        // fd_write/fd_read/fd_close… act on stdio unless a directory was preopened.
        _ => Capability::Stdio,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p1_and_p2_names_agree() {
        assert_eq!(
            classify("wasi_snapshot_preview1::path_open"),
            Some(Capability::Files)
        );
        assert_eq!(
            classify("wasi:filesystem/preopens@0.2.6"),
            Some(Capability::Files)
        );
        assert_eq!(
            classify("wasi_snapshot_preview1::environ_get"),
            Some(Capability::Env)
        );
        assert_eq!(
            classify("wasi:cli/environment@0.2.0"),
            Some(Capability::Env)
        );
        assert_eq!(
            classify("wasi:sockets/tcp@0.2.0"),
            Some(Capability::Sockets)
        );
        assert_eq!(
            classify("wasi:http/outgoing-handler@0.2.12"),
            Some(Capability::OutboundHttp)
        );
        assert_eq!(classify("wasi:io/streams@0.2.0"), None);
        assert_eq!(classify("env::host_thing"), Some(Capability::Other));
    }
}
