//! Input hygiene: what an image says reaches no terminal raw; skiff.toml values are checked,
//! key by key; crash leftovers are listed, repaired and swept, never a live write's; the
//! daemon's --allow-mount confines API clients.

mod common;
use common::daemon::Daemon;
use common::project::{digest_of, Project};
use common::{guest, Skiff};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What an adversary puts in an image: clear the screen, retitle the window, an 8-bit CSI,
/// a carriage return and a line break forging a line of the report, a right-to-left override.
const EVIL: &str = "a\x1b[2J\x1b]0;pwned\x07\u{9b}31m\rb\nforged: line\u{202e}z";

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every character a terminal would act on, other than the printer's own line breaks.
fn assert_no_controls(what: &str, text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| {
            c != '\n'
                && (c.is_control()
                    || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
        })
        .collect();
    assert!(bad.is_empty(), "{what} prints raw {bad:?}:\n{text}");
    assert!(
        !text.lines().any(|l| l.trim_start().starts_with("forged")),
        "{what} let the image forge a line:\n{text}"
    );
}

/// A store holding `evil:1`: a built image whose manifest and config were rewritten to carry
/// EVIL, stored exactly as a pull of such an image from a registry stores it.
fn hostile_image(s: &Skiff) {
    let p = Project::new("evil", "hello.wasm", "version = \"0\"\n");
    let digest = digest_of(&s.run(&["build", "-q", p.arg()]).code(0).stdout);
    let blobs = s.home.path().join("blobs/sha256");
    let blob = |d: &str| std::fs::read(blobs.join(d.trim_start_matches("sha256:"))).unwrap();
    let put = |bytes: &[u8]| {
        let hex = sha256_hex(bytes);
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        hex
    };
    let mut manifest: serde_json::Value = serde_json::from_slice(&blob(&digest)).unwrap();
    let mut config: serde_json::Value =
        serde_json::from_slice(&blob(manifest["config"]["digest"].as_str().unwrap())).unwrap();
    config["author"] = EVIL.into();
    config["created"] = EVIL.into();
    let config = serde_json::to_vec(&config).unwrap();
    manifest["config"]["digest"] = format!("sha256:{}", put(&config)).into();
    manifest["config"]["size"] = config.len().into();
    let a = &mut manifest["annotations"];
    a["org.example.note"] = EVIL.into();
    a[format!("key{EVIL}")] = "value".into();
    a["dev.skiff.env"] = serde_json::json!({ "K": EVIL }).to_string().into();
    a["dev.skiff.args"] = serde_json::json!([EVIL]).to_string().into();
    a["dev.skiff.http.route"] = EVIL.into();
    a["dev.skiff.request.outbound"] = serde_json::json!([EVIL]).to_string().into();
    let hex = put(&serde_json::to_vec(&manifest).unwrap());
    let tags = s.home.path().join("tags/docker.io/library/evil/_tags");
    std::fs::create_dir_all(&tags).unwrap();
    std::fs::write(tags.join("1"), format!("sha256:{hex}\n")).unwrap();
}

#[test]
fn what_an_image_says_reaches_no_terminal_raw() {
    let s = Skiff::new();
    hostile_image(&s);
    let table = s.run(&["inspect", "evil:1"]);
    table
        .code(0)
        .stdout_has("\\x1b[2J")
        .stdout_has("\\u{9b}31m");
    assert_no_controls("inspect", &table.stdout);
    let images = s.run(&["images"]);
    images.code(0).stdout_has("evil").stdout_has("\\x1b[2J");
    assert_no_controls("images", &images.stdout);

    // JSON is exact: the same strings come back, and the text is still safe to print.
    let json = s.run(&["inspect", "--format", "json", "evil:1"]);
    json.code(0);
    assert_no_controls("inspect --format json", &json.stdout);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let image = &v["image"];
    assert_eq!(image["manifest"]["annotations"]["org.example.note"], EVIL);
    assert_eq!(image["config"]["author"], EVIL);
    assert_eq!(image["defaults"]["env"]["K"], EVIL);
    assert_eq!(image["defaults"]["args"][0], EVIL);
    let json = s.run(&["images", "--format", "json"]);
    assert_no_controls("images --format json", &json.stdout);
    let v: Vec<serde_json::Value> = serde_json::from_str(&json.stdout).unwrap();
    let row = v.iter().find(|r| r["tag"] == "1").expect("evil:1 listed");
    assert_eq!(row["created"], EVIL);

    // An error quoting what it was given.
    let err = s.run(&["inspect", &format!("{EVIL}.wasm")]);
    assert_ne!(err.code, 0);
    assert!(err.stderr.contains("\\x1b[2J"), "{err}");
    assert_no_controls("an error", &err.stderr);
}

