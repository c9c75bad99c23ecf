//! `skiff system …`: the store as a whole.

use crate::home::Home;
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Verify every blob's digest and every tag's image
    #[command(after_help = "Examples:\n  \
skiff system check\n  \
skiff system check --repair        remove corrupt blobs and dangling tags\n\n\
Exit status: 0 nothing wrong (or all repaired), 1 problems found.")]
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Remove what is wrong: corrupt blobs, foreign files, dangling tags, leftovers
    #[arg(long)]
    pub repair: bool,
}

pub fn system(home: &Home, cmd: SystemCommand) -> anyhow::Result<u8> {
    match cmd {
        SystemCommand::Check(args) => {
            let store = home.store()?;
            let r = store.check(args.repair)?;
            for p in &r.problems {
                println!("{}{p}", if r.repaired { "removed: " } else { "" });
            }
            println!(
                "Checked {} blobs and {} tags: {} problem{}{}; {} leftover{} of interrupted writes{}",
                r.blobs,
                r.tags,
                r.problems.len(),
                if r.problems.len() == 1 { "" } else { "s" },
                if r.repaired && !r.problems.is_empty() { ", repaired" } else { "" },
                r.leftovers,
                if r.leftovers == 1 { "" } else { "s" },
                if r.leftovers > 0 && !r.repaired {
                    " (harmless; skiff image prune removes them)"
                } else {
                    ""
                }
            );
            if !r.problems.is_empty() && !r.repaired {
                println!("Run `skiff system check --repair` to remove them.");
                return Ok(1);
            }
            Ok(0)
        }
    }
}
