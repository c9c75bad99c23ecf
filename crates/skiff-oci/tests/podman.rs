//! skiff-oci under a real podman (`podman run --runtime skiff-oci`), driven as a user would:
//! each test has a private podman (its own storage, run dir and containers.conf under a temp
//! dir, the vfs driver) and an image made with `podman import` from a rootfs holding the .wasm.

mod common;

use common::{guest, text};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Podman {
    dir: tempfile::TempDir,
    /// A process holding network and mount namespaces of this test's own, which every podman
    /// command joins (see `with_own_network`).
    holder: Option<std::process::Child>,
}

impl Podman {
    fn new() -> Podman {
        assert!(
            Command::new("podman")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success()),
            "podman is not installed: apt-get install -y podman (scripts/test does)"
        );
        common::assert_root("podman");
        let dir = tempfile::Builder::new()
            .prefix("skiff-podman")
            .tempdir()
            .unwrap();
        // This machine has no systemd and hybrid cgroups: cgroupfs, file events; the ulimits
        // stay under root's own (podman's defaults ask for more than the machine allows).
        std::fs::write(
            dir.path().join("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
        )
        .unwrap();
        Podman { dir, holder: None }
    }

    /// A podman whose commands run in a network namespace of their own (loopback up) and a
    /// mount namespace with its own /run/netns: podman's default network (netavark's bridge,
    /// firewall rules and port mappings) is made there, never on this machine's network.
    fn with_own_network() -> Podman {
        let mut p = Podman::new();
        let holder = Command::new("unshare")
            .args(["--net", "--mount", "sh", "-c"])
            .arg("ip link set lo up && mount -t tmpfs tmpfs /run/netns && exec sleep 100000")
            .stdin(Stdio::null())
            .spawn()
            .expect("run unshare (util-linux)");
        let comm = format!("/proc/{}/comm", holder.id());
        p.holder = Some(holder);
        // Ready once the shell has set up and exec'd sleep.
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::fs::read_to_string(&comm).unwrap_or_default().trim() != "sleep" {
            assert!(
                Instant::now() < deadline,
                "the namespace holder never got ready"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        p
    }

    /// `program` in this podman's namespaces, if it has its own.
    fn command(&self, program: &str) -> Command {
        match &self.holder {
            None => Command::new(program),
            Some(h) => {
                let mut c = Command::new("nsenter");
                c.args(["-t", &h.id().to_string(), "--net", "--mount", program]);
                c
            }
        }
    }

    /// `podman ARGS...` with this test's storage and config.
    fn podman(&self, args: &[&str]) -> Output {
        let d = self.dir.path();
        self.command("podman")
            .arg("--root")
            .arg(d.join("storage"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args(["--storage-driver", "vfs", "--events-backend", "file"])
            .args(args)
            .env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("SKIFF_HOME", d.join("skiff-home"))
            .stdin(Stdio::null())
            .output()
            .expect("run podman")
    }

    /// `podman import` a rootfs holding `files` whose entrypoint is `entrypoint`.
    fn import(&self, image: &str, files: &[(&str, &Path)], entrypoint: &str) {
        let tar = common::rootfs_tar(self.dir.path(), image, files);
        let change = common::entrypoint(entrypoint);
        let out = self.podman(&["import", "--change", &change, tar.to_str().unwrap(), image]);
        assert!(out.status.success(), "import: {}", text(&out));
    }

    /// `podman run --runtime skiff-oci ARGS...`
    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["run", "--runtime", env!("CARGO_BIN_EXE_skiff-oci")];
        all.extend_from_slice(args);
        self.podman(&all)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Leave no container running, and no storage mounted, behind a failed test.
        self.podman(&["rm", "--force", "--all", "--time", "0"]);
        self.podman(&["system", "reset", "--force"]);
        if let Some(mut h) = self.holder.take() {
            let _ = h.kill();
            let _ = h.wait();
        }
    }
}

#[test]
fn podman_runs_p1_and_p2_guests_with_their_output_args_and_env() {
    let p = Podman::new();
    p.import(
        "localhost/hello:1",
        &[("app.wasm", &guest("hello.wasm"))],
        "/app.wasm",
    );
    let out = p.run(&[
        "--rm",
        "--network",
        "none",
        "-e",
        "NAME=podman",
        "localhost/hello:1",
        "world",
    ]);
    let s = text(&out);
    assert!(out.status.success(), "{s}");
    assert!(s.contains("hello from skiff"), "{s}");
    assert!(
        s.contains("arg[0]=/app.wasm") && s.contains("arg[1]=world"),
        "{s}"
    );
    assert!(s.contains("NAME=podman"), "{s}");
    // Deny by default: the image's own files are not the guest's.
    assert!(s.contains("read: error"), "{s}");

    p.import(
        "localhost/hello-p2:1",
        &[("app.wasm", &guest("hello-p2.wasm"))],
        "/app.wasm",
    );
    let out = p.run(&["--rm", "--network", "none", "localhost/hello-p2:1"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("hello"),
        "{}",
        text(&out)
    );
}

#[test]
fn podman_passes_exit_codes_through_with_skiffs_own_for_memory_and_traps() {
    let p = Podman::new();
    p.import(
        "localhost/guests:1",
        &[
            ("exit.wasm", &guest("exit-code.wasm")),
            ("hog.wasm", &guest("memory-hog.wasm")),
            ("trap.wasm", &guest("trap.wasm")),
        ],
        "/exit.wasm",
    );
    let image = "localhost/guests:1";
    let out = p.run(&["--rm", "--network", "none", image, "7"]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    let out = p.run(&["--rm", "--network", "none", image, "0"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // -m is the guest's linear memory budget.
    let out = p.run(&[
        "--rm",
        "--network",
        "none",
        "-m",
        "64m",
        "--entrypoint",
        "/hog.wasm",
        image,
    ]);
    let s = text(&out);
    assert_eq!(out.status.code(), Some(137), "{s}");
    assert!(s.contains("memory limit") && s.contains("64 MiB"), "{s}");
    let out = p.run(&[
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/trap.wasm",
        image,
    ]);
    let s = text(&out);
    assert_eq!(out.status.code(), Some(134), "{s}");
    assert!(s.contains("inner"), "{s}");
}

#[test]
fn podman_volumes_are_preopens_read_only_when_ro() {
    let p = Podman::new();
    p.import(
        "localhost/hello:1",
        &[("app.wasm", &guest("hello.wasm"))],
        "/app.wasm",
    );
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("in.txt"), "from the host\n").unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let data_v = format!("{}:/data:ro", data.path().display());
    let ro_out = format!("{}:/out:ro", out_dir.path().display());
    let out = p.run(&[
        "--rm",
        "--network",
        "none",
        "-v",
        &data_v,
        "-v",
        &ro_out,
        "localhost/hello:1",
    ]);
    let s = text(&out);
    assert!(s.contains("read: from the host"), "{s}");
    assert!(s.contains("write: error"), "{s}");
    assert!(!out_dir.path().join("out.txt").exists());

    let rw_out = format!("{}:/out", out_dir.path().display());
    let out = p.run(&[
        "--rm",
        "--network",
        "none",
        "-v",
        &rw_out,
        "localhost/hello:1",
    ]);
    assert!(text(&out).contains("write: ok"), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(out_dir.path().join("out.txt")).unwrap(),
        "written by hello\n"
    );
}

#[test]
fn podman_refuses_a_linux_container_with_the_reason() {
    let p = Podman::new();
    p.import("localhost/linux:1", &[("sh", Path::new("/bin/sh"))], "/sh");
    let out = p.run(&["--rm", "--network", "none", "localhost/linux:1"]);
    let s = text(&out);
    assert!(!out.status.success(), "{s}");
    assert!(s.contains("not a WebAssembly container"), "{s}");
    assert!(s.contains("run Linux containers with runc"), "{s}");
}

#[test]
fn podman_detached_logs_stop_and_wait() {
    let p = Podman::new();
    p.import(
        "localhost/ticker:1",
        &[("ticker.wasm", &guest("ticker.wasm"))],
        "/ticker.wasm",
    );
    // Forever, a tick every 20 ms.
    let out = p.run(&[
        "-d",
        "--name",
        "ticker",
        "--network",
        "none",
        "localhost/ticker:1",
        "0",
        "20",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let logs = p.podman(&["logs", "ticker"]);
        let s = text(&logs);
        // `tock` is on stderr, every tenth tick: both streams reach the log.
        if s.contains("tick 3") && s.contains("tock") {
            break;
        }
        assert!(Instant::now() < deadline, "no ticks in the log: {s}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let inspect = p.podman(&["inspect", "--format", "{{.State.Status}}", "ticker"]);
    assert_eq!(
        String::from_utf8_lossy(&inspect.stdout).trim(),
        "running",
        "{}",
        text(&inspect)
    );
    // SIGTERM ends the guest (a Wasm guest has no handler): 128 + 15.
    let out = p.podman(&["stop", "--time", "10", "ticker"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = p.podman(&["wait", "ticker"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "143",
        "{}",
        text(&out)
    );
    let out = p.podman(&["rm", "ticker"]);
    assert!(out.status.success(), "{}", text(&out));
}

/// A wasi:http component is served where the annotation says (podman has `--annotation`),
/// on the host's network here; `podman stop` drains it and it exits 0.
#[test]
fn podman_serves_a_wasi_http_component_on_the_annotated_address() {
    use std::io::{Read, Write};
    let p = Podman::new();
    p.import(
        "localhost/http:1",
        &[("app.wasm", &guest("http-hello.wasm"))],
        "/app.wasm",
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("dev.skiff.http.listen=127.0.0.1:{port}");
    let out = p.run(&[
        "-d",
        "--name",
        "web",
        "--network",
        "host",
        "--annotation",
        &listen,
        "localhost/http:1",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = loop {
        let got = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
            s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        });
        match got {
            Ok(body) => break body,
            Err(e) => {
                let logs = text(&p.podman(&["logs", "web"]));
                assert!(Instant::now() < deadline, "never answered ({e}): {logs}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("hello"),
        "{answer}"
    );
    let out = p.podman(&["stop", "--time", "10", "web"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = p.podman(&["wait", "web"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "{}",
        text(&out)
    );
}

/// With no annotation a wasi:http component is served on 8080 in the container's network, and
/// podman's own port mapping (`-p`, on its default network: netavark's bridge, in a network
/// namespace of this test's) reaches it; `podman stop` drains it and it exits 0.
#[test]
fn podman_maps_a_port_to_a_wasi_http_component_on_its_default_8080() {
    let p = Podman::with_own_network();
    p.import(
        "localhost/http:1",
        &[("app.wasm", &guest("http-hello.wasm"))],
        "/app.wasm",
    );
    let out = p.run(&[
        "-d",
        "--name",
        "web",
        "-p",
        "127.0.0.1:18080:8080",
        "localhost/http:1",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = common::curl_until_answered(|| p.command("curl"), "http://127.0.0.1:18080/");
    let logs = text(&p.podman(&["logs", "web"]));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from skiff\n",
        "{}\n{logs}",
        text(&out)
    );
    assert!(logs.contains("listening on http://0.0.0.0:8080"), "{logs}");
    let out = p.podman(&["stop", "--time", "10", "web"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = p.podman(&["wait", "web"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "{}",
        text(&out)
    );
}
