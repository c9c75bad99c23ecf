//! Images in the CNCF TAG-Runtime Wasm OCI artifact layout: an OCI image manifest whose config is
//! `application/vnd.wasm.config.v0+json` and whose one layer is the `application/wasm` binary.
//!
//! - [`reference`]: Docker's reference grammar and normalisation.
//! - [`model`]: the manifest, index and config types; [`media`]: the media types.
//! - [`annotations`]: skiff's defaults under the `dev.skiff.` prefix.
//! - [`skiff_toml`] and [`build`]: `skiff build`.
//! - [`image`]: reading and checking an image from the store.
//! - [`requests`]: requested capabilities against what the imports make possible.
//! - [`archive`]: OCI layout tars (`skiff save` / `skiff load`).
//! - [`compat`]: Docker's Wasm compat layout (what containerd 1.6 unpacks).
//!
//! See docs/images.md for the format and the choices made.

pub mod annotations;
pub mod archive;
pub mod build;
pub mod compat;
pub mod files;
pub mod image;
pub mod media;
pub mod model;
pub mod reference;
pub mod requests;
pub mod skiff_toml;

pub use image::{find, Image, ImageError};
pub use reference::{Reference, ReferenceError};
pub use skiff_store::{Digest, Store, StoreConfig};
