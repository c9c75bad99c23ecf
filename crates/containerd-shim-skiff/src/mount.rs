//! Mounting the rootfs containerd hands over in `create` (an overlay or bind mount of the
//! snapshot), with mount(2) directly.
//!
//! `containerd_shim::mount::mount_rootfs` forks a helper and waits for it through the library's
//! SIGCHLD reaper, which this shim turns off (each guest is reaped by its own watcher, see
//! `process::wait_exit`); a direct mount(2) needs neither.

use std::ffi::CString;
use std::io;
use std::path::Path;

/// Flags mount(8) options map to; anything else is filesystem data (`lowerdir=...`).
fn flag(option: &str) -> Option<(bool, libc::c_ulong)> {
    Some(match option {
        "ro" => (true, libc::MS_RDONLY),
        "rw" => (false, libc::MS_RDONLY),
        "bind" => (true, libc::MS_BIND),
        "rbind" => (true, libc::MS_BIND | libc::MS_REC),
        "nosuid" => (true, libc::MS_NOSUID),
        "suid" => (false, libc::MS_NOSUID),
        "nodev" => (true, libc::MS_NODEV),
        "dev" => (false, libc::MS_NODEV),
        "noexec" => (true, libc::MS_NOEXEC),
        "exec" => (false, libc::MS_NOEXEC),
        "noatime" => (true, libc::MS_NOATIME),
        "relatime" => (true, libc::MS_RELATIME),
        "sync" => (true, libc::MS_SYNCHRONOUS),
        "async" => (false, libc::MS_SYNCHRONOUS),
        "defaults" => (true, 0),
        _ => return None,
    })
}

pub fn mount(kind: &str, source: &str, options: &[String], target: &Path) -> io::Result<()> {
    let mut flags: libc::c_ulong = 0;
    let mut data = Vec::new();
    for o in options {
        match flag(o) {
            Some((true, f)) => flags |= f,
            Some((false, f)) => flags &= !f,
            None => data.push(o.as_str()),
        }
    }
    let cstr =
        |s: &str| CString::new(s).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e));
    let source = cstr(source)?;
    let target_c = cstr(&target.to_string_lossy())?;
    let kind = cstr(kind)?;
    let data = cstr(&data.join(","))?;
    // SAFETY: every pointer is a valid NUL-terminated string that outlives the call.
    let r = unsafe {
        libc::mount(
            source.as_ptr(),
            target_c.as_ptr(),
            kind.as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // A read-only bind mount takes a second, remounting call (as mount(8) does).
    if flags & libc::MS_BIND != 0 && flags & libc::MS_RDONLY != 0 {
        // SAFETY: as above; source and type are ignored for a remount.
        let r = unsafe {
            libc::mount(
                std::ptr::null(),
                target_c.as_ptr(),
                std::ptr::null(),
                flags | libc::MS_REMOUNT,
                std::ptr::null(),
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Unmount `target`; lazily, so that a guest still holding a file open cannot keep the
/// snapshot busy and fail containerd's cleanup.
pub fn unmount(target: &Path) -> io::Result<()> {
    let t = CString::new(target.to_string_lossy().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    loop {
        // SAFETY: a valid NUL-terminated path.
        if unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) } != 0 {
            let e = io::Error::last_os_error();
            // EINVAL: not (or no longer) a mount point; ENOENT: gone.
            return match e.raw_os_error() {
                Some(libc::EINVAL) | Some(libc::ENOENT) => Ok(()),
                _ => Err(e),
            };
        }
        // Stacked mounts (a rootfs mounted twice) come off one per call.
    }
}
