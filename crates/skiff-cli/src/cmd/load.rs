//! `skiff load`: images from an OCI layout tar.

use crate::exit::NotFound;
use crate::home::Home;
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;

/// Load images from a tar archive (OCI image layout, as skiff save, skopeo or podman write)
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
skiff load -i hello.tar\n  \
skiff load < hello.tar\n  \
skopeo copy docker://… oci-archive:app.tar:example.com/app:1 && skiff load -i app.tar\n\n\
Nothing enters the store unless every blob matches its digest and every image is valid.")]
pub struct LoadArgs {
    /// Read from this file instead of stdin
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,

    /// Print only the digests loaded
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn load(home: &Home, args: LoadArgs) -> anyhow::Result<u8> {
    let store = home.store()?;
    let loaded = match &args.input {
        Some(path) => {
            let mut file = std::fs::File::open(path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    anyhow::Error::from(NotFound(format!("{}: no such file", path.display())))
                } else {
                    anyhow::Error::from(e).context(format!("cannot open {}", path.display()))
                }
            })?;
            skiff_image::archive::load(&store, &mut file)
                .with_context(|| format!("cannot load {}", path.display()))?
        }
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                anyhow::bail!("no archive: give -i FILE or pipe one into stdin");
            }
            skiff_image::archive::load(&store, &mut std::io::stdin().lock())
                .context("cannot load the archive from stdin")?
        }
    };
    for image in &loaded {
        if args.quiet {
            println!("{}", image.digest);
            continue;
        }
        if image.names.is_empty() {
            println!(
                "Loaded image ID: {} (no name in the archive: name it with `skiff tag {} \
                 NAME:TAG`, or skiff image prune removes it)",
                image.digest, image.digest
            );
        }
        for name in &image.names {
            println!("Loaded image: {}", name.familiar());
        }
    }
    Ok(0)
}
