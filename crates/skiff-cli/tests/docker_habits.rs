//! Docker habits at the terminal. A closed stdout ends skiff quietly: `skiff images | head -1`
//! must not panic (exit 101 with "failed printing to stdout" and, under RUST_BACKTRACE, a backtrace).
//!
//! Each verb writes into a pipe whose reader is already gone, so its first write fails with EPIPE
//! every time (a reader that closes "soon" would race the writer and often see nothing).

mod common;
use common::daemon::Daemon;
use common::guest;
use common::project::Project;
use std::process::Stdio;

/// Runs `skiff ARGS` with stdout closed at the far end; returns (status, stderr).
fn into_closed_pipe(cmd: &mut std::process::Command) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = cmd
        .env("RUST_BACKTRACE", "1")
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .expect("skiff runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_listing_verb_ends_quietly_when_its_reader_is_gone() {
    let d = Daemon::start(&[]);
    let s = &d.skiff;
    let p = Project::new("hello", "hello.wasm", "version = \"1.0\"\n");
    s.run(&["build", p.arg()]).code(0);
    // A workload, so that `ps` has a row to print.
    let job_id = s
        .run(&["run", "-d", "--name", "job", "hello:1.0"])
        .code(0)
        .stdout
        .clone();

    // logs --since/--until: a time window, with --tail counted inside it.
    d.wait_status("job", "exited");
    let all = s.run(&["logs", "job"]).code(0).stdout.clone();
    assert!(all.lines().count() >= 2, "{all}");
    s.run(&["logs", "--since", "1h", "job"])
        .code(0)
        .stdout_has("hello from skiff");
    assert_eq!(s.run(&["logs", "--until", "1h", "job"]).code(0).stdout, "");
    let last = all.lines().last().unwrap();
    assert_eq!(
        s.run(&[
            "logs",
            "--since",
            "2000-01-01T00:00:00Z",
            "--tail",
            "1",
            "job"
        ])
        .code(0)
        .stdout
        .trim_end(),
        last
    );
    s.run(&["logs", "--since", "yesterday", "job"])
        .code(125)
        .stderr_has("an age such as 10m");

    // ps --filter, as Docker: a status filter shows that status without -a.
    s.run(&["ps", "--filter", "status=exited", "-q"])
        .code(0)
        .stdout_has(&job_id[..12]);
    s.run(&["ps", "-a", "--filter", "kind=app", "-q"])
        .code(0)
        .stdout_lacks(&job_id[..12]);
    s.run(&[
        "ps",
        "-a",
        "-f",
        "name=jo",
        "-f",
        "kind=task",
        "--format",
        "{{.Name}}",
    ])
    .code(0)
    .stdout_has("job\n");
    s.run(&["ps", "--filter", "colour=red"])
        .code(125)
        .stderr_has("filter by name, id");

    // Docker's --format templates, on the same columns as the table.
    s.run(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .code(0)
        .stdout_has("hello:1.0\n");
    let names = s.run(&["ps", "-a", "--format", "table {{.Names}}\\t{{.Kind}}"]);
    names.code(0);
    assert_eq!(names.stdout, "NAME\tKIND\njob\ttask\n");
    s.run(&["ps", "--format", "{{.Ports}}"])
        .code(125)
        .stderr_has("no field .Ports; the fields are .Id, .Name");

    let verbs: &[&[&str]] = &[
        &["images"],
        &["images", "-q"],
        &["images", "--format", "json"],
        &["ps", "-a"],
        &["ps", "-a", "-q"],
        &["ps", "-a", "--format", "json"],
        &["inspect", "hello:1.0"],
        &["system", "info"],
        &["stats", "--no-stream"],
        &["stats", "--no-stream", "--format", "json"],
        &["events", "--since", "1h", "--until", "now"],
        &["--help"],
    ];
    for args in verbs {
        let (code, stderr) = into_closed_pipe(s.cmd().args(*args));
        // 141 (128 + SIGPIPE) as `ls | head` gives; clap's own --help output ends 0.
        assert!(
            matches!(code, Some(0 | 141)),
            "skiff {args:?} into a closed pipe: exit {code:?}, want 0 or 141; stderr:\n{stderr}"
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "skiff {args:?} into a closed pipe printed:\n{stderr}"
        );
    }
}

/// A Docker flag `run` lacks is named with what to use instead; a typo gets "did you mean". Both
/// are skiff's failure (125), and neither blames the flag's position: it is before the file.
#[test]
fn unknown_run_flags_get_advice_not_a_wrong_hint() {
    let s = common::Skiff::new();
    let hello = common::guest("hello.wasm");
    let hello = hello.to_str().unwrap();
    for (flag, advice) in [
        ("-it", "no terminal"),
        ("-P", "-p HOST_PORT:PORT"),
        ("--memroy", "did you mean --memory?"),
    ] {
        s.run(&["run", flag, hello])
            .code(125)
            .stderr_has(&format!("unknown flag {flag}"))
            .stderr_has(advice)
            .stderr_lacks("before the file");
    }
}

/// Docker's verbs a user reaches for: `version` (with or without a daemon), `kill`, `restart`
/// with its own help, completions and man pages generated from the parser, global flags apart.
#[test]
fn version_kill_restart_completion_and_man() {
    let s = common::Skiff::new();
    // No daemon: the client's versions, and a line saying so; not an error.
    s.run(&["version"])
        .code(0)
        .stdout_has("Wasmtime:    48.")
        .stdout_has("0.2.12")
        .stdout_has("Daemon:      not reachable");
    let d = Daemon::start(&["--http-listen", "127.0.0.1:0"]);
    let v: serde_json::Value =
        serde_json::from_str(&d.skiff.run(&["version", "--format", "json"]).code(0).stdout)
            .unwrap();
    assert_eq!(v["daemon"]["version"], v["client"]["version"], "{v}");

    // kill: no grace. A task looping forever is stopped now.
    let spin = common::guest("loop.wasm");
    d.run(&["run", "-d", "--name", "nap", spin.to_str().unwrap()])
        .code(0);
    d.wait_status("nap", "running");
    d.run(&["kill", "nap"]).code(0).stdout_has("nap");
    assert_eq!(d.inspect("nap")["state"]["status"], "stopped");
    assert_eq!(d.inspect("nap")["desired"], "stopped");
    d.run(&["kill", "nobody"]).code(1).stderr_has("nobody");

    s.run(&["restart", "--help"])
        .code(0)
        .stdout_has("skiff restart job")
        .stdout_lacks("skiff stop");
    // Global flags are listed apart from the verb's own.
    let help = s.run(&["run", "--help"]).code(0).stdout.clone();
    let (own, global) = help
        .split_once("Global options:")
        .expect("a Global options heading");
    assert!(
        own.contains("--memory") && !own.contains("--log-level"),
        "{help}"
    );
    assert!(
        global.contains("--log-level") && global.contains("--home"),
        "{help}"
    );

    for (shell, marker) in [
        ("bash", "_skiff()"),
        ("zsh", "#compdef skiff"),
        ("fish", "complete -c skiff"),
    ] {
        s.run(&["completion", shell])
            .code(0)
            .stdout_has(marker)
            .stdout_has("deploy");
    }
    let dir = tempfile::tempdir().unwrap();
    s.run(&["man", "--dir", dir.path().to_str().unwrap()])
        .code(0);
    let run_page = std::fs::read_to_string(dir.path().join("skiff-run.1")).unwrap();
    assert!(
        run_page.contains(".TH skiff-run 1") && run_page.contains("memory"),
        "{run_page}"
    );
    assert!(dir.path().join("skiff.1").is_file());
    for args in [&["completion", "bash"][..], &["man"]] {
        let (code, stderr) = into_closed_pipe(s.cmd().args(args));
        assert_eq!(code, Some(141), "skiff {args:?}: {stderr}");
    }
}

/// Inputs as people type them: sizes with decimals, a bare memory number refused with the
/// likely meaning, listen addresses without an IP, a route without its `/`, a compose.yaml.
#[test]
fn inputs_as_people_type_them() {
    let s = common::Skiff::new();
    let hello = common::guest("hello.wasm");
    let hello = hello.to_str().unwrap();
    s.run(&["run", "--memory", "64", hello])
        .code(125)
        .stderr_has("did you mean 64m?");
    s.run(&["run", "--memory", "1.5g", hello])
        .code(0)
        .stdout_has("hello from skiff");

    // A short name whose only local tag is not :latest: said before any registry is asked.
    let p = Project::new("hello", "hello.wasm", "version = \"1.0\"\n");
    s.run(&["build", p.arg()]).code(0);
    s.run_env("SKIFF_REGISTRY_STALL_TIMEOUT", "1s", &["run", "hello"])
        .stderr_has("Unable to find image 'hello' locally")
        .stderr_has("note: the local store has hello:1.0");

    let d = Daemon::start(&["--http-listen", "localhost:0"]);
    let addr = std::fs::read_to_string(d.skiff.home.path().join("daemon/http-addr")).unwrap();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");

    let http = common::guest("http-hello.wasm");
    s.run(&["serve", &format!("{}@shop", http.display())])
        .code(125)
        .stderr_has("did you mean /shop")
        .stderr_has("or shop/");

    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("compose.yaml");
    std::fs::write(&yaml, "services:\n  web:\n    image: nginx\n").unwrap();
    d.run(&["up", "-f", yaml.to_str().unwrap()])
        .code(125)
        .stderr_has("Docker Compose (YAML)")
        .stderr_has("[workloads.NAME]");
}

/// Errors print once: one cause chain, no cause repeated, one hint; binary input never echoed.
#[test]
fn errors_print_once_with_one_hint() {
    let s = common::Skiff::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let http = common::guest("http-hello.wasm");
    let out = s.run(&["serve", "--listen", &addr, http.to_str().unwrap()]);
    out.code(125).stderr_has("port 0 picks a free one");
    assert_eq!(
        out.stderr.matches("Address already in use").count(),
        1,
        "{}",
        out.stderr
    );

    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.tar");
    let bytes: Vec<u8> = (0..2048u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&garbage, &bytes).unwrap();
    let out = s.run(&["load", "-i", garbage.to_str().unwrap()]);
    out.code(125).stderr_has("cannot load");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.chars().all(|c| c == '\n' || !c.is_control()),
        "control bytes echoed: {:?}",
        out.stderr
    );
}

