//! `skiff push`, `skiff pull` and `skiff run REF` against a real registry (Debian's
//! docker-registry), read back by real clients (skopeo, curl).

mod common;
#[path = "../../skiff-registry/tests/common/cutting_proxy.rs"]
mod cutting_proxy;
#[path = "../../skiff-registry/tests/common/faulty.rs"]
mod faulty;
#[path = "../../skiff-registry/tests/common/server.rs"]
mod registry;
#[path = "../../skiff-registry/tests/common/shipped.rs"]
mod shipped;

use common::{guest, Skiff};
use registry::{sha256, skopeo_raw, Curl, TestRegistry};
use serde_json::json;

fn local_manifest(s: &Skiff, reference: &str) -> Vec<u8> {
    let digest = s.run(&["images", "--digests", "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_str(&digest.stdout).unwrap();
    let (repo, tag) = reference.rsplit_once(':').unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["repository"] == repo && r["tag"] == tag)
        .unwrap_or_else(|| panic!("{reference} not in {rows}"));
    let hex = row["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    std::fs::read(s.home.path().join("blobs/sha256").join(hex)).unwrap()
}

#[test]
fn push_then_pull_into_a_fresh_home_runs_from_the_compile_cache() {
    let registry = TestRegistry::start();
    let (s, reference) = common::hello_tagged_for(&registry.addr, "team/hello");

    s.run(&["push", &reference])
        .code(0)
        .stdout_has("The push refers to repository")
        .stdout_has(": Pushed");
    // Another client reads back exactly the bytes skiff stores.
    assert_eq!(skopeo_raw(&reference), local_manifest(&s, &reference));
    // Pushing again sends nothing.
    s.run(&["push", &reference])
        .code(0)
        .stdout_has("Layer already exists")
        .stdout_has("(0 blob bytes transferred)")
        .stdout_lacks(": Pushed");

    let fresh = Skiff::new();
    fresh
        .run(&["pull", &reference])
        .code(0)
        .stdout_has("Pull complete")
        .stdout_has("Status: Downloaded newer image")
        .stdout_has(&format!("\n{reference}\n"));
    fresh
        .run(&["images"])
        .code(0)
        .stdout_has(&format!("{}/team/hello", registry.addr))
        .stdout_has("1.0");
    assert_eq!(
        local_manifest(&fresh, &reference),
        local_manifest(&s, &reference)
    );
    // The pull compiled it: the first run is a cache hit.
    fresh
        .run(&["--log-level", "debug", "run", &reference])
        .code(0)
        .stdout_has("hello from skiff")
        .stderr_has("compile cache hit");
    // A re-pull moves no blob bytes.
    fresh
        .run(&["pull", &reference])
        .code(0)
        .stdout_has("Already exists")
        .stdout_has("Status: Image is up to date")
        .stdout_has("(0 blob bytes transferred)")
        .stdout_lacks("Pull complete");
    // -q: the reference alone.
    assert_eq!(
        fresh.run(&["pull", "-q", &reference]).code(0).stdout,
        format!("{reference}\n")
    );
}

#[test]
fn a_registry_with_auth_needs_login() {
    let registry = TestRegistry::with_auth("me", "s3cret");
    let (s, reference) = common::hello_tagged_for(&registry.addr, "hello");
    let docker = tempfile::tempdir().unwrap();
    s.run_env("DOCKER_CONFIG", docker.path(), &["push", &reference])
        .code(125)
        .stderr_has(&format!("login required for {}", registry.addr));

    s.login(docker.path(), &registry.addr, "me", "s3cret")
        .code(0);

    s.run_env("DOCKER_CONFIG", docker.path(), &["push", &reference])
        .code(0);
    let fresh = Skiff::new();
    fresh
        .run(&["pull", &reference])
        .code(125)
        .stderr_has("login required");
    fresh
        .run_env("DOCKER_CONFIG", docker.path(), &["pull", &reference])
        .code(0);
    fresh
        .run_env("DOCKER_CONFIG", docker.path(), &["run", &reference])
        .code(0)
        .stdout_has("hello from skiff");
}

#[test]
fn run_pulls_an_image_it_does_not_have() {
    let registry = TestRegistry::start();
    let (s, reference) = common::hello_tagged_for(&registry.addr, "hello");
    s.run(&["push", "-q", &reference]).code(0);

    let fresh = Skiff::new();
    fresh
        .run(&["run", "--pull", "never", &reference])
        .code(127)
        .stderr_has("not found");
    fresh
        .run(&["run", &reference, "world"])
        .code(0)
        .stdout_has("hello from skiff")
        .stdout_has("arg[1]=world")
        // The pull reports on stderr: stdout is the guest's.
        .stdout_lacks("Pull")
        .stderr_has("Unable to find image")
        .stderr_has("Pull complete");
    // Now present: no pull at all.
    fresh
        .run(&["run", &reference])
        .code(0)
        .stderr_lacks("Pulling");
    // --pull always asks the registry again, and moves nothing.
    fresh
        .run(&["run", "--pull", "always", &reference])
        .code(0)
        .stderr_has("Already exists")
        .stderr_has("(0 blob bytes transferred)");
    // An image the registry does not have either: not found, 127.
    fresh
        .run(&["run", &format!("{}/nosuch:1", registry.addr)])
        .code(127)
        .stderr_has("not found");
}

#[test]
fn a_spin_image_pushed_by_another_client_pulls_and_runs() {
    let registry = TestRegistry::start();
    let curl = Curl {
        addr: &registry.addr,
        user: None,
    };
    let wasm = std::fs::read(guest("hello-p2.wasm")).unwrap();
    let config = serde_json::to_vec(&json!({
        "spin_lock_version": 1, "triggers": [],
        "components": [{"id": "hello", "source": {"content_type": "application/wasm",
            "content": {"digest": sha256(&wasm)}}}],
    }))
    .unwrap();
    curl.put_blob("spin/hello", &wasm);
    curl.put_blob("spin/hello", &config);
    let desc = |mt: &str, b: &[u8]| json!({"mediaType": mt, "digest": sha256(b), "size": b.len()});
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": desc("application/vnd.fermyon.spin.application.v1+config", &config),
        "layers": [desc("application/vnd.wasm.content.layer.v1+wasm", &wasm)],
    }))
    .unwrap();
    curl.put_manifest(
        "spin/hello",
        "v1",
        "application/vnd.oci.image.manifest.v1+json",
        &manifest,
    );

    let s = Skiff::new();
    let reference = format!("{}/spin/hello:v1", registry.addr);
    s.run(&["pull", &reference])
        .code(0)
        .stdout_has("Converted from the spin layout");
    s.run(&["images"]).code(0).stdout_has("spin/hello");
    s.run(&["inspect", &reference]).code(0);
    s.run(&["run", &reference])
        .code(0)
        .stdout_has("hello from skiff");
}

