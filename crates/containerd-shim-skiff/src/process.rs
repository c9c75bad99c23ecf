//! Starting the container's process (the shim binary as guest runner), wiring its stdio to
//! containerd's FIFOs, placing it in the spec's network namespace, and reaping it.

use crate::guest::{GUEST_ARG, PAUSE_ARG};
use crate::spec::NetNs;
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What the process runs.
#[derive(Debug, Clone)]
pub enum Work {
    /// A guest, from the plan file at this path.
    Guest(PathBuf),
    /// The pod sandbox placeholder.
    Pause,
}

/// containerd's stdio for the task: FIFO paths, `file://` URIs, or empty for none.
#[derive(Debug, Clone, Default)]
pub struct StdioPaths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
}

pub struct Spawn<'a> {
    pub work: &'a Work,
    pub stdio: &'a StdioPaths,
    /// Connect stdin (granted by annotation); otherwise the guest reads /dev/null.
    pub stdin: bool,
    pub netns: &'a NetNs,
}

/// Start the process; returns its pid.
pub fn spawn(s: Spawn<'_>) -> io::Result<u32> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    match s.work {
        Work::Guest(plan) => cmd.arg(GUEST_ARG).arg(plan),
        Work::Pause => cmd.arg(PAUSE_ARG),
    };
    let stdin = if s.stdin && !s.stdio.stdin.is_empty() {
        Stdio::from(open_input(&s.stdio.stdin)?)
    } else {
        Stdio::null()
    };
    let stdout = open_output(&s.stdio.stdout)?;
    let stderr = if s.stdio.stderr == s.stdio.stdout {
        stdout.try_clone()?
    } else {
        open_output(&s.stdio.stderr)?
    };
    cmd.stdin(stdin).stdout(stdout).stderr(stderr);
    isolate(&mut cmd, s.netns)?;
    let child = cmd.spawn()?;
    // The `Child` handle is dropped: the exit watcher reaps by pid (see `wait_exit`).
    Ok(child.id())
}

/// Make `cmd`'s process a session of its own (a signal meant for the shim, or its process
/// group, does not reach the guest) in the spec's network namespace: joined, or a new one with
/// loopback up, as runc would make. The shim and `skiff-oci` start guests this way.
pub fn isolate(cmd: &mut Command, netns: &NetNs) -> io::Result<()> {
    let netns_path = match netns {
        NetNs::Join(path) => Some(CString::new(path.as_os_str().as_bytes())?),
        _ => None,
    };
    let new_netns = *netns == NetNs::New;
    // SAFETY: between fork and exec only async-signal-safe calls (setsid, open, setns,
    // unshare, socket, ioctl, close) are made, on data prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            if let Some(path) = &netns_path {
                let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                if fd < 0 || libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(io::Error::last_os_error());
                }
                libc::close(fd);
            } else if new_netns {
                if libc::unshare(libc::CLONE_NEWNET) != 0 {
                    return Err(io::Error::last_os_error());
                }
                loopback_up()?;
            }
            Ok(())
        });
    }
    Ok(())
}

/// Bring up `lo` in a new network namespace, where it starts down, as runc does: a guest may
/// then serve and connect on 127.0.0.1 inside its namespace. Called between fork and exec: only
/// socket, ioctl and close, on stack data.
fn loopback_up() -> io::Result<()> {
    // SAFETY: an all-zero ifreq is valid; socket, ioctl (with a pointer to that ifreq) and close
    // are async-signal-safe system calls.
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut r = libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut req);
        if r == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            r = libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &req);
        }
        let result = if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        };
        libc::close(fd);
        result
    }
}

fn open_output(uri: &str) -> io::Result<File> {
    if uri.is_empty() {
        return OpenOptions::new().write(true).open("/dev/null");
    }
    if let Some(path) = uri.strip_prefix("file://") {
        return OpenOptions::new().create(true).append(true).open(path);
    }
    if uri.contains("://") {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("log URI {uri:?}: the skiff shim supports FIFOs and file:// only"),
        ));
    }
    // containerd holds the read side open already, so this does not block.
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(uri)
}

fn open_input(path: &str) -> io::Result<File> {
    OpenOptions::new().read(true).open(path)
}

/// Block until `pid` has exited, without reaping it, then reap it under `lock`'s protection.
///
/// Waiting with `WNOWAIT` first keeps the pid reserved while the caller records the exit: a
/// `kill` that races the exit can then never signal a recycled pid.
/// The reaped status is `(exit status, exited by itself)`: 137 from the guest runner's own exit
/// (a memory limit) is not 137 from a SIGKILL.
pub fn wait_exit(pid: u32, record: impl FnOnce(&dyn Fn() -> (u32, bool))) {
    loop {
        // SAFETY: an all-zero siginfo_t is a valid out-parameter.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid with a valid out-pointer.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
    let reap = move || {
        let mut status = 0;
        loop {
            // SAFETY: waitpid on our own child with a valid out-pointer.
            let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
            if r >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                break;
            }
        }
        if libc::WIFSIGNALED(status) {
            (128 + libc::WTERMSIG(status) as u32, false)
        } else {
            (libc::WEXITSTATUS(status) as u32, true)
        }
    };
    record(&reap);
}

/// Send `signal` to `pid`. `Ok(false)` when the process is already gone.
pub fn signal(pid: u32, signal: u32) -> io::Result<bool> {
    // SAFETY: kill(2) with a positive pid that is our unreaped child.
    if unsafe { libc::kill(pid as libc::pid_t, signal as libc::c_int) } == 0 {
        return Ok(true);
    }
    match io::Error::last_os_error() {
        e if e.raw_os_error() == Some(libc::ESRCH) => Ok(false),
        e => Err(e),
    }
}

/// The pid file the shim keeps in the bundle, so that `containerd-shim-skiff-v1 delete` can
/// stop a guest whose shim died.
pub fn pid_file(bundle: &Path) -> PathBuf {
    bundle.join("skiff.pid")
}
