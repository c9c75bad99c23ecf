//! The node's trust policy, checked by the shim when containerd creates a container's task:
//! containerd pulls images itself, knowing nothing of skiff's policy, so the shim checks the
//! image before its guest is planned. The image is the one containerd says the container runs
//! (its record's `image`; CRI's `io.kubernetes.cri.image-name` annotation if that is empty), at
//! the digest containerd's image store holds for it (content containerd verified by digest
//! when it pulled it); its signatures are read from the image's registry (the `.sig` tag,
//! bounded as `skiff pull` reads it) and checked under the node's policy as `pull` checks them.
//!
//! The policy: `SKIFF_POLICY` in containerd's environment (shims inherit it), else
//! `/etc/skiff/policy.json` if it exists, else none (accept anything, as before). It is read at
//! each container's creation, so a changed policy applies to the next container.

use crate::containerd::Containerd;
use crate::spec::Spec;
use skiff_image::{Digest, Reference};
use skiff_trust::Policy;
use std::path::{Path, PathBuf};

/// The node's policy file when `SKIFF_POLICY` names none.
pub const NODE_POLICY: &str = "/etc/skiff/policy.json";
/// Set by containerd's CRI plugin: the image as the pod spec names it.
pub const ANNOTATION_CRI_IMAGE_NAME: &str = "io.kubernetes.cri.image-name";

/// The node's policy (see the module doc); `None`: no policy, accept anything. A policy that is
/// named but missing or malformed is an error: every container is refused until it is fixed.
pub fn node_policy() -> Result<Option<Policy>, String> {
    let path = match std::env::var_os("SKIFF_POLICY") {
        Some(p) if p.is_empty() => {
            return Err("SKIFF_POLICY is set but empty: name a policy file, or unset it".into())
        }
        Some(p) => PathBuf::from(p),
        None if Path::new(NODE_POLICY).exists() => PathBuf::from(NODE_POLICY),
        None => return Ok(None),
    };
    Policy::load(&path).map(Some).map_err(|e| e.to_string())
}

/// May container `id` run under `policy`? `Ok`: what was verified, for the log; `Err`: why not,
/// naming the policy file, the rule and the reason.
pub fn check(
    policy: &Policy,
    containerd: &Containerd,
    id: &str,
    spec: &Spec,
) -> Result<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    rt.block_on(check_async(policy, containerd, id, spec))
}

async fn check_async(
    policy: &Policy,
    containerd: &Containerd<'_>,
    id: &str,
    spec: &Spec,
) -> Result<String, String> {
    let mut name = containerd.container_image(id).await?;
    if name.is_empty() {
        name = spec
            .annotations
            .get(ANNOTATION_CRI_IMAGE_NAME)
            .cloned()
            .unwrap_or_default();
    }
    if name.is_empty() {
        let rule = policy.default_rule();
        if rule.accepts_anything() {
            return Ok(format!(
                "no image; accepted by {} (default)",
                policy.source()
            ));
        }
        let reqs: Vec<String> = rule.requirements.iter().map(|r| r.describe()).collect();
        return Err(format!(
            "container {id} names no image, so the rule for default of {} applies, which \
             requires {}: nothing to check it against",
            policy.source(),
            reqs.join(" and ")
        ));
    }
    let reference = Reference::parse(&name)
        .map_err(|e| format!("the container's image {name:?} is not a valid reference: {e}"))?;
    let rule = policy.rule_for(&reference);
    if rule.accepts_anything() {
        return Ok(format!(
            "{name}: accepted by {} ({})",
            policy.source(),
            rule.scope_name()
        ));
    }
    let digest: Digest = containerd
        .image_digest(&name)
        .await?
        .parse()
        .map_err(|e| format!("containerd's digest for {name}: {e}"))?;
    if let Some(want) = reference.digest() {
        if *want != digest {
            return Err(format!(
                "{name} is {digest} in containerd's store, not the digest it names"
            ));
        }
    }
    let signatures = match rule.needs_signatures() {
        true => registry(&reference)?
            .signatures(&name, &digest)
            .await
            .map_err(|e| format!("reading the signatures of {name} ({digest}): {e}"))?,
        false => Vec::new(),
    };
    let ok = rule
        .check(&reference, &digest, &signatures)
        .map_err(|d| d.to_string())?;
    Ok(format!(
        "{name} ({digest}) verified: signed by {} ({}, {})",
        ok.signed_by.join(", "),
        policy.source(),
        ok.scope
    ))
}

/// The image's registry, with the credentials of the Docker config in the shim's environment
/// (containerd's: `DOCKER_CONFIG`, else `$HOME/.docker`), if any; loopback over plain HTTP.
fn registry(reference: &Reference) -> Result<skiff_registry::Registry, String> {
    let credentials = match skiff_registry::DockerConfig::from_env() {
        Ok(c) => c
            .get(reference.registry())
            .map_err(|e| format!("the credentials for {}: {e}", reference.registry()))?
            .map(|(c, _)| c),
        Err(_) => None,
    };
    Ok(skiff_registry::Registry::new(
        skiff_registry::RegistryConfig {
            credentials,
            ..Default::default()
        },
    ))
}
