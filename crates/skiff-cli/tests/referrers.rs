//! OCI 1.1 referrers: signatures and SBOMs written as referrer artifacts beside cosign's tags,
//! and found through them. The real registry here (Debian's docker-registry, distribution 2.8)
//! has no referrers API, so what is exercised against it is the spec's referrers tag schema;
//! a scripted registry plays the hostile one, through the API.

mod common;
#[path = "../../skiff-registry/tests/common/faulty.rs"]
mod faulty;
#[path = "../../skiff-registry/tests/common/server.rs"]
mod registry;

use common::signing::{genuine_manifest, keypair, pushed_digest, signed_only, with};
use common::Skiff;
use faulty::{Faulty, Reply};
use registry::{Curl, TestRegistry};
use serde_json::{json, Value};

const SIG: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
const SBOM: &str = "application/vnd.dev.cosign.artifact.sbom.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn get_json(curl: &Curl, path: &str, accept: &str) -> Value {
    serde_json::from_slice(&curl.get(path, accept)).unwrap()
}

#[test]
fn signatures_and_sboms_are_referrers_too_and_found_through_them_alone() {
    let registry = TestRegistry::start();
    let (s, reference) = common::hello_tagged_for(&registry.addr, "team/ref");
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keypair(&s, keys.path());
    let policy = signed_only(keys.path(), &registry.addr, &public);
    let key = key.to_str().unwrap();
    let pushed = with(
        &s,
        None,
        &["push", "--sign-by", key, "--sbom", "spdx", &reference],
    );
    let digest = pushed_digest(pushed.code(0));
    let curl = Curl {
        addr: &registry.addr,
        user: None,
    };
    // distribution 2.8 has no referrers API: the list is the index under the tag sha256-<hex>.
    let tag = digest.replacen(':', "-", 1);
    let list = |curl: &Curl| get_json(curl, &format!("/v2/team/ref/manifests/{tag}"), INDEX);
    let index = list(&curl);
    assert_eq!(index["mediaType"], INDEX, "{index}");
    let entries = index["manifests"].as_array().unwrap();
    let types: Vec<&str> = entries
        .iter()
        .map(|e| e["artifactType"].as_str().unwrap())
        .collect();
    assert_eq!(types, [SIG, SBOM], "{index}");
    for e in entries {
        assert_eq!(e["mediaType"], MANIFEST);
        let path = format!("/v2/team/ref/manifests/{}", e["digest"].as_str().unwrap());
        let m = get_json(&curl, &path, MANIFEST);
        assert_eq!(m["subject"]["digest"], digest.as_str(), "{m}");
        assert_eq!(m["artifactType"], e["artifactType"]);
        assert_eq!(
            m["config"]["mediaType"],
            "application/vnd.oci.empty.v1+json"
        );
        assert_eq!(m["config"]["digest"], registry::sha256(b"{}").to_string());
    }

    // A second signature joins the list; a new SBOM replaces the old one, as the .sbom tag's.
    let second = tempfile::tempdir().unwrap();
    let (key2, public2) = keypair(&s, second.path());
    with(
        &s,
        None,
        &["sign", "--key", key2.to_str().unwrap(), &reference],
    )
    .code(0);
    with(&s, None, &["push", "--sbom", "cyclonedx", &reference]).code(0);
    let index = list(&curl);
    let types: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["artifactType"].as_str().unwrap())
        .collect();
    assert_eq!(types, [SIG, SIG, SBOM], "{index}");

    // Empty the cosign tags (what a client writing referrers only leaves): the signatures and
    // the SBOM are still found, through the referrers.
    let config = curl.put_blob("team/ref", b"{}");
    let empty = json!({"schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": 2},
        "layers": []});
    for suffix in ["sig", "sbom"] {
        curl.put_manifest(
            "team/ref",
            &format!("{tag}.{suffix}"),
            MANIFEST,
            empty.to_string().as_bytes(),
        );
    }
    for public in [&public, &public2] {
        s.run(&["verify", "--key", public.to_str().unwrap(), &reference])
            .code(0)
            .stdout_has("Verified");
    }
    let node = Skiff::new();
    with(&node, Some(&policy), &["pull", &reference])
        .code(0)
        .stdout_has("Verified: signed by");
    let back = node.run(&["sbom", "--from", "attached", &reference]);
    back.code(0).stderr_has("(OCI referrer)");
    assert!(
        back.stdout.contains("\"bomFormat\":\"CycloneDX\""),
        "{back}"
    );
    s.run(&["inspect", "--remote", &reference])
        .code(0)
        .stdout_has("SBOM       cyclonedx")
        .stdout_has("signatures 2");
}

