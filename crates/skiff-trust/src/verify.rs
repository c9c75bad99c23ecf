//! Checking an image against its rule: every requirement must hold; a `sigstoreSigned` one holds
//! when at least one of the image's signatures is by one of its keys, over this very manifest
//! digest, for this image's name.
//!
//! Order matters: the signature is checked over the payload's exact bytes before the payload is
//! parsed, so nothing an attacker wrote is interpreted until a trusted key vouched for it. Then
//! the payload's digest must be the digest being pulled (a valid signature of another image,
//! copied onto this image's `.sig` tag, is refused), and its name must match as the rule's
//! `signedIdentity` says.

use crate::error::Denied;
use crate::payload;
use crate::policy::{NamedKey, Requirement, Rule, SignedIdentity};
use skiff_image::Reference;
use skiff_store::Digest;

/// One signature as stored in the registry: the payload's bytes and the base64 signature.
#[derive(Debug, Clone)]
pub struct Signed {
    pub payload: Vec<u8>,
    pub signature: String,
}

/// Why the rule accepted the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub scope: String,
    /// The keys whose signatures were verified (empty when no signature was asked for).
    pub signed_by: Vec<String>,
}

impl Rule<'_> {
    /// Check `image` (pulled as named, its manifest `digest`) with its `signatures`.
    pub fn check(
        &self,
        image: &Reference,
        digest: &Digest,
        signatures: &[Signed],
    ) -> Result<Accepted, Box<Denied>> {
        let mut signed_by = Vec::new();
        for req in self.requirements {
            let deny = |reason: String| {
                Box::new(Denied {
                    image: image.to_string(),
                    digest: digest.to_string(),
                    source_name: self.source.to_string(),
                    scope: self.scope_name(),
                    requirement: req.describe(),
                    reason,
                })
            };
            match req {
                Requirement::AcceptAnything => {}
                Requirement::Reject => {
                    return Err(deny("the policy rejects every image in this scope".into()))
                }
                Requirement::Unsupported(what) => {
                    return Err(deny(format!(
                        "skiff cannot check {what}, so it does not accept the image"
                    )))
                }
                Requirement::Sigstore { keys, identity } => {
                    let by = check_signatures(image, digest, signatures, keys, identity)
                        .map_err(deny)?;
                    signed_by.push(by);
                }
            }
        }
        Ok(Accepted {
            scope: self.scope_name(),
            signed_by,
        })
    }
}

/// The label of the key of the first signature that passes, or why none did.
fn check_signatures(
    image: &Reference,
    digest: &Digest,
    signatures: &[Signed],
    keys: &[NamedKey],
    identity: &SignedIdentity,
) -> Result<String, String> {
    if signatures.is_empty() {
        return Err(format!(
            "the image has no signature (no {} tag in {})",
            crate::signature_tag(digest),
            image.repository()
        ));
    }
    let mut reasons: Vec<String> = Vec::new();
    for s in signatures {
        let Some(key) = keys
            .iter()
            .find(|k| k.key.verifies(&s.payload, &s.signature))
        else {
            reasons.push(
                "not signed by the policy's key (or the signature or payload was altered)".into(),
            );
            continue;
        };
        let claims = match payload::parse(&s.payload) {
            Ok(c) => c,
            Err(e) => {
                reasons.push(e);
                continue;
            }
        };
        if claims.manifest_digest != digest.to_string() {
            reasons.push(format!(
                "a valid signature, but for another manifest ({}): replayed from another image",
                claims.manifest_digest
            ));
            continue;
        }
        if let Err(e) = identity_matches(identity, image, &claims.docker_reference) {
            reasons.push(e);
            continue;
        }
        return Ok(key.label.clone());
    }
    reasons.dedup();
    Err(format!(
        "{} signature(s), none valid: {}",
        signatures.len(),
        reasons.join("; ")
    ))
}

