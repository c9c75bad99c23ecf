//! `skiff sbom`: a bill of materials from what the binary itself carries (its `producers`
//! sections, `cargo auditable`'s dependency list, the interface packages a component imports
//! and exports), as SPDX 2.3 or CycloneDX 1.5 JSON.

use crate::home::Home;
use anyhow::Context;
use clap::{Args, ValueEnum};
use serde_json::{json, Value};
use skiff_registry::AttachedSbom;
use skiff_wasm::{Provenance, WasmInfo};

/// Write a bill of materials (SPDX 2.3 or CycloneDX 1.5 JSON) for an image or .wasm file, or
/// show the one attached to an image in its registry
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
skiff sbom app.wasm                               SPDX 2.3 JSON on stdout\n  \
skiff sbom --format cyclonedx hello:1.0 > bom.json\n  \
skiff sbom localhost:5000/team/api:1.0            the SBOM attached in the registry (not pulled)\n  \
skiff sbom --from attached localhost:5000/team/api:1.0   the attached one even if pulled\n\n\
What is listed is what the binary carries: the languages and tools of its `producers`\n\
sections (every module of a component), the Rust crates `cargo auditable` recorded (build with\n\
`cargo auditable build`), and the interface packages it imports and exports with their\n\
versions (wasi:http@0.2.6). Nothing is guessed: a binary that records no crates lists none.\n\
An attached SBOM (skiff push --sbom, cosign attach sbom) is printed as stored, its digest\n\
checked; stderr says where it came from and who signed it (skiff push --sign-by KEY --sbom\n\
signs it; --key, or a sigstoreSigned policy, requires that).")]
pub struct SbomArgs {
    /// spdx (SPDX 2.3 JSON) or cyclonedx (CycloneDX 1.5 JSON) [default: spdx; for an attached
    /// SBOM: the one attached in this format, else whichever is attached]
    #[arg(long, value_enum)]
    pub format: Option<SbomFormat>,

    /// Where it comes from: binary (made from the .wasm file or the image in the local store),
    /// attached (the one attached to the image in its registry), auto (a file or an image in
    /// the local store: binary; any other image: attached)
    #[arg(long, value_enum, default_value = "auto")]
    pub from: SbomSource,

    /// With an attached SBOM: it must be signed by this public key (cosign.pub), as `skiff
    /// push --sign-by KEY --sbom` signs it. Without it, the trust policy's rule for the image
    /// decides: under sigstoreSigned the SBOM must be signed by the rule's keys too
    #[arg(long, value_name = "KEY")]
    pub key: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub registries: crate::remote::InsecureRegistries,

