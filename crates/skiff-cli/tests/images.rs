//! `skiff build`, `images`, `run IMAGE`, `inspect IMAGE`, `tag`, `rmi`, `image prune`.

mod common;
use common::project::{digest_of, Project};
use common::{guest, Skiff};

#[test]
fn build_list_run_remove_prune() {
    let s = Skiff::new();
    let p = Project::new("hello", "hello.wasm", "version = \"1.0\"\n");
    s.run(&["build", p.arg()])
        .code(0)
        .stdout_has("Built hello:1.0 sha256:")
        .stdout_has("wasip1");
    s.run(&["images"])
        .code(0)
        .stdout_has("REPOSITORY")
        .stdout_has("DIGEST")
        .stdout_has("hello")
        .stdout_has("1.0");
    s.run(&["run", "hello:1.0", "world"])
        .code(0)
        .stdout_has("hello from skiff")
        .stdout_has("arg[0]=hello")
        .stdout_has("arg[1]=world");
    // The store is content-addressed: the layer is the very file built from.
    let wasm = std::fs::read(guest("hello.wasm")).unwrap();
    let hex = {
        use sha2::Digest;
        hex_of(&sha2::Sha256::digest(&wasm))
    };
    assert!(s.home.path().join("blobs/sha256").join(&hex).is_file());

    s.run(&["rmi", "hello:1.0"])
        .code(0)
        .stdout_has("Untagged: hello:1.0")
        .stdout_has("Deleted: sha256:");
    s.run(&["images", "-q"]).code(0).stdout_lacks("\n\n");
    assert!(!s.home.path().join("blobs/sha256").join(&hex).exists());
    // --pull never: without it, run would ask docker.io for hello:1.0, as Docker does.
    s.run(&["run", "--pull", "never", "hello:1.0"])
        .code(127)
        .stderr_has("not found")
        .stderr_has("skiff pull");
    s.run(&["image", "prune"])
        .code(0)
        .stdout_has("Total reclaimed space");
    s.run(&["system", "check"]).code(0).stdout_has("0 problems");
}

/// `skiff build app.wasm`: no skiff.toml, the image named after the file and granted nothing.
#[test]
fn a_wasm_file_alone_builds_an_image_named_after_it() {
    let s = Skiff::new();
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("My App.wasm");
    std::fs::copy(guest("hello.wasm"), &wasm).unwrap();
    let arg = wasm.to_str().unwrap();
    s.run(&["build", arg])
        .code(0)
        .stdout_has("Built my-app:latest sha256:");
    s.run(&["build", "-t", "team/app:1.0", arg])
        .code(0)
        .stdout_has("Built team/app:1.0 sha256:");
    s.run(&["run", "my-app", "one"])
        .code(0)
        .stdout_has("hello from skiff")
        .stdout_has("arg[1]=one")
        .stdout_has("NAME=(unset)");
    // A file that is neither a directory nor a .wasm says what CONTEXT should be.
    let other = dir.path().join("app.yml");
    std::fs::write(&other, "x").unwrap();
    s.run(&["build", other.to_str().unwrap()])
        .code(125)
        .stderr_has("give the directory holding skiff.toml, or a .wasm");
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn builds_are_reproducible() {
    let s1 = Skiff::new();
    let s2 = Skiff::new();
    let p = Project::new(
        "repro",
        "hello-p2.wasm",
        "version = \"2\"\nargs = [\"a\"]\n",
    );
    let a = digest_of(&s1.run(&["build", "-q", p.arg()]).code(0).stdout.clone());
    let b = digest_of(&s2.run(&["build", "-q", p.arg()]).code(0).stdout.clone());
    assert_eq!(a, b, "same inputs, same digest");
    // SOURCE_DATE_EPOCH is honoured, and changes the digest.
    let out = s1
        .cmd()
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["build", "-q", p.arg()])
        .output()
        .unwrap();
    let c = digest_of(&String::from_utf8_lossy(&out.stdout));
    assert_ne!(a, c);
    s1.run(&["inspect", "--format", "json", "repro:2"])
        .code(0)
        .stdout_has("2023-11-14T22:13:20Z");
    let bad = s1
        .cmd()
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .args(["build", p.arg()])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("SOURCE_DATE_EPOCH"));
}

