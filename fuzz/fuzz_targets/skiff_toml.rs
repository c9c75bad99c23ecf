//! `skiff.toml` (`skiff build`): parse and validate. Round trip: the defaults it gives an image,
//! written as annotations, read back the same (what a pull of that image sees).
#![no_main]
use libfuzzer_sys::fuzz_target;
use skiff_image::annotations::Defaults;
use skiff_image::skiff_toml::SkiffToml;
use std::collections::BTreeMap;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(t) = SkiffToml::parse(text, Path::new("skiff.toml")) else {
        return;
    };
    let _ = t.reference();
    let defaults = t.defaults();
    let mut annotations = BTreeMap::new();
    defaults.to_annotations(&mut annotations);
    let back = Defaults::from_annotations(&annotations)
        .unwrap_or_else(|e| panic!("annotations written from {text:?} do not read back: {e}"));
    assert_eq!(back, defaults, "{text:?}");
});