    /// A .wasm file, an image in the local store, or an image in its registry
    #[arg(value_name = "IMAGE|FILE")]
    pub target: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SbomSource {
    Auto,
    Binary,
    Attached,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SbomFormat {
    Spdx,
    Cyclonedx,
}

/// What a bill of materials is made from.
pub struct Subject {
    pub name: String,
    pub version: Option<String>,
    pub info: WasmInfo,
    pub provenance: Provenance,
}

/// Read a file or local image and what its binary carries.
pub fn subject(home: &Home, target: &str) -> anyhow::Result<Subject> {
    let w = crate::cmd::source::resolve(home, target)?;
    let info = skiff_wasm::inspect(&w.bytes).with_context(|| format!("{target}: not Wasm"))?;
    let provenance = skiff_wasm::provenance(&w.bytes, &info)
        .with_context(|| format!("{target}: reading what the binary records"))?;
    let version = w
        .image
        .as_ref()
        .and_then(|i| i.reference.as_ref())
        .and_then(|r| r.tag().map(str::to_string));
    Ok(Subject {
        name: w.argv0,
        version,
        info,
        provenance,
    })
}

pub fn sbom(home: &Home, args: SbomArgs) -> anyhow::Result<u8> {
    let from = match args.from {
        // --key is about an attached SBOM's signature: it asks for the attached one.
        SbomSource::Auto if args.key.is_none() && is_local(home, &args.target) => {
            SbomSource::Binary
        }
        SbomSource::Auto => SbomSource::Attached,
        from => from,
    };
    if from == SbomSource::Attached {
        let result = attached(home, &args);
        if args.from == SbomSource::Attached || args.key.is_some() {
            return result;
        }
        return result.with_context(|| {
            format!(
                "{} is not a file or an image in the local store, so its registry was asked for \
                 the SBOM attached to it",
                args.target
            )
        });
    }
    if args.key.is_some() {
        anyhow::bail!("--key checks an attached SBOM's signature: use it with --from attached");
    }
    let format = args.format.unwrap_or(SbomFormat::Spdx);
    let doc = document(home, &args.target, format)?;
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(0)
}

/// A file, or an image in the local store: what `--from auto` makes the SBOM of.
fn is_local(home: &Home, target: &str) -> bool {
    std::path::Path::new(target).exists()
        || home
            .store()
            .is_ok_and(|store| skiff_image::find(&store, target).is_ok())
}

/// The SBOM attached to the image in its registry, printed as stored; where it came from, and
/// whose signature it carries, on stderr.
fn attached(home: &Home, args: &SbomArgs) -> anyhow::Result<u8> {
    // The key or policy first: a broken one stops before the registry is asked anything.
    let policy = match &args.key {
        Some(key) => crate::cmd::verify::key_policy(key)?,
        None => home.policy()?,
    };
    let r = crate::cmd::sign::remote(&args.target, args.registries.insecure.clone())?;
    let name = r.reference.to_string();
    let image = format!("{}@{}", r.reference.familiar(), r.digest);
    let found =
        r.rt.block_on(r.registry.attachments(&name, &r.digest))
            .with_context(|| format!("looking for the SBOM attached to {image}"))?;
    let want = args.format.map(SbomFormat::name);
    let candidates: Vec<&AttachedSbom> = found
        .sboms
        .iter()
        .filter(|s| want.is_none() || s.format() == want)
        .collect();
    if candidates.is_empty() {
        return Err(none_attached(&found.sboms, want, &image, &r.digest).into());
    }
    // The first that the rule accepts: under a rule that needs signatures, signed by its keys,
    // over the manifest that lists the document, naming this image.
    let rule = policy.rule_for(&r.reference);
    let mut denied = None;
    let mut chosen = None;
    for sbom in candidates {
        let signatures = if rule.needs_signatures() {
            r.rt.block_on(r.registry.signatures(&name, &sbom.manifest))
                .with_context(|| format!("reading the signatures of the SBOM {}", sbom.source))?
        } else {
            Vec::new()
        };
        match rule.check(&r.reference, &sbom.manifest, &signatures) {
            Ok(accepted) => {
                chosen = Some((sbom, accepted));
                break;
            }
            Err(d) => denied = denied.or(Some((sbom, d))),
        }
    }
    let Some((sbom, accepted)) = chosen else {
        let (sbom, d) = denied.expect("a candidate was checked");
        return Err(crate::exit::CannotRun(format!(
            "the SBOM attached to {image} ({}) is not accepted: {d}; `skiff push --sign-by KEY \
             --sbom FORMAT` attaches a signed one, and `skiff sbom --from binary` makes one from \
             the binary",
            sbom.source
        ))
        .into());
    };
    let bytes =
        r.rt.block_on(r.registry.sbom_document(&name, sbom))
            .with_context(|| format!("reading the SBOM attached to {image}"))?;
    // Printed as stored (so its digest can be checked again), but only if it is JSON: a
    // registry's garbage goes nowhere near the terminal.
    serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "the SBOM attached to {image} ({}, {}) is not JSON: {e}",
            sbom.source,
            sbom.document.digest
        )
    })?;
    let trust = match accepted.signed_by.as_slice() {
        [] => format!(
            "signature not checked: {} {} accepts anything; --key KEY checks it",
            policy.source(),
            accepted.scope
        ),
        keys => format!("signed by {}", keys.join(", ")),
    };
    eprintln!(
        "SBOM attached to {image}: {} {} from {} ({trust})",
        crate::term::for_terminal(&sbom.media_type),
        sbom.document.digest,
        crate::term::for_terminal(&sbom.source)
    );
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(&bytes)?;
    out.flush()?;
    Ok(0)
}

