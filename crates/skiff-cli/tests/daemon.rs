//! `skiff daemon` and the verbs that talk to it, against the real daemon process and socket.

mod common;

use common::daemon::Daemon;
use common::{guest, Skiff};
use std::os::unix::fs::PermissionsExt;

fn g(name: &str) -> String {
    guest(name).display().to_string()
}

#[test]
fn run_detached_then_ps_logs_stop_start_rm() {
    let d = Daemon::start(&[]);
    let out = d.run(&["run", "-d", "--name", "job", &g("ticker.wasm"), "0", "20"]);
    out.code(0);
    let id = out.stdout.trim().to_string();
    assert_eq!(id.len(), 64, "run -d prints the full id: {out}");
    d.wait_log("job", "a tick", |l| l.iter().any(|l| l == "tick 2"));

    let ps = d.run(&["ps"]);
    ps.code(0)
        .stdout_has("ID")
        .stdout_has("NAME")
        .stdout_has("ROUTE");
    ps.stdout_has(&id[..12])
        .stdout_has("job")
        .stdout_has("ticker.wasm")
        .stdout_has("task")
        .stdout_has("Up ");
    let json: serde_json::Value =
        serde_json::from_str(&d.run(&["ps", "--format", "json"]).stdout).unwrap();
    assert_eq!(json[0]["name"], "job");
    assert_eq!(json[0]["kind"], "task");

    // --tail and stderr kept apart.
    let tail = d.run(&["logs", "--tail", "1", "job"]);
    assert_eq!(
        tail.code(0).stdout.lines().count() + tail.stderr.lines().count(),
        1,
        "{tail}"
    );
    d.wait_for("job", "noisy on stderr", |_| {
        d.run(&["logs", "job"]).stderr.contains("tock 10")
    });

    // A unique id prefix names it, as in Docker.
    let w = d.inspect(&id[..8]);
    assert_eq!(w["name"], "job");
    let inspect = d.run(&["inspect", "job"]);
    inspect
        .code(0)
        .stdout_has(&id)
        .stdout_has("\"status\": \"running\"");

    // A name is unique.
    d.run(&["run", "-d", "--name", "job", &g("ticker.wasm")])
        .code(125)
        .stderr_has("already in use");

    // rm refuses a running workload; stop, start, rm -f.
    d.run(&["rm", "job"]).code(1).stderr_has("is running");
    d.run(&["stop", "job"]).code(0).stdout_has("job");
    d.run(&["ps"]).code(0).stdout_lacks("job");
    d.run(&["ps", "-a"]).code(0).stdout_has("Stopped");
    assert_eq!(d.inspect("job")["desired"], "stopped");
    d.run(&["start", "job"]).code(0);
    d.wait_status("job", "running");
    let log = d.skiff.home.path().join(format!("daemon/logs/{id}.log"));
    assert!(log.exists(), "{}", log.display());
    d.run(&["rm", "-f", "job"]).code(0);
    d.run(&["ps", "-a"]).code(0).stdout_lacks("job");
    d.run(&["logs", "job"])
        .code(1)
        .stderr_has("no such workload");
    assert!(!log.exists(), "rm removes the logs");
}

#[test]
fn without_a_daemon_the_cli_says_how_to_start_one() {
    let s = Skiff::new();
    s.run(&["ps"]).code(1).stderr_has("skiff daemon &");
    s.run(&["run", "-d", &g("hello.wasm")])
        .code(125)
        .stderr_has("skiff daemon &");
    // The foreground run needs no daemon.
    s.run(
        &[&"run".to_string(), &g("hello.wasm")][..]
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
    )
    .code(0)
    .stdout_has("hello from skiff");
}

