//! skiff-oci under Debian's dockerd (20.10, package docker.io) as `docker run --runtime skiff`:
//! one private dockerd per test (its own data-root, exec-root, socket and containerd namespace,
//! the vfs driver) and one `runtimes` entry, as docs/docker.md tells an operator. Each dockerd
//! lives in a network namespace of its own (`unshare --net`), where its default bridge, iptables
//! rules and port mappings work as on any host without touching this machine's: containers get
//! Docker's bridge network (wired by its `libnetwork-setkey` prestart hook, which skiff-oci
//! runs), and `-p` maps ports on that namespace's loopback, which the tests reach from inside it.

mod common;

use common::{guest, start_echo_awaiting_body, text};
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
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
            "storage-driver": "vfs",
            "runtimes": {"skiff": {"path": env!("CARGO_BIN_EXE_skiff-oci")}},
        });
        std::fs::write(d.join("daemon.json"), config.to_string()).unwrap();
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        // A network namespace of dockerd's own, loopback up (docker-proxy binds 127.0.0.1 in
        // it); dockerd makes its bridge there. Its pid is dockerd's (unshare and sh exec).
        let child = Command::new("unshare")
            .args([
                "--net",
                "sh",
                "-c",
                "ip link set lo up && exec \"$0\" \"$@\"",
            ])
            .arg("/usr/sbin/dockerd")
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

    /// `docker run --runtime skiff ARGS...`, on Docker's default bridge network.
    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["run", "--runtime", "skiff"];
        all.extend_from_slice(args);
        self.docker(&all)
    }

    /// The path of dockerd's network namespace, where its port mappings listen.
    fn netns(&self) -> String {
        format!("/proc/{}/ns/net", self.child.id())
    }

    /// curl URL from inside dockerd's network namespace, until it answers.
    fn curl(&self, url: &str) -> Output {
        common::curl_until_answered(
            || {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", self.netns())).arg("curl");
                c
            },
            url,
        )
    }

    /// `docker wait NAME`: the container's exit status.
    fn exit_status(&self, name: &str) -> String {
        let out = self.docker(&["wait", name]);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A TCP connection to `127.0.0.1:port` in dockerd's network namespace (made on a thread
    /// that joins it; the socket stays there).
    fn connect(&self, port: u16) -> TcpStream {
        let netns = std::fs::File::open(self.netns()).unwrap();
        std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            // SAFETY: setns(2) of this thread only, to a namespace descriptor we hold open.
            let r = unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
            TcpStream::connect(("127.0.0.1", port)).unwrap()
        })
        .join()
        .unwrap()
    }

    /// Poll `docker logs NAME` until it holds `needle`.
    fn wait_log(&self, name: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = text(&self.docker(&["logs", name]));
            if s.contains(needle) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the log of {name}: {s}\ndockerd:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `docker port NAME 8080/tcp`: the host port Docker published it on.
    fn published_port(&self, name: &str) -> u16 {
        let out = self.docker(&["port", name, "8080/tcp"]);
        let s = String::from_utf8_lossy(&out.stdout).to_string();
        s.lines()
            .find_map(|l| l.rsplit_once(':').and_then(|(_, p)| p.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no published port for {name}: {}", text(&out)))
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
            ("web.wasm", &guest("http-hello.wasm")),
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
    assert_eq!(d.exit_status("ticker"), "143");
    assert!(d.docker(&["rm", "ticker"]).status.success());

    // A wasi:http component, given no annotation (Docker 20.10 sets none), is served on 8080 in
    // the container's network namespace, which Docker's bridge hook wired: -p maps to it.
    let out = d.run(&[
        "-d",
        "--name",
        "web",
        "-p",
        "127.0.0.1:18080:8080",
        "--entrypoint",
        "/web.wasm",
        image,
    ]);
    assert!(
        out.status.success(),
        "{}\ndockerd:\n{}",
        text(&out),
        d.log()
    );
    d.wait_log("web", "listening on http://0.0.0.0:8080");
    let out = d.curl("http://127.0.0.1:18080/");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from skiff\n",
        "{}",
        text(&out)
    );
    // docker stop drains: a request in flight (the guest is reading its body) is answered,
    // then the container exits 0.
    let mut inflight = d.connect(18080);
    start_echo_awaiting_body(&mut inflight);
    let mut stop = Command::new("/usr/bin/docker")
        .arg("-H")
        .arg(format!(
            "unix://{}",
            d.dir.path().join("docker.sock").display()
        ))
        .args(["stop", "--time", "20", "web"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    d.wait_log("web", "shutting down: no new connections");
    inflight.write_all(b"hello").unwrap();
    let mut response = String::new();
    inflight.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200") && response.ends_with("\r\n\r\nhello"),
        "{response}"
    );
    assert!(stop.wait().unwrap().success());
    assert_eq!(d.exit_status("web"), "0");
    assert!(d.docker(&["rm", "web"]).status.success());

    // --network host: no namespace in the spec, so the component serves on the host's 8080
    // (here dockerd's own namespace, the test's stand-in for the host).
    let out = d.run(&[
        "-d",
        "--name",
        "hostweb",
        "--network",
        "host",
        "--entrypoint",
        "/web.wasm",
        image,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = d.curl("http://127.0.0.1:8080/");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from skiff\n",
        "{}",
        text(&out)
    );
    assert!(d.docker(&["rm", "-f", "hostweb"]).status.success());

    // A Linux image is refused, with the reason.
    d.import("skiff/linux:1", &[("sh", Path::new("/bin/sh"))], "/sh");
    let out = d.run(&["--rm", "skiff/linux:1"]);
    let s = text(&out);
    assert!(!out.status.success(), "{s}");
    assert!(s.contains("not a WebAssembly container"), "{s}");
}

/// `skiff save --format docker` writes what Debian's `docker load` (20.10, which loads no OCI
/// layout) takes, with the host's platform (it refuses to run `wasi` images), and the images run
/// under `--runtime skiff` as `skiff run` and `skiff serve` run them: the image's default args
/// and env come along (`Cmd`, `Env`), and an HTTP component's port is exposed (`-P` publishes
/// it).
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
    let skiff_cmd = |args: &[&str]| {
        let out = Command::new(&skiff)
            .env("SKIFF_HOME", home.path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "skiff {args:?}: {}", text(&out));
        out
    };
    let mut projects = Vec::new();
    for (name, wasm, extra) in [
        (
            "saved",
            "hello.wasm",
            "args = [\"from-image\"]\n[env]\nNAME = \"image\"\n",
        ),
        ("saved-web", "http-hello.wasm", ""),
    ] {
        let project = tempfile::tempdir().unwrap();
        std::fs::copy(guest(wasm), project.path().join("app.wasm")).unwrap();
        std::fs::write(
            project.path().join("skiff.toml"),
            format!("name = \"{name}\"\nwasm = \"app.wasm\"\nversion = \"1.0\"\n{extra}"),
        )
        .unwrap();
        skiff_cmd(&["build", project.path().to_str().unwrap()]);
        projects.push(project);
    }
    let tar = home.path().join("saved.tar");
    let tar = tar.to_str().unwrap();
    skiff_cmd(&[
        "save",
        "--format",
        "docker",
        "-o",
        tar,
        "saved:1.0",
        "saved-web:1.0",
    ]);
    let out = d.docker(&["load", "-i", tar]);
    assert!(out.status.success(), "docker load: {}", text(&out));
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        s.contains("saved:1.0") && s.contains("saved-web:1.0"),
        "{}",
        text(&out)
    );

    // `docker run IMAGE` alone: the image's args and env, as `skiff run IMAGE` gives them.
    let native = String::from_utf8_lossy(&skiff_cmd(&["run", "saved:1.0"]).stdout).to_string();
    let out = d.run(&["--rm", "saved:1.0"]);
    let s = text(&out);
    assert!(out.status.success(), "{s}\ndockerd:\n{}", d.log());
    for line in ["hello from skiff", "arg[1]=from-image", "NAME=image"] {
        assert!(native.contains(line), "skiff run: {native}");
        assert!(s.contains(line), "docker run: {s}");
    }
    // Docker's rules are skiff's: args given replace the image's, -e overrides one variable.
    let out = d.run(&["--rm", "-e", "NAME=flag", "saved:1.0", "given"]);
    let s = text(&out);
    assert!(
        s.contains("arg[1]=given") && !s.contains("from-image") && s.contains("NAME=flag"),
        "{s}"
    );

    // An HTTP component: -P publishes the port its image exposes, where skiff-oci serves it.
    let out = d.run(&["-d", "-P", "--name", "savedweb", "saved-web:1.0"]);
    assert!(
        out.status.success(),
        "{}\ndockerd:\n{}",
        text(&out),
        d.log()
    );
    let port = d.published_port("savedweb");
    let out = d.curl(&format!("http://127.0.0.1:{port}/"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from skiff\n",
        "{}",
        text(&out)
    );
    let out = d.docker(&["stop", "savedweb"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(d.exit_status("savedweb"), "0");
}
