//! `skiff save` / `skiff load`: round trips, skopeo interop, and hostile archives.

mod common;
#[path = "../../skiff-registry/tests/common/server.rs"]
mod registry;
use common::project::{digest_of, Project};
use common::Skiff;
use registry::skopeo;
use std::path::Path;
use std::process::Command;

fn built(s: &Skiff, name: &str, wasm: &str) -> String {
    let p = Project::new(name, wasm, "version = \"1.0\"\nargs = [\"saved\"]\n");
    digest_of(&s.run(&["build", "-q", p.arg()]).code(0).stdout.clone())
}

#[test]
fn save_and_load_round_trip() {
    let a = Skiff::new();
    let digest = built(&a, "hello", "hello.wasm");
    let out = tempfile::tempdir().unwrap();
    let tar = out.path().join("hello.tar");
    a.run(&["save", "-o", tar.to_str().unwrap(), "hello:1.0"])
        .code(0);
    // Deterministic: the same image saves to the same bytes.
    let again = out.path().join("again.tar");
    a.run(&["save", "-o", again.to_str().unwrap(), "hello:1.0"])
        .code(0);
    assert_eq!(std::fs::read(&tar).unwrap(), std::fs::read(&again).unwrap());

    let b = Skiff::new();
    b.run(&["load", "-i", tar.to_str().unwrap()])
        .code(0)
        .stdout_has("Loaded image: hello:1.0");
    b.run(&["images", "--digests"]).code(0).stdout_has(&digest);
    b.run(&["run", "hello:1.0"])
        .code(0)
        .stdout_has("arg[1]=saved");
    b.run(&["system", "check"]).code(0);
    // Loading twice is harmless; stdin works too.
    let f = std::fs::File::open(&tar).unwrap();
    let done = b.cmd().arg("load").stdin(f).output().unwrap();
    assert_eq!(done.status.code(), Some(0));
    // A missing file is "not found".
    b.run(&["load", "-i", "/nonexistent.tar"]).code(127);
}

#[test]
fn skopeo_reads_what_skiff_saves_and_skiff_loads_what_skopeo_writes() {
    let a = Skiff::new();
    let digest = built(&a, "hello", "hello-p2.wasm");
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("hello.tar");
    a.run(&["save", "-o", tar.to_str().unwrap(), "hello:1.0"])
        .code(0);

    let out = skopeo(&[
        "inspect".into(),
        "--raw".into(),
        format!("oci-archive:{}", tar.display()),
    ]);
    let manifest: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );

    // skopeo copies it into an archive of its own, under a new name.
    let copied = dir.path().join("copied.tar");
    skopeo(&[
        "copy".into(),
        "--quiet".into(),
        format!("oci-archive:{}", tar.display()),
        format!(
            "oci-archive:{}:example.com/team/hello:2.0",
            copied.display()
        ),
    ]);

    let b = Skiff::new();
    b.run(&["load", "-i", copied.to_str().unwrap()])
        .code(0)
        .stdout_has("Loaded image: example.com/team/hello:2.0");
    // skopeo kept the manifest byte for byte, so the digest is the same.
    b.run(&["images", "--digests"]).code(0).stdout_has(&digest);
    b.run(&["run", "example.com/team/hello:2.0"])
        .code(0)
        .stdout_has("hello from skiff");

    // And an OCI directory layout skopeo writes, tarred by hand, without a name.
    let layout = dir.path().join("layout");
    skopeo(&[
        "copy".into(),
        "--quiet".into(),
        format!("oci-archive:{}", tar.display()),
        format!("oci:{}", layout.display()),
    ]);
    let plain = dir.path().join("plain.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&plain)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let c = Skiff::new();
    c.run(&["load", "-i", plain.to_str().unwrap()])
        .code(0)
        .stdout_has("Loaded image ID: sha256:");
    c.run(&["tag", &digest, "named:1"]).code(0);
    c.run(&["run", "named:1"])
        .code(0)
        .stdout_has("hello from skiff");
}

// ---- hostile archives -----------------------------------------------------------------------

/// A tar written entry by entry, so tests can put anything in it.
struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    fn new() -> Tar {
        Tar(tar::Builder::new(Vec::new()))
    }
    fn file(mut self, path: &str, bytes: &[u8]) -> Tar {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // set_path refuses `..`; write the name bytes directly, as a hostile tool would.
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        self.0.append(&h, bytes).unwrap();
        self
    }
    fn link(mut self, path: &str, target: &str, kind: tar::EntryType) -> Tar {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_entry_type(kind);
        h.set_path(path).unwrap();
        h.set_link_name(target).unwrap();
        h.set_cksum();
        self.0.append(&h, std::io::empty()).unwrap();
        self
    }
    fn blob(self, bytes: &[u8]) -> Tar {
        let hex = sha256_hex(bytes);
        self.file(&format!("blobs/sha256/{hex}"), bytes)
    }
    fn layout(self) -> Tar {
        self.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
    }
    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn index_for(manifest: &[u8], name: &str) -> Vec<u8> {
    format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{}","size":{},"annotations":{{"io.containerd.image.name":"{name}"}}}}]}}"#,
        sha256_hex(manifest),
        manifest.len()
    )
    .into_bytes()
}