/// Nothing (of the asked format) is attached: what is, and what to do.
fn none_attached(
    sboms: &[AttachedSbom],
    want: Option<&str>,
    image: &str,
    digest: &skiff_image::Digest,
) -> crate::exit::NotFound {
    let attached: Vec<String> = sboms
        .iter()
        .map(|s| crate::term::for_terminal(&s.media_type).into_owned())
        .collect();
    crate::exit::NotFound(if attached.is_empty() {
        format!(
            "no SBOM is attached to {image} (looked for OCI referrers and the tag {}.sbom); \
             `skiff pull` it and `skiff sbom --from binary` makes one from its binary",
            digest.to_string().replacen(':', "-", 1)
        )
    } else {
        format!(
            "no {} SBOM is attached to {image} (attached: {}); leave out --format, or `skiff \
             sbom --from binary` makes one from its binary",
            want.unwrap_or_default(),
            attached.join(", ")
        )
    })
}

/// The bill of materials of a file or local image, dated now (or `SOURCE_DATE_EPOCH`).
pub fn document(home: &Home, target: &str, format: SbomFormat) -> anyhow::Result<Value> {
    let s = subject(home, target)?;
    let created = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        });
    let created = skiff_store::time::format_rfc3339(created);
    Ok(match format {
        SbomFormat::Spdx => spdx(&s, &created),
        SbomFormat::Cyclonedx => cyclonedx(&s, &created),
    })
}

impl SbomFormat {
    /// `spdx` or `cyclonedx`, as [`skiff_registry::AttachedSbom::format`] names them.
    pub fn name(self) -> &'static str {
        match self {
            SbomFormat::Spdx => "spdx",
            SbomFormat::Cyclonedx => "cyclonedx",
        }
    }

    /// The media type cosign attaches the format as.
    pub fn media_type(self) -> &'static str {
        match self {
            SbomFormat::Spdx => "text/spdx+json",
            SbomFormat::Cyclonedx => "application/vnd.cyclonedx+json",
        }
    }
}

/// `pkg:cargo/NAME@VERSION`, the purl of a crate.
pub fn cargo_purl(c: &skiff_wasm::Crate) -> String {
    format!("pkg:cargo/{}@{}", c.name, c.version)
}

fn hex(info: &WasmInfo) -> String {
    info.digest
        .to_string()
        .trim_start_matches("sha256:")
        .to_string()
}

/// `wasi:http@0.2.6` -> (`wasi:http`, `0.2.6`).
fn split_package(p: &str) -> (&str, &str) {
    p.split_once('@').unwrap_or((p, ""))
}

fn languages(s: &Subject) -> Vec<String> {
    s.provenance
        .producers
        .iter()
        .filter(|p| p.field == "language")
        .map(|p| format!("{} {}", p.name, p.version).trim().to_string())
        .collect()
}

fn tools(s: &Subject) -> impl Iterator<Item = &skiff_wasm::Producer> {
    s.provenance
        .producers
        .iter()
        .filter(|p| p.field != "language")
}

fn spdx(s: &Subject, created: &str) -> Value {
    let id = |kind: &str, i: usize| format!("SPDXRef-{kind}-{i}");
    let root = "SPDXRef-Wasm".to_string();
    let mut packages = vec![json!({
        "SPDXID": root,
        "name": s.name,
        "versionInfo": s.version.clone().unwrap_or_else(|| "NOASSERTION".into()),
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "APPLICATION",
        "checksums": [{"algorithm": "SHA256", "checksumValue": hex(&s.info)}],
        "comment": format!("kind: {}; languages: {}", s.info.kind, languages(s).join(", ")),
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": root,
    })];
    let crates = &s.provenance.crates;
    for (i, c) in crates.iter().enumerate() {
        packages.push(json!({
            "SPDXID": id("Crate", i),
            "name": c.name,
            "versionInfo": c.version,
            "downloadLocation": if c.source == "crates.io" { format!("https://crates.io/crates/{}/{}", c.name, c.version) } else { "NOASSERTION".into() },
            "filesAnalyzed": false,
            "primaryPackagePurpose": "LIBRARY",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": cargo_purl(c)}],
            "comment": format!("source: {}; kind: {}", c.source, c.kind.as_deref().unwrap_or("runtime")),
        }));
        for &d in &c.dependencies {
            relationships.push(json!({"spdxElementId": id("Crate", i), "relationshipType": "DEPENDS_ON", "relatedSpdxElement": id("Crate", d)}));
        }
        if c.root {
            relationships.push(json!({"spdxElementId": root, "relationshipType": "GENERATED_FROM", "relatedSpdxElement": id("Crate", i)}));
        }
    }
    for (i, p) in tools(s).enumerate() {
        packages.push(json!({
            "SPDXID": id("Tool", i), "name": p.name, "versionInfo": p.version,
            "downloadLocation": "NOASSERTION", "filesAnalyzed": false,
            "primaryPackagePurpose": "APPLICATION",
            "comment": format!("producers section: {}", p.field),
        }));
        relationships.push(json!({"spdxElementId": id("Tool", i), "relationshipType": "BUILD_TOOL_OF", "relatedSpdxElement": root}));
    }
    let interfaces = s
        .provenance
        .imported_packages
        .iter()
        .map(|p| (p, "imports"))
        .chain(
            s.provenance
                .exported_packages
                .iter()
                .map(|p| (p, "exports")),
        );
    for (i, (p, how)) in interfaces.enumerate() {
        let (name, version) = split_package(p);
        packages.push(json!({
            "SPDXID": id("Interface", i), "name": name, "versionInfo": version,
            "downloadLocation": "NOASSERTION", "filesAnalyzed": false,
            "primaryPackagePurpose": "LIBRARY",
            "comment": format!("WIT package the component {how}"),
        }));
        let kind = if how == "imports" {
            "DEPENDS_ON"
        } else {
            "OTHER"
        };
        relationships.push(json!({"spdxElementId": root, "relationshipType": kind, "relatedSpdxElement": id("Interface", i), "comment": how}));
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": s.name,
        "documentNamespace": format!("https://skiff.invalid/spdx/{}/{}", s.name, hex(&s.info)),
        "creationInfo": {"created": created, "creators": [concat!("Tool: skiff-", env!("CARGO_PKG_VERSION"))]},
        "packages": packages,
        "relationships": relationships,
    })
}

