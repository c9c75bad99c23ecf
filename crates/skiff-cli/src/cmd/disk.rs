//! `skiff system df` and `skiff system prune`: what skiff keeps on disk, and taking back what
//! nothing needs — Docker's verbs of the same names, for images, compiled code and workloads.

use crate::client::Client;
use crate::cmd::images::human_size;
use crate::home::Home;
use crate::table::{parse_list_format, ListFormat};
use clap::Args;
use hyper::Method;
use skiff_api::{Desired, Status, Workload};

#[derive(Debug, Args)]
pub struct DfArgs {
    /// Output format: table, json, or a template such as '{{.Type}} {{.Size}}'
    #[arg(long, default_value = "table", value_parser = parse_list_format)]
    pub format: ListFormat,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
}

#[derive(serde::Serialize)]
struct DfRow {
    r#type: &'static str,
    total: usize,
    size_bytes: u64,
    reclaimable_bytes: u64,
}

pub fn df(home: &Home, args: DfArgs) -> anyhow::Result<u8> {
    let u = home.store()?.usage()?;
    let rows = [
        DfRow {
            r#type: "Images",
            total: u.images,
            size_bytes: u.blob_bytes,
            reclaimable_bytes: u.reclaimable_blob_bytes,
        },
        DfRow {
            r#type: "Compiled code",
            total: u.cache_entries,
            size_bytes: u.cache_bytes,
            reclaimable_bytes: u.reclaimable_cache_bytes,
        },
    ];
    if let ListFormat::Json = args.format {
        println!("{}", crate::term::json(&rows)?);
        return Ok(0);
    }
    let pct = |part: u64, whole: u64| match whole {
        0 => String::new(),
        w => format!(" ({}%)", part * 100 / w),
    };
    let mut table = vec![["TYPE", "TOTAL", "SIZE", "RECLAIMABLE"]
        .map(String::from)
        .to_vec()];
    for r in &rows {
        table.push(vec![
            r.r#type.to_string(),
            r.total.to_string(),
            human_size(r.size_bytes),
            format!(
                "{}{}",
                human_size(r.reclaimable_bytes),
                pct(r.reclaimable_bytes, r.size_bytes)
            ),
        ]);
    }
    crate::table::print(&args.format, &table)?;
    Ok(0)
}

/// As `docker system prune`: stopped workloads (when a daemon answers), then every blob no image
/// name reaches with its compiled code, then leftovers of interrupted writes.
pub fn prune(
    home: &Home,
    client: impl FnOnce() -> anyhow::Result<Client>,
    args: PruneArgs,
) -> anyhow::Result<u8> {
    if !args.force && !confirm()? {
        return Ok(0);
    }
    // A node without a daemon has no workloads: that is not a failure of prune.
    let daemon = client().and_then(|c| {
        let (_, list) =
            c.call::<Vec<Workload>>(Method::GET, "/v1/workloads?all=true", None::<&()>)?;
        Ok((c, list.unwrap_or_default()))
    });
    match daemon {
        Ok((c, list)) => {
            let stopped = list.iter().filter(|w| {
                w.desired == Desired::Stopped
                    && !matches!(w.state.status, Status::Running | Status::Restarting)
            });
            let mut header = false;
            for w in stopped {
                c.call::<()>(
                    Method::DELETE,
                    &format!("/v1/workloads/{}", w.id),
                    None::<&()>,
                )?;
                if !std::mem::replace(&mut header, true) {
                    println!("Deleted workloads:");
                }
                println!("{}", crate::term::for_terminal(&w.name));
            }
        }
        Err(e) if e.is::<crate::client::NoDaemon>() => {
            println!("No daemon answered: no workloads to remove.")
        }
        Err(e) => return Err(e),
    }
    let store = home.store()?;
    let report = store.prune()?;
    crate::cmd::image::print_prune_report(&report);
    crate::cmd::files::prune(home, &store);
    Ok(0)
}

fn confirm() -> anyhow::Result<bool> {
    use std::io::{IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "skiff system prune removes stopped workloads and images no name reaches; with no \
             terminal to confirm on, add -f"
        );
    }
    print!(
        "WARNING! This will remove:\n  - every stopped workload in the daemon\n  - every blob no \
         image name reaches, and its compiled code\n  - leftovers of interrupted writes\n\nAre you \
         sure you want to continue? [y/N] "
    );
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