// ---- skiff.toml -------------------------------------------------------------------------------

/// `skiff build` of a context holding `toml`; it must fail naming `key` and saying `says`,
/// and build nothing.
fn build_refused(s: &Skiff, dir: &Path, toml: &str, key: &str, says: &str) {
    std::fs::write(dir.join("skiff.toml"), toml).unwrap();
    let done = s.run(&["build", "--no-build-command", dir.to_str().unwrap()]);
    done.code(125).stderr_has(key).stderr_has(says);
    assert_eq!(s.run(&["images", "-q"]).code(0).stdout, "", "{toml}");
}

#[test]
fn skiff_toml_values_are_checked_and_the_key_named() {
    let s = Skiff::new();
    let ctx = tempfile::tempdir().unwrap();
    let dir = ctx.path();
    std::fs::copy(guest("hello.wasm"), dir.join("app.wasm")).unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.wasm"), dir.join("out.wasm")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.join("zero.wasm")).unwrap();
    std::os::unix::fs::symlink("/etc", dir.join("etc")).unwrap();
    std::fs::create_dir(dir.join("sub.wasm")).unwrap();
    let fifo = dir.join("fifo.wasm");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());

    let with = |wasm: &str, extra: &str| format!("name = \"a\"\nwasm = {wasm:?}\n{extra}");
    let cases: &[(String, &str, &str)] = &[
        (with("/dev/zero", ""), "wasm", "is absolute"),
        (with("../x.wasm", ""), "wasm", "has `..`"),
        (with("out.wasm", ""), "wasm", "outside the build context"),
        (with("zero.wasm", ""), "wasm", "outside the build context"),
        (with("etc/passwd", ""), "wasm", "outside the build context"),
        (
            with("fifo.wasm", ""),
            "wasm",
            "must be a regular file, and this is a FIFO",
        ),
        (with("sub.wasm", ""), "wasm", "this is a directory"),
        (
            with("app.wasm", "description = \"\\u001b[2J\"\n"),
            "description",
            "control character",
        ),
        (
            with("app.wasm", "author = \"a\\nb\"\n"),
            "author",
            "control character",
        ),
        (
            with("app.wasm", "args = [\"ok\", \"\\u0000\"]\n"),
            "args[1]",
            "control character",
        ),
        (
            with("app.wasm", "[env]\n\"A B\" = \"x\"\n"),
            "env.A B",
            "not a variable name",
        ),
        (
            with("app.wasm", "[env]\nK = \"\\u0000\"\n"),
            "env.K",
            "control character",
        ),
        (
            with("app.wasm", "[capabilities]\nenv = [\"A=B\"]\n"),
            "capabilities.env",
            "not a variable name",
        ),
        (
            with("app.wasm", "[capabilities]\ndirs = [\"/a:/b\"]\n"),
            "capabilities.dirs",
            "has `:`",
        ),
        (
            with("app.wasm", "[capabilities]\ndirs = [\"/a/../..\"]\n"),
            "capabilities.dirs",
            "without `..`",
        ),
        (
            with(
                "app.wasm",
                "[capabilities]\noutbound = [\"https://a b.example\"]\n",
            ),
            "capabilities.outbound",
            "scheme://host[:port]",
        ),
        (
            with(
                "app.wasm",
                "[capabilities]\noutbound = [\"https://a.example:99999\"]\n",
            ),
            "capabilities.outbound",
            "the port must be 1-65535",
        ),
        (
            with(
                "app.wasm",
                "[capabilities]\noutbound = [\"ftp://a.example\"]\n",
            ),
            "capabilities.outbound",
            "http, https or *",
        ),
        (
            with("app.wasm", "[http]\nroute = \"/a b\"\n"),
            "http.route",
            "URL path prefix",
        ),
        (
            with("app.wasm", "[http]\nroute = \"/a?x=1\"\n"),
            "http.route",
            "URL path prefix",
        ),
        (
            with(
                "app.wasm",
                &format!("description = \"{}\"\n", "x".repeat(70_000)),
            ),
            "description",
            "over the limit of 65536",
        ),
    ];
    for (toml, key, says) in cases {
        build_refused(&s, dir, toml, key, says);
    }
    // The FIFO was refused without being opened: the build did not wait for a writer. And the
    // same context builds once skiff.toml is right.
    std::fs::write(dir.join("skiff.toml"), with("app.wasm", "")).unwrap();
    s.run(&["build", dir.to_str().unwrap()]).code(0);

    // skiff.toml itself: a device, or too large, is refused before it is read whole.
    s.run(&["build", "-f", "/dev/zero", dir.to_str().unwrap()])
        .code(125)
        .stderr_has("skiff.toml must be a regular file, and this is a device");
    let big = dir.join("big.toml");
    std::fs::write(&big, vec![b'#'; (1 << 20) + 1]).unwrap();
    s.run(&["build", "-f", big.to_str().unwrap(), dir.to_str().unwrap()])
        .code(125)
        .stderr_has("over the limit of 1048576 bytes");
    // A compose file too.
    s.run(&["up", "-f", "/dev/zero"])
        .code(125)
        .stderr_has("a compose file must be a regular file, and this is a device");
}

