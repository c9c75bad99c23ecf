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
skopeo inspect oci-archive:hello.tar\n  \
skiff save --format docker hello:1.0 | docker load   then docker run --runtime skiff hello:1.0")]
pub struct SaveArgs {
    /// Write to this file instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// oci: an OCI image layout of the images as stored; docker: what `docker load` reads
    /// (Docker 20.10 loads no OCI layout), each image in Docker's compat layout (its args and env
    /// as Cmd and Env)
    #[arg(long, value_enum, default_value = "oci")]
    pub format: SaveFormat,

    /// With --format docker: the images' platform OS/ARCH [default: linux and this machine's
    /// architecture, since Docker 20.10 refuses to run `wasi` images]
    #[arg(long, value_name = "OS/ARCH", value_parser = crate::cmd::push::parse_platform)]
    pub platform: Option<(String, String)>,

    /// Images to put in the archive: NAME[:TAG], a digest, or an ID
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SaveFormat {
    Oci,
    Docker,
}

/// `docker load`'s tar of `items`: each name one image in the compat layout, for `platform`.
fn docker_tar(
    store: &skiff_store::Store,
    items: &[SaveItem],
    platform: (String, String),
) -> anyhow::Result<Vec<u8>> {
    let mut images = Vec::new();
    for item in items {
        if item.names.is_empty() {
            anyhow::bail!(
                "{}: --format docker needs the image by name (docker load tags it): save NAME:TAG",
                item.digest
            );
        }
        let image = skiff_image::Image::read(store, &item.digest)?;
        let wasm = store.read_blob(&image.layer().digest, store.max_blob_size())?;
        for name in &item.names {
            let config = skiff_image::compat::CompatConfig::of_image(
                name.to_string(),
                image.layer(),
                wasm.clone(),
                Some(&image.config),
                &image.defaults,
                Some(&platform),
            );
            images.push(skiff_image::compat::CompatImage::new(config)?);
        }
    }
    Ok(skiff_image::compat::docker_archive(&images)?)
}

pub fn save(home: &Home, args: SaveArgs) -> anyhow::Result<u8> {
    if args.platform.is_some() && matches!(args.format, SaveFormat::Oci) {
        anyhow::bail!(
            "--platform is for --format docker: the OCI layout keeps each image as stored"
        );
    }
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
    // The docker form is built whole first (a compat image is a few tar headers around the
    // binary); the OCI layout streams from the store.
    let docker = match args.format {
        SaveFormat::Docker => {
            let platform = args
                .platform
                .clone()
                .unwrap_or_else(|| ("linux".into(), host_architecture().into()));
            Some(docker_tar(&store, &items, platform)?)
        }
        SaveFormat::Oci => None,
    };
    let write = |out: &mut dyn Write| -> anyhow::Result<()> {
        match &docker {
            Some(tar) => out.write_all(tar).context("cannot write the archive")?,
            None => save_archive(&store, &items, out)?,
        }
        out.flush().context("cannot write the archive")
    };
    match &args.output {
        Some(path) => {
            // Written atomically: a failed save leaves no half-written archive under the name.
            write_atomic_with(path, Atomic::PRIVATE, |f| {
                write(&mut std::io::BufWriter::new(f))
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
            write(&mut std::io::BufWriter::new(stdout.lock()))?;
        }
    }
    Ok(0)
}

/// Docker's name for this machine's architecture (`amd64`, `arm64`), for `--format docker`.
fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
