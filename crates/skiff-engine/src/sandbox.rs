//! The sandbox policy: what a guest is granted. The default grants nothing but stdout and
//! stderr: no directory, no environment variable, no stdin, no socket, no name lookup.

use crate::error::RunError;
use crate::output::{Output, SinkStream};
use std::path::PathBuf;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// Grants for one guest. Build it field by field; `Default` grants nothing.
#[derive(Debug, Clone, Default)]
pub struct Sandbox {
    /// argv, including argv[0].
    pub args: Vec<String>,
    /// Environment variables, in order; the guest sees exactly these.
    pub env: Vec<(String, String)>,
    /// Host directories visible to the guest.
    pub mounts: Vec<Mount>,
    /// Let the guest read the host's stdin (`-i`).
    pub stdin: bool,
    /// Let the guest open TCP/UDP sockets to any address and look up names (`--net`).
    pub network: bool,
    /// Where the guest's stdout goes; the host's own by default.
    pub stdout: Output,
    /// Where the guest's stderr goes; the host's own by default.
    pub stderr: Output,
}

/// A host directory preopened in the guest (`-v HOST:GUEST[:ro]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub host: PathBuf,
    /// An absolute path inside the guest, such as `/data`.
    pub guest: String,
    pub read_only: bool,
}

impl Mount {
    /// Parse Docker's `HOST:GUEST[:ro|:rw]`.
    pub fn parse(spec: &str) -> Result<Mount, String> {
        let mut parts: Vec<&str> = spec.split(':').collect();
        let read_only = match parts.last() {
            Some(&"ro") if parts.len() == 3 => {
                parts.pop();
                true
            }
            Some(&"rw") if parts.len() == 3 => {
                parts.pop();
                false
            }
            _ => false,
        };
        let [host, guest] = parts[..] else {
            return Err(format!(
                "invalid volume {spec:?}: expected HOST:GUEST or HOST:GUEST:ro, e.g. -v ./data:/data:ro"
            ));
        };
        if host.is_empty() {
            return Err(format!("invalid volume {spec:?}: the host path is empty"));
        }
        if !guest.starts_with('/') {
            return Err(format!(
                "invalid volume {spec:?}: the guest path {guest:?} must be absolute, e.g. /data"
            ));
        }
        if guest.split('/').any(|c| c == "..") {
            return Err(format!(
                "invalid volume {spec:?}: the guest path may not contain `..`"
            ));
        }
        Ok(Mount {
            host: PathBuf::from(host),
            guest: guest.to_string(),
            read_only,
        })
    }
}

impl Sandbox {
    /// A WASI context holding exactly these grants.
    pub(crate) fn builder(&self) -> Result<WasiCtxBuilder, RunError> {
        let mut b = WasiCtxBuilder::new();
        b.args(&self.args);
        b.envs(&self.env);
        match &self.stdout {
            Output::Inherit => b.inherit_stdout(),
            Output::Sink(s) => b.stdout(SinkStream(s.clone())),
        };
        match &self.stderr {
            Output::Inherit => b.inherit_stderr(),
            Output::Sink(s) => b.stderr(SinkStream(s.clone())),
        };
        if self.stdin {
            b.inherit_stdin();
        }
        if self.network {
            b.inherit_network()
                .allow_tcp(true)
                .allow_udp(true)
                .allow_ip_name_lookup(true);
        }
        for m in &self.mounts {
            let meta = std::fs::metadata(&m.host).map_err(|e| {
                RunError::Grant(format!(
                    "volume {}:{}: cannot use host path {}: {e}",
                    m.host.display(),
                    m.guest,
                    m.host.display()
                ))
            })?;
            if !meta.is_dir() {
                return Err(RunError::Grant(format!(
                    "volume {}:{}: {} is not a directory; mount the directory that holds it",
                    m.host.display(),
                    m.guest,
                    m.host.display()
                )));
            }
            let perms = if m.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            b.preopened_dir(&m.host, &m.guest, perms).map_err(|e| {
                RunError::Grant(format!(
                    "volume {}:{}: cannot open {}: {e}",
                    m.host.display(),
                    m.guest,
                    m.host.display()
                ))
            })?;
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_specs() {
        let m = Mount::parse("./data:/data:ro").unwrap();
        assert_eq!(m.host, PathBuf::from("./data"));
        assert_eq!(m.guest, "/data");
        assert!(m.read_only);
        assert!(!Mount::parse("/a:/b").unwrap().read_only);
        assert!(!Mount::parse("/a:/b:rw").unwrap().read_only);
        assert!(Mount::parse("/a").unwrap_err().contains("HOST:GUEST"));
        assert!(Mount::parse("/a:b").unwrap_err().contains("absolute"));
        assert!(Mount::parse("/a:/b/../c").unwrap_err().contains(".."));
        assert!(Mount::parse("/a:/b:xx").is_err());
    }
}
