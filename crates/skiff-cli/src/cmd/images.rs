//! `skiff images`: the tagged images in the local store.

use crate::home::Home;
use crate::table::{parse_list_format, ListFormat};
use crate::term::{for_terminal, json};
use clap::Args;
use serde::Serialize;
use skiff_image::reference::familiar;
use skiff_image::Image;
use skiff_store::time::{ago, parse_rfc3339};

/// List images in the local store
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
skiff images\n  \
skiff images --digests\n  \
skiff images --format json | jq '.[].repository'\n  \
skiff images -q                       digests only\n  \
skiff images --format '{{.Repository}}:{{.Tag}}'")]
pub struct ImagesArgs {
    /// Show full digests
    #[arg(long)]
    pub digests: bool,

    /// Only show digests (short IDs, or full with --digests)
    #[arg(short, long)]
    pub quiet: bool,

    /// Only images whose repository is this one (`hello`, `me/app`)
    #[arg(value_name = "REPOSITORY")]
    pub repository: Option<String>,

    /// Output format: table, json, or a template such as '{{.Repository}}:{{.Tag}}'
    #[arg(long, default_value = "table", value_parser = parse_list_format)]
    pub format: ListFormat,
}

#[derive(Serialize)]
struct Row {
    repository: String,
    tag: String,
    digest: String,
    /// Manifest + config + layer, in bytes.
    size: u64,
    created: String,
    os: String,
}

pub fn images(home: &Home, args: ImagesArgs) -> anyhow::Result<u8> {
    let store = home.store()?;
    let filter = args
        .repository
        .as_deref()
        .map(|r| skiff_image::Reference::parse(r).map(|r| r.repository()))
        .transpose()?;
    let mut rows = Vec::new();
    for t in store.tags()? {
        if filter.as_ref().is_some_and(|f| *f != t.repository) {
            continue;
        }
        match Image::read(&store, &t.digest) {
            Ok(image) => rows.push(Row {
                repository: familiar(&t.repository),
                tag: t.tag,
                digest: t.digest.to_string(),
                size: image.total_size(),
                created: image.config.created.clone(),
                os: image.config.os.clone(),
            }),
            Err(e) => tracing::warn!(
                "{}:{}: skipped: {} (skiff system check tells more)",
                familiar(&t.repository),
                t.tag,
                for_terminal(&e.to_string())
            ),
        }
    }
    match &args.format {
        ListFormat::Json => println!("{}", json(&rows)?),
        ListFormat::Table if args.quiet => {
            let mut seen = std::collections::BTreeSet::new();
            for r in &rows {
                if seen.insert(&r.digest) {
                    println!("{}", shown_digest(&r.digest, args.digests));
                }
            }
        }
        format => crate::table::print(format, &table(&rows, args.digests))?,
    }
    Ok(0)
}

fn shown_digest(d: &str, full: bool) -> String {
    if full {
        d.to_string()
    } else {
        d.trim_start_matches("sha256:").chars().take(12).collect()
    }
}

/// The header, then one row per image, as the table shows them.
fn table(rows: &[Row], full: bool) -> Vec<Vec<String>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let header = ["REPOSITORY", "TAG", "DIGEST", "SIZE", "CREATED"].map(String::from);
    std::iter::once(header.to_vec())
        .chain(rows.iter().map(|r| {
            vec![
                r.repository.clone(),
                r.tag.clone(),
                shown_digest(&r.digest, full),
                human_size(r.size),
                created(&r.created, now),
            ]
        }))
        .collect()
}

/// Reproducible builds without SOURCE_DATE_EPOCH stamp the epoch; showing "56 years ago" for
/// them would be noise.
fn created(rfc3339: &str, now: i64) -> String {
    match parse_rfc3339(rfc3339) {
        Some(0) => "-".into(),
        Some(t) => ago(t, now),
        None => rfc3339.to_string(),
    }
}

/// Decimal units, as `docker images` shows sizes.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.3}")
            .chars()
            .take(if v >= 100.0 { 3 } else { 4 })
            .collect::<String>()
            .trim_end_matches('.')
            .to_string()
            + UNITS[unit]
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::human_size(999), "999B");
        assert_eq!(super::human_size(64_196), "64.1kB");
        assert_eq!(super::human_size(123_456_789), "123MB");
    }
}
