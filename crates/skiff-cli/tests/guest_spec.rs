//! One guest, one spec: the same image and the same flags give the same guest under `run`,
//! `run -d`, `up`, `serve` and `deploy` (the shim's side is `containerd-shim-skiff`'s
//! `spec_tests.rs`, from an OCI spec to the same `data/guest-view.json`).
//!
//! Each verb is asked what it resolved (`run`/`serve` log it at debug level, the daemon's
//! workload JSON holds it) and compared to one expected value; the guest's own view (its args
//! and `NAME`) shows that the spec is what it ran with.

mod common;

use common::daemon::Daemon;
use common::project::Project;
use common::serve::{curl, Served};
use serde_json::{json, Value};

/// The expected guest of a command: the image's args; its env (`A`, `NAME`, `Z`, sorted as the
/// image stores them) under the env file's, then `-e`'s, each name kept where it first
/// appeared with its last value; the mount; the limits.
fn command_view() -> Value {
    serde_json::from_str(include_str!("data/guest-view.json")).unwrap()
}

/// The expected guest of an HTTP app: the same env and limits, the HTTP ones too, and the
/// image's route; no mount (the daemon grants apps none, see docs/security.md).
fn app_view() -> Value {
    let mut v = command_view();
    let o = v.as_object_mut().unwrap();
    o.remove("mounts");
    o["limits"]["cpu_time_ms"] = json!(250);
    o["limits"]["max_concurrent"] = json!(7);
    o.insert("route".into(), json!("/env"));
    v
}

const IMAGE_DEFAULTS: &str =
    "version = \"1\"\nargs = [\"from-image\"]\n[env]\nZ = \"img\"\nNAME = \"fromimage\"\nA = \"img\"\n";

