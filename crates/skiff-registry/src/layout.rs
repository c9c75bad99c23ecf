//! Every Wasm image layout in use, recognised from its media types, and normalised into skiff's
//! own (the CNCF Wasm layout): config `application/vnd.wasm.config.v0+json`, one
//! `application/wasm` layer. The mapping is documented in docs/registry.md.

use crate::error::{RegistryError, Result};
use serde_json::Value;
use skiff_image::annotations::{OCI_TITLE, SOURCE_COMPONENT, SOURCE_LAYOUT, SOURCE_MANIFEST};
use skiff_image::media;
use skiff_image::model::{
    to_canonical_json, Annotations, Component, Descriptor, Manifest, Platform, WasmConfig,
};
use skiff_store::Digest;

/// Which layout an image was pushed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// The CNCF Wasm artifact layout: what skiff pushes; stored byte for byte.
    Cncf,
    /// `spin registry push`.
    Spin,
    /// runwasi's component/module layers.
    Runwasi,
    /// Docker's compat layout: an ordinary image for platform wasi/wasm, the .wasm in a tar layer.
    Compat,
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layout::Cncf => "cncf",
            Layout::Spin => "spin",
            Layout::Runwasi => "runwasi",
            Layout::Compat => "compat",
        })
    }
}

/// An OS and architecture a Wasm image may be published for in an index.
pub(crate) fn is_wasm_platform(p: &Platform) -> bool {
    p.architecture == "wasm" && matches!(p.os.as_str(), "wasip1" | "wasip2" | "wasi")
}

/// The `wasm` entry of an index. Preference when several: wasip2, wasip1, wasi.
pub(crate) fn choose_from_index(entries: &[Descriptor]) -> Result<&Descriptor> {
    for os in ["wasip2", "wasip1", "wasi"] {
        if let Some(d) = entries.iter().find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| is_wasm_platform(p) && p.os == os)
        }) {
            return Ok(d);
        }
    }
    // An index of one artifact without a platform (as some tools write) is that artifact.
    if let [only] = entries {
        if only.platform.is_none() {
            return Ok(only);
        }
    }
    let found: Vec<String> = entries
        .iter()
        .map(|d| match &d.platform {
            Some(p) => format!("{}/{}", p.os, p.architecture),
            None => format!("{} (no platform)", d.media_type),
        })
        .collect();
    Err(RegistryError::UnknownLayout {
        found: format!(
            "an index with no wasm entry (platforms: {})",
            if found.is_empty() {
                "none".into()
            } else {
                found.join(", ")
            }
        ),
    })
}

/// What a pull must fetch and how to turn it into a skiff image.
#[derive(Debug)]
pub(crate) enum Plan {
    /// Stored as is.
    Cncf { layer: Descriptor },
    /// One wasm layer among several (Spin) or of a runwasi image.
    WasmLayer {
        layout: Layout,
        layer: Descriptor,
        component: Option<String>,
    },
    /// Tar layers, the .wasm inside (named by the entrypoint).
    Compat { layers: Vec<Descriptor> },
}

fn found(m: &Manifest) -> String {
    let layers: Vec<&str> = m.layers.iter().map(|l| l.media_type.as_str()).collect();
    format!(
        "config {}, layers [{}]",
        m.config.media_type,
        if layers.is_empty() {
            "none".into()
        } else {
            layers.join(", ")
        }
    )
}