/// Load `bytes`; it must fail with `says`, and the store must be exactly as before.
fn refused(s: &Skiff, bytes: Vec<u8>, says: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.tar");
    std::fs::write(&path, bytes).unwrap();
    let before = snapshot(s.home.path());
    s.run(&["load", "-i", path.to_str().unwrap()])
        .code(125)
        .stderr_has(says);
    assert_eq!(snapshot(s.home.path()), before, "the store changed");
    s.run(&["system", "check"]).code(0);
}

/// Every file under blobs/ and tags/ with its contents.
fn snapshot(home: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(&home.join("blobs"), &mut out);
    walk(&home.join("tags"), &mut out);
    out.sort();
    out
}

/// A valid image's blobs (config, layer, manifest) with `layers` as the manifest's layer list.
fn image_parts(guest: &str, layers_json: impl Fn(&str) -> String) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let wasm = std::fs::read(common::guest(guest)).unwrap();
    let layer_digest = format!("sha256:{}", sha256_hex(&wasm));
    let config = format!(
        r#"{{"created":"1970-01-01T00:00:00Z","architecture":"wasm","os":"wasip1","layerDigests":["{layer_digest}"]}}"#
    )
    .into_bytes();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.wasm.config.v0+json","digest":"sha256:{}","size":{}}},"layers":{}}}"#,
        sha256_hex(&config),
        config.len(),
        layers_json(&format!(
            r#"{{"mediaType":"application/wasm","digest":"{layer_digest}","size":{}}}"#,
            wasm.len()
        ))
    )
    .into_bytes();
    (config, wasm, manifest)
}

#[test]
fn hostile_archives_are_refused_and_change_nothing() {
    let s = Skiff::new();
    built(&s, "existing", "hello.wasm"); // something to keep intact

    refused(
        &s,
        Tar::new().layout().file("../evil", b"x").bytes(),
        "`..`",
    );
    refused(
        &s,
        Tar::new().layout().file("/etc/evil", b"x").bytes(),
        "absolute",
    );
    refused(
        &s,
        Tar::new()
            .layout()
            .link("blobs/sha256/x", "/etc/passwd", tar::EntryType::Symlink)
            .bytes(),
        "symbolic link",
    );
    refused(
        &s,
        Tar::new()
            .layout()
            .link("index.json", "/etc/passwd", tar::EntryType::Link)
            .bytes(),
        "hard link",
    );
    // A blob whose bytes do not match its name; the good blob before it is not kept either.
    let wrong = format!("blobs/sha256/{}", sha256_hex(b"the real thing"));
    refused(
        &s,
        Tar::new()
            .layout()
            .blob(b"fine")
            .file(&wrong, b"an impostor")
            .bytes(),
        "does not match its digest",
    );
    // Two layers: the CNCF layout has exactly one.
    let (config, wasm, manifest) = image_parts("hello.wasm", |l| format!("[{l},{l}]"));
    refused(
        &s,
        Tar::new()
            .layout()
            .blob(&config)
            .blob(&wasm)
            .blob(&manifest)
            .file("index.json", &index_for(&manifest, "two:1"))
            .bytes(),
        "2 layers",
    );
    // Unknown media types: the error lists them.
    let (config, wasm, manifest) = image_parts("hello.wasm", |l| {
        format!(
            "[{}]",
            l.replace("application/wasm", "application/vnd.example.thing")
        )
    });
    refused(
        &s,
        Tar::new()
            .layout()
            .blob(&config)
            .blob(&wasm)
            .blob(&manifest)
            .file("index.json", &index_for(&manifest, "odd:1"))
            .bytes(),
        "application/vnd.example.thing",
    );
    // An absurd size in a tar header is refused before reading.
    let mut t = Tar::new().layout();
    let mut h = tar::Header::new_gnu();
    h.set_path("index.json").unwrap();
    h.set_size(1 << 40);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    t.0.append(&h, std::io::empty()).unwrap();
    let mut bytes = t.bytes();
    bytes.truncate(bytes.len() - 1024); // no trailer: the size alone must stop it
    refused(&s, bytes, "over the limit");
    // Missing pieces.
    refused(
        &s,
        Tar::new().file("hello.txt", b"hi").bytes(),
        "no oci-layout",
    );
    refused(&s, b"\x1f\x8b\x08\0rest".to_vec(), "gzip");
    // exit-code.wasm is not in the store yet, so the archive must hold it.
    let (config, wasm, manifest) = image_parts("exit-code.wasm", |l| format!("[{l}]"));
    refused(
        &s,
        Tar::new()
            .layout()
            .blob(&config)
            .blob(&manifest)
            .file("index.json", &index_for(&manifest, "nolayer:1"))
            .bytes(),
        "does not hold",
    );
    // The same parts, complete, load fine.
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.tar");
    std::fs::write(
        &good,
        Tar::new()
            .layout()
            .blob(&config)
            .blob(&wasm)
            .blob(&manifest)
            .file(
                "index.json",
                &index_for(&manifest, "docker.io/library/good:1"),
            )
            .bytes(),
    )
    .unwrap();
    s.run(&["load", "-i", good.to_str().unwrap()])
        .code(0)
        .stdout_has("Loaded image: good:1");
    s.run(&["run", "good:1", "3"]).code(3);
    s.run(&["run", "existing:1.0"]).code(0);
}
