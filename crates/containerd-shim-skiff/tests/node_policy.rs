//! The node's trust policy under a real containerd: containerd pulls images itself, and the
//! shim refuses to create a task whose image is not signed as the node's policy asks. Real
//! registry (Debian's docker-registry), images pushed with `ctr`, signed with skiff's own
//! signing code, run with `ctr run` as a user would.

#[allow(dead_code)]
mod common;
#[path = "../../skiff-registry/tests/common/server.rs"]
mod registry;

use common::{guest, text, Containerd};
use skiff_registry::{Registry, RegistryConfig};
use std::ffi::OsStr;

/// Import `wasm` as a compat image, and push it to `registry` as `REGISTRY/NAME`.
fn publish(c: &Containerd, registry: &str, name: &str) -> String {
    let local = format!("example.com/skiff/{name}");
    c.import(&local, guest("hello.wasm"), &["world"]);
    let remote = format!("{registry}/{name}");
    for args in [
        &["images", "tag", &local, &remote][..],
        &["images", "push", "--plain-http", &remote],
    ] {
        let out = c.ctr(args);
        assert!(out.status.success(), "ctr {args:?}: {}", text(&out));
    }
    remote
}

/// Sign what `reference` names in its registry with `key`, as `skiff sign` does.
fn sign(reference: &str, key: &skiff_trust::PrivateKey) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let registry = Registry::new(RegistryConfig::default());
    rt.block_on(async {
        let (_, digest) = registry.resolve(reference).await.unwrap();
        let payload = skiff_trust::payload::make(reference, &digest, 0);
        let signature = key.sign(&payload);
        registry
            .attach_signature(reference, &digest, payload, signature)
            .await
            .unwrap();
    });
}

#[test]
fn ctr_runs_a_signed_image_and_the_shim_refuses_an_unsigned_one() {
    let registry = registry::TestRegistry::start();
    let keys = tempfile::tempdir().unwrap();
    let pair = skiff_trust::key::generate(b"").unwrap();
    let public = keys.path().join("cosign.pub");
    std::fs::write(&public, &pair.public_pem).unwrap();
    let key = skiff_trust::PrivateKey::from_pem(pair.private_pem.as_bytes(), b"").unwrap();
    let policy = keys.path().join("policy.json");
    let json = serde_json::json!({
        "default": [{"type": "insecureAcceptAnything"}],
        "transports": {"docker": {
            &registry.addr: [{"type": "sigstoreSigned", "keyPath": public}]
        }}
    });
    std::fs::write(&policy, serde_json::to_vec(&json).unwrap()).unwrap();
    let c = Containerd::start_with_env(&[("SKIFF_POLICY", policy.as_os_str())]);

    let signed = publish(&c, &registry.addr, "team/signed:1.0");
    sign(&signed, &key);
    let out = c.run(&[], &signed, "signed", &[]);
    let s = text(&out);
    assert!(out.status.success(), "{s}");
    assert!(s.contains("hello from skiff"), "{s}");

    let unsigned = publish(&c, &registry.addr, "team/unsigned:1.0");
    let out = c.run(&[], &unsigned, "unsigned", &[]);
    let s = text(&out);
    assert!(!out.status.success(), "{s}");
    assert!(
        s.contains("the node's trust policy refuses this container"),
        "{s}"
    );
    assert!(
        s.contains(&format!("is denied by {}", policy.display())),
        "{s}"
    );
    assert!(s.contains("the image has no signature"), "{s}");
    assert!(!s.contains("hello from skiff"), "{s}");

    // Signed by another key: refused as well.
    let other = skiff_trust::key::generate(b"").unwrap();
    let other = skiff_trust::PrivateKey::from_pem(other.private_pem.as_bytes(), b"").unwrap();
    let stranger = publish(&c, &registry.addr, "team/stranger:1.0");
    sign(&stranger, &other);
    let out = c.run(&[], &stranger, "stranger", &[]);
    let s = text(&out);
    assert!(!out.status.success(), "{s}");
    assert!(s.contains("not signed by the policy's key"), "{s}");
}

#[test]
fn a_broken_node_policy_refuses_every_container() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.json");
    std::fs::write(&policy, "[]").unwrap();
    let c = Containerd::start_with_env(&[("SKIFF_POLICY", OsStr::new(policy.as_os_str()))]);
    c.import("example.com/skiff/hello:1.0", guest("hello.wasm"), &[]);
    let out = c.run(&[], "example.com/skiff/hello:1.0", "hello", &[]);
    let s = text(&out);
    assert!(!out.status.success(), "{s}");
    assert!(s.contains(policy.to_str().unwrap()), "{s}");
    assert!(s.contains("must be an object"), "{s}");
}