/// `system df` says what skiff keeps and what no name needs; `system prune` takes that back and
/// removes stopped workloads, as Docker's do, asking first unless -f.
#[test]
fn system_df_and_prune() {
    let d = Daemon::start(&[]);
    let s = &d.skiff;
    let p = Project::new("hello", "hello.wasm", "version = \"1.0\"\n");
    s.run(&["build", p.arg()]).code(0);
    // The same name built again from another binary: the first image's blobs are unreachable.
    let p2 = Project::new("hello", "hello-p2.wasm", "version = \"1.0\"\n");
    s.run(&["build", p2.arg()]).code(0);
    d.run(&["run", "-d", "--name", "done", "hello:1.0"]).code(0);
    d.wait_status("done", "exited");

    let df: serde_json::Value =
        serde_json::from_str(&s.run(&["system", "df", "--format", "json"]).code(0).stdout).unwrap();
    assert_eq!(df[0]["type"], "Images");
    assert_eq!(df[0]["total"], 1);
    assert!(df[0]["reclaimable_bytes"].as_u64().unwrap() > 0, "{df}");
    s.run(&["system", "df"])
        .code(0)
        .stdout_has("TYPE")
        .stdout_has("Compiled code");

    s.run(&["system", "prune"]).code(125).stderr_has("add -f");
    s.run(&["system", "prune", "-f"])
        .code(0)
        .stdout_has("Deleted workloads:\ndone\n")
        .stdout_has("Total reclaimed space");
    let df: serde_json::Value =
        serde_json::from_str(&s.run(&["system", "df", "--format", "json"]).code(0).stdout).unwrap();
    assert_eq!(df[0]["reclaimable_bytes"], 0, "{df}");
    assert_eq!(df[1]["reclaimable_bytes"], 0, "{df}");
    s.run(&["ps", "-a"]).code(0).stdout_lacks("done");
    s.run(&["run", "hello:1.0"]).code(0);
}

