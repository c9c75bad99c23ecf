//! The image models read from the store, archives and registries: a manifest
//! (`image::parse_manifest`), then a config checked against it (`image::parse_config`), an index
//! (`model::Index`) and skiff's annotations (`Defaults::from_annotations`). The input is
//! `MANIFEST \0 CONFIG`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use skiff_image::annotations::Defaults;
use skiff_image::image::{parse_config, parse_manifest};
use skiff_image::model::Index;
use skiff_image::Digest;

fuzz_target!(|data: &[u8]| {
    let (manifest, config) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let digest: Digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
        .parse()
        .expect("a valid digest");
    if let Ok(m) = parse_manifest(&digest, manifest) {
        let _ = Defaults::from_annotations(&m.annotations);
        let _ = parse_config(&m, config);
    }
    if let Ok(index) = serde_json::from_slice::<Index>(manifest) {
        for d in &index.manifests {
            let _ = Defaults::from_annotations(&d.annotations);
        }
    }
});
