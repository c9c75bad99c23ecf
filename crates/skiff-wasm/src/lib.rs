//! What a WebAssembly binary is, read from the binary alone: its [`Kind`], its imports and
//! exports, and the [`Capability`] classes those imports could use.
//!
//! This crate parses; it neither compiles nor runs. It sits below `skiff-engine` (which refuses to
//! run the wrong kind) and `skiff-image` (which writes imports and exports into an image config),
//! so that both agree on one answer. It names no wasmtime type.

mod capability;
mod kind;
mod proposal;
mod provenance;

pub use capability::{classify, Capability};
pub use kind::Kind;
pub use proposal::{left_off_proposal, Proposal};
pub use provenance::{provenance, Crate, Producer, Provenance, MAX_DEP_LIST, MAX_PACKAGES};

use serde::Serialize;
use std::collections::BTreeMap;
use wasmparser::{Encoding, Parser, Payload};

/// The shape of a binary as parsed.
#[derive(Debug, Clone, Serialize)]
pub struct WasmInfo {
    pub kind: Kind,
    /// Size in bytes.
    pub size: u64,
    /// The digest of the bytes: the key of the compile cache and of a layer.
    pub digest: skiff_store::Digest,
    /// Top-level imports: `module::name` for core modules, the fully qualified interface name
    /// (`wasi:cli/environment@0.2.6`) for components.
    pub imports: Vec<String>,
    /// Top-level export names.
    pub exports: Vec<String>,
    /// What the imports make possible, each capability with the imports that grant it.
    pub capabilities: BTreeMap<Capability, Vec<String>>,
    /// A core module's exported functions with their signatures: what `skiff run --invoke`
    /// can call. Empty for components.
    pub functions: Vec<Function>,
}

/// An exported function of a core module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Function {
    pub name: String,
    /// Value types as WAT spells them (`i32`, `f64`, `externref`).
    pub params: Vec<String>,
    pub results: Vec<String>,
}

impl std::fmt::Display for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = if self.name.is_empty() {
            "\"\""
        } else {
            &self.name
        };
        write!(f, "{name}({})", self.params.join(", "))?;
        match self.results.as_slice() {
            [] => Ok(()),
            [one] => write!(f, " -> {one}"),
            many => write!(f, " -> ({})", many.join(", ")),
        }
    }
}

/// Why a byte string could not be read as WebAssembly.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("the file is empty")]
    Empty,
    #[error("{0}")]
    NotWasm(String),
    #[error("the WebAssembly binary is malformed at byte offset {offset}: {message}")]
    Malformed { offset: usize, message: String },
}