/// What current Spin, wkg and oras push (byte for byte as they write it, see
/// tests/common/shipped.rs), and an index mixing Linux and Wasm: each pulls and runs.
#[test]
fn images_todays_tools_push_pull_and_run() {
    let registry = TestRegistry::start();
    let curl = Curl {
        addr: &registry.addr,
        user: None,
    };
    let (hello, p2) = (
        std::fs::read(guest("hello.wasm")).unwrap(),
        std::fs::read(guest("hello-p2.wasm")).unwrap(),
    );
    let spin = shipped::spin_current(
        "app",
        &[shipped::SpinComponent {
            id: "hello",
            wasm: &p2,
            media_type: shipped::SPIN_WASM,
            route: Some("/..."),
            files: vec![("index.html", b"<p>hi</p>")],
        }],
    );
    let images = [
        ("spin", spin),
        ("wkg", shipped::wkg(&p2, &["wasi:cli/run@0.2.0"], &[])),
        (
            "artifact",
            shipped::oci11_artifact(&hello, "application/vnd.wasm.config.v0+json"),
        ),
        ("oras", shipped::oras_v1_0(&hello)),
    ];
    for (tag, image) in &images {
        for b in &image.blobs {
            curl.put_blob("tools/hello", b);
        }
        curl.put_manifest("tools/hello", tag, shipped::OCI_MANIFEST, &image.manifest);
    }
    let linux = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
    curl.put_blob("tools/hello", b"{}");
    curl.put_manifest("tools/hello", "linux", shipped::OCI_MANIFEST, linux);
    let index = shipped::mixed_index(&[
        (linux, "linux", "amd64"),
        (&images[0].1.manifest, "wasip1", "wasm"),
    ]);
    curl.put_manifest("tools/hello", "mixed", shipped::OCI_INDEX, &index);

    let s = Skiff::new();
    for (tag, layout) in [
        ("spin", Some("spin")),
        ("wkg", None),
        ("artifact", Some("artifact")),
        ("oras", Some("artifact")),
    ] {
        let reference = format!("{}/tools/hello:{tag}", registry.addr);
        let out = s.run(&["pull", &reference]);
        let pulled = out.code(0);
        match layout {
            Some(l) => pulled.stdout_has(&format!("Converted from the {l} layout")),
            None => pulled.stdout_lacks("Converted"),
        };
        s.run(&["run", &reference])
            .code(0)
            .stdout_has("hello from skiff");
    }
    let reference = format!("{}/tools/hello:mixed", registry.addr);
    s.run(&["pull", &reference])
        .code(0)
        .stdout_has("Platform: wasip1/wasm, of linux/amd64, wasip1/wasm");
    s.run(&["run", &reference])
        .code(0)
        .stdout_has("hello from skiff");
}

