//! What an image requests against what its imports make possible. Neither is a grant: the
//! operator grants with `skiff run` flags. `inspect` shows both and flags where they disagree,
//! because a disagreement is either a mistake in skiff.toml or a binary doing more than it says.

use crate::annotations::Requests;
use serde::Serialize;
use skiff_wasm::{Capability, WasmInfo};

#[derive(Debug, Clone, Serialize)]
pub struct CapabilityRow {
    pub capability: String,
    /// What the image asks for (dirs, names, hosts; `["yes"]` for network).
    pub requested: Vec<String>,
    /// Whether its imports could use it.
    pub possible: bool,
    /// The imports that make it possible.
    pub imports: Vec<String>,
    /// Where request and imports disagree.
    pub note: Option<String>,
}

/// One row per capability an operator grants (files, env, sockets, outbound HTTP).
pub fn compare(requests: &Requests, info: &WasmInfo) -> Vec<CapabilityRow> {
    let imports = |c: Capability| info.capabilities.get(&c).cloned().unwrap_or_default();
    let mut rows = Vec::new();
    let mut row = |cap: Capability, requested: Vec<String>, what: &str, grant: &str| {
        let imports = imports(cap);
        let possible = !imports.is_empty();
        let note = match (requested.is_empty(), possible) {
            (false, false) => Some(format!(
                "requests {what} but imports nothing that could use it"
            )),
            (true, true) if cap == Capability::Sockets => Some(format!(
                "imports {} but requests no network; grant {grant} only if you expect it",
                short(&imports)
            )),
            (true, true) if cap == Capability::OutboundHttp => Some(format!(
                "imports {} but requests no outbound host; grant {grant} only if you expect it",
                short(&imports)
            )),
            _ => None,
        };
        rows.push(CapabilityRow {
            capability: cap.to_string(),
            requested,
            possible,
            imports,
            note,
        });
    };
    row(
        Capability::Files,
        requests.dirs.clone(),
        "a directory",
        "-v",
    );
    row(
        Capability::Env,
        requests.env.clone(),
        "environment variables",
        "-e",
    );
    row(
        Capability::Sockets,
        if requests.network {
            vec!["yes".into()]
        } else {
            vec![]
        },
        "the network",
        "--net",
    );
    row(
        Capability::OutboundHttp,
        requests.outbound.clone(),
        "outbound HTTP",
        "outbound hosts",
    );
    rows
}

fn short(imports: &[String]) -> String {
    match imports {
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} (+{} more)", rest.len()),
        [] => String::new(),
    }
}
