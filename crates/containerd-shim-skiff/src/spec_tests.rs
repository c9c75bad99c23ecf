use super::*;
use skiff_spec::EnvVar;
use std::fs;

fn spec(json: serde_json::Value) -> Spec {
    serde_json::from_value(json).unwrap()
}

fn rootfs_with_wasm() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("app.wasm"), b"\0asm\x01\0\0\0").unwrap();
    d
}

#[test]
fn grants_only_env_and_directory_binds() {
    let root = rootfs_with_wasm();
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("hosts");
    fs::write(&file, "").unwrap();
    let s = spec(serde_json::json!({
        "process": {"args": ["/app.wasm", "x"], "env": ["A=1", "B=2=3", "junk"], "cwd": "/"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/data", "type": "bind", "source": data.path(), "options": ["rbind", "ro"]},
            {"destination": "/rw", "source": data.path(), "options": ["rbind", "rw"]},
            {"destination": "/etc/hosts", "type": "bind", "source": file, "options": ["rbind"]},
        ],
        "linux": {"resources": {"memory": {"limit": 16777216}}},
    }));
    let p = plan(&s, root.path()).unwrap();
    assert_eq!(
        (p.argv0.as_str(), &p.guest.args[..]),
        ("/app.wasm", &["x".to_string()][..])
    );
    assert_eq!(
        p.guest.env,
        [EnvVar::new("A", "1"), EnvVar::new("B", "2=3")]
    );
    assert_eq!(p.guest.mounts.len(), 2);
    assert_eq!(
        (
            p.guest.mounts[0].guest.as_str(),
            p.guest.mounts[0].read_only
        ),
        ("/data", true)
    );
    assert_eq!(
        (
            p.guest.mounts[1].guest.as_str(),
            p.guest.mounts[1].read_only
        ),
        ("/rw", false)
    );
    assert_eq!(p.skipped.len(), 1);
    assert_eq!(p.guest.limits.memory_bytes, Some(16 << 20));
    assert!(!p.guest.network && !p.guest.stdin && p.guest.limits.timeout_ms.is_none());
    assert_eq!(p.wasm, root.path().canonicalize().unwrap().join("app.wasm"));
}

#[test]
fn annotations_grant_network_stdin_rootfs_and_timeout() {
    let root = rootfs_with_wasm();
    let s = spec(serde_json::json!({
        "process": {"args": ["app.wasm"]},
        "annotations": {"dev.skiff.net": "true", "dev.skiff.stdin": "true",
                        "dev.skiff.rootfs": "ro", "dev.skiff.timeout": "1500ms"},
    }));
    let p = plan(&s, root.path()).unwrap();
    assert!(p.guest.network && p.guest.stdin);
    assert_eq!(p.guest.limits.timeout_ms, Some(1500));
    assert_eq!(p.guest.limits.memory_bytes, None, "the engine's default");
    assert_eq!(
        (
            p.guest.mounts[0].guest.as_str(),
            p.guest.mounts[0].read_only
        ),
        ("/", true)
    );

    for (k, v, want) in [
        ("dev.skiff.net", "yes", "expected `true` or `false`"),
        ("dev.skiff.rootfs", "rw", "never writable"),
        ("dev.skiff.timeout", "5", "unit"),
    ] {
        let s =
            spec(serde_json::json!({"process": {"args": ["/app.wasm"]}, "annotations": {k: v}}));
        let e = plan(&s, root.path()).unwrap_err();
        assert!(e.contains(k) && e.contains(want), "{e}");
    }
}

#[test]
fn the_program_must_be_in_the_image() {
    let root = rootfs_with_wasm();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), "x").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("link")).unwrap();
    let e = resolve_in_rootfs(root.path(), "/", "/link").unwrap_err();
    assert!(e.contains("outside the image"), "{e}");
    let e = resolve_in_rootfs(root.path(), "/", "/missing.wasm").unwrap_err();
    assert!(e.contains("not found in the image"), "{e}");
    // `..` cannot climb out either: it is dropped before the lookup.
    assert!(resolve_in_rootfs(root.path(), "/", "/../../app.wasm").is_ok());
    let s = spec(serde_json::json!({"process": {"args": []}}));
    assert!(plan(&s, root.path()).unwrap_err().contains("no command"));
    let s = spec(serde_json::json!({"process": {"args": ["/app.wasm"], "terminal": true}}));
    assert!(plan(&s, root.path()).unwrap_err().contains("terminal"));
}

#[test]
fn namespaces_and_sandbox() {
    let s = spec(serde_json::json!({"linux": {"namespaces": [{"type": "network"}]}}));
    assert_eq!(s.network_namespace(), NetNs::New);
    let s = spec(
        serde_json::json!({"linux": {"namespaces": [{"type": "network", "path": "/var/run/netns/x"}]}}),
    );
    assert_eq!(
        s.network_namespace(),
        NetNs::Join("/var/run/netns/x".into())
    );
    let s =
        spec(serde_json::json!({"annotations": {"io.kubernetes.cri.container-type": "sandbox"}}));
    assert_eq!(s.network_namespace(), NetNs::Host);
    assert!(s.is_pod_sandbox());
}

