//! Every Wasm image layout in use, recognised from its media types, and normalised into skiff's
//! own (the CNCF Wasm layout): config `application/vnd.wasm.config.v0+json`, one
//! `application/wasm` layer. The mapping is documented in docs/registry.md.

use crate::error::{RegistryError, Result};
use crate::spin_files::SpinFile;
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
    /// `spin registry push`: the locked app as the config (older) or as a layer (current).
    Spin,
    /// runwasi's component/module layers.
    Runwasi,
    /// Docker's compat layout: an ordinary image for platform wasi/wasm, the .wasm in a tar layer.
    Compat,
    /// Any other manifest whose one runnable layer is `application/wasm`, whatever its config:
    /// OCI 1.1 artifacts (`artifactType` + the empty config), `oras push`'s defaults.
    Artifact,
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layout::Cncf => "cncf",
            Layout::Spin => "spin",
            Layout::Runwasi => "runwasi",
            Layout::Compat => "compat",
            Layout::Artifact => "artifact",
        })
    }
}

/// An OS and architecture a Wasm image may be published for in an index.
/// Case aside: Spin's config says `Wasip1`.
pub(crate) fn is_wasm_platform(p: &Platform) -> bool {
    p.architecture.eq_ignore_ascii_case("wasm")
        && ["wasip1", "wasip2", "wasi"]
            .iter()
            .any(|os| p.os.eq_ignore_ascii_case(os))
}

/// The `wasm` entry of an index. Preference when several: wasip2, wasip1, wasi.
pub(crate) fn choose_from_index(entries: &[Descriptor]) -> Result<&Descriptor> {
    for os in ["wasip2", "wasip1", "wasi"] {
        if let Some(d) = entries.iter().find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| is_wasm_platform(p) && p.os.eq_ignore_ascii_case(os))
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
    let found: Vec<String> = entries.iter().map(platform_name).collect();
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

/// The platform chosen from an index and those it held, for the pull to say which it took:
/// `wasip1/wasm, of linux/amd64, wasip1/wasm`.
pub(crate) fn describe_choice(chosen: &Descriptor, entries: &[Descriptor]) -> String {
    let all: Vec<String> = entries.iter().map(platform_name).collect();
    format!("{}, of {}", platform_name(chosen), all.join(", "))
}

/// An index entry as the user knows it: `linux/amd64`.
fn platform_name(d: &Descriptor) -> String {
    match &d.platform {
        Some(p) => format!("{}/{}", p.os, p.architecture),
        None => format!("{} (no platform)", d.media_type),
    }
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
        /// The chosen Spin component's files, to fetch and keep as data layers.
        files: Vec<SpinFile>,
    },
    /// Tar layers, the .wasm inside (named by the entrypoint).
    Compat { layers: Vec<Descriptor> },
}

/// What a manifest holds, as an error names it: its artifactType, config and layer media types.
fn found(m: &Manifest) -> String {
    let layers: Vec<&str> = m.layers.iter().map(|l| l.media_type.as_str()).collect();
    format!(
        "artifactType {}, config {}, layers [{}]",
        m.artifact_type.as_deref().unwrap_or("none"),
        m.config.media_type,
        if layers.is_empty() {
            "none".into()
        } else {
            layers.join(", ")
        }
    )
}

/// The descriptor of a Spin app's locked app: the config (Spin before 3.x) or, in current Spin's
/// form, the layer of that media type under an ordinary OCI image config.
pub(crate) fn spin_locked_app(m: &Manifest) -> Option<&Descriptor> {
    if m.config.media_type == media::SPIN_CONFIG {
        return Some(&m.config);
    }
    m.layers.iter().find(|l| l.media_type == media::SPIN_CONFIG)
}