/// `--rm`, as Docker: with -d the workload and its logs go once it ends; in the foreground it
/// changes nothing (a foreground run keeps nothing); never with a restart policy.
#[test]
fn run_rm_removes_the_ended_workload() {
    let d = Daemon::start(&[]);
    let hello = common::guest("hello.wasm");
    let hello = hello.to_str().unwrap();
    d.run(&["run", "--rm", hello, "x"])
        .code(0)
        .stdout_has("hello from skiff");
    let id = d
        .run(&["run", "-d", "--rm", "--name", "gone", hello])
        .code(0)
        .stdout
        .clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !d.run(&["ps", "-a", "-q", "--no-trunc"]).stdout.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "--rm left the workload"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    d.run(&["logs", "gone"])
        .code(1)
        .stderr_has("no such workload");
    assert!(!d
        .skiff
        .home
        .path()
        .join("daemon/logs")
        .join(id.trim())
        .exists());
    d.run(&["run", "-d", "--rm", "--restart", "always", hello])
        .code(125)
        .stderr_has("--restart");
}

/// `run -p`: an HTTP component served as `skiff serve` serves it, on the host port asked for;
/// a command is refused (it listens on no port).
#[test]
fn run_publish_serves_an_http_component() {
    let http = guest("http-hello.wasm");
    let served =
        common::serve::Served::start_verb(&["run", "-p", "127.0.0.1:0:80", http.to_str().unwrap()]);
    let reply = common::serve::curl(&[&served.url("/")]);
    assert_eq!(reply.status, 200, "{}", served.stderr());
    assert!(reply.header("x-request-id").is_some());
    let s = common::Skiff::new();
    let hello = guest("hello.wasm");
    s.run(&["run", "-p", "8080:80", hello.to_str().unwrap()])
        .code(125)
        .stderr_has("-p publishes an HTTP component")
        .stderr_has("listens on no port");
    s.run(&["run", "-p", "web", http.to_str().unwrap()])
        .code(125)
        .stderr_has("HOST_PORT:PORT");
}

