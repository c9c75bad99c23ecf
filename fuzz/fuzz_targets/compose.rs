//! The compose file of `skiff up` (crates/skiff-cli/src/compose.rs, compiled here from the same
//! file: skiff-cli is a binary), and the size and duration syntax of its fields (units.rs).
#![no_main]
use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../crates/skiff-cli/src/compose.rs"]
mod compose;
#[allow(dead_code)]
#[path = "../../crates/skiff-cli/src/units.rs"]
mod units;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = compose::ComposeFile::parse(text) else {
        return;
    };
    for e in file.workloads.values() {
        if let Some(m) = &e.memory {
            let _ = units::parse_size(m);
        }
        if let Some(t) = &e.timeout {
            let _ = units::parse_duration(t);
        }
    }
});
