//! skiff-oci under Debian's dockerd (20.10, package docker.io) as `docker run --runtime skiff`:
//! one private dockerd (its own data-root, exec-root, socket and containerd namespace; no bridge,
//! no iptables, the vfs driver) and one `runtimes` entry, as docs/docker.md tells an operator.
//! One test, so that dockerd starts once.

mod common;

use common::{guest, text};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Dockerd {
    dir: tempfile::TempDir,
    child: Child,
}

impl Dockerd {
    fn start() -> Dockerd {
        assert!(
            Path::new("/usr/sbin/dockerd").exists() && Path::new("/usr/bin/docker").exists(),
            "Debian's docker is not installed: apt-get install -y docker.io (scripts/test does)"
        );
        common::assert_root("dockerd");
        let dir = tempfile::Builder::new()
            .prefix("skiff-docker")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let config = serde_json::json!({
            "data-root": d.join("data"),
            "exec-root": d.join("exec"),
            "pidfile": d.join("docker.pid"),
            "hosts": [format!("unix://{}", d.join("docker.sock").display())],
            "containerd-namespace": "skiff-test",
            "containerd-plugins-namespace": "skiff-test-plugins",
            "bridge": "none",
            "iptables": false,
            "ip-masq": false,
            "storage-driver": "vfs",
            "runtimes": {"skiff": {"path": env!("CARGO_BIN_EXE_skiff-oci")}},
        });
        std::fs::write(d.join("daemon.json"), config.to_string()).unwrap();
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        let child = Command::new("/usr/sbin/dockerd")
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .env("SKIFF_HOME", d.join("skiff-home"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let docker = Dockerd { dir, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !docker.docker(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "dockerd did not come up; log:\n{}",
                docker.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        docker
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// Debian's own client (`/usr/bin/docker`), on this test's socket.
    fn docker(&self, args: &[&str]) -> Output {
        Command::new("/usr/bin/docker")
            .arg("-H")
            .arg(format!(
                "unix://{}",
                self.dir.path().join("docker.sock").display()
            ))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run docker")
    }

    fn import(&self, image: &str, files: &[(&str, &Path)], entrypoint: &str) {
        let tar = common::rootfs_tar(self.dir.path(), image, files);
        let change = common::entrypoint(entrypoint);
        let out = self.docker(&["import", "--change", &change, tar.to_str().unwrap(), image]);
        assert!(out.status.success(), "import: {}", text(&out));
    }

    /// `docker run --runtime skiff --network none ARGS...`: this dockerd has no bridge.
    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["run", "--runtime", "skiff", "--network", "none"];
        all.extend_from_slice(args);
        self.docker(&all)
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let out = self.docker(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            self.docker(&["rm", "-f", id]);
        }
        // SAFETY: kill(2) on our own child; dockerd stops its containerd on SIGTERM.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for sub in ["exec", "data"] {
            let _ = Command::new("umount")
                .arg("-R")
                .arg(self.dir.path().join(sub))
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[test]
fn docker_run_runtime_skiff() {
    let d = Dockerd::start();
    d.import(
        "skiff/guests:1",
        &[
            ("app.wasm", &guest("hello.wasm")),
            ("p2.wasm", &guest("hello-p2.wasm")),
            ("exit.wasm", &guest("exit-code.wasm")),
            ("hog.wasm", &guest("memory-hog.wasm")),
            ("ticker.wasm", &guest("ticker.wasm")),
        ],
        "/app.wasm",
    );
    let image = "skiff/guests:1";

    // Output, arguments, -e; deny by default.
    let out = d.run(&["--rm", "-e", "NAME=docker", image, "world"]);
    let s = text(&out);
    assert!(out.status.success(), "{s}\ndockerd:\n{}", d.log());
    assert!(
        s.contains("hello from skiff") && s.contains("arg[1]=world"),
        "{s}"
    );
    assert!(
        s.contains("NAME=docker") && s.contains("read: error"),
        "{s}"
    );

    // A p2 component.
    let out = d.run(&["--rm", "--entrypoint", "/p2.wasm", image]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("hello"),
        "{}",
        text(&out)
    );

    // Exit codes, and -m as the memory budget.
    let out = d.run(&["--rm", "--entrypoint", "/exit.wasm", image, "7"]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    let out = d.run(&["--rm", "-m", "64m", "--entrypoint", "/hog.wasm", image]);
    let s = text(&out);
    assert_eq!(out.status.code(), Some(137), "{s}");
    assert!(s.contains("memory limit") && s.contains("64 MiB"), "{s}");

    // -v: read-only when :ro.
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("in.txt"), "from the host\n").unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let data_v = format!("{}:/data:ro", data.path().display());
    let out_v = format!("{}:/out", out_dir.path().display());
    let out = d.run(&["--rm", "-v", &data_v, "-v", &out_v, image]);
    let s = text(&out);
    assert!(
        s.contains("read: from the host") && s.contains("write: ok"),
        "{s}"
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.path().join("out.txt")).unwrap(),
        "written by hello\n"
    );

    // run -d, logs, stop (SIGTERM: 143), wait.
    let out = d.run(&[
        "-d",
        "--name",
        "ticker",
        "--entrypoint",
        "/ticker.wasm",
        image,
        "0",
        "20",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = text(&d.docker(&["logs", "ticker"]));
        if s.contains("tick 3") && s.contains("tock") {
            break;
        }
        assert!(Instant::now() < deadline, "no ticks in the log: {s}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = d.docker(&["stop", "--time", "10", "ticker"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = d.docker(&["wait", "ticker"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "143",
        "{}",
        text(&out)
    );
    assert!(d.docker(&["rm", "ticker"]).status.success());

    // A Linux image is refused, with the reason.
    d.import("skiff/linux:1", &[("sh", Path::new("/bin/sh"))], "/sh");
    let out = d.run(&["--rm", "skiff/linux:1"]);
    let s = text(&out);
    assert!(!out.status.success(), "{s}");
    assert!(s.contains("not a WebAssembly container"), "{s}");
}

/// `skiff save --format docker` writes what Debian's `docker load` (20.10, which loads no OCI
/// layout) takes, with the host's platform (it refuses to run `wasi` images), and the image runs
/// under `--runtime skiff`.
#[test]
fn docker_loads_what_skiff_saves() {
    // The workspace's `skiff`, built beside this crate's binary by `cargo test --workspace`.
    let skiff = Path::new(env!("CARGO_BIN_EXE_skiff-oci")).with_file_name("skiff");
    assert!(
        skiff.exists(),
        "{} missing: build the workspace (cargo test --workspace)",
        skiff.display()
    );
    let d = Dockerd::start();
    let home = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    std::fs::copy(guest("hello.wasm"), project.path().join("app.wasm")).unwrap();
    std::fs::write(
        project.path().join("skiff.toml"),
        "name = \"saved\"\nwasm = \"app.wasm\"\nversion = \"1.0\"\n",
    )
    .unwrap();
    let skiff_cmd = |args: &[&str]| {
        let out = Command::new(&skiff)
            .env("SKIFF_HOME", home.path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "skiff {args:?}: {}", text(&out));
    };
    skiff_cmd(&["build", project.path().to_str().unwrap()]);
    let tar = home.path().join("saved.tar");
    skiff_cmd(&[
        "save",
        "--format",
        "docker",
        "-o",
        tar.to_str().unwrap(),
        "saved:1.0",
    ]);
    let out = d.docker(&["load", "-i", tar.to_str().unwrap()]);
    assert!(out.status.success(), "docker load: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("saved:1.0"),
        "{}",
        text(&out)
    );
    let out = d.run(&["--rm", "saved:1.0"]);
    let s = text(&out);
    assert!(out.status.success(), "{s}\ndockerd:\n{}", d.log());
    assert!(s.contains("hello from skiff"), "{s}");
}
