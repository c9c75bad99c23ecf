//! A Spin component's `files`, as `spin registry push` writes them into the locked app: each
//! file is `{"digest": "sha256:…", "path": "static/index.html"}` (its `ContentRef` flattened
//! into the `ContentPath`), its bytes a layer `application/vnd.wasm.content.layer.v1+data`;
//! files of 128 bytes or fewer are inlined as well (`"inline"`, unpadded standard base64) and
//! pushed as no layer. Paths are relative to the guest's `/`. With over 500 layers Spin instead
//! pushes one tar+gzip layer per component (`…bundle.v1.tar+gzip`), which skiff refuses.

use crate::error::{RegistryError, Result};
use crate::store::BlobStore;
use base64::Engine;
use serde_json::Value;
use skiff_image::annotations::OCI_TITLE;
use skiff_image::media;
use skiff_image::model::{Descriptor, Manifest};
use skiff_store::Digest;
use std::collections::BTreeSet;
use std::io::Read;

/// A file of the chosen component, where its bytes are.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FileSource {
    /// A data layer of the manifest.
    Layer(Descriptor),
    /// Inlined into the locked app (digest-checked here).
    Inline(Vec<u8>),
    /// In one of the manifest's archive layers, by its digest (see [`unpack`]).
    Archived(Digest),
}

/// A file: its path under the guest's `/` (checked, normalised), and its bytes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SpinFile {
    pub path: String,
    pub source: FileSource,
}

impl SpinFile {
    /// The layer skiff's own manifest lists for it: the data layer, titled with the path.
    pub(crate) fn descriptor(&self) -> Descriptor {
        let mut d = match &self.source {
            FileSource::Layer(l) => Descriptor::new(media::DATA_LAYER, l.digest.clone(), l.size),
            FileSource::Inline(b) => Descriptor::of(media::DATA_LAYER, b),
            FileSource::Archived(_) => unreachable!("unpacked into a layer first"),
        };
        d.annotations.insert(OCI_TITLE.into(), self.path.clone());
        d
    }
}

/// The files of component `component` (a locked app's `components[]` entry), checked against
/// the manifest and skiff's limits before a byte of them is downloaded.
pub(crate) fn files(m: &Manifest, component: &Value, id: &str) -> Result<Vec<SpinFile>> {
    let bad =
        |why: String| RegistryError::Manifest(format!("the Spin app's component {id:?} has {why}"));
    let Some(entries) = component.get("files") else {
        return Ok(Vec::new());
    };
    let entries = entries
        .as_array()
        .ok_or_else(|| bad("a `files` that is not a list".into()))?;
    if entries.len() > skiff_image::files::MAX_FILES {
        return Err(bad(format!(
            "{} files; skiff mounts at most {}",
            entries.len(),
            skiff_image::files::MAX_FILES
        )));
    }
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let path = e
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("a file with no path: {e}")))?;
        let digest = match e.get("digest").and_then(Value::as_str) {
            Some(d) => Some(
                d.parse::<Digest>()
                    .map_err(|err| bad(format!("file {path:?} with digest {d:?}: {err}")))?,
            ),
            None => None,
        };
        let source = match (e.get("inline").and_then(Value::as_str), digest) {
            (Some(b64), digest) => {
                let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(b64.trim_end_matches('='))
                    .map_err(|err| bad(format!("file {path:?} inlined as bad base64: {err}")))?;
                if let Some(d) = digest.filter(|d| *d != Digest::of(&bytes)) {
                    return Err(bad(format!(
                        "file {path:?} inlined with bytes whose digest is not its {d}"
                    )));
                }
                FileSource::Inline(bytes)
            }
            (None, Some(d)) => match m
                .layers
                .iter()
                .find(|l| l.digest == d && l.media_type == media::DATA_LAYER)
            {
                Some(l) => FileSource::Layer(l.clone()),
                None if !archives(m).is_empty() => FileSource::Archived(d),
                None => {
                    return Err(bad(format!(
                        "file {path:?} in layer {d}, which the manifest does not list as a {} \
                         layer",
                        media::DATA_LAYER
                    )))
                }
            },
            (None, None) => {
                return Err(bad(format!(
                    "file {path:?} with neither a digest nor inline content"
                )))
            }
        };
        out.push((path, source));
    }
    // Archived files' sizes are known once unpacked, which is bounded on its own (`unpack`).
    let sizes = out.iter().map(|(p, s)| {
        let size = match s {
            FileSource::Layer(l) => l.size,
            FileSource::Inline(b) => b.len() as u64,
            FileSource::Archived(_) => 0,
        };
        (*p, size)
    });
    let paths =
        skiff_image::files::check(sizes).map_err(|e| bad(format!("files skiff refuses: {e}")))?;
    Ok(paths
        .into_iter()
        .zip(out)
        .map(|(path, (_, source))| SpinFile { path, source })
        .collect())
}

/// The manifest's archive layers (Spin's form past 500 files).
pub(crate) fn archives(m: &Manifest) -> Vec<Descriptor> {
    m.layers
        .iter()
        .filter(|l| l.media_type == media::SPIN_ARCHIVE_LAYER)
        .cloned()
        .collect()
}

