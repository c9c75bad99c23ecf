//! OCI hooks (runtime-spec config.md, "POSIX-platform Hooks"), run as runc runs them: each
//! hook's `path` with its `args` (argv\[0\] included) and `env` (none given: the runtime's own),
//! the container's state JSON on its stdin, killed when it outlives its `timeout`. Docker wires
//! its bridge networks with one (`libnetwork-setkey`, a prestart hook that moves the container's
//! end of a veth pair into the network namespace of the pid the state names).
//!
//! Hooks come from the spec the caller (dockerd, podman, containerd) writes, never from the
//! image: an image config has no hooks, and podman's hooks directories are the operator's.

use containerd_shim_skiff::spec::{Hook, Hooks};
use std::ffi::CStr;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

/// The end of a failed hook's output kept for the error: enough for a message and its cause.
const OUTPUT_KEPT: u64 = 8 << 10;

/// Where a hook's process lives.
#[derive(Debug, Clone, Copy)]
pub enum Namespace {
    /// The runtime's own (prestart, createRuntime, poststart, poststop; and startContainer,
    /// which the container's process runs, already in its namespace).
    Runtime,
    /// The network namespace of the container's process, this pid (createContainer).
    ContainerOf(i32),
}

/// Refuse at create what the spec forbids: a relative path, a timeout of zero or less.
pub fn check(hooks: &Hooks) -> Result<(), String> {
    for (stage, list) in stages(hooks) {
        for h in list {
            if !h.path.starts_with('/') {
                return Err(format!(
                    "{stage} hook {:?}: the path must be absolute (runtime-spec)",
                    h.path
                ));
            }
            if let Some(t) = h.timeout.filter(|t| *t <= 0) {
                return Err(format!(
                    "{stage} hook {}: timeout {t}: it must be more than zero seconds",
                    h.path
                ));
            }
        }
    }
    Ok(())
}