#[test]
fn restart_policies() {
    let d = Daemon::start(&[]);
    let exit1 = g("exit-code.wasm");
    d.run(&[
        "run",
        "-d",
        "--name",
        "three",
        "--restart",
        "on-failure:3",
        &exit1,
        "1",
    ])
    .code(0);
    d.run(&["run", "-d", "--name", "never", &exit1, "1"])
        .code(0);
    d.run(&[
        "run",
        "-d",
        "--name",
        "fine",
        "--restart",
        "on-failure",
        &exit1,
        "0",
    ])
    .code(0);
    d.run(&[
        "run",
        "-d",
        "--name",
        "again",
        "--restart",
        "always",
        &exit1,
        "0",
    ])
    .code(0);

    let w = d.wait_status("three", "exited");
    assert_eq!(w["state"]["restart_count"], 3, "{w:#}");
    assert_eq!(w["state"]["exit_code"], 1);
    assert_eq!(w["desired"], "stopped");
    let w = d.wait_status("never", "exited");
    assert_eq!(w["state"]["restart_count"], 0, "{w:#}");
    let w = d.wait_status("fine", "exited");
    assert_eq!(
        w["state"]["restart_count"], 0,
        "on-failure does not restart a success: {w:#}"
    );
    assert_eq!(w["state"]["exit_code"], 0);
    // always: a success is restarted too, until stopped.
    d.wait_for("again", "restarted twice", |w| {
        w["state"]["restart_count"].as_u64() >= Some(2)
    });
    d.run(&["stop", "again"]).code(0);
    let w = d.inspect("again");
    assert_eq!(w["state"]["status"], "stopped");
    let count = w["state"]["restart_count"].clone();
    assert_eq!(
        d.inspect("again")["state"]["restart_count"],
        count,
        "a stopped workload is not restarted"
    );

    // Bad policies are refused before anything is sent.
    d.run(&["run", "-d", "--restart", "sometimes", &exit1])
        .code(125)
        .stderr_has("on-failure");
    d.run(&["run", "--restart", "always", &exit1])
        .code(125)
        .stderr_has("--detach");
}

#[test]
fn a_crash_loop_backs_off_exponentially() {
    let d = Daemon::start(&[]);
    d.run(&[
        "run",
        "-d",
        "--name",
        "crashy",
        "--restart",
        "always",
        &g("trap.wasm"),
    ])
    .code(0);
    // Each restart records the wait before the next start; it doubles per consecutive failure.
    let mut seen = std::collections::BTreeMap::new();
    d.wait_for("crashy", "restarted four times", |w| {
        if let (Some(n), Some(ms)) = (
            w["state"]["restart_count"].as_u64(),
            w["state"]["restart_delay_ms"].as_u64(),
        ) {
            seen.entry(n).or_insert(ms);
        }
        seen.len() >= 4
    });
    for (n, ms) in &seen {
        assert_eq!(*ms, 100 << (n - 1), "restart {n} waited {ms} ms: {seen:?}");
    }
    let w = d.inspect("crashy");
    assert_eq!(w["state"]["exit_code"], 134);
    assert!(
        w["state"]["error"].as_str().unwrap().contains("trap"),
        "{w:#}"
    );
    d.run(&["rm", "-f", "crashy"]).code(0);
}

