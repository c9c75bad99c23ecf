//! The sandbox policy: what a guest is granted. The default grants nothing but stdout and
//! stderr: no directory, no environment variable, no stdin, no socket, no name lookup.

use crate::error::RunError;
use crate::output::{Output, SinkStream};
use skiff_spec::Mount;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// Grants for one guest. Build it field by field; `Default` grants nothing.
#[derive(Debug, Clone, Default)]
pub struct Sandbox {
    /// argv, including argv[0].
    pub args: Vec<String>,
    /// Environment variables, in order; the guest sees exactly these.
    pub env: Vec<(String, String)>,
    /// Host directories visible to the guest (`-v HOST:GUEST[:ro]`).
    pub mounts: Vec<Mount>,
    /// Let the guest read the host's stdin (`-i`).
    pub stdin: bool,
    /// Let the guest open TCP/UDP sockets to any address and look up names (`--net`).
    pub network: bool,
    /// Where the guest may send HTTP requests through `wasi:http` (`--allow-outbound`), a
    /// command and an HTTP handler alike; nowhere by default.
    pub allow_outbound: crate::http::OutboundPolicy,
    /// Where the guest's stdout goes; the host's own by default.
    pub stdout: Output,
    /// Where the guest's stderr goes; the host's own by default.
    pub stderr: Output,
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
