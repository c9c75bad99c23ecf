//! A real OCI registry (Debian's `docker-registry`, CNCF distribution) on a random loopback port
//! with temp storage, optionally behind htpasswd auth; and curl, as "another client".
//!
//! Shared by the skiff-registry tests and the skiff CLI's (which include this file by path), so
//! it needs nothing but std, tempfile and sha2.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct TestRegistry {
    child: Child,
    pub addr: String,
    pub dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TestRegistry {
    pub fn start() -> TestRegistry {
        Self::start_with(None)
    }

    /// With htpasswd (bcrypt) auth for `user`/`pass`.
    pub fn with_auth(user: &str, pass: &str) -> TestRegistry {
        Self::start_with(Some((user, pass)))
    }

    /// With this `auth:` section (one line of YAML), e.g. a token server's (token.rs).
    pub fn with_auth_yaml(auth_yaml: &str) -> TestRegistry {
        Self::start_inner(None, auth_yaml.to_string())
    }

    fn start_with(auth: Option<(&str, &str)>) -> TestRegistry {
        Self::start_inner(auth, String::new())
    }

    fn start_inner(auth: Option<(&str, &str)>, mut auth_yaml: String) -> TestRegistry {
        let mut dir = tempfile::tempdir().unwrap();
        if let Some((u, p)) = auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", u, p])
                .output()
                .expect("htpasswd (apache2-utils)");
            assert!(out.status.success());
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &out.stdout).unwrap();
            auth_yaml = format!(
                "auth: {{htpasswd: {{realm: basic-realm, path: {}}}}}\n",
                file.display()
            );
        }
        // A port can be taken between probe and bind; try a few.
        for _ in 0..5 {
            let port = free_port();
            let addr = format!("127.0.0.1:{port}");
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {}}}, delete: {{enabled: true}}}}\nhttp: {{addr: {addr}, secret: test}}\n{auth_yaml}",
                    dir.path().join("data").display()
                ),
            )
            .unwrap();
            // Its log goes to a file: a pipe nobody reads fills up (64 KiB of "blob unknown"
            // lines from a test that polls) and then the registry hangs on its next log line.
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("docker-registry (apt: docker-registry)");
            let mut reg = TestRegistry { child, addr, dir };
            if reg.wait_ready() {
                return reg;
            }
            let _ = reg.child.kill();
            let _ = reg.child.wait();
            dir = reg.into_dir();
        }
        panic!("docker-registry did not start");
    }

    fn into_dir(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let d = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, d)
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            let out = Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
                .arg(format!("http://{}/v2/", self.addr))
                .output()
                .unwrap();
            let code = String::from_utf8_lossy(&out.stdout).to_string();
            if code == "200" || code == "401" {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Total bytes of blob data the registry holds (for "re-pull moves nothing" style checks).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// curl, as another client: upload a blob (POST then PUT ?digest=) and a manifest.
pub struct Curl<'a> {
    pub addr: &'a str,
    pub user: Option<(&'a str, &'a str)>,
}

pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{:x}", sha2::Sha256::digest(bytes))
}

impl Curl<'_> {
    fn base(&self) -> Command {
        let mut c = Command::new("curl");
        c.args(["-sS", "--fail-with-body"]);
        if let Some((u, p)) = self.user {
            c.args(["-u", &format!("{u}:{p}")]);
        }
        c
    }

    pub fn put_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let out = self
            .base()
            .args(["-X", "POST", "-D", "-", "-o", "/dev/null"])
            .arg(format!("http://{}/v2/{repo}/blobs/uploads/", self.addr))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let headers = String::from_utf8_lossy(&out.stdout).to_string();
        let loc = headers
            .lines()
            .find_map(|l| {
                l.strip_prefix("Location: ")
                    .or_else(|| l.strip_prefix("location: "))
            })
            .unwrap()
            .trim()
            .to_string();
        let url = if loc.starts_with("http") {
            loc
        } else {
            format!("http://{}{loc}", self.addr)
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), bytes).unwrap();
        let out = self
            .base()
            .args([
                "-X",
                "PUT",
                "-H",
                "Content-Type: application/octet-stream",
                "--data-binary",
            ])
            .arg(format!("@{}", file.path().display()))
            .arg(format!("{url}{sep}digest={digest}"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        digest
    }

    pub fn put_manifest(&self, repo: &str, tag: &str, media_type: &str, bytes: &[u8]) -> String {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), bytes).unwrap();
        let out = self
            .base()
            .args([
                "-X",
                "PUT",
                "-H",
                &format!("Content-Type: {media_type}"),
                "--data-binary",
            ])
            .arg(format!("@{}", file.path().display()))
            .arg(format!("http://{}/v2/{repo}/manifests/{tag}", self.addr))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        sha256(bytes)
    }

    pub fn get(&self, path: &str, accept: &str) -> Vec<u8> {
        let out = self
            .base()
            .args(["-H", &format!("Accept: {accept}")])
            .arg(format!("http://{}{path}", self.addr))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        out.stdout
    }
}
