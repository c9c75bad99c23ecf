//! `skiff sbom` and `skiff scan`: a bill of materials from what a binary carries, matched against
//! an offline OSV advisory directory the test writes.

mod common;
#[path = "../../skiff-registry/tests/common/faulty.rs"]
mod faulty;
#[path = "../../skiff-registry/tests/common/server.rs"]
mod registry;

use common::{guest, Skiff};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A custom section appended to a module: id 0, size, name, payload (LEB128 lengths).
fn custom_section(name: &str, payload: &[u8]) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut body = Vec::new();
    leb(name.len(), &mut body);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    let mut out = vec![0u8];
    leb(body.len(), &mut out);
    out.extend(body);
    out
}

/// hello.wasm with a cargo auditable dependency list: app 0.1.0 -> smallvec VERSION, time 0.1.45.
fn audited(dir: &Path, smallvec: &str) -> PathBuf {
    let list = json!({"packages": [
        {"name": "app", "version": "0.1.0", "source": "local", "dependencies": [1, 2], "root": true},
        {"name": "smallvec", "version": smallvec, "source": "crates.io"},
        {"name": "time", "version": "0.1.45", "source": "crates.io"},
    ]});
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(list.to_string().as_bytes()).unwrap();
    let mut wasm = std::fs::read(guest("hello.wasm")).unwrap();
    wasm.extend(custom_section(".dep-v0", &z.finish().unwrap()));
    let p = dir.join(format!("app-{smallvec}.wasm"));
    std::fs::write(&p, wasm).unwrap();
    p
}

fn json_of(s: &Skiff, args: &[&str]) -> Value {
    let d = s.run(args);
    d.code(0);
    serde_json::from_str(&d.stdout).unwrap_or_else(|e| panic!("{e}\n{d}"))
}