/// The flags every verb is given, in this order.
fn flags(env_file: &str) -> Vec<String> {
    [
        "--env-file",
        env_file,
        "-e",
        "B=flag",
        "-e",
        "NAME=flag-wins",
        "-e",
        "NEW=1",
        "--memory",
        "64m",
        "--timeout",
        "5s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn http_flags() -> Vec<String> {
    ["--cpu-time", "250ms", "--max-concurrent", "7"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// The guest part of a workload's spec (what is not the daemon's own: image, name, restart).
fn guest_of(workload: &Value) -> Value {
    let mut spec = workload["spec"].clone();
    for own in ["image", "image_name", "restart"] {
        spec.as_object_mut().unwrap().remove(own);
    }
    spec
}

/// The JSON after `marker` on the first stderr line holding it (`run`/`serve` at debug level).
fn logged_spec(stderr: &str, marker: &str) -> Value {
    let line = stderr
        .lines()
        .find_map(|l| l.split_once(marker).map(|(_, json)| json.to_string()))
        .unwrap_or_else(|| panic!("no {marker:?} line in:\n{stderr}"));
    serde_json::from_str(&line).unwrap()
}

#[test]
fn the_same_image_and_flags_give_the_same_guest_under_every_verb() {
    let d = Daemon::start(&["--http-listen", "127.0.0.1:0"]);
    let viewer = Project::new("viewer", "hello.wasm", IMAGE_DEFAULTS);
    d.run(&["build", viewer.arg()]).code(0);
    let web = Project::new(
        "web",
        "http-hello-p2.wasm",
        &format!("{IMAGE_DEFAULTS}[http]\nroute = \"/env\"\n"),
    );
    d.run(&["build", web.arg()]).code(0);
    let env_file = viewer.file("guest.env");
    std::fs::write(&env_file, "# the file's, under -e\nA=file\nNAME=file\n").unwrap();
    let env_file = env_file.display().to_string();
    let mount = ["-v".to_string(), "/tmp:/data:ro".to_string()];
    let with = |verb: &[&str], extra: &[String], target: &str| -> Vec<String> {
        let mut v: Vec<String> = verb.iter().map(|s| s.to_string()).collect();
        v.extend(flags(&env_file));
        v.extend(extra.iter().cloned());
        v.push(target.to_string());
        v
    };
    let mut seen: Vec<(&str, Value)> = Vec::new();

    // skiff run: the resolved spec, and what the guest saw.
    let args = with(&["--log-level", "debug", "run"], &mount, "viewer:1");
    let run = d.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    run.code(0)
        .stdout_has("arg[1]=from-image\n")
        .stdout_has("NAME=flag-wins\n")
        .stdout_has("env count: 5\n");
    seen.push(("run", logged_spec(&run.stderr, "guest: ")));

    // skiff run -d
    let args = with(&["run", "-d", "--name", "detached"], &mount, "viewer:1");
    d.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .code(0);
    d.wait_status("detached", "exited");
    let log = d.log_lines("detached").join("\n");
    assert!(
        log.contains("NAME=flag-wins") && log.contains("arg[1]=from-image"),
        "{log}"
    );
    seen.push(("run -d", guest_of(&d.inspect("detached"))));

    // skiff up: the compose entry says what the flags say.
    let compose = viewer.file("skiff-compose.toml");
    std::fs::write(
        &compose,
        "[workloads.task]\nimage = \"viewer:1\"\nenv_file = [\"guest.env\"]\n\
         env = { B = \"flag\", NAME = \"flag-wins\", NEW = \"1\" }\n\
         volumes = [\"/tmp:/data:ro\"]\nmemory = \"64m\"\ntimeout = \"5s\"\n\
         [workloads.app]\nimage = \"web:1\"\nenv_file = [\"guest.env\"]\n\
         env = { B = \"flag\", NAME = \"flag-wins\", NEW = \"1\" }\n\
         memory = \"64m\"\ntimeout = \"5s\"\ncpu_time = \"250ms\"\nmax_concurrent = 7\n",
    )
    .unwrap();
    d.run(&["up", "-f", compose.to_str().unwrap(), "-p", "views"])
        .code(0);
    d.wait_status("task", "exited");
    seen.push(("up (task)", guest_of(&d.inspect("task"))));
    let up_app = guest_of(&d.inspect("app"));
    let r = curl(&[&format!("http://{}/env", d.http_addr())]);
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "NAME=flag-wins\n"),
        "{r:?}"
    );
    d.run(&["down", "-p", "views"]).code(0);

    // skiff deploy (after `down`: the image's route is the same one)
    let mut extra = http_flags();
    extra.splice(0..0, ["--name".to_string(), "deployed".to_string()]);
    let args = with(&["deploy"], &extra, "web:1");
    d.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .code(0);
    let deployed = guest_of(&d.inspect("deployed"));
    let r = curl(&[&format!("http://{}/env", d.http_addr())]);
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "NAME=flag-wins\n"),
        "{r:?}"
    );

    // skiff serve, on the daemon's store
    let args = with(&["--log-level", "debug"], &http_flags(), "web:1");
    let served = Served::start_in(
        d.skiff.home.path(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let r = served.get("/env");
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "NAME=flag-wins\n"),
        "{r:?}"
    );
    let serve = logged_spec(&served.stderr(), "app web: ");

    for (verb, spec) in &seen {
        assert_eq!(spec, &command_view(), "{verb}");
    }
    for (verb, spec) in [("up (app)", up_app), ("deploy", deployed), ("serve", serve)] {
        assert_eq!(spec, app_view(), "{verb}");
    }
}

/// `skiff serve IMAGE` takes the image's route and env; an explicit `@ROUTE` wins over the
/// route, and `-e` over the env.
#[test]
fn serve_applies_an_images_route_and_env_unless_given() {
    let skiff = common::Skiff::new();
    let web = Project::new(
        "web",
        "http-hello-p2.wasm",
        &format!("{IMAGE_DEFAULTS}[http]\nroute = \"/env\"\n"),
    );
    skiff.run(&["build", web.arg()]).code(0);
    let served = Served::start_in(skiff.home.path(), &["web:1"]);
    let r = served.get("/env");
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "NAME=fromimage\n"),
        "{r:?}"
    );
    assert_eq!(served.get("/other").status, 404);
    drop(served);
    let served = Served::start_in(skiff.home.path(), &["-e", "NAME=given", "web:1@/"]);
    let r = served.get("/env");
    assert_eq!((r.status, r.body.as_str()), (200, "NAME=given\n"), "{r:?}");
    assert_eq!(served.get("/other").status, 200);
}

/// A task has no requests: the HTTP limits are refused for it, not ignored.
#[test]
fn http_limits_on_a_task_are_refused() {
    let d = Daemon::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(common::guest("hello.wasm"), dir.path().join("hello.wasm")).unwrap();
    let compose = dir.path().join("skiff-compose.toml");
    std::fs::write(
        &compose,
        "[workloads.t]\nimage = \"hello.wasm\"\ncpu_time = \"1s\"\n",
    )
    .unwrap();
    d.run(&["up", "-f", compose.to_str().unwrap(), "-p", "p"])
        .code(1)
        .stderr_has("limits.cpu_time_ms is for HTTP apps only");
}
