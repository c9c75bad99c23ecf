//! The shim driven through containerd's CRI plugin exactly as a kubelet drives it: RunPodSandbox
//! with runtime handler `skiff`, CreateContainer / StartContainer / ContainerStatus /
//! StopContainer / RemoveContainer, StopPodSandbox / RemovePodSandbox, with CNI networking.

#[allow(dead_code)] // each test file uses part of the harness
mod common;
#[allow(dead_code)]
mod cri_support;

use common::guest;
use cri_support::proto::{
    KeyValue, LinuxContainerResources, Mount, CONTAINER_EXITED, CONTAINER_RUNNING,
};
use cri_support::registry::Registry;
use cri_support::Cri;
use std::path::Path;

/// The container's log file, as `kubectl logs` reads it.
fn read_log(pod: &cri_support::Pod, name: &str) -> String {
    std::fs::read_to_string(pod.log_dir.join(name).join("0.log")).unwrap_or_default()
}

/// The CRI log format: `TIMESTAMP STREAM TAG CONTENT`, TAG `F` for a full line.
fn log_lines(log: &str) -> Vec<(String, String)> {
    log.lines()
        .map(|l| {
            let mut f = l.splitn(4, ' ');
            let ts = f.next().unwrap_or_default();
            assert!(
                ts.len() > 20 && ts.contains('T'),
                "not a CRI log line (no RFC 3339 timestamp): {l:?}"
            );
            let stream = f.next().unwrap_or_default().to_string();
            let tag = f.next().unwrap_or_default();
            assert!(tag == "F" || tag == "P", "not a CRI log line: {l:?}");
            (stream, f.next().unwrap_or_default().to_string())
        })
        .collect()
}

#[test]
fn commands_run_to_completion_with_the_exit_codes_reasons_and_logs_a_kubelet_reads() {
    let cri = Cri::start();
    cri.import("example.com/skiff/hello:1.0", guest("hello.wasm"));
    cri.import("example.com/skiff/hello-p2:1.0", guest("hello-p2.wasm"));
    cri.import("example.com/skiff/exit:1.0", guest("exit-code.wasm"));
    cri.import("example.com/skiff/hog:1.0", guest("memory-hog.wasm"));
    let pod = cri.run_pod("skiff", "jobs", &[]);

    // A container of the pod, and what ContainerStatus must say once it exited.
    struct Case {
        name: &'static str,
        image: &'static str,
        args: &'static [&'static str],
        memory_limit: i64,
        exit_code: i32,
        reason: &'static str,
    }
    let case = |name, image, args, memory_limit, exit_code, reason| Case {
        name,
        image,
        args,
        memory_limit,
        exit_code,
        reason,
    };
    let cases = [
        case(
            "p1",
            "example.com/skiff/hello:1.0",
            &["world"],
            0,
            0,
            "Completed",
        ),
        case(
            "p2",
            "example.com/skiff/hello-p2:1.0",
            &[],
            0,
            0,
            "Completed",
        ),
        case("fails", "example.com/skiff/exit:1.0", &["3"], 0, 3, "Error"),
        case(
            "ok",
            "example.com/skiff/exit:1.0",
            &["0"],
            0,
            0,
            "Completed",
        ),
        case(
            "hog",
            "example.com/skiff/hog:1.0",
            &[],
            16 << 20,
            137,
            "OOMKilled",
        ),
    ];
    for Case {
        name,
        image,
        args,
        memory_limit: memory,
        exit_code: code,
        reason,
    } in cases
    {
        let id = cri
            .create(&pod, name, image, |c| {
                c.args = args.iter().map(|s| s.to_string()).collect();
                c.envs = vec![KeyValue {
                    key: "NAME".into(),
                    value: "kubernetes".into(),
                }];
                if memory > 0 {
                    c.linux.as_mut().unwrap().resources = Some(LinuxContainerResources {
                        memory_limit_in_bytes: memory,
                        ..Default::default()
                    });
                }
            })
            .unwrap_or_else(|e| panic!("CreateContainer {name}: {e}"));
        cri.start_container(&id)
            .unwrap_or_else(|e| panic!("StartContainer {name}: {e}"));
        let s = cri.wait_state(&id, CONTAINER_EXITED);
        let log = read_log(&pod, name);
        assert_eq!(s.exit_code, code, "{name}: {s:?}\nlog:\n{log}");
        assert_eq!(s.reason, reason, "{name}: {s:?}\nlog:\n{log}");
        assert!(s.finished_at > 0, "{name}: {s:?}");
        assert_eq!(
            Path::new(&s.log_path),
            pod.log_dir.join(name).join("0.log"),
            "{name}"
        );
        let lines = log_lines(&log);
        match name {
            "p1" => {
                // argv[0] stays the image's entrypoint, the pod's args follow; the env is the
                // pod spec's.
                for want in [
                    "hello from skiff",
                    "arg[0]=/app.wasm",
                    "arg[1]=world",
                    "NAME=kubernetes",
                ] {
                    assert!(
                        lines.contains(&("stdout".into(), want.into())),
                        "{want:?} not a stdout line of\n{log}"
                    );
                }
            }
            "p2" => assert!(
                lines
                    .iter()
                    .any(|(st, l)| st == "stdout" && l.contains("hello")),
                "{log}"
            ),
            // The limit is the pod spec's (LinuxContainerResources), not the default 128 MiB.
            "hog" => assert!(
                lines.iter().any(|(st, l)| st == "stderr"
                    && l.contains("memory limit")
                    && l.contains("16 MiB")),
                "the memory limit is not on the stderr stream:\n{log}"
            ),
            _ => {}
        }
        cri.remove(&id)
            .unwrap_or_else(|e| panic!("RemoveContainer {name}: {e}"));
    }
    cri.remove_pod(&pod);
    cri.assert_pod_gone(&pod);
}

