//! The node's trust policy at the door: a binary uploaded with `POST /v1/blobs` is checked
//! against the daemon's own policy (`skiff --policy FILE daemon`, or its home's `policy.json`)
//! before it is stored, with the evidence the client sent in [`skiff_api::EVIDENCE_HEADER`].
//! The evidence is kept beside the binary, and the binary checked again with it whenever a
//! workload naming it is accepted or started (`Daemon::check_allowed`): a binary stored before
//! the policy was set, or under a policy since tightened, does not run.
//! The daemon reads no registry: the evidence is checked offline, with the policy's keys
//! (`skiff_trust::evidence`), so a client can neither skip the check (no evidence falls under
//! the policy's `default`) nor talk its way past it (everything it sends must verify).

use crate::error::ApiError;
use base64::Engine as _;
use skiff_api::UploadEvidence;
use skiff_image::Reference;
use skiff_store::Digest;
use skiff_trust::evidence::{Evidence, MAX_EVIDENCE, MAX_SIGNATURES};
use skiff_trust::{Policy, Signed};

/// Refuse the binary `digest` (403, naming the policy file, the scope, the requirement and
/// why) unless `policy` accepts it with `evidence` (the header's bytes as the client sent them;
/// `None`: nothing came with it, so the policy's `default` applies). Evidence that cannot be
/// read is refused too: at upload it is the client's mistake (400), later (evidence stored by
/// an earlier upload, checked again at a start) it is a reason not to run (403).
pub fn check(policy: &Policy, evidence: Option<&[u8]>, digest: &Digest) -> Result<(), ApiError> {
    let evidence = evidence.map(decode).transpose()?;
    match policy.check_binary(evidence.as_ref(), digest) {
        Ok(a) => {
            tracing::debug!(
                "{digest} accepted by {} ({}{})",
                policy.source(),
                a.scope,
                match a.signed_by.is_empty() {
                    true => String::new(),
                    false => format!(", signed by {}", a.signed_by.join(", ")),
                }
            );
            Ok(())
        }
        Err(denied) => Err(ApiError::Forbidden(denied.to_string())),
    }
}

fn decode(header: &[u8]) -> Result<Evidence, ApiError> {
    let bad = |what: String| {
        ApiError::BadRequest(format!(
            "the {} header: {what} (base64 of an UploadEvidence JSON object, see GET \
             /openapi.json)",
            skiff_api::EVIDENCE_HEADER
        ))
    };
    if header.len() > MAX_EVIDENCE {
        return Err(bad(format!(
            "{} bytes, more than the {} KiB read",
            header.len(),
            MAX_EVIDENCE >> 10
        )));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let json = b64
        .decode(header)
        .map_err(|e| bad(format!("not base64: {e}")))?;
    let wire: UploadEvidence =
        serde_json::from_slice(&json).map_err(|e| bad(format!("not the JSON expected: {e}")))?;
    if wire.signatures.len() > MAX_SIGNATURES || wire.manifests.len() > 2 {
        return Err(bad(format!(
            "{} manifests and {} signatures; at most 2 and {MAX_SIGNATURES} are read",
            wire.manifests.len(),
            wire.signatures.len()
        )));
    }
    let reference = Reference::parse(&wire.reference)
        .map_err(|e| bad(format!("reference {:?}: {e}", wire.reference)))?;
    let manifests = wire
        .manifests
        .iter()
        .map(|m| b64.decode(m))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("a manifest is not base64: {e}")))?;
    let signatures = wire
        .signatures
        .into_iter()
        .map(|s| {
            Ok(Signed {
                payload: b64.decode(&s.payload)?,
                signature: s.signature,
            })
        })
        .collect::<Result<Vec<_>, base64::DecodeError>>()
        .map_err(|e| bad(format!("a payload is not base64: {e}")))?;
    Ok(Evidence {
        reference,
        manifests,
        signatures,
    })
}