/// A Spin app's files, as `spin registry push` writes them (a data layer for a large file, a
/// small one inlined into the locked app), are given to the guest read-only at the paths the
/// locked app says; a path that leaves the guest's root is refused at pull.
#[test]
fn spin_files_are_mounted_read_only_where_the_locked_app_says() {
    let registry = TestRegistry::start();
    let curl = Curl {
        addr: &registry.addr,
        user: None,
    };
    let p2 = std::fs::read(guest("hello-p2.wasm")).unwrap();
    let data = "spin data ".repeat(20);
    let spin = |files| {
        shipped::spin_current(
            "app",
            &[shipped::SpinComponent {
                id: "hello",
                wasm: &p2,
                media_type: shipped::SPIN_WASM,
                route: Some("/..."),
                files,
            }],
        )
    };
    let push = |tag: &str, image: &shipped::ToolImage| {
        for b in &image.blobs {
            curl.put_blob("spin/files", b);
        }
        curl.put_manifest("spin/files", tag, shipped::OCI_MANIFEST, &image.manifest);
    };
    // The `hello` guest reads /data/in.txt and tries to write /out/out.txt.
    let good = spin(vec![
        ("data/in.txt", data.as_bytes()),
        ("out/keep.txt", b"small"),
    ]);
    assert!(
        good.manifest.windows(6).any(|w| w == b"+data\""),
        "a data layer"
    );
    push("good", &good);
    push("escape", &spin(vec![("../../etc/passwd", b"x")]));

    let s = Skiff::new();
    let reference = format!("{}/spin/files:good", registry.addr);
    s.run(&["pull", &reference]).code(0);
    s.run(&["inspect", &reference])
        .code(0)
        .stdout_has("files      /data/in.txt, /out/keep.txt (read-only)");
    assert!(!s.home.path().join("files").exists(), "inspect writes none");
    s.run(&["run", &reference])
        .code(0)
        .stdout_has(&format!("read: {}", data.trim()))
        .stdout_has("write: error");
    // Written out once, read-only, nothing but the files.
    let dirs: Vec<_> = std::fs::read_dir(s.home.path().join("files"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let mut names: Vec<_> = walk(&dirs[0]);
    names.sort();
    assert_eq!(names, ["data/in.txt", "out/keep.txt"]);
    let meta = std::fs::metadata(dirs[0].join("data/in.txt")).unwrap();
    assert!(meta.permissions().readonly());
    // A second run uses them as they are.
    s.run(&["run", &reference])
        .code(0)
        .stdout_has("read: spin data");
    // `save` carries the files, and `load` into another home runs with them.
    let tar = s.home.path().join("files.tar");
    s.run(&["save", "-o", tar.to_str().unwrap(), &reference])
        .code(0);
    let other = Skiff::new();
    other.run(&["load", "-i", tar.to_str().unwrap()]).code(0);
    other
        .run(&["run", "--pull", "never", &reference])
        .code(0)
        .stdout_has("read: spin data");
    // `serve` gives an HTTP component its files alike (and still serves).
    let http = std::fs::read(guest("http-hello.wasm")).unwrap();
    let served_image = shipped::spin_current(
        "web",
        &[shipped::SpinComponent {
            id: "web",
            wasm: &http,
            media_type: shipped::SPIN_WASM,
            route: Some("/..."),
            files: vec![("static/index.html", data.as_bytes())],
        }],
    );
    push("web", &served_image);
    let web = format!("{}/spin/files:web", registry.addr);
    s.run(&["pull", &web]).code(0);
    let served = common::serve::Served::start_in(s.home.path(), &[&web]);
    let r = served.get("/");
    assert_eq!((r.status, r.body.as_str()), (200, "hello from skiff\n"));
    drop(served);
    assert_eq!(
        std::fs::read_dir(s.home.path().join("files"))
            .unwrap()
            .count(),
        2
    );
    // A detached run (the daemon runs it on this host) is given them too.
    let d = common::daemon::Daemon::start_in(s, &[]);
    d.run(&["run", "-d", "--name", "files", &reference]).code(0);
    d.wait_status("files", "exited");
    let log = d.log_lines("files");
    assert!(
        log.iter().any(|l| l.starts_with("read: spin data")),
        "{log:?}"
    );
    d.run(&["rm", "files"]).code(0);
    // Removing the image removes its files.
    d.run(&["rmi", &reference]).code(0);
    assert!(!dirs[0].exists());

    d.run(&["pull", &format!("{}/spin/files:escape", registry.addr)])
        .code(125)
        .stderr_has("component \"hello\" has files skiff refuses")
        .stderr_has("leaves the root");
}

/// Files under `dir`, relative, `/`-separated.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            out.extend(walk(&p).into_iter().map(|n| format!("{name}/{n}")));
        } else {
            out.push(name);
        }
    }
    out
}

