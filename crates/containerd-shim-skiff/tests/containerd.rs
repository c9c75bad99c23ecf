//! The shim under a real containerd, driven with `ctr` as a user would.

mod common;

use common::{guest, text, Containerd};

#[test]
fn ctr_run_prints_the_guests_output_and_passes_only_the_specs_env() {
    let c = Containerd::start();
    c.import(
        "example.com/skiff/hello:1.0",
        guest("hello.wasm"),
        &["world"],
    );
    let out = c.run(
        &["--env", "NAME=ctr"],
        "example.com/skiff/hello:1.0",
        "hello",
        &[],
    );
    let s = text(&out);
    assert!(out.status.success(), "{s}");
    assert!(s.contains("hello from skiff"), "{s}");
    // The entrypoint is the .wasm, the image's Cmd its arguments.
    assert!(
        s.contains("arg[0]=/app.wasm") && s.contains("arg[1]=world"),
        "{s}"
    );
    assert!(s.contains("NAME=ctr"), "{s}");
    // Deny by default: no mount, no file; the image's own filesystem is not visible either.
    assert!(s.contains("read: error"), "{s}");
    assert!(s.contains("write: skipped (no /out)"), "{s}");
}

#[test]
fn wasi_p2_command_components_run() {
    let c = Containerd::start();
    c.import(
        "example.com/skiff/hello-p2:1.0",
        guest("hello-p2.wasm"),
        &[],
    );
    let out = c.run(&[], "example.com/skiff/hello-p2:1.0", "hello-p2", &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("hello"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_guests_exit_status_is_the_tasks() {
    let c = Containerd::start();
    c.import("example.com/skiff/exit:1.0", guest("exit-code.wasm"), &[]);
    // ctr's own exit status is the task's.
    let out = c.run(
        &[],
        "example.com/skiff/exit:1.0",
        "exit7",
        &["/app.wasm", "7"],
    );
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    let out = c.run(
        &[],
        "example.com/skiff/exit:1.0",
        "exit0",
        &["/app.wasm", "0"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn mounts_are_granted_read_only_when_the_spec_says_ro() {
    let c = Containerd::start();
    c.import("example.com/skiff/hello:1.0", guest("hello.wasm"), &[]);
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("in.txt"), "from the host\n").unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let data_mount = format!(
        "type=bind,src={},dst=/data,options=rbind:ro",
        data.path().display()
    );
    let ro_out = format!(
        "type=bind,src={},dst=/out,options=rbind:ro",
        out_dir.path().display()
    );
    let out = c.run(
        &["--mount", &data_mount, "--mount", &ro_out],
        "example.com/skiff/hello:1.0",
        "ro",
        &[],
    );
    let s = text(&out);
    assert!(s.contains("read: from the host"), "{s}");
    assert!(s.contains("write: error"), "{s}");
    assert!(!out_dir.path().join("out.txt").exists());

    let rw_out = format!(
        "type=bind,src={},dst=/out,options=rbind:rw",
        out_dir.path().display()
    );
    let out = c.run(
        &["--mount", &rw_out],
        "example.com/skiff/hello:1.0",
        "rw",
        &[],
    );
    assert!(text(&out).contains("write: ok"), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(out_dir.path().join("out.txt")).unwrap(),
        "written by hello\n"
    );
}

#[test]
fn nothing_outside_a_mount_is_reachable() {
    let c = Containerd::start();
    c.import("example.com/skiff/escape:1.0", guest("escape.wasm"), &[]);
    let data = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc/passwd", data.path().join("link")).unwrap();
    std::os::unix::fs::symlink("/etc", data.path().join("dirlink")).unwrap();
    let mount = format!(
        "type=bind,src={},dst=/data,options=rbind:ro",
        data.path().display()
    );
    let out = c.run(
        &["--mount", &mount],
        "example.com/skiff/escape:1.0",
        "escape",
        &[],
    );
    let s = text(&out);
    assert!(out.status.success(), "{s}");
    assert!(!s.contains("ESCAPED"), "{s}");
    assert!(s.contains("absolute: denied"), "{s}");
}

#[test]
fn the_memory_limit_caps_linear_memory() {
    let c = Containerd::start();
    c.import("example.com/skiff/hog:1.0", guest("memory-hog.wasm"), &[]);
    let out = c.run(
        &["--memory-limit", "16777216"],
        "example.com/skiff/hog:1.0",
        "hog",
        &[],
    );
    let s = text(&out);
    assert_eq!(out.status.code(), Some(137), "{s}");
    assert!(s.contains("memory limit") && s.contains("16 MiB"), "{s}");
}

#[test]
fn the_memory_limit_counts_every_memory_and_table_together() {
    let c = Containerd::start();
    let limit = ["--memory-limit", "16777216"];
    // Import guests/wasm/NAME.wasm as an image and `ctr run` it once, as container NAME.
    let run = |name: &str, extra: &[&str]| {
        let image = format!("example.com/skiff/{name}:1.0");
        c.import(&image, guest(&format!("{name}.wasm")), &[]);
        c.run(extra, &image, name, &[])
    };
    for (name, need) in [
        // One table.grow of 200M funcrefs: 1.6 GB of host memory in one instruction, and no
        // linear memory growth at all.
        ("table-hog", "would need 1.5 GiB"),
        // 16 memories of 15 MiB each: every one alone fits under 16 MiB, together they do not.
        ("many-memories", "would need"),
    ] {
        let out = run(name, &limit);
        let s = text(&out);
        assert_eq!(out.status.code(), Some(137), "{name}: {s}");
        assert!(
            s.contains(&format!("memories and tables together {need}"))
                && s.contains("past the limit of 16 MiB (the container's memory limit)"),
            "{name}: {s}"
        );
    }
    // 17 memories: refused before it runs, whatever the limit.
    let out = run("too-many-memories", &[]);
    let s = text(&out);
    assert_eq!(out.status.code(), Some(126), "{s}");
    assert!(s.contains("at most 16 linear memories"), "{s}");
    // The same containerd and shim still run a well-behaved guest under the same limit.
    let out = run("hello", &limit);
    let s = text(&out);
    assert!(out.status.success(), "{s}");
    assert!(s.contains("hello from skiff"), "{s}");
}

/// The timeout annotation ends a guest wherever it is: here asleep in a host call (ticker
/// prints its first tick, then sleeps an hour), where no epoch check reaches it. A shim that
/// only interrupted wasm code would hold this test for the hour.
#[test]
fn a_guest_asleep_past_its_timeout_annotation_is_stopped_with_124() {
    let c = Containerd::start();
    c.import("example.com/skiff/ticker:1.0", guest("ticker.wasm"), &[]);
    let out = c.run(
        &["--annotation", "dev.skiff.timeout=500ms"],
        "example.com/skiff/ticker:1.0",
        "sleeper",
        &["/app.wasm", "1", "3600000"],
    );
    let s = text(&out);
    assert_eq!(out.status.code(), Some(124), "{s}");
    assert!(s.contains("tick 1"), "{s}");
    assert!(
        s.contains("the guest ran longer than 500ms (annotation dev.skiff.timeout)"),
        "{s}"
    );
}

#[test]
fn kill_stops_a_looping_guest_with_sigterm_and_sigkill() {
    let c = Containerd::start();
    c.import("example.com/skiff/loop:1.0", guest("loop.wasm"), &[]);
    for (id, signal, status) in [("term", "SIGTERM", 143), ("kill", "SIGKILL", 137)] {
        c.run_detached(&[], "example.com/skiff/loop:1.0", id);
        let out = c.ctr(&["task", "kill", "-s", signal, id]);
        assert!(out.status.success(), "{}", text(&out));
        c.wait_for_status(id, "STOPPED");
        let out = c.ctr(&["task", "delete", id]);
        assert!(out.status.success(), "{}", text(&out));
        let s = text(&out);
        assert!(s.contains(&format!("{status}")), "{signal}: {s}");
        c.ctr(&["containers", "delete", id]);
    }
}

#[test]
fn exec_and_non_command_binaries_are_refused_with_a_reason() {
    let c = Containerd::start();
    c.import("example.com/skiff/loop:1.0", guest("loop.wasm"), &[]);
    c.run_detached(&[], "example.com/skiff/loop:1.0", "looper");
    let out = c.ctr(&["task", "exec", "--exec-id", "sh", "looper", "/bin/sh"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("cannot exec"), "{}", text(&out));

    c.import("example.com/skiff/lib:1.0", guest("library.wasm"), &[]);
    let out = c.run(&[], "example.com/skiff/lib:1.0", "lib", &[]);
    assert!(!out.status.success());
    assert!(text(&out).contains("no entry point"), "{}", text(&out));
}

#[test]
fn a_new_network_namespace_has_its_loopback_up_and_sockets_need_the_grant() {
    let c = Containerd::start();
    c.import("example.com/skiff/socket:1.0", guest("socket.wasm"), &[]);
    // `ctr run` without --net-host: a new namespace, where only `lo` exists. As with runc it is
    // up, so a connection to a closed port is refused rather than finding no network.
    let out = c.run(
        &["--annotation", "dev.skiff.net=true"],
        "example.com/skiff/socket:1.0",
        "net",
        &["/app.wasm", "127.0.0.1:1"],
    );
    let s = text(&out);
    assert!(out.status.success(), "{s}");
    assert!(
        s.contains("connect: denied") && s.contains("refused"),
        "{s}"
    );
    // Without the grant the guest has no socket at all.
    let out = c.run(
        &[],
        "example.com/skiff/socket:1.0",
        "nonet",
        &["/app.wasm", "127.0.0.1:1"],
    );
    let s = text(&out);
    assert!(
        s.contains("connect: denied") && !s.contains("refused"),
        "{s}"
    );
}
