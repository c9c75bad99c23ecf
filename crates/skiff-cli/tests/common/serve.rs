//! `skiff serve` under test: the real binary on port 0, talked to with real curl.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Served {
    child: Child,
    pub addr: String,
    pub admin: Option<String>,
    pub scheme: String,
    stderr: Arc<Mutex<String>>,
    _home: Option<tempfile::TempDir>,
}

impl Served {
    /// Start `skiff serve ARGS` (add `--listen 127.0.0.1:0` yourself if you want another) and
    /// wait for its "listening on" line.
    pub fn start(args: &[&str]) -> Served {
        let home = tempfile::tempdir().unwrap();
        let mut served = Served::start_in(home.path(), args);
        served._home = Some(home);
        served
    }

    /// Start `skiff serve ARGS` with an existing SKIFF_HOME (one whose store holds images).
    // The child moves into `Served`, whose Drop kills and waits for it.
    #[allow(clippy::zombie_processes)]
    pub fn start_in(home: &std::path::Path, args: &[&str]) -> Served {
        let mut full = vec!["serve"];
        if !args.contains(&"--listen") {
            full.extend(["--listen", "127.0.0.1:0"]);
        }
        full.extend(args);
        Served::launch(home, &full)
    }

    /// `skiff ARGS`, a verb that serves as `skiff serve` does (`run -p`), waited for alike.
    pub fn start_verb(args: &[&str]) -> Served {
        let home = tempfile::tempdir().unwrap();
        let mut served = Served::launch(home.path(), args);
        served._home = Some(home);
        served
    }

    #[allow(clippy::zombie_processes)]
    fn launch(home: &std::path::Path, args: &[&str]) -> Served {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_skiff"));
        cmd.env_clear()
            .env("SKIFF_HOME", home)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        let mut child = cmd
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("skiff starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut admin = None;
        let mut line = String::new();
        loop {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "skiff serve exited before listening\n{}",
                    stderr.lock().unwrap()
                );
            }
            if let Some(a) = line.trim().strip_prefix("admin on http://") {
                admin = Some(a.to_string());
            }
            if let Some(url) = line.trim().strip_prefix("listening on ") {
                let (scheme, addr) = url.split_once("://").unwrap();
                let served = Served {
                    child,
                    addr: addr.to_string(),
                    admin,
                    scheme: scheme.to_string(),
                    stderr,
                    _home: None,
                };
                // Drain stdout so the server never blocks on it.
                std::thread::spawn(move || for _ in out.lines() {});
                return served;
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    pub fn port(&self) -> &str {
        self.addr.rsplit_once(':').unwrap().1
    }

    pub fn get(&self, path: &str) -> Reply {
        curl(&[&self.url(path)])
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Wait (polling, up to 20 s) until the log contains `s`.
    pub fn wait_log(&self, s: &str) -> String {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.stderr();
            if log.contains(s) {
                return log;
            }
            assert!(Instant::now() < end, "log never showed {s:?}\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn metrics(&self) -> String {
        let admin = self.admin.as_ref().expect("started with --admin-listen");
        curl(&[&format!("http://{admin}/metrics")]).body
    }

    /// Poll /metrics until `line` (a full metric line, e.g. `skiff_instances_live{app="x"} 1`)
    /// is there.
    pub fn wait_metric(&self, line: &str) {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let m = self.metrics();
            if m.lines().any(|l| l == line) {
                return;
            }
            assert!(Instant::now() < end, "metrics never showed {line:?}\n{m}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// Wait for the process to exit (up to 30 s) and return its exit code.
    pub fn wait_exit(&mut self) -> i32 {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < end,
                "skiff serve did not exit\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response as curl saw it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: String,
    pub body: String,
    pub version: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// Run curl with ARGS (a URL among them); never fails on HTTP status.
pub fn curl(args: &[&str]) -> Reply {
    let out = Command::new("curl")
        .args([
            "-s",
            "-S",
            "-m",
            "30",
            "-D",
            "/dev/stderr",
            "-o",
            "-",
            "-w",
            "\n%{http_code} %{http_version}",
        ])
        .args(args)
        .output()
        .expect("curl runs (apt-get install curl)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    let (code, version) = tail.split_once(' ').unwrap_or((tail, ""));
    // -D goes to stderr; keep only the last header block (after any 100-continue).
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let headers = stderr
        .split("\r\n\r\n")
        .filter(|b| b.starts_with("HTTP/"))
        .last()
        .unwrap_or("")
        .to_string();
    Reply {
        status: code.trim().parse().unwrap_or(0),
        headers,
        body: body.to_string(),
        version: version.trim().to_string(),
    }
}