/// The image config of `reference`, as skopeo reads it from the registry.
fn skopeo_config(reference: &str) -> serde_json::Value {
    let out = std::process::Command::new("skopeo")
        .args(["inspect", "--config", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)))
}

/// The compat image keeps the image's default args and env (`Cmd`, `Env`, what Docker runs
/// with), and a pull reads them back.
#[test]
fn push_in_the_compat_layout_and_pull_it_back() {
    let registry = TestRegistry::start();
    let s = Skiff::new();
    let p = common::project::Project::new(
        "hello",
        "hello.wasm",
        "version = \"1.0\"\nargs = [\"from-image\"]\n[env]\nNAME = \"image\"\n",
    );
    s.run(&["build", p.arg()]).code(0);
    let reference = format!("{}/compat/hello:1.0", registry.addr);
    s.run(&["tag", "hello:1.0", &reference]).code(0);
    s.run(&["push", "--format", "compat", &reference])
        .code(0)
        .stdout_has(": Pushed");
    let config = skopeo_config(&reference);
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["from-image"]));
    assert_eq!(config["config"]["Env"], serde_json::json!(["NAME=image"]));
    let raw: serde_json::Value = serde_json::from_slice(&skopeo_raw(&reference)).unwrap();
    assert_eq!(
        raw["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    assert_eq!(
        raw["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );

    let fresh = Skiff::new();
    fresh
        .run(&["pull", &reference])
        .code(0)
        .stdout_has("Converted from the compat layout");
    fresh
        .run(&["run", &reference])
        .code(0)
        .stdout_has("hello from skiff")
        .stdout_has("arg[1]=from-image")
        .stdout_has("NAME=image");
}

/// `--platform linux/amd64`: the compat image Debian's Docker 20.10 and Kubernetes nodes accept
/// (they refuse or skip `wasi`); the config says so, and skiff still pulls and runs it (the
/// binary says what it is, not the platform).
#[test]
fn push_in_the_compat_layout_for_another_platform() {
    let registry = TestRegistry::start();
    let (s, reference) = common::hello_tagged_for(&registry.addr, "compat/linux");
    s.run(&["push", "--platform", "linux/amd64", &reference])
        .code(125)
        .stderr_has("--platform is for --format compat");
    s.run(&[
        "push",
        "--format",
        "compat",
        "--platform",
        "linux",
        &reference,
    ])
    .code(125)
    .stderr_has("OS/ARCH");
    s.run(&[
        "push",
        "--format",
        "compat",
        "--platform",
        "linux/amd64",
        &reference,
    ])
    .code(0)
    .stdout_has(": Pushed");
    let config = skopeo_config(&reference);
    assert_eq!(
        (config["os"].as_str(), config["architecture"].as_str()),
        (Some("linux"), Some("amd64"))
    );
    let fresh = Skiff::new();
    fresh.run(&["pull", &reference]).code(0);
    fresh
        .run(&["run", &reference])
        .code(0)
        .stdout_has("hello from skiff");
}

/// SKIFF_HOME's store keeps a download that broke mid-blob (its hash included) and continues
/// it: the pull reports the retry, and the image it stores runs.
#[test]
fn a_pull_cut_mid_blob_continues_into_the_store_and_runs() {
    let registry = TestRegistry::start();
    // A module with a 3 MiB custom section: a layer big enough to cut part way.
    let mut wasm = std::fs::read(guest("hello.wasm")).unwrap();
    let payload: Vec<u8> = (0..3u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let mut section = vec![4u8];
    section.extend_from_slice(b"pad!");
    section.extend_from_slice(&payload);
    wasm.push(0);
    let mut n = section.len();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        wasm.push(if n > 0 { byte | 0x80 } else { byte });
        if n == 0 {
            break;
        }
    }
    wasm.extend_from_slice(&section);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.wasm"), &wasm).unwrap();
    std::fs::write(
        dir.path().join("skiff.toml"),
        "name = \"padded\"\nversion = \"1\"\nwasm = \"app.wasm\"\n",
    )
    .unwrap();
    let s = Skiff::new();
    s.run(&["build", dir.path().to_str().unwrap()]).code(0);
    let pushed = format!("{}/team/padded:1", registry.addr);
    s.run(&["tag", "padded:1", &pushed]).code(0);
    s.run(&["push", "-q", &pushed]).code(0);

    let proxy = cutting_proxy::CuttingProxy::start(&registry.addr, 1 << 20);
    let via_proxy = format!("{}/team/padded:1", proxy.addr);
    let fresh = Skiff::new();
    fresh
        .run(&["pull", &via_proxy])
        .code(0)
        .stderr_has("retrying (attempt 2)")
        .stdout_has("Pull complete");
    assert!(proxy
        .sent
        .lock()
        .unwrap()
        .to_ascii_lowercase()
        .contains("range: bytes="));
    fresh
        .run(&["run", &via_proxy])
        .code(0)
        .stdout_has("hello from skiff");
}

/// A registry that accepts connections and never answers: `skiff pull` says so at each retry
/// (it used to print "Pulling from" and then nothing for minutes), then fails naming the host.
#[test]
fn a_pull_from_a_silent_registry_announces_each_retry() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming().flatten() {
            held.push(c);
        }
    });
    let s = Skiff::new();
    s.run_env(
        "SKIFF_REGISTRY_STALL_TIMEOUT",
        "500ms",
        &["pull", &format!("{addr}/team/silent:1")],
    )
    .code(125)
    .stderr_has("retrying in")
    .stderr_has("(attempt 2 of ")
    .stderr_has(&format!("registry {addr} sent no answer"));
}

