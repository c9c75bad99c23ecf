//! `skiff login` / `logout` against a real registry (Debian's docker-registry with htpasswd).

mod common;

use common::Skiff;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct AuthRegistry {
    child: std::process::Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl AuthRegistry {
    fn start() -> AuthRegistry {
        let dir = tempfile::tempdir().unwrap();
        let pw = Command::new("htpasswd")
            .args(["-Bbn", "me", "s3cret"])
            .output()
            .unwrap();
        std::fs::write(dir.path().join("htpasswd"), &pw.stdout).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, format!(
            "version: 0.1\nlog: {{level: error}}\nstorage: {{inmemory: {{}}}}\nhttp: {{addr: {addr}, secret: t}}\nauth: {{htpasswd: {{realm: r, path: {}}}}}\n",
            dir.path().join("htpasswd").display()
        )).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "registry did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        AuthRegistry {
            child,
            addr,
            _dir: dir,
        }
    }
}

impl Drop for AuthRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn login_stores_docker_compatible_credentials_0600_and_logout_removes_them() {
    use std::os::unix::fs::PermissionsExt;
    let registry = AuthRegistry::start();
    let skiff = Skiff::new();
    let docker = tempfile::tempdir().unwrap();

    let bad = skiff.login(docker.path(), &registry.addr, "me", "wrong");
    bad.code(125)
        .stderr_has("login to")
        .stderr_has("rejected")
        .stderr_lacks("wrong");
    assert!(!docker.path().join("config.json").exists());

    skiff
        .login(docker.path(), &registry.addr, "me", "s3cret")
        .code(0)
        .stdout_has("Login Succeeded");
    let file = docker.path().join("config.json");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("s3cret"));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    // base64("me:s3cret"), as Docker writes it.
    assert_eq!(v["auths"][&registry.addr]["auth"], "bWU6czNjcmV0");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let out = skiff
        .cmd()
        .env("DOCKER_CONFIG", docker.path())
        .args(["logout", &registry.addr])
        .output()
        .unwrap();
    common::Done::from(out)
        .code(0)
        .stdout_has("Removing login credentials");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(v["auths"].get(&registry.addr).is_none());
}

#[test]
fn credential_helpers_are_used_as_docker_uses_them() {
    let registry = AuthRegistry::start();
    let skiff = Skiff::new();
    let docker = tempfile::tempdir().unwrap();
    // A helper that keeps its store in a file, speaking the docker-credential protocol.
    let bin = tempfile::tempdir().unwrap();
    let store = bin.path().join("store.json");
    let helper = bin.path().join("docker-credential-test");
    std::fs::write(&helper, format!(
        "#!/bin/sh\ncase \"$1\" in\n store) cat > {s} ;;\n get) if [ -s {s} ]; then cat {s}; else echo 'credentials not found in native keychain'; exit 1; fi ;;\n erase) : > {s} ;;\nesac\n",
        s = store.display()
    )).unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(
        docker.path().join("config.json"),
        r#"{"credsStore":"test"}"#,
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap()
    );

    let mut child = skiff
        .cmd()
        .env("PATH", &path)
        .env("DOCKER_CONFIG", docker.path())
        .args(["login", &registry.addr, "-u", "me", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"s3cret").unwrap();
    common::Done::from(child.wait_with_output().unwrap()).code(0);
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap();
    assert_eq!(stored["Username"], "me");
    assert_eq!(stored["ServerURL"], registry.addr.as_str());
    // The config file keeps no secret: the helper has it.
    assert!(!std::fs::read_to_string(docker.path().join("config.json"))
        .unwrap()
        .contains("s3cret"));
    let out = skiff
        .cmd()
        .env("PATH", &path)
        .env("DOCKER_CONFIG", docker.path())
        .args(["logout", &registry.addr])
        .output()
        .unwrap();
    common::Done::from(out).code(0);
    assert_eq!(std::fs::read(&store).unwrap().len(), 0);
}

/// `skiff login HOST` on a terminal asks for the user name, then the password without echoing
/// it, as `docker login` does; without a terminal it says what to give instead of hanging.
#[test]
fn login_on_a_terminal_prompts_and_never_echoes_the_password() {
    use expectrl::Expect;
    let registry = AuthRegistry::start();
    let skiff = Skiff::new();
    let docker = tempfile::tempdir().unwrap();
    // Not `skiff.cmd()`: it sets stdin to /dev/null, and the terminal must be stdin here.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_skiff"));
    cmd.env_clear()
        .env("SKIFF_HOME", skiff.home.path())
        .env("DOCKER_CONFIG", docker.path())
        .args(["login", &registry.addr]);
    let mut term = expectrl::Session::spawn(cmd).expect("a pseudo-terminal");
    term.set_expect_timeout(Some(Duration::from_secs(60)));
    term.expect("Username: ").unwrap();
    term.send_line("me").unwrap();
    term.expect("Password: ").unwrap();
    term.send_line("s3cret").unwrap();
    let after = term.expect("Login Succeeded").unwrap();
    assert!(
        !String::from_utf8_lossy(after.before()).contains("s3cret"),
        "the password was echoed"
    );
    let config = std::fs::read_to_string(docker.path().join("config.json")).unwrap();
    assert!(config.contains("bWU6czNjcmV0"), "{config}");

    // No terminal (stdin is /dev/null in Skiff::cmd): no prompt, advice instead.
    skiff
        .run(&["login", &registry.addr])
        .code(125)
        .stderr_has("no terminal to ask on")
        .stderr_has("--password-stdin");
}
