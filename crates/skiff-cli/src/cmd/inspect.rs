//! `skiff inspect FILE|IMAGE`: what a binary is and what it could do; for an image, also its
//! config, annotations, and what it requests against what its imports make possible.

use crate::client::{ApiError, Client, NoDaemon};
use crate::cmd::source::{resolve, ImageSource};
use crate::home::Home;
use crate::term::{for_terminal as t, json};
use anyhow::Context;
use clap::{Args, ValueEnum};
use hyper::Method;
use serde::Serialize;
use skiff_image::requests::{compare, CapabilityRow};
use skiff_wasm::WasmInfo;

/// Show what a Wasm binary or image is and which capabilities it could use; or, given a
/// workload's name or ID, the daemon's record of it
///
/// Like Docker's inspect it takes any object, tried in this order: a file that exists, then a
/// workload of the running daemon (by name, ID or unique ID prefix), then an image in the store.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
skiff inspect app.wasm\n  \
skiff inspect hello:1.0                      an image: config, annotations, requested vs possible\n  \
skiff inspect api                            a workload of the daemon: its record, as JSON\n  \
skiff inspect --format json app.wasm | jq .capabilities\n  \
skiff inspect --remote localhost:5000/team/api:1.0   and what its registry has attached to it")]
pub struct InspectArgs {
    /// A .wasm file, a workload's name or ID, or an image reference
    #[arg(value_name = "FILE|WORKLOAD|IMAGE")]
    pub target: String,

    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,

    /// For an image: also ask its registry what is attached to it there (SBOMs: format, digest,
    /// where; how many signatures, not verified). Without it inspect reads the local store only
    #[arg(long)]
    pub remote: bool,

    #[command(flatten)]
    pub registries: crate::remote::InsecureRegistries,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Serialize)]
struct Report<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(flatten)]
    info: &'a WasmInfo,
    runs_with: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<ImageReport<'a>>,
}

#[derive(Serialize)]
struct ImageReport<'a> {
    reference: Option<String>,
    digest: String,
    size: u64,
    manifest: &'a skiff_image::model::Manifest,
    config: &'a skiff_image::model::WasmConfig,
    defaults: &'a skiff_image::annotations::Defaults,
    /// Requested by the image against possible from its imports; none of it is granted.
    capabilities: Vec<CapabilityRow>,
    /// What the registry has attached to this manifest (`--remote`).
    #[serde(skip_serializing_if = "Option::is_none")]
    attached: Option<Attached>,
}

#[derive(Serialize)]
struct Attached {
    repository: String,
    sboms: Vec<AttachedSbom>,
    /// Found, not verified (`skiff verify` checks them).
    signatures: usize,
}

#[derive(Serialize)]
struct AttachedSbom {
    format: Option<&'static str>,
    media_type: String,
    digest: String,
    size: u64,
    source: String,
    /// Signatures of the manifest that lists it (found, not verified).
    signatures: usize,
}

/// Spelled like a workload name or ID (and not a file): worth asking the daemon about.
fn is_workload_name(target: &str) -> bool {
    !std::path::Path::new(target).exists()
        && target
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && target
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && !target.ends_with(".wasm")
}

/// File, then workload, then image (see [`InspectArgs`]). A daemon that is not running, or
/// has no such workload, is not an error: the target may still be an image.
pub fn inspect_any(
    home: &Home,
    client: impl FnOnce() -> anyhow::Result<Client>,
    args: InspectArgs,
) -> anyhow::Result<u8> {
    if is_workload_name(&args.target) {
        if let Ok(client) = client() {
            let path = format!("/v1/workloads/{}", args.target);
            match client.call::<skiff_api::Workload>(Method::GET, &path, None::<&()>) {
                Ok((_, w)) => {
                    println!("{}", json(&[w])?);
                    return Ok(0);
                }
                // Not the daemon's: perhaps an image. Any other answer (ambiguous prefix…) is
                // the user's to see.
                Err(e)
                    if e.downcast_ref::<ApiError>()
                        .is_some_and(|a| a.status == 404) => {}
                Err(e) if e.is::<NoDaemon>() => {}
                Err(e) => return Err(e),
            }
        }
    }
    inspect(home, args)
}