#[test]
fn kill9_recovery_runs_each_workload_that_should_run_exactly_once() {
    let mut d = Daemon::start(&[]);
    let ticker = g("ticker.wasm");
    d.run(&[
        "run",
        "-d",
        "--name",
        "svc",
        "--restart",
        "always",
        &ticker,
        "0",
        "20",
    ])
    .code(0);
    d.run(&[
        "run",
        "-d",
        "--name",
        "oneshot",
        "--restart",
        "on-failure",
        &ticker,
        "3",
        "0",
    ])
    .code(0);
    d.run(&["run", "-d", "--name", "plain", &ticker, "0", "20"])
        .code(0);
    d.run(&[
        "run",
        "-d",
        "--name",
        "held",
        "--restart",
        "always",
        &ticker,
        "0",
        "20",
    ])
    .code(0);
    d.run(&["stop", "held"]).code(0);
    d.wait_status("oneshot", "exited");
    d.wait_log("svc", "ticking", |l| l.iter().any(|l| l == "tick 3"));
    d.wait_log("plain", "ticking", |l| l.iter().any(|l| l == "tick 1"));

    d.restart_after_kill9();

    // svc: running again, exactly one instance (its ticks after the restart are one sequence).
    d.wait_status("svc", "running");
    let lines = d.wait_log("svc", "ticking again", |l| {
        l.iter().filter(|l| *l == "tick 1").count() == 2
            && l.iter().any(|l| l == "tick 5")
            && l.iter().rposition(|l| l == "tick 1") < l.iter().rposition(|l| l == "tick 5")
    });
    let after: Vec<&String> = lines[lines.iter().rposition(|l| l == "tick 1").unwrap()..]
        .iter()
        .filter(|l| l.starts_with("tick"))
        .collect();
    for (i, l) in after.iter().enumerate() {
        assert_eq!(
            **l,
            format!("tick {}", i + 1),
            "two instances would interleave: {after:?}"
        );
    }
    // oneshot ran to completion before: not run again.
    let w = d.inspect("oneshot");
    assert_eq!(w["state"]["status"], "exited");
    let ticks = d
        .log_lines("oneshot")
        .iter()
        .filter(|l| l.starts_with("tick"))
        .count();
    assert_eq!(ticks, 3, "a finished task does not run twice");
    // plain (restart policy no): the daemon's death ended its run; it is not started again.
    let w = d.inspect("plain");
    assert_eq!(w["state"]["status"], "exited");
    assert!(
        w["state"]["error"]
            .as_str()
            .unwrap()
            .contains("daemon stopped"),
        "{w:#}"
    );
    // held was stopped by the operator and stays stopped.
    assert_eq!(d.inspect("held")["state"]["status"], "stopped");

    // A second daemon on the same home would run everything twice: it refuses.
    d.run(&["daemon"]).code(125).stderr_has("already running");
}

