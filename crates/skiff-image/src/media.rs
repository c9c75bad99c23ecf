//! Media types skiff writes and reads. Set explicitly everywhere: oci-client's own wasm config
//! constant (`application/vnd.wasm.config.v1+json`) names an older layout.

/// skiff's image: the CNCF TAG-Runtime Wasm artifact config.
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// Its one layer: the Wasm binary itself.
pub const WASM_LAYER: &str = "application/wasm";

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// What a pull sends as `Accept`: without the OCI types, Debian's registry answers 404.
pub const MANIFEST_ACCEPT: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// Spin (`spin registry push`): the locked app, as the config (Spin before 3.x) or as a layer
/// under an ordinary image config (current Spin, the config labelled with its digest).
pub const SPIN_CONFIG: &str = "application/vnd.fermyon.spin.application.v1+config";
pub const SPIN_WASM_LAYER: &str = "application/vnd.wasm.content.layer.v1+wasm";
/// A file of a Spin component, one layer each; the locked app names it by digest with its guest
/// path. skiff keeps these layers, titled with that path, after its own wasm layer.
pub const DATA_LAYER: &str = "application/vnd.wasm.content.layer.v1+data";
/// What `spin registry push` writes instead of data layers when an app has over 500 files (or
/// `SPIN_OCI_ARCHIVE_LAYERS` is set): one tar+gzip of a component's files, which a pull unpacks
/// into data layers.
pub const SPIN_ARCHIVE_LAYER: &str = "application/vnd.wasm.content.bundle.v1.tar+gzip";

/// OCI 1.1's empty config (`{}`), which artifacts (`oras push`) carry under an `artifactType`.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// runwasi (`containerd-shim-wasm`'s OCI artifact layout).
pub const RUNWASI_COMPONENT_LAYER: &str =
    "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm";
pub const RUNWASI_MODULE_LAYER: &str = "application/vnd.bytecodealliance.wasm.module.layer.v0+wasm";

/// Docker's compat layout: an ordinary image.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_LAYER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
