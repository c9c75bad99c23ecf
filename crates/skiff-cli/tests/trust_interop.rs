//! skiff's signatures checked by an independent peer, and the peer's checked by skiff: a
//! Python implementation of cosign's formats (tests/data/cosign_peer.py: `cryptography` for
//! ECDSA P-256, PyNaCl for secretbox, hashlib's scrypt), against a real registry.
//!
//! skopeo would be the natural peer, but Debian's skopeo 1.9.3 is built with "Debian-local
//! change: sigstore disabled": `--sign-by-sigstore-private-key` and `sigstoreSigned` policies
//! fail there (see docs/trust.md), so it cannot take part here.

mod common;
#[path = "../../skiff-registry/tests/common/server.rs"]
mod registry;

use common::signing::sig_tag;
use common::{Done, Skiff};
use registry::{Curl, TestRegistry};
use std::path::{Path, PathBuf};
use std::process::Command;

const PASSWORD: &str = "peer password";
const OCI: &str = "application/vnd.oci.image.manifest.v1+json";

fn peer(args: &[&str]) -> String {
    let script = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("tests/data/cosign_peer.py");
    // Debian's python3 with python3-cryptography and python3-nacl (scripts/test installs them).
    let out = Command::new("/usr/bin/python3")
        .arg(script)
        .args(args)
        .output()
        .expect("/usr/bin/python3");
    assert!(
        out.status.success(),
        "cosign_peer.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn with_password(s: &Skiff, args: &[&str]) -> Done {
    Done::from(
        s.cmd()
            .env("SKIFF_KEY_PASSWORD", PASSWORD)
            .args(args)
            .output()
            .unwrap(),
    )
}

fn digest_in(d: &Done) -> String {
    d.stdout
        .split(|c: char| c.is_whitespace() || c == '@')
        .find(|w| w.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("no digest in\n{d}"))
        .trim_end_matches(':')
        .to_string()
}

#[test]
fn skiff_signatures_and_keys_check_out_with_an_independent_implementation() {
    let registry = TestRegistry::start();
    let curl = Curl {
        addr: &registry.addr,
        user: None,
    };
    let (s, reference) = common::hello_tagged_for(&registry.addr, "team/hello");
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("cosign");
    with_password(
        &s,
        &[
            "key",
            "generate",
            "--output-key-prefix",
            prefix.to_str().unwrap(),
        ],
    )
    .code(0);
    let (key, public): (PathBuf, PathBuf) =
        (dir.path().join("cosign.key"), dir.path().join("cosign.pub"));
    // The peer decrypts skiff's private key (scrypt + secretbox) to the same public key.
    assert_eq!(
        peer(&["key-public", key.to_str().unwrap(), PASSWORD]),
        std::fs::read_to_string(&public).unwrap()
    );
    let pushed = with_password(
        &s,
        &["push", "--sign-by", key.to_str().unwrap(), &reference],
    );
    let digest = digest_in(pushed.code(0));
    // The peer verifies the stored signature over the stored payload.
    let sig: serde_json::Value = serde_json::from_slice(&curl.get(
        &format!("/v2/team/hello/manifests/{}", sig_tag(&digest)),
        OCI,
    ))
    .unwrap();
    let layer = &sig["layers"][0];
    let payload = curl.get(
        &format!("/v2/team/hello/blobs/{}", layer["digest"].as_str().unwrap()),
        "*/*",
    );
    let payload_file = dir.path().join("payload.json");
    std::fs::write(&payload_file, &payload).unwrap();
    let b64 = layer["annotations"]["dev.cosignproject.cosign/signature"]
        .as_str()
        .unwrap();
    assert_eq!(
        peer(&[
            "verify",
            public.to_str().unwrap(),
            payload_file.to_str().unwrap(),
            b64
        ])
        .trim(),
        "verified"
    );
    let claims: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        claims["critical"]["image"]["docker-manifest-digest"],
        digest.as_str()
    );
    assert_eq!(
        claims["critical"]["identity"]["docker-reference"],
        reference.as_str()
    );
    assert_eq!(
        claims["critical"]["type"],
        "cosign container image signature"
    );
}

