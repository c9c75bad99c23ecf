//! Shared test harness: the real `skiff` binary, a private SKIFF_HOME per test, the committed
//! guests from `guests/wasm/`.
#![allow(dead_code)]

pub mod project;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub mod serve;
pub mod signing;

pub fn guest(name: &str) -> PathBuf {
    let p = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("../../guests/wasm")
        .join(name);
    assert!(p.exists(), "{} missing: run guests/build.sh", p.display());
    p
}

/// The compile cache's entries under a SKIFF_HOME, sorted (`cache/compiled/<shard>/<file>`).
pub fn cache_entries(home: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for shard in std::fs::read_dir(home.join("cache/compiled"))
        .into_iter()
        .flatten()
    {
        for e in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            out.push(e.unwrap().path());
        }
    }
    out.sort();
    out
}

/// One test's private world: its own SKIFF_HOME (removed on drop) and a clean environment, so
/// nothing from the developer's shell leaks into what a guest could see.
pub struct Skiff {
    pub home: tempfile::TempDir,
}

impl Skiff {
    pub fn new() -> Self {
        Skiff {
            home: tempfile::tempdir().unwrap(),
        }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_skiff"));
        c.env_clear()
            .env("SKIFF_HOME", self.home.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Done {
        Done::from(self.cmd().args(args).output().expect("skiff runs"))
    }

    /// `skiff ARGS` with one more variable in its clean environment (`DOCKER_CONFIG`, say).
    pub fn run_env(&self, var: &str, value: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Done {
        Done::from(
            self.cmd()
                .env(var, value)
                .args(args)
                .output()
                .expect("skiff runs"),
        )
    }

    /// `skiff login REGISTRY -u USER --password-stdin`, the credentials stored in `docker`
    /// (a Docker config directory).
    pub fn login(&self, docker: &Path, registry: &str, user: &str, password: &str) -> Done {
        use std::io::Write;
        let mut child = self
            .cmd()
            .env("DOCKER_CONFIG", docker)
            .args(["login", registry, "-u", user, "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("skiff runs");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(format!("{password}\n").as_bytes()).unwrap();
        drop(stdin);
        Done::from(child.wait_with_output().unwrap())
    }
}

/// A fresh home holding `hello:1.0` (the hello guest, built from a project), also tagged
/// `REGISTRY/REPO:1.0`; returns the home and that reference, ready to push.
pub fn hello_tagged_for(registry: &str, repo: &str) -> (Skiff, String) {
    let s = Skiff::new();
    let p = project::Project::new("hello", "hello.wasm", "version = \"1.0\"\n");
    s.run(&["build", p.arg()]).code(0);
    let reference = format!("{registry}/{repo}:1.0");
    s.run(&["tag", "hello:1.0", &reference]).code(0);
    (s, reference)
}

/// A finished process, with helpers that print everything when an assertion fails.
pub struct Done {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Done {
    fn from(o: Output) -> Self {
        Done {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Done {
    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(self.code, expected, "exit code\n{self}");
        self
    }
    pub fn stdout_has(&self, s: &str) -> &Self {
        assert!(self.stdout.contains(s), "stdout lacks {s:?}\n{self}");
        self
    }
    pub fn stdout_lacks(&self, s: &str) -> &Self {
        assert!(!self.stdout.contains(s), "stdout has {s:?}\n{self}");
        self
    }
    pub fn stderr_has(&self, s: &str) -> &Self {
        assert!(self.stderr.contains(s), "stderr lacks {s:?}\n{self}");
        self
    }
    pub fn stderr_lacks(&self, s: &str) -> &Self {
        assert!(!self.stderr.contains(s), "stderr has {s:?}\n{self}");
        self
    }
}

impl std::fmt::Display for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--- code {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}
pub mod daemon;

/// A loopback HTTP server answering every request with `upstream ok`.
pub fn upstream() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = c.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\nconnection: close\r\n\r\nupstream ok\n",
            );
        }
    });
    port
}

/// A TCP connection to `addr` whose reads give up after `patience`.
pub fn connect_tcp(addr: &str, patience: std::time::Duration) -> std::net::TcpStream {
    let c = std::net::TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(patience)).unwrap();
    c
}

/// Everything read until the server closed the connection (EOF or reset); None if it was still
/// open when a read timed out.
pub fn read_until_closed(c: &mut std::net::TcpStream) -> Option<Vec<u8>> {
    use std::io::{ErrorKind, Read};
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Some(got),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}
