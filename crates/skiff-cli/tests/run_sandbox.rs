//! `skiff run`: every grant, and every denial when nothing is granted.

mod common;
use common::{guest, Skiff};
use std::fs;

#[test]
fn nothing_is_granted_by_default() {
    let s = Skiff::new();
    let hello = guest("hello.wasm");
    s.run(&["run", hello.to_str().unwrap(), "a", "b c"])
        .code(0)
        .stdout_has("hello from skiff")
        .stdout_has("arg[0]=hello.wasm")
        .stdout_has("arg[1]=a")
        .stdout_has("arg[2]=b c")
        .stdout_has("NAME=(unset)")
        .stdout_has("env count: 0")
        .stdout_has("read: error");
}

#[test]
fn args_that_look_like_flags_go_to_the_guest() {
    let s = Skiff::new();
    let hello = guest("hello.wasm");
    s.run(&["run", hello.to_str().unwrap(), "--memory", "-e"])
        .code(0)
        .stdout_has("arg[1]=--memory")
        .stdout_has("arg[2]=-e");
}

#[test]
fn env_grants() {
    let s = Skiff::new();
    let hello = guest("hello.wasm");
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("app.env");
    fs::write(&env_file, "# a comment\nFROM_FILE=1\n\nOTHER=two\n").unwrap();

    s.run(&["run", "-e", "NAME=x", hello.to_str().unwrap()])
        .code(0)
        .stdout_has("NAME=x")
        .stdout_has("env count: 1");

    // `-e K` passes the host's value; a K the host lacks is skipped, as Docker does.
    let out = s
        .cmd()
        .env("NAME", "from-host")
        .args(["run", "-e", "NAME", "-e", "NOT_ON_HOST"])
        .arg(&hello)
        .output()
        .unwrap();
    common::Done::from(out)
        .code(0)
        .stdout_has("NAME=from-host")
        .stdout_has("env count: 1");

    s.run(&[
        "run",
        "--env-file",
        env_file.to_str().unwrap(),
        hello.to_str().unwrap(),
    ])
    .code(0)
    .stdout_has("env count: 2");
}

#[test]
fn host_environment_does_not_leak() {
    let s = Skiff::new();
    let out = s
        .cmd()
        .env("NAME", "secret")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        .arg("run")
        .arg(guest("hello.wasm"))
        .output()
        .unwrap();
    common::Done::from(out)
        .code(0)
        .stdout_has("NAME=(unset)")
        .stdout_has("env count: 0");
}

#[test]
fn volumes_read_and_write() {
    let s = Skiff::new();
    let hello = guest("hello.wasm");
    let data = tempfile::tempdir().unwrap();
    fs::write(data.path().join("in.txt"), "contents of in.txt\n").unwrap();
    let out = tempfile::tempdir().unwrap();

    let v_data = format!("{}:/data:ro", data.path().display());
    let v_out = format!("{}:/out", out.path().display());
    s.run(&["run", "-v", &v_data, "-v", &v_out, hello.to_str().unwrap()])
        .code(0)
        .stdout_has("read: contents of in.txt")
        .stdout_has("write: ok");
    assert_eq!(
        fs::read_to_string(out.path().join("out.txt"))
            .unwrap()
            .trim_end(),
        "written by hello"
    );
}

#[test]
fn read_only_volumes_refuse_writes() {
    let s = Skiff::new();
    let out = tempfile::tempdir().unwrap();
    let v_out = format!("{}:/out:ro", out.path().display());
    s.run(&["run", "-v", &v_out, guest("hello.wasm").to_str().unwrap()])
        .code(0)
        .stdout_has("write: error");
    assert!(!out.path().join("out.txt").exists());
}

#[test]
fn escapes_from_a_mount_are_denied() {
    let s = Skiff::new();
    let data = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc/passwd", data.path().join("link")).unwrap();
    std::os::unix::fs::symlink("/etc", data.path().join("dirlink")).unwrap();
    let v = format!("{}:/data", data.path().display());
    let done = s.run(&["run", "-v", &v, guest("escape.wasm").to_str().unwrap()]);
    done.code(0).stdout_lacks("ESCAPED");
    for probe in [
        "dotdot",
        "dotdot-relative",
        "dotdot-raw",
        "absolute",
        "symlink",
        "symlink-dir",
    ] {
        done.stdout_has(&format!("{probe}: denied"));
    }
}

