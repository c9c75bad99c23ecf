//! `skiff build`: an image from a skiff.toml.

use crate::home::Home;
use anyhow::Context;
use clap::Args;
use skiff_image::build::{build as build_image, BuildConfig, BuildError};
use skiff_image::Reference;
use std::path::PathBuf;

/// Build an image from a skiff.toml (see docs/skiff-toml.md), or from a .wasm alone
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
skiff build .                            name:version from ./skiff.toml\n  \
skiff build -t hello:1.0 -t hello:latest .\n  \
skiff build -f other.toml ./app\n  \
skiff build -t hello:1.0 hello.wasm       a binary alone: no skiff.toml, no grants\n  \
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) skiff build .   stamp the commit time\n\n\
Reproducible: the same binary and skiff.toml give the same digest. `created` is\n\
SOURCE_DATE_EPOCH when set, else 1970-01-01T00:00:00Z.")]
pub struct BuildArgs {
    /// Name and tag for the image (repeatable); default: name:version from skiff.toml
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,

    /// The skiff.toml to read [default: CONTEXT/skiff.toml]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Do not run skiff.toml's `build` command; use the wasm file as it is
    #[arg(long)]
    pub no_build_command: bool,

    /// Print only the image digest
    #[arg(short, long)]
    pub quiet: bool,

    /// The directory paths in skiff.toml are relative to, or a .wasm to build from alone
    #[arg(default_value = ".", value_name = "CONTEXT")]
    pub context: PathBuf,
}

pub fn build(home: &Home, args: BuildArgs) -> anyhow::Result<u8> {
    let tags = args
        .tags
        .iter()
        .map(|t| {
            let r = Reference::parse(t)?;
            if r.digest().is_some() {
                anyhow::bail!("-t {t}: a tag names a repository and tag, not a digest");
            }
            Ok(r)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    // `skiff build app.wasm`: the binary alone, in the directory that holds it.
    let (context, file) = match &args.file {
        None if args.context.is_file() => {
            if args.context.extension().is_none_or(|e| e != "wasm") {
                anyhow::bail!(
                    "{} is a file: give the directory holding skiff.toml, or a .wasm",
                    args.context.display()
                );
            }
            let dir = args.context.parent().unwrap_or(std::path::Path::new("."));
            (dir.to_path_buf(), args.context.clone())
        }
        _ => (
            args.context.clone(),
            args.file
                .clone()
                .unwrap_or_else(|| args.context.join("skiff.toml")),
        ),
    };
    if !file.exists() {
        return Err(crate::exit::NotFound(format!(
            "{}: no such file; skiff build reads a skiff.toml (see docs/skiff-toml.md)",
            file.display()
        ))
        .into());
    }
    let config = BuildConfig {
        context,
        file,
        tags,
        created: created_time()?,
        run_build_command: !args.no_build_command,
    };
    let store = home.store()?;
    let built = build_image(&store, &config).map_err(|e| match e {
        e @ BuildError::NotWasm { .. } => crate::exit::CannotRun(e.to_string()).into(),
        e => anyhow::Error::from(e),
    })?;
    if args.quiet {
        println!("{}", built.digest);
        return Ok(0);
    }
    if !built.kind.is_command() && built.kind != skiff_wasm::Kind::HttpHandler {
        eprintln!("warning: {}: {}", built.kind, built.kind.advice());
    }
    for t in &built.tags {
        println!(
            "Built {} {} ({}, {})",
            t.familiar(),
            built.digest,
            built.os,
            built.kind
        );
    }
    Ok(0)
}

/// SOURCE_DATE_EPOCH (the reproducible-builds convention) or the Unix epoch: never the clock,
/// so a rebuild of the same inputs gives the same digest.
fn created_time() -> anyhow::Result<i64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|s| *s >= 0)
            .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds")),
        _ => Ok(0),
    }
}