#[test]
fn tcp_api_requires_the_token_and_files_are_owner_only() {
    let d = Daemon::start(&["--api-listen", "127.0.0.1:0"]);
    let home = d.skiff.home.path();
    let mode = |p: &str| {
        std::fs::metadata(home.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("daemon/skiff.sock"), 0o600);
    assert_eq!(mode("daemon/token"), 0o600);
    assert_eq!(mode("daemon"), 0o700);
    let addr = std::fs::read_to_string(home.join("daemon/api-addr"))
        .unwrap()
        .trim()
        .to_string();
    let token = std::fs::read_to_string(home.join("daemon/token"))
        .unwrap()
        .trim()
        .to_string();
    let curl = |extra: &[&str]| {
        let o = std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(extra)
            .arg(format!("http://{addr}/v1/workloads"))
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(curl(&[]), "401");
    assert_eq!(curl(&["-H", "Authorization: Bearer wrong"]), "401");
    assert_eq!(
        curl(&["-H", &format!("Authorization: Bearer {token}")]),
        "200"
    );
    // The CLI over TCP: the token from SKIFF_TOKEN.
    let host = format!("tcp://{addr}");
    let out = d
        .skiff
        .cmd()
        .args(["--host", &host, "ps"])
        .env("SKIFF_TOKEN", &token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = d
        .skiff
        .cmd()
        .args(["--host", &host, "ps"])
        .env("SKIFF_TOKEN", "nope")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("token"));
}

#[test]
fn bad_input_gets_a_reason_and_changes_nothing() {
    let d = Daemon::start(&[]);
    let (status, body) = d.api("POST", "/v1/workloads", Some("{not json"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid JSON body"), "{body}");
    let (status, body) = d.api(
        "POST",
        "/v1/workloads",
        Some(r#"{"spec":{"image":"sha256:00","imag":1}}"#),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("unknown field"), "{body}");
    let missing = format!(r#"{{"spec":{{"image":"sha256:{}"}}}}"#, "0".repeat(64));
    let (status, body) = d.api("POST", "/v1/workloads", Some(&missing));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("upload it first"), "{body}");
    let (status, body) = d.api("GET", "/v1/nope", None);
    assert_eq!(status, 404, "{body}");
    let (status, _) = d.api("PATCH", "/v1/workloads", None);
    assert_eq!(status, 405);
    // Not a command: refused with what it is.
    d.run(&["run", "-d", &g("library.wasm")])
        .code(125)
        .stderr_has("library");
    d.run(&["run", "-d", &g("not-wasm.txt")]).code(125);
    let (_, list) = d.api("GET", "/v1/workloads?all=true", None);
    assert_eq!(list.trim(), "[]");
}

#[test]
fn two_runs_with_one_name_at_once_one_wins() {
    let d = Daemon::start(&[]);
    let ticker = g("ticker.wasm");
    let spawn = || {
        d.skiff
            .cmd()
            .args(["run", "-d", "--name", "x", &ticker, "0", "50"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let wins = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(wins, 1, "exactly one wins");
    let loser = outs.iter().find(|o| !o.status.success()).unwrap();
    let err = String::from_utf8_lossy(&loser.stderr);
    assert!(err.contains("the name x is already in use"), "{err}");
    let (_, list) = d.api("GET", "/v1/workloads?all=true", None);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&list)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Without --name, a unique name is made from the file's name.
    for _ in 0..2 {
        d.run(&["run", "-d", &ticker, "1", "0"]).code(0);
    }
    let (_, list) = d.api("GET", "/v1/workloads?all=true", None);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let mut names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(
        names.iter().filter(|n| n.starts_with("ticker-")).count(),
        2,
        "{names:?}"
    );
}

#[test]
fn logs_rotate_by_size_and_follow_ends_with_the_workload() {
    let d = Daemon::start(&["--log-max-size", "2k", "--log-max-files", "2"]);
    d.run(&[
        "run",
        "-d",
        "--name",
        "chatty",
        &g("ticker.wasm"),
        "300",
        "1",
    ])
    .code(0);
    // -f streams every line, in order, across rotations, and returns when the task ends.
    let f = d.run(&["logs", "-f", "chatty"]);
    f.code(0);
    d.wait_status("chatty", "exited");
    let dir = d.skiff.home.path().join("daemon/logs");
    let id = d.inspect("chatty")["id"].as_str().unwrap().to_string();
    let file = |suffix: &str| dir.join(format!("{id}{suffix}"));
    assert!(file(".log").exists());
    assert!(file(".log.1").exists());
    assert!(
        !file(".log.2").exists(),
        "only --log-max-files files are kept"
    );
    for f in [".log", ".log.1"] {
        assert!(std::fs::metadata(file(f)).unwrap().len() <= 2048);
    }
    let kept: Vec<String> = d.log_lines("chatty");
    assert_eq!(kept.last().unwrap(), "tick 300");
    let first: u32 = kept[0].strip_prefix("tick ").unwrap().parse().unwrap();
    for (i, l) in kept.iter().enumerate() {
        assert_eq!(
            *l,
            format!("tick {}", first + i as u32),
            "kept lines are whole and in order"
        );
    }
    let followed: Vec<&str> = f.stdout.lines().collect();
    assert_eq!(followed.last(), Some(&"tick 300"), "{f}");
}

#[test]
fn up_is_idempotent_and_down_removes_the_project() {
    let d = Daemon::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let proj = dir.path().join("shop");
    std::fs::create_dir(&proj).unwrap();
    std::fs::copy(guest("ticker.wasm"), proj.join("ticker.wasm")).unwrap();
    std::fs::copy(guest("exit-code.wasm"), proj.join("exit-code.wasm")).unwrap();
    let file = proj.join("skiff-compose.toml");
    let write = |text: &str| std::fs::write(&file, text).unwrap();
    write(
        r#"
[workloads.worker]
image = "ticker.wasm"
args = ["0", "50"]
restart = "always"
memory = "32m"
env = { LEVEL = "info" }

[workloads.once]
image = "exit-code.wasm"
args = ["0"]
"#,
    );
    let f = file.display().to_string();
    let up = d.run(&["up", "-f", &f]);
    up.code(0)
        .stdout_has("created    once")
        .stdout_has("created    worker");
    d.wait_status("worker", "running");
    d.wait_status("once", "exited");
    assert_eq!(d.inspect("worker")["project"], "shop");
    assert_eq!(
        d.inspect("worker")["spec"]["limits"]["memory_bytes"],
        32 << 20
    );
    let id = d.inspect("worker")["id"].clone();

    d.run(&["up", "-f", &f])
        .code(0)
        .stdout_has("unchanged  once")
        .stdout_has("unchanged  worker")
        .stdout_lacks("created");
    assert_eq!(d.inspect("worker")["id"], id, "a second up changes nothing");

    write(
        r#"
[workloads.worker]
image = "ticker.wasm"
args = ["0", "40"]
restart = "always"
memory = "32m"
env = { LEVEL = "info" }
"#,
    );
    d.run(&["up", "-f", &f])
        .code(0)
        .stdout_has("replaced   worker")
        .stdout_has("removed    once");
    assert_ne!(d.inspect("worker")["id"], id);
    d.run(&["ps", "-a"]).code(0).stdout_lacks("once");

    // A bad file changes nothing.
    write("[workloads.worker]\nimage = \"missing.wasm\"\n");
    d.run(&["up", "-f", &f]).code(127);
    d.wait_status("worker", "running");

    d.run(&["down", "-f", &f])
        .code(0)
        .stdout_has("removed    worker");
    d.run(&["ps", "-a"]).code(0).stdout_lacks("worker");
}

#[test]
fn system_info_reports_the_node() {
    let d = Daemon::start(&[]);
    d.run(&["run", "-d", "--name", "t", &g("ticker.wasm")])
        .code(0);
    d.wait_status("t", "running");
    let out = d.run(&["system", "info", "--format", "json"]);
    let i: serde_json::Value = serde_json::from_str(&out.code(0).stdout).unwrap();
    assert_eq!(i["wasmtime_version"], "48.0.8");
    assert_eq!(i["workloads"]["running"], 1);
    assert_eq!(i["workloads"]["tasks"], 1);
    assert!(i["memory"]["rss_bytes"].as_u64().unwrap() > 0);
    d.run(&["system", "info"])
        .code(0)
        .stdout_has("Workloads:")
        .stdout_has("1 running");
}

#[test]
fn openapi_is_served() {
    let d = Daemon::start(&[]);
    let (status, body) = d.api("GET", "/openapi.json", None);
    assert_eq!(status, 200);
    let committed = std::fs::read_to_string(format!(
        "{}/../../docs/api/openapi.json",
        std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")
    ))
    .unwrap();
    // The served document is the committed one (hyper may chunk it; compare parsed).
    let served: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    if served.is_object() {
        assert_eq!(
            served,
            serde_json::from_str::<serde_json::Value>(&committed).unwrap()
        );
    }
    assert!(body.contains("/v1/workloads/{ref}/logs"));
}

#[test]
fn stop_ends_a_guest_wherever_it_is_and_limits_apply() {
    let d = Daemon::start(&[]);
    // A tight loop, and a guest sleeping for an hour in a host call: both stop at once.
    d.run(&["run", "-d", "--name", "spin", &g("loop.wasm")])
        .code(0);
    d.run(&[
        "run",
        "-d",
        "--name",
        "nap",
        &g("ticker.wasm"),
        "0",
        "3600000",
    ])
    .code(0);
    d.wait_status("spin", "running");
    d.wait_log("nap", "its first tick", |l| l.iter().any(|l| l == "tick 1"));
    d.run(&["stop", "spin", "nap"])
        .code(0)
        .stdout_has("spin")
        .stdout_has("nap");
    assert_eq!(d.inspect("spin")["state"]["status"], "stopped");
    assert_eq!(d.inspect("nap")["state"]["status"], "stopped");
    // Limits from `skiff run` apply, with `skiff run`'s exit codes.
    d.run(&[
        "run",
        "-d",
        "--name",
        "late",
        "--timeout",
        "200ms",
        &g("loop.wasm"),
    ])
    .code(0);
    d.run(&[
        "run",
        "-d",
        "--name",
        "hog",
        "--memory",
        "1m",
        &g("memory-hog.wasm"),
    ])
    .code(0);
    let w = d.wait_status("late", "exited");
    assert_eq!(w["state"]["exit_code"], 124, "{w:#}");
    let w = d.wait_status("hog", "exited");
    assert_eq!(w["state"]["exit_code"], 137, "{w:#}");
    assert!(w["state"]["error"]
        .as_str()
        .unwrap()
        .contains("memory limit"));
    // Grants: -e and -v reach the guest; relative host paths are resolved by the CLI.
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("in.txt"), "from the host\n").unwrap();
    let vol = format!("{}:/data:ro", data.path().display());
    d.run(&[
        "run",
        "-d",
        "--name",
        "granted",
        "-e",
        "NAME=daemon",
        "-v",
        &vol,
        &g("hello.wasm"),
        "a1",
    ])
    .code(0);
    d.wait_status("granted", "exited");
    let log = d.log_lines("granted");
    for want in ["arg[1]=a1", "NAME=daemon", "read: from the host"] {
        assert!(log.iter().any(|l| l == want), "{want} missing from {log:?}");
    }
}

/// A real full file system under the log directory: a 64 KiB tmpfs, filled up. Needs
/// CAP_SYS_ADMIN (CI runs as root); elsewhere the test says so and passes without checking.
#[test]
fn a_full_disk_under_the_logs_keeps_the_workload_running() {
    let s = Skiff::new();
    let logs = s.home.path().join("daemon/logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mounted = std::process::Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=64k",
            "skiff-test",
            &logs.display().to_string(),
        ])
        .status()
        .is_ok_and(|st| st.success());
    if !mounted {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(logs.clone());
    // Fill it: the last write fails with ENOSPC.
    let filler = logs.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 4096];
    while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    drop(f);

    let d = Daemon::start_in(s, &[]);
    d.run(&["run", "-d", "--name", "loud", &g("ticker.wasm"), "0", "5"])
        .code(0);
    let w = d.wait_for("loud", "reporting the log error", |w| {
        !w["state"]["log_error"].is_null()
    });
    assert_eq!(w["state"]["status"], "running", "{w:#}");
    let err = w["state"]["log_error"].as_str().unwrap();
    assert!(err.contains("No space left on device"), "{err}");
    // Room again: the log resumes, and says what was lost.
    std::fs::remove_file(&filler).unwrap();
    let lines = d.wait_log("loud", "writing again", |l| {
        l.iter().any(|l| l.starts_with("tick"))
    });
    assert_eq!(d.inspect("loud")["state"]["status"], "running");
    let all = d.run(&["logs", "loud"]);
    all.stderr_has("log lines were lost: cannot write to");
    assert!(!lines.is_empty());
    d.run(&["rm", "-f", "loud"]).code(0);
}

#[test]
fn wait_answers_how_a_task_ended_once_it_has() {
    let d = Daemon::start(&[]);
    // A task that is still running when wait is asked: the answer comes when it exits.
    d.run(&[
        "run",
        "-d",
        "--name",
        "slow",
        &g("ticker.wasm"),
        "5",
        "20",
        "3",
    ])
    .code(0);
    let (status, body) = d.api("POST", "/v1/workloads/slow/wait", None);
    assert_eq!(status, 200, "{body}");
    let w: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(w["status"], "exited", "{w}");
    assert_eq!(w["exit_code"], 3, "{w}");
    // The record agrees, and the whole output was written before the answer.
    assert_eq!(d.inspect("slow")["state"]["exit_code"], 3);
    assert_eq!(
        d.log_lines("slow")
            .iter()
            .filter(|l| l.starts_with("tick"))
            .count(),
        5
    );
    d.run(&["wait", "slow"]).code(0).stdout_has("3\n");
    // Ended already, or stopped: at once. Unknown: 404.
    let (_, body) = d.api("POST", "/v1/workloads/slow/wait", None);
    assert!(body.contains("\"exit_code\":3"), "{body}");
    d.run(&["run", "-d", "--name", "forever", &g("ticker.wasm")])
        .code(0);
    d.run(&["stop", "forever"]).code(0);
    let (_, body) = d.api("POST", "/v1/workloads/forever/wait", None);
    assert!(body.contains("\"status\":\"stopped\""), "{body}");
    d.run(&["wait", "forever"]).code(0).stdout_has("stopped");
    assert_eq!(d.api("POST", "/v1/workloads/nope/wait", None).0, 404);
}
