//! `skiff inspect FILE`: what a binary is and what it could do.

use crate::cmd::source::read_wasm_file;
use clap::{Args, ValueEnum};
use serde::Serialize;
use skiff_wasm::WasmInfo;
use std::path::PathBuf;

/// Show what a Wasm binary is and which capabilities its imports could use; or, given a
/// workload's name or ID, the daemon's record of it
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
skiff inspect app.wasm\n  \
skiff inspect --format json app.wasm | jq .capabilities")]
pub struct InspectArgs {
    /// A .wasm file, or a workload's name or ID
    pub target: PathBuf,

    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Serialize)]
struct Report<'a> {
    file: String,
    #[serde(flatten)]
    info: &'a WasmInfo,
    runs_with: &'static str,
}

/// Not a file, and spelled like a workload name or id: ask the daemon (Docker's `inspect`
/// also takes any object).
pub fn is_workload_name(target: &std::path::Path) -> bool {
    let s = target.to_string_lossy();
    !target.exists()
        && !s.contains('/')
        && !s.ends_with(".wasm")
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

pub fn inspect(args: InspectArgs) -> anyhow::Result<u8> {
    let bytes = read_wasm_file(&args.target)?;
    let info = skiff_wasm::inspect(&bytes)
        .map_err(|e| crate::exit::CannotRun(format!("{}: {e}", args.target.display())))?;
    let runs_with = match info.kind {
        k if k.is_command() => "skiff run",
        skiff_wasm::Kind::HttpHandler => "skiff serve",
        _ => "nothing: no entry point skiff can call",
    };
    match args.format {
        Format::Json => {
            let report = Report {
                file: args.target.display().to_string(),
                info: &info,
                runs_with,
            };
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Format::Table => print_table(&args.target, &info, runs_with),
    }
    Ok(0)
}

fn print_table(path: &std::path::Path, info: &WasmInfo, runs_with: &str) {
    println!("File:       {}", path.display());
    println!("Kind:       {}", info.kind);
    println!("Runs with:  {runs_with}");
    println!("Size:       {} bytes", info.size);
    println!("Digest:     {}", info.digest);
    println!("Exports:    {}", list(&info.exports));
    println!();
    println!("Capabilities its imports could use (skiff grants none unless asked):");
    if info.capabilities.is_empty() {
        println!("  (none)");
    }
    for (cap, imports) in &info.capabilities {
        println!("  {:<14} {}", cap.to_string(), list(imports));
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".into()
    } else {
        items.join(", ")
    }
}