/// Recognise the layout. For Spin, `config` is the app's locked config (the config blob),
/// which names each component's wasm layer; `component` picks one when there are several.
pub(crate) fn plan(
    m: &Manifest,
    spin_config: Option<&[u8]>,
    component: Option<&str>,
) -> Result<Plan> {
    let cm = m.config.media_type.as_str();
    if cm == media::WASM_CONFIG {
        return match m.layers.as_slice() {
            [l] if l.media_type == media::WASM_LAYER => Ok(Plan::Cncf { layer: l.clone() }),
            _ => Err(RegistryError::UnknownLayout {
                found: format!(
                    "a Wasm config but not exactly one application/wasm layer: {}",
                    found(m)
                ),
            }),
        };
    }
    if cm == media::SPIN_CONFIG {
        let wasm: Vec<&Descriptor> = m
            .layers
            .iter()
            .filter(|l| l.media_type == media::SPIN_WASM_LAYER)
            .collect();
        let (layer, id) = spin_component(&wasm, spin_config, component)?;
        return Ok(Plan::WasmLayer {
            layout: Layout::Spin,
            layer: layer.clone(),
            component: id,
        });
    }
    let runwasi: Vec<&Descriptor> = m
        .layers
        .iter()
        .filter(|l| {
            l.media_type == media::RUNWASI_COMPONENT_LAYER
                || l.media_type == media::RUNWASI_MODULE_LAYER
        })
        .collect();
    if !runwasi.is_empty() {
        let (layer, id) = pick_by_title(&runwasi, component, "runwasi image")?;
        return Ok(Plan::WasmLayer {
            layout: Layout::Runwasi,
            layer: layer.clone(),
            component: id,
        });
    }
    let is_tar = |l: &Descriptor| {
        [
            media::OCI_LAYER_TAR,
            media::OCI_LAYER_TAR_GZIP,
            media::DOCKER_LAYER_TAR_GZIP,
        ]
        .contains(&l.media_type.as_str())
    };
    if (cm == media::OCI_CONFIG || cm == media::DOCKER_CONFIG)
        && !m.layers.is_empty()
        && m.layers.iter().all(is_tar)
    {
        return Ok(Plan::Compat {
            layers: m.layers.clone(),
        });
    }
    Err(RegistryError::UnknownLayout { found: found(m) })
}

/// Spin's locked app names each component's source by the digest of its wasm layer.
fn spin_component<'a>(
    wasm: &[&'a Descriptor],
    config: Option<&[u8]>,
    want: Option<&str>,
) -> Result<(&'a Descriptor, Option<String>)> {
    let app: Value = config
        .and_then(|c| serde_json::from_slice(c).ok())
        .unwrap_or(Value::Null);
    let mut components: Vec<(String, Digest)> = Vec::new();
    for c in app
        .get("components")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = c
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let digest = c
            .pointer("/source/content/digest")
            .and_then(Value::as_str)
            .and_then(|d| d.parse::<Digest>().ok());
        if let Some(digest) = digest.filter(|d| wasm.iter().any(|l| l.digest == *d)) {
            if !id.is_empty() {
                components.push((id, digest));
            }
        }
    }
    let by_digest = |d: &Digest| wasm.iter().copied().find(|l| l.digest == *d);
    if components.is_empty() {
        // No readable component table: fall back to the layers themselves.
        return pick_by_title(wasm, want, "Spin app");
    }
    let chosen = match want {
        Some(w) => components.iter().find(|(id, _)| id == w).ok_or_else(|| {
            RegistryError::Choose(format!(
                "the Spin app has no component {w:?}; it has: {}",
                names(&components)
            ))
        })?,
        None if components.len() == 1 => &components[0],
        None => {
            return Err(RegistryError::Choose(format!(
                "the Spin app has {} components: {}; choose one with --component NAME",
                components.len(),
                names(&components)
            )))
        }
    };
    let layer = by_digest(&chosen.1).expect("filtered above");
    Ok((layer, Some(chosen.0.clone())))
}

