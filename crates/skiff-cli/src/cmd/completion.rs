//! `skiff completion SHELL` and `skiff man`: generated from the same clap types as the parser,
//! so a new flag is completed and documented the day it is added.

use clap::{Args, CommandFactory};
use std::path::PathBuf;

/// Print a shell completion script
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
skiff completion bash > /etc/bash_completion.d/skiff\n  \
skiff completion zsh > \"${fpath[1]}/_skiff\"\n  \
skiff completion fish > ~/.config/fish/completions/skiff.fish\n  \
source <(skiff completion bash)            in the current shell only")]
pub struct CompletionArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Write man pages: skiff(1) and one per verb, skiff-run(1) and so on
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
skiff man --dir /usr/local/share/man/man1 && man skiff-run\n  \
skiff man | man -l -                        read skiff(1) without installing it")]
pub struct ManArgs {
    /// Write every page into this directory (created if missing); without it, skiff(1) goes to
    /// stdout
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn completion(args: CompletionArgs) -> anyhow::Result<u8> {
    let mut cmd = crate::cli::Cli::command();
    // Into memory first: clap_complete panics on a failed write (a closed pipe, say).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "skiff", &mut script);
    crate::term::write_stdout(&script)?;
    Ok(0)
}

pub fn man(args: ManArgs) -> anyhow::Result<u8> {
    let cmd = crate::cli::Cli::command();
    let Some(dir) = args.dir else {
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut page)?;
        crate::term::write_stdout(&page)?;
        return Ok(0);
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("--dir {}: cannot create it: {e}", dir.display()))?;
    // clap_mangen names a verb's page `skiff-VERB.1`, as git and Docker do.
    clap_mangen::generate_to(cmd, &dir)
        .map_err(|e| anyhow::anyhow!("--dir {}: cannot write the pages: {e}", dir.display()))?;
    println!("man pages written to {}", dir.display());
    Ok(0)
}
