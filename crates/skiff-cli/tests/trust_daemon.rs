//! A node's own trust policy, enforced by its daemon: whatever the client's policy says, the
//! daemon runs only binaries it can tie to an image signed as ITS policy asks. Real registry
//! (Debian's docker-registry), real daemon, real client; and raw API requests that forge
//! evidence, as a hostile API client would.

mod common;
#[path = "../../skiff-registry/tests/common/server.rs"]
mod registry;

use base64::Engine as _;
use common::daemon::Daemon;
use common::signing::{keypair, sig_tag, PASSWORD};
use common::{Done, Skiff};
use registry::{Curl, TestRegistry};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const OCI: &str = "application/vnd.oci.image.manifest.v1+json";

/// What a registry holds for this test: a signed, an unsigned and a tampered image.
struct Published {
    registry: TestRegistry,
    public: PathBuf,
    signed: String,
    /// An index listing the signed image's manifest for wasip1/wasm, itself signed.
    indexed: String,
    unsigned: String,
    tampered: String,
    _keys: tempfile::TempDir,
}

fn publish() -> Published {
    let registry = TestRegistry::start();
    let (s, signed) = common::hello_tagged_for(&registry.addr, "team/signed");
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keypair(&s, keys.path());
    s.run_env(
        "SKIFF_KEY_PASSWORD",
        PASSWORD,
        &["push", "--sign-by", key.to_str().unwrap(), &signed],
    )
    .code(0);
    let curl = Curl {
        addr: &registry.addr,
        user: None,
    };
    let manifest = curl.get("/v2/team/signed/manifests/1.0", OCI);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": OCI, "digest": registry::sha256(&manifest).to_string(),
                       "size": manifest.len(), "platform": {"architecture": "wasm", "os": "wasip1"}}]
    });
    curl.put_manifest(
        "team/signed",
        "index",
        "application/vnd.oci.image.index.v1+json",
        &serde_json::to_vec(&index).unwrap(),
    );
    let indexed = format!("{}/team/signed:index", registry.addr);
    s.run_env(
        "SKIFF_KEY_PASSWORD",
        PASSWORD,
        &["sign", "--key", key.to_str().unwrap(), &indexed],
    )
    .code(0);
    let unsigned = format!("{}/team/unsigned:1.0", registry.addr);
    s.run(&["tag", "hello:1.0", &unsigned]).code(0);
    s.run(&["push", &unsigned]).code(0);

    // Tampered: signed when pushed; then the tag is pointed at an altered manifest (one more
    // annotation: skiff's own layout checks would catch a swapped layer first), with the
    // genuine signature copied onto its .sig tag.
    let tampered = format!("{}/team/tampered:1.0", registry.addr);
    s.run(&["tag", "hello:1.0", &tampered]).code(0);
    s.run_env(
        "SKIFF_KEY_PASSWORD",
        PASSWORD,
        &["push", "--sign-by", key.to_str().unwrap(), &tampered],
    )
    .code(0);
    let manifest = curl.get("/v2/team/tampered/manifests/1.0", OCI);
    let genuine = registry::sha256(&manifest).to_string();
    let sig = curl.get(
        &format!("/v2/team/tampered/manifests/{}", sig_tag(&genuine)),
        OCI,
    );
    let mut m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    m["annotations"]["org.opencontainers.image.description"] = "evil".into();
    let evil = serde_json::to_vec(&m).unwrap();
    let evil_digest = curl.put_manifest("team/tampered", "1.0", OCI, &evil);
    curl.put_manifest(
        "team/tampered",
        &sig_tag(&evil_digest.to_string()),
        OCI,
        &sig,
    );
    Published {
        registry,
        public,
        signed,
        indexed,
        unsigned,
        tampered,
        _keys: keys,
    }
}

/// A daemon whose home's policy.json says: the test registry's images must be signed with
/// `public`; anything else is rejected.
fn node(p: &Published) -> Daemon {
    let home = Skiff::new();
    let policy = serde_json::json!({
        "default": [{"type": "reject"}],
        "transports": {"docker": {
            &p.registry.addr: [{"type": "sigstoreSigned", "keyPath": p.public}]
        }}
    });
    std::fs::write(
        home.home.path().join("policy.json"),
        serde_json::to_vec(&policy).unwrap(),
    )
    .unwrap();
    Daemon::start_in(home, &[])
}

