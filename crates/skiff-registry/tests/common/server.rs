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
    /// Set for a registry that speaks TLS: how curl reaches it (its CA, a client certificate).
    tls: Option<TestTls>,
}

/// A CA, a certificate it signed for 127.0.0.1 and localhost, and a client certificate it
/// signed, made with the `openssl` CLI in a temp dir.
#[derive(Clone)]
pub struct TestTls {
    /// Holds the CA and the certificates; removed when the last clone goes.
    dir: std::sync::Arc<tempfile::TempDir>,
    /// Registries started with this ask every client for a certificate signed by the CA.
    pub require_client_cert: bool,
}

impl TestTls {
    pub fn make(require_client_cert: bool) -> TestTls {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let sh = |script: &str| {
            let out = Command::new("sh")
                .arg("-c")
                .arg(script)
                .current_dir(dir)
                .output()
                .expect("sh");
            assert!(
                out.status.success(),
                "openssl: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        sh(&format!(
            "openssl req -x509 {key} -keyout ca.key -out ca.crt -days 2 -subj '/CN=skiff test CA' 2>&1"
        ));
        for (name, cn, ext) in [
            (
                "server",
                "127.0.0.1",
                "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth",
            ),
            ("client", "skiff test client", "extendedKeyUsage=clientAuth"),
        ] {
            sh(&format!(
                "openssl req {key} -keyout {name}.key -out {name}.csr -subj '/CN={cn}' 2>&1 && \
                 printf 'basicConstraints=CA:FALSE\n{ext}\n' > {name}.ext && \
                 openssl x509 -req -in {name}.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
                   -out {name}.crt -days 2 -extfile {name}.ext 2>&1"
            ));
        }
        TestTls {
            dir: std::sync::Arc::new(tmp),
            require_client_cert,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A `certs.d` directory (Docker's layout) for `registry`: `ca.crt`, and the client
    /// certificate as `client.cert` + `client.key` when `with_client_cert`.
    pub fn certs_d(&self, root: &std::path::Path, registry: &str, with_client_cert: bool) {
        let d = root.join(registry);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(self.path("ca.crt"), d.join("ca.crt")).unwrap();
        if with_client_cert {
            std::fs::copy(self.path("client.crt"), d.join("client.cert")).unwrap();
            std::fs::copy(self.path("client.key"), d.join("client.key")).unwrap();
        }
    }

    fn http_yaml(&self) -> String {
        let clientcas = if self.require_client_cert {
            format!(", clientcas: [{}]", self.path("ca.crt").display())
        } else {
            String::new()
        };
        format!(
            ", tls: {{certificate: {}, key: {}{clientcas}}}",
            self.path("server.crt").display(),
            self.path("server.key").display()
        )
    }

    fn curl_args(&self) -> Vec<String> {
        let p = |n: &str| self.path(n).display().to_string();
        let mut a = vec!["--cacert".to_string(), p("ca.crt")];
        if self.require_client_cert {
            a.extend([
                "--cert".into(),
                p("client.crt"),
                "--key".into(),
                p("client.key"),
            ]);
        }
        a
    }
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
        Self::start_inner(None, auth_yaml.to_string(), None)
    }

    /// Speaking HTTPS only, with `tls`'s server certificate.
    pub fn with_tls(tls: &TestTls) -> TestRegistry {
        Self::start_inner(None, String::new(), Some(tls.clone()))
    }

    fn start_with(auth: Option<(&str, &str)>) -> TestRegistry {
        Self::start_inner(auth, String::new(), None)
    }

    fn start_inner(
        auth: Option<(&str, &str)>,
        mut auth_yaml: String,
        tls: Option<TestTls>,
    ) -> TestRegistry {
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
                    "version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {}}}, delete: {{enabled: true}}}}\nhttp: {{addr: {addr}, secret: test{}}}\n{auth_yaml}",
                    dir.path().join("data").display(),
                    tls.as_ref().map(TestTls::http_yaml).unwrap_or_default(),
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
            let mut reg = TestRegistry {
                child,
                addr,
                dir,
                tls: tls.clone(),
            };
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
            let (scheme, tls_args) = match &self.tls {
                Some(t) => ("https", t.curl_args()),
                None => ("http", Vec::new()),
            };
            let out = Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
                .args(tls_args)
                .arg(format!("{scheme}://{}/v2/", self.addr))
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

/// skopeo (containers/image), as another client: run it with `args`, return its stdout.
pub fn skopeo<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Vec<u8> {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo is needed (apt-get install skopeo; scripts/test installs it)");
    assert!(
        out.status.success(),
        "skopeo {:?}: {}",
        args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The manifest a plain-HTTP registry serves for `reference`, as skopeo reads it.
pub fn skopeo_raw(reference: &str) -> Vec<u8> {
    skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ])
}

/// Copy `reference` out of a plain-HTTP registry into the OCI layout `dir`, as skopeo does.
pub fn skopeo_copy_to_layout(reference: &str, dir: &std::path::Path) {
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{reference}"),
        &format!("oci:{}:copy", dir.display()),
    ]);
}

/// curl, as another client: upload a blob (POST then PUT ?digest=) and a manifest.
pub struct Curl<'a> {
    pub addr: &'a str,
    pub user: Option<(&'a str, &'a str)>,
}

pub fn sha256(bytes: &[u8]) -> skiff_store::Digest {
    skiff_store::Digest::of(bytes)
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

    pub fn put_blob(&self, repo: &str, bytes: &[u8]) -> skiff_store::Digest {
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
        self.put(
            &format!("{url}{sep}digest={digest}"),
            "application/octet-stream",
            bytes,
        );
        digest
    }

    pub fn put_manifest(
        &self,
        repo: &str,
        tag: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> skiff_store::Digest {
        self.put(
            &format!("http://{}/v2/{repo}/manifests/{tag}", self.addr),
            media_type,
            bytes,
        );
        sha256(bytes)
    }

    /// PUT `bytes` (through a file: a blob may be larger than an argument) to `url`.
    fn put(&self, url: &str, content_type: &str, bytes: &[u8]) {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), bytes).unwrap();
        let out = self
            .base()
            .args(["-X", "PUT", "-H", &format!("Content-Type: {content_type}")])
            .arg("--data-binary")
            .arg(format!("@{}", file.path().display()))
            .arg(url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "PUT {url}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
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