#[test]
fn signatures_made_by_an_independent_implementation_verify_in_skiff() {
    let registry = TestRegistry::start();
    let curl = Curl {
        addr: &registry.addr,
        user: None,
    };
    let (s, reference) = common::hello_tagged_for(&registry.addr, "team/hello");
    let pushed = s.run(&["push", &reference]);
    let digest = digest_in(pushed.code(0));
    let dir = tempfile::tempdir().unwrap();
    peer(&["generate", dir.path().to_str().unwrap(), PASSWORD]);
    let (py_key, py_pub) = (dir.path().join("py.key"), dir.path().join("py.pub"));

    // skiff signs with a key the peer made and encrypted.
    with_password(&s, &["sign", "--key", py_key.to_str().unwrap(), &reference])
        .code(0)
        .stdout_has("(1 signature(s))");
    s.run(&["verify", "--key", py_pub.to_str().unwrap(), &reference])
        .code(0);

    // The peer signs a cosign-style payload (the repository alone, optional null); the test
    // stores it as cosign would, replacing skiff's signature (under the .sig tag, and the
    // referrer skiff wrote, by emptying the referrers tag's list).
    let repo = format!("{}/team/hello", registry.addr);
    let store_signature = |payload: &[u8], signature: &str| {
        let config = br#"{"architecture":"","os":"","config":{}}"#;
        let config_digest = curl.put_blob("team/hello", config);
        let payload_digest = curl.put_blob("team/hello", payload);
        let m = serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                        "digest": payload_digest.to_string(), "size": payload.len(),
                        "annotations": {"dev.cosignproject.cosign/signature": signature}}]
        });
        curl.put_manifest(
            "team/hello",
            &sig_tag(&digest),
            OCI,
            &serde_json::to_vec(&m).unwrap(),
        );
        let index = "application/vnd.oci.image.index.v1+json";
        let none = serde_json::json!({"schemaVersion": 2, "mediaType": index, "manifests": []});
        curl.put_manifest(
            "team/hello",
            &digest.replacen(':', "-", 1),
            index,
            none.to_string().as_bytes(),
        );
    };
    let sign = |payload: &str| {
        let f = dir.path().join("payload");
        std::fs::write(&f, payload).unwrap();
        peer(&[
            "sign",
            py_key.to_str().unwrap(),
            PASSWORD,
            f.to_str().unwrap(),
        ])
        .trim()
        .to_string()
    };
    let payload = peer(&["payload", &repo, &digest]);
    store_signature(payload.as_bytes(), &sign(&payload));
    s.run(&["verify", "--key", py_pub.to_str().unwrap(), &reference])
        .code(0)
        .stdout_has("Verified");
    // Under a policy: a repository-only signature needs matchRepository for a pull by tag, as
    // in containers/image.
    let policy = |identity: serde_json::Value| {
        let p = dir.path().join("policy.json");
        let mut req = serde_json::json!({"type": "sigstoreSigned", "keyPath": py_pub});
        if !identity.is_null() {
            req["signedIdentity"] = identity;
        }
        let doc = serde_json::json!({"default": [req]});
        std::fs::write(&p, doc.to_string()).unwrap();
        p
    };
    let node = Skiff::new();
    let strict = policy(serde_json::Value::Null);
    node.run_env("SKIFF_POLICY", &strict, &["pull", &reference])
        .code(126)
        .stderr_has("pulled by tag: the signature must name the same tag");
    let by_digest = format!("{repo}@{digest}");
    node.run_env(
        "SKIFF_POLICY",
        &strict,
        &["pull", "--no-compile", &by_digest],
    )
    .code(0);
    let loose = policy(serde_json::json!({"type": "matchRepository"}));
    node.run_env(
        "SKIFF_POLICY",
        &loose,
        &["pull", "--no-compile", &reference],
    )
    .code(0)
    .stdout_has("Verified: signed by");

    // The peer's signature over a payload naming another digest: refused.
    let other = format!("sha256:{}", "0".repeat(64));
    let payload = peer(&["payload", &repo, &other]);
    store_signature(payload.as_bytes(), &sign(&payload));
    s.run(&["verify", "--key", py_pub.to_str().unwrap(), &reference])
        .code(126)
        .stderr_has("for another manifest");
}