/// A registry with the referrers API, scripted: blobs and manifests kept in memory; a
/// manifest with a `subject` is answered with `OCI-Subject` and listed by
/// `GET /v2/<name>/referrers/<digest>`. It has lost its cosign tags: a GET of a `.sig` or
/// `.sbom` tag finds nothing, so what is found is found through the API.
fn referrers_api_registry() -> Faulty {
    use std::collections::HashMap;
    use std::sync::Mutex;
    let blobs: Mutex<HashMap<String, Vec<u8>>> = Mutex::default();
    let manifests: Mutex<HashMap<String, (String, Vec<u8>)>> = Mutex::default();
    Faulty::start_with(move |r| {
        let (path, query) = r.path.split_once('?').unwrap_or((&r.path, ""));
        let last = path.rsplit('/').next().unwrap_or("").to_string();
        let found = |found: Option<(String, Vec<u8>)>| match found {
            Some((ct, body)) => Reply::new(200, &ct, body),
            None => not_found(),
        };
        match r.method.as_str() {
            _ if path == "/v2/" => Reply::json(200, "{}"),
            "POST" if path.ends_with("/blobs/uploads/") => Reply {
                headers: vec![("Location".into(), format!("{path}upload"))],
                ..Reply::json(202, "")
            },
            "PUT" if path.ends_with("/blobs/uploads/upload") => {
                let digest = query.trim_start_matches("digest=").replace("%3A", ":");
                blobs.lock().unwrap().insert(digest, r.body.clone());
                Reply::json(201, "")
            }
            "GET" | "HEAD" if path.contains("/blobs/") => found(
                blobs
                    .lock()
                    .unwrap()
                    .get(&last)
                    .map(|b| ("application/octet-stream".to_string(), b.clone())),
            ),
            "PUT" if path.contains("/manifests/") => {
                let ct = r.header("content-type").unwrap_or(MANIFEST).to_string();
                let digest = registry::sha256(&r.body).to_string();
                let mut m = manifests.lock().unwrap();
                m.insert(last, (ct.clone(), r.body.clone()));
                m.insert(digest.clone(), (ct, r.body.clone()));
                let v: Value = serde_json::from_slice(&r.body).unwrap_or_default();
                let mut headers = vec![("Docker-Content-Digest".into(), digest)];
                if let Some(s) = v["subject"]["digest"].as_str() {
                    headers.push(("OCI-Subject".into(), s.into()));
                }
                Reply {
                    headers,
                    ..Reply::json(201, "")
                }
            }
            _ if last.ends_with(".sig") || last.ends_with(".sbom") => not_found(),
            "GET" | "HEAD" if path.contains("/manifests/") => {
                found(manifests.lock().unwrap().get(&last).cloned())
            }
            "GET" if path.contains("/referrers/") => {
                let mut entries: Vec<Value> = Vec::new();
                for (key, (_, body)) in manifests.lock().unwrap().iter() {
                    let v: Value = serde_json::from_slice(body).unwrap_or_default();
                    if key.starts_with("sha256:") && v["subject"]["digest"] == last.as_str() {
                        entries.push(json!({"mediaType": MANIFEST, "digest": key,
                            "size": body.len(), "artifactType": v["artifactType"]}));
                    }
                }
                Reply::new(200, INDEX, index_of(entries))
            }
            _ => not_found(),
        }
    })
}

#[test]
fn a_registry_with_the_referrers_api_keeps_the_list_and_is_read_through_it() {
    let server = referrers_api_registry();
    let (s, reference) = common::hello_tagged_for(&server.addr, "team/api");
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keypair(&s, keys.path());
    let pushed = with(
        &s,
        None,
        &[
            "push",
            "--sign-by",
            key.to_str().unwrap(),
            "--sbom",
            "cyclonedx",
            &reference,
        ],
    );
    let digest = pushed_digest(pushed.code(0).stdout_has("as the OCI referrer sha256:"));
    // It answered OCI-Subject: skiff wrote no referrers tag.
    let tag = format!("/manifests/{}", digest.replacen(':', "-", 1));
    let puts: Vec<String> = server
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.method == "PUT")
        .map(|r| r.path.clone())
        .collect();
    assert!(!puts.iter().any(|p| p.ends_with(&tag)), "{puts:?}");

    // The cosign tags are gone from this registry: verify, the pull's gate and sbom find the
    // signature and the SBOM through the API.
    s.run(&["verify", "--key", public.to_str().unwrap(), &reference])
        .code(0)
        .stdout_has("Verified");
    let node = Skiff::new();
    let policy = signed_only(keys.path(), &server.addr, &public);
    with(&node, Some(&policy), &["pull", &reference])
        .code(0)
        .stdout_has("Verified: signed by");
    let back = Skiff::new().run(&["sbom", &reference]);
    back.code(0).stderr_has("(OCI referrer)");
    assert!(
        back.stdout.contains("\"bomFormat\":\"CycloneDX\""),
        "{back}"
    );
    assert!(server
        .seen
        .lock()
        .unwrap()
        .iter()
        .any(|r| r.path.contains(&format!("/referrers/{digest}"))));
}