#[test]
fn env_mounts_and_grants_reach_the_guest_as_the_pod_spec_says() {
    let cri = Cri::start();
    cri.import("example.com/skiff/hello:1.0", guest("hello.wasm"));
    cri.import("example.com/skiff/socket:1.0", guest("socket.wasm"));
    // A ConfigMap volume (read-only) and an emptyDir (writable), as the kubelet lays them out.
    let config_map = cri.dir.path().join("volumes/configmap");
    let empty_dir = cri.dir.path().join("volumes/empty-dir");
    std::fs::create_dir_all(&config_map).unwrap();
    std::fs::create_dir_all(&empty_dir).unwrap();
    std::fs::write(config_map.join("in.txt"), "from a ConfigMap\n").unwrap();
    // dev.skiff.net/NAME: only the container named `net` gets sockets.
    let pod = cri.run_pod("skiff", "grants", &[("dev.skiff.net/net", "true")]);

    let run = |name: &str, image: &str, mounts: Vec<Mount>, args: &[&str]| {
        let id = cri
            .create(&pod, name, image, |c| {
                c.mounts = mounts;
                c.args = args.iter().map(|s| s.to_string()).collect();
                c.envs = vec![KeyValue {
                    key: "NAME".into(),
                    value: "from-env".into(),
                }];
            })
            .unwrap_or_else(|e| panic!("CreateContainer {name}: {e}"));
        cri.start_container(&id).unwrap();
        let s = cri.wait_state(&id, CONTAINER_EXITED);
        let log = read_log(&pod, name);
        assert_eq!(s.exit_code, 0, "{name}: {s:?}\n{log}");
        cri.remove(&id).unwrap();
        log
    };
    let mount = |dst: &str, src: &Path, readonly: bool| Mount {
        container_path: dst.into(),
        host_path: src.display().to_string(),
        readonly,
    };

    let log = run(
        "rw",
        "example.com/skiff/hello:1.0",
        vec![
            mount("/data", &config_map, true),
            mount("/out", &empty_dir, false),
        ],
        &[],
    );
    assert!(log.contains("stdout F NAME=from-env"), "{log}");
    assert!(log.contains("stdout F read: from a ConfigMap"), "{log}");
    assert!(log.contains("stdout F write: ok"), "{log}");
    assert_eq!(
        std::fs::read_to_string(empty_dir.join("out.txt")).unwrap(),
        "written by hello\n"
    );
    // Only the env the spec names (and the CRI plugin's own HOSTNAME, KUBERNETES_* none here):
    // never the node's.
    assert!(!log.contains("PATH="), "{log}");

    std::fs::remove_file(empty_dir.join("out.txt")).unwrap();
    let log = run(
        "ro",
        "example.com/skiff/hello:1.0",
        vec![mount("/out", &empty_dir, true)],
        &[],
    );
    assert!(log.contains("stdout F write: error"), "{log}");
    assert!(!empty_dir.join("out.txt").exists());
    // Nothing granted, nothing readable: the image's own filesystem is not visible either.
    assert!(log.contains("stdout F read: error"), "{log}");

    // Sockets: deny by default; the per-container annotation grants them to `net` only. The
    // pod's gateway answers on no port, so a granted connect is refused, an ungranted one never
    // reaches the network.
    let gateway = format!("{}:1", gateway(&pod.ip));
    let log = run("nonet", "example.com/skiff/socket:1.0", vec![], &[&gateway]);
    assert!(
        log.contains("connect: denied") && !log.contains("refused"),
        "{log}"
    );
    let log = run("net", "example.com/skiff/socket:1.0", vec![], &[&gateway]);
    assert!(log.contains("refused"), "{log}");
    cri.remove_pod(&pod);
    cri.assert_pod_gone(&pod);
}