/// `serve --access-log`: one line per request (time, app, method, path without its query,
/// status, bytes, duration, request id), unrouted requests included.
#[test]
fn serve_writes_an_access_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let http = guest("http-hello.wasm");
    let served = common::serve::Served::start(&[
        "--access-log",
        log.to_str().unwrap(),
        &format!("api={}@/api", http.display()),
    ]);
    let ok = common::serve::curl(&[&served.url("/api/x?token=secret")]);
    assert_eq!(ok.status, 200);
    assert_eq!(
        common::serve::curl(&[&served.url("/elsewhere")]).status,
        404
    );
    let id = ok.header("x-request-id").unwrap();
    let deadline = std::time::Instant::now() + common::daemon::PATIENCE;
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().count() >= 2 {
            break text;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let lines: Vec<&str> = text.lines().collect();
    let f: Vec<&str> = lines[0].split(' ').collect();
    assert_eq!(f.len(), 8, "{}", lines[0]);
    assert!(skiff_store_time_like(f[0]), "{}", lines[0]);
    assert_eq!(&f[1..5], ["api", "GET", "/api/x", "200"], "{}", lines[0]);
    assert_eq!(f[5], ok.body.len().to_string());
    assert!(f[6].ends_with("ms"));
    assert_eq!(f[7], id);
    assert!(!text.contains("secret"), "{text}");
    assert!(lines[1].contains(" - GET /elsewhere 404 "), "{}", lines[1]);
}

