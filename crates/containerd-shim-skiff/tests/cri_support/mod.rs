//! A kubelet without the API server: a private containerd with its CRI plugin on, the `skiff`
//! runtime handler (and `runc`), and CNI (bridge + host-local on a private range), all inside a
//! network namespace of the test's own, so the bridge and the pod IPs never reach the host's.
//! The test speaks CRI to it (`runtime.v1`) with the messages a kubelet sends.

pub use containerd_shim_skiff::grpc;
pub mod proto;
pub mod registry;

use proto::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// containerd's CRI plugin keeps its images and containers in this containerd namespace.
pub const K8S_NS: &str = "k8s.io";
/// The sandbox ("pause") image the CRI plugin insists on having; the shim never reads it.
pub const PAUSE: &str = "example.com/skiff/pause:1.0";

const RUNTIME: &str = "/runtime.v1.RuntimeService/";
const IMAGES: &str = "/runtime.v1.ImageService/";

pub struct Cri {
    pub dir: tempfile::TempDir,
    child: Child,
    pub sock: PathBuf,
    rt: tokio::runtime::Runtime,
    /// Sandboxes this test ran: stopped and removed in Drop if the test did not.
    pods: Mutex<Vec<String>>,
    subnet: String,
}

/// A pod as the test ran it: its id, the config it was run with (CreateContainer sends it
/// again, as a kubelet does), and its IP.
pub struct Pod {
    pub id: String,
    pub config: PodSandboxConfig,
    pub ip: String,
    pub log_dir: PathBuf,
    /// The pod's network namespace (`/var/run/netns/cni-<uuid>`: named by CNI, not by the pod,
    /// so a leak check must know it), from the sandbox's OCI spec.
    pub netns: Option<PathBuf>,
}

impl Cri {
    pub fn start() -> Cri {
        Cri::start_with_env(&[])
    }

    /// A containerd (and so its shims) with these variables in its environment.
    pub fn start_with_env(env: &[(&str, &std::ffi::OsStr)]) -> Cri {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "these tests start containerd with its CRI plugin and need root"
        );
        for bin in ["containerd", "ctr", "unshare", "ip"] {
            assert!(
                super::common::which(bin),
                "{bin} is not installed: apt-get install -y containerd runc containernetworking-plugins iproute2 (scripts/test does)"
            );
        }
        assert!(
            Path::new("/usr/lib/cni/bridge").exists(),
            "CNI plugins are missing: apt-get install -y containernetworking-plugins (scripts/test does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("skiff-cri")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let sock = d.join("c.sock");
        // Every containerd has its own network namespace, so one range serves them all.
        let subnet = "10.88.0.0/24".to_string();
        std::fs::create_dir_all(d.join("cni")).unwrap();
        std::fs::write(
            d.join("cni/10-skiff-test.conflist"),
            cni_config(&subnet, &d.join("cni-ipam")),
        )
        .unwrap();
        std::fs::write(d.join("config.toml"), containerd_config(d, &sock)).unwrap();
        let path = super::common::path_with_the_shim();
        let log = std::fs::File::create(d.join("containerd.log")).unwrap();
        // `unshare -n` gives containerd (and so CNI's bridge and every shim) a network namespace
        // of its own; its `lo` starts down.
        let child = Command::new("unshare")
            .args([
                "-n",
                "sh",
                "-c",
                "ip link set lo up && exec containerd --config \"$0\"",
            ])
            .arg(d.join("config.toml"))
            .env("PATH", path)
            .env("SKIFF_HOME", d.join("skiff-home"))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let c = Cri {
            dir,
            child,
            sock,
            rt,
            pods: Mutex::new(Vec::new()),
            subnet,
        };
        // Ready when the CRI plugin answers (it registers after containerd's own services).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v: Result<Empty, _> = c.call(RUNTIME, "Version", &Empty {});
            if v.is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "containerd's CRI plugin did not come up ({}); log:\n{}",
                v.unwrap_err(),
                c.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // runc pods run it (skiff pods never read it): busybox sleeping.
        c.import_tar(&busybox_image(PAUSE, &["sleep", "1000000"]));
        c
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// containerd's pid: `/proc/PID/ns/net` is the node's network namespace.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn subnet(&self) -> &str {
        &self.subnet
    }

    fn call<Req: prost::Message, Resp: prost::Message + Default>(
        &self,
        service: &str,
        method: &str,
        req: &Req,
    ) -> Result<Resp, grpc::Status> {
        let path = format!("{service}{method}");
        self.rt.block_on(grpc::call(&self.sock, &path, &[], req))
    }

