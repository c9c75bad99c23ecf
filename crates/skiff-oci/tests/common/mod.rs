//! What the podman and docker tests share: the guests, an image rootfs as a tar, and output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn guest(name: &str) -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("../../guests/wasm")
        .join(name)
}

pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A tar of a rootfs holding `files` (name in the image, host file), made under `dir`: what
/// `podman import` and `docker import` take.
pub fn rootfs_tar(dir: &Path, image: &str, files: &[(&str, &Path)]) -> PathBuf {
    let rootfs = dir.join("rootfs").join(image.replace(['/', ':'], "_"));
    std::fs::create_dir_all(&rootfs).unwrap();
    for (name, src) in files {
        std::fs::copy(src, rootfs.join(name)).unwrap();
    }
    let tar = rootfs.with_extension("tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success(), "tar of {}", rootfs.display());
    tar
}

/// The root these tests need (they start podman and dockerd).
pub fn assert_root(tool: &str) {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "these tests run {tool} as root"
    );
}

/// `ENTRYPOINT ["PATH"]` for `import --change`.
pub fn entrypoint(path: &str) -> String {
    format!("ENTRYPOINT [\"{path}\"]")
}

/// Make `s` a request in flight to http-hello: the head of a POST to /echo with a 5-byte body
/// that is not sent; returns once the guest has started reading the body (hyper answers
/// `100 Continue` when the body is first read). Send `hello` to finish it.
#[allow(dead_code)] // docker.rs
pub fn start_echo_awaiting_body(s: &mut std::net::TcpStream) {
    use std::io::{Read as _, Write as _};
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    s.write_all(
        b"POST /echo HTTP/1.1\r\nHost: web\r\nContent-Length: 5\r\n\
          Expect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let mut head = [0u8; 25];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 100 Continue\r\n\r\n");
}

/// `curl -f URL` run by `curl` (a Command for curl, perhaps inside a namespace), retried until it
/// answers or 60 s pass: the guest compiles before it listens, and a port mapping accepts before
/// that.
#[allow(dead_code)] // docker.rs, podman.rs
pub fn curl_until_answered(curl: impl Fn() -> Command, url: &str) -> Output {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let out = curl()
            .args(["-sS", "-f", "--max-time", "30", url])
            .output()
            .expect("run curl");
        if out.status.success() || std::time::Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
