//! What the trust, referrers and sbom tests share: keys made by `skiff key generate`, policies,
//! and the manifest of a genuine image for scripted (hostile) registries to serve.

use super::{Done, Skiff};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The password of every test key.
pub const PASSWORD: &str = "correct horse";

/// `skiff ARGS` with the key password and a policy file.
pub fn with(s: &Skiff, policy: Option<&Path>, args: &[&str]) -> Done {
    let mut c = s.cmd();
    c.env("SKIFF_KEY_PASSWORD", PASSWORD);
    if let Some(p) = policy {
        c.env("SKIFF_POLICY", p);
    }
    Done::from(c.args(args).output().unwrap())
}

/// A key pair made by `skiff key generate` in `dir`: (cosign.key, cosign.pub).
pub fn keypair(s: &Skiff, dir: &Path) -> (PathBuf, PathBuf) {
    let prefix = dir.join("cosign");
    with(
        s,
        None,
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

pub fn write_policy(dir: &Path, json: serde_json::Value) -> PathBuf {
    let p = dir.join("policy.json");
    std::fs::write(&p, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    p
}

/// The policy "everything from `registry` must be signed by `public`; anything else goes".
pub fn signed_only(dir: &Path, registry: &str, public: &Path) -> PathBuf {
    write_policy(
        dir,
        serde_json::json!({
            "default": [{"type": "insecureAcceptAnything"}],
            "transports": {"docker": {
                registry: [{"type": "sigstoreSigned", "keyPath": public}]
            }}
        }),
    )
}

/// The manifest digest a `skiff push` printed.
pub fn pushed_digest(d: &Done) -> String {
    d.stdout
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("no digest in\n{d}"))
        .to_string()
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", <sha2::Sha256 as sha2::Digest>::digest(bytes))
}

/// The manifest of a genuine image, for a scripted registry to serve; the blobs it names are
/// never served, so a pull that gets past the gate fails at the first blob.
pub fn genuine_manifest() -> Vec<u8> {
    let config = br#"{"architecture":"wasm","os":"wasip1"}"#;
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.wasm.config.v0+json", "digest": sha256(config), "size": config.len()},
        "layers": [{"mediaType": "application/wasm", "digest": sha256(b"\0asm"), "size": 4}]
    }))
    .unwrap()
}

/// The tag cosign keeps a manifest's signatures under: `sha256-<hex>.sig`.
pub fn sig_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}
