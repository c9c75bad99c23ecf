//! A pulled manifest or index, as `skiff pull` reads it (`skiff_registry::fuzzing::manifest`):
//! kind detection, an index's wasm entry, the layout plan (CNCF, Spin with its config, runwasi,
//! compat). Input: one byte choosing the `Content-Type` and whether a component is asked for,
//! then `BODY \0 SPIN_CONFIG`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use skiff_image::media;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let content_type = match sel & 7 {
        0 => None,
        1 => Some(media::OCI_MANIFEST),
        2 => Some(media::OCI_INDEX),
        3 => Some(media::DOCKER_MANIFEST),
        4 => Some(media::DOCKER_LIST),
        5 => Some("application/json; charset=utf-8"),
        6 => Some("text/plain"),
        _ => Some(" application/vnd.oci.image.index.v1+json ;x"),
    };
    let component = (sel & 8 != 0).then_some("app");
    let (body, spin) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let _ = skiff_registry::fuzzing::manifest(content_type, body, spin, component);
});