/// The bridge's address on the pod's /24 (host-local gives the gateway .1).
fn gateway(ip: &str) -> String {
    let mut octets: Vec<&str> = ip.split('.').collect();
    octets[3] = "1";
    octets.join(".")
}

#[test]
fn a_wasi_http_component_answers_on_the_pod_ip_and_stops_gracefully() {
    let cri = Cri::start();
    cri.import("example.com/skiff/http-hello:1.0", guest("http-hello.wasm"));
    cri.import("example.com/skiff/socket:1.0", guest("socket.wasm"));
    let pod = cri.run_pod(
        "skiff",
        "web",
        &[
            ("dev.skiff.http.port", "8080"),
            ("dev.skiff.net/client", "true"),
        ],
    );
    assert!(
        pod.ip.starts_with("10.88.0."),
        "no pod IP from host-local on {}: {:?}",
        cri.subnet(),
        pod.ip
    );
    let web = cri
        .create(&pod, "web", "example.com/skiff/http-hello:1.0", |c| {
            c.linux.as_mut().unwrap().resources = Some(LinuxContainerResources {
                memory_limit_in_bytes: 64 << 20,
                ..Default::default()
            });
        })
        .unwrap();
    cri.start_container(&web).unwrap();
    cri.wait_state(&web, CONTAINER_RUNNING);
    // What a kubelet's httpGet probe does: GET the pod IP at the port.
    let body = cri.wait_http(&format!("http://{}:8080/", pod.ip));
    assert_eq!(body, "hello from skiff\n");
    // And a tcpSocket probe: a connection opens.
    let out = cri.in_netns(&["bash", "-c", &format!("exec 3<>/dev/tcp/{}/8080", pod.ip)]);
    assert!(out.status.success(), "{}", common::text(&out));

    // A second container of the pod reaches it on localhost (one network namespace per pod).
    let client = cri
        .create(&pod, "client", "example.com/skiff/socket:1.0", |c| {
            c.args = vec!["127.0.0.1:8080".into()];
        })
        .unwrap();
    cri.start_container(&client).unwrap();
    let s = cri.wait_state(&client, CONTAINER_EXITED);
    let log = read_log(&pod, "client");
    assert_eq!(s.exit_code, 0, "{log}");
    assert!(log.contains("stdout F connect: ok"), "{log}");
    cri.remove(&client).unwrap();

    // kubectl exec and exec probes: refused with the reason.
    let err = cri
        .exec_sync(&web, &["/bin/sh", "-c", "true"])
        .expect_err("ExecSync into a Wasm container succeeded");
    assert!(
        err.message.contains("not supported for Wasm workloads"),
        "ExecSync: {err}"
    );

    // Exec (kubectl exec): containerd answers with a streaming URL; the refusal comes on the
    // stream's error channel once it is opened.
    let url = cri
        .exec(&web, &["/bin/sh"])
        .unwrap_or_else(|e| panic!("Exec: {e}"))
        .url;
    let error = cri.exec_stream_error(&url);
    assert!(
        error.contains("not supported for Wasm workloads"),
        "the exec stream's error channel: {error:?}"
    );

    // StopContainer with a grace period: SIGTERM drains and the server exits 0.
    cri.stop(&web, 10).unwrap();
    let s = cri.wait_state(&web, CONTAINER_EXITED);
    assert_eq!((s.exit_code, s.reason.as_str()), (0, "Completed"), "{s:?}");
    let log = read_log(&pod, "web");
    assert!(
        log.contains("stdout F listening on http://0.0.0.0:8080"),
        "{log}"
    );
    cri.remove(&web).unwrap();
    // While the pod lives, the leak check sees its shim, its mounts, its network namespace, its
    // IP and the shim's state: it can fail.
    let alive = cri.leftovers(&pod);
    for kind in [
        "process",
        "mount",
        "host-local",
        "network namespace",
        "shim state",
    ] {
        assert!(
            alive.iter().any(|l| l.starts_with(kind)),
            "no {kind} in {alive:?}"
        );
    }
    cri.remove_pod(&pod);
    cri.assert_pod_gone(&pod);
}

