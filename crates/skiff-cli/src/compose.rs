//! The compose file of `skiff up`: `[workloads.NAME]` tables (format in docs/daemon.md).
//!
//! Kept apart from `cmd/up.rs` and free of the CLI's other modules (std, serde and toml only) so
//! that the fuzz target `compose` (fuzz/, see bench/fuzz.sh) compiles this very file.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The file: `[workloads.NAME]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComposeFile {
    #[serde(default)]
    pub workloads: BTreeMap<String, Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// A .wasm file, relative to the compose file, or an image in the store.
    pub image: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub volumes: Vec<String>,
    #[serde(default)]
    pub network: bool,
    pub memory: Option<String>,
    pub timeout: Option<String>,
    pub restart: Option<String>,
    pub route: Option<String>,
    /// HTTP apps: outbound HTTP the guest may make (`scheme://host[:port]` patterns).
    #[serde(default)]
    pub allow_outbound: Vec<String>,
}

impl ComposeFile {
    pub fn parse(text: &str) -> Result<ComposeFile, toml::de::Error> {
        toml::from_str(text)
    }
}