fn stages(h: &Hooks) -> [(&'static str, &[Hook]); 6] {
    [
        ("prestart", &h.prestart),
        ("createRuntime", &h.create_runtime),
        ("createContainer", &h.create_container),
        ("startContainer", &h.start_container),
        ("poststart", &h.poststart),
        ("poststop", &h.poststop),
    ]
}

/// Run `hooks` in order, `state` (the OCI state JSON) on each one's stdin; the first that fails
/// ends the run with its error and output.
pub fn run(stage: &str, hooks: &[Hook], state: &str, ns: Namespace) -> Result<(), String> {
    for hook in hooks {
        run_one(hook, state, ns).map_err(|e| format!("{stage} hook {}: {e}", describe(hook)))?;
    }
    Ok(())
}

fn describe(h: &Hook) -> String {
    match h.args.split_first() {
        Some((_, rest)) if !rest.is_empty() => format!("{} {}", h.path, rest.join(" ")),
        _ => h.path.clone(),
    }
}

fn run_one(hook: &Hook, state: &str, ns: Namespace) -> Result<(), String> {
    // The state on stdin and the output from the hook are anonymous files, not pipes: a hook
    // that never reads its stdin cannot block the write, and a child a hook leaves behind
    // holding its stdout cannot keep a read from ending.
    let mut input = memfd(c"skiff-oci-hook-state")?;
    input
        .write_all(state.as_bytes())
        .and_then(|()| input.seek(SeekFrom::Start(0)).map(drop))
        .map_err(|e| format!("cannot prepare its stdin: {e}"))?;
    let mut output = memfd(c"skiff-oci-hook-output")?;
    let mut cmd = Command::new(&hook.path);
    if let Some((argv0, rest)) = hook.args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    if !hook.env.is_empty() {
        cmd.env_clear();
        cmd.envs(hook.env.iter().filter_map(|kv| kv.split_once('=')));
    }
    let clone = |f: &File| {
        f.try_clone()
            .map_err(|e| format!("cannot dup its output: {e}"))
    };
    cmd.stdin(input)
        .stdout(clone(&output)?)
        .stderr(clone(&output)?);
    let netns = match ns {
        Namespace::Runtime => None,
        Namespace::ContainerOf(pid) => Some(
            File::open(format!("/proc/{pid}/ns/net"))
                .map_err(|e| format!("cannot open the network namespace of pid {pid}: {e}"))?,
        ),
    };
    let netns_fd = netns.as_ref().map(|f| f.as_raw_fd());
    // SAFETY: between fork and exec only setpgid and setns, async-signal-safe, on a descriptor
    // opened before the fork.
    unsafe {
        cmd.pre_exec(move || {
            // A group of its own: a timeout kills what the hook started too.
            if libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(fd) = netns_fd {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot start it: {e}"))?;
    drop(netns);
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let waited = match hook.timeout {
        Some(secs) => match rx.recv_timeout(Duration::from_secs(secs.max(1) as u64)) {
            Ok(w) => w,
            Err(_) => {
                // SAFETY: kill(2) of the process group the hook leads (setpgid above).
                unsafe { libc::kill(-pid, libc::SIGKILL) };
                let _ = rx.recv();
                return Err(format!(
                    "did not finish within its timeout of {secs} s; killed{}",
                    tail(&mut output)
                ));
            }
        },
        None => rx.recv().map_err(|e| e.to_string())?,
    };
    let status = waited.map_err(|e| format!("cannot wait for it: {e}"))?;
    if status.success() {
        return Ok(());
    }
    let how = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        _ => status.to_string(),
    };
    Err(format!("{how}{}", tail(&mut output)))
}

/// `: OUTPUT` (its last `OUTPUT_KEPT` bytes), or nothing when the hook wrote nothing.
fn tail(output: &mut File) -> String {
    let len = output.metadata().map(|m| m.len()).unwrap_or(0);
    let mut text = Vec::new();
    let start = len.saturating_sub(OUTPUT_KEPT);
    if output.seek(SeekFrom::Start(start)).is_err() || output.read_to_end(&mut text).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&text);
    match text.trim() {
        "" => String::new(),
        t if start > 0 => format!(": …{t}"),
        t => format!(": {t}"),
    }
}

fn memfd(name: &CStr) -> Result<File, String> {
    // SAFETY: a valid NUL-terminated name; the descriptor returned is owned by the File.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(format!(
            "cannot make a memory file for a hook: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: fd is a fresh descriptor this process owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(path: &str, args: &[&str], timeout: Option<i64>) -> Hook {
        Hook {
            path: path.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec!["ONLY=this".into()],
            timeout,
        }
    }

    #[test]
    fn a_hook_reads_the_state_gets_its_env_and_args_and_fails_with_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("seen");
        // HOME is in this test's environment, and so would be in an inherited one.
        assert!(std::env::var_os("HOME").is_some());
        let script = format!(
            "cat > {0}; echo \" $0 $1 $ONLY ${{HOME:-nohome}}\" >> {0}",
            out.display()
        );
        let ok = hook("/bin/sh", &["sh", "-c", &script, "argv0", "one"], None);
        run("prestart", &[ok], r#"{"id":"c1"}"#, Namespace::Runtime).unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "{\"id\":\"c1\"} argv0 one this nohome\n"
        );
        let bad = hook("/bin/sh", &["sh", "-c", "echo no bridge >&2; exit 3"], None);
        let e = run("prestart", &[bad], "{}", Namespace::Runtime).unwrap_err();
        assert!(
            e.starts_with("prestart hook /bin/sh -c ")
                && e.ends_with("exited with status 3: no bridge"),
            "{e}"
        );
    }

    #[test]
    fn a_hook_that_outlives_its_timeout_is_killed_with_what_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        // The hook leaves a child holding its output and never exits itself.
        let script = format!(
            "sleep 600 & echo $! > {}; echo waiting; wait",
            pid_file.display()
        );
        let slow = hook("/bin/sh", &["sh", "-c", &script], Some(1));
        let e = run("createRuntime", &[slow], "{}", Namespace::Runtime).unwrap_err();
        assert!(
            e.contains("did not finish within its timeout of 1 s; killed: waiting"),
            "{e}"
        );
        let child: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Killed with its group: soon gone, or a zombie awaiting its reaper.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            if stat.is_empty() || stat.contains(") Z") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "still alive: {stat}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn the_spec_rules_are_checked_before_anything_runs() {
        let mut hooks = Hooks::default();
        hooks.poststop.push(hook("true", &[], None));
        assert!(check(&hooks).unwrap_err().contains("must be absolute"));
        hooks.poststop[0] = hook("/bin/true", &[], Some(0));
        assert!(check(&hooks).unwrap_err().contains("more than zero"));
        hooks.poststop[0] = hook("/bin/true", &[], Some(5));
        check(&hooks).unwrap();
        let e = run(
            "poststop",
            &[hook("/nonexistent", &[], None)],
            "{}",
            Namespace::Runtime,
        )
        .unwrap_err();
        assert!(
            e.contains("poststop hook /nonexistent: cannot start it"),
            "{e}"
        );
    }
}
