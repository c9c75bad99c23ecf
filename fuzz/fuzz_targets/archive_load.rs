//! `skiff load`: an OCI layout tar into the store (`archive::load`). One store per process, in a
//! temporary directory; a load that fails leaves nothing in it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use skiff_image::{Store, StoreConfig};
use std::sync::OnceLock;

struct Home {
    _dir: tempfile::TempDir,
    store: Store,
}

fn home() -> &'static Home {
    static HOME: OnceLock<Home> = OnceLock::new();
    HOME.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Store::open(StoreConfig {
            root: dir.path().to_path_buf(),
            // Well above what a fuzz input holds, so the store's own limit is not what stops it.
            max_blob_size: 64 << 20,
        })
        .expect("a store");
        Home { _dir: dir, store }
    })
}

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    let _ = skiff_image::archive::load(&home().store, &mut input);
});
