//! What a binary says about how it was made: the material of a bill of materials.
//!
//! - the `producers` custom sections (the tool-conventions format): languages, the tools that
//!   processed it (`rustc 1.95.0`, `clang 14`, `wit-component 0.240`), SDKs; every module of a
//!   component carries its own, so all are read, nested ones included;
//! - `cargo auditable`'s `.dep-v0` section: the Rust crates compiled in, as zlib-compressed JSON;
//! - the WASI (and other) interface packages a component imports and exports, with versions.
//!
//! A binary is untrusted input: the compressed dependency list is inflated to at most
//! [`MAX_DEP_LIST`] bytes and at most [`MAX_PACKAGES`] packages are read.

use crate::ParseError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::io::Read;
use wasmparser::{KnownCustom, Parser, Payload};

/// Largest inflated `.dep-v0` read (cargo auditable's own reader caps it at 8 MiB).
pub const MAX_DEP_LIST: u64 = 8 << 20;
/// Most packages read from a `.dep-v0` list.
pub const MAX_PACKAGES: usize = 100_000;

/// What the binary carries about its making.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// `producers` entries, deduplicated: (field, name, version), field being `language`,
    /// `processed-by` or `sdk`.
    pub producers: BTreeSet<Producer>,
    /// Crates from `cargo auditable`'s `.dep-v0`, in its order (dependencies are indices).
    pub crates: Vec<Crate>,
    /// Interface packages imported (`wasi:cli@0.2.6`), from component imports.
    pub imported_packages: BTreeSet<String>,
    pub exported_packages: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Producer {
    pub field: String,
    pub name: String,
    pub version: String,
}

/// One package of cargo auditable's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crate {
    pub name: String,
    pub version: String,
    /// `crates.io`, `local`, `git`, `registry`, …
    #[serde(default)]
    pub source: String,
    /// `runtime` (the default) or `build`.
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub dependencies: Vec<usize>,
    /// The crate the binary was built from.
    #[serde(default)]
    pub root: bool,
}

#[derive(Deserialize)]
struct DepList {
    packages: Vec<Crate>,
}

/// Read `bytes`' provenance. `info` gives the imports and exports already parsed.
pub fn provenance(bytes: &[u8], info: &crate::WasmInfo) -> Result<Provenance, ParseError> {
    let mut out = Provenance::default();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| ParseError::Malformed {
            offset: e.offset(),
            message: e.message().to_string(),
        })?;
        let Payload::CustomSection(section) = payload else {
            continue;
        };
        match section.as_known() {
            KnownCustom::Producers(reader) => {
                // A malformed producers section is skipped, not fatal: it is metadata.
                for field in reader.into_iter().flatten() {
                    for value in field.values.into_iter().flatten() {
                        out.producers.insert(Producer {
                            field: field.name.to_string(),
                            name: value.name.to_string(),
                            version: value.version.to_string(),
                        });
                    }
                }
            }
            _ if section.name() == ".dep-v0" && out.crates.is_empty() => {
                out.crates = dep_list(section.data())?;
            }
            _ => {}
        }
    }
    out.imported_packages = packages(&info.imports);
    out.exported_packages = packages(&info.exports);
    Ok(out)
}

/// `wasi:cli/environment@0.2.6` -> `wasi:cli@0.2.6`; core imports (`module::name`) and plain
/// names are not packages.
fn packages(names: &[String]) -> BTreeSet<String> {
    names
        .iter()
        .filter_map(|n| {
            let (path, version) = n.split_once('@')?;
            let (package, _) = path.split_once('/')?;
            package
                .contains(':')
                .then(|| format!("{package}@{version}"))
        })
        .collect()
}

fn dep_list(data: &[u8]) -> Result<Vec<Crate>, ParseError> {
    let bad =
        |why: String| ParseError::NotWasm(format!("its cargo auditable section (.dep-v0) {why}"));
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .take(MAX_DEP_LIST + 1)
        .read_to_end(&mut json)
        .map_err(|e| bad(format!("does not inflate: {e}")))?;
    if json.len() as u64 > MAX_DEP_LIST {
        return Err(bad(format!("inflates past {MAX_DEP_LIST} bytes")));
    }
    let list: DepList =
        serde_json::from_slice(&json).map_err(|e| bad(format!("is not its JSON: {e}")))?;
    if list.packages.len() > MAX_PACKAGES {
        return Err(bad(format!("lists more than {MAX_PACKAGES} packages")));
    }
    let n = list.packages.len();
    if list
        .packages
        .iter()
        .any(|p| p.dependencies.iter().any(|&d| d >= n))
    {
        return Err(bad("names a dependency index past its list".into()));
    }
    Ok(list.packages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_become_packages() {
        let names = vec![
            "wasi:cli/environment@0.2.6".to_string(),
            "wasi:cli/exit@0.2.6".to_string(),
            "wasi:http/types@0.2.12".to_string(),
            "wasi_snapshot_preview1::fd_write".to_string(),
            "run".to_string(),
        ];
        let p: Vec<String> = packages(&names).into_iter().collect();
        assert_eq!(p, ["wasi:cli@0.2.6", "wasi:http@0.2.12"]);
    }

    #[test]
    fn a_zlib_bomb_is_refused() {
        use std::io::Write;
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![b' '; 1 << 20];
        for _ in 0..9 {
            e.write_all(&zeros).unwrap();
        }
        let data = e.finish().unwrap();
        assert!(data.len() < 64 << 10);
        let err = dep_list(&data).unwrap_err().to_string();
        assert!(err.contains("inflates past"), "{err}");
    }
}