/// A registry whose image is genuine and has no `.sig` tag, whose referrers API answers
/// `api()`, whose referrers tag answers `tag()`, and which serves `extra` by its digest.
fn hostile(
    api: impl Fn() -> Reply + Send + Sync + 'static,
    tag: impl Fn() -> Reply + Send + Sync + 'static,
    extra: Vec<u8>,
) -> (Faulty, String, String) {
    let manifest = genuine_manifest();
    let digest = registry::sha256(&manifest).to_string();
    let extra_path = format!("/manifests/{}", registry::sha256(&extra));
    let referrers_tag = format!("/manifests/{}", digest.replacen(':', "-", 1));
    let server = Faulty::start(move |_, path| {
        if path == "/v2/" {
            Reply::json(200, "{}")
        } else if path.contains("/referrers/") {
            api()
        } else if path.ends_with(&referrers_tag) {
            tag()
        } else if path.ends_with(&extra_path) {
            Reply::new(200, MANIFEST, extra.clone())
        } else if path.contains("/manifests/sha256-") {
            Reply::json(404, r#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#)
        } else if path.contains("/manifests/") {
            Reply::new(200, MANIFEST, manifest.clone())
        } else {
            Reply::json(404, r#"{"errors":[{"code":"BLOB_UNKNOWN"}]}"#)
        }
    });
    let reference = format!("{}/x/y:1", server.addr);
    (server, reference, digest)
}

fn not_found() -> Reply {
    Reply::json(404, r#"{"errors":[{"code":"NOT_FOUND"}]}"#)
}

fn index_of(entries: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}))
        .unwrap()
}

fn entry(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": registry::sha256(bytes).to_string(),
           "size": bytes.len(), "artifactType": SIG})
}

#[test]
fn a_hostile_referrers_list_is_refused_with_the_reason() {
    let s = Skiff::new();
    let keys = tempfile::tempdir().unwrap();
    let (_, public) = keypair(&s, keys.path());
    let pull = |addr: &str, reference: &str| {
        let policy = signed_only(keys.path(), addr, &public);
        with(&s, Some(&policy), &["pull", reference])
    };
    let referrer = |subject: &str| {
        serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": MANIFEST, "artifactType": SIG,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": registry::sha256(b"{}").to_string(), "size": 2},
            "subject": {"mediaType": MANIFEST, "digest": subject, "size": 1},
            "layers": []}))
        .unwrap()
    };

    // 10,000 entries from the API: refused by size; 300 from the referrers tag: by count.
    let many = index_of(vec![entry(MANIFEST, b"x"); 10_000]);
    let (server, reference, _) = hostile(
        move || Reply::new(200, INDEX, many.clone()),
        not_found,
        Vec::new(),
    );
    pull(&server.addr, &reference)
        .code(125)
        .stderr_has("is larger than 1048576 bytes");
    drop(server);
    // (The API answering 405, as some registries without it do: the tag is read all the same.)
    let some = index_of(vec![entry(MANIFEST, b"x"); 300]);
    let (server, reference, _) = hostile(
        || Reply::json(405, r#"{"errors":[{"code":"UNSUPPORTED"}]}"#),
        move || Reply::new(200, INDEX, some.clone()),
        Vec::new(),
    );
    pull(&server.addr, &reference)
        .code(125)
        .stderr_has("lists 300 referrers; at most 256 are read");
    drop(server);

    // An entry of the wrong media type; a tag that holds a manifest, not an index.
    let wrong = index_of(vec![entry(
        "application/vnd.docker.distribution.manifest.list.v2+json",
        b"x",
    )]);
    let (server, reference, _) = hostile(
        not_found,
        move || Reply::new(200, INDEX, wrong.clone()),
        Vec::new(),
    );
    pull(&server.addr, &reference)
        .code(125)
        .stderr_has("is listed as a application/vnd.docker.distribution.manifest.list.v2+json, not an image manifest");
    drop(server);
    let not_index =
        serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": MANIFEST})).unwrap();
    let (server, reference, _) = hostile(
        not_found,
        move || Reply::new(200, MANIFEST, not_index.clone()),
        Vec::new(),
    );
    pull(&server.addr, &reference)
        .code(125)
        .stderr_has("not an image index");
    drop(server);

    // A referrer that names another image as its subject: another image's signature.
    let elsewhere = referrer(&registry::sha256(b"another image").to_string());
    let list = index_of(vec![entry(MANIFEST, &elsewhere)]);
    let (server, reference, digest) = hostile(
        move || Reply::new(200, INDEX, list.clone()),
        not_found,
        elsewhere,
    );
    pull(&server.addr, &reference)
        .code(125)
        .stderr_has(&format!(
            "names {} as its subject, not {digest}: another image's attachment",
            registry::sha256(b"another image")
        ));
    drop(server);

    // A referrer whose bytes are not the ones its entry names.
    let named = referrer(&format!("sha256:{}", "0".repeat(64)));
    let list = index_of(vec![entry(MANIFEST, &named)]);
    let (server, reference, _) = hostile(
        move || Reply::new(200, INDEX, list.clone()),
        not_found,
        Vec::new(),
    );
    // The server answers its genuine image for any digest it does not know: not the referrer.
    pull(&server.addr, &reference)
        .code(125)
        .stderr_has("digest mismatch for the referrer x/y@");
    let blobs = std::fs::read_dir(s.home.path().join("blobs/sha256")).map_or(0, |d| d.count());
    assert_eq!(blobs, 0, "a refused pull stored blobs");
}
