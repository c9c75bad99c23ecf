//! `skiff push`: a local image to a registry, byte for byte as stored (or in Docker's compat
//! layout for containerd 1.6 and Docker).

use crate::home::Home;
use crate::progress::{Reporter, Stream};
use anyhow::Context;
use clap::{Args, ValueEnum};
use skiff_image::{Image, Reference};
use skiff_registry::{Direction, PushFormat, PushRequest};
use std::sync::Arc;

/// Push an image to a registry
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
skiff tag hello:1.0 localhost:5000/hello:1.0 && skiff push localhost:5000/hello:1.0\n  \
skiff push --format compat registry.example.com/team/app:1   for containerd 1.6 / Docker\n  \
skiff push --format compat --platform linux/amd64 registry.example.com/team/app:1   Docker 20.10, Kubernetes\n  \
skiff push --sign-by cosign.key localhost:5000/hello:1.0   and sign it (see skiff sign)\n  \
skiff push --sbom spdx localhost:5000/hello:1.0   with its bill of materials (see skiff sbom)\n\n\
Blobs the registry already has are not sent again; blobs it holds in another repository are\n\
mounted from there. Credentials come from skiff login (Docker's config).\n\
A registry with its own CA: save the CA as /etc/docker/certs.d/HOST:PORT/ca.crt (and a\n\
client certificate as client.cert + client.key), as for Docker; SKIFF_CERTS_DIR overrides.")]
pub struct PushArgs {
    /// The layout to push: cncf (skiff's own, the CNCF Wasm layout, byte for byte as stored) or
    /// compat (Docker's wasi/wasm layout: a tar layer holding the .wasm; the image's args and env
    /// as its Cmd and Env)
    #[arg(long, value_enum, default_value = "cncf")]
    pub format: Layout,

    /// With --format compat: the image's platform OS/ARCH [default: wasi/wasm]. Debian's Docker
    /// 20.10 refuses `wasi` images and Kubernetes nodes unpack only their own platform: publish
    /// for them as linux/amd64 (or linux/arm64); skiff's runtimes read the binary, not this
    #[arg(long, value_name = "OS/ARCH", value_parser = parse_platform)]
    pub platform: Option<(String, String)>,

    /// Print only the pushed reference
    #[arg(short, long)]
    pub quiet: bool,

    /// Sign the pushed manifest with this private key (cosign.key), as skiff sign does
    #[arg(long, value_name = "KEY")]
    pub sign_by: Option<std::path::PathBuf>,

    /// Attach a bill of materials (skiff sbom) in this format, as cosign attaches one (the
    /// tag sha256-<hex>.sbom beside the image) and as an OCI 1.1 referrer; with --sign-by,
    /// signed too
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub sbom: Option<crate::cmd::sbom::SbomFormat>,

    #[command(flatten)]
    pub registries: crate::remote::InsecureRegistries,

    /// The image: NAME[:TAG], as tagged locally (skiff tag)
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Layout {
    Cncf,
    Compat,
}

pub fn push(home: &Home, args: PushArgs) -> anyhow::Result<u8> {
    if args.platform.is_some() && matches!(args.format, Layout::Cncf) {
        anyhow::bail!(
            "--platform is for --format compat: skiff's own layout says what the binary is \
             (wasip1 or wasip2, architecture wasm)"
        );
    }
    let mut reference = Reference::parse(&args.image)?;
    if reference.digest().is_some() {
        anyhow::bail!(
            "{}: push a tag (NAME[:TAG]); a digest names content already pushed",
            args.image
        );
    }
    if reference.tag().is_none() {
        reference = reference.with_tag("latest")?;
    }
    // The key first: a wrong password fails before anything is pushed.
    let key = match &args.sign_by {
        Some(path) => Some(crate::cmd::key::load_private_key(path)?),
        None => None,
    };
    // The bill of materials before the push too: a binary it cannot read pushes nothing.
    let sbom = match args.sbom {
        Some(format) => Some((
            format,
            crate::cmd::sbom::document(home, &args.image, format)?,
        )),
        None => None,
    };
    let store = home.store()?;
    let (_, digest) = skiff_image::find(&store, &args.image)?;
    Image::read(&store, &digest).with_context(|| format!("image {}", args.image))?;
    let manifest = store.read_blob(&digest, skiff_store::MANIFEST_MAX)?;

    let reporter = Arc::new(Reporter::new(Direction::Up, Stream::Stdout, args.quiet));
    let registry = crate::remote::registry(
        reference.registry(),
        args.registries.insecure,
        reporter.clone(),
    )?;
    reporter.say(&format!(
        "The push refers to repository [{}]",
        reference.repository()
    ));
    let rt = crate::cmd::login::runtime()?;
    let pushed = rt
        .block_on(registry.push(PushRequest {
            reference: &reference.to_string(),
            manifest: manifest.into(),
            store: &store,
            format: match args.format {
                Layout::Cncf => PushFormat::Cncf,
                Layout::Compat => PushFormat::Compat {
                    platform: args.platform.clone(),
                },
            },
        }))
        .with_context(|| format!("pushing {}", reference.familiar()))?;
    if args.quiet {
        println!("{reference}");
    } else {
        println!(
            "{}: digest: {} ({} blob bytes transferred)",
            reference.tag().unwrap_or("latest"),
            pushed.digest,
            pushed.bytes_moved
        );
    }
    if let Some(key) = &key {
        crate::cmd::sign::sign_digest(&rt, &registry, key, &reference, &pushed.digest, args.quiet)?;
    }
    if let Some((format, doc)) = sbom {
        let attached = rt
            .block_on(registry.attach(
                &reference.to_string(),
                &pushed.digest,
                "sbom",
                format.media_type(),
                serde_json::to_vec(&doc)?,
            ))
            .with_context(|| format!("attaching the SBOM of {}", reference.familiar()))?;
        if !args.quiet {
            println!(
                "SBOM attached: {}, and as the OCI referrer {}",
                attached.reference, attached.referrer
            );
        }
        // Signed as `cosign sign --attachment sbom` signs it: the manifests that list it (the
        // tag's and the referrer), so a reader can require the signer's key.
        if let Some(key) = &key {
            for manifest in [&attached.digest, &attached.referrer] {
                crate::cmd::sign::sign_digest(&rt, &registry, key, &reference, manifest, true)?;
            }
            if !args.quiet {
                println!("SBOM signed with key {}", key.public().fingerprint());
            }
        }
    }
    Ok(0)
}

/// `OS/ARCH`, e.g. `linux/amd64`.
pub(crate) fn parse_platform(s: &str) -> Result<(String, String), String> {
    match s.split_once('/') {
        Some((os, arch))
            if !os.is_empty()
                && !arch.is_empty()
                && !arch.contains('/')
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '/' || c == '_') =>
        {
            Ok((os.to_string(), arch.to_string()))
        }
        _ => Err(format!(
            "invalid platform {s:?}: expected OS/ARCH, e.g. linux/amd64 or wasi/wasm"
        )),
    }
}