#[test]
fn image_defaults_apply_and_cli_overrides_them() {
    let s = Skiff::new();
    let p = Project::new(
        "greeter",
        "hello.wasm",
        "args = [\"default-arg\"]\n[env]\nNAME = \"from-image\"\nOTHER = \"x\"\n",
    );
    s.run(&["build", p.arg()]).code(0);
    s.run(&["run", "greeter"])
        .code(0)
        .stdout_has("arg[1]=default-arg")
        .stdout_has("NAME=from-image")
        .stdout_has("env count: 2");
    // Args given replace the defaults (Docker's CMD); -e overrides one value.
    s.run(&["run", "-e", "NAME=from-cli", "greeter", "given"])
        .code(0)
        .stdout_has("arg[1]=given")
        .stdout_lacks("default-arg")
        .stdout_has("NAME=from-cli")
        .stdout_has("env count: 2");
}

#[test]
fn requested_capabilities_are_shown_not_granted() {
    let s = Skiff::new();
    let p = Project::new(
        "wants",
        "hello.wasm",
        "[capabilities]\ndirs = [\"/data\"]\nenv = [\"TOKEN\"]\noutbound = [\"https://api.example.com\"]\n",
    );
    s.run(&["build", p.arg()]).code(0);
    // Not granted: /data is not mounted, so the read fails.
    s.run(&["run", "wants"]).code(0).stdout_has("read: error");
    let done = s.run(&["inspect", "wants"]);
    done.code(0)
        .stdout_has("Image:      wants")
        .stdout_has("/data")
        .stdout_has("TOKEN")
        .stdout_has("requests outbound HTTP but imports nothing that could use it")
        .stdout_has("dev.skiff.request.dirs");
    // A component that imports sockets but requests no network is flagged.
    let p2 = Project::new("sock", "socket.wasm", "");
    s.run(&["build", p2.arg()]).code(0).stdout_has("wasip2");
    s.run(&["inspect", "sock"])
        .code(0)
        .stdout_has("imports wasi:sockets/")
        .stdout_has("but requests no network");
    let done = s.run(&["inspect", "--format", "json", "sock"]);
    done.code(0);
    let v: serde_json::Value = serde_json::from_str(&done.stdout).unwrap();
    assert_eq!(v["image"]["config"]["os"], "wasip2");
    assert_eq!(v["image"]["config"]["architecture"], "wasm");
    let imports = v["image"]["config"]["component"]["imports"]
        .as_array()
        .unwrap();
    assert!(imports
        .iter()
        .any(|i| i.as_str().unwrap().starts_with("wasi:sockets/tcp@0.2")));
    let rows = v["image"]["capabilities"].as_array().unwrap();
    let sockets = rows.iter().find(|r| r["capability"] == "sockets").unwrap();
    assert_eq!(sockets["possible"], true);
    assert!(sockets["note"].as_str().unwrap().contains("no network"));
}

