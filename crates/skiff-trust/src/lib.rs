//! skiff's trust: who published an image, and is it the one they published.
//!
//! - [`key`]: key pairs in cosign's format (ECDSA P-256; the private key scrypt + NaCl
//!   secretbox encrypted), so cosign, skopeo and skiff share keys.
//! - [`payload`]: the sigstore "simple signing" payload a signature signs.
//! - [`policy`]: containers-policy.json (`insecureAcceptAnything`, `reject`, `sigstoreSigned`),
//!   scoped by registry and repository, longest match first.
//! - [`verify`]: an image's signatures checked against its rule.
//! - [`evidence`]: a binary checked against its rule with what a client read from the registry
//!   (the daemon's gate).
//!
//! The registry side (where signatures are stored: the `sha256-<hex>.sig` tag) is in
//! skiff-registry; this crate does no I/O but reading key and policy files.

mod error;
pub mod evidence;
pub mod key;
pub mod payload;
pub mod policy;
pub mod verify;

pub use error::{Denied, KeyError, PolicyError};
pub use evidence::Evidence;
pub use key::{KeyPair, PrivateKey, PublicKey};
pub use policy::{Policy, Requirement, Rule, SignedIdentity};
pub use verify::{Accepted, Signed};

use skiff_store::Digest;

/// The tag cosign and containers/image store an image's signatures under: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &Digest) -> String {
    format!("{}.sig", digest.to_string().replacen(':', "-", 1))
}
