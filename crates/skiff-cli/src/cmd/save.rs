//! `skiff save`: images to an OCI layout tar.

use crate::home::Home;
use anyhow::Context;
use clap::Args;
use skiff_image::archive::{save as save_archive, SaveItem};
use skiff_store::atomic::{write_atomic_with, Atomic};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

/// Save images to a tar archive (OCI image layout; skopeo, podman and containerd read it)
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
skiff save -o hello.tar hello:1.0\n  \
skiff save hello:1.0 other:2 > images.tar\n  \
skopeo inspect oci-archive:hello.tar")]
pub struct SaveArgs {
    /// Write to this file instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Images to put in the archive: NAME[:TAG], a digest, or an ID
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

pub fn save(home: &Home, args: SaveArgs) -> anyhow::Result<u8> {
    let store = home.store()?;
    let mut items: Vec<SaveItem> = Vec::new();
    for spec in &args.images {
        let (reference, digest) = skiff_image::find(&store, spec)?;
        let name = reference.and_then(|r| {
            let tag = r.tag_or_latest()?.to_string();
            r.with_tag(&tag).ok()
        });
        match items.iter_mut().find(|i| i.digest == digest) {
            Some(item) => item.names.extend(name),
            None => items.push(SaveItem {
                digest,
                names: name.into_iter().collect(),
            }),
        }
    }
    match &args.output {
        Some(path) => {
            // Written atomically: a failed save leaves no half-written archive under the name.
            write_atomic_with(path, Atomic::PRIVATE, |f| {
                let mut out = std::io::BufWriter::new(f);
                save_archive(&store, &items, &mut out)?;
                out.flush().context("cannot write the archive")
            })
            .with_context(|| format!("cannot write {}", path.display()))?;
        }
        None => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                anyhow::bail!(
                    "refusing to write a tar archive to a terminal: use -o FILE or redirect stdout"
                );
            }
            let mut out = std::io::BufWriter::new(stdout.lock());
            save_archive(&store, &items, &mut out)?;
            out.flush().context("cannot write the archive")?;
        }
    }
    Ok(0)
}
