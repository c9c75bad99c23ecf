//! componentize: `--adapter proxy|command IN OUT` adapts a wasm32-wasip1 core module into a
//! component; `--wat IN.wat OUT.wasm` turns WebAssembly text (a component too, which wabt cannot
//! read) into a validated binary; `--print-imports FILE` / `--print-exports FILE` validate FILE
//! (wasmparser, default features) and print its top-level imports / exports, one a line.
use anyhow::{bail, Context, Result};
use wasmparser::{Parser, Payload, Validator};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["--adapter", kind, input, output] => componentize(kind, input, output),
        ["--wat", input, output] => {
            let binary = wat::parse_file(input)?;
            Validator::new().validate_all(&binary).with_context(|| format!("validating {input}"))?;
            std::fs::write(output, &binary).with_context(|| format!("writing {output}"))
        }
        [flag @ ("--print-imports" | "--print-exports"), file] => {
            let bytes = std::fs::read(file).with_context(|| format!("reading {file}"))?;
            let (imports, exports) = imports_exports(&bytes)?;
            let list = if *flag == "--print-imports" { imports } else { exports };
            for i in list {
                println!("{i}");
            }
            Ok(())
        }
        _ => bail!(
            "usage: componentize --adapter proxy|command IN.wasm OUT.wasm\n       componentize --wat IN.wat OUT.wasm\n       componentize --print-imports|--print-exports FILE.wasm"
        ),
    }
}

fn componentize(kind: &str, input: &str, output: &str) -> Result<()> {
    let adapter = match kind {
        "proxy" => wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_PROXY_ADAPTER,
        "command" => wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
        "reactor" => wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        other => bail!("unknown adapter {other:?}: use proxy, command or reactor"),
    };
    let module = std::fs::read(input).with_context(|| format!("reading {input}"))?;
    let component = wit_component::ComponentEncoder::default()
        .module(&module)?
        .adapter("wasi_snapshot_preview1", adapter)?
        .validate(true)
        .encode()
        .with_context(|| format!("encoding {input} as a component"))?;
    Validator::new().validate_all(&component).context("validating the component")?;
    std::fs::write(output, &component).with_context(|| format!("writing {output}"))?;
    Ok(())
}

/// Validates `bytes` (core module or component) and returns its top-level imports
/// (`module::name` for a core module, the import name for a component) and export names.
fn imports_exports(bytes: &[u8]) -> Result<(Vec<String>, Vec<String>)> {
    Validator::new().validate_all(bytes).context("invalid wasm")?;
    let mut out = Vec::new();
    let mut exports = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ImportSection(r) if depth == 0 => {
                for imp in r.into_imports() {
                    let imp = imp?;
                    out.push(format!("{}::{}", imp.module, imp.name));
                }
            }
            Payload::ComponentImportSection(r) if depth == 0 => {
                for imp in r {
                    out.push(imp?.name.name.to_string());
                }
            }
            Payload::ExportSection(r) if depth == 0 => {
                for e in r {
                    exports.push(e?.name.to_string());
                }
            }
            Payload::ComponentExportSection(r) if depth == 0 => {
                for e in r {
                    exports.push(e?.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok((out, exports))
}
