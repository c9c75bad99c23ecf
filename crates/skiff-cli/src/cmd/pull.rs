//! `skiff pull`: an image from a registry into the local store, tagged, and compiled into the
//! compile cache so that its first run starts without compiling.

use crate::home::Home;
use crate::progress::{Reporter, Stream};
use anyhow::Context;
use clap::Args;
use skiff_engine::{Engine, EngineConfig};
use skiff_image::{Digest, Image, Reference};
use skiff_registry::{Direction, Layout, PullRequest, Trust};
use std::sync::Arc;

/// Pull an image from a registry (any Wasm layout: skiff's, Spin's, runwasi's, Docker's compat,
/// OCI artifacts)
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
skiff pull localhost:5000/hello:1.0\n  \
skiff pull registry.example.com/team/app@sha256:…\n  \
skiff pull --component api ghcr.io/me/spin-app:1     one component of a Spin app\n\n\
Blobs already in the store are not downloaded again. Credentials come from skiff login\n\
(Docker's config). The image is compiled into the compile cache right after the pull.\n\
A registry with its own CA: save the CA as /etc/docker/certs.d/HOST:PORT/ca.crt (and a\n\
client certificate as client.cert + client.key), as for Docker; SKIFF_CERTS_DIR overrides.")]
pub struct PullArgs {
    /// Print only the image's reference
    #[arg(short, long)]
    pub quiet: bool,

    /// For an image holding several components (a Spin app): the one to keep
    #[arg(long, value_name = "NAME")]
    pub component: Option<String>,

    /// Do not compile the image into the compile cache after the pull
    #[arg(long)]
    pub no_compile: bool,

    #[command(flatten)]
    pub registries: crate::remote::InsecureRegistries,

    /// The image: NAME[:TAG] or NAME@DIGEST
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

pub fn pull(home: &Home, args: PullArgs) -> anyhow::Result<u8> {
    let quiet = args.quiet;
    let reference = pull_image(
        home,
        &args.image,
        PullOptions {
            component: args.component.as_deref(),
            insecure: args.registries.insecure,
            compile: !args.no_compile,
            stream: Stream::Stdout,
            quiet,
        },
    )?;
    // As Docker: the full reference last (alone with -q), for scripts.
    println!("{reference}");
    Ok(0)
}

pub struct PullOptions<'a> {
    pub component: Option<&'a str>,
    pub insecure: Vec<String>,
    /// Compile into the compile cache afterwards (with `skiff run`'s default engine settings).
    pub compile: bool,
    pub stream: Stream,
    pub quiet: bool,
}

/// Pull `spec` into the store and tag it; returns the full reference.
pub fn pull_image(home: &Home, spec: &str, opts: PullOptions) -> anyhow::Result<Reference> {
    let mut reference = Reference::parse(spec)?;
    if reference.tag().is_none() && reference.digest().is_none() {
        reference = reference.with_tag("latest")?;
    }
    // The policy first: a named file that is missing or malformed stops the pull here.
    let policy = home.policy()?;
    let reporter = Arc::new(Reporter::new(Direction::Down, opts.stream, opts.quiet));
    let registry = crate::remote::registry(reference.registry(), opts.insecure, reporter.clone())?;
    let store = home.store()?;
    let previous = match reference.tag() {
        Some(tag) => store.get_tag(&reference.repository(), tag)?,
        None => None,
    };
    let what = reference
        .digest()
        .map(|d| d.to_string())
        .or_else(|| reference.tag().map(str::to_string))
        .unwrap_or_default();
    reporter.say(&format!(
        "{what}: Pulling from {}",
        reference.familiar_repository()
    ));
    let rt = crate::cmd::login::runtime()?;
    let pulled = rt
        .block_on(registry.pull(PullRequest {
            reference: &reference.to_string(),
            store: &store,
            component: opts.component,
            policy: Some(&policy),
        }))
        .with_context(|| format!("pulling {}", reference.familiar()))?;
    drop(rt);

    let digest: Digest = pulled.manifest_digest.clone();
    // The registry crate stored a manifest in skiff's layout; check it before naming it.
    let image = Image::read(&store, &digest)
        .with_context(|| format!("the image pulled from {}", reference.familiar()))?;
    if let Some(tag) = reference.tag() {
        store.set_tag(&reference.repository(), tag, &digest)?;
    }
    reporter.say(&format!("Digest: {}", pulled.remote_digest));
    match &pulled.trust {
        Trust::Verified(a) => reporter.say(&format!(
            "Verified: signed by {} (policy {}, {})",
            a.signed_by.join(", "),
            policy.source(),
            a.scope
        )),
        Trust::AcceptedAnything { signed: false, .. } => reporter.say(&format!(
            "Note: {} is not signed; the policy accepts unsigned images (see docs/trust.md)",
            reference.familiar()
        )),
        _ => {}
    }
    if let Some(platform) = &pulled.platform {
        reporter.say(&format!("Platform: {platform}"));
    }
    if pulled.layout != Layout::Cncf {
        reporter.say(&format!(
            "Converted from the {} layout: stored as {digest}",
            pulled.layout
        ));
    }
    let status = if previous.as_ref() == Some(&digest) {
        "Image is up to date for"
    } else {
        "Downloaded newer image for"
    };
    reporter.say(&format!(
        "Status: {status} {} ({} blob bytes transferred)",
        reference.familiar(),
        pulled.bytes_moved
    ));
    if opts.compile {
        precompile(home, &store, &image, opts.stream);
    }
    Ok(reference)
}

/// Compile the image's Wasm into the compile cache with the engine settings `skiff run` uses by
/// default (no `--timeout`, so no epoch checks), so the first run is a cache hit. A failure here is not the pull's: the image is
/// stored, and `run` will report the same problem in context.
fn precompile(
    home: &Home,
    store: &skiff_image::Store,
    image: &Image,
    stream: crate::progress::Stream,
) {
    let result = (|| -> anyhow::Result<()> {
        let bytes = store.read_blob(&image.layer().digest, store.max_blob_size())?;
        let engine = Engine::without_interruption(&EngineConfig {
            cache_dir: Some(home.compile_cache()),
            ..EngineConfig::default()
        })?;
        let what = image.layer().digest.short();
        crate::progress::compiling(stream, what, bytes.len() as u64, || engine.load(&bytes))?;
        Ok(())
    })();
    match result {
        Ok(()) => tracing::debug!("compiled {} into the compile cache", image.layer().digest),
        Err(e) => tracing::warn!(
            "the image was pulled but could not be compiled: {}",
            crate::term::chain(e.as_ref())
        ),
    }
}
