//! `skiff sbom` and `skiff scan`: a bill of materials from what a binary carries, matched against
//! an offline OSV advisory directory the test writes.

mod common;
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
    pushed.code(0).stdout_has("SBOM attached: ");
    let digest = pushed
        .stdout
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .unwrap()
        .to_string();
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
}

#[test]
fn push_quiet_prints_only_the_reference_with_sbom_and_signature() {
    let registry = registry::TestRegistry::start();
    let (s, reference) = common::hello_tagged_for(&registry.addr, "team/quiet");
    let keys = tempfile::tempdir().unwrap();
    let prefix = keys.path().join("cosign");
    s.run_env(
        "SKIFF_KEY_PASSWORD",
        "pw",
        &[
            "key",
            "generate",
            "--output-key-prefix",
            prefix.to_str().unwrap(),
        ],
    )
    .code(0);
    let key = keys.path().join("cosign.key");
    let d = s.run_env(
        "SKIFF_KEY_PASSWORD",
        "pw",
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