#[test]
fn a_missing_host_directory_is_skiffs_error() {
    let s = Skiff::new();
    s.run(&[
        "run",
        "-v",
        "/definitely/not/here:/data",
        guest("hello.wasm").to_str().unwrap(),
    ])
    .code(125)
    .stderr_has("/definitely/not/here");
    s.run(&[
        "run",
        "-v",
        "nonsense",
        guest("hello.wasm").to_str().unwrap(),
    ])
    .code(125)
    .stderr_has("HOST:GUEST");
}

#[test]
fn sockets_need_net() {
    let s = Skiff::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let socket = guest("socket.wasm");
    s.run(&["run", socket.to_str().unwrap(), &addr])
        .code(0)
        .stdout_has("connect: denied")
        .stdout_has("lookup: denied");
    s.run(&["run", "--net", socket.to_str().unwrap(), &addr])
        .code(0)
        .stdout_has("connect: ok")
        .stdout_has("lookup: ok");
}

#[test]
fn p2_command_component_runs_with_the_same_grants() {
    let s = Skiff::new();
    let data = tempfile::tempdir().unwrap();
    fs::write(data.path().join("in.txt"), "p2 data").unwrap();
    let v = format!("{}:/data:ro", data.path().display());
    s.run(&[
        "run",
        "-e",
        "NAME=p2",
        "-v",
        &v,
        guest("hello-p2.wasm").to_str().unwrap(),
        "x",
    ])
    .code(0)
    .stdout_has("hello from skiff")
    .stdout_has("arg[1]=x")
    .stdout_has("NAME=p2")
    .stdout_has("read: p2 data");
}

#[test]
fn stdin_is_closed_unless_granted() {
    use std::io::Write;
    use std::process::Stdio;
    let s = Skiff::new();
    let cat = guest("cat.wasm");
    let feed = |grant: bool| {
        let mut cmd = s.cmd();
        cmd.arg("run");
        if grant {
            cmd.arg("-i");
        }
        let mut child = cmd
            .arg(&cat)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"secret input\n")
            .unwrap();
        common::Done::from(child.wait_with_output().unwrap())
    };
    feed(false).code(0).stdout_lacks("secret");
    feed(true).code(0).stdout_has("secret input");
}

#[test]
fn outbound_http_from_a_command_is_denied_unless_allowed() {
    // http-get is a wasi:cli command that imports wasi:http, as componentize-js's output does:
    // it links, and its request is refused until the operator grants the host.
    let s = Skiff::new();
    let get = guest("http-get.wasm");
    let get = get.to_str().unwrap();
    let port = common::upstream();
    let url = format!("http://127.0.0.1:{port}/x");
    s.run(&["run", get, &url])
        .code(1)
        .stdout_lacks("upstream ok")
        .stderr_has("error: ErrorCode::HttpRequestDenied")
        .stderr_has(&format!(
            "outbound request to http://127.0.0.1:{port} denied: not in the guest's outbound allow-list (grant it with --allow-outbound http://127.0.0.1:{port})"
        ));
    let grant = format!("http://127.0.0.1:{port}");
    s.run(&["run", "--allow-outbound", &grant, get, &url])
        .code(0)
        .stdout_has("status 200\nupstream ok\n");
    // The grant names one port: another one on the same host stays closed.
    s.run(&[
        "run",
        "--allow-outbound",
        &grant,
        get,
        "http://127.0.0.1:1/",
    ])
    .code(1)
    .stderr_has("error: ErrorCode::HttpRequestDenied");
    // A pattern that does not parse is refused before anything runs, naming it.
    s.run(&["run", "--allow-outbound", "127.0.0.1", get, &url])
        .code(125)
        .stderr_has("invalid outbound pattern \"127.0.0.1\"");
}
