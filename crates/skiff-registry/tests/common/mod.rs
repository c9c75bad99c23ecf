//! Test harness: a real OCI registry (Debian's `docker-registry`, CNCF distribution) on a random
//! loopback port with temp storage, optionally behind htpasswd auth; curl as "another client";
//! and a tiny HTTP server that misbehaves on purpose, for faults a real registry will not make.
#![allow(dead_code)]

pub mod cutting_proxy;
pub mod faulty;
mod server;
pub mod token;

#[allow(unused_imports)] // each test binary uses its own subset
pub use server::{sha256, skopeo, skopeo_copy_to_layout, skopeo_raw, Curl, TestRegistry};

use std::io::Read;
use std::path::Path;

pub fn guest(name: &str) -> Vec<u8> {
    let p = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("../../guests/wasm")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}; run guests/build.sh", p.display()))
}

pub fn read_to_vec(mut r: impl Read) -> Vec<u8> {
    let mut v = Vec::new();
    r.read_to_end(&mut v).unwrap();
    v
}

/// Pull `reference` with a default client into a fresh store.
pub async fn pull(
    reference: &str,
    component: Option<&str>,
) -> (
    tempfile::TempDir,
    skiff_registry::DirStore,
    Result<skiff_registry::Pulled, skiff_registry::RegistryError>,
) {
    use skiff_registry::{DirStore, PullRequest, Registry, RegistryConfig};
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::new(dir.path());
    let r = Registry::new(RegistryConfig::default())
        .pull(PullRequest {
            reference,
            store: &store,
            component,
            policy: None,
        })
        .await;
    (dir, store, r)
}

pub mod images;
pub mod shipped;