#[test]
fn http_handler_image_has_component_config() {
    let s = Skiff::new();
    let p = Project::new("web", "http-hello.wasm", "[http]\nroute = \"/hello\"\n");
    s.run(&[
        "build",
        "-t",
        "web:1",
        "-t",
        "localhost:5000/team/web:1",
        p.arg(),
    ])
    .code(0)
    .stdout_has("Built web:1")
    .stdout_has("Built localhost:5000/team/web:1");
    let done = s.run(&["inspect", "--format", "json", "localhost:5000/team/web:1"]);
    done.code(0);
    let v: serde_json::Value = serde_json::from_str(&done.stdout).unwrap();
    let exports = v["image"]["config"]["component"]["exports"]
        .as_array()
        .unwrap();
    assert!(exports.iter().any(|e| e
        .as_str()
        .unwrap()
        .starts_with("wasi:http/incoming-handler@0.2")));
    assert_eq!(v["image"]["defaults"]["route"], "/hello");
    assert_eq!(
        v["image"]["manifest"]["layers"][0]["mediaType"],
        "application/wasm"
    );
    // An HTTP handler is not a command: run says so.
    s.run(&["run", "web:1"]).code(126).stderr_has("skiff serve");
    let listed = s.run(&["images", "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert_eq!(rows[0]["digest"], rows[1]["digest"]);
}

#[test]
fn tag_and_remove_by_id() {
    let s = Skiff::new();
    let p = Project::new("app", "hello.wasm", "version = \"1\"\n");
    let digest = digest_of(&s.run(&["build", "-q", p.arg()]).code(0).stdout.clone());
    s.run(&["tag", "app:1", "app:latest"]).code(0);
    s.run(&["tag", &digest, "other/app:2"]).code(0);
    s.run(&["images", "--digests"])
        .code(0)
        .stdout_has(&digest)
        .stdout_has("other/app");
    let short = &digest[7..19];
    s.run(&["run", short])
        .code(0)
        .stdout_has("hello from skiff");
    s.run(&["run", &format!("app@{digest}")]).code(0);
    // Three names: by ID needs -f.
    s.run(&["rmi", short]).code(125).stderr_has("-f");
    s.run(&["rmi", "-f", short])
        .code(0)
        .stdout_has("Untagged: app:1")
        .stdout_has("Untagged: app:latest")
        .stdout_has("Untagged: other/app:2")
        .stdout_has("Deleted:");
    s.run(&["rmi", "app:1"]).code(127).stderr_has("not found");
    s.run(&["tag", "app:1", "x:1"]).code(127);
}

#[test]
fn bad_references_and_inputs() {
    let s = Skiff::new();
    for (bad, says) in [
        ("Hello:1", "lowercase"),
        ("a/../b", "must start"),
        ("hello@sha256:abc", "invalid digest"),
    ] {
        s.run(&["tag", "x", bad]).code(125).stderr_has(says);
    }
    s.run(&["run", "sha256:1234"])
        .code(125)
        .stderr_has("invalid digest");
    s.run(&["run", "missing.wasm"])
        .code(127)
        .stderr_has("no such file");
    s.run(&["inspect", "nope:1"])
        .code(127)
        .stderr_has("not found");

    // skiff.toml: unknown keys, missing file, a bad build command, a non-wasm binary.
    let p = Project::new("t", "hello.wasm", "colour = \"blue\"\n");
    s.run(&["build", p.arg()]).code(125).stderr_has("colour");
    let empty = tempfile::tempdir().unwrap();
    s.run(&["build", empty.path().to_str().unwrap()])
        .code(127)
        .stderr_has("skiff.toml");
    let p = Project::new("t", "hello.wasm", "build = \"exit 3\"\n");
    s.run(&["build", p.arg()])
        .code(125)
        .stderr_has("build command");
    let p = Project::new("t", "not-wasm.txt", "");
    s.run(&["build", p.arg()]).code(126).stderr_has("text file");
    // Nothing was stored by the failures.
    s.run(&["images", "-q"]).code(0);
    assert_eq!(s.run(&["images", "-q"]).stdout, "");
}

#[test]
fn build_command_runs_first() {
    let s = Skiff::new();
    let p = Project::new("made", "hello.wasm", "");
    std::fs::rename(p.file("app.wasm"), p.file("src.wasm")).unwrap();
    let toml = std::fs::read_to_string(p.file("skiff.toml")).unwrap();
    std::fs::write(
        p.file("skiff.toml"),
        format!("{toml}build = \"cp src.wasm app.wasm && echo built\"\n"),
    )
    .unwrap();
    s.run(&["build", p.arg()])
        .code(0)
        .stdout_lacks("built\n")
        .stderr_has("built");
    s.run(&["run", "made"])
        .code(0)
        .stdout_has("hello from skiff");
}

#[test]
fn check_finds_corruption_and_repairs() {
    let s = Skiff::new();
    let p = Project::new("fragile", "hello.wasm", "");
    s.run(&["build", p.arg()]).code(0);
    let wasm = std::fs::read(guest("hello.wasm")).unwrap();
    let hex = {
        use sha2::Digest;
        hex_of(&sha2::Sha256::digest(&wasm))
    };
    let blob = s.home.path().join("blobs/sha256").join(&hex);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();
    s.run(&["system", "check"])
        .code(1)
        .stdout_has("corrupt")
        .stdout_has("fragile:latest");
    s.run(&["system", "check", "--repair"])
        .code(0)
        .stdout_has("removed:");
    s.run(&["system", "check"]).code(0).stdout_has("0 problems");
    s.run(&["run", "--pull", "never", "fragile"]).code(127);
}