#[test]
fn pull_image_with_registry_auth_then_run_the_pulled_image() {
    let cri = Cri::start();
    let registry = Registry::start(&cri, "kube", "s3cret");
    let name = format!("{}/team/hello:1.0", Registry::HOST);
    let tar = cri.dir.path().join("push.tar");
    std::fs::write(
        &tar,
        cri_support::node_image(&name, guest("hello.wasm"))
            .layout_tar()
            .unwrap(),
    )
    .unwrap();
    registry.push(&cri, &tar, &name, "kube:s3cret");
    // The same binary with the platform `ctr --platform wasi/wasm` wants. skopeo pushes the one
    // manifest, no index: containerd does not match a lone manifest's platform against the
    // node's, so a kubelet can pull and run it too.
    let wasi = format!("{}/team/hello-wasi:1.0", Registry::HOST);
    let image = skiff_image::compat::CompatImage::new(skiff_image::compat::CompatConfig {
        name: wasi.clone(),
        wasm: guest("hello.wasm"),
        ..Default::default()
    })
    .unwrap();
    std::fs::write(&tar, image.layout_tar().unwrap()).unwrap();
    registry.push(&cri, &tar, &wasi, "kube:s3cret");

    let auth = || {
        Some(cri_support::proto::AuthConfig {
            username: "kube".into(),
            password: "s3cret".into(),
            // With a scheme: containerd 1.6 parses it as a URL, and a bare `HOST:PORT` fails
            // ("first path segment in URL cannot contain colon").
            server_address: format!("http://{}", Registry::HOST),
            ..Default::default()
        })
    };
    let err = cri
        .pull(&name, None)
        .expect_err("pulled without credentials");
    assert!(
        err.message.contains("401") || err.message.contains("nauthorized"),
        "{err}"
    );
    let image_ref = cri
        .pull(&name, auth())
        .unwrap_or_else(|e| panic!("PullImage with auth: {e}\nlog:\n{}", cri.log()));
    assert!(image_ref.starts_with("sha256:"), "{image_ref}");

    let wasi_ref = cri
        .pull(&wasi, auth())
        .unwrap_or_else(|e| panic!("PullImage of the wasi/wasm image: {e}"));

    // A kubelet creates the container with the image_ref PullImage returned.
    let pod = cri.run_pod("skiff", "pulled", &[]);
    for (name, image) in [("node", image_ref), ("wasi", wasi_ref)] {
        let id = cri.create(&pod, name, &image, |_| {}).unwrap();
        cri.start_container(&id).unwrap();
        let s = cri.wait_state(&id, CONTAINER_EXITED);
        let log = read_log(&pod, name);
        assert_eq!((s.exit_code, s.reason.as_str()), (0, "Completed"), "{log}");
        assert!(log.contains("stdout F hello from skiff"), "{log}");
        cri.remove(&id).unwrap();
    }
    cri.remove_pod(&pod);
    cri.assert_pod_gone(&pod);
}

