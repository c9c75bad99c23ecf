//! `skiff inspect FILE`.

mod common;
use common::{guest, Skiff};

#[test]
fn inspect_shows_kind_and_capabilities() {
    let s = Skiff::new();
    s.run(&["inspect", guest("hello.wasm").to_str().unwrap()])
        .code(0)
        .stdout_has("WASI preview 1 command")
        .stdout_has("sha256:")
        .stdout_has("files")
        .stdout_has("wasi_snapshot_preview1::path_open")
        .stdout_has("skiff run");
    s.run(&["inspect", guest("http-hello.wasm").to_str().unwrap()])
        .code(0)
        .stdout_has("HTTP handler")
        .stdout_has("skiff serve")
        .stdout_has("wasi:http/incoming-handler@0.2");
}

#[test]
fn inspect_json_is_machine_readable() {
    let s = Skiff::new();
    let done = s.run(&[
        "inspect",
        "--format",
        "json",
        guest("socket.wasm").to_str().unwrap(),
    ]);
    done.code(0);
    let v: serde_json::Value = serde_json::from_str(&done.stdout).expect("valid json");
    assert_eq!(v["kind"], "p2-command");
    assert!(v["digest"].as_str().unwrap().starts_with("sha256:"));
    let sockets = v["capabilities"]["sockets"]
        .as_array()
        .expect("sockets listed");
    assert!(sockets
        .iter()
        .any(|i| i.as_str().unwrap().starts_with("wasi:sockets/")));
    assert!(v["imports"].as_array().unwrap().len() >= sockets.len());
}

#[test]
fn inspect_of_bad_files() {
    let s = Skiff::new();
    s.run(&["inspect", guest("not-wasm.txt").to_str().unwrap()])
        .code(126)
        .stderr_has("text file");
    s.run(&["inspect", "missing.wasm"]).code(127);
}
