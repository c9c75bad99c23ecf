//! The node's trust policy under a real containerd: containerd pulls images itself, and the
//! shim refuses to create a task whose image is not signed as the node's policy asks. Real
//! registry (Debian's docker-registry), images pushed with `ctr`, signed with skiff's own
//! signing code, run with `ctr run` as a user would.

#[allow(dead_code)]
mod common;
#[allow(dead_code)]
mod cri_support;
#[path = "../../skiff-registry/tests/common/server.rs"]
mod registry;

use common::{guest, text, Containerd};
use cri_support::proto::{AuthConfig, CONTAINER_EXITED};
use cri_support::Cri;
use skiff_registry::{Credentials, Registry, RegistryConfig};
use std::ffi::OsStr;
use std::path::Path;

/// Import `wasm` as a compat image, and push it to `registry` as `REGISTRY/NAME`.
fn publish(c: &Containerd, registry: &str, name: &str) -> String {
    let local = format!("example.com/skiff/{name}");
    // Its name as its argument: each image a digest of its own.
    c.import(&local, guest("hello.wasm"), &[name]);
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
    sign_as(reference, key, None)
}

fn sign_as(reference: &str, key: &skiff_trust::PrivateKey, credentials: Option<Credentials>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let registry = Registry::new(RegistryConfig {
        credentials,
        ..Default::default()
    });
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

/// A key pair in `dir` and a policy there: images of `registry` must be signed with it;
/// anything else goes. (private key, policy file)
fn signed_only(dir: &Path, registry: &str) -> (skiff_trust::PrivateKey, std::path::PathBuf) {
    let pair = skiff_trust::key::generate(b"").unwrap();
    let public = dir.join("cosign.pub");
    std::fs::write(&public, &pair.public_pem).unwrap();
    let key = skiff_trust::PrivateKey::from_pem(pair.private_pem.as_bytes(), b"").unwrap();
    let policy = dir.join("policy.json");
    let json = serde_json::json!({
        "default": [{"type": "insecureAcceptAnything"}],
        "transports": {"docker": {
            registry: [{"type": "sigstoreSigned", "keyPath": public}]
        }}
    });
    std::fs::write(&policy, serde_json::to_vec(&json).unwrap()).unwrap();
    (key, policy)
}

#[test]
fn ctr_runs_a_signed_image_and_the_shim_refuses_an_unsigned_one() {
    let registry = registry::TestRegistry::start();
    let keys = tempfile::tempdir().unwrap();
    let (key, policy) = signed_only(keys.path(), &registry.addr);
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

/// Run `f` on a thread inside the network namespace of process `pid` (containerd's, where the
/// CRI tests' registry listens).
fn in_netns<T: Send>(pid: u32, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
            use std::os::fd::AsRawFd;
            // SAFETY: setns on this thread only, with a namespace file it holds open.
            assert_eq!(
                unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) },
                0
            );
            f()
        })
        .join()
        .unwrap()
    })
}

#[test]
fn a_kubelet_sees_start_container_fail_for_an_unsigned_image() {
    let dir = tempfile::tempdir().unwrap();
    let host = cri_support::registry::Registry::HOST;
    let (key, policy) = signed_only(dir.path(), host);
    // The shim reads the signatures with the node's registry credentials (Docker's config).
    let docker = dir.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let auth = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode("kube:s3cret")
    };
    std::fs::write(
        docker.join("config.json"),
        serde_json::json!({"auths": {host: {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let cri = Cri::start_with_env(&[
        ("SKIFF_POLICY", policy.as_os_str()),
        ("DOCKER_CONFIG", docker.as_os_str()),
    ]);
    let registry = cri_support::registry::Registry::start(&cri, "kube", "s3cret");
    let mut refs = Vec::new();
    for name in ["team/signed:1.0", "team/unsigned:1.0"] {
        let name = format!("{host}/{name}");
        let image = skiff_image::compat::CompatImage::new(skiff_image::compat::CompatConfig {
            name: name.clone(),
            wasm: guest("hello.wasm"),
            // Two images, two digests (the same content would be the same, signed, image).
            args: vec![name.clone()],
            ..Default::default()
        })
        .unwrap();
        let tar = cri.dir.path().join("push.tar");
        std::fs::write(&tar, image.layout_tar().unwrap()).unwrap();
        registry.push(&cri, &tar, &name, "kube:s3cret");
        let creds = || AuthConfig {
            username: "kube".into(),
            password: "s3cret".into(),
            server_address: format!("http://{host}"),
            ..Default::default()
        };
        refs.push((name.clone(), cri.pull(&name, Some(creds())).unwrap()));
    }
    in_netns(cri.pid(), || {
        let creds = Credentials {
            username: "kube".into(),
            secret: "s3cret".into(),
            identity_token: None,
        };
        sign_as(&refs[0].0, &key, Some(creds))
    });

    // A kubelet creates each container with the image_ref PullImage returned.
    let pod = cri.run_pod("skiff", "trusted", &[]);
    let id = cri.create(&pod, "signed", &refs[0].1, |_| {}).unwrap();
    cri.start_container(&id)
        .unwrap_or_else(|e| panic!("the signed image: {e}\n{}", cri.log()));
    let s = cri.wait_state(&id, CONTAINER_EXITED);
    assert_eq!(s.exit_code, 0, "{s:?}");
    cri.remove(&id).unwrap();

    let refused = cri
        .create(&pod, "unsigned", &refs[1].1, |_| {})
        .and_then(|id| cri.start_container(&id))
        .map(|_| panic!("the unsigned image started:\n{}", cri.log()))
        .unwrap_err();
    assert!(
        refused
            .message
            .contains("the node's trust policy refuses this container")
            && refused.message.contains("the image has no signature"),
        "{refused}"
    );
    cri.remove_pod(&pod);
    cri.assert_pod_gone(&pod);
}