/// Store the archived files `files` name, taken from the archive layers (already in the store),
/// and make each a `Layer` source. Regular files only; each is digested, and only those the
/// locked app names are kept. At most [`skiff_image::files::MAX_FILES_BYTES`] are read out of
/// the archives in all (a gzip bomb stops there); a file named but found in no archive is an
/// error.
pub(crate) fn unpack(
    store: &dyn BlobStore,
    archives: &[Descriptor],
    files: &mut [SpinFile],
) -> Result<()> {
    let wanted: BTreeSet<Digest> = files
        .iter()
        .filter_map(|f| match &f.source {
            FileSource::Archived(d) => Some(d.clone()),
            _ => None,
        })
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let limit = skiff_image::files::MAX_FILES_BYTES;
    let mut budget = limit;
    let err = |what: &Descriptor, e: std::io::Error| {
        RegistryError::Manifest(format!(
            "the Spin archive layer {} cannot be read as tar+gzip: {e}",
            what.digest
        ))
    };
    for a in archives {
        let raw = store
            .open(&a.digest)
            .map_err(|e| RegistryError::Store(format!("reading {}: {e}", a.digest)))?;
        // Headers and skipped entries count too: compat's bound on one layer's tar stream.
        let stream = flate2::read::GzDecoder::new(raw).take(crate::compat::MAX_LAYER);
        let mut archive = tar::Archive::new(stream);
        for entry in archive.entries().map_err(|e| err(a, e))? {
            let entry = entry.map_err(|e| err(a, e))?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let size = entry.size();
            if size > budget {
                return Err(RegistryError::TooLarge {
                    what: format!(
                        "the files unpacked from the Spin archive layer {}",
                        a.digest
                    ),
                    limit,
                });
            }
            budget -= size;
            let mut bytes = Vec::with_capacity(size as usize);
            entry
                .take(size)
                .read_to_end(&mut bytes)
                .map_err(|e| err(a, e))?;
            let digest = Digest::of(&bytes);
            if wanted.contains(&digest) {
                crate::pull::put(store, &bytes)?;
            }
        }
    }
    for f in files.iter_mut() {
        if let FileSource::Archived(d) = &f.source {
            let size = store.size(d).map_err(|_| {
                RegistryError::Manifest(format!(
                    "the Spin app's file {:?} ({d}) is in none of its archive layers",
                    f.path
                ))
            })?;
            f.source = FileSource::Layer(Descriptor::new(media::DATA_LAYER, d.clone(), size));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(layers: Vec<Descriptor>) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: None,
            artifact_type: None,
            config: Descriptor::of(media::OCI_CONFIG, b"{}"),
            layers,
            annotations: Default::default(),
        }
    }

    #[test]
    fn layers_and_inline_files_are_read_as_spin_writes_them() {
        let big = vec![b'x'; 200];
        let layer = Descriptor::of(media::DATA_LAYER, &big);
        let m = manifest(vec![layer.clone()]);
        let c = json!({"files": [
            {"digest": layer.digest.to_string(), "path": "static/big.txt"},
            {"inline": "aGk", "digest": Digest::of(b"hi").to_string(), "path": "./hi.txt"},
        ]});
        let f = files(&m, &c, "web").unwrap();
        assert_eq!(f[0].path, "static/big.txt");
        assert_eq!(f[0].source, FileSource::Layer(layer));
        assert_eq!(f[1].path, "hi.txt");
        assert_eq!(f[1].source, FileSource::Inline(b"hi".to_vec()));
    }

    #[test]
    fn hostile_files_are_refused_before_download() {
        let layer = Descriptor::of(media::DATA_LAYER, b"data");
        let m = manifest(vec![layer.clone()]);
        let one =
            |path: &str| json!({"files": [{"digest": layer.digest.to_string(), "path": path}]});
        for (c, says) in [
            (one("../../etc/passwd"), "`..`"),
            (one("/etc/passwd"), "absolute"),
            (
                json!({"files": [{"digest": Digest::of(b"other").to_string(), "path": "a"}]}),
                "does not list",
            ),
            (
                json!({"files": [{"inline": "aGk", "digest": Digest::of(b"no").to_string(), "path": "a"}]}),
                "digest is not",
            ),
        ] {
            let err = files(&m, &c, "web").unwrap_err().to_string();
            assert!(err.contains(says) && err.contains("\"web\""), "{err}");
        }
        let many: Vec<Value> = (0..100_000)
            .map(|i| json!({"digest": layer.digest.to_string(), "path": format!("f{i}")}))
            .collect();
        let err = files(&m, &json!({ "files": many }), "web")
            .unwrap_err()
            .to_string();
        assert!(err.contains("100000 files"), "{err}");
        let mut huge = layer.clone();
        huge.size = 10 << 30;
        let err = files(&manifest(vec![huge]), &one("big"), "web")
            .unwrap_err()
            .to_string();
        assert!(err.contains("larger than"), "{err}");
    }
}