pub fn inspect(home: &Home, args: InspectArgs) -> anyhow::Result<u8> {
    let workload = resolve(home, &args.target)?;
    let info = skiff_wasm::inspect(&workload.bytes)
        .map_err(|e| crate::exit::CannotRun(format!("{}: {e}", workload.label)))?;
    let left_off = skiff_wasm::left_off_proposal(&workload.bytes).map(|p| format!("nothing: {p}"));
    let runs_with = match info.kind {
        _ if left_off.is_some() => left_off.as_deref().unwrap_or_default(),
        k if k.is_command() => "skiff run",
        skiff_wasm::Kind::HttpHandler => "skiff serve",
        k if !k.is_component() => "skiff run --invoke NAME: no entry point; see Functions",
        _ => "skiff run --invoke 'NAME(ARGS)': no entry point; see Exports",
    };
    let mut image = workload.image.as_ref().map(|src| image_report(src, &info));
    if args.remote {
        let (Some(src), Some(report)) = (&workload.image, image.as_mut()) else {
            anyhow::bail!("--remote is for an image (it asks the image's registry), not a file");
        };
        report.attached = Some(attached(src, args.registries.insecure.clone())?);
    }
    // What the binary records about its making is metadata: unreadable, it is left out.
    let made = skiff_wasm::provenance(&workload.bytes, &info).unwrap_or_default();
    match args.format {
        Format::Json => {
            let report = Report {
                file: workload.image.is_none().then(|| workload.label.clone()),
                info: &info,
                runs_with,
                image,
            };
            println!("{}", json(&report)?);
        }
        Format::Table => match &image {
            None => print_file(&workload.label, &info, runs_with, &made),
            Some(image) => print_image(image, &info, runs_with, &made),
        },
    }
    Ok(0)
}

fn image_report<'a>(src: &'a ImageSource, info: &WasmInfo) -> ImageReport<'a> {
    let image = &src.image;
    ImageReport {
        reference: src.reference.as_ref().map(|r| r.familiar()),
        digest: image.digest.to_string(),
        size: image.total_size(),
        manifest: &image.manifest,
        config: &image.config,
        defaults: &image.defaults,
        capabilities: compare(&image.defaults.requests, info),
        attached: None,
    }
}

/// What the image's registry has attached to the manifest in the local store.
fn attached(src: &ImageSource, insecure: Vec<String>) -> anyhow::Result<Attached> {
    let Some(reference) = &src.reference else {
        anyhow::bail!(
            "--remote needs the image's name (NAME:TAG) to know its registry, not only its ID"
        );
    };
    let registry = crate::remote::registry(
        reference.registry(),
        insecure,
        std::sync::Arc::new(skiff_registry::Silent),
    )?;
    let rt = crate::cmd::login::runtime()?;
    let found = rt
        .block_on(registry.attachments(&reference.to_string(), &src.image.digest))
        .with_context(|| {
            format!(
                "asking {} what is attached to {}",
                reference.registry(),
                src.image.digest
            )
        })?;
    Ok(Attached {
        repository: format!("{}/{}", reference.registry(), reference.path()),
        sboms: found
            .sboms
            .iter()
            .map(|s| AttachedSbom {
                format: s.format(),
                media_type: s.media_type.clone(),
                digest: s.document.digest.to_string(),
                size: s.document.size,
                source: s.source.clone(),
                signatures: s.signatures,
            })
            .collect(),
        signatures: found.signatures,
    })
}

fn print_file(label: &str, info: &WasmInfo, runs_with: &str, made: &skiff_wasm::Provenance) {
    println!("File:       {}", t(label));
    print_info(info, runs_with, made);
    println!();
    println!("Capabilities its imports could use (skiff grants none unless asked):");
    if info.capabilities.is_empty() {
        println!("  (none)");
    }
    for (cap, imports) in &info.capabilities {
        println!("  {:<14} {}", cap.to_string(), list(imports));
    }
}

