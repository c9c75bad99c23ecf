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
    cri.remove_pod(&pod);
}