fn names(c: &[(String, Digest)]) -> String {
    c.iter()
        .map(|(id, _)| id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One layer of several, chosen by its `org.opencontainers.image.title` annotation.
fn pick_by_title<'a>(
    layers: &[&'a Descriptor],
    want: Option<&str>,
    what: &str,
) -> Result<(&'a Descriptor, Option<String>)> {
    let title = |l: &Descriptor| l.annotations.get(OCI_TITLE).cloned();
    match (layers, want) {
        ([], _) => Err(RegistryError::UnknownLayout {
            found: format!("a {what} with no wasm layer"),
        }),
        ([only], None) => Ok((only, title(only))),
        (_, Some(w)) => layers
            .iter()
            .find(|l| title(l).as_deref() == Some(w))
            .map(|l| (*l, Some(w.to_string())))
            .ok_or_else(|| RegistryError::Choose(format!("the {what} has no component {w:?}"))),
        (_, None) => {
            let list: Vec<String> = layers
                .iter()
                .map(|l| title(l).unwrap_or_else(|| l.digest.to_string()))
                .collect();
            Err(RegistryError::Choose(format!(
                "the {what} has {} wasm layers: {}; choose one with --component NAME",
                layers.len(),
                list.join(", ")
            )))
        }
    }
}

/// skiff's own config and manifest for a wasm layer found in another layout. The config is
/// derived from the binary (`os`, `component`), the manifest records where it came from.
pub(crate) fn normalise(
    wasm: &[u8],
    layer_digest: &Digest,
    created: Option<&str>,
    layout: Layout,
    source_manifest: &Digest,
    component: Option<&str>,
) -> Result<(Vec<u8>, Vec<u8>)> {
    let info = skiff_wasm::inspect(wasm).map_err(|e| {
        RegistryError::Manifest(format!(
            "the {layout} image's wasm layer {layer_digest} is not usable WebAssembly: {e}"
        ))
    })?;
    let is_component = matches!(
        info.kind,
        skiff_wasm::Kind::P2Command
            | skiff_wasm::Kind::HttpHandler
            | skiff_wasm::Kind::P3Component
            | skiff_wasm::Kind::ComponentLibrary
    );
    let config = WasmConfig {
        created: created.unwrap_or("1970-01-01T00:00:00Z").to_string(),
        author: None,
        architecture: skiff_image::model::ARCHITECTURE.into(),
        os: if is_component { "wasip2" } else { "wasip1" }.into(),
        layer_digests: vec![layer_digest.clone()],
        component: is_component.then_some(Component {
            exports: info.exports,
            imports: info.imports,
            target: None,
        }),
    };
    let config_bytes = to_canonical_json(&config);
    let mut annotations = Annotations::new();
    annotations.insert(SOURCE_LAYOUT.into(), layout.to_string());
    annotations.insert(SOURCE_MANIFEST.into(), source_manifest.to_string());
    if let Some(c) = component {
        annotations.insert(SOURCE_COMPONENT.into(), c.to_string());
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_string()),
        artifact_type: None,
        config: Descriptor::of(media::WASM_CONFIG, &config_bytes),
        layers: vec![Descriptor::new(
            media::WASM_LAYER,
            layer_digest.clone(),
            wasm.len() as u64,
        )],
        annotations,
    };
    Ok((config_bytes, to_canonical_json(&manifest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    fn d(mt: &str, digest_byte: char) -> Descriptor {
        let digest = Digest::from_hex(&digest_byte.to_string().repeat(64)).unwrap();
        Descriptor::new(mt, digest, 1)
    }

    fn m(config: &str, layers: Vec<Descriptor>) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: None,
            artifact_type: None,
            config: d(config, '0'),
            layers,
            annotations: Annotations::new(),
        }
    }

    #[test]
    fn unknown_layouts_say_what_was_found() {
        let err = plan(
            &m("application/x-foo", vec![d("application/x-bar", 'a')]),
            None,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("application/x-foo") && err.contains("application/x-bar"),
            "{err}"
        );
    }

    #[test]
    fn spin_with_several_components_asks_which() {
        let layers = vec![
            d(media::SPIN_WASM_LAYER, 'a'),
            d(media::SPIN_WASM_LAYER, 'b'),
        ];
        let cfg = json!({"components": [
            {"id": "api", "source": {"content": {"digest": layers[0].digest.to_string()}}},
            {"id": "web", "source": {"content": {"digest": layers[1].digest.to_string()}}},
        ]})
        .to_string();
        let man = m(media::SPIN_CONFIG, layers.clone());
        let err = plan(&man, Some(cfg.as_bytes()), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("api, web") && err.contains("--component"),
            "{err}"
        );
        match plan(&man, Some(cfg.as_bytes()), Some("web")).unwrap() {
            Plan::WasmLayer {
                layer, component, ..
            } => {
                assert_eq!(layer, layers[1]);
                assert_eq!(component.as_deref(), Some("web"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn index_picks_the_wasm_entry() {
        let mut linux = d(media::OCI_MANIFEST, 'a');
        linux.platform = Some(Platform {
            architecture: "amd64".into(),
            os: "linux".into(),
            variant: None,
        });
        let mut wasm = d(media::OCI_MANIFEST, 'b');
        wasm.platform = Some(Platform {
            architecture: "wasm".into(),
            os: "wasip1".into(),
            variant: None,
        });
        assert_eq!(
            choose_from_index(&[linux.clone(), wasm.clone()]).unwrap(),
            &wasm
        );
        let err = choose_from_index(&[linux]).unwrap_err().to_string();
        assert!(err.contains("linux/amd64"), "{err}");
    }
}
