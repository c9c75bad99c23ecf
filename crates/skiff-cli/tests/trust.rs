//! Signed images and the trust policy, against a real registry (Debian's docker-registry):
//! `skiff key generate`, `skiff sign`, `skiff push --sign-by`, `skiff verify`, and `pull` (so
//! `run`) gated by a containers-policy.json before any blob is fetched.

mod common;
#[path = "../../skiff-registry/tests/common/faulty.rs"]
mod faulty;
#[path = "../../skiff-registry/tests/common/server.rs"]
mod registry;

use common::signing::{keypair, pushed_digest, sig_tag, signed_only, with, write_policy};
use common::Skiff;
use faulty::{Faulty, Reply};
use registry::{Curl, TestRegistry};
use std::os::unix::fs::PermissionsExt;

/// Blobs in a home's store: a denied pull must leave none.
fn blob_count(s: &Skiff) -> usize {
    std::fs::read_dir(s.home.path().join("blobs/sha256"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn signed_push_verifies_and_pulls_under_a_sigstore_policy() {
    let registry = TestRegistry::start();
    let (s, reference) = common::hello_tagged_for(&registry.addr, "team/hello");
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keypair(&s, keys.path());

    let pushed = with(
        &s,
        None,
        &["push", "--sign-by", key.to_str().unwrap(), &reference],
    );
    pushed
        .code(0)
        .stdout_has("Signed ")
        .stdout_has(".sig (1 signature(s))");
    let digest = pushed_digest(&pushed);
    // Stored where cosign and containers/image look: the sha256-<hex>.sig tag, one
    // simple-signing layer with its signature annotation.
    let sig: serde_json::Value = serde_json::from_slice(
        &Curl {
            addr: &registry.addr,
            user: None,
        }
        .get(
            &format!("/v2/team/hello/manifests/{}", sig_tag(&digest)),
            "application/vnd.oci.image.manifest.v1+json",
        ),
    )
    .unwrap();
    let layer = &sig["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    assert!(
        layer["annotations"]["dev.cosignproject.cosign/signature"].is_string(),
        "{sig}"
    );

    s.run(&["verify", "--key", public.to_str().unwrap(), &reference])
        .code(0)
        .stdout_has(&format!("Verified {reference}@{digest}: signed by"));
    // A second signer adds a signature beside the first, as cosign does; both verify.
    let second = tempfile::tempdir().unwrap();
    let (key2, public2) = keypair(&s, second.path());
    with(
        &s,
        None,
        &["sign", "--key", key2.to_str().unwrap(), &reference],
    )
    .code(0)
    .stdout_has("(2 signature(s))");
    for public in [&public, &public2] {
        s.run(&["verify", "--key", public.to_str().unwrap(), &reference])
            .code(0);
    }

    let policy = signed_only(keys.path(), &registry.addr, &public);
    let fresh = Skiff::new();
    with(&fresh, Some(&policy), &["pull", &reference])
        .code(0)
        .stdout_has("Verified: signed by")
        .stdout_has(&format!("transports.docker[\"{}\"]", registry.addr));
    // The policy in SKIFF_HOME/policy.json applies without a flag, and `verify` without
    // --key asks it.
    std::fs::copy(&policy, fresh.home.path().join("policy.json")).unwrap();
    fresh
        .run(&["verify", &reference])
        .code(0)
        .stdout_has("Verified");
}

#[test]
fn unsigned_image_is_refused_before_any_blob_and_run_inherits_it() {
    let registry = TestRegistry::start();
    let (s, reference) = common::hello_tagged_for(&registry.addr, "team/unsigned");
    s.run(&["push", &reference]).code(0);
    let keys = tempfile::tempdir().unwrap();
    let (_, public) = keypair(&s, keys.path());

    // The default policy accepts it, and says it is unsigned.
    let fresh = Skiff::new();
    fresh
        .run(&["pull", "--no-compile", &reference])
        .code(0)
        .stdout_has("is not signed; the policy accepts unsigned images");

    let policy = signed_only(keys.path(), &registry.addr, &public);
    let node = Skiff::new();
    let denied = with(&node, Some(&policy), &["pull", &reference]);
    denied
        .code(126)
        .stderr_has(&format!("is denied by {}", policy.display()))
        .stderr_has(&format!(
            "the rule for transports.docker[\"{}\"]",
            registry.addr
        ))
        .stderr_has("requires sigstoreSigned (key ")
        .stderr_has("the image has no signature");
    assert_eq!(
        blob_count(&node),
        0,
        "a denied image never enters the store"
    );
    // `run` of a registry reference pulls through the same gate.
    with(&node, Some(&policy), &["run", &reference])
        .code(126)
        .stderr_has("the image has no signature");
    assert_eq!(blob_count(&node), 0);
    node.run(&["images", "-q"]).code(0).stdout_lacks("sha256");
    s.run(&["verify", "--key", public.to_str().unwrap(), &reference])
        .code(126)
        .stderr_has("no signature");
}

#[test]
fn tampered_manifest_replayed_and_altered_signatures_are_refused() {
    let registry = TestRegistry::start();
    let curl = Curl {
        addr: &registry.addr,
        user: None,
    };
    let (s, reference) = common::hello_tagged_for(&registry.addr, "team/app");
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keypair(&s, keys.path());
    let signed = with(
        &s,
        None,
        &["push", "--sign-by", key.to_str().unwrap(), &reference],
    );
    let good = pushed_digest(signed.code(0));
    let oci = "application/vnd.oci.image.manifest.v1+json";
    let good_sig = curl.get(&format!("/v2/team/app/manifests/{}", sig_tag(&good)), oci);
    let policy = signed_only(keys.path(), &registry.addr, &public);

    // The tag now names another manifest (the same image with one more annotation), and the
    // attacker copies the genuine signature onto its .sig tag: a valid signature, of another digest.
    let manifest = curl.get(&format!("/v2/team/app/manifests/{good}"), oci);
    let mut m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    m["annotations"]["org.opencontainers.image.description"] = "evil".into();
    let evil = serde_json::to_vec(&m).unwrap();
    let evil_digest = curl.put_manifest("team/app", "1.0", oci, &evil).to_string();
    curl.put_manifest("team/app", &sig_tag(&evil_digest), oci, &good_sig);
    let node = Skiff::new();
    with(&node, Some(&policy), &["pull", &reference])
        .code(126)
        .stderr_has("for another manifest")
        .stderr_has("replayed");
    assert_eq!(blob_count(&node), 0);

    // Back to the genuine manifest, with its signature altered by one character (and the
    // referrers list, which holds the genuine one too, emptied).
    curl.put_manifest("team/app", "1.0", oci, &manifest);
    let index = "application/vnd.oci.image.index.v1+json";
    let referrers_tag = good.replacen(':', "-", 1);
    let good_list = curl.get(&format!("/v2/team/app/manifests/{referrers_tag}"), index);
    let empty = serde_json::json!({"schemaVersion": 2, "mediaType": index, "manifests": []});
    curl.put_manifest(
        "team/app",
        &referrers_tag,
        index,
        empty.to_string().as_bytes(),
    );
    let mut sig: serde_json::Value = serde_json::from_slice(&good_sig).unwrap();
    let ann = &mut sig["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"];
    let mut b64 = ann.as_str().unwrap().to_string();
    let flip = if b64.as_bytes()[20] == b'A' { "B" } else { "A" };
    b64.replace_range(20..21, flip);
    *ann = b64.into();
    curl.put_manifest(
        "team/app",
        &sig_tag(&good),
        oci,
        &serde_json::to_vec(&sig).unwrap(),
    );
    with(&node, Some(&policy), &["pull", &reference])
        .code(126)
        .stderr_has("not signed by the policy's key");
    s.run(&["verify", "--key", public.to_str().unwrap(), &reference])
        .code(126);
    assert_eq!(blob_count(&node), 0);

    // Restored in either place, it passes again: the referrers list alone (the .sig tag
    // still altered), and the .sig tag alone.
    curl.put_manifest("team/app", &referrers_tag, index, &good_list);
    with(&node, Some(&policy), &["pull", &reference]).code(0);
    node.run(&["rmi", &reference]).code(0);
    curl.put_manifest(
        "team/app",
        &referrers_tag,
        index,
        empty.to_string().as_bytes(),
    );
    curl.put_manifest("team/app", &sig_tag(&good), oci, &good_sig);
    with(&node, Some(&policy), &["pull", &reference]).code(0);
}

#[test]
fn reject_scope_wins_over_a_broader_accept_by_longest_match() {
    let registry = TestRegistry::start();
    let (s, reference) = common::hello_tagged_for(&registry.addr, "blocked/app");
    s.run(&["push", &reference]).code(0);
    let other = format!("{}/open/app:1.0", registry.addr);
    s.run(&["tag", &reference, &other]).code(0);
    s.run(&["push", &other]).code(0);
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(
        dir.path(),
        serde_json::json!({
            "default": [{"type": "reject"}],
            "transports": {"docker": {
                registry.addr.clone(): [{"type": "insecureAcceptAnything"}],
                format!("{}/blocked", registry.addr): [{"type": "reject"}],
            }}
        }),
    );
    let node = Skiff::new();
    with(&node, Some(&policy), &["pull", &reference])
        .code(126)
        .stderr_has(&format!(
            "transports.docker[\"{}/blocked\"] requires reject",
            registry.addr
        ))
        .stderr_has("rejects every image in this scope");
    assert_eq!(blob_count(&node), 0);
    with(&node, Some(&policy), &["pull", "--no-compile", &other]).code(0);
}

#[test]
fn a_malformed_or_missing_policy_stops_everything_never_accepts() {
    let registry = TestRegistry::start();
    let (s, reference) = common::hello_tagged_for(&registry.addr, "team/hello");
    s.run(&["push", &reference]).code(0);
    let dir = tempfile::tempdir().unwrap();
    let node = Skiff::new();
    for (name, text, says) in [
        ("truncated.json", "{\"default\": [", "not JSON"),
        (
            "typo.json",
            r#"{"default": [{"type": "insecureAcceptAnyting"}]}"#,
            "unknown requirement type",
        ),
        (
            "nokey.json",
            r#"{"default": [{"type": "sigstoreSigned", "keyPath": "/nonexistent/cosign.pub"}]}"#,
            "/nonexistent/cosign.pub",
        ),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        with(&node, Some(&p), &["pull", &reference])
            .code(125)
            .stderr_has(says);
        with(&node, Some(&p), &["run", &reference])
            .code(125)
            .stderr_has(says);
    }
    with(
        &node,
        Some(&dir.path().join("absent.json")),
        &["pull", &reference],
    )
    .code(125)
    .stderr_has("absent.json");
    std::fs::write(node.home.path().join("policy.json"), "[]").unwrap();
    node.run(&["pull", &reference])
        .code(125)
        .stderr_has("policy.json");
    assert_eq!(blob_count(&node), 0);
}

#[test]
fn key_files_with_loose_permissions_or_a_wrong_password_are_refused() {
    let registry = TestRegistry::start();
    let (s, reference) = common::hello_tagged_for(&registry.addr, "team/hello");
    let keys = tempfile::tempdir().unwrap();
    let (key, _) = keypair(&s, keys.path());
    // Asked again: refuses to overwrite.
    s.run_env(
        "SKIFF_KEY_PASSWORD",
        "x",
        &[
            "key",
            "generate",
            "--output-key-prefix",
            keys.path().join("cosign").to_str().unwrap(),
        ],
    )
    .code(125)
    .stderr_has("exists; give --force");
    s.run_env(
        "SKIFF_KEY_PASSWORD",
        "wrong",
        &["push", "--sign-by", key.to_str().unwrap(), &reference],
    )
    .code(125)
    .stderr_has("wrong password");
    // Nothing was pushed before the key was read.
    s.run(&["pull", &reference]).code(127);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    with(
        &s,
        None,
        &["sign", "--key", key.to_str().unwrap(), &reference],
    )
    .code(125)
    .stderr_has("readable by others (mode 644)");
    // No password and no terminal: says how to give one.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    s.run(&["sign", "--key", key.to_str().unwrap(), &reference])
        .code(125)
        .stderr_has("SKIFF_KEY_PASSWORD");
}

/// A registry whose image is genuine but whose `.sig` tag is hostile.
fn hostile(sig: impl Fn() -> Reply + Send + Sync + 'static) -> (Faulty, String) {
    let manifest = common::signing::genuine_manifest();
    let server = Faulty::start(move |_, path| {
        if path == "/v2/" {
            Reply::json(200, "{}")
        } else if path.contains("/manifests/sha256-") {
            sig()
        } else if path.contains("/manifests/") {
            Reply::new(
                200,
                "application/vnd.oci.image.manifest.v1+json",
                manifest.clone(),
            )
        } else {
            Reply::json(404, r#"{"errors":[{"code":"BLOB_UNKNOWN"}]}"#)
        }
    });
    let reference = format!("{}/x/y:1", server.addr);
    (server, reference)
}

#[test]
fn a_registry_serving_endless_or_countless_signatures_is_refused() {
    let s = Skiff::new();
    let keys = tempfile::tempdir().unwrap();
    let (_, public) = keypair(&s, keys.path());
    // A signature manifest that never ends.
    let (server, reference) = hostile(|| Reply {
        fill: 1 << 30,
        no_length: true,
        ..Reply::new(
            200,
            "application/vnd.oci.image.manifest.v1+json",
            b"{\"layers\":[".to_vec(),
        )
    });
    let policy = signed_only(keys.path(), &server.addr, &public);
    with(&s, Some(&policy), &["pull", &reference])
        .code(125)
        .stderr_has("is larger than 262144 bytes");
    let sent = server
        .body_bytes_sent
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(sent < 64 << 20, "the client read on: {sent} bytes");
    drop(server);

    // 10,000 signature layers: refused by size; 65: refused by count. Neither is fetched.
    for (n, says) in [
        (10_000, "larger than 262144 bytes"),
        (65, "at most 64 signatures"),
    ] {
        let layer = serde_json::json!({
            "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
            "digest": registry::sha256(b"p").to_string(), "size": 1,
            "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQ=="}
        });
        let body = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": registry::sha256(b"{}").to_string(), "size": 2},
            "layers": vec![layer; n]
        }))
        .unwrap();
        let (server, reference) = hostile(move || {
            Reply::new(
                200,
                "application/vnd.oci.image.manifest.v1+json",
                body.clone(),
            )
        });
        let policy = signed_only(keys.path(), &server.addr, &public);
        with(&s, Some(&policy), &["pull", &reference])
            .code(125)
            .stderr_has(says);
        assert_eq!(blob_count(&s), 0);
    }
}

#[test]
fn a_node_daemon_never_receives_a_denied_image() {
    let registry = TestRegistry::start();
    let (s, reference) = common::hello_tagged_for(&registry.addr, "team/job");
    s.run(&["push", &reference]).code(0);
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keypair(&s, keys.path());
    let policy = signed_only(keys.path(), &registry.addr, &public);
    let d = common::daemon::Daemon::start(&[]);
    // `run -d` of a registry reference pulls through the policy on the client's side: the
    // daemon is never handed the image.
    with(
        &d.skiff,
        Some(&policy),
        &["run", "-d", "--name", "job", &reference],
    )
    .code(126)
    .stderr_has("the image has no signature");
    d.run(&["ps", "-a"]).code(0).stdout_lacks("job");
    assert_eq!(blob_count(&d.skiff), 0);
    // Signed, the same command pulls it and the daemon runs it.
    with(
        &s,
        None,
        &["sign", "--key", key.to_str().unwrap(), &reference],
    )
    .code(0);
    with(
        &d.skiff,
        Some(&policy),
        &["run", "-d", "--name", "job", &reference],
    )
    .code(0);
    d.wait_status("job", "exited");
}
