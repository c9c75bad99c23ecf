//! What can go wrong talking to a registry. Each message says what failed and what to do.

/// Errors of push, pull, login and logout.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid image reference {reference:?}: {reason}")]
    Reference { reference: String, reason: String },

    #[error("login required for {registry}: run `skiff login {registry}`")]
    LoginRequired { registry: String },

    #[error("login to {registry} failed: {reason}")]
    LoginFailed { registry: String, reason: String },

    #[error(
        "{registry} rejected a fresh access token from its token server (invalid_token): check \
         that the registry's and the token server's clocks agree and that the registry trusts the \
         token server's certificate, or run `skiff login {registry}` again"
    )]
    TokenRejected { registry: String },

    #[error(
        "{registry} denied access to {repository}: your credentials lack permission ({detail})"
    )]
    Denied {
        registry: String,
        repository: String,
        detail: String,
    },

    #[error("{what} not found in {registry}")]
    NotFound { registry: String, what: String },

    #[error(
        "{url} answered with an HTML page, not the registry API (HTTP {status}): is the address right, \
         or is a proxy or login page in the way?"
    )]
    Html { url: String, status: u16 },

    #[error("{url}: HTTP {status}: {detail}")]
    Status {
        url: String,
        status: u16,
        detail: String,
    },

    #[error("cannot reach {registry}: {detail}")]
    Unreachable { registry: String, detail: String },

    #[error("{registry}'s TLS certificate is not trusted: {detail}")]
    UntrustedCertificate { registry: String, detail: String },

    #[error("{registry} refused the TLS handshake: {detail}")]
    HandshakeRefused { registry: String, detail: String },

    #[error("{what}: {detail} (gave up after {attempts} attempts)")]
    GaveUp {
        what: String,
        attempts: u32,
        detail: String,
    },

    #[error("digest mismatch for {what}: expected {expected}, got {actual}; nothing was stored")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },

    #[error("{what} is larger than {limit} bytes; refused")]
    TooLarge { what: String, limit: u64 },

    #[error(
        "{what} from {peer} ({path}) is larger than {limit} bytes; refused, and the rest was not \
         read: no genuine answer is that large, so check that the address is the registry's"
    )]
    BodyTooLarge {
        /// `registry HOST`, or `the token server of HOST`.
        peer: String,
        what: String,
        path: String,
        limit: u64,
    },

    #[error("{peer} {detail}; check the network or try again")]
    Stalled {
        /// `registry HOST`, or `the token server of HOST`.
        peer: String,
        /// What it failed to do, and while receiving what.
        detail: String,
    },

    #[error("{0}")]
    Manifest(String),

    #[error(
        "not a Wasm image skiff can run: {found}. skiff reads the CNCF Wasm layout, Spin's, \
         runwasi's, Docker's wasi/wasm compat layout, and any manifest with an application/wasm \
         layer (docs/registry.md lists them)"
    )]
    UnknownLayout { found: String },

    #[error("{0}")]
    Choose(String),

    #[error("unsafe or unusable compat layer: {0}")]
    CompatLayer(String),

    #[error("credentials: {0}")]
    Credentials(String),

    #[error("local store: {0}")]
    Store(String),

    #[error("TLS setup: {0}")]
    Tls(String),

    /// The trust policy refused the image (before any of its blobs was fetched).
    #[error(transparent)]
    Untrusted(Box<skiff_trust::Denied>),
}

pub type Result<T> = std::result::Result<T, RegistryError>;
