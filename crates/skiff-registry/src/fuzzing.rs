//! What a pull does with the bytes a registry sent, without the network: the entry points of the
//! fuzz targets in `fuzz/` (see bench/fuzz.sh). Not part of skiff's API; each function runs the
//! same code a pull runs, in the same order, and stops where a pull would start fetching.

use crate::error::Result;
use crate::{compat, layout, pull};
use skiff_image::media;
use skiff_image::model::{Descriptor, Index, Manifest};
use skiff_store::Digest;
use std::io::Read;

/// A manifest body as `Registry::pull` reads it: kind from `Content-Type` or the body, an index's
/// wasm entry chosen, else the manifest parsed and its layout planned.
pub fn manifest(
    content_type: Option<&str>,
    body: &[u8],
    spin_config: Option<&[u8]>,
    component: Option<&str>,
) -> Result<()> {
    let kind = crate::manifest::kind_of(content_type, body);
    if kind == media::OCI_INDEX || kind == media::DOCKER_LIST {
        let index: Index = pull::parse(body, "image index")?;
        layout::choose_from_index(&index.manifests)?;
        return Ok(());
    }
    let m: Manifest = pull::parse(body, "image manifest")?;
    layout::plan(&m, spin_config, component)?;
    Ok(())
}

/// A compat image: its config's entrypoint, that file taken out of the (possibly gzipped) tar
/// layers, and the result normalised into skiff's layout.
pub fn compat(config: &[u8], layers: &[&[u8]]) -> Result<(Vec<u8>, Vec<u8>)> {
    let entry = compat::entrypoint(config)?;
    let descriptors: Vec<Descriptor> = layers
        .iter()
        .map(|l| Descriptor::of(media::OCI_LAYER_TAR, l))
        .collect();
    let wasm = compat::extract(&descriptors, entry.as_deref(), |i| {
        Ok(Box::new(std::io::Cursor::new(layers[i].to_vec())) as Box<dyn Read>)
    })?;
    let digest = Digest::of(&wasm);
    layout::normalise(
        &wasm,
        &digest,
        pull::created(config).as_deref(),
        &layout::Source {
            layout: layout::Layout::Compat,
            manifest: &digest,
            component: None,
            files: &[],
        },
        &compat::defaults(config),
    )
}
