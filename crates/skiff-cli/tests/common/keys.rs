//! Signing keys and signature tags for the trust tests.

use super::Skiff;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The password of the keys [`keypair`] makes (`SKIFF_KEY_PASSWORD`).
pub const PASSWORD: &str = "correct horse";

/// A key pair made by `skiff key generate` in `dir`: (cosign.key, cosign.pub).
pub fn keypair(s: &Skiff, dir: &Path) -> (PathBuf, PathBuf) {
    let prefix = dir.join("cosign");
    s.run_env(
        "SKIFF_KEY_PASSWORD",
        PASSWORD,
        &[
            "key",
            "generate",
            "--output-key-prefix",
            prefix.to_str().unwrap(),
        ],
    )
    .code(0)
    .stdout_has("Private key written to");
    let key = dir.join("cosign.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the private key is the owner's only");
    let pem = std::fs::read_to_string(&key).unwrap();
    assert!(
        pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"),
        "{pem}"
    );
    (key, dir.join("cosign.pub"))
}

/// The tag cosign keeps a manifest's signatures under: `sha256-<hex>.sig`.
pub fn sig_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}