// ---- crash leftovers ----------------------------------------------------------------------------

/// The entries of a directory (none if it does not exist).
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// `skiff load` stopped in the middle of a 64 MiB blob: a tar header and 1 MiB of it are in
/// the pipe, and the pipe stays open. Returns once its staging directory exists.
fn load_mid_blob(s: &Skiff) -> (Child, std::process::ChildStdin) {
    let mut child = s
        .cmd()
        .arg("load")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_path(format!("blobs/sha256/{}", "ab".repeat(32)))
        .unwrap();
    h.set_size(64 << 20);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_cksum();
    stdin.write_all(h.as_bytes()).unwrap();
    stdin.write_all(&vec![7u8; 1 << 20]).unwrap();
    let tmp = s.home.path().join("tmp");
    let deadline = Instant::now() + Duration::from_secs(60);
    while entries(&tmp).is_empty() {
        assert!(
            Instant::now() < deadline,
            "skiff load never started writing"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    (child, stdin)
}

#[test]
fn a_killed_writes_leftover_is_listed_repaired_and_swept_a_live_one_never() {
    let s = Skiff::new();
    let tmp = s.home.path().join("tmp");

    // A write in flight: check leaves it alone and says so; another command's start too.
    let (mut child, stdin) = load_mid_blob(&s);
    let live = entries(&tmp);
    s.run(&["system", "check"])
        .code(0)
        .stdout_has("1 write(s) in flight")
        .stdout_has(" 0 leftovers");
    s.run(&["images"]).code(0);
    assert_eq!(entries(&tmp), live, "a live write's staging dir was swept");

    // kill -9: its staging dir (and the partial blob in it) stays, unlocked.
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    assert_eq!(entries(&tmp), live);
    let check = s.run(&["system", "check"]);
    check
        .code(0)
        .stdout_has("leftover of an interrupted write")
        .stdout_has(live[0].to_str().unwrap())
        .stdout_has(" 1 leftover of interrupted writes");
    s.run(&["system", "check", "--repair"])
        .code(0)
        .stdout_has("removed: leftover of an interrupted write");
    assert!(entries(&tmp).is_empty());

    // Again, and this time the next command's start sweeps it.
    let (mut child, stdin) = load_mid_blob(&s);
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    assert_eq!(entries(&tmp).len(), 1);
    s.run(&["images"]).code(0);
    assert!(entries(&tmp).is_empty(), "{:?}", entries(&tmp));
    s.run(&["system", "check"])
        .code(0)
        .stdout_has(" 0 leftovers");
}

#[test]
fn the_compile_caches_leftovers_go_its_writes_in_flight_stay() {
    let s = Skiff::new();
    let cache_tmp = s.home.path().join("cache/compiled/tmp");
    std::fs::create_dir_all(&cache_tmp).unwrap();
    // Named as the cache's writer names its temp files; no process holds it, as after kill -9.
    let dead = cache_tmp.join(".tmp-k1LLed.cwasm");
    std::fs::write(&dead, b"SKIFFCW1 half an artifact").unwrap();
    // Held by a running process, with flock(2) as the writer holds it: the shell opens it,
    // flock(1) locks that descriptor, and `sleep` inherits it, the lock's only holder.
    let held = cache_tmp.join(".tmp-RunNng.cwasm");
    std::fs::write(&held, b"SKIFFCW1 being written").unwrap();
    let mut holder = Command::new("sh")
        .args(["-c", "exec 9<\"$0\"; flock 9; exec sleep 600"])
        .arg(&held)
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    // Ready once flock(1) holds the lock: a non-blocking attempt of our own then fails.
    while Command::new("flock")
        .args(["-n"])
        .arg(&held)
        .arg("true")
        .status()
        .unwrap()
        .success()
    {
        assert!(Instant::now() < deadline, "flock never took the lock");
        std::thread::sleep(Duration::from_millis(10));
    }
    let holder = Kill(&mut holder);

    s.run(&["system", "check"])
        .code(0)
        .stdout_has(dead.to_str().unwrap())
        .stdout_has("1 write(s) in flight");
    // `skiff run` opens the compile cache: the dead compile's file goes, the live one stays.
    s.run(&["run", guest("hello.wasm").to_str().unwrap()])
        .code(0);
    assert!(!dead.exists());
    assert!(held.exists());
    s.run(&["system", "check", "--repair"]).code(0);
    assert!(held.exists(), "repair removed a file a live process holds");
    drop(holder);
    s.run(&["system", "check", "--repair"])
        .code(0)
        .stdout_has("removed: leftover");
    assert!(!held.exists());
}

// ---- the daemon's --allow-mount ---------------------------------------------------------------

#[test]
fn allow_mount_confines_what_api_clients_mount() {
    let root = tempfile::tempdir().unwrap();
    let allowed = root.path().join("allowed");
    let secret = root.path().join("secret");
    for (dir, text) in [(&allowed, "from the host\n"), (&secret, "the secret\n")] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("in.txt"), text).unwrap();
    }
    std::os::unix::fs::symlink(&secret, allowed.join("link")).unwrap();
    std::fs::create_dir_all(root.path().join("allowed2")).unwrap();
    let d = Daemon::start(&["--allow-mount", allowed.to_str().unwrap()]);
    assert!(
        d.stderr().contains("mount host directories under"),
        "{}",
        d.stderr()
    );
    let hello = guest("hello.wasm");
    let hello = hello.to_str().unwrap();

    // Inside: mounted and read, as always.
    d.run(&[
        "run",
        "-d",
        "--name",
        "ok",
        "-v",
        &format!("{}:/data:ro", allowed.display()),
        hello,
    ])
    .code(0);
    d.wait_status("ok", "exited");
    assert!(d.log_lines("ok").iter().any(|l| l == "read: from the host"));

    // Outside: refused before anything runs, naming the flag.
    for host in ["/".to_string(), allowed.join("link").display().to_string()] {
        d.run(&["run", "-d", "-v", &format!("{host}:/data:ro"), hello])
            .code(125)
            .stderr_has("--allow-mount");
    }
    // However a client that is not the CLI spells it (the CLI resolves paths itself): 403.
    let image = d.inspect("ok")["spec"]["image"]
        .as_str()
        .unwrap()
        .to_string();
    let escapes = [
        "/".to_string(),
        secret.display().to_string(),
        format!("{}/../secret", allowed.display()),
        format!("{}/link", allowed.display()),
        format!("{}/link/../../..", allowed.display()),
        root.path().join("allowed2").display().to_string(),
        format!("{}/nonexistent/../../secret", allowed.display()),
    ];
    for host in &escapes {
        let body = serde_json::json!({
            "name": "raw",
            "spec": {"image": image, "mounts": [{"host": host, "guest": "/data"}]}
        });
        let (status, answer) = d.api("POST", "/v1/workloads", Some(&body.to_string()));
        assert_eq!(status, 403, "{host}: {answer}");
        assert!(answer.contains("--allow-mount"), "{answer}");
    }
    let (_, list) = d.api("GET", "/v1/workloads?all=true", None);
    assert!(
        !list.contains("\"raw\""),
        "a refused workload was created: {list}"
    );

    // A name an API client chose reaches `ps` escaped.
    let body = serde_json::json!({
        "name": "shown",
        "spec": {"image": image, "image_name": EVIL},
        "start": false
    });
    let (status, answer) = d.api("POST", "/v1/workloads", Some(&body.to_string()));
    assert_eq!(status, 201, "{answer}");
    let ps = d.run(&["ps", "-a"]);
    ps.code(0).stdout_has("shown");
    assert_no_controls("ps", &ps.stdout);
}