    /// `ctr -a SOCK -n k8s.io ARGS...`
    pub fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("-a")
            .arg(&self.sock)
            .args(["-n", K8S_NS])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ctr")
    }

    /// Import a compat image of `wasm` for the node's platform (linux/amd64: what the CRI
    /// plugin unpacks), as `ctr -n k8s.io images import` does on a node.
    pub fn import(&self, name: &str, wasm: Vec<u8>) {
        self.import_tar(&node_image(name, wasm).layout_tar().unwrap());
    }

    /// `ctr -n k8s.io images import` of an OCI layout tar.
    pub fn import_tar(&self, layout: &[u8]) {
        let tar = self.dir.path().join("image.tar");
        std::fs::write(&tar, layout).unwrap();
        let out = self.ctr(&["images", "import", tar.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "import failed: {}",
            super::common::text(&out)
        );
    }

    /// RunPodSandbox with handler `skiff` (or `runc`), as a kubelet sends it for a pod named
    /// `name` with these annotations; then PodSandboxStatus for its IP.
    pub fn run_pod(&self, handler: &str, name: &str, annotations: &[(&str, &str)]) -> Pod {
        let uid = format!("uid-{name}");
        let log_dir = self
            .dir
            .path()
            .join("pods")
            .join(format!("default_{name}_{uid}"));
        std::fs::create_dir_all(&log_dir).unwrap();
        let config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.into(),
                uid,
                namespace: "default".into(),
                attempt: 0,
            }),
            hostname: name.into(),
            log_directory: log_dir.display().to_string(),
            dns_config: Some(DnsConfig::default()),
            port_mappings: vec![],
            labels: HashMap::from([
                ("io.kubernetes.pod.name".into(), name.into()),
                ("io.kubernetes.pod.namespace".into(), "default".into()),
            ]),
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: String::new(),
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(NamespaceOption::default()),
                }),
            }),
        };
        let resp: RunPodSandboxResponse = self
            .call(
                RUNTIME,
                "RunPodSandbox",
                &RunPodSandboxRequest {
                    config: Some(config.clone()),
                    runtime_handler: handler.into(),
                },
            )
            .unwrap_or_else(|e| panic!("RunPodSandbox {name}: {e}\nlog:\n{}", self.log()));
        self.pods.lock().unwrap().push(resp.pod_sandbox_id.clone());
        let status: PodSandboxStatusResponse = self
            .call(
                RUNTIME,
                "PodSandboxStatus",
                &PodSandboxIdRequest {
                    pod_sandbox_id: resp.pod_sandbox_id.clone(),
                },
            )
            .unwrap();
        let status = status.status.unwrap();
        assert_eq!(status.state, 0, "sandbox {name} is not SANDBOX_READY");
        assert_eq!(status.runtime_handler, handler);
        let netns = self.netns_of(&resp.pod_sandbox_id);
        Pod {
            id: resp.pod_sandbox_id,
            config,
            ip: status.network.map(|n| n.ip).unwrap_or_default(),
            log_dir,
            netns,
        }
    }

    /// StopPodSandbox then RemovePodSandbox, as a kubelet ends a pod.
    pub fn remove_pod(&self, pod: &Pod) {
        let req = PodSandboxIdRequest {
            pod_sandbox_id: pod.id.clone(),
        };
        let _: Empty = self
            .call(RUNTIME, "StopPodSandbox", &req)
            .unwrap_or_else(|e| panic!("StopPodSandbox: {e}"));
        let _: Empty = self
            .call(RUNTIME, "RemovePodSandbox", &req)
            .unwrap_or_else(|e| panic!("RemovePodSandbox: {e}"));
        self.pods.lock().unwrap().retain(|id| id != &pod.id);
    }

    /// What a removed pod must not leave behind: its shim process, a mount naming it (rootfs,
    /// the netns bind mount), its IP in host-local's allocations.
    pub fn assert_pod_gone(&self, pod: &Pod) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = self.leftovers(pod);
            if left.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pod {} left behind: {left:?}",
                pod.id
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The task's bundle: containerd's shim v2 state for a container (or a sandbox) of the
    /// CRI's `k8s.io` namespace.
    fn bundle(&self, id: &str) -> PathBuf {
        self.dir
            .path()
            .join("state/io.containerd.runtime.v2.task/k8s.io")
            .join(id)
    }

    fn netns_of(&self, sandbox: &str) -> Option<PathBuf> {
        let spec = std::fs::read(self.bundle(sandbox).join("config.json")).ok()?;
        let spec: serde_json::Value = serde_json::from_slice(&spec).ok()?;
        spec["linux"]["namespaces"]
            .as_array()?
            .iter()
            .find(|n| n["type"] == "network")
            .and_then(|n| n["path"].as_str())
            .map(PathBuf::from)
    }

    pub fn leftovers(&self, pod: &Pod) -> Vec<String> {
        let mut left = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(&pod.id) {
                left.push(format!(
                    "process {}: {cmdline}",
                    entry.file_name().to_string_lossy()
                ));
            }
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        left.extend(
            mounts
                .lines()
                .filter(|l| l.contains(&pod.id))
                .map(|l| format!("mount {l}")),
        );
        if !pod.ip.is_empty()
            && self
                .dir
                .path()
                .join("cni-ipam/skiff-test")
                .join(&pod.ip)
                .exists()
        {
            left.push(format!("host-local allocation of {}", pod.ip));
        }
        if let Some(ns) = &pod.netns {
            let path = ns.display().to_string();
            if ns.exists() || mounts.lines().any(|l| l.contains(&path)) {
                left.push(format!("network namespace {path}"));
            }
        }
        if self.bundle(&pod.id).exists() {
            left.push(format!("shim state {}", self.bundle(&pod.id).display()));
        }
        left
    }

    pub fn pull(&self, image: &str, auth: Option<AuthConfig>) -> Result<String, grpc::Status> {
        let resp: PullImageResponse = self.call(
            IMAGES,
            "PullImage",
            &PullImageRequest {
                image: Some(ImageSpec {
                    image: image.into(),
                }),
                auth,
                sandbox_config: None,
            },
        )?;
        Ok(resp.image_ref)
    }

    /// CreateContainer: the config a kubelet builds (log path `NAME/0.log` under the pod's log
    /// directory), completed by `edit`.
    pub fn create(
        &self,
        pod: &Pod,
        name: &str,
        image: &str,
        edit: impl FnOnce(&mut ContainerConfig),
    ) -> Result<String, grpc::Status> {
        let mut config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: image.into(),
            }),
            labels: HashMap::from([("io.kubernetes.container.name".into(), name.into())]),
            log_path: format!("{name}/0.log"),
            linux: Some(LinuxContainerConfig {
                resources: Some(LinuxContainerResources {
                    cpu_period: 100_000,
                    cpu_shares: 2,
                    oom_score_adj: 1000,
                    ..Default::default()
                }),
            }),
            ..Default::default()
        };
        edit(&mut config);
        let resp: CreateContainerResponse = self.call(
            RUNTIME,
            "CreateContainer",
            &CreateContainerRequest {
                pod_sandbox_id: pod.id.clone(),
                config: Some(config),
                sandbox_config: Some(pod.config.clone()),
            },
        )?;
        Ok(resp.container_id)
    }

    pub fn start_container(&self, id: &str) -> Result<(), grpc::Status> {
        let _: Empty = self.call(
            RUNTIME,
            "StartContainer",
            &ContainerIdRequest {
                container_id: id.into(),
            },
        )?;
        Ok(())
    }

    pub fn status(&self, id: &str) -> ContainerStatus {
        let resp: ContainerStatusResponse = self
            .call(
                RUNTIME,
                "ContainerStatus",
                &ContainerIdRequest {
                    container_id: id.into(),
                },
            )
            .unwrap_or_else(|e| panic!("ContainerStatus {id}: {e}"));
        resp.status.unwrap()
    }

    /// Poll ContainerStatus (as the kubelet's PLEG does) until the container is in `state`.
    pub fn wait_state(&self, id: &str, state: i32) -> ContainerStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.status(id);
            if s.state == state {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "container {id} never reached state {state}: {s:?}\nlog:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&self, id: &str, grace_seconds: i64) -> Result<(), grpc::Status> {
        let _: Empty = self.call(
            RUNTIME,
            "StopContainer",
            &StopContainerRequest {
                container_id: id.into(),
                timeout: grace_seconds,
            },
        )?;
        Ok(())
    }

    pub fn remove(&self, id: &str) -> Result<(), grpc::Status> {
        let _: Empty = self.call(
            RUNTIME,
            "RemoveContainer",
            &ContainerIdRequest {
                container_id: id.into(),
            },
        )?;
        Ok(())
    }

    pub fn exec_sync(&self, id: &str, cmd: &[&str]) -> Result<ExecSyncResponse, grpc::Status> {
        self.call(
            RUNTIME,
            "ExecSync",
            &ExecSyncRequest {
                container_id: id.into(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout: 5,
            },
        )
    }

    pub fn exec(&self, id: &str, cmd: &[&str]) -> Result<ExecResponse, grpc::Status> {
        self.call(
            RUNTIME,
            "Exec",
            &ExecRequest {
                container_id: id.into(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                stdout: true,
                stderr: true,
                ..Default::default()
            },
        )
    }

    /// Open the stream behind an Exec URL as `kubectl exec` does through the API server, over a
    /// WebSocket (`v4.channel.k8s.io`, which the CRI streaming server accepts besides SPDY), and
    /// return what arrives on the error channel (3) before the server closes it.
    pub fn exec_stream_error(&self, url: &str) -> String {
        use std::io::{Read as _, Write as _};
        let rest = url.strip_prefix("http://").expect("an http:// URL");
        let (host, path) = rest.split_at(rest.find('/').unwrap());
        let netns = std::fs::File::open(format!("/proc/{}/ns/net", self.pid())).unwrap();
        let (host, path) = (host.to_string(), path.to_string());
        std::thread::spawn(move || {
            use std::os::fd::AsRawFd as _;
            // SAFETY: setns on a namespace fd we hold; it moves only this thread.
            assert_eq!(
                unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) },
                0
            );
            let mut s = std::net::TcpStream::connect(&host).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                 Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n"
            )
            .unwrap();
            let mut all = Vec::new();
            let _ = s.read_to_end(&mut all);
            let head_end = all
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .unwrap_or_else(|| panic!("no HTTP answer: {}", String::from_utf8_lossy(&all)));
            let head = String::from_utf8_lossy(&all[..head_end]).into_owned();
            assert!(head.starts_with("HTTP/1.1 101"), "{head}");
            // Server frames are unmasked: FIN/opcode, length (7 bits, or 126 + 16 bits), payload
            // whose first byte is the channel.
            let mut frames = &all[head_end + 4..];
            let mut errors = String::new();
            while frames.len() >= 2 {
                let (len, start) = match frames[1] & 0x7f {
                    126 => (u16::from_be_bytes([frames[2], frames[3]]) as usize, 4),
                    n => (n as usize, 2),
                };
                let Some(payload) = frames.get(start..start + len) else {
                    break;
                };
                if frames[0] & 0x0f != 8 && payload.first() == Some(&3) {
                    errors.push_str(&String::from_utf8_lossy(&payload[1..]));
                }
                frames = &frames[start + len..];
            }
            errors
        })
        .join()
        .unwrap()
    }

    /// Run `cmd` inside containerd's network namespace (where the pod IPs are routed), as a
    /// node's kubelet probes a pod: `nsenter --net=/proc/PID/ns/net CMD...`.
    pub fn in_netns(&self, cmd: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net=/proc/{}/ns/net", self.pid()))
            .args(cmd)
            .stdin(Stdio::null())
            .output()
            .expect("run nsenter")
    }

    /// GET `url` from the node's network namespace until it answers 200 (a kubelet's HTTP
    /// readiness probe); the body.
    pub fn wait_http(&self, url: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.in_netns(&["curl", "-sSf", "--max-time", "10", url]);
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).into_owned();
            }
            assert!(
                Instant::now() < deadline,
                "{url} never answered 200: {}\nlog:\n{}",
                super::common::text(&out),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Cri {
    fn drop(&mut self) {
        // Leave nothing behind: a pod's removal kills its containers, its shim and its netns,
        // and gives its IP back.
        let pods = std::mem::take(&mut *self.pods.lock().unwrap());
        for id in pods {
            let req = PodSandboxIdRequest { pod_sandbox_id: id };
            let _: Result<Empty, _> = self.call(RUNTIME, "StopPodSandbox", &req);
            let _: Result<Empty, _> = self.call(RUNTIME, "RemovePodSandbox", &req);
        }
        super::common::stop_containerd(&mut self.child, self.dir.path());
    }
}

/// A compat image for the node's platform: the CRI plugin pulls and unpacks only that one
/// (a `wasi/wasm`-only image fails with "no match for platform in manifest").
pub fn node_image(name: &str, wasm: Vec<u8>) -> skiff_image::compat::CompatImage {
    skiff_image::compat::CompatImage::new(skiff_image::compat::CompatConfig {
        name: name.into(),
        wasm,
        os: "linux".into(),
        architecture: "amd64".into(),
        ..Default::default()
    })
    .unwrap()
}

/// Resident memory of what serves `pod` on the node: its shim process (the one whose command
/// line names the sandbox id) and every process under it (the sandbox placeholder or pause, the
/// guest runner or the container's process).
pub fn pod_rss_kib(pod: &Pod) -> u64 {
    let field = |pid: &str, key: &str| -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let v = status.lines().find_map(|l| l.strip_prefix(key))?;
        v.trim().trim_end_matches("kB").trim().parse().ok()
    };
    let procs: Vec<(String, u64, String)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().into_owned();
            let ppid = field(&pid, "PPid:")?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            Some((pid, ppid, String::from_utf8_lossy(&cmdline).into_owned()))
        })
        .collect();
    let shim = procs
        .iter()
        .find(|(_, _, c)| c.contains("containerd-shim") && c.contains(&pod.id))
        .unwrap_or_else(|| panic!("no shim process for pod {}", pod.id));
    let mut tree = vec![shim.0.clone()];
    let mut i = 0;
    while i < tree.len() {
        let parent: u64 = tree[i].parse().unwrap();
        tree.extend(
            procs
                .iter()
                .filter(|(_, ppid, _)| *ppid == parent)
                .map(|(pid, _, _)| pid.clone()),
        );
        i += 1;
    }
    tree.iter().filter_map(|pid| field(pid, "VmRSS:")).sum()
}

