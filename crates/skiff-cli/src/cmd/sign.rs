//! `skiff sign`: sign an image in its registry, where cosign and containers/image look for
//! signatures (the `sha256-<hex>.sig` tag), and as an OCI 1.1 referrer.

use anyhow::Context;
use clap::Args;
use skiff_image::{Digest, Reference};
use skiff_registry::{Registry, Silent};
use skiff_trust::PrivateKey;
use std::path::PathBuf;
use std::sync::Arc;

/// Sign an image in a registry with a cosign-format key
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
skiff key generate && skiff sign --key cosign.key localhost:5000/hello:1.0\n  \
skiff push --sign-by cosign.key localhost:5000/hello:1.0        push and sign in one go\n\n\
The signature signs the manifest digest the tag names now, and the name as given (with its\n\
tag), in sigstore's simple-signing format; it is stored as cosign stores it, so cosign verify,\n\
skopeo and podman (with a sigstoreSigned policy) read it. The key's password comes from\n\
SKIFF_KEY_PASSWORD (or COSIGN_PASSWORD), else it is asked on the terminal.")]
pub struct SignArgs {
    /// The private key (cosign.key, from skiff key generate or cosign generate-key-pair)
    #[arg(long, value_name = "KEY")]
    pub key: PathBuf,

    #[command(flatten)]
    pub registries: crate::remote::InsecureRegistries,

    /// The image in its registry: NAME:TAG or NAME@DIGEST
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

pub fn sign(args: SignArgs) -> anyhow::Result<u8> {
    // The key first: a wrong password fails before the registry is asked anything.
    let key = crate::cmd::key::load_private_key(&args.key)?;
    let r = remote(&args.image, args.registries.insecure)?;
    sign_digest(&r.rt, &r.registry, &key, &r.reference, &r.digest, false)?;
    Ok(0)
}

/// An image in its registry: a client, the reference (`:latest` when none was given) and the
/// manifest digest it names now.
pub struct Remote {
    pub rt: tokio::runtime::Runtime,
    pub registry: Registry,
    pub reference: Reference,
    pub digest: Digest,
}

pub fn remote(image: &str, insecure: Vec<String>) -> anyhow::Result<Remote> {
    let reference = Reference::parse(image)?;
    let registry = crate::remote::registry(reference.registry(), insecure, Arc::new(Silent))?;
    let rt = crate::cmd::login::runtime()?;
    let (reference, digest) = rt
        .block_on(registry.resolve(&reference.to_string()))
        .with_context(|| format!("resolving {}", reference.familiar()))?;
    Ok(Remote {
        rt,
        registry,
        reference,
        digest,
    })
}

/// Sign `digest` as `reference` names it and attach the signature; prints what was stored
/// (unless `quiet`: `push -q` prints only the reference).
pub fn sign_digest(
    rt: &tokio::runtime::Runtime,
    registry: &Registry,
    key: &PrivateKey,
    reference: &Reference,
    digest: &Digest,
    quiet: bool,
) -> anyhow::Result<()> {
    // The name signed: `registry/repo:tag` as given (what containers/image's default
    // matchRepoDigestOrExact compares), or the repository alone when given by digest.
    let name = match reference.tag() {
        Some(tag) => format!("{}:{tag}", reference.repository()),
        None => reference.repository(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let payload = skiff_trust::payload::make(&name, digest, now);
    let signature = key.sign(&payload);
    let attached = rt
        .block_on(registry.attach_signature(&reference.to_string(), digest, payload, signature))
        .with_context(|| format!("storing the signature of {}", reference.familiar()))?;
    if !quiet {
        println!(
            "Signed {name}@{digest} with key {}: {} ({} signature(s)), and as the OCI \
             referrer {}",
            key.public().fingerprint(),
            attached.reference,
            attached.count,
            attached.referrer
        );
    }
    Ok(())
}
