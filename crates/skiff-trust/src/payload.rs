//! The sigstore "simple signing" payload: what a cosign signature signs.
//!
//! ```json
//! {"critical":{"identity":{"docker-reference":"localhost:5000/hello:1.0"},
//!              "image":{"docker-manifest-digest":"sha256:…"},
//!              "type":"cosign container image signature"},
//!  "optional":{"creator":"skiff 0.1.0","timestamp":1765100000}}
//! ```
//!
//! A payload is parsed only after its signature has been checked, and then strictly, as
//! containers/image does: an unknown field in `critical` is refused, never ignored, because a
//! future field there could be one whose meaning skiff does not enforce.

use serde::{Deserialize, Serialize};
use skiff_store::Digest;

/// `critical.type` of every cosign image signature.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    critical: Critical,
    #[serde(default)]
    optional: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// What a verified payload claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The image's name as the signer wrote it: `registry/repo[:tag]`.
    pub docker_reference: String,
    pub manifest_digest: String,
}

/// The payload that signs `digest` as `docker_reference` (`registry/repo:tag`, or `registry/repo`).
pub fn make(docker_reference: &str, digest: &Digest, timestamp: u64) -> Vec<u8> {
    let p = Payload {
        critical: Critical {
            identity: Identity {
                docker_reference: docker_reference.to_string(),
            },
            image: Image {
                docker_manifest_digest: digest.to_string(),
            },
            kind: SIGNATURE_TYPE.to_string(),
        },
        optional: serde_json::json!({
            "creator": concat!("skiff ", env!("CARGO_PKG_VERSION")),
            "timestamp": timestamp,
        }),
    };
    serde_json::to_vec(&p).expect("plain data serialises")
}

/// Read a payload whose signature has been verified.
pub fn parse(payload: &[u8]) -> Result<Claims, String> {
    let p: Payload = serde_json::from_slice(payload)
        .map_err(|e| format!("its payload is not a simple-signing document: {e}"))?;
    if p.critical.kind != SIGNATURE_TYPE {
        return Err(format!(
            "its payload's type is {:?}, not {SIGNATURE_TYPE:?}",
            p.critical.kind
        ));
    }
    Ok(Claims {
        docker_reference: p.critical.identity.docker_reference,
        manifest_digest: p.critical.image.docker_manifest_digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_payload_parses_back() {
        let d = Digest::of(b"m");
        let c = parse(&make("localhost:5000/a:1", &d, 7)).unwrap();
        assert_eq!(c.docker_reference, "localhost:5000/a:1");
        assert_eq!(c.manifest_digest, d.to_string());
    }

    #[test]
    fn unknown_critical_field_is_refused() {
        let p = br#"{"critical":{"identity":{"docker-reference":"a"},"image":{"docker-manifest-digest":"sha256:00"},"type":"cosign container image signature","extra":1},"optional":null}"#;
        assert!(parse(p).unwrap_err().contains("extra"));
    }

    #[test]
    fn cosign_payload_with_null_optional_parses() {
        let p = br#"{"critical":{"identity":{"docker-reference":"index.docker.io/library/a"},"image":{"docker-manifest-digest":"sha256:00"},"type":"cosign container image signature"},"optional":null}"#;
        assert_eq!(
            parse(p).unwrap().docker_reference,
            "index.docker.io/library/a"
        );
    }
}
