//! Docker's compat layout: an ordinary OCI image for platform `wasi/wasm` whose tar layer holds
//! the `.wasm` and whose entrypoint names it. Read on pull (the file is extracted with care: no
//! `..`, no links followed, sizes capped) and written by `push --format compat`, which is what
//! containerd 1.6 and Docker can unpack.
//!
//! `skiff-compat` (another branch) builds the same layout for `skiff build`; once it is merged,
//! [`build`] should call it instead of duplicating the few lines below.

use crate::error::{RegistryError, Result};
use crate::manifest::{Descriptor, Manifest};
use crate::media;
use serde_json::{json, Value};
use std::io::Read;

/// Largest .wasm taken out of a layer.
pub const MAX_WASM: u64 = 512 << 20;
/// Most bytes read through one layer's tar stream (decompressed): a gzip bomb stops here.
pub const MAX_LAYER: u64 = 2 << 30;

/// The path the compat config's entrypoint (else cmd) names, relative to the image root.
pub(crate) fn entrypoint(config: &[u8]) -> Result<Option<String>> {
    let v: Value = serde_json::from_slice(config)
        .map_err(|e| RegistryError::CompatLayer(format!("the image config is not JSON: {e}")))?;
    let os = v.get("os").and_then(Value::as_str).unwrap_or("");
    let arch = v.get("architecture").and_then(Value::as_str).unwrap_or("");
    if arch != "wasm" || !matches!(os, "wasi" | "wasip1" | "wasip2") {
        return Err(RegistryError::UnknownLayout {
            found: format!(
                "an ordinary container image for {os}/{arch}, not a Wasm image (wasi/wasm)"
            ),
        });
    }
    let first = |k: &str| {
        v.pointer(&format!("/config/{k}"))
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Ok(first("Entrypoint").or_else(|| first("Cmd")))
}

/// A path inside a layer, normalised: no leading `/` or `./`; `None` if it climbs with `..`.
fn clean(path: &str) -> Option<String> {
    let mut parts = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => return None,
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Find the entrypoint's `.wasm` in the layers (the topmost layer that has it wins, as in an
/// unpacked filesystem). `read_layer(i)` opens layer `i`'s (possibly gzipped) bytes.
pub(crate) fn extract(
    layers: &[Descriptor],
    entry: Option<&str>,
    mut read_layer: impl FnMut(usize) -> Result<Box<dyn Read>>,
) -> Result<Vec<u8>> {
    let target = match entry {
        Some(e) => Some(clean(e).ok_or_else(|| {
            RegistryError::CompatLayer(format!(
                "the entrypoint {e:?} climbs out of the image with .."
            ))
        })?),
        None => None,
    };
    let mut candidates = Vec::new();
    for i in (0..layers.len()).rev() {
        let raw = read_layer(i)?;
        let mut head = std::io::BufReader::new(raw);
        let gz = {
            use std::io::BufRead;
            let buf = head.fill_buf().map_err(io)?;
            buf.starts_with(&[0x1f, 0x8b])
        };
        let stream: Box<dyn Read> = if gz {
            Box::new(flate2::read::GzDecoder::new(head))
        } else {
            Box::new(head)
        };
        let mut archive = tar::Archive::new(stream.take(MAX_LAYER));
        for entry in archive.entries().map_err(io)? {
            let mut entry = entry.map_err(io)?;
            let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let Some(path) = clean(&raw_path) else {
                return Err(RegistryError::CompatLayer(format!(
                    "layer {} has an entry {raw_path:?} that climbs out with ..; refusing the image",
                    layers[i].digest
                )));
            };
            let wanted = match &target {
                Some(t) => *t == path,
                None => path.ends_with(".wasm"),
            };
            if !wanted {
                continue;
            }
            let kind = entry.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                return Err(RegistryError::CompatLayer(format!(
                    "/{path} is a link in layer {}; skiff does not follow links out of layers",
                    layers[i].digest
                )));
            }
            if !kind.is_file() {
                continue;
            }
            let size = entry.header().size().map_err(io)?;
            if size > MAX_WASM {
                return Err(RegistryError::TooLarge {
                    what: format!("/{path} in layer {}", layers[i].digest),
                    limit: MAX_WASM,
                });
            }
            if target.is_none() {
                candidates.push(path.clone());
                if candidates.len() > 1 {
                    continue;
                }
            }
            // The header's size is a claim: reserve at most 8 MiB up front, so a small layer
            // that declares 512 MiB entries costs what it sends, not what it says.
            let mut bytes = Vec::with_capacity(size.min(8 << 20) as usize);
            (&mut entry)
                .take(MAX_WASM)
                .read_to_end(&mut bytes)
                .map_err(io)?;
            if target.is_some() {
                return Ok(bytes);
            }
            if candidates.len() == 1 {
                // Keep looking: a second .wasm makes the choice ambiguous.
                let rest = archive_rest_has_wasm(&mut archive)?;
                if rest.is_empty() {
                    return Ok(bytes);
                }
                candidates.extend(rest);
                break;
            }
        }
        if !candidates.is_empty() {
            break;
        }
    }
    Err(RegistryError::CompatLayer(
        match (target, candidates.len()) {
            (Some(t), _) => format!("the entrypoint /{t} is not a file in any layer"),
            (None, 0) => "no entrypoint, and no .wasm file in the layers".into(),
            (None, _) => format!(
                "no entrypoint, and several .wasm files: {}",
                candidates.join(", ")
            ),
        },
    ))
}

fn archive_rest_has_wasm<R: Read>(archive: &mut tar::Archive<R>) -> Result<Vec<String>> {
    let mut more = Vec::new();
    for e in archive.entries().map_err(io)? {
        let e = e.map_err(io)?;
        let p = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        if p.ends_with(".wasm") && e.header().entry_type().is_file() {
            more.push(p);
        }
    }
    Ok(more)
}

fn io(e: std::io::Error) -> RegistryError {
    RegistryError::CompatLayer(format!("unreadable tar layer: {e}"))
}

/// A compat image for `wasm`: (manifest, config, layer) bytes. Deterministic: the same .wasm
/// always gives the same digests.
pub fn build(
    wasm: &[u8],
    name: &str,
    os: &str,
    created: &str,
) -> Result<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    let name = clean(name)
        .filter(|n| !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| RegistryError::CompatLayer(format!("bad file name {name:?}")))?;
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(wasm.len() as u64);
    header.set_mode(0o755);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, &name, wasm).map_err(io)?;
    let layer = tar.into_inner().map_err(io)?;
    let diff_id = crate::blobs::sha256(&layer);
    // Docker names wasm platforms `wasi/wasm`; containerd 1.6 matches on it.
    let config = json!({
        "created": created,
        "architecture": "wasm",
        "os": if os == "wasip2" || os == "wasip1" { "wasi" } else { os },
        "config": {"Entrypoint": [format!("/{name}")]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": "skiff push --format compat"}],
    });
    let config = crate::manifest::to_bytes(&config);
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_string()),
        artifact_type: None,
        config: Descriptor::new(media::OCI_CONFIG, &config),
        layers: vec![Descriptor::new(media::OCI_LAYER_TAR, &layer)],
        annotations: None,
    };
    Ok((crate::manifest::to_bytes(&manifest), config, layer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            if kind.is_symlink() {
                h.set_size(0);
                h.set_link_name("/etc/passwd").unwrap();
            }
            // Write the raw name so `..` survives (the tar crate refuses it in set_path).
            let name = h.as_old_mut();
            name.name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn layer() -> Vec<Descriptor> {
        vec![Descriptor::new(media::OCI_LAYER_TAR, b"x")]
    }

    #[test]
    fn extracts_the_entrypoint_and_refuses_tricks() {
        let good = tar_with(&[("app.wasm", tar::EntryType::Regular, b"\0asm")]);
        let got = extract(&layer(), Some("/app.wasm"), |_| {
            Ok(Box::new(std::io::Cursor::new(good.clone())))
        })
        .unwrap();
        assert_eq!(got, b"\0asm");

        let dotdot = tar_with(&[("../x.wasm", tar::EntryType::Regular, b"\0asm")]);
        let err = extract(&layer(), Some("/x.wasm"), |_| {
            Ok(Box::new(std::io::Cursor::new(dotdot.clone())))
        });
        assert!(err.unwrap_err().to_string().contains(".."));

        let link = tar_with(&[("app.wasm", tar::EntryType::Symlink, b"")]);
        let err = extract(&layer(), Some("/app.wasm"), |_| {
            Ok(Box::new(std::io::Cursor::new(link.clone())))
        });
        assert!(err.unwrap_err().to_string().contains("link"));

        assert!(extract(&layer(), Some("/../etc/passwd"), |_| unreachable!()).is_err());
    }

    #[test]
    fn build_is_deterministic_and_readable_back() {
        let (m1, c1, l1) = build(
            b"\0asm\x01\0\0\0",
            "hello.wasm",
            "wasip1",
            "1970-01-01T00:00:00Z",
        )
        .unwrap();
        let (m2, _, _) = build(
            b"\0asm\x01\0\0\0",
            "hello.wasm",
            "wasip1",
            "1970-01-01T00:00:00Z",
        )
        .unwrap();
        assert_eq!(m1, m2);
        assert_eq!(entrypoint(&c1).unwrap().as_deref(), Some("/hello.wasm"));
        let got = extract(&layer(), Some("/hello.wasm"), |_| {
            Ok(Box::new(std::io::Cursor::new(l1.clone())))
        })
        .unwrap();
        assert_eq!(got, b"\0asm\x01\0\0\0");
    }
}
