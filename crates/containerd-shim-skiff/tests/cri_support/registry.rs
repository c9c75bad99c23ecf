//! A `docker-registry` for the CRI tests, where containerd pulls from: inside the node's
//! network namespace.

use super::Cri;
use std::path::Path;

/// A `docker-registry` with basic auth, inside the node's network namespace (where containerd
/// pulls from), listening on 127.0.0.1:5000; stopped in Drop.
pub struct Registry(std::process::Child);

impl Registry {
    pub const HOST: &'static str = "127.0.0.1:5000";

    pub fn start(cri: &Cri, user: &str, password: &str) -> Registry {
        let d = cri.dir.path().join("registry");
        std::fs::create_dir_all(&d).unwrap();
        let out = std::process::Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .expect("htpasswd (apt-get install -y apache2-utils)");
        std::fs::write(d.join("htpasswd"), &out.stdout).unwrap();
        std::fs::write(
            d.join("config.yml"),
            format!(
                "version: 0.1\nlog: {{level: warn}}\n\
                 storage: {{filesystem: {{rootdirectory: {root}}}}}\n\
                 http: {{addr: {host}, secret: test}}\n\
                 auth: {{htpasswd: {{realm: test, path: {htpasswd}}}}}\n",
                root = d.join("data").display(),
                host = Self::HOST,
                htpasswd = d.join("htpasswd").display(),
            ),
        )
        .unwrap();
        let child = std::process::Command::new("nsenter")
            .arg(format!("--net=/proc/{}/ns/net", cri.pid()))
            .args(["docker-registry", "serve"])
            .arg(d.join("config.yml"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(d.join("registry.log")).unwrap())
            .spawn()
            .expect("docker-registry (apt-get install -y docker-registry)");
        let registry = Registry(child);
        // Ready when /v2/ answers at all (401 without credentials).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let out = cri.in_netns(&[
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &format!("http://{}/v2/", Self::HOST),
            ]);
            if String::from_utf8_lossy(&out.stdout) == "401" {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the registry never came up"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // containerd reads hosts.toml at each pull: this registry speaks plain HTTP.
        let hosts = cri.dir.path().join("certs.d").join(Self::HOST);
        std::fs::create_dir_all(&hosts).unwrap();
        std::fs::write(
            hosts.join("hosts.toml"),
            format!(
                "server = \"http://{0}\"\n[host.\"http://{0}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
                Self::HOST
            ),
        )
        .unwrap();
        registry
    }

    /// Push an OCI layout tar with skopeo (from the node's network namespace).
    pub fn push(&self, cri: &Cri, tar: &Path, name: &str, creds: &str) {
        let out = cri.in_netns(&[
            "skopeo",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--dest-creds",
            creds,
            &format!("oci-archive:{}", tar.display()),
            &format!("docker://{name}"),
        ]);
        assert!(
            out.status.success(),
            "push {name}: {}",
            super::super::common::text(&out)
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