/// A workload accepted by a daemon without --allow-mount, then started through the API of a
/// daemon with it: the narrower rule holds (before the fix, only recovery checked it, and
/// `start` ran the guest with the secret mounted).
#[test]
fn a_narrower_allow_mount_holds_for_workloads_accepted_before_it() {
    let root = tempfile::tempdir().unwrap();
    let allowed = root.path().join("allowed");
    let secret = root.path().join("secret");
    for (dir, text) in [(&allowed, "from the host\n"), (&secret, "the secret\n")] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("in.txt"), text).unwrap();
    }
    let mut d = Daemon::start(&[]);
    run_hello_reading(&d, "ok", &allowed, &[]);
    d.wait_status("ok", "exited");
    let image = d.inspect("ok")["spec"]["image"]
        .as_str()
        .unwrap()
        .to_string();
    let body = serde_json::json!({
        "name": "old",
        "spec": {"image": image, "mounts": [{"host": secret.display().to_string(), "guest": "/data", "read_only": true}]},
        "start": false
    });
    let (status, answer) = d.api("POST", "/v1/workloads", Some(&body.to_string()));
    assert_eq!(status, 201, "{answer}");

    d.restart_with(&["--allow-mount", allowed.to_str().unwrap()]);
    let (status, answer) = d.api("POST", "/v1/workloads/old/start", None);
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("--allow-mount"), "{answer}");
    d.run(&["start", "old"]).code(1).stderr_has("--allow-mount");
    assert!(d.log_lines("old").is_empty(), "the refused workload ran");
    assert_ne!(d.inspect("old")["state"]["status"], "running");
    // Everyone else is still served: a mount inside runs as before.
    run_hello_reading(&d, "new", &allowed, &[]);
    d.wait_status("new", "exited");
    assert!(d
        .log_lines("new")
        .iter()
        .any(|l| l == "read: from the host"));
}

