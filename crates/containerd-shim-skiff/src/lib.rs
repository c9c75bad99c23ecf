//! The shim's parts, shared with `skiff-oci` (the runc-compatible runtime): one reading of the
//! OCI spec into a guest plan (`spec`), one guest runner (`guest`, `http`), one way of starting
//! the container's process in the spec's network namespace (`process`).

pub mod containerd;
pub mod grpc;
pub mod guest;
pub mod http;
pub mod mount;
pub mod process;
pub mod service;
pub mod spec;
pub mod trust;
