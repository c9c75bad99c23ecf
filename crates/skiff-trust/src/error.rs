//! What can go wrong with keys, policies and signatures. Each message says what and what to do.

/// A key file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot decrypt the private key: wrong password, or the file is damaged (set SKIFF_KEY_PASSWORD or COSIGN_PASSWORD to the password given to `skiff key generate`)")]
    WrongPassword,
    #[error("{0}")]
    Malformed(String),
    #[error("cannot encode the key: {0}")]
    Encode(String),
}

/// A policy file that cannot be used. skiff refuses to go on rather than fall back to
/// accepting anything.
#[derive(Debug, thiserror::Error)]
#[error("policy {path}: {reason}; fix the file (format: containers-policy.json, see docs/trust.md) — nothing is pulled while it is unreadable")]
pub struct PolicyError {
    pub path: String,
    pub reason: String,
}

/// The policy refused an image.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{image} ({digest}) is denied by {source_name}: the rule for {scope} requires {requirement}: {reason}")]
pub struct Denied {
    /// The image as referenced: `localhost:5000/hello:1.0`.
    pub image: String,
    pub digest: String,
    /// The policy file, or "the default policy".
    pub source_name: String,
    /// The scope whose rule applied: `transports.docker["localhost:5000/hello"]`, `default`.
    pub scope: String,
    /// The requirement that failed, described: `sigstoreSigned (keyPath /etc/skiff/cosign.pub)`.
    pub requirement: String,
    pub reason: String,
}