fn skiff_store_time_like(s: &str) -> bool {
    s.len() >= 20 && s.as_bytes()[4] == b'-' && s.as_bytes()[10] == b'T' && s.ends_with('Z')
}

/// A core module whose compile takes seconds: `funcs` functions of `ops` multiply-adds each and
/// an empty `_start`. 20,000 × 50 is 6 MB of code: ~4 s of Cranelift CPU on this machine, so
/// even two idle cores take well over the notice's one second.
fn slow_to_compile(funcs: u32, ops: usize) -> Vec<u8> {
    fn leb(mut n: u32, out: &mut Vec<u8>) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }
    fn section(id: u8, payload: Vec<u8>, out: &mut Vec<u8>) {
        out.push(id);
        leb(payload.len() as u32, out);
        out.extend(payload);
    }
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    // Types: (i32) -> i32, and () -> () for _start.
    section(1, b"\x02\x60\x01\x7f\x01\x7f\x60\x00\x00".to_vec(), &mut m);
    let mut f = Vec::new();
    leb(funcs + 1, &mut f);
    f.extend(std::iter::repeat_n(0u8, funcs as usize));
    f.push(1);
    section(3, f, &mut m);
    let mut e = b"\x01\x06_start\x00".to_vec();
    leb(funcs, &mut e);
    section(7, e, &mut m);
    // local.get 0, then (local.get 0; i32.add; i32.const 3; i32.mul) × ops.
    let mut body = b"\x00\x20\x00".to_vec();
    for _ in 0..ops {
        body.extend(b"\x20\x00\x6a\x41\x03\x6c");
    }
    body.push(0x0b);
    let mut c = Vec::new();
    leb(funcs + 1, &mut c);
    for _ in 0..funcs {
        leb(body.len() as u32, &mut c);
        c.extend(&body);
    }
    c.extend(b"\x02\x00\x0b");
    section(10, c, &mut m);
    m
}

/// A compile of over a second says so: a spinner on a terminal (a pseudo-terminal here), one
/// line otherwise, also while the daemon compiles for `run -d`; a cache hit says nothing.
#[test]
fn a_slow_compile_says_so() {
    use expectrl::Expect;
    let s = common::Skiff::new();
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.wasm");
    std::fs::write(&big, slow_to_compile(20_000, 50)).unwrap();
    let big = big.to_str().unwrap();
    // Not `s.cmd()`: its stdin is /dev/null; here the terminal is every stream.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_skiff"));
    cmd.env_clear()
        .env("SKIFF_HOME", s.home.path())
        .env("TERM", "xterm")
        .args(["run", big]);
    let mut term = expectrl::Session::spawn(cmd).expect("a pseudo-terminal");
    term.set_expect_timeout(Some(std::time::Duration::from_secs(120)));
    let all = term.expect(expectrl::Eof).unwrap();
    let text = String::from_utf8_lossy(all.as_bytes()).into_owned();
    // The spinner redraws its line with the time spent; the one-line form is for pipes.
    assert!(
        text.contains("Compiling") && text.contains("(6.14MB)"),
        "{text}"
    );
    assert!(!text.contains("later runs use the compile cache"), "{text}");
    // Cached now: nothing to say.
    s.run(&["run", big]).code(0).stderr_lacks("Compiling");
    // Not a terminal: one line.
    s.run(&["run", "--no-cache", big])
        .code(0)
        .stderr_has("Compiling")
        .stderr_has("later runs use the compile cache");

    // The daemon compiles at upload (its own engine settings: its own cache entry).
    let d = Daemon::start_in(s, &[]);
    d.run(&["run", "-d", "--name", "big", big])
        .code(0)
        .stderr_has("Compiling");
    d.wait_status("big", "exited");
}
