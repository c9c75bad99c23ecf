//! Live peers that push the images skiff must pull: oras, as its PyPI client (`oras` 0.2.43)
//! pushes a Wasm file from a user's script, against the real registry (Debian's
//! docker-registry); and reads back, as an OCI artifact, the SBOM skiff attached as a referrer. The client is installed once into a venv under the target dir (PyPI is
//! reached as any package install is); skopeo is the live peer of `registry_push_pull.rs`.

mod common;
#[path = "../../skiff-registry/tests/common/server.rs"]
mod registry;

use common::{guest, Skiff};
use registry::TestRegistry;
use std::path::{Path, PathBuf};
use std::process::Command;

const ORAS: &str = "oras==0.2.43";

/// A python with `oras` importable: a venv of its own under the target dir, made once.
fn oras_python() -> PathBuf {
    let target = Path::new(env!("CARGO_BIN_EXE_skiff"))
        .ancestors()
        .nth(2)
        .expect("the skiff binary sits in <target>/<profile>/");
    let venv = target.join("peers").join(ORAS.replace("==", "-"));
    let python = venv.join("bin").join("python");
    let has_oras = |python: &Path| {
        Command::new(python)
            .args(["-c", "import oras.client"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !has_oras(&python) {
        let ok = |c: &mut Command| {
            let o = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
            assert!(
                o.status.success(),
                "{c:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        ok(Command::new("python3").arg("-m").arg("venv").arg(&venv));
        ok(Command::new(venv.join("bin").join("pip")).args(["install", "-q", ORAS]));
        assert!(has_oras(&python), "{ORAS} installed but not importable");
    }
    python
}

#[test]
fn an_image_the_oras_client_pushes_pulls_and_runs() {
    let registry = TestRegistry::start();
    let python = oras_python();
    let work = tempfile::tempdir().unwrap();
    std::fs::copy(guest("hello.wasm"), work.path().join("hello.wasm")).unwrap();
    // As oras's own examples push a file: `path:mediatype`, the client's default (unknown)
    // config, the file's name as the layer's title.
    let script = r#"
import sys, oras.client
addr = sys.argv[1]
client = oras.client.OrasClient(hostname=addr, insecure=True)
r = client.push(files=["hello.wasm:application/wasm"], target=f"{addr}/oras/hello:1",
                disable_path_validation=True)
assert r.status_code == 201, (r.status_code, r.text)
"#;
    let push = Command::new(&python)
        .args(["-c", script, &registry.addr])
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(
        push.status.success(),
        "oras push: {}",
        String::from_utf8_lossy(&push.stderr)
    );
    let reference = format!("{}/oras/hello:1", registry.addr);
    Skiff::new()
        .run(&["run", &reference, "world"])
        .code(0)
        .stdout_has("hello from skiff")
        .stdout_has("arg[1]=world")
        .stderr_has("Pull complete");
}

#[test]
fn the_oras_client_pulls_the_sbom_skiff_attached_as_a_referrer() {
    let registry = TestRegistry::start();
    let python = oras_python();
    let (s, reference) = common::hello_tagged_for(&registry.addr, "team/bom");
    let pushed = s.run(&["push", "--sbom", "spdx", &reference]);
    pushed.code(0);
    let digest = pushed
        .stdout
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .unwrap()
        .to_string();
    let referrer = pushed
        .stdout
        .split("as the OCI referrer ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no referrer in {pushed}"))
        .to_string();
    // An OCI client of its own reads the referrer as an artifact: its subject, its type, and
    // the document it carries (saved under its digest: skiff's layer has no file name).
    let script = r#"
import sys, oras.client
addr, target, subject, out = sys.argv[1:5]
client = oras.client.OrasClient(hostname=addr, insecure=True)
m = client.get_manifest(target)
assert m["subject"]["digest"] == subject, m
assert m["artifactType"] == "application/vnd.dev.cosign.artifact.sbom.v1+json", m
assert m["config"]["mediaType"] == "application/vnd.oci.empty.v1+json", m
print(client.pull(target=target, outdir=out)[0])
"#;
    let out = tempfile::tempdir().unwrap();
    let target = format!("{}/team/bom@{referrer}", registry.addr);
    let pull = Command::new(&python)
        .args(["-c", script, &registry.addr, &target, &digest])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        pull.status.success(),
        "oras: {}",
        String::from_utf8_lossy(&pull.stderr)
    );
    let file = String::from_utf8(pull.stdout).unwrap();
    let document = std::fs::read(file.trim()).unwrap();
    let back = Skiff::new().run(&["sbom", &reference]);
    back.code(0).stderr_has("(OCI referrer)");
    assert_eq!(document, back.stdout.as_bytes());
}