/// Recognise the layout. For Spin, `spin_config` is the app's locked app (see
/// [`spin_locked_app`]), which names each component's wasm layer; `component` picks one when
/// there are several.
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
    if spin_locked_app(m).is_some() {
        // Spin reads wkg's `application/wasm` layers as well as its own.
        let wasm: Vec<&Descriptor> = m
            .layers
            .iter()
            .filter(|l| l.media_type == media::SPIN_WASM_LAYER || l.media_type == media::WASM_LAYER)
            .collect();
        let (layer, id, files) = spin_component(m, &wasm, spin_config, component)?;
        return Ok(Plan::WasmLayer {
            layout: Layout::Spin,
            layer: layer.clone(),
            component: id,
            files,
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
            files: Vec::new(),
        });
    }
    // An `application/wasm` layer runs whatever the config says: OCI 1.1 artifacts (the empty
    // config under `artifactType`), oras's default config, a tool's own config type.
    let wasm: Vec<&Descriptor> = m
        .layers
        .iter()
        .filter(|l| l.media_type == media::WASM_LAYER)
        .collect();
    if !wasm.is_empty() {
        let (layer, id) = pick_by_title(&wasm, component, "artifact")?;
        return Ok(Plan::WasmLayer {
            layout: Layout::Artifact,
            layer: layer.clone(),
            component: id,
            files: Vec::new(),
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

/// Spin's locked app names each component's source by the digest of its wasm layer, and its
/// files (see [`crate::spin_files`]).
fn spin_component<'a>(
    m: &Manifest,
    wasm: &[&'a Descriptor],
    config: Option<&[u8]>,
    want: Option<&str>,
) -> Result<(&'a Descriptor, Option<String>, Vec<SpinFile>)> {
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
        let (layer, id) = pick_by_title(wasm, want, "Spin app")?;
        return Ok((layer, id, Vec::new()));
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
            // What Spin runs is what a trigger names; a component no trigger names is only
            // composed into others. One triggered component is the app.
            let triggers = triggers(&app);
            let triggered: Vec<&(String, Digest)> = components
                .iter()
                .filter(|(id, _)| triggers.iter().any(|(c, _)| c == id))
                .collect();
            match triggered.as_slice() {
                [one] => *one,
                _ => {
                    let list: Vec<String> = components
                        .iter()
                        .map(|(id, _)| match triggers.iter().find(|(c, _)| c == id) {
                            Some((_, how)) => format!("{id} ({how})"),
                            None => id.clone(),
                        })
                        .collect();
                    return Err(RegistryError::Choose(format!(
                        "the Spin app has {} components: {}; skiff runs one: choose it with \
                         --component NAME",
                        components.len(),
                        list.join(", ")
                    )));
                }
            }
        }
    };
    let layer = by_digest(&chosen.1).expect("filtered above");
    let files = match app
        .get("components")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("id") == Some(&Value::from(chosen.0.as_str())))
        }) {
        Some(c) => crate::spin_files::files(m, c, &chosen.0)?,
        None => Vec::new(),
    };
    Ok((layer, Some(chosen.0.clone()), files))
}

/// Each trigger's component and how it is triggered (`http /hello`), from the locked app.
fn triggers(app: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for t in app
        .get("triggers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(component) = t
            .pointer("/trigger_config/component")
            .and_then(Value::as_str)
        else {
            continue;
        };
        let kind = t.get("trigger_type").and_then(Value::as_str).unwrap_or("?");
        let how = match t.pointer("/trigger_config/route").and_then(Value::as_str) {
            Some(route) => format!("{kind} {route}"),
            None => kind.to_string(),
        };
        out.push((component.to_string(), how));
    }
    out
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

/// Where a normalised image came from: the layout, its manifest, the component chosen and that
/// component's files (data layers, titled with their paths).
#[derive(Clone, Copy)]
pub(crate) struct Source<'a> {
    pub layout: Layout,
    pub manifest: &'a Digest,
    pub component: Option<&'a str>,
    pub files: &'a [Descriptor],
}

/// skiff's own config and manifest for a wasm layer found in another layout. The config is
/// derived from the binary (`os`, `component`), the manifest records where it came from and the
/// source's `defaults` (args, env).
pub(crate) fn normalise(
    wasm: &[u8],
    layer_digest: &Digest,
    created: Option<&str>,
    source: &Source<'_>,
    defaults: &skiff_image::annotations::Defaults,
) -> Result<(Vec<u8>, Vec<u8>)> {
    let Source {
        layout,
        manifest: source_manifest,
        component,
        files,
    } = *source;
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
        layer_digests: std::iter::once(layer_digest.clone())
            .chain(files.iter().map(|f| f.digest.clone()))
            .collect(),
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
    // What the source layout said about running it (a compat image's Cmd and Env).
    defaults.to_annotations(&mut annotations);
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_string()),
        artifact_type: None,
        config: Descriptor::of(media::WASM_CONFIG, &config_bytes),
        layers: std::iter::once(Descriptor::new(
            media::WASM_LAYER,
            layer_digest.clone(),
            wasm.len() as u64,
        ))
        .chain(files.iter().cloned())
        .collect(),
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
