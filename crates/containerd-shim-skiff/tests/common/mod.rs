//! A private containerd for each test: its own root, state and sockets under a temp dir, the CRI
//! plugin off, the freshly built shim first on its PATH. Stopped (and its shims with it) in Drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const NS: &str = "skiff-test";
pub const RUNTIME: &str = "io.containerd.skiff.v1";

pub fn guest(name: &str) -> Vec<u8> {
    let path = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("../../guests/wasm")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub struct Containerd {
    pub dir: tempfile::TempDir,
    child: Child,
    pub sock: PathBuf,
}

impl Containerd {
    pub fn start() -> Containerd {
        Containerd::start_with_env(&[])
    }

    /// A containerd (and so its shims) with these variables in its environment.
    pub fn start_with_env(env: &[(&str, &std::ffi::OsStr)]) -> Containerd {
        assert!(
            which("containerd") && which("ctr"),
            "containerd is not installed: apt-get install -y containerd runc (scripts/test does)"
        );
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "these tests start containerd and need root"
        );
        let dir = tempfile::Builder::new()
            .prefix("skiff-ctrd")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let sock = d.join("c.sock");
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = "{debug}"
"#,
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = sock.display(),
            debug = d.join("debug.sock").display(),
        );
        std::fs::write(d.join("config.toml"), config).unwrap();
        let path = path_with_the_shim();
        let log = std::fs::File::create(d.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .env("PATH", path)
            .env("SKIFF_HOME", d.join("skiff-home"))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let c = Containerd { dir, child, sock };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !c.ctr(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "containerd did not come up; log:\n{}",
                c.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        c
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// `ctr -a SOCK -n NS ARGS...`
    pub fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("-a")
            .arg(&self.sock)
            .arg("-n")
            .arg(NS)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ctr")
    }

    /// Build a compat image of `wasm` (skiff-image's compat writer) and import it as `name`.
    pub fn import(&self, name: &str, wasm: Vec<u8>, args: &[&str]) {
        let image = skiff_image::compat::CompatImage::new(skiff_image::compat::CompatConfig {
            name: name.into(),
            wasm,
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })
        .unwrap();
        let tar = self
            .dir
            .path()
            .join(format!("{}.tar", image.manifest.digest));
        std::fs::write(&tar, image.layout_tar().unwrap()).unwrap();
        let out = self.ctr(&[
            "images",
            "import",
            "--platform",
            "wasi/wasm",
            tar.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "import failed: {}", text(&out));
    }

    /// `ctr run --rm --runtime io.containerd.skiff.v1 [extra...] IMAGE ID [args...]`
    pub fn run(&self, extra: &[&str], image: &str, id: &str, args: &[&str]) -> Output {
        self.ctr(&run_args("--rm", extra, image, id, args))
    }

    /// `ctr run -d [extra...] IMAGE ID` and wait until its task runs.
    pub fn run_detached(&self, extra: &[&str], image: &str, id: &str) {
        let out = self.ctr(&run_args("-d", extra, image, id, &[]));
        assert!(out.status.success(), "{}", text(&out));
        self.wait_for_status(id, "RUNNING");
    }

    /// Poll `ctr task ls` until the task is in `status` (RUNNING, STOPPED).
    pub fn wait_for_status(&self, id: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.ctr(&["task", "ls"]);
            let listing = String::from_utf8_lossy(&out.stdout).to_string();
            if listing
                .lines()
                .any(|l| l.split_whitespace().next() == Some(id) && l.contains(status))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "task {id} never reached {status}; ctr task ls:\n{listing}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Leave no task behind: kill and delete whatever a failed test left running.
        let out = self.ctr(&["task", "ls", "-q"]);
        for id in String::from_utf8_lossy(&out.stdout).lines() {
            self.ctr(&["task", "kill", "-s", "SIGKILL", id]);
            self.ctr(&["task", "delete", "-f", id]);
        }
        let out = self.ctr(&["containers", "ls", "-q"]);
        for id in String::from_utf8_lossy(&out.stdout).lines() {
            self.ctr(&["containers", "delete", id]);
        }
        stop_containerd(&mut self.child, self.dir.path());
    }
}

/// SIGTERM containerd (SIGKILL after 10 s), then unmount what it left under its root in `dir`.
pub fn stop_containerd(child: &mut Child, dir: &Path) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    // Snapshots may still be mounted under root if containerd died mid-run.
    let _ = Command::new("umount")
        .arg("-R")
        .arg(dir.join("root"))
        .stderr(Stdio::null())
        .status();
}

/// containerd's PATH: the freshly built shim first, so `io.containerd.skiff.v1` finds it.
pub fn path_with_the_shim() -> String {
    let shim = Path::new(env!("CARGO_BIN_EXE_containerd-shim-skiff-v1"));
    format!(
        "{}:{}",
        shim.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Make `s` a request in flight to http-hello: the head of a POST to /echo with a 5-byte body
/// that is not sent; returns once the guest has started reading the body (hyper answers
/// `100 Continue` when the body is first read). Send `hello` to finish it.
#[allow(dead_code)] // tests/http.rs and tests/cri.rs
pub fn start_echo_awaiting_body(s: &mut std::net::TcpStream) {
    use std::io::{Read as _, Write as _};
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(
        b"POST /echo HTTP/1.1\r\nHost: web\r\nContent-Length: 5\r\n\
          Expect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let mut head = [0u8; 25];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 100 Continue\r\n\r\n");
}

pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn which(bin: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false)
}

/// `run MODE --runtime io.containerd.skiff.v1 --platform wasi/wasm [extra...] IMAGE ID [args...]`
fn run_args<'a>(
    mode: &'a str,
    extra: &[&'a str],
    image: &'a str,
    id: &'a str,
    args: &[&'a str],
) -> Vec<&'a str> {
    let mut a = vec!["run", mode, "--runtime", RUNTIME, "--platform", "wasi/wasm"];
    a.extend_from_slice(extra);
    a.push(image);
    a.push(id);
    a.extend_from_slice(args);
    a
}
