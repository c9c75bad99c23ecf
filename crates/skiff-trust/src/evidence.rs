//! A binary checked without its registry: what a node (the daemon) is handed with a Wasm binary
//! to prove that it is a layer of a signed image, checked under the node's own policy.
//!
//! The client that pulled the image sends what it read from the registry: the image reference,
//! the manifest's bytes as the registry served them (and, for an index, the platform's manifest
//! it chose) and the signatures of the `.sig` tag. None of it is taken on trust: the rule is
//! the node's for the *claimed* reference; the signature must be by one of the rule's keys over
//! a payload naming `sha256(manifest bytes)` and (as `signedIdentity` says) that reference; and
//! the binary's digest must be a layer of that manifest. A client lying about any of them fails
//! one of those checks; what it cannot lie about is a scope the policy accepts anything from,
//! since there is nothing there to check (see docs/trust.md, "The daemon's policy").

use crate::error::Denied;
use crate::policy::{Policy, Rule};
use crate::verify::{Accepted, Signed};
use skiff_image::model::{Index, Manifest};
use skiff_image::Reference;
use skiff_store::Digest;

/// Largest evidence a node reads, encoded (a manifest is ~1 KiB, a signature ~0.5 KiB).
pub const MAX_EVIDENCE: usize = 48 << 10;
/// Most signatures looked at (as skiff-registry reads at most 64 from a `.sig` tag).
pub const MAX_SIGNATURES: usize = 64;

/// What a client read from the registry about the image a binary comes from.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// The image as pulled: `registry.example.com/team/app:1.0` (or `…@sha256:…`).
    pub reference: Reference,
    /// The manifest the reference names, byte for byte; for an index, the index and then the
    /// platform manifest chosen from it.
    pub manifests: Vec<Vec<u8>>,
    /// The signatures stored under the manifest's `sha256-<hex>.sig` tag.
    pub signatures: Vec<Signed>,
}

impl Policy {
    /// May the binary `wasm` run on this node, given what came with it? Without evidence (a
    /// local file, or a client that sent none) the policy's `default` applies.
    pub fn check_binary(
        &self,
        evidence: Option<&Evidence>,
        wasm: &Digest,
    ) -> Result<Accepted, Box<Denied>> {
        let Some(e) = evidence else {
            let rule = self.default_rule();
            if rule.accepts_anything() {
                return Ok(accepted(&rule));
            }
            return Err(deny(
                &rule,
                "a binary with no image reference",
                wasm,
                "nothing came with it to check: no image reference, manifest or signature \
                 (a local file, or a client that sent none); run an image pulled from a \
                 registry, signed as the policy asks"
                    .into(),
            ));
        };
        let rule = self.rule_for(&e.reference);
        if rule.accepts_anything() {
            return Ok(accepted(&rule));
        }
        let image = e.reference.to_string();
        let Some(top) = e.manifests.first() else {
            return Err(deny(&rule, &image, wasm, "no manifest came with it".into()));
        };
        let digest = Digest::of(top);
        if let Some(want) = e.reference.digest() {
            if *want != digest {
                return Err(deny(
                    &rule,
                    &image,
                    &digest,
                    format!("the manifest that came with it is {digest}, not the {want} named"),
                ));
            }
        }
        if e.signatures.len() > MAX_SIGNATURES {
            return Err(deny(
                &rule,
                &image,
                &digest,
                format!(
                    "{} signatures; at most {MAX_SIGNATURES} are read",
                    e.signatures.len()
                ),
            ));
        }
        let ok = rule.check(&e.reference, &digest, &e.signatures)?;
        binary_in(&e.manifests, wasm).map_err(|why| deny(&rule, &image, &digest, why))?;
        Ok(ok)
    }
}

/// The binary must be a layer of the (platform) manifest, which must be the one signed or one
/// the signed index lists.
fn binary_in(manifests: &[Vec<u8>], wasm: &Digest) -> Result<(), String> {
    let is_index = |b: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(b)
            .map(|v| v.get("manifests").is_some())
            .unwrap_or(false)
    };
    let manifest = match manifests {
        [m] if !is_index(m) => m,
        [index, m] if is_index(index) => {
            let index: Index = serde_json::from_slice(index)
                .map_err(|e| format!("the signed index is not an OCI index: {e}"))?;
            let d = Digest::of(m);
            if !index.manifests.iter().any(|e| e.digest == d) {
                return Err(format!(
                    "the platform manifest that came with it ({d}) is not in the signed index"
                ));
            }
            m
        }
        [_] => return Err("the signed manifest is an index, and no platform manifest came with it".into()),
        _ => {
            return Err(format!(
                "{} manifests came with it; expected the manifest, or an index and one of its manifests",
                manifests.len()
            ))
        }
    };
    let m: Manifest = serde_json::from_slice(manifest)
        .map_err(|e| format!("the signed manifest is not an OCI image manifest: {e}"))?;
    if m.layers.iter().any(|l| l.digest == *wasm) {
        return Ok(());
    }
    Err(format!(
        "the binary ({wasm}) is not a layer of the signed manifest: another binary under a \
         genuine signature, or the tag moved since the image was pulled (pull it again); an \
         image whose Wasm is inside a tar layer (Docker's compat layout) cannot be checked here"
    ))
}

fn accepted(rule: &Rule<'_>) -> Accepted {
    Accepted {
        scope: rule.scope_name(),
        signed_by: Vec::new(),
    }
}

