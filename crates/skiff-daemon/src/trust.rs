//! The node's trust policy at the door: a binary uploaded with `POST /v1/blobs` is checked
//! against the daemon's own policy (`skiff --policy FILE daemon`, or its home's `policy.json`)
//! before it is stored, with the evidence the client sent in [`skiff_api::EVIDENCE_HEADER`].
//! The daemon reads no registry: the evidence is checked offline, with the policy's keys
//! (`skiff_trust::evidence`), so a client can neither skip the check (no evidence falls under
//! the policy's `default`) nor talk its way past it (everything it sends must verify).

use crate::error::ApiError;
use base64::Engine as _;
use hyper::header::HeaderValue;
use skiff_api::UploadEvidence;
use skiff_image::Reference;
use skiff_store::Digest;
use skiff_trust::evidence::{Evidence, MAX_EVIDENCE, MAX_SIGNATURES};
use skiff_trust::{Policy, Signed};

/// Refuse `wasm` (403, naming the policy file, the scope, the requirement and why) unless the
/// policy accepts it. No policy: accepted, the header unread.
pub fn check_upload(
    policy: Option<&Policy>,
    header: Option<&HeaderValue>,
    wasm: &[u8],
) -> Result<(), ApiError> {
    let Some(policy) = policy else {
        return Ok(());
    };
    let evidence = header.map(decode).transpose()?;
    match policy.check_binary(evidence.as_ref(), &Digest::of(wasm)) {
        Ok(a) => {
            tracing::info!(
                "upload accepted by {} ({}{})",
                policy.source(),
                a.scope,
                match a.signed_by.is_empty() {
                    true => String::new(),
                    false => format!(", signed by {}", a.signed_by.join(", ")),
                }
            );
            Ok(())
        }
        Err(denied) => {
            tracing::warn!("upload refused: {denied}");
            Err(ApiError::Forbidden(denied.to_string()))
        }
    }
}

fn decode(header: &HeaderValue) -> Result<Evidence, ApiError> {
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
        .decode(header.as_bytes())
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
