//! `skiff verify`: check an image's signatures in its registry, with a key or with the policy
//! `pull` applies.

use anyhow::Context;
use clap::Args;
use std::path::PathBuf;

/// Verify an image's signatures in a registry (with --key, or as the policy would at pull)
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
skiff verify --key cosign.pub localhost:5000/hello:1.0\n  \
skiff --policy /etc/skiff/policy.json verify localhost:5000/hello:1.0   what pull would decide\n\n\
With --key: at least one signature must be by that key, over the manifest the tag names now,\n\
for this repository. Without: the policy's rule for the image is checked, as pull checks it.\n\
Exit status 0 if verified, 126 if refused (the message names the rule and why).")]
pub struct VerifyArgs {
    /// A public key (cosign.pub); without it, the policy decides
    #[arg(long, value_name = "KEY")]
    pub key: Option<PathBuf>,

    #[command(flatten)]
    pub registries: crate::remote::InsecureRegistries,

    /// The image in its registry: NAME:TAG or NAME@DIGEST
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

/// `--key KEY` as a one-rule policy: signed by that key, naming the repository (the tag need
/// not match: cosign signs the repository alone), as `cosign verify --key` checks.
pub fn key_policy(key: &std::path::Path) -> anyhow::Result<skiff_trust::Policy> {
    let path = std::fs::canonicalize(key)
        .with_context(|| format!("cannot read the public key {}", key.display()))?;
    let json = serde_json::json!({"default": [{
        "type": "sigstoreSigned",
        "keyPath": path,
        "signedIdentity": {"type": "matchRepository"},
    }]});
    skiff_trust::Policy::parse(
        json.to_string().as_bytes(),
        "--key",
        std::path::Path::new("/"),
    )
    .map_err(anyhow::Error::msg)
}

pub fn verify(home: &crate::home::Home, args: VerifyArgs) -> anyhow::Result<u8> {
    let policy = match &args.key {
        Some(key) => key_policy(key)?,
        None => home.policy()?,
    };
    let crate::cmd::sign::Remote {
        rt,
        registry,
        reference,
        digest,
    } = crate::cmd::sign::remote(&args.image, args.registries.insecure)?;
    let rule = policy.rule_for(&reference);
    let signatures = if rule.needs_signatures() {
        rt.block_on(registry.signatures(&reference.to_string(), &digest))
            .with_context(|| format!("reading the signatures of {}", reference.familiar()))?
    } else {
        Vec::new()
    };
    let accepted = rule
        .check(&reference, &digest, &signatures)
        .map_err(|d| crate::exit::CannotRun(d.to_string()))?;
    match accepted.signed_by.as_slice() {
        [] => println!(
            "Accepted {}@{digest}: {} {} accepts it without a signature",
            reference.familiar(),
            policy.source(),
            accepted.scope
        ),
        keys => println!(
            "Verified {}@{digest}: signed by {} ({} {})",
            reference.familiar(),
            keys.join(", "),
            policy.source(),
            accepted.scope
        ),
    }
    Ok(0)
}
