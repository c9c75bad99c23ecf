//! Is this bundle a WebAssembly container? Decided from the bundle, never from a flag: the
//! program the spec names starts with Wasm's magic bytes, or the spec carries the annotation
//! crun and runwasi use for Wasm images.

use containerd_shim_skiff::spec::{resolve_in_rootfs, Spec};
use std::io::Read;
use std::path::Path;

/// The annotations that mark a Wasm container for crun (`run.oci.handler`) and for the
/// compat image layout (`module.wasm.image/variant`).
pub const WASM_ANNOTATIONS: [(&str, &str); 2] = [
    ("module.wasm.image/variant", "compat"),
    ("run.oci.handler", "wasm"),
];

const WASM_MAGIC: &[u8; 4] = b"\0asm";

pub fn check(spec: &Spec, rootfs: &Path) -> Result<(), String> {
    if WASM_ANNOTATIONS
        .iter()
        .any(|(k, v)| spec.annotations.get(*k).map(|s| s.trim()) == Some(*v))
    {
        return Ok(());
    }
    // No program at all: the shim's plan says what is missing, in the same words as under
    // containerd.
    let Some((process, arg0)) = spec
        .process
        .as_ref()
        .and_then(|p| Some((p, p.args.first()?)))
    else {
        return Ok(());
    };
    let why = match resolve_in_rootfs(rootfs, &process.cwd, arg0) {
        Ok(path) => match starts_with_magic(&path) {
            Ok(true) => return Ok(()),
            Ok(false) => "does not start with the Wasm magic bytes \\0asm".to_string(),
            Err(e) => format!("cannot be read: {e}"),
        },
        Err(e) => format!("cannot be used ({e})"),
    };
    Err(format!(
        "not a WebAssembly container: the program {arg0} {why}, and neither annotation {} nor {} \
         is set. skiff-oci runs only WebAssembly; run Linux containers with runc (the default \
         runtime: drop `--runtime`)",
        pair(0),
        pair(1),
    ))
}

fn pair(i: usize) -> String {
    format!("{}={}", WASM_ANNOTATIONS[i].0, WASM_ANNOTATIONS[i].1)
}

fn starts_with_magic(path: &Path) -> std::io::Result<bool> {
    let mut head = [0u8; 4];
    let mut f = std::fs::File::open(path)?;
    let mut read = 0;
    while read < 4 {
        match f.read(&mut head[read..])? {
            0 => return Ok(false),
            n => read += n,
        }
    }
    Ok(&head == WASM_MAGIC)
}
