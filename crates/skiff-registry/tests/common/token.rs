//! A Docker token server for the registry's `auth: token` mode: `token_server.py` (the Python
//! stdlib and the openssl CLI), started on a random loopback port. The registry under test stays the real
//! one and verifies every token itself (issuer, audience, expiry, the x5c certificate chain).
//!
//! Shared by path with the skiff CLI's tests, like server.rs: std, tempfile and serde_json only.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SERVICE: &str = "skiff-test-registry";
pub const ISSUER: &str = "skiff-test-token-issuer";

/// What the token server hands out.
pub struct TokenConfig {
    /// (user, password, actions it may have: "pull", "push").
    pub users: Vec<(&'static str, &'static str, Vec<&'static str>)>,
    /// `expires_in` told to clients.
    pub expires_in: u64,
    /// How long the registry accepts a token; differs from `expires_in` to act out a token
    /// that dies early (revoked, clocks apart). Default: `expires_in`.
    pub valid_for: Option<u64>,
    /// Hand out refresh tokens (identity tokens) on `offline_token=true` / `access_type=offline`.
    pub refresh_tokens: bool,
    /// The first N tokens are already expired when handed out.
    pub stale_tokens: u32,
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            users: vec![("me", "s3cret", vec!["pull", "push"])],
            expires_in: 300,
            valid_for: None,
            refresh_tokens: false,
            stale_tokens: 0,
        }
    }
}

pub struct TokenServer {
    child: Child,
    pub dir: tempfile::TempDir,
    pub realm: String,
}

impl TokenServer {
    pub fn start(config: TokenConfig) -> TokenServer {
        let dir = tempfile::tempdir().unwrap();
        let users: serde_json::Map<String, serde_json::Value> = config
            .users
            .iter()
            .map(|(u, p, a)| {
                (
                    u.to_string(),
                    serde_json::json!({"password": p, "actions": a}),
                )
            })
            .collect();
        let cfg = serde_json::json!({
            "service": SERVICE, "issuer": ISSUER, "users": users,
            "expires_in": config.expires_in,
            "valid_for": config.valid_for.unwrap_or(config.expires_in),
            "refresh_tokens": config.refresh_tokens, "stale_tokens": config.stale_tokens,
        });
        std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
        let script = dir.path().join("token_server.py");
        std::fs::write(&script, include_str!("token_server.py")).unwrap();
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3");
        // It prints its port once it listens (after making its key and certificate).
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("token server did not start: {line:?}"));
        TokenServer {
            child,
            realm: format!("http://127.0.0.1:{port}/token"),
            dir,
        }
    }

    /// The registry's `auth:` section trusting this server.
    pub fn auth_yaml(&self) -> String {
        format!(
            "auth: {{token: {{realm: \"{}\", service: {SERVICE}, issuer: {ISSUER}, rootcertbundle: {}}}}}\n",
            self.realm,
            self.dir.path().join("cert.pem").display()
        )
    }

    /// Every token issued so far, oldest first: `method`, `grant` (basic, anonymous, password,
    /// refresh_token), `user`, `scope`, `access`, `refresh_token_issued`, `token`.
    pub fn issued(&self) -> Vec<serde_json::Value> {
        Self::issued_in(self.dir.path())
    }

    /// [`Self::issued`] of the server whose directory is `dir`.
    pub fn issued_in(dir: &std::path::Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.join("issued.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Wait until the registry at `addr` refuses `token` (it expired). Polls the registry, the
    /// one that decides.
    pub fn wait_until_refused(addr: &str, token: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
                .arg(format!("Authorization: Bearer {token}"))
                .arg(format!("http://{addr}/v2/"))
                .output()
                .unwrap();
            if String::from_utf8_lossy(&out.stdout) == "401" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the registry kept accepting the token"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
