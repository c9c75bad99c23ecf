//! A pulled Docker compat image (`skiff_registry::fuzzing::compat`): the config's entrypoint, the
//! .wasm taken out of (possibly gzipped) tar layers, then normalised. Input:
//! `CONFIG SEP LAYER (SEP LAYER)*` with SEP = `\n--layer--\n`.
#![no_main]
use libfuzzer_sys::fuzz_target;

const SEP: &[u8] = b"\n--layer--\n";

fuzz_target!(|data: &[u8]| {
    let mut parts: Vec<&[u8]> = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(SEP.len()).position(|w| w == SEP) {
        parts.push(&rest[..i]);
        rest = &rest[i + SEP.len()..];
    }
    parts.push(rest);
    let (config, layers) = parts.split_first().expect("at least one part");
    let _ = skiff_registry::fuzzing::compat(config, layers);
});
