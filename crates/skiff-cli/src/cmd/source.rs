//! Where the bytes of a workload come from. Today a file; image references join when the store
//! lands.

use crate::exit::NotFound;
use anyhow::Context;
use std::path::Path;

pub fn read_wasm_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(NotFound(format!(
            "{}: no such file; give the path to a .wasm file",
            path.display()
        ))
        .into()),
        Err(_) if path.is_dir() => Err(crate::exit::CannotRun(format!(
            "{} is a directory, not a .wasm file",
            path.display()
        ))
        .into()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}
