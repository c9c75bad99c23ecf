//! A real `skiff daemon` for a test: its own SKIFF_HOME, started as a child process, ready when
//! its socket answers, killed on drop. Plus a raw HTTP client for the socket, so tests can send
//! what the CLI never would (malformed JSON, say).

use super::{Done, Skiff};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct Daemon {
    pub skiff: Skiff,
    child: Option<Child>,
    args: Vec<String>,
    /// Run under `prlimit --nofile=N:N`: a small descriptor limit makes the daemon's budget small.
    nofile: Option<u64>,
}

impl Daemon {
    pub fn start(args: &[&str]) -> Daemon {
        Daemon::start_in(Skiff::new(), args)
    }

    /// A daemon on a home the test has prepared.
    pub fn start_in(skiff: Skiff, args: &[&str]) -> Daemon {
        Daemon::start_limited(skiff, None, args)
    }

    /// A daemon whose soft and hard `RLIMIT_NOFILE` are `nofile`.
    pub fn start_with_nofile(nofile: u64, args: &[&str]) -> Daemon {
        Daemon::start_limited(Skiff::new(), Some(nofile), args)
    }

    fn start_limited(skiff: Skiff, nofile: Option<u64>, args: &[&str]) -> Daemon {
        let mut d = Daemon {
            skiff,
            child: None,
            args: args.iter().map(|s| s.to_string()).collect(),
            nofile,
        };
        d.spawn();
        d
    }

    /// The data plane's address (`--http-listen`, port 0 resolved), as the daemon wrote it.
    pub fn http_addr(&self) -> String {
        std::fs::read_to_string(self.skiff.home.path().join("daemon/http-addr"))
            .unwrap()
            .trim()
            .to_string()
    }

    pub fn socket(&self) -> PathBuf {
        self.skiff.home.path().join("daemon/skiff.sock")
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.skiff.home.path().join("daemon-stderr.log"))
            .unwrap();
        let mut cmd = self.skiff.cmd();
        if let Some(n) = self.nofile {
            let skiff = cmd;
            cmd = std::process::Command::new("prlimit");
            cmd.env_clear()
                .envs(skiff.get_envs().filter_map(|(k, v)| Some((k, v?))))
                .stdin(Stdio::null())
                .arg(format!("--nofile={n}:{n}"))
                .arg(skiff.get_program());
        }
        let child = cmd
            .arg("daemon")
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("skiff daemon starts");
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok((200, _)) = self.try_api("GET", "/_ping", None) {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "the daemon exited ({status}) before answering:\n{}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the daemon never answered:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.skiff.home.path().join("daemon-stderr.log"))
            .unwrap_or_default()
    }

    /// SIGKILL: no chance to write anything more.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    pub fn restart_after_kill9(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// kill -9, then a daemon with other flags on the same home.
    pub fn restart_with(&mut self, args: &[&str]) {
        self.kill9();
        self.args = args.iter().map(|s| s.to_string()).collect();
        self.spawn();
    }

    pub fn run(&self, args: &[&str]) -> Done {
        self.skiff.run(args)
    }

    /// `skiff deploy --name NAME --route ROUTE FILE`, which must succeed.
    pub fn deploy(&self, name: &str, route: &str, file: &str) {
        self.run(&["deploy", "--name", name, "--route", route, file])
            .code(0);
    }

    fn try_api(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> std::io::Result<(u16, String)> {
        let mut s = UnixStream::connect(self.socket())?;
        s.set_read_timeout(Some(PATIENCE))?;
        let body = body.unwrap_or("");
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: skiff\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)?;
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((status, body))
    }

    /// One request over the socket; the status and the body (not de-chunked: use it for
    /// small JSON answers, which hyper sends with a Content-Length).
    pub fn api(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        self.try_api(method, path, body)
            .expect("the daemon answers")
    }

    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let (status, body) = self.api("GET", &format!("/v1/workloads/{name}"), None);
        assert_eq!(status, 200, "inspect {name}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Poll `inspect` until `pred` holds (readiness polling, never a fixed sleep).
    pub fn wait_for(
        &self,
        name: &str,
        what: &str,
        mut pred: impl FnMut(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let w = self.inspect(name);
            if pred(&w) {
                return w;
            }
            assert!(
                Instant::now() < deadline,
                "{name} never became {what}: {w:#}\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn wait_status(&self, name: &str, status: &str) -> serde_json::Value {
        self.wait_for(name, status, |w| w["state"]["status"] == status)
    }

    /// The log's lines (stdout and stderr), via `skiff logs`.
    pub fn log_lines(&self, name: &str) -> Vec<String> {
        let d = self.run(&["logs", name]);
        d.code(0);
        d.stdout.lines().map(str::to_string).collect()
    }

    /// Poll the log until `pred` holds for its lines.
    pub fn wait_log(
        &self,
        name: &str,
        what: &str,
        pred: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let l = self.log_lines(name);
            if pred(&l) {
                return l;
            }
            assert!(
                Instant::now() < deadline,
                "the log of {name} never showed {what}: {l:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}