#[test]
fn a_wasm_pod_calls_a_runc_pods_service_by_pod_ip_through_its_allow_list() {
    let cri = Cri::start();
    // The container beside the Wasm app: a data service in an ordinary image, under runc.
    cri.import_tar(&cri_support::busybox_image(
        "example.com/debian/busybox:1.0",
        &["httpd", "-f", "-p", "8081", "-h", "/www"],
    ));
    cri.import(
        "example.com/skiff/http-fanout:1.0",
        guest("http-fanout.wasm"),
    );
    let www = cri.dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "from runc\n").unwrap();
    let store = cri.run_pod("runc", "store", &[]);
    let httpd = cri
        .create(&store, "httpd", "example.com/debian/busybox:1.0", |c| {
            c.mounts = vec![Mount {
                container_path: "/www".into(),
                host_path: www.display().to_string(),
                readonly: true,
            }];
        })
        .unwrap_or_else(|e| panic!("CreateContainer under runc: {e}\nlog:\n{}", cri.log()));
    cri.start_container(&httpd)
        .unwrap_or_else(|e| panic!("StartContainer under runc: {e}\nlog:\n{}", cri.log()));
    let store_url = format!("http://{}:8081/", store.ip);
    assert_eq!(cri.wait_http(&store_url), "from runc\n");

    // The Wasm app may call exactly the store's address.
    let allow = format!("http://{}:8081", store.ip);
    let app = cri.run_pod(
        "skiff",
        "app",
        &[
            ("dev.skiff.http.port", "8080"),
            ("dev.skiff.http.allow", &allow),
        ],
    );
    assert_ne!(app.ip, store.ip);
    let web = cri
        .create(&app, "web", "example.com/skiff/http-fanout:1.0", |_| {})
        .unwrap();
    cri.start_container(&web).unwrap();
    cri.wait_state(&web, CONTAINER_RUNNING);
    let body = cri.wait_http(&format!("http://{}:8080/?url={store_url}&n=1", app.ip));
    assert!(body.starts_with("ok=1 failed=0"), "{body}");
    // Anywhere else, even the store on another port, is refused by the guest's host.
    let other = format!("http://{}:8082/", store.ip);
    let body = cri.wait_http(&format!("http://{}:8080/?url={other}&n=1", app.ip));
    // Refused by the guest's host (the allow-list), not by a closed port.
    assert!(
        body.starts_with("ok=0 failed=1") && body.contains("Denied"),
        "{body}"
    );

    for (pod, id) in [(&app, &web), (&store, &httpd)] {
        cri.stop(id, 5).unwrap();
        cri.remove(id).unwrap();
        cri.remove_pod(pod);
        cri.assert_pod_gone(pod);
    }
}

/// Pods created, started, stopped and removed in a loop, `SKIFF_CRI_CHURN_BATCH` at a time (a
/// node's kubelet starting a ReplicaSet's pods), `SKIFF_CRI_CHURN_PODS` in all: afterwards
/// nothing of any pod is left. The test run does a short smoke (2 batches of 3, both handlers);
/// bench/cri-churn.sh runs 200 pods, 20 at a time, and prints the figures.
#[test]
fn churn_of_http_pods_leaves_nothing_behind() {
    let env = |key: &str, default: usize| {
        std::env::var(key)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (pods, batch) = (
        env("SKIFF_CRI_CHURN_PODS", 6),
        env("SKIFF_CRI_CHURN_BATCH", 3),
    );
    let cri = Cri::start();
    cri.import("example.com/skiff/http-hello:1.0", guest("http-hello.wasm"));
    let www = cri.dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "hello from runc\n").unwrap();
    cri.import_tar(&cri_support::busybox_image(
        "example.com/debian/busybox:1.0",
        &["httpd", "-f", "-p", "8080", "-h", "/www"],
    ));
    for handler in ["skiff", "runc"] {
        let mut start_ms = Vec::new();
        let mut shim_kib = Vec::new();
        let mut n = 0;
        while n < pods {
            let mut running = Vec::new();
            for _ in 0..batch.min(pods - n) {
                let t0 = std::time::Instant::now();
                let pod = cri.run_pod(
                    handler,
                    &format!("{handler}-{n}"),
                    &[("dev.skiff.http.port", "8080")],
                );
                let (image, body) = match handler {
                    "skiff" => ("example.com/skiff/http-hello:1.0", "hello from skiff\n"),
                    _ => ("example.com/debian/busybox:1.0", "hello from runc\n"),
                };
                let id = cri
                    .create(&pod, "web", image, |c| {
                        c.mounts = vec![Mount {
                            container_path: "/www".into(),
                            host_path: www.display().to_string(),
                            readonly: true,
                        }];
                    })
                    .unwrap();
                cri.start_container(&id).unwrap();
                assert_eq!(cri.wait_http(&format!("http://{}:8080/", pod.ip)), body);
                start_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
                running.push((pod, id));
                n += 1;
            }
            // Memory of each pod's shim and its processes, with the whole batch serving.
            for (pod, _) in &running {
                shim_kib.push(cri_support::pod_rss_kib(pod));
            }
            for (pod, id) in &running {
                cri.stop(id, 10).unwrap();
                cri.remove(id).unwrap();
                cri.remove_pod(pod);
            }
            for (pod, _) in &running {
                cri.assert_pod_gone(pod);
            }
        }
        // Nothing of any pod under the CRI plugin's or the shims' state either.
        let state = cri
            .dir
            .path()
            .join("state/io.containerd.runtime.v2.task/k8s.io");
        let left: Vec<_> = std::fs::read_dir(&state)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "task state left behind: {left:?}");
        start_ms.sort_by(f64::total_cmp);
        shim_kib.sort();
        println!(
            "churn {handler}: {pods} pods, {batch} at a time: RunPodSandbox to first HTTP 200 \
             median {:.0} ms (max {:.0} ms); RSS per pod (shim and its processes) median {} KiB",
            start_ms[start_ms.len() / 2],
            start_ms[start_ms.len() - 1],
            shim_kib[shim_kib.len() / 2],
        );
    }
}