/// An ordinary Linux image for runc, as an OCI layout tar: Debian's static busybox as
/// `/busybox`, run as `/busybox ARGS...`.
pub fn busybox_image(name: &str, args: &[&str]) -> Vec<u8> {
    use sha2::Digest as _;
    let busybox = std::fs::read("/bin/busybox")
        .expect("/bin/busybox: apt-get install -y busybox-static (scripts/test does)");
    let tar = |files: &[(&str, &[u8], u32)]| {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data, mode) in files {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(*mode);
            h.set_cksum();
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    };
    let digest = |b: &[u8]| format!("sha256:{}", hex(&sha2::Sha256::digest(b)));
    let layer = tar(&[("busybox", &busybox, 0o755)]);
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/busybox"], "Cmd": args},
        "rootfs": {"type": "layers", "diff_ids": [digest(&layer)]},
    })
    .to_string();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest(config.as_bytes()), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": digest(&layer), "size": layer.len()}],
    })
    .to_string();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": digest(manifest.as_bytes()), "size": manifest.len(),
                       "annotations": {"io.containerd.image.name": name}}],
    })
    .to_string();
    let blob = |b: &[u8]| format!("blobs/{}", digest(b).replace(':', "/"));
    let (l, c, m) = (
        blob(&layer),
        blob(config.as_bytes()),
        blob(manifest.as_bytes()),
    );
    tar(&[
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#, 0o644),
        ("index.json", index.as_bytes(), 0o644),
        (&l, &layer, 0o644),
        (&c, config.as_bytes(), 0o644),
        (&m, manifest.as_bytes(), 0o644),
    ])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn containerd_config(d: &Path, sock: &Path) -> String {
    // restrict_oom_score_adj, disable_apparmor: this machine has no CAP_SYS_RESOURCE and no
    // AppArmor. Not `disable_cgroup = true`: with it the CRI plugin drops every resource from
    // the OCI spec, the memory limit included, and the guest gets the default 128 MiB.
    format!(
        r#"version = 2
root = "{root}"
state = "{state}"
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = "{debug}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.skiff]
      runtime_type = "io.containerd.skiff.v1"
      pod_annotations = ["dev.skiff.*", "dev.skiff.*/*"]
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
  [plugins."io.containerd.grpc.v1.cri".registry]
    # hosts.toml per registry, read at each pull: a test's registry on a port of its own.
    config_path = "{certs}"
"#,
        root = d.join("root").display(),
        state = d.join("state").display(),
        sock = sock.display(),
        debug = d.join("debug.sock").display(),
        cni = d.join("cni").display(),
        certs = d.join("certs.d").display(),
    )
}

fn cni_config(subnet: &str, ipam_dir: &Path) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "skiff-test",
        "plugins": [{
            "type": "bridge",
            "bridge": "cni0",
            "isGateway": true,
            "ipMasq": false,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": subnet}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                // Not /var/lib/cni: the test's allocations stay in its temp dir.
                "dataDir": ipam_dir,
            }
        }]
    })
    .to_string()
}
