//! `skiff image …`: image housekeeping.

use crate::cmd::images::human_size;
use crate::home::Home;
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Remove blobs no image name reaches, their compiled code, and leftovers of interrupted
    /// writes
    #[command(after_help = "Examples:\n  skiff rmi hello:1.0 && skiff image prune")]
    Prune(PruneArgs),
    /// List images (as `skiff images`)
    Ls(crate::cmd::images::ImagesArgs),
    /// Remove images (as `skiff rmi`)
    Rm(crate::cmd::rmi::RmiArgs),
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Accepted for Docker compatibility; skiff prune never prompts
    #[arg(short, long)]
    pub force: bool,
}

pub fn image(home: &Home, cmd: ImageCommand) -> anyhow::Result<u8> {
    match cmd {
        ImageCommand::Ls(args) => crate::cmd::images::images(home, args),
        ImageCommand::Rm(args) => crate::cmd::rmi::rmi(home, args),
        ImageCommand::Prune(_) => {
            let store = home.store()?;
            let report = store.prune()?;
            print_prune_report(&report);
            crate::cmd::files::prune(home, &store);
            Ok(0)
        }
    }
}

/// What a store prune took back (`image prune`, `system prune`).
pub fn print_prune_report(r: &skiff_store::PruneReport) {
    for d in &r.blobs {
        println!("Deleted: {d}");
    }
    println!(
        "Removed {} blobs ({}), {} compiled entries ({}), {} leftovers of interrupted writes",
        r.blobs.len(),
        human_size(r.blob_bytes),
        r.cache_entries,
        human_size(r.cache_bytes),
        r.temp_entries
    );
    println!(
        "Total reclaimed space: {}",
        human_size(r.blob_bytes + r.cache_bytes)
    );
}
