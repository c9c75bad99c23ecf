//! `skiff scan`: the crates a binary records (cargo auditable's list, see `skiff sbom`) matched
//! against an offline advisory database in OSV's JSON format: a directory of OSV files, as the
//! RustSec and GitHub advisory databases publish them.

use crate::home::Home;
use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// An advisory file larger than this is not one (RustSec's largest is a few KiB).
const MAX_ADVISORY: u64 = 1 << 20;
/// Files read from a database directory, at most.
const MAX_ADVISORIES: usize = 200_000;

/// Match an image's or .wasm file's recorded crates against an OSV advisory directory
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
skiff scan --db advisory-db/crates app.wasm          a table; exit 1 if anything matched\n  \
skiff scan --db osv/ --format json hello:1.0         for CI gates\n\n\
The database is a directory (searched recursively) of OSV JSON files; only crates.io\n\
advisories apply, matched by name and version (SEMVER/ECOSYSTEM ranges, or listed versions).\n\
Exit status: 0 nothing matched, 1 advisories matched, 125 the scan could not be done.")]
pub struct ScanArgs {
    /// A directory of OSV advisories (JSON)
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,

    /// table or json
    #[arg(long, value_enum, default_value = "table")]
    pub format: ScanFormat,

    /// A .wasm file, or an image in the local store
    #[arg(value_name = "IMAGE|FILE")]
    pub target: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScanFormat {
    Table,
    Json,
}

#[derive(Deserialize)]
struct Advisory {
    id: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    withdrawn: Option<String>,
    #[serde(default)]
    affected: Vec<Affected>,
}

#[derive(Deserialize)]
struct Affected {
    package: Option<Package>,
    #[serde(default)]
    ranges: Vec<Range>,
    #[serde(default)]
    versions: Vec<String>,
}

#[derive(Deserialize)]
struct Package {
    ecosystem: String,
    name: String,
}

#[derive(Deserialize)]
struct Range {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    events: Vec<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Serialize)]
pub struct Finding {
    pub package: String,
    pub version: String,
    pub purl: String,
    pub id: String,
    pub aliases: Vec<String>,
    pub summary: String,
    /// Versions that fix it, from the ranges' `fixed` events.
    pub fixed: Vec<String>,
}

pub fn scan(home: &Home, args: ScanArgs) -> anyhow::Result<u8> {
    let subject = crate::cmd::sbom::subject(home, &args.target)?;
    let advisories = load(&args.db)?;
    let crates = &subject.provenance.crates;
    if crates.is_empty() {
        eprintln!(
            "note: {} records no dependency list (no cargo auditable .dep-v0 section): nothing to \
             match; build it with `cargo auditable build`",
            args.target
        );
    }
    let mut findings = Vec::new();
    for c in crates {
        let Ok(v) = semver::Version::parse(&c.version) else {
            continue;
        };
        for a in advisories.iter().filter(|a| a.withdrawn.is_none()) {
            for aff in &a.affected {
                let Some(p) = &aff.package else { continue };
                if p.ecosystem != "crates.io" || p.name != c.name || !affects(aff, &v) {
                    continue;
                }
                findings.push(Finding {
                    package: c.name.clone(),
                    version: c.version.clone(),
                    purl: crate::cmd::sbom::cargo_purl(c),
                    id: a.id.clone(),
                    aliases: a.aliases.clone(),
                    summary: a.summary.clone(),
                    fixed: fixed_versions(aff),
                });
            }
        }
    }
    match args.format {
        ScanFormat::Json => println!("{}", serde_json::to_string_pretty(&findings)?),
        ScanFormat::Table => {
            let mut rows = vec![["PACKAGE", "VERSION", "ADVISORY", "FIXED", "SUMMARY"]
                .map(String::from)
                .to_vec()];
            for f in &findings {
                rows.push(vec![
                    f.package.clone(),
                    f.version.clone(),
                    f.id.clone(),
                    f.fixed.join(", "),
                    f.summary.clone(),
                ]);
            }
            crate::table::print(&crate::table::ListFormat::Table, &rows)?;
            println!(
                "{} advisories matched in {} crates ({} advisories read)",
                findings.len(),
                crates.len(),
                advisories.len()
            );
        }
    }
    Ok(if findings.is_empty() { 0 } else { 1 })
}

/// Every `*.json` under `dir`, each at most [`MAX_ADVISORY`] bytes. A file that is not an OSV
/// advisory is an error naming it: a database silently half-read would pass what it should fail.
fn load(dir: &Path) -> anyhow::Result<Vec<Advisory>> {
    if !dir.is_dir() {
        bail!("--db {}: not a directory of OSV advisories", dir.display());
    }
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let entry = entry?;
            let path = entry.path();
            let ft = entry.file_type()?;
            if ft.is_dir() {
                stack.push(path);
                continue;
            }
            if !ft.is_file() || path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            if out.len() >= MAX_ADVISORIES {
                bail!("--db {}: more than {MAX_ADVISORIES} files", dir.display());
            }
            if entry.metadata()?.len() > MAX_ADVISORY {
                bail!(
                    "{}: larger than {MAX_ADVISORY} bytes, not an advisory",
                    path.display()
                );
            }
            let bytes = std::fs::read(&path)?;
            let a: Advisory = serde_json::from_slice(&bytes)
                .with_context(|| format!("{}: not an OSV advisory", path.display()))?;
            out.push(a);
        }
    }
    Ok(out)
}

/// OSV's rule: a version is affected if it is listed, or if, walking a range's events in version
/// order, the last event at or below it is `introduced` (`last_affected` covers itself).
fn affects(a: &Affected, v: &semver::Version) -> bool {
    if a.versions.iter().any(|x| x == &v.to_string()) {
        return true;
    }
    a.ranges
        .iter()
        .filter(|r| r.kind == "SEMVER" || r.kind == "ECOSYSTEM")
        .any(|r| {
            let mut events: Vec<(semver::Version, &str)> = r
                .events
                .iter()
                .flat_map(|e| e.iter())
                .filter_map(|(k, val)| {
                    let s = val.as_str()?;
                    let ver = if s == "0" {
                        semver::Version::new(0, 0, 0)
                    } else {
                        semver::Version::parse(s).ok()?
                    };
                    Some((ver, k.as_str()))
                })
                .collect();
            events.sort_by(|x, y| x.0.cmp(&y.0));
            let mut affected = false;
            for (ver, kind) in events {
                match kind {
                    "introduced" if ver <= *v => affected = true,
                    "fixed" if ver <= *v => affected = false,
                    "last_affected" if ver < *v => affected = false,
                    _ => {}
                }
            }
            affected
        })
}

fn fixed_versions(a: &Affected) -> Vec<String> {
    a.ranges
        .iter()
        .flat_map(|r| r.events.iter())
        .filter_map(|e| e.get("fixed").and_then(|v| v.as_str()).map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn affected(json: &str) -> Affected {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn osv_ranges() {
        let a = affected(
            r#"{"package":{"ecosystem":"crates.io","name":"x"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.3"},{"introduced":"2.0.0"},{"last_affected":"2.1.0"}]}]}"#,
        );
        let v = |s: &str| semver::Version::parse(s).unwrap();
        assert!(affects(&a, &v("1.2.2")));
        assert!(!affects(&a, &v("1.2.3")));
        assert!(!affects(&a, &v("1.9.0")));
        assert!(affects(&a, &v("2.0.0")));
        assert!(affects(&a, &v("2.1.0")));
        assert!(!affects(&a, &v("2.1.1")));
    }
}