/// containers/image's `signedIdentity` rules (`prm_identity.go`).
fn identity_matches(rule: &SignedIdentity, image: &Reference, signed: &str) -> Result<(), String> {
    let signed_ref = Reference::parse(signed)
        .map_err(|e| format!("its payload names an invalid image ({e})"))?;
    let same_repo = signed_ref.repository() == image.repository();
    let exact = signed_ref.to_string() == image.to_string();
    let name_only = |r: &Reference| r.tag().is_none() && r.digest().is_none();
    let ok = match rule {
        SignedIdentity::MatchRepoDigestOrExact => {
            if image.tag().is_some() {
                exact
            } else {
                same_repo
            }
        }
        SignedIdentity::MatchRepository => same_repo,
        SignedIdentity::MatchExact => exact && !name_only(image) && !name_only(&signed_ref),
        SignedIdentity::ExactReference(r) => Reference::parse(r)
            .map(|r| r.to_string() == signed_ref.to_string())
            .unwrap_or(false),
        SignedIdentity::ExactRepository(r) => Reference::parse(r)
            .map(|r| r.repository() == signed_ref.repository())
            .unwrap_or(false),
    };
    if ok {
        return Ok(());
    }
    let how = match rule {
        SignedIdentity::MatchRepoDigestOrExact if image.tag().is_some() => {
            " (pulled by tag: the signature must name the same tag; pull by digest, or set \
             signedIdentity matchRepository, to accept a signature naming only the repository)"
        }
        _ => "",
    };
    Err(format!(
        "a valid signature, but for {signed}, not {}{how}",
        image
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::key::{generate, PrivateKey};
    use crate::policy::Policy;

    /// A key, and a policy naming its public half `cosign.pub` (in the fixture's directory).
    pub(crate) struct Fixture {
        pub key: PrivateKey,
        pub policy: Policy,
        _dir: tempfile::TempDir,
    }

    pub(crate) fn fixture_with(policy_json: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let pair = generate(b"").unwrap();
        std::fs::write(dir.path().join("cosign.pub"), &pair.public_pem).unwrap();
        let policy = Policy::parse(policy_json.as_bytes(), "p.json", dir.path()).unwrap();
        Fixture {
            key: PrivateKey::from_pem(pair.private_pem.as_bytes(), b"").unwrap(),
            policy,
            _dir: dir,
        }
    }

    fn fixture(identity: &str) -> Fixture {
        fixture_with(&format!(
            r#"{{"default":[{{"type":"sigstoreSigned","keyPath":"cosign.pub"{identity}}}]}}"#
        ))
    }

    pub(crate) fn signed(key: &PrivateKey, reference: &str, digest: &Digest) -> Signed {
        let payload = payload::make(reference, digest, 0);
        Signed {
            signature: key.sign(&payload),
            payload,
        }
    }

    fn check(
        f: &Fixture,
        image: &str,
        digest: &Digest,
        sigs: &[Signed],
    ) -> Result<Accepted, Box<Denied>> {
        let image = Reference::parse(image).unwrap();
        f.policy.rule_for(&image).check(&image, digest, sigs)
    }

    #[test]
    fn signed_image_passes_and_names_the_key() {
        let f = fixture("");
        let d = Digest::of(b"manifest");
        let ok = check(
            &f,
            "localhost:5000/a:1",
            &d,
            &[signed(&f.key, "localhost:5000/a:1", &d)],
        )
        .unwrap();
        assert!(ok.signed_by[0].ends_with("cosign.pub"));
    }

    #[test]
    fn replayed_signature_of_another_digest_is_refused() {
        let f = fixture("");
        let other = signed(&f.key, "localhost:5000/a:1", &Digest::of(b"other"));
        let e = check(&f, "localhost:5000/a:1", &Digest::of(b"manifest"), &[other]).unwrap_err();
        assert!(e.reason.contains("replayed"), "{e}");
        assert!(e.to_string().contains("sigstoreSigned"), "{e}");
    }

    #[test]
    fn altered_payload_or_signature_or_other_key_is_refused() {
        let f = fixture("");
        let d = Digest::of(b"manifest");
        let mut s = signed(&f.key, "localhost:5000/a:1", &d);
        s.payload.push(b' ');
        assert!(check(&f, "localhost:5000/a:1", &d, &[s]).is_err());
        let other =
            PrivateKey::from_pem(generate(b"").unwrap().private_pem.as_bytes(), b"").unwrap();
        let s = signed(&other, "localhost:5000/a:1", &d);
        let e = check(&f, "localhost:5000/a:1", &d, &[s]).unwrap_err();
        assert!(e.reason.contains("not signed by the policy's key"), "{e}");
        let e = check(&f, "localhost:5000/a:1", &d, &[]).unwrap_err();
        assert!(e.reason.contains("no signature"), "{e}");
    }

    #[test]
    fn identity_rules() {
        let f = fixture("");
        let d = Digest::of(b"m");
        // Another repository's signature of the same digest.
        let e = check(
            &f,
            "localhost:5000/a:1",
            &d,
            &[signed(&f.key, "localhost:5000/b:1", &d)],
        )
        .unwrap_err();
        assert!(e.reason.contains("localhost:5000/b:1"), "{e}");
        // A cosign-style signature (repository only) for a pull by tag: refused by default ...
        let repo_only = signed(&f.key, "localhost:5000/a", &d);
        assert!(check(
            &f,
            "localhost:5000/a:1",
            &d,
            std::slice::from_ref(&repo_only)
        )
        .is_err());
        // ... accepted by digest, and with matchRepository.
        let by_digest = format!("localhost:5000/a@{d}");
        assert!(check(&f, &by_digest, &d, std::slice::from_ref(&repo_only)).is_ok());
        let f2 = fixture(r#","signedIdentity":{"type":"matchRepository"}"#);
        let repo_only = signed(&f2.key, "localhost:5000/a", &d);
        assert!(check(&f2, "localhost:5000/a:1", &d, &[repo_only]).is_ok());
    }
}
