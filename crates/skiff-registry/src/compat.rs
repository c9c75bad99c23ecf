//! Docker's compat layout: an ordinary OCI image for platform `wasi/wasm` whose tar layer holds
//! the `.wasm` and whose entrypoint names it. Read here, on pull (the file is extracted with
//! care: no `..`, no links followed, sizes capped). `push --format compat` writes it with the
//! image crate's writer (`skiff_image::compat`), which is what containerd 1.6 and Docker unpack.

use crate::error::{RegistryError, Result};
use serde_json::Value;
use skiff_image::model::Descriptor;
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
    let first = |k: &str| {
        v.pointer(&format!("/config/{k}"))
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let entry = first("Entrypoint").or_else(|| first("Cmd"));
    // The compat layout published for Docker 20.10 or Kubernetes nodes carries their platform
    // (`skiff push --format compat --platform linux/amd64`): an entrypoint naming a .wasm says
    // what it is, and the binary extracted is checked like any other.
    let wasm_platform = arch == "wasm" && matches!(os, "wasi" | "wasip1" | "wasip2");
    if !wasm_platform && !entry.as_deref().is_some_and(|e| e.ends_with(".wasm")) {
        return Err(RegistryError::UnknownLayout {
            found: format!(
                "an ordinary container image for {os}/{arch}, not a Wasm image (wasi/wasm, or an \
                 entrypoint naming a .wasm)"
            ),
        });
    }
    Ok(entry)
}

/// The compat config's defaults for running the image, as skiff keeps them: `Cmd` (after an
/// `Entrypoint`; else what follows the program it names) as the default args, `Env` (`K=V`
/// each) as the default env. `skiff push --format compat` writes them so; Docker images carry
/// them the same way. Anything malformed is left out, never guessed.
pub(crate) fn defaults(config: &[u8]) -> skiff_image::annotations::Defaults {
    let v: Value = serde_json::from_slice(config).unwrap_or_default();
    let strings = |k: &str| -> Option<Vec<String>> {
        v.pointer(&format!("/config/{k}"))?
            .as_array()?
            .iter()
            .map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    let has_entrypoint = strings("Entrypoint").is_some_and(|e| !e.is_empty());
    let args = strings("Cmd")
        .map(|cmd| {
            if has_entrypoint {
                cmd
            } else {
                cmd.into_iter().skip(1).collect()
            }
        })
        .filter(|args| !args.is_empty());
    let env = strings("Env")
        .unwrap_or_default()
        .iter()
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    skiff_image::annotations::Defaults {
        args,
        env,
        ..Default::default()
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_image::compat::{CompatConfig, CompatImage};
    use skiff_image::media;

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
        vec![Descriptor::of(media::OCI_LAYER_TAR, b"x")]
    }

    #[test]
    fn cmd_and_env_become_the_default_args_and_env() {
        let d = |config: serde_json::Value| defaults(config.to_string().as_bytes());
        let with_entry = d(serde_json::json!({"config": {
            "Entrypoint": ["/app.wasm"], "Cmd": ["a", "b"], "Env": ["K=v=w", "=bad", "NOEQ", "X="]
        }}));
        assert_eq!(with_entry.args, Some(vec!["a".into(), "b".into()]));
        let env: Vec<_> = with_entry.env.into_iter().collect();
        assert_eq!(
            env,
            [("K".into(), "v=w".into()), ("X".into(), String::new())]
        );
        // No entrypoint: Cmd names the program first.
        let cmd_only = d(serde_json::json!({"config": {"Cmd": ["/app.wasm", "x"]}}));
        assert_eq!(cmd_only.args, Some(vec!["x".into()]));
        assert_eq!(
            d(serde_json::json!({"config": {"Cmd": ["/app.wasm"]}})).args,
            None
        );
        // Malformed: nothing guessed.
        assert_eq!(
            d(serde_json::json!({"config": {"Cmd": "a b", "Env": [1]}})),
            Default::default()
        );
        assert_eq!(defaults(b"not json"), Default::default());
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
    fn what_the_image_crate_writes_reads_back() {
        let image = CompatImage::new(CompatConfig {
            name: "localhost/hello:1".into(),
            wasm: b"\0asm\x01\0\0\0".to_vec(),
            file_name: "hello.wasm".into(),
            ..CompatConfig::default()
        })
        .unwrap();
        let entry = entrypoint(&image.config.bytes).unwrap();
        assert_eq!(entry.as_deref(), Some("/hello.wasm"));
        let got = extract(&layer(), entry.as_deref(), |_| {
            Ok(Box::new(std::io::Cursor::new(image.layer.bytes.clone())))
        })
        .unwrap();
        assert_eq!(got, b"\0asm\x01\0\0\0");
    }
}