fn cyclonedx(s: &Subject, created: &str) -> Value {
    let h = hex(&s.info);
    // A serial number must be a UUID: one derived from the binary's digest, so the same binary
    // gets the same serial (version 4 and variant bits set).
    let serial = format!(
        "urn:uuid:{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    );
    let crate_ref = |c: &skiff_wasm::Crate| cargo_purl(c);
    let mut components = Vec::new();
    let mut dependencies = Vec::new();
    let crates = &s.provenance.crates;
    for c in crates {
        components.push(json!({
            "type": "library", "bom-ref": crate_ref(c), "name": c.name, "version": c.version,
            "purl": cargo_purl(c),
            "properties": [{"name": "cargo:source", "value": c.source}, {"name": "cargo:kind", "value": c.kind.as_deref().unwrap_or("runtime")}],
        }));
        dependencies.push(json!({
            "ref": crate_ref(c),
            "dependsOn": c.dependencies.iter().map(|&d| crate_ref(&crates[d])).collect::<Vec<_>>(),
        }));
    }
    let mut root_deps: Vec<String> = crates.iter().filter(|c| c.root).map(crate_ref).collect();
    let interfaces = s
        .provenance
        .imported_packages
        .iter()
        .map(|p| (p, "import"))
        .chain(s.provenance.exported_packages.iter().map(|p| (p, "export")));
    for (p, how) in interfaces {
        let (name, version) = split_package(p);
        let r = format!("wit:{how}:{p}");
        components.push(json!({
            "type": "library", "bom-ref": r, "name": name, "version": version,
            "properties": [{"name": "wasm:interface", "value": how}],
        }));
        if how == "import" {
            root_deps.push(r);
        }
    }
    let tools: Vec<Value> = tools(s)
        .map(|p| json!({"type": "application", "name": p.name, "version": p.version, "description": format!("producers section: {}", p.field)}))
        .chain(std::iter::once(json!({"type": "application", "name": "skiff", "version": env!("CARGO_PKG_VERSION")})))
        .collect();
    let root = format!("wasm:{h}");
    dependencies.push(json!({"ref": root, "dependsOn": root_deps}));
    let mut properties = vec![json!({"name": "wasm:kind", "value": s.info.kind.to_string()})];
    for l in languages(s) {
        properties.push(json!({"name": "wasm:language", "value": l}));
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": serial,
        "version": 1,
        "metadata": {
            "timestamp": created,
            "tools": {"components": tools},
            "component": {
                "type": "application", "bom-ref": root, "name": s.name,
                "version": s.version.clone().unwrap_or_default(),
                "hashes": [{"alg": "SHA-256", "content": h}],
                "properties": properties,
            },
        },
        "components": components,
        "dependencies": dependencies,
    })
}