/// A directory inside the allowed prefix when the workload was accepted, swapped for a symlink
/// out of it while the workload restarts (a guest with the parent mounted read-write can do
/// the swap): the next run is refused, not started with the secret mounted.
#[test]
fn allow_mount_is_checked_again_before_every_restart() {
    let root = tempfile::tempdir().unwrap();
    let allowed = root.path().join("allowed");
    let sub = allowed.join("sub");
    let secret = root.path().join("secret");
    for (dir, text) in [(&sub, "from the host\n"), (&secret, "the secret\n")] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("in.txt"), text).unwrap();
    }
    let d = Daemon::start(&["--allow-mount", allowed.to_str().unwrap()]);
    run_hello_reading(&d, "again", &sub, &["--restart", "always"]);
    d.wait_log("again", "the file read once", |l| {
        l.iter().any(|l| l == "read: from the host")
    });
    std::fs::rename(&sub, allowed.join("old")).unwrap();
    std::os::unix::fs::symlink(&secret, &sub).unwrap();
    let w = d.wait_status("again", "exited");
    assert!(
        w["state"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("--allow-mount"),
        "{w}"
    );
    assert!(
        !d.log_lines("again")
            .iter()
            .any(|l| l.contains("the secret")),
        "a restart ran with the secret mounted"
    );
}

/// Under --allow-mount, a mount that is missing when the daemon starts (a filesystem mounted
/// later in the boot) is retried by the restart policy, as without the flag, not stopped for
/// good; it runs once the directory is there.
#[test]
fn allow_mount_retries_a_mount_missing_at_daemon_start() {
    let root = tempfile::tempdir().unwrap();
    let allowed = root.path().join("allowed");
    let sub = allowed.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(sub.join("in.txt"), "from the host\n").unwrap();
    let flags = ["--allow-mount", allowed.to_str().unwrap()];
    let mut d = Daemon::start(&flags);
    run_hello_reading(&d, "boot", &sub, &["--restart", "always"]);
    d.wait_log("boot", "a first run", |l| {
        l.iter().any(|l| l == "read: from the host")
    });
    d.kill9();
    std::fs::rename(&sub, allowed.join("later")).unwrap();
    d.restart_with(&flags);
    let w = d.wait_for("boot", "a run that failed", |w| {
        w["state"]["error"].is_string()
    });
    assert_eq!(w["desired"], "running", "stopped for good: {w}");
    std::fs::rename(allowed.join("later"), &sub).unwrap();
    let before = d.log_lines("boot").len();
    d.wait_log("boot", "a run after the mount came back", |l| {
        l.len() > before && l.iter().skip(before).any(|l| l == "read: from the host")
    });
}

/// `skiff run -d --name NAME [EXTRA…] -v DIR:/data:ro hello.wasm`: hello prints what it reads
/// from /data/in.txt, so the log shows which directory was mounted.
fn run_hello_reading(d: &Daemon, name: &str, dir: &Path, extra: &[&str]) {
    let hello = guest("hello.wasm");
    let mount = format!("{}:/data:ro", dir.display());
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend(["-v", &mount, hello.to_str().unwrap()]);
    d.run(&args).code(0);
}
