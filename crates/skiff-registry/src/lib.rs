//! skiff's OCI distribution client: `push`, `pull`, `login` against any OCI registry.
//!
//! - The requests go through one [`session`] layer over `reqwest`, which authenticates (Basic, or Docker's token
//!   flow in [`token`], with renewal and identity tokens), retries transient failures, bounds
//!   what it reads, and turns every answer into an error a user can act on (why:
//!   docs/registry.md).
//! - Blobs land in a [`BlobStore`] only after their digest has been checked.
//! - Every Wasm layout in use is read and normalised into skiff's own ([`Layout`]).
//! - Credentials are Docker's ([`DockerConfig`]).

mod attachments;
mod blobs;
mod body;
pub mod compat;
mod credentials;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod layout;
mod manifest;
mod progress;
mod pull;
mod push;
mod referrers;
mod session;
mod signatures;
mod spin_files;
mod store;
mod token;
mod transport;

pub use attachments::{AttachedSbom, Attachments, MAX_SBOM, MAX_SBOMS};
pub use body::StallRule;
pub use credentials::{config_key, CredentialSource, Credentials, DockerConfig};
pub use error::{RegistryError, Result};
pub use layout::Layout;
pub use progress::{BlobOutcome, Direction, Progress, Silent};
pub use pull::{PullRequest, Pulled};
pub use push::{PushFormat, PushRequest, Pushed};
pub use referrers::{MAX_REFERRERS, MAX_REFERRERS_INDEX, SBOM_ARTIFACT, SIGNATURE_ARTIFACT};
pub use session::Access;
pub use signatures::{
    Attached, Trust, MAX_PAYLOAD, MAX_SIGNATURES, MAX_SIGNATURE_MANIFEST, SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING,
};
pub use store::{BlobStore, BlobWriter, DirStore};
pub use transport::{certs_for, is_loopback, scheme_for, RegistryCerts};

use std::sync::Arc;
use std::time::Duration;

/// Largest manifest (or index) read from a registry; the distribution spec's own suggestion,
/// and what containerd and distribution enforce.
pub const MAX_MANIFEST: u64 = 4 << 20;

/// Largest image config read: configs are read whole into memory like manifests; an ordinary
/// one is a few hundred bytes, a Spin locked app a few KiB.
pub const MAX_CONFIG: u64 = 4 << 20;

/// Largest token server answer read. A token is a JWT of a few KiB at most (one with an x5c
/// certificate chain ~5 KiB; Docker Hub's ~1.5 KiB); 1 MiB leaves room for any of them.
pub const MAX_TOKEN_ANSWER: u64 = 1 << 20;

/// Everything a [`Registry`] is configured from. Nothing here is read from the environment.
pub struct RegistryConfig {
    /// Registries (`host` or `host:port`) that may be spoken to over plain HTTP besides loopback.
    pub insecure_registries: Vec<String>,
    /// Directories of per-registry certificates in Docker's layout, searched in order:
    /// `DIR/HOST[:PORT]/ca.crt` (any `*.crt`: CAs to trust), `client.cert` + `client.key`.
    /// The CLI passes `/etc/docker/certs.d` and `~/.config/docker/certs.d` unless told otherwise.
    pub certs_dirs: Vec<std::path::PathBuf>,
    /// What to authenticate with, if the registry asks.
    pub credentials: Option<Credentials>,
    /// Attempts per request (and per blob transfer) on transient failures.
    pub retries: u32,
    /// First wait between attempts; doubles each time.
    pub backoff: Duration,
    /// Uploads larger than this go in PATCH chunks of this size (for registries or proxies
    /// that cap a request's size); smaller ones in one PUT. Either way the bytes are streamed
    /// from the store, not held in memory.
    pub chunk_size: u64,
    /// Blobs moved at once.
    pub max_parallel: usize,
    /// Largest manifest or index read ([`MAX_MANIFEST`]).
    pub max_manifest_size: u64,
    /// Largest token server answer read ([`MAX_TOKEN_ANSWER`]).
    pub max_token_answer: u64,
    /// When a transfer (a blob, a manifest, a token, an error answer, the wait for an
    /// answer's head) counts as stalled and fails, naming the registry. A stalled blob download
    /// is retried from where it stopped, like a broken one.
    pub stall: StallRule,
    pub progress: Arc<dyn Progress>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            insecure_registries: Vec::new(),
            certs_dirs: Vec::new(),
            credentials: None,
            retries: 4,
            backoff: Duration::from_millis(250),
            // Each extra chunk is a request the registry answers by reopening the upload
            // (distribution reloads its hash state): measured slower than one stream.
            chunk_size: 512 << 20,
            max_parallel: 4,
            max_manifest_size: MAX_MANIFEST,
            max_token_answer: MAX_TOKEN_ANSWER,
            stall: StallRule::default(),
            progress: Arc::new(Silent),
        }
    }
}

/// A client for one run of push/pull/login. Cheap to create.
pub struct Registry {
    config: Arc<RegistryConfig>,
}

/// A parsed reference, Docker's grammar (`hello` is `docker.io/library/hello:latest`).
pub use skiff_image::Reference;

/// Parse a reference; without a tag or digest it means `:latest`, as Docker reads it.
pub fn parse_reference(s: &str) -> Result<Reference> {
    let bad = |e: skiff_image::ReferenceError| RegistryError::Reference {
        reference: s.to_string(),
        reason: e.reason,
    };
    let r = Reference::parse(s).map_err(bad)?;
    if r.tag().is_none() && r.digest().is_none() {
        return r.with_tag("latest").map_err(bad);
    }
    Ok(r)
}

impl Registry {
    pub fn new(config: RegistryConfig) -> Registry {
        Registry {
            config: Arc::new(config),
        }
    }

    /// Check that the configured credentials are accepted by `registry` (a host[:port]). A
    /// token server may answer with a refresh token: Docker's identity token, to store instead
    /// of the password.
    pub async fn login(&self, registry: &str) -> Result<Login> {
        // The token scope needs a repository; any name does to learn whether the login works.
        let probe = parse_reference(&format!("{registry}/skiff-login-check:latest"))?;
        let purpose = session::Purpose {
            access: Access::Pull,
            offline: true,
            mount_from: &[],
        };
        let session = session::Session::open_with(self.config.clone(), &probe, purpose).await?;
        Ok(Login {
            challenged: session.authenticated(),
            identity_token: session.identity_token().await,
        })
    }
}

/// What a login learned.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    /// False if the registry does not ask for credentials at all.
    pub challenged: bool,
    /// A refresh token from the registry's token server (Docker's `identitytoken`).
    pub identity_token: Option<String>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("challenged", &self.challenged)
            .field(
                "identity_token",
                &self.identity_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}