fn deny(rule: &Rule<'_>, image: &str, digest: &Digest, reason: String) -> Box<Denied> {
    let requirement: Vec<String> = rule.requirements.iter().map(|r| r.describe()).collect();
    Box::new(Denied {
        image: image.to_string(),
        digest: digest.to_string(),
        source_name: rule.source.to_string(),
        scope: rule.scope_name(),
        requirement: requirement.join(" and "),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::tests::{fixture_with, signed, Fixture};

    /// `localhost:5000/prod` must be signed; `localhost:5000/dev` accepts anything; the rest
    /// is rejected.
    fn fixture() -> Fixture {
        fixture_with(
            r#"{"default":[{"type":"reject"}],"transports":{"docker":{
            "localhost:5000/prod":[{"type":"sigstoreSigned","keyPath":"cosign.pub"}],
            "localhost:5000/dev":[{"type":"insecureAcceptAnything"}]}}}"#,
        )
    }

    fn manifest(layer: &Digest) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.wasm.config.v0+json",
                       "digest": Digest::of(b"{}").to_string(), "size": 2},
            "layers": [{"mediaType": "application/wasm", "digest": layer.to_string(), "size": 4}]
        }))
        .unwrap()
    }

    fn evidence(f: &Fixture, reference: &str, manifests: Vec<Vec<u8>>) -> Evidence {
        let digest = Digest::of(&manifests[0]);
        Evidence {
            reference: Reference::parse(reference).unwrap(),
            signatures: vec![signed(&f.key, reference, &digest)],
            manifests,
        }
    }

    #[test]
    fn signed_binary_passes_and_another_binary_under_its_signature_does_not() {
        let f = fixture();
        let wasm = Digest::of(b"wasm");
        let e = evidence(&f, "localhost:5000/prod/a:1", vec![manifest(&wasm)]);
        assert!(f.policy.check_binary(Some(&e), &wasm).is_ok());
        let other = Digest::of(b"other wasm");
        let d = f.policy.check_binary(Some(&e), &other).unwrap_err();
        assert!(
            d.reason.contains("not a layer of the signed manifest"),
            "{d}"
        );
    }

    #[test]
    fn lies_about_the_reference_or_the_manifest_are_refused() {
        let f = fixture();
        let wasm = Digest::of(b"wasm");
        // A manifest naming the binary, with a genuine signature of another manifest.
        let genuine = evidence(
            &f,
            "localhost:5000/prod/a:1",
            vec![manifest(&Digest::of(b"x"))],
        );
        let forged = Evidence {
            manifests: vec![manifest(&wasm)],
            ..genuine.clone()
        };
        let d = f.policy.check_binary(Some(&forged), &wasm).unwrap_err();
        assert!(d.reason.contains("replayed"), "{d}");
        // The signature names prod/a; the claim says prod/b.
        let mut other_name = evidence(&f, "localhost:5000/prod/a:1", vec![manifest(&wasm)]);
        other_name.reference = Reference::parse("localhost:5000/prod/b:1").unwrap();
        assert!(f.policy.check_binary(Some(&other_name), &wasm).is_err());
        // A digest reference that is not the manifest's.
        let mut by_digest = evidence(&f, "localhost:5000/prod/a:1", vec![manifest(&wasm)]);
        by_digest.reference =
            Reference::parse(&format!("localhost:5000/prod/a@{}", Digest::of(b"y"))).unwrap();
        let d = f.policy.check_binary(Some(&by_digest), &wasm).unwrap_err();
        assert!(d.reason.contains("not the"), "{d}");
        // No signature at all.
        let mut unsigned = evidence(&f, "localhost:5000/prod/a:1", vec![manifest(&wasm)]);
        unsigned.signatures.clear();
        let d = f.policy.check_binary(Some(&unsigned), &wasm).unwrap_err();
        assert!(d.to_string().contains("sigstoreSigned"), "{d}");
    }

    #[test]
    fn an_index_must_list_the_platform_manifest() {
        let f = fixture();
        let wasm = Digest::of(b"wasm");
        let m = manifest(&wasm);
        let index = |listed: &[u8]| {
            serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "digest": Digest::of(listed).to_string(), "size": listed.len()}]
            }))
            .unwrap()
        };
        let ok = evidence(&f, "localhost:5000/prod/a:1", vec![index(&m), m.clone()]);
        assert!(f.policy.check_binary(Some(&ok), &wasm).is_ok());
        let stray = evidence(
            &f,
            "localhost:5000/prod/a:1",
            vec![index(b"other"), m.clone()],
        );
        let d = f.policy.check_binary(Some(&stray), &wasm).unwrap_err();
        assert!(d.reason.contains("not in the signed index"), "{d}");
        let alone = evidence(&f, "localhost:5000/prod/a:1", vec![index(&m)]);
        assert!(f.policy.check_binary(Some(&alone), &wasm).is_err());
    }

    #[test]
    fn no_evidence_falls_under_the_default() {
        let f = fixture();
        let wasm = Digest::of(b"wasm");
        let d = f.policy.check_binary(None, &wasm).unwrap_err();
        assert_eq!(d.scope, "default");
        assert!(d.reason.contains("no image reference"), "{d}");
        assert!(Policy::default().check_binary(None, &wasm).is_ok());
        // A scope that accepts anything accepts what claims to come from it.
        let dev = Evidence {
            reference: Reference::parse("localhost:5000/dev/a:1").unwrap(),
            manifests: vec![],
            signatures: vec![],
        };
        assert!(f.policy.check_binary(Some(&dev), &wasm).is_ok());
    }
}