/// A client of `d` whose own policy accepts anything.
fn lax(d: &Daemon, dir: &Path, args: &[&str]) -> Done {
    let policy = dir.join("lax.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    d.skiff.run_env("SKIFF_POLICY", &policy, args)
}

/// Binaries in the daemon's own store.
fn daemon_blobs(d: &Daemon) -> usize {
    std::fs::read_dir(d.skiff.home.path().join("daemon/store/blobs/sha256"))
        .map(|r| r.count())
        .unwrap_or(0)
}

#[test]
fn the_daemon_runs_only_what_its_own_policy_accepts() {
    let p = publish();
    let d = node(&p);
    let dir = tempfile::tempdir().unwrap();
    let policy_file = d.skiff.home.path().join("policy.json");
    d.run(&["system", "info"])
        .code(0)
        .stdout_has(&format!("Trust policy:     {}", policy_file.display()));

    // Signed: runs, though the client checked nothing.
    lax(&d, dir.path(), &["run", "-d", "--name", "good", &p.signed]).code(0);
    let w = d.wait_status("good", "exited");
    assert_eq!(w["state"]["exit_code"], 0, "{w:#}");
    // Through a signed index: the index's signature, the platform manifest it lists.
    lax(
        &d,
        dir.path(),
        &["run", "-d", "--name", "indexed", &p.indexed],
    )
    .code(0);
    d.wait_status("indexed", "exited");
    let stored = daemon_blobs(&d);

    // Unsigned and tampered: the client's policy lets them through its pull; the daemon does
    // not, and keeps nothing of them.
    lax(
        &d,
        dir.path(),
        &["run", "-d", "--name", "unsigned", &p.unsigned],
    )
    .code(126)
    .stderr_has("the daemon refused it")
    .stderr_has(&format!("is denied by {}", policy_file.display()))
    .stderr_has(&format!(
        "the rule for transports.docker[\"{}\"]",
        p.registry.addr
    ))
    .stderr_has("requires sigstoreSigned (key ")
    .stderr_has("the image has no signature");
    lax(
        &d,
        dir.path(),
        &["run", "-d", "--name", "tampered", &p.tampered],
    )
    .code(126)
    .stderr_has("replayed from another image");
    // A local file names no image: the policy's default (reject) applies.
    let file = common::guest("hello.wasm");
    lax(&d, dir.path(), &["run", "-d", file.to_str().unwrap()])
        .code(126)
        .stderr_has("the rule for default requires reject")
        .stderr_has("no image reference");
    assert_eq!(daemon_blobs(&d), stored, "nothing refused is stored");
    let (_, list) = d.api("GET", "/v1/workloads?all=1", None);
    assert!(
        !list.contains("unsigned") && !list.contains("tampered"),
        "{list}"
    );
}

/// The evidence a genuine client would send for `reference` (`host/repo:tag`), read with curl.
fn genuine_evidence(p: &Published, repo: &str) -> serde_json::Value {
    let curl = Curl {
        addr: &p.registry.addr,
        user: None,
    };
    let manifest = curl.get(&format!("/v2/{repo}/manifests/1.0"), OCI);
    let digest = registry::sha256(&manifest).to_string();
    let sig: serde_json::Value = serde_json::from_slice(
        &curl.get(&format!("/v2/{repo}/manifests/{}", sig_tag(&digest)), OCI),
    )
    .unwrap();
    let layer = &sig["layers"][0];
    let payload = curl.get(
        &format!("/v2/{repo}/blobs/{}", layer["digest"].as_str().unwrap()),
        "*/*",
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    serde_json::json!({
        "reference": format!("{}/{repo}:1.0", p.registry.addr),
        "manifests": [b64.encode(&manifest)],
        "signatures": [{
            "payload": b64.encode(&payload),
            "signature": layer["annotations"]["dev.cosignproject.cosign/signature"],
        }],
    })
}

/// `POST /v1/blobs` over the daemon's socket with `body` and, if given, this evidence header.
fn upload(d: &Daemon, header: Option<&str>, body: &[u8]) -> (u16, String) {
    let mut s = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
    let evidence = header
        .map(|h| format!("X-Skiff-Evidence: {h}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "POST /v1/blobs HTTP/1.1\r\nHost: skiff\r\nConnection: close\r\n\
         Content-Type: application/wasm\r\n{evidence}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, out)
}

fn encode(v: &serde_json::Value) -> String {
    base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(v).unwrap())
}

#[test]
fn forged_evidence_over_the_raw_api_is_refused() {
    let p = publish();
    let d = node(&p);
    let hello = std::fs::read(common::guest("hello.wasm")).unwrap();
    let cat = std::fs::read(common::guest("cat.wasm")).unwrap();
    let genuine = genuine_evidence(&p, "team/signed");

    // The genuine evidence with the binary it signs: accepted.
    let (status, out) = upload(&d, Some(&encode(&genuine)), &hello);
    assert_eq!(status, 201, "{out}");
    let stored = daemon_blobs(&d);

    // A genuine signature and manifest, with another binary.
    let (status, out) = upload(&d, Some(&encode(&genuine)), &cat);
    assert_eq!(status, 403, "{out}");
    assert!(out.contains("not a layer of the signed manifest"), "{out}");

    // The same, claiming to be the unsigned image (its scope is as strict; the signature
    // names team/signed).
    let mut renamed = genuine.clone();
    renamed["reference"] = p.unsigned.clone().into();
    let (status, out) = upload(&d, Some(&encode(&renamed)), &hello);
    assert_eq!(status, 403, "{out}");
    assert!(out.contains("team/signed:1.0, not "), "{out}");

    // A manifest written to name the other binary, under the genuine signature.
    let mut m: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(genuine["manifests"][0].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    m["layers"][0]["digest"] = registry::sha256(&cat).to_string().into();
    let mut forged = genuine.clone();
    forged["manifests"][0] = base64::engine::general_purpose::STANDARD
        .encode(serde_json::to_vec(&m).unwrap())
        .into();
    let (status, out) = upload(&d, Some(&encode(&forged)), &cat);
    assert_eq!(status, 403, "{out}");
    assert!(out.contains("replayed"), "{out}");

    // No evidence at all; and evidence past the bound, or not evidence.
    let (status, out) = upload(&d, None, &cat);
    assert_eq!(status, 403, "{out}");
    let huge = "A".repeat(50 << 10);
    let (status, out) = upload(&d, Some(&huge), &cat);
    assert_eq!(status, 400, "{out}");
    assert!(out.contains("48 KiB"), "{out}");
    let (status, out) = upload(&d, Some("not-base64!"), &cat);
    assert_eq!(status, 400, "{out}");
    assert_eq!(daemon_blobs(&d), stored, "nothing refused is stored");
}

/// `skiff ARGS daemon` in `home`, which must exit (not serve) within the patience.
fn daemon_fails(home: &Skiff, args: &[&str]) -> Done {
    let mut child = home
        .cmd()
        .args(args)
        .arg("daemon")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + common::daemon::PATIENCE;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the daemon started with a policy it cannot use");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Done::from(child.wait_with_output().unwrap())
}

#[test]
fn a_policy_the_daemon_cannot_trust_stops_it_at_start() {
    let home = Skiff::new();
    let policy = home.home.path().join("policy.json");
    std::fs::write(&policy, "[]").unwrap();
    daemon_fails(&home, &[])
        .code(125)
        .stderr_has(policy.to_str().unwrap())
        .stderr_has("must be an object");
    // Writable by others: whoever may write it decides what runs.
    std::fs::write(&policy, r#"{"default":[{"type":"reject"}]}"#).unwrap();
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o666)).unwrap();
    daemon_fails(&home, &[])
        .code(125)
        .stderr_has("writable by group or others");
    // Named but missing.
    let missing = home.home.path().join("missing.json");
    daemon_fails(&home, &["--policy", missing.to_str().unwrap()])
        .code(125)
        .stderr_has("missing.json");
}

/// Replace the daemon home's policy.json: `default` as given, the test registry signed by
/// `public`.
fn set_policy(d: &Daemon, p: &Published, default: &str, public: &Path) {
    let policy = serde_json::json!({
        "default": [{"type": default}],
        "transports": {"docker": {
            &p.registry.addr: [{"type": "sigstoreSigned", "keyPath": public}]
        }}
    });
    std::fs::write(
        d.skiff.home.path().join("policy.json"),
        serde_json::to_vec(&policy).unwrap(),
    )
    .unwrap();
}

#[test]
fn a_policy_set_or_tightened_later_stops_what_it_no_longer_accepts() {
    let p = publish();
    let dir = tempfile::tempdir().unwrap();
    // First the node accepts local files (its default), and signed images of the registry.
    let mut d = Daemon::start(&[]);
    set_policy(&d, &p, "insecureAcceptAnything", &p.public);
    d.restart_with(&[]);
    let ticker = common::guest("ticker.wasm");
    for (name, what) in [("file", ticker.to_str().unwrap()), ("img", &p.signed)] {
        lax(
            &d,
            dir.path(),
            &["run", "-d", "--restart", "always", "--name", name, what],
        )
        .code(0);
    }
    d.wait_status("file", "running");

    // Local files no longer: the file's workload is not started again; the image's is, its
    // evidence (kept from its upload) checked again.
    set_policy(&d, &p, "reject", &p.public);
    d.restart_with(&[]);
    let w = d.wait_for("file", "refused", |w| w["state"]["status"] == "exited");
    let error = w["state"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("not started") && error.contains("no image reference"),
        "{w:#}"
    );
    assert_eq!(d.inspect("img")["desired"], "running");
    d.run(&["start", "file"])
        .code(1)
        .stderr_has("the rule for default requires reject");

    // Another key: the image's signature no longer passes either.
    let other = tempfile::tempdir().unwrap();
    let (_, public2) = keypair(&d.skiff, other.path());
    set_policy(&d, &p, "reject", &public2);
    d.restart_with(&[]);
    let w = d.wait_for("img", "refused", |w| w["desired"] == "stopped");
    let error = w["state"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("not signed by the policy's key"), "{w:#}");
    // Nor can a raw API client name the binary in a new workload.
    let spec = serde_json::json!({"spec": {"image": w["spec"]["image"]}, "name": "again"});
    let (status, body) = d.api("POST", "/v1/workloads", Some(&spec.to_string()));
    assert_eq!(status, 403, "{body}");
}
