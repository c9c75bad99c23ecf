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
    /// In the file's order (a later `-e` style override keeps a name where it first appeared).
    #[serde(default, deserialize_with = "in_file_order")]
    pub env: Vec<(String, String)>,
    /// Files of `K=V` lines, relative to the compose file; `env` wins over them.
    #[serde(default)]
    pub env_file: Vec<String>,
    #[serde(default)]
    pub volumes: Vec<String>,
    #[serde(default)]
    pub network: bool,
    #[serde(default, deserialize_with = "number_or_text")]
    pub memory: Option<String>,
    #[serde(default, deserialize_with = "number_or_text")]
    pub max_open: Option<String>,
    #[serde(default, deserialize_with = "number_or_text")]
    pub timeout: Option<String>,
    pub restart: Option<String>,
    pub route: Option<String>,
    /// HTTP apps: outbound HTTP the guest may make (`scheme://host[:port]` patterns).
    #[serde(default)]
    pub allow_outbound: Vec<String>,
    /// HTTP apps: `skiff serve`'s limits of the same names (with `_` for `-`).
    #[serde(default, deserialize_with = "number_or_text")]
    pub cpu_time: Option<String>,
    #[serde(default, deserialize_with = "number_or_text")]
    pub max_concurrent: Option<String>,
    #[serde(default, deserialize_with = "number_or_text")]
    pub queue_timeout: Option<String>,
    #[serde(default, deserialize_with = "number_or_text")]
    pub max_body: Option<String>,
    #[serde(default, deserialize_with = "number_or_text")]
    pub max_outbound: Option<String>,
    #[serde(default, deserialize_with = "number_or_text")]
    pub max_app_outbound: Option<String>,
    #[serde(default, deserialize_with = "number_or_text")]
    pub reuse: Option<String>,
}

/// A TOML table as its pairs, in the order the file lists them (a map would sort them).
fn in_file_order<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<(String, String)>, D::Error> {
    struct Pairs;
    impl<'de> serde::de::Visitor<'de> for Pairs {
        type Value = Vec<(String, String)>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a table of NAME = \"value\"")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(pair) = map.next_entry::<String, String>()? {
                out.push(pair);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Pairs)
}

/// A limit as the flag takes it: `"64m"`, `"30s"`, or a bare number (`max_concurrent = 20`).
fn number_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Value {
        Text(String),
        Number(u64),
    }
    Ok(Option::<Value>::deserialize(d)?.map(|v| match v {
        Value::Text(s) => s,
        Value::Number(n) => n.to_string(),
    }))
}

impl ComposeFile {
    pub fn parse(text: &str) -> Result<ComposeFile, toml::de::Error> {
        toml::from_str(text)
    }
}