/// A registry that trickles the layer a byte a second: `skiff pull` gives up (after its
/// retries) with a message naming the registry and the blob, instead of hanging.
/// `SKIFF_REGISTRY_STALL_TIMEOUT` puts the stall rule on a 1 s clock so this ends in seconds.
#[test]
fn a_pull_from_a_trickling_registry_fails_naming_it() {
    let wasm = std::fs::read(guest("hello.wasm")).unwrap();
    let config = br#"{"architecture":"wasm","os":"wasip1"}"#.to_vec();
    let desc = |mt: &str, b: &[u8]| json!({"mediaType": mt, "digest": sha256(b), "size": b.len()});
    let manifest_type = "application/vnd.oci.image.manifest.v1+json";
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": manifest_type,
        "config": desc("application/vnd.wasm.config.v0+json", &config),
        "layers": [desc("application/wasm", &wasm)],
    }))
    .unwrap();
    let (config_digest, layer_digest) = (sha256(&config).to_string(), sha256(&wasm).to_string());
    let layer = layer_digest.clone();
    let server = faulty::Faulty::start(move |_, path| {
        if path == "/v2/" {
            faulty::Reply::json(200, "{}")
        } else if path.contains("/manifests/") {
            faulty::Reply::new(200, manifest_type, manifest.clone())
        } else if path.ends_with(&config_digest) {
            faulty::Reply::new(200, "application/octet-stream", config.clone())
        } else if path.ends_with(&layer) {
            faulty::Reply {
                trickle: Some(std::time::Duration::from_secs(1)),
                ..faulty::Reply::new(200, "application/octet-stream", wasm.clone())
            }
        } else {
            faulty::Reply::json(404, r#"{"errors":[{"code":"BLOB_UNKNOWN"}]}"#)
        }
    });
    let s = Skiff::new();
    s.run_env(
        "SKIFF_REGISTRY_STALL_TIMEOUT",
        "1",
        &["pull", &format!("{}/team/slow:1", server.addr)],
    )
    .code(125)
    .stderr_has(&format!("registry {} sent ", server.addr))
    .stderr_has(&format!("while receiving blob {layer_digest}"))
    .stderr_has("check the network or try again");
    s.run(&["images", "--format", "json"])
        .stdout_lacks("team/slow");
}

