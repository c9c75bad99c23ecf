//! Kind detection and import/export reading (`skiff_wasm::inspect`): every .wasm a user runs,
//! builds or pulls goes through it before anything else.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = skiff_wasm::inspect(data) {
        // What `skiff inspect` and the image config print.
        let _ = info.kind.to_string();
        let _ = info.kind.advice();
    }
});