/// Parse `bytes` and tell what they are.
pub fn inspect(bytes: &[u8]) -> Result<WasmInfo, ParseError> {
    if bytes.is_empty() {
        return Err(ParseError::Empty);
    }
    if !bytes.starts_with(b"\0asm") {
        return Err(ParseError::NotWasm(describe_non_wasm(bytes)));
    }
    let mut encoding = None;
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    // For core modules: every type (None for non-function types), the type of every function
    // (imported ones first, as the function index space orders them), and exported functions.
    let mut types: Vec<Option<wasmparser::FuncType>> = Vec::new();
    let mut func_types: Vec<u32> = Vec::new();
    let mut func_exports: Vec<(String, u32)> = Vec::new();
    // Nested modules and components have their own imports; only the outermost ones are the
    // binary's contract with its host.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| ParseError::Malformed {
            offset: e.offset(),
            message: e.message().to_string(),
        })?;
        match payload {
            Payload::Version { encoding: enc, .. } => {
                depth += 1;
                if depth == 1 {
                    encoding = Some(enc);
                }
            }
            Payload::End(_) => depth -= 1,
            _ if depth != 1 => {}
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(malformed)?;
                    imports.push(format!("{}::{}", import.module, import.name));
                    if let wasmparser::TypeRef::Func(t) | wasmparser::TypeRef::FuncExact(t) =
                        import.ty
                    {
                        func_types.push(t);
                    }
                }
            }
            Payload::TypeSection(reader) => {
                for group in reader {
                    for sub in group.map_err(malformed)?.into_types() {
                        types.push(match sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => Some(f),
                            _ => None,
                        });
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                for t in reader {
                    func_types.push(t.map_err(malformed)?);
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(malformed)?;
                    if export.kind == wasmparser::ExternalKind::Func {
                        func_exports.push((export.name.to_string(), export.index));
                    }
                    exports.push(export.name.to_string());
                }
            }
            Payload::ComponentImportSection(reader) => {
                for import in reader {
                    imports.push(import.map_err(malformed)?.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) => {
                for export in reader {
                    exports.push(export.map_err(malformed)?.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    let kind = match encoding {
        Some(Encoding::Module) => Kind::of_module(&exports),
        Some(Encoding::Component) => Kind::of_component(&exports),
        None => return Err(ParseError::NotWasm("no WebAssembly header".into())),
    };
    let mut capabilities: BTreeMap<Capability, Vec<String>> = BTreeMap::new();
    for import in &imports {
        if let Some(cap) = classify(import) {
            capabilities.entry(cap).or_default().push(import.clone());
        }
    }
    let functions = func_exports
        .into_iter()
        .filter_map(|(name, index)| {
            let t = func_types.get(index as usize)?;
            let ty = types.get(*t as usize)?.as_ref()?;
            let spell = |v: &[wasmparser::ValType]| v.iter().map(|v| v.to_string()).collect();
            Some(Function {
                name,
                params: spell(ty.params()),
                results: spell(ty.results()),
            })
        })
        .collect();
    Ok(WasmInfo {
        kind,
        size: bytes.len() as u64,
        digest: skiff_store::Digest::of(bytes),
        imports,
        exports,
        capabilities,
        functions,
    })
}

fn malformed(e: wasmparser::BinaryReaderError) -> ParseError {
    ParseError::Malformed {
        offset: e.offset(),
        message: e.message().to_string(),
    }
}

/// Say what a non-Wasm file looks like, so the user sees "a text file" rather than a bad magic.
fn describe_non_wasm(bytes: &[u8]) -> String {
    if b"\0asm".starts_with(&bytes[..bytes.len().min(4)]) {
        return format!(
            "the file is truncated: {} bytes, too short for a WebAssembly header",
            bytes.len()
        );
    }
    let head = &bytes[..bytes.len().min(512)];
    let looks_textual = head
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    if looks_textual {
        let trimmed = String::from_utf8_lossy(head);
        let first = trimmed.trim_start();
        if first.starts_with("(module") || first.starts_with("(component") {
            return "it is WebAssembly text (WAT), not a binary: compile it with `wat2wasm` or \
                    `wasm-tools parse` first"
                .into();
        }
        return "it is a text file, not a WebAssembly binary (a binary starts with \\0asm)".into();
    }
    if bytes.starts_with(b"\x7fELF") {
        return "it is a native ELF executable, not WebAssembly".into();
    }
    format!(
        "it is not a WebAssembly binary: it starts with bytes {:02x?}, not \\0asm",
        &bytes[..bytes.len().min(4)]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_named_as_text() {
        let err = inspect(b"hello world\n").unwrap_err().to_string();
        assert!(err.contains("text file"), "{err}");
        let err = inspect(b"(module)").unwrap_err().to_string();
        assert!(err.contains("WAT"), "{err}");
    }

    #[test]
    fn short_header_is_truncated() {
        let err = inspect(b"\0as").unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn empty_module_is_a_library() {
        // (module) in binary: magic + version 1.
        let info = inspect(b"\0asm\x01\0\0\0").unwrap();
        assert_eq!(info.kind, Kind::CoreLibrary);
        assert!(info.imports.is_empty());
        assert_eq!(info.digest, skiff_store::Digest::of(b"\0asm\x01\0\0\0"));
    }

    #[test]
    fn cut_section_is_malformed() {
        // A type section that claims 5 bytes but has 1.
        let err = inspect(b"\0asm\x01\0\0\0\x01\x05\x01").unwrap_err();
        assert!(matches!(err, ParseError::Malformed { .. }), "{err}");
    }
}
