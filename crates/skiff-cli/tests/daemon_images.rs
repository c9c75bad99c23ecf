//! The daemon runs images from the store: `run -d IMAGE`, compose `image = "name:tag"`.

mod common;

use common::daemon::Daemon;
use common::project::Project;

#[test]
fn run_detached_from_an_image_applies_its_defaults_and_survives_rmi() {
    let d = Daemon::start(&[]);
    let p = Project::new(
        "greeter",
        "hello.wasm",
        "version = \"1.0\"\nargs = [\"default-arg\"]\n[env]\nNAME = \"from-image\"\n",
    );
    d.run(&["build", p.arg()]).code(0);

    d.run(&["run", "-d", "--name", "g", "greeter:1.0"]).code(0);
    d.wait_status("g", "exited");
    let log = d.log_lines("g").join("\n");
    assert!(log.contains("arg[0]=greeter"), "{log}");
    assert!(log.contains("arg[1]=default-arg"), "{log}");
    assert!(log.contains("NAME=from-image"), "{log}");
    d.run(&["ps", "-a"]).code(0).stdout_has("greeter:1.0");

    // Given args replace the image's; -e overrides one of its variables.
    d.run(&[
        "run",
        "-d",
        "--name",
        "g2",
        "-e",
        "NAME=cli",
        "greeter:1.0",
        "given",
    ])
    .code(0);
    d.wait_status("g2", "exited");
    let log = d.log_lines("g2").join("\n");
    assert!(
        log.contains("arg[1]=given") && !log.contains("default-arg"),
        "{log}"
    );
    assert!(log.contains("NAME=cli"), "{log}");

    // The store may drop the image: the daemon keeps the bytes its records name.
    d.run(&["rmi", "greeter:1.0"]).code(0);
    d.run(&["image", "prune"]).code(0);
    let first = d.inspect("g")["state"]["started_at"].clone();
    d.run(&["start", "g"]).code(0);
    d.wait_for("g", "a second run", |w| {
        w["state"]["status"] == "exited" && w["state"]["started_at"] != first
    });
    assert_eq!(d.inspect("g")["state"]["exit_code"], 0);

    // An unknown image: not found (127), as for the foreground run; nothing reaches the daemon.
    // (`--pull never`: `run -d` now pulls a missing image as the foreground run does, and the
    // default registry is not reachable from the test machine.)
    d.run(&["run", "-d", "--pull", "never", "nosuch:9"])
        .code(127)
        .stderr_has("nosuch");
}

#[test]
fn compose_entries_name_images() {
    let d = Daemon::start(&[]);
    let p = Project::new(
        "greeter",
        "hello.wasm",
        "version = \"1.0\"\nargs = [\"from-image\"]\n",
    );
    d.run(&["build", p.arg()]).code(0);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("skiff-compose.toml");
    std::fs::write(
        &file,
        "[workloads.hi]\nimage = \"greeter:1.0\"\nenv = { NAME = \"compose\" }\n",
    )
    .unwrap();
    let f = file.display().to_string();
    d.run(&["up", "-f", &f, "-p", "p"])
        .code(0)
        .stdout_has("created    hi");
    d.wait_status("hi", "exited");
    let log = d.log_lines("hi").join("\n");
    assert!(log.contains("arg[1]=from-image"), "{log}");
    assert!(log.contains("NAME=compose"), "{log}");
    d.run(&["up", "-f", &f, "-p", "p"])
        .code(0)
        .stdout_has("unchanged  hi");
}