#[test]
fn http_annotations_give_the_address_and_outbound_allow_list() {
    let root = rootfs_with_wasm();
    let with = |annotations: serde_json::Value| {
        plan(
            &spec(
                serde_json::json!({"process": {"args": ["/app.wasm"]}, "annotations": annotations}),
            ),
            root.path(),
        )
    };
    assert_eq!(with(serde_json::json!({})).unwrap().http, None);
    let p = with(serde_json::json!({"dev.skiff.http.port": "8080"})).unwrap();
    assert_eq!(p.http.unwrap().listen, "0.0.0.0:8080".parse().unwrap());
    assert!(p.guest.allow_outbound.is_empty());
    let p = with(serde_json::json!({
        "dev.skiff.http.listen": "[::]:9000",
        "dev.skiff.http.allow": "https://api.example.com, http://*.internal:8080",
    }))
    .unwrap();
    assert_eq!(p.http.unwrap().listen, "[::]:9000".parse().unwrap());
    assert_eq!(
        p.guest.allow_outbound,
        ["https://api.example.com", "http://*.internal:8080"]
    );

    for (annotations, want) in [
        (
            serde_json::json!({"dev.skiff.http.port": "http"}),
            "dev.skiff.http.port=\"http\": expected a port number",
        ),
        (
            serde_json::json!({"dev.skiff.http.port": "0"}),
            "from 1 to 65535",
        ),
        (
            serde_json::json!({"dev.skiff.http.listen": "8080"}),
            "expected IP:PORT",
        ),
        (
            serde_json::json!({"dev.skiff.http.port": "80", "dev.skiff.http.listen": "[::]:80"}),
            "both set",
        ),
        (
            serde_json::json!({"dev.skiff.http.port": "80", "dev.skiff.http.allow": "ftp://x"}),
            "dev.skiff.http.allow",
        ),
    ] {
        let e = with(annotations).unwrap_err();
        assert!(e.contains(want), "{e}");
    }
}

/// Pod annotations reach every container of a pod: `KEY/CONTAINER` is one container's own.
#[test]
fn a_containers_own_annotations_come_before_the_pods() {
    let root = rootfs_with_wasm();
    let pod = serde_json::json!({
        "dev.skiff.http.port": "8080",
        "dev.skiff.http.port/api": "8081",
        "dev.skiff.net/api": "true",
        "dev.skiff.timeout": "5s",
    });
    let plan_of = |container: &str| {
        let mut annotations = pod.clone();
        annotations["io.kubernetes.cri.container-name"] = container.into();
        plan(
            &spec(
                serde_json::json!({"process": {"args": ["/app.wasm"]}, "annotations": annotations}),
            ),
            root.path(),
        )
        .unwrap()
    };
    let api = plan_of("api");
    assert_eq!(api.http.unwrap().listen, "0.0.0.0:8081".parse().unwrap());
    assert!(api.guest.network);
    assert_eq!(
        api.guest.limits.timeout_ms,
        Some(5000),
        "the pod's, where the container has none"
    );
    let web = plan_of("web");
    assert_eq!(web.http.unwrap().listen, "0.0.0.0:8080".parse().unwrap());
    assert!(!web.guest.network);
    // Outside Kubernetes (no container name) a `/NAME` key is nobody's.
    let bare = plan(
        &spec(serde_json::json!({"process": {"args": ["/app.wasm"]}, "annotations": pod})),
        root.path(),
    )
    .unwrap();
    assert_eq!(bare.http.unwrap().listen, "0.0.0.0:8080".parse().unwrap());
    assert!(!bare.guest.network);
}

/// The shim's row of the table in crates/skiff-cli/tests/guest_spec.rs: the image's env, then
/// the container's (containerd's own `WithEnv` already replaces a name in place; a spec written
/// by another tool may still repeat one), the entrypoint and the image's args. The plan's guest
/// is the very spec `skiff run`, `serve`, the daemon and `up` resolve from the same image and
/// flags.
#[test]
fn an_oci_spec_gives_the_same_guest_as_the_cli_verbs() {
    let root = rootfs_with_wasm();
    let s = spec(serde_json::json!({
        "process": {
            "args": ["/app.wasm", "from-image"],
            "env": ["A=img", "NAME=fromimage", "Z=img",
                    "A=file", "NAME=file", "B=flag", "NAME=flag-wins", "NEW=1"],
            "cwd": "/",
        },
        "mounts": [{"destination": "/data", "type": "bind", "source": "/tmp", "options": ["rbind", "ro"]}],
        "linux": {"resources": {"memory": {"limit": 67108864}}},
        "annotations": {"dev.skiff.timeout": "5s"},
    }));
    let p = plan(&s, root.path()).unwrap();
    let want: serde_json::Value =
        serde_json::from_str(include_str!("../../skiff-cli/tests/data/guest-view.json")).unwrap();
    assert_eq!(serde_json::to_value(&p.guest).unwrap(), want);
}