/// Push and pull on a 60-column terminal (a real pseudo-terminal, so the bars are drawn): no line
/// is wider than the terminal, sizes use one unit style (kB/MB, as every other size skiff
/// prints), and each blob's final line is there.
#[test]
fn progress_fits_a_narrow_terminal_in_one_unit_style() {
    use expectrl::Expect;
    let registry = TestRegistry::start();
    let (s, reference) = common::hello_tagged_for(&registry.addr, "team/narrow");
    let on_terminal = |home: &std::path::Path, args: &[&str], done: &str| -> String {
        // Not `s.cmd()`: its stdin is /dev/null; here the terminal is every stream.
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_skiff"));
        cmd.env_clear()
            .env("SKIFF_HOME", home)
            .env("TERM", "xterm")
            .args(args);
        let mut term = expectrl::Session::spawn(cmd).expect("a pseudo-terminal");
        term.get_process_mut().set_window_size(60, 24).unwrap();
        term.set_expect_timeout(Some(std::time::Duration::from_secs(60)));
        let all = term.expect(expectrl::Eof).unwrap();
        let text = String::from_utf8_lossy(all.as_bytes()).into_owned();
        assert!(text.contains(done), "{text}");
        text
    };
    let pushed = on_terminal(s.home.path(), &["push", &reference], "Pushed");
    let fresh = Skiff::new();
    let pulled = on_terminal(fresh.home.path(), &["pull", &reference], "Pull complete");
    for (what, out) in [("push", &pushed), ("pull", &pulled)] {
        let visible = strip_ansi(out);
        // The blobs' bar rows (`0123456789ab: …`), cut where the next row starts: a row that
        // fills the terminal exactly is followed by the next without a line break.
        let starts: Vec<usize> = visible
            .char_indices()
            .map(|(i, _)| i)
            .filter(|&i| {
                visible.get(i..i + 14).is_some_and(|w| {
                    w.ends_with(": ") && w[..12].chars().all(|c| c.is_ascii_hexdigit())
                }) && (i == 0 || !visible[..i].ends_with(|c: char| c.is_ascii_hexdigit()))
            })
            .collect();
        let bars = starts.iter().map(|&i| {
            let rest = &visible[i..];
            let end = starts
                .iter()
                .find(|&&j| j > i)
                .map_or(rest.len(), |&j| j - i);
            let row = rest[..end].split('\n').next().unwrap_or("");
            // A finished row is padded with spaces to the terminal's width; what follows the
            // padding (outside the bar's brackets) is the next line's.
            let from = row.find(']').map_or(14, |b| b + 1);
            match row[from..].find("  ") {
                Some(pad) => &row[..from + pad],
                None => row,
            }
        });
        for line in bars {
            assert!(
                line.trim_end().chars().count() <= 60,
                "{what}: a line wider than the terminal: {line:?}\n{visible}"
            );
        }
        assert!(
            !visible.contains("KiB") && !visible.contains("MiB"),
            "{what}: binary units beside decimal ones:\n{visible}"
        );
    }
}

/// The text a terminal shows, each escape sequence (`ESC [ … letter`: cursor moves, line
/// clears) replaced by a line break, so that rows drawn in place come out as lines.
fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            out.push('\n');
            continue;
        }
        out.push(c);
    }
    out
}