fn print_info(info: &WasmInfo, runs_with: &str, made: &skiff_wasm::Provenance) {
    println!("Kind:       {}", info.kind);
    println!("Runs with:  {runs_with}");
    println!("Size:       {} bytes", info.size);
    println!("Digest:     {}", info.digest);
    println!("Exports:    {}", list(&info.exports));
    // What `skiff run --invoke NAME` can call, with the types its arguments are parsed as.
    if !info.functions.is_empty() {
        let functions: Vec<String> = info.functions.iter().map(|f| f.to_string()).collect();
        println!("Functions:  {}", list(&functions));
    }
    // Its producers sections and cargo auditable's list: what `skiff sbom` writes out in full.
    let producers: Vec<String> = made
        .producers
        .iter()
        .map(|p| format!("{} {}", p.name, p.version).trim().to_string())
        .collect();
    if !producers.is_empty() {
        println!("Made with:  {}", list(&producers));
    }
    if !made.crates.is_empty() {
        println!(
            "Crates:     {} recorded by cargo auditable (skiff sbom lists them)",
            made.crates.len()
        );
    }
}

fn print_image(r: &ImageReport, info: &WasmInfo, runs_with: &str, made: &skiff_wasm::Provenance) {
    if let Some(name) = &r.reference {
        println!("Image:      {}", t(name));
    }
    println!("Manifest:   {}", r.digest);
    println!("Created:    {}", t(&r.config.created));
    println!(
        "OS:         {} (architecture {})",
        t(&r.config.os),
        t(&r.config.architecture)
    );
    if let Some(author) = &r.config.author {
        println!("Author:     {}", t(author));
    }
    println!("Layer:");
    print_info(info, runs_with, made);
    if let Some(c) = &r.config.component {
        println!("Component:  exports {}", list(&c.exports));
        println!("            imports {}", list(&c.imports));
    }
    println!();
    println!("Defaults:");
    match &r.defaults.args {
        Some(args) => println!(
            "  args       {}",
            t(&serde_json::to_string(args).unwrap_or_default())
        ),
        None => println!("  args       (none)"),
    }
    if r.defaults.env.is_empty() {
        println!("  env        (none)");
    }
    for (k, v) in &r.defaults.env {
        println!("  env        {}={}", t(k), t(v));
    }
    if let Some(route) = &r.defaults.route {
        println!("  http route {}", t(route));
    }
    // A Spin component's files: given to the guest read-only, at `/`.
    let files = skiff_image::files::of_layers(&r.manifest.layers);
    if !files.is_empty() {
        let paths: Vec<String> = files.iter().map(|(p, _)| format!("/{p}")).collect();
        println!("  files      {} (read-only)", list(&paths));
    }
    println!();
    println!("Annotations:");
    for (k, v) in &r.manifest.annotations {
        println!("  {} = {}", t(k), t(v));
    }
    if let Some(a) = &r.attached {
        println!();
        println!("Attached in {}:", t(&a.repository));
        if a.sboms.is_empty() {
            println!("  SBOM       (none)");
        }
        for s in &a.sboms {
            println!(
                "  SBOM       {} ({}) {}, {} bytes, from {}, {} signature(s)",
                s.format.unwrap_or("unknown format"),
                t(&s.media_type),
                s.digest,
                s.size,
                t(&s.source),
                s.signatures
            );
        }
        println!(
            "  signatures {} (not verified here: skiff verify checks them)",
            a.signatures
        );
    }
    println!();
    println!(
        "Capabilities: requested by the image / possible from its imports. skiff grants \
         none unless the operator asks (-v, -e, --net)."
    );
    println!(
        "  {:<14} {:<32} {:<9} NOTE",
        "CAPABILITY", "REQUESTED", "POSSIBLE"
    );
    for row in &r.capabilities {
        let requested = if row.requested.is_empty() {
            "-".to_string()
        } else {
            t(&row.requested.join(", ")).into_owned()
        };
        println!(
            "  {:<14} {:<32} {:<9} {}",
            row.capability,
            requested,
            if row.possible { "yes" } else { "no" },
            row.note
                .as_deref()
                .map(|n| format!("! {}", t(n)))
                .unwrap_or_default()
        );
    }
}

/// Names from the binary (exports, imports): the image's words, so escaped.
fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".into()
    } else {
        t(&items.join(", ")).into_owned()
    }
}