/// A request to the pod's server that stays in flight: the head of a POST to /echo is sent and
/// the server has started reading the body (`100 Continue`); the 5-byte body is not sent yet.
/// The connection is opened from a thread placed in the node's network namespace.
fn request_in_flight(cri: &Cri, ip: &str) -> std::net::TcpStream {
    let netns = std::fs::File::open(format!("/proc/{}/ns/net", cri.pid())).unwrap();
    let addr = format!("{ip}:8080");
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd as _;
        // SAFETY: setns on a namespace fd we hold; it moves only this thread.
        assert_eq!(
            unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) },
            0
        );
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        common::start_echo_awaiting_body(&mut s);
        s
    })
    .join()
    .unwrap()
}

#[test]
fn stop_container_drains_in_flight_requests_and_honours_the_grace_period() {
    use std::io::{Read as _, Write as _};
    let cri = Cri::start();
    cri.import("example.com/skiff/http-hello:1.0", guest("http-hello.wasm"));
    let pod = cri.run_pod("skiff", "grace", &[("dev.skiff.http.port", "8080")]);
    let start = |name: &str| {
        let id = cri
            .create(&pod, name, "example.com/skiff/http-hello:1.0", |_| {})
            .unwrap();
        cri.start_container(&id).unwrap();
        cri.wait_http(&format!("http://{}:8080/", pod.ip));
        id
    };

    // Within the grace period: the request in flight finishes, then the server exits 0.
    let web = start("drain");
    let mut inflight = request_in_flight(&cri, &pod.ip);
    std::thread::scope(|s| {
        let stop = s.spawn(|| cri.stop(&web, 30));
        // SIGTERM has reached the server once it stops accepting connections.
        let log = pod.log_dir.join("drain/0.log");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("shutting down: no new connections")
        {
            assert!(
                std::time::Instant::now() < deadline,
                "no SIGTERM reached the server"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        inflight.write_all(b"hello").unwrap();
        let mut response = String::new();
        inflight.read_to_string(&mut response).unwrap();
        assert!(
            response.starts_with("HTTP/1.1 200") && response.ends_with("\r\n\r\nhello"),
            "{response}"
        );
        stop.join().unwrap().unwrap();
    });
    let s = cri.wait_state(&web, CONTAINER_EXITED);
    assert_eq!((s.exit_code, s.reason.as_str()), (0, "Completed"), "{s:?}");
    cri.remove(&web).unwrap();

    // Past the grace period: a request that never finishes does not hold the container; the
    // CRI plugin kills it after StopContainer's timeout (1 s here, where the server would
    // drain for 10 s).
    let web = start("stuck");
    let _stuck = request_in_flight(&cri, &pod.ip);
    cri.stop(&web, 1).unwrap();
    let s = cri.wait_state(&web, CONTAINER_EXITED);
    assert_eq!((s.exit_code, s.reason.as_str()), (137, "Error"), "{s:?}");
    cri.remove(&web).unwrap();
    cri.remove_pod(&pod);
    cri.assert_pod_gone(&pod);
}
