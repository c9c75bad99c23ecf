//! skiff-oci driven directly, as containerd's runc shim and conmon drive it: create, state,
//! start, kill, delete on a bundle made here. This test process is the container process's
//! subreaper (as those callers are), so it reaps the guest and sees its exit status.

#[allow(dead_code)] // each test file uses part of the harness
mod common;

use common::{guest, text};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn oci(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skiff-oci"))
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run skiff-oci")
}

fn state(root: &Path, id: &str) -> serde_json::Value {
    let out = oci(root, &["state", id]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn bundle(dir: &Path, program: &Path, args: &[&str]) {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    std::fs::copy(program, rootfs.join("app")).unwrap();
    let mut argv = vec!["/app"];
    argv.extend_from_slice(args);
    let spec = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {"args": argv, "env": ["NAME=cli"], "cwd": "/"},
        "root": {"path": "rootfs"},
        "linux": {"namespaces": [{"type": "network"}]},
    });
    std::fs::write(dir.join("config.json"), spec.to_string()).unwrap();
}

#[test]
fn create_start_state_kill_delete_as_runc_callers_do() {
    common::assert_root("skiff-oci (a network namespace per container)");
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER has no memory effects.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) }, 0);
    let root = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    bundle(b.path(), &guest("ticker.wasm"), &["0", "20"]);
    let pid_file = b.path().join("pid");
    let log = b.path().join("out.log");
    // The container's stdout is create's: a file here, as the caller's pipe would be.
    let status = Command::new(env!("CARGO_BIN_EXE_skiff-oci"))
        .arg("--root")
        .arg(root.path())
        .args(["create", "--bundle"])
        .arg(b.path())
        .arg("--pid-file")
        .arg(&pid_file)
        .arg("tick")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let s = state(root.path(), "tick");
    assert_eq!(s["status"], "created", "{s}");
    assert_eq!(s["pid"], pid, "{s}");
    assert_eq!(s["id"], "tick", "{s}");
    // Blocked until start: no output yet.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "");

    let out = oci(root.path(), &["start", "tick"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(state(root.path(), "tick")["status"], "running");
    let out = oci(root.path(), &["start", "tick"]);
    assert!(
        text(&out).contains("is running, not created"),
        "{}",
        text(&out)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log).unwrap().contains("tick 2") {
        assert!(Instant::now() < deadline, "the guest never ticked");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = oci(root.path(), &["delete", "tick"]);
    assert!(text(&out).contains("stop it first"), "{}", text(&out));

    let out = oci(root.path(), &["kill", "tick", "SIGTERM"]);
    assert!(out.status.success(), "{}", text(&out));
    let mut wstatus = 0;
    // SAFETY: waitpid on a process this one is the subreaper of, with a valid out-pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut wstatus, 0) }, pid);
    assert!(libc::WIFSIGNALED(wstatus) && libc::WTERMSIG(wstatus) == libc::SIGTERM);
    let s = state(root.path(), "tick");
    assert_eq!(s["status"], "stopped", "{s}");
    assert_eq!(s["pid"], 0, "{s}");
    let out = oci(root.path(), &["kill", "tick", "KILL"]);
    assert!(text(&out).contains("is not running"), "{}", text(&out));
    let out = oci(root.path(), &["delete", "tick"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = oci(root.path(), &["state", "tick"]);
    assert!(
        text(&out).contains("container tick does not exist"),
        "{}",
        text(&out)
    );
    // As runc: deleting what is gone succeeds with --force.
    assert!(oci(root.path(), &["delete", "--force", "tick"])
        .status
        .success());
}

#[test]
fn the_guests_exit_status_is_the_processs() {
    common::assert_root("skiff-oci");
    // SAFETY: as above.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) }, 0);
    let root = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    bundle(b.path(), &guest("exit-code.wasm"), &["42"]);
    let pid_file = b.path().join("pid");
    // `--flag=value` too. The container's stdout (create's) is not a pipe this test reads to
    // its end: that would wait for the container.
    let status = Command::new(env!("CARGO_BIN_EXE_skiff-oci"))
        .arg(format!("--root={}", root.path().display()))
        .arg("create")
        .arg(format!("--bundle={}", b.path().display()))
        .arg("--pid-file")
        .arg(&pid_file)
        .arg("x")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    // The same id twice is refused, and the first container is left as it was.
    let out = oci(
        root.path(),
        &["create", "--bundle", b.path().to_str().unwrap(), "x"],
    );
    assert!(
        text(&out).contains("container x already exists"),
        "{}",
        text(&out)
    );
    assert!(oci(root.path(), &["start", "x"]).status.success());
    let mut wstatus = 0;
    // SAFETY: as above.
    assert_eq!(unsafe { libc::waitpid(pid, &mut wstatus, 0) }, pid);
    assert!(
        libc::WIFEXITED(wstatus) && libc::WEXITSTATUS(wstatus) == 42,
        "{wstatus}"
    );
    assert!(oci(root.path(), &["delete", "x"]).status.success());
}

#[test]
fn refusals_say_why_and_leave_no_state_behind() {
    let root = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    bundle(b.path(), Path::new("/bin/sh"), &[]);
    let log = b.path().join("runtime.log");
    let out = Command::new(env!("CARGO_BIN_EXE_skiff-oci"))
        .arg("--root")
        .arg(root.path())
        .arg("--log")
        .arg(&log)
        .args([
            "--log-format",
            "json",
            "--systemd-cgroup",
            "create",
            "--bundle",
        ])
        .arg(b.path())
        .arg("sh")
        .output()
        .unwrap();
    let s = text(&out);
    assert_eq!(out.status.code(), Some(1), "{s}");
    assert!(
        s.contains("not a WebAssembly container") && s.contains("/app"),
        "{s}"
    );
    // The caller's log gets the same reason, in runc's JSON.
    let line: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&log).unwrap().trim()).unwrap();
    assert_eq!(line["level"], "error");
    assert!(line["msg"]
        .as_str()
        .unwrap()
        .contains("not a WebAssembly container"));
    assert!(!root.path().join("sh").exists());

    for (args, expect) in [
        (&["exec", "sh"][..], "cannot exec"),
        (&["checkpoint", "sh"][..], "cannot be checkpointed"),
        (&["kill", "sh", "NOPE"][..], "unknown signal"),
        (&["create", "--bundle"][..], "needs a value"),
        (&["state", "a/b"][..], "not a valid container id"),
        (&["frobnicate"][..], "unknown command"),
    ] {
        let out = oci(root.path(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(expect), "{args:?}: {}", text(&out));
    }
    let out = oci(root.path(), &["--version"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("skiff-oci version "));
    let out = oci(root.path(), &["features"]);
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f["annotations"]["run.oci.handler"], "wasm", "{f}");
}

/// The six hooks run where the runtime-spec puts them, each with the state on its stdin:
/// prestart, createRuntime (the runtime's namespace) and createContainer (the container's) in
/// create, once the process exists; startContainer in the container before the guest; poststart
/// in start; poststop in delete. A failing or hanging create hook fails the create with its
/// output and leaves nothing behind.
#[test]
fn hooks_run_at_their_stage_with_the_state_and_a_failing_one_fails_create() {
    common::assert_root("skiff-oci (a network namespace per container)");
    // SAFETY: as above.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) }, 0);
    let root = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let seen = tempfile::tempdir().unwrap();
    bundle(b.path(), &guest("ticker.wasm"), &["0", "20"]);
    // Each hook records its stage, its stdin and its network namespace.
    let script = format!(
        "cat > {0}/$0.json; readlink /proc/self/ns/net > {0}/$0.ns; echo $0 >> {0}/order",
        seen.path().display()
    );
    let hook =
        |stage: &str| serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", script, stage]});
    let stages = [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ];
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.path().join("config.json")).unwrap()).unwrap();
    spec["hooks"] = stages
        .iter()
        .map(|s| (s.to_string(), serde_json::json!([hook(s)])))
        .collect();
    std::fs::write(b.path().join("config.json"), spec.to_string()).unwrap();
    let read = |name: &str| std::fs::read_to_string(seen.path().join(name)).unwrap_or_default();
    let state_of = |stage: &str| -> serde_json::Value {
        serde_json::from_str(&read(&format!("{stage}.json"))).unwrap()
    };

    let pid_file = b.path().join("pid");
    let out = Command::new(env!("CARGO_BIN_EXE_skiff-oci"))
        .arg("--root")
        .arg(root.path())
        .args(["create", "--bundle"])
        .arg(b.path())
        .arg("--pid-file")
        .arg(&pid_file)
        .arg("hooked")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(out.success());
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert_eq!(read("order"), "prestart\ncreateRuntime\ncreateContainer\n");
    let s = state_of("prestart");
    assert_eq!(
        (s["id"].as_str(), s["pid"].as_i64()),
        (Some("hooked"), Some(pid as i64)),
        "{s}"
    );
    assert_eq!(s["status"], "creating", "{s}");
    assert_eq!(
        s["bundle"],
        b.path().canonicalize().unwrap().to_str().unwrap(),
        "{s}"
    );
    let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_ne!(ours, theirs);
    let ns = |stage: &str| read(&format!("{stage}.ns")).trim().to_string();
    assert_eq!(ns("prestart"), ours.to_str().unwrap());
    assert_eq!(ns("createRuntime"), ours.to_str().unwrap());
    assert_eq!(ns("createContainer"), theirs.to_str().unwrap());

    assert!(oci(root.path(), &["start", "hooked"]).status.success());
    // poststart has run when start returns; startContainer runs in the container, before the
    // guest, once start has let it go.
    assert_eq!(state_of("poststart")["status"], "running");
    let deadline = Instant::now() + Duration::from_secs(30);
    while ns("startContainer").is_empty() {
        assert!(Instant::now() < deadline, "startContainer never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(ns("startContainer"), theirs.to_str().unwrap());
    assert!(read("poststop.json").is_empty());
    assert!(oci(root.path(), &["kill", "hooked", "KILL"])
        .status
        .success());
    let mut wstatus = 0;
    // SAFETY: as above.
    assert_eq!(unsafe { libc::waitpid(pid, &mut wstatus, 0) }, pid);
    assert!(oci(root.path(), &["delete", "hooked"]).status.success());
    assert_eq!(state_of("poststop")["status"], "stopped");
    assert!(read("order").ends_with("poststop\n"), "{}", read("order"));

    // A failing prestart hook fails the create with its output; so does one that outlives its
    // timeout. Either way nothing is left: no state, no process.
    for (hook, expect) in [
        (
            serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "echo no bridge here >&2; exit 3"]}),
            "prestart hook /bin/sh -c echo no bridge here >&2; exit 3: exited with status 3: no bridge here",
        ),
        (
            serde_json::json!({"path": "/bin/sleep", "args": ["sleep", "600"], "timeout": 1}),
            "prestart hook /bin/sleep 600: did not finish within its timeout of 1 s; killed",
        ),
    ] {
        spec["hooks"] = serde_json::json!({"prestart": [hook]});
        std::fs::write(b.path().join("config.json"), spec.to_string()).unwrap();
        let out = oci(
            root.path(),
            &["create", "--bundle", b.path().to_str().unwrap(), "refused"],
        );
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains(expect), "{}", text(&out));
        assert!(!root.path().join("refused").exists());
        // The container's process was ended (and reaped) by create.
        let init = format!("{}/refused", root.path().display());
        let alive = std::fs::read_dir("/proc").unwrap().flatten().any(|p| {
            std::fs::read(p.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&init))
        });
        assert!(!alive, "the container's process outlived the failed create");
    }
}