#[test]
fn spdx_and_cyclonedx_list_crates_tools_and_interfaces() {
    let s = Skiff::new();
    let dir = tempfile::tempdir().unwrap();
    let app = audited(dir.path(), "1.6.0");
    let app = app.to_str().unwrap();

    let spdx = json_of(&s, &["sbom", app]);
    assert_eq!(spdx["spdxVersion"], "SPDX-2.3");
    assert_eq!(spdx["dataLicense"], "CC0-1.0");
    let packages = spdx["packages"].as_array().unwrap();
    let sha = format!(
        "{:x}",
        <sha2::Sha256 as sha2::Digest>::digest(std::fs::read(app).unwrap())
    );
    assert_eq!(packages[0]["checksums"][0]["checksumValue"], sha.as_str());
    let smallvec = packages.iter().find(|p| p["name"] == "smallvec").unwrap();
    assert_eq!(smallvec["versionInfo"], "1.6.0");
    assert_eq!(
        smallvec["externalRefs"][0]["referenceLocator"],
        "pkg:cargo/smallvec@1.6.0"
    );
    let rels = spdx["relationships"].as_array().unwrap();
    assert!(rels.iter().any(|r| r["relationshipType"] == "DESCRIBES"));
    assert!(
        rels.iter()
            .filter(|r| r["relationshipType"] == "DEPENDS_ON")
            .count()
            >= 2,
        "{rels:?}"
    );

    let cdx = json_of(&s, &["sbom", "--format", "cyclonedx", app]);
    assert_eq!(cdx["bomFormat"], "CycloneDX");
    assert_eq!(cdx["specVersion"], "1.5");
    let purls: Vec<&str> = cdx["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["purl"].as_str())
        .collect();
    assert_eq!(
        purls,
        [
            "pkg:cargo/app@0.1.0",
            "pkg:cargo/smallvec@1.6.0",
            "pkg:cargo/time@0.1.45"
        ]
    );
    let deps = cdx["dependencies"].as_array().unwrap();
    let app_deps = deps
        .iter()
        .find(|d| d["ref"] == "pkg:cargo/app@0.1.0")
        .unwrap();
    assert_eq!(
        app_deps["dependsOn"],
        json!(["pkg:cargo/smallvec@1.6.0", "pkg:cargo/time@0.1.45"])
    );

    // A Rust component: its producers name the language and rustc; its imports name WASI
    // packages with their versions.
    let http = json_of(
        &s,
        &[
            "sbom",
            "--format",
            "cyclonedx",
            guest("http-hello.wasm").to_str().unwrap(),
        ],
    );
    let props = http["metadata"]["component"]["properties"].to_string();
    assert!(
        props.contains("wasm:language") && props.contains("Rust"),
        "{props}"
    );
    let tools = http["metadata"]["tools"]["components"].to_string();
    assert!(tools.contains("rustc"), "{tools}");
    let wasi: Vec<String> = http["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"].as_str().unwrap_or("").starts_with("wasi:"))
        .map(|c| {
            format!(
                "{}@{}",
                c["name"].as_str().unwrap(),
                c["version"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        wasi.iter().any(|p| p.starts_with("wasi:http@0.2.")),
        "{wasi:?}"
    );

    // inspect summarises what sbom lists in full.
    s.run(&["inspect", app])
        .code(0)
        .stdout_has("Crates:     3 recorded by cargo auditable");
    s.run(&["inspect", guest("http-hello.wasm").to_str().unwrap()])
        .code(0)
        .stdout_has("Made with:  ")
        .stdout_has("rustc ");

    // An image: the same, named by its reference.
    s.run(&["build", "-t", "audited:2.0", app]).code(0);
    let img = json_of(&s, &["sbom", "--format", "cyclonedx", "audited:2.0"]);
    assert_eq!(img["metadata"]["component"]["version"], "2.0");
    assert_eq!(img["components"].as_array().unwrap().len(), 3);
}

fn osv_db(dir: &Path) -> PathBuf {
    let db = dir.join("advisory-db/crates/smallvec");
    std::fs::create_dir_all(&db).unwrap();
    std::fs::write(
        db.join("RUSTSEC-2021-0003.json"),
        json!({
            "id": "RUSTSEC-2021-0003", "aliases": ["CVE-2021-25900"],
            "summary": "Buffer overflow in SmallVec::insert_many",
            "affected": [{"package": {"ecosystem": "crates.io", "name": "smallvec"},
                "ranges": [{"type": "SEMVER", "events": [{"introduced": "0.6.3"}, {"fixed": "0.6.14"}, {"introduced": "1.0.0"}, {"fixed": "1.6.1"}]}]}]
        })
        .to_string(),
    )
    .unwrap();
    // Another ecosystem's package of the same name does not match.
    std::fs::write(
        db.join("GHSA-npm.json"),
        json!({"id": "GHSA-xxxx", "affected": [{"package": {"ecosystem": "npm", "name": "time"}, "versions": ["0.1.45"]}]}).to_string(),
    )
    .unwrap();
    dir.join("advisory-db")
}

#[test]
fn scan_matches_the_recorded_crates_against_an_osv_directory() {
    let s = Skiff::new();
    let dir = tempfile::tempdir().unwrap();
    let db = osv_db(dir.path());
    let db = db.to_str().unwrap();
    let vulnerable = audited(dir.path(), "1.6.0");
    let d = s.run(&[
        "scan",
        "--db",
        db,
        "--format",
        "json",
        vulnerable.to_str().unwrap(),
    ]);
    d.code(1);
    let findings: Value = serde_json::from_str(&d.stdout).unwrap();
    assert_eq!(findings.as_array().unwrap().len(), 1, "{findings}");
    assert_eq!(findings[0]["id"], "RUSTSEC-2021-0003");
    assert_eq!(findings[0]["purl"], "pkg:cargo/smallvec@1.6.0");
    assert_eq!(findings[0]["fixed"], json!(["0.6.14", "1.6.1"]));
    s.run(&["scan", "--db", db, vulnerable.to_str().unwrap()])
        .code(1)
        .stdout_has("RUSTSEC-2021-0003")
        .stdout_has("1 advisories matched in 3 crates");

    let fixed = audited(dir.path(), "1.6.1");
    s.run(&[
        "scan",
        "--db",
        db,
        "--format",
        "json",
        fixed.to_str().unwrap(),
    ])
    .code(0)
    .stdout_has("[]");
    // No dependency list: nothing to match, and it says why.
    s.run(&["scan", "--db", db, guest("hello.wasm").to_str().unwrap()])
        .code(0)
        .stderr_has("cargo auditable");
    // A database file that is not an advisory stops the scan: never a half-read database.
    std::fs::write(Path::new(db).join("broken.json"), "{").unwrap();
    s.run(&["scan", "--db", db, fixed.to_str().unwrap()])
        .code(125)
        .stderr_has("broken.json: not an OSV advisory");
}

#[test]
fn push_attaches_the_sbom_where_cosign_attaches_one() {
    let registry = registry::TestRegistry::start();
    let (s, reference) = common::hello_tagged_for(&registry.addr, "team/hello");
    let pushed = s.run(&["push", "--sbom", "cyclonedx", &reference]);
    let digest = common::signing::pushed_digest(pushed.code(0).stdout_has("SBOM attached: "));
    let curl = registry::Curl {
        addr: &registry.addr,
        user: None,
    };
    let tag = format!("{}.sbom", digest.replacen(':', "-", 1));
    let m: Value = serde_json::from_slice(&curl.get(
        &format!("/v2/team/hello/manifests/{tag}"),
        "application/vnd.oci.image.manifest.v1+json",
    ))
    .unwrap();
    let layer = &m["layers"][0];
    assert_eq!(layer["mediaType"], "application/vnd.cyclonedx+json");
    let bom: Value = serde_json::from_slice(&curl.get(
        &format!("/v2/team/hello/blobs/{}", layer["digest"].as_str().unwrap()),
        "*/*",
    ))
    .unwrap();
    assert_eq!(bom["bomFormat"], "CycloneDX");
    assert_eq!(bom["metadata"]["component"]["version"], "1.0");

    // Read back: the image is in the local store, so auto makes one from the binary;
    // --from attached prints the stored document byte for byte, saying where it came from.
    let computed = s.run(&["sbom", &reference]);
    computed.code(0).stdout_has("\"spdxVersion\"");
    let back = s.run(&["sbom", "--from", "attached", &reference]);
    back.code(0)
        .stderr_has("SBOM attached to ")
        .stderr_has(&format!(
            "application/vnd.cyclonedx+json {}",
            layer["digest"].as_str().unwrap()
        ))
        .stderr_has(" (OCI referrer)")
        .stderr_has("signature not checked");
    let blob = curl.get(
        &format!("/v2/team/hello/blobs/{}", layer["digest"].as_str().unwrap()),
        "*/*",
    );
    assert_eq!(back.stdout.as_bytes(), blob.as_slice());
    // A node without the image: auto reads the attached one, without pulling.
    let node = Skiff::new();
    node.run(&["sbom", &reference])
        .code(0)
        .stderr_has("SBOM attached to ")
        .stdout_has("\"bomFormat\":\"CycloneDX\"");
    node.run(&["images", "-q"]).code(0);
    assert_eq!(node.run(&["images", "-q"]).stdout.trim(), "");
    // Another format than the one attached: says what is attached instead.
    node.run(&["sbom", "--format", "spdx", &reference])
        .code(127)
        .stderr_has("no spdx SBOM is attached")
        .stderr_has("attached: application/vnd.cyclonedx+json");
    // Neither a file, nor local, nor reachable: says what was tried.
    node.run(&["sbom", "127.0.0.1:1/nowhere:1"])
        .code(125)
        .stderr_has("is not a file or an image in the local store, so its registry was asked");
    // An image without one: says so and how to make one.
    let (other, plain) = common::hello_tagged_for(&registry.addr, "team/plain");
    other.run(&["push", &plain]).code(0);
    node.run(&["sbom", &plain])
        .code(127)
        .stderr_has("no SBOM is attached to ")
        .stderr_has("--from binary");

    // inspect --remote shows what is attached; without it, inspect stays local.
    s.run(&["inspect", "--remote", &reference])
        .code(0)
        .stdout_has(&format!(
            "SBOM       cyclonedx (application/vnd.cyclonedx+json) {}",
            layer["digest"].as_str().unwrap()
        ))
        .stdout_has("signatures 0");
    s.run(&["inspect", &reference])
        .code(0)
        .stdout_lacks("Attached in");
    let j = json_of(&s, &["inspect", "--remote", "--format", "json", &reference]);
    assert_eq!(j["image"]["attached"]["sboms"][0]["format"], "cyclonedx");
}

#[test]
fn an_attached_sbom_is_trusted_only_as_far_as_it_is_signed() {
    use common::signing::{keypair, signed_only, with};
    let registry = registry::TestRegistry::start();
    let (s, reference) = common::hello_tagged_for(&registry.addr, "team/signed");
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keypair(&s, keys.path());
    let public = public.to_str().unwrap();
    let key = key.to_str().unwrap();
    with(
        &s,
        None,
        &["push", "--sign-by", key, "--sbom", "spdx", &reference],
    )
    .code(0)
    .stdout_has("SBOM signed with key ");
    // Signed by the key given, or by the key the policy's rule for the image names.
    let node = Skiff::new();
    node.run(&["sbom", "--key", public, &reference])
        .code(0)
        .stderr_has("(signed by ")
        .stdout_has("\"spdxVersion\"");
    // inspect --remote counts the SBOM's signatures (here: one, and the image's one).
    s.run(&["inspect", "--remote", &reference])
        .code(0)
        .stdout_has(", 1 signature(s)")
        .stdout_has("signatures 1 ");
    let policy = signed_only(
        keys.path(),
        &registry.addr,
        keys.path().join("cosign.pub").as_path(),
    );
    with(&node, Some(&policy), &["sbom", &reference])
        .code(0)
        .stderr_has("(signed by ");

    // Someone with push access attaches another SBOM, unsigned: it replaces the signed one
    // under the .sbom tag and in the referrers list, and is refused where a signature is asked.
    s.run(&["push", "--sbom", "cyclonedx", &reference]).code(0);
    node.run(&["sbom", "--key", public, &reference])
        .code(126)
        .stderr_has("is not accepted")
        .stderr_has("--sign-by KEY");
    with(&node, Some(&policy), &["sbom", &reference]).code(126);
    // The default policy accepts it, and says its signature was not checked.
    node.run(&["sbom", &reference])
        .code(0)
        .stderr_has("signature not checked")
        .stdout_has("\"bomFormat\":\"CycloneDX\"");
    // --key is about attached SBOMs.
    node.run(&["sbom", "--from", "binary", "--key", public, &reference])
        .code(125)
        .stderr_has("use it with --from attached");
}

/// A registry whose image is genuine but whose `.sbom` tag answers `sbom()`, and whose blobs
/// answer `blob()`.
fn hostile_sbom(
    sbom: impl Fn() -> faulty::Reply + Send + Sync + 'static,
    blob: impl Fn() -> faulty::Reply + Send + Sync + 'static,
) -> (faulty::Faulty, String) {
    use faulty::Reply;
    let manifest = common::signing::genuine_manifest();
    let server = faulty::Faulty::start(move |_, path| {
        if path == "/v2/" {
            Reply::json(200, "{}")
        } else if path.contains("/manifests/sha256-") && path.ends_with(".sbom") {
            sbom()
        } else if path.contains("/manifests/sha256-") || path.contains("/referrers/") {
            Reply::json(404, r#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#)
        } else if path.contains("/manifests/") {
            Reply::new(
                200,
                "application/vnd.oci.image.manifest.v1+json",
                manifest.clone(),
            )
        } else if path.contains("/blobs/") {
            blob()
        } else {
            Reply::json(404, r#"{"errors":[{"code":"BLOB_UNKNOWN"}]}"#)
        }
    });
    let reference = format!("{}/x/y:1", server.addr);
    (server, reference)
}

fn sbom_manifest(layers: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": registry::sha256(b"{}").to_string(), "size": 2},
        "layers": layers,
    }))
    .unwrap()
}

#[test]
fn a_registry_answering_garbage_for_an_attached_sbom_is_refused() {
    use faulty::Reply;
    let s = Skiff::new();
    let doc = br#"{"bomFormat":"CycloneDX"}"#.to_vec();
    let layer = |digest: String, size: usize| json!({"mediaType": "application/vnd.cyclonedx+json", "digest": digest, "size": size});
    // Too many documents: refused before any is fetched.
    let many = sbom_manifest(vec![
        layer(registry::sha256(&doc).to_string(), doc.len());
        17
    ]);
    let (server, reference) = hostile_sbom(
        move || {
            Reply::new(
                200,
                "application/vnd.oci.image.manifest.v1+json",
                many.clone(),
            )
        },
        || Reply::json(500, "{}"),
    );
    s.run(&["sbom", &reference])
        .code(125)
        .stderr_has("lists 17 documents; at most 16 are read");
    drop(server);
    // A manifest that never ends: cut at the bound.
    let (server, reference) = hostile_sbom(
        || Reply {
            fill: 1 << 30,
            no_length: true,
            ..Reply::new(
                200,
                "application/vnd.oci.image.manifest.v1+json",
                b"{\"layers\":[".to_vec(),
            )
        },
        || Reply::json(500, "{}"),
    );
    s.run(&["sbom", &reference])
        .code(125)
        .stderr_has("is larger than 262144 bytes");
    drop(server);
    // A document that is not the one the manifest names, one declared larger than the bound,
    // and one that is not JSON.
    let other = br#"{"bomFormat":"CycloneDY"}"#.to_vec();
    let swapped = sbom_manifest(vec![layer(registry::sha256(&doc).to_string(), doc.len())]);
    let (server, reference) = hostile_sbom(
        move || {
            Reply::new(
                200,
                "application/vnd.oci.image.manifest.v1+json",
                swapped.clone(),
            )
        },
        move || Reply::new(200, "application/octet-stream", other.clone()),
    );
    s.run(&["sbom", &reference])
        .code(125)
        .stderr_has("digest mismatch");
    drop(server);
    let huge = sbom_manifest(vec![layer(registry::sha256(&doc).to_string(), 1 << 40)]);
    let (server, reference) = hostile_sbom(
        move || {
            Reply::new(
                200,
                "application/vnd.oci.image.manifest.v1+json",
                huge.clone(),
            )
        },
        || Reply::json(500, "{}"),
    );
    s.run(&["sbom", &reference])
        .code(125)
        .stderr_has("is larger than 67108864 bytes");
    drop(server);
    let text = b"\x1b[31mnot json".to_vec();
    let m = sbom_manifest(vec![layer(registry::sha256(&text).to_string(), text.len())]);
    let (_server, reference) = hostile_sbom(
        move || Reply::new(200, "application/vnd.oci.image.manifest.v1+json", m.clone()),
        move || Reply::new(200, "application/octet-stream", text.clone()),
    );
    let d = s.run(&["sbom", &reference]);
    d.code(125).stderr_has("is not JSON");
    assert!(!d.stdout.contains('\x1b'), "{d}");
}

#[test]
fn push_quiet_prints_only_the_reference_with_sbom_and_signature() {
    let registry = registry::TestRegistry::start();
    let (s, reference) = common::hello_tagged_for(&registry.addr, "team/quiet");
    let keys = tempfile::tempdir().unwrap();
    let (key, _) = common::signing::keypair(&s, keys.path());
    let d = common::signing::with(
        &s,
        None,
        &[
            "push",
            "-q",
            "--sbom",
            "spdx",
            "--sign-by",
            key.to_str().unwrap(),
            &reference,
        ],
    );
    d.code(0);
    assert_eq!(d.stdout, format!("{reference}\n"));
}
